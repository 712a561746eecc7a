// Savings against tuned baselines across budgets; see include/vcycle/schedules/study.h.
#include "vcycle/schedules/study.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "vcycle/core/errors.h"
#include "vcycle/core/file_util.h"
#include "vcycle/core/run_lock.h"
#include "vcycle/schedules/cycle_runner.h"
#include "vcycle/schedules/report.h"

namespace vcycle {

namespace fs = std::filesystem;
using json = nlohmann::json;

void validate_study_options(const StudyOptions& o) {
  if (o.budgets.empty()) throw InputError("--budgets: give at least one budget (e.g. --budgets 1,3)");
  for (double m : o.budgets) {
    if (!(m > 0) || !std::isfinite(m)) throw InputError(fmt::format("--budgets: every budget must be a positive number, got {}", m));
  }
  for (double lr : o.baseline_lrs) {
    if (!(lr > 0) || !std::isfinite(lr)) throw InputError(fmt::format("--baseline-lrs: every lr must be a positive number, got {}", lr));
  }
  if (o.vcycle_lr_scales.empty()) throw InputError("--vcycle-lr-scales: give at least one scale (e.g. --vcycle-lr-scales 1)");
  for (double x : o.vcycle_lr_scales) {
    if (!(x > 0) || !std::isfinite(x)) throw InputError(fmt::format("--vcycle-lr-scales: every scale must be a positive number, got {}", x));
  }
  const size_t baseline_trials = o.baseline_lrs.empty() ? 3 : o.baseline_lrs.size();
  if (o.vcycle_lr_scales.size() > baseline_trials) {
    throw InputError(fmt::format("--vcycle-lr-scales: {} V-cycle trials but {} for the baseline; the V-cycle may not get more "
                                 "tuning than the baseline it is compared with",
                                 o.vcycle_lr_scales.size(), baseline_trials));
  }
  if (!o.reference.empty() && !fs::exists(fs::path(o.reference) / "study.json")) {
    throw InputError("--reference: " + (fs::path(o.reference) / "study.json").string() +
                     " not found; give the directory of a finished study (<output>/study)");
  }
  if (o.seeds < 1) throw InputError(fmt::format("--seeds must be >= 1, got {}", o.seeds));
}

std::string study_dir(const RunConfig& cfg) { return (fs::path(cfg.output) / "study").string(); }

namespace {

std::string cell_dir(double budget, int64_t seed) { return fmt::format("b{:g}/s{}", budget, seed); }
std::string baseline_dir(double budget, int64_t seed, double lr) {
  return fmt::format("{}/baseline-lr{:g}", cell_dir(budget, seed), lr);
}
// The V-cycle's directory names its rule (the baselines of a cell serve every rule) and, for a trial
// other than the config's own lrs, its lr scale.
std::string vcycle_dir(double budget, int64_t seed, BudgetRule rule, double lr_scale) {
  const std::string dir = fmt::format("{}/vcycle-{}", cell_dir(budget, seed), budget_rule_name(rule));
  return lr_scale == 1 ? dir : fmt::format("{}-lrx{:g}", dir, lr_scale);
}

// The plan: what was asked, and where each sub-run lives (relative to the study directory).
json study_plan(const RunConfig& cfg, const StudyOptions& o, const std::vector<double>& lrs) {
  json cells = json::array();
  for (int s = 0; s < o.seeds; ++s) {
    const int64_t seed = static_cast<int64_t>(cfg.seed) + s;
    for (double m : o.budgets) {
      json baselines = json::array();
      for (double lr : lrs) baselines.push_back({{"lr", lr}, {"dir", baseline_dir(m, seed, lr)}});
      json vcycles = json::array();
      for (double x : o.vcycle_lr_scales) vcycles.push_back({{"lr_scale", x}, {"dir", vcycle_dir(m, seed, o.rule, x)}});
      cells.push_back({{"budget", m}, {"seed", seed}, {"baselines", baselines}, {"vcycles", vcycles}});
    }
  }
  return {{"config", cfg.file},
          {"rule", budget_rule_name(o.rule)},
          {"budgets", o.budgets},
          {"baseline_optimizer", cfg.baseline->optimizer},
          {"baseline_lrs", lrs},
          {"vcycle_lr_scales", o.vcycle_lr_scales},
          {"seeds", o.seeds},
          {"reference", o.reference.empty() ? json(nullptr) : json(fs::absolute(o.reference).string())},
          {"cells", cells}};
}

class SubRuns {
 public:
  SubRuns(const ModelAdapter& adapter, const StudyOptions& o, size_t total) : adapter_(adapter), o_(o), total_(total) {}

  // Trains `phases` of `cfg` into `dir`, or reuses the finished run already there.
  void run(const RunConfig& cfg, const std::vector<PhaseConfig>& phases, const std::string& dir, const std::string& label) {
    ++done_;
    if (cycle_finished(dir, config_fingerprint(cfg, phases))) {
      if (!o_.quiet) std::cerr << fmt::format("[study {}/{}] {}: finished run found, reusing it\n", done_, total_, label);
      return;
    }
    if (!o_.quiet) std::cerr << fmt::format("[study {}/{}] {}\n", done_, total_, label);
    run_cycle(cfg, adapter_, phases, dir, CycleOptions{o_.resume, label, o_.quiet, nullptr});
  }

 private:
  const ModelAdapter& adapter_;
  const StudyOptions& o_;
  size_t total_ = 0, done_ = 0;
};

}  // namespace

StudySummary run_study(const RunConfig& cfg, const ModelAdapter& adapter, const StudyOptions& o) {
  validate_study_options(o);
  if (!cfg.baseline) throw ConfigError(cfg.file, "baseline", "missing: a study compares the V-cycle with the baseline");
  if (cfg.phases.empty()) throw ConfigError(cfg.file, "phases", "missing: a study needs the V-cycle's phases");
  std::vector<double> lrs = o.baseline_lrs;
  if (lrs.empty()) lrs = {0.5 * cfg.baseline->lr, cfg.baseline->lr, 2 * cfg.baseline->lr};
  // Scale every budget first: a budget the rule cannot meet fails before anything trains.
  std::vector<RunConfig> scaled;
  for (double m : o.budgets) scaled.push_back(scale_budget(cfg, adapter, m, o.rule));

  const fs::path dir = study_dir(cfg);
  lock_run_directory(dir.string());  // one study writes a study directory (and creates it)
  write_file_atomic((dir / "study_plan.json").string(), study_plan(cfg, o, lrs).dump(2) + "\n");
  SubRuns runs(adapter, o, static_cast<size_t>(o.seeds) * o.budgets.size() * (lrs.size() + o.vcycle_lr_scales.size()));
  for (int s = 0; s < o.seeds; ++s) {
    for (size_t b = 0; b < o.budgets.size(); ++b) {
      const double m = o.budgets[b];
      RunConfig c = scaled[b];
      c.seed = cfg.seed + static_cast<uint64_t>(s);
      for (double lr : lrs) {
        RunConfig cb = c;
        cb.baseline->lr = lr;
        runs.run(cb, cb.baseline_phases(), (dir / baseline_dir(m, c.seed, lr)).string(),
                 fmt::format("b{:g} s{} baseline lr {:g}", m, c.seed, lr));
      }
      for (double x : o.vcycle_lr_scales) {
        RunConfig cv = c;
        for (auto& p : cv.phases) p.lr *= x;
        runs.run(cv, cv.phases, (dir / vcycle_dir(m, c.seed, o.rule, x)).string(),
                 fmt::format("b{:g} s{} vcycle lr x{:g}", m, c.seed, x));
      }
    }
  }
  return write_study_report(dir.string());
}

// ---------------------------------------------------------------------------- report
namespace {

std::optional<double> ratio_saving(const std::optional<CrossingCost>& vc, const CrossingCost& base, double CrossingCost::*field) {
  if (!vc || !(base.*field > 0)) return std::nullopt;
  return 1.0 - (*vc).*field / base.*field;
}

json optional_json(const std::optional<double>& x) { return x ? json(*x) : json(nullptr); }

// The curves a cell's plot shows: its best baseline's and its best V-cycle's.
struct CellCurves {
  RunCurve best;
  RunCurve vcycle;
};

// Reads the trials of `runs` (entries with "dir" and the trial's `key`), lists each one's final loss
// in `trials` and returns the one with the lowest, with its `key` value in `chosen`.
RunCurve best_trial(const fs::path& dir, const json& runs, const char* key, json& trials, double& chosen) {
  RunCurve best;
  for (const auto& t : runs) {
    RunCurve r = read_run_curve((dir / t.at("dir").get<std::string>()).string());
    trials.push_back({{key, t.at(key)}, {"final_val_loss", r.final_loss}, {"train_flops", r.total_flops}});
    if (best.curve.empty() || r.final_loss < best.final_loss) {
      best = std::move(r);
      chosen = t.at(key).get<double>();
    }
  }
  return best;
}

// One (budget, seed) cell: the tuned baseline's target and the best V-cycle trial's cost to reach it.
// The two curves it compared go to `curves`, for the plots.
json cell_result(const fs::path& dir, const json& cell, CellCurves& curves) {
  json baselines = json::array(), vcycles = json::array();
  double best_lr = 0, vcycle_lr_scale = 0;
  curves.best = best_trial(dir, cell.at("baselines"), "lr", baselines, best_lr);
  curves.vcycle = best_trial(dir, cell.at("vcycles"), "lr_scale", vcycles, vcycle_lr_scale);
  const RunCurve& best = curves.best;
  const RunCurve& vc = curves.vcycle;
  const double target = best.final_loss;
  const CrossingCost base_cost = *first_crossing(best.curve, target);  // its own final loss: reached
  const auto vc_cost = first_crossing(vc.curve, target);
  return {{"budget", cell.at("budget")},
          {"seed", cell.at("seed")},
          {"baselines", baselines},
          {"best_lr", best_lr},
          {"vcycle_trials", vcycles},
          {"vcycle_lr_scale", vcycle_lr_scale},
          {"baseline_peak_optimizer_state_bytes", optional_json(best.peak_state_bytes)},
          {"vcycle_peak_optimizer_state_bytes", optional_json(vc.peak_state_bytes)},
          {"target_loss", target},
          {"baseline_flops_to_target", base_cost.flops},
          {"baseline_wall_s_to_target", base_cost.wall},
          {"baseline_train_flops", best.total_flops},
          {"vcycle_final_val_loss", vc.final_loss},
          {"vcycle_train_flops", vc.total_flops},
          {"vcycle_flops_to_target", vc_cost ? json(vc_cost->flops) : json(nullptr)},
          {"vcycle_wall_s_to_target", vc_cost ? json(vc_cost->wall) : json(nullptr)},
          {"flop_savings", optional_json(ratio_saving(vc_cost, base_cost, &CrossingCost::flops))},
          {"wall_savings", optional_json(ratio_saving(vc_cost, base_cost, &CrossingCost::wall))},
          {"final_loss_difference", vc.final_loss - target}};
}

// The V-cycle against another study's tuned baseline at the same budget and seed (`ref`: that
// study's cell): FLOPs to its L*, and the peak optimizer state against its baseline's.
json vs_reference(const json& ref, const std::string& ref_optimizer, const RunCurve& vc) {
  const double target = ref.at("target_loss").get<double>();
  const double base_flops = ref.at("baseline_flops_to_target").get<double>();
  const auto vc_cost = first_crossing(vc.curve, target);
  const json ref_bytes = ref.value("baseline_peak_optimizer_state_bytes", json());
  std::optional<double> memory_savings;
  if (ref_bytes.is_number() && ref_bytes.get<double>() > 0 && vc.peak_state_bytes) {
    memory_savings = 1.0 - *vc.peak_state_bytes / ref_bytes.get<double>();
  }
  return {{"optimizer", ref_optimizer},
          {"target_loss", target},
          {"baseline_flops_to_target", base_flops},
          {"baseline_peak_optimizer_state_bytes", ref_bytes},
          {"vcycle_flops_to_target", vc_cost ? json(vc_cost->flops) : json(nullptr)},
          {"flop_savings", vc_cost && base_flops > 0 ? json(1.0 - vc_cost->flops / base_flops) : json(nullptr)},
          {"memory_savings", optional_json(memory_savings)},
          {"final_loss_difference", vc.final_loss - target}};
}

json read_json_file(const fs::path& path, const std::string& what) {
  try {
    std::ifstream in(path);
    if (!in) throw InputError(path.string() + ": cannot read " + what);
    return json::parse(in);
  } catch (const json::exception& e) {
    throw InputError(path.string() + ": malformed " + what + " (" + e.what() + ")");
  }
}

// Per budget, over seeds: how many reached L*, and the mean / min / max FLOP saving of those that did.
json budget_summary(const json& cells, double budget) {
  std::vector<double> savings;
  int n = 0;
  for (const auto& c : cells) {
    if (c.at("budget").get<double>() != budget) continue;
    ++n;
    if (c.at("flop_savings").is_number()) savings.push_back(c.at("flop_savings").get<double>());
  }
  json s{{"budget", budget}, {"seeds", n}, {"reached", savings.size()}};
  if (!savings.empty()) {
    double sum = 0;
    for (double x : savings) sum += x;
    s["mean_flop_savings"] = sum / static_cast<double>(savings.size());
    s["min_flop_savings"] = *std::min_element(savings.begin(), savings.end());
    s["max_flop_savings"] = *std::max_element(savings.begin(), savings.end());
  }
  return s;
}

std::string pct(const json& x) { return x.is_number() ? fmt::format("{:.1f}%", 100.0 * x.get<double>()) : "never"; }
std::string sci(const json& x) { return x.is_number() ? fmt::format("{:.3g}", x.get<double>()) : "never"; }


std::string list_of(const json& xs) {
  std::string out;
  for (const auto& x : xs) out += fmt::format("{}{:g}", out.empty() ? "" : ", ", x.get<double>());
  return out;
}

// "reached the adamw baseline's loss 1.7538 with 28.0% fewer FLOPs and 45.1% less optimizer memory",
// or what was missed.
std::string reference_sentence(const json& v) {
  const std::string opt = v.at("optimizer").get<std::string>();
  std::string memory = v.at("memory_savings").is_number()
                           ? fmt::format("{:.1f}% less optimizer memory", 100.0 * v.at("memory_savings").get<double>())
                           : "optimizer memory not recorded";
  if (v.at("flop_savings").is_number()) {
    return fmt::format("reached the {} baseline's loss {:.4f} with {:.1f}% fewer FLOPs and {}", opt,
                       v.at("target_loss").get<double>(), 100.0 * v.at("flop_savings").get<double>(), memory);
  }
  return fmt::format("did not reach the {} baseline's loss {:.4f} (final {:+.4f}); {}", opt, v.at("target_loss").get<double>(),
                     v.at("final_loss_difference").get<double>(), memory);
}

std::string study_markdown(const json& s) {
  std::ostringstream md;
  md << "# vcycle study: savings at equal loss against tuned baselines\n\n";
  const size_t trials = s.at("vcycle_lr_scales").size();
  md << fmt::format("Config `{}`, budget rule `{}`. The {} baseline is trained at each lr of [{}] and its best final "
                    "validation loss is the target L*; the V-cycle gets {} trial{} (every phase's lr × [{}]), the best "
                    "final validation loss kept.\n\n",
                    s.at("config").get<std::string>(), s.at("rule").get<std::string>(),
                    s.at("baseline_optimizer").get<std::string>(), list_of(s.at("baseline_lrs")), trials,
                    trials == 1 ? "" : "s", list_of(s.at("vcycle_lr_scales")));
  md << "| budget | seed | baseline final loss by lr | L* | baseline FLOPs to L* | V-cycle final loss by lr scale | "
        "V-cycle FLOPs to L* | V-cycle / baseline FLOPs (total) | FLOP saving | wall saving | peak optimizer state "
        "(baseline / V-cycle) |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n";
  auto trial_list = [](const json& trials, const char* key) {
    std::string out;
    for (const auto& t : trials) {
      out += fmt::format("{}{:g}: {:.4f}", out.empty() ? "" : ", ", t.at(key).get<double>(), t.at("final_val_loss").get<double>());
    }
    return out;
  };
  for (const auto& c : s.at("cells")) {
    md << fmt::format("| {:g}× | {} | {} | {:.4f} | {} | {} ({:+.4f}) | {} | {:.2f} | **{}** | {} | {} / {} |\n",
                      c.at("budget").get<double>(), c.at("seed").get<int64_t>(), trial_list(c.at("baselines"), "lr"),
                      c.at("target_loss").get<double>(), sci(c.at("baseline_flops_to_target")),
                      trial_list(c.at("vcycle_trials"), "lr_scale"), c.at("final_loss_difference").get<double>(),
                      sci(c.at("vcycle_flops_to_target")),
                      c.at("vcycle_train_flops").get<double>() / c.at("baseline_train_flops").get<double>(),
                      pct(c.at("flop_savings")), pct(c.at("wall_savings")),
                      format_mib(c.at("baseline_peak_optimizer_state_bytes")), format_mib(c.at("vcycle_peak_optimizer_state_bytes")));
  }
  md << "\n| budget | seeds | reached L* | mean FLOP saving | min | max |\n|---|---|---|---|---|---|\n";
  for (const auto& b : s.at("budgets_summary")) {
    md << fmt::format("| {:g}× | {} | {} | {} | {} | {} |\n", b.at("budget").get<double>(), b.at("seeds").get<int>(),
                      b.at("reached").get<int>(), pct(b.value("mean_flop_savings", json())),
                      pct(b.value("min_flop_savings", json())), pct(b.value("max_flop_savings", json())));
  }
  if (s.at("reference").is_string()) {
    md << fmt::format("\nAgainst the tuned baseline of the reference study `{}` (config `{}`):\n\n",
                      s.at("reference").get<std::string>(), s.at("reference_config").get<std::string>());
    for (const auto& c : s.at("cells")) {
      md << fmt::format("- {:g}×, seed {}: the V-cycle {}\n", c.at("budget").get<double>(), c.at("seed").get<int64_t>(),
                        c.at("vs_reference").is_null() ? "has no reference cell at this budget and seed"
                                                        : reference_sentence(c.at("vs_reference")));
    }
  }
  md << "\nA V-cycle that never reaches L* gets no saving (\"never\"); its final-loss difference is in brackets. "
     << s.at("plot_note").get<std::string>() << "\n";
  return md.str();
}

// The savings-vs-budget plot and, per budget, the loss-vs-FLOPs curves of the first seed's best
// baseline and V-cycle.
std::string study_plots(const fs::path& dir, const json& s, const std::vector<CellCurves>& curves) {
  std::ostringstream dat, gp;
  for (const auto& c : s.at("cells")) {
    if (c.at("flop_savings").is_number()) {
      dat << fmt::format("{:g} {} {:.6g}\n", c.at("budget").get<double>(), c.at("seed").get<int64_t>(),
                         100.0 * c.at("flop_savings").get<double>());
    }
  }
  write_file_atomic((dir / "study_savings.dat").string(), "# budget seed flop_savings_percent\n" + dat.str());
  gp << "set terminal svg size 900,540 dynamic\nset grid\nset key top right\n";
  gp << "set output '" << (dir / "study_savings.svg").string() << "'\nset xlabel 'budget (× the config)'\n"
     << "set ylabel 'FLOP saving at equal loss (%)'\nset yzeroaxis\n"
     << "plot '" << (dir / "study_savings.dat").string() << "' using 1:3 with points pt 7 title 'V-cycle vs tuned baseline', 0 with lines dt 3 notitle\n";
  const int64_t first_seed = s.at("cells").at(0).at("seed").get<int64_t>();
  for (size_t i = 0; i < s.at("cells").size(); ++i) {
    const json& c = s.at("cells").at(i);
    if (c.at("seed").get<int64_t>() != first_seed) continue;
    const std::string tag = fmt::format("b{:g}", c.at("budget").get<double>());
    write_curve_data((dir / ("curve_" + tag + "_baseline.dat")).string(), curves[i].best.curve);
    write_curve_data((dir / ("curve_" + tag + "_vcycle.dat")).string(), curves[i].vcycle.curve);
    gp << fmt::format("set output '{}'\nset xlabel 'training FLOPs'\nset ylabel 'validation loss'\nset yrange [*:*]\n"
                      "plot '{}' using 1:3 with linespoints title 'best baseline (lr {:g})', '{}' using 1:3 with linespoints "
                      "title 'V-cycle', {:.6g} with lines dt 3 title 'L*'\n",
                      (dir / ("loss_vs_flops_" + tag + ".svg")).string(), (dir / ("curve_" + tag + "_baseline.dat")).string(),
                      c.at("best_lr").get<double>(), (dir / ("curve_" + tag + "_vcycle.dat")).string(),
                      c.at("target_loss").get<double>());
  }
  const std::string script = (dir / "study.gp").string();
  write_file_atomic(script, gp.str());
  return run_gnuplot(script, "study_savings.svg and loss_vs_flops_b<m>.svg");
}

}  // namespace

StudySummary write_study_report(const std::string& dir_str) {
  const fs::path dir(dir_str);
  const fs::path plan_path = dir / "study_plan.json";
  if (!fs::exists(plan_path)) throw InputError(plan_path.string() + ": no study plan; run `vcycle study` first");
  const json plan = read_json_file(plan_path, "study plan");
  json s{{"config", plan.at("config")},
         {"rule", plan.at("rule")},
         {"baseline_optimizer", plan.at("baseline_optimizer")},
         {"baseline_lrs", plan.at("baseline_lrs")},
         {"vcycle_lr_scales", plan.at("vcycle_lr_scales")},
         {"reference", plan.at("reference")},
         {"cells", json::array()},
         {"budgets_summary", json::array()}};
  std::vector<CellCurves> curves(plan.at("cells").size());
  for (size_t i = 0; i < curves.size(); ++i) s["cells"].push_back(cell_result(dir, plan.at("cells").at(i), curves[i]));
  if (plan.at("reference").is_string()) {
    const fs::path ref_dir = plan.at("reference").get<std::string>();
    const json ref = read_json_file(ref_dir / "study.json", "reference study");
    s["reference_config"] = ref.at("config");
    for (size_t i = 0; i < curves.size(); ++i) {
      json& c = s["cells"][i];
      c["vs_reference"] = nullptr;  // the reference has no cell at this budget and seed
      for (const auto& rc : ref.at("cells")) {
        if (rc.at("budget") == c.at("budget") && rc.at("seed") == c.at("seed")) {
          c["vs_reference"] = vs_reference(rc, ref.at("baseline_optimizer").get<std::string>(), curves[i].vcycle);
        }
      }
    }
  }
  for (const auto& m : plan.at("budgets")) s["budgets_summary"].push_back(budget_summary(s["cells"], m.get<double>()));
  s["plot_note"] = study_plots(dir, s, curves);
  StudySummary out;
  out.markdown = study_markdown(s);
  write_file_atomic((dir / "study.json").string(), s.dump(2) + "\n");
  write_file_atomic((dir / "study.md").string(), out.markdown);
  return out;
}

}  // namespace vcycle
