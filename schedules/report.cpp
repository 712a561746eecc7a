// The savings report; see include/vcycle/schedules/report.h.
#include "vcycle/schedules/report.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "vcycle/core/errors.h"
#include "vcycle/core/run_lock.h"
#include "vcycle/core/file_util.h"
#include "vcycle/core/metrics.h"

namespace vcycle {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::optional<CrossingCost> first_crossing(const std::vector<CurvePoint>& curve, double target) {
  for (size_t i = 0; i < curve.size(); ++i) {
    if (curve[i].loss > target) continue;
    if (i == 0) return CrossingCost{curve[0].flops, curve[0].wall};
    const CurvePoint& a = curve[i - 1];
    const CurvePoint& b = curve[i];
    // a.loss > target >= b.loss, so the fraction is in (0, 1].
    const double f = (a.loss - target) / (a.loss - b.loss);
    return CrossingCost{a.flops + f * (b.flops - a.flops), a.wall + f * (b.wall - a.wall)};
  }
  return std::nullopt;
}

namespace {

// One run's metrics, as the report needs them.
struct RunMetrics {
  std::string name;
  std::vector<CurvePoint> curve;
  std::vector<json> phases;            // phase_end rows
  std::vector<double> transition_flops;  // where the level changed (for the plot)
  std::vector<double> transition_walls;
  json last;                           // the last row (totals)
  double final_loss = NAN;
  std::optional<double> final_accuracy;  // the last eval row's val_accuracy, for models that report it (ViT)
  std::optional<double> final_bits_per_byte;  // the last eval row's val_bits_per_byte, when the data's bytes are known
  std::optional<double> peak_state_bytes;  // the largest optimizer_state_bytes of its train rows
  std::optional<double> peak_flops;        // the last train row's MFU peak (none: no MFU was reported)
  std::string peak_source;                 // where that peak came from (config, cache)
};

RunMetrics read_run(const std::string& dir, const std::string& name) {
  const std::string path = (fs::path(dir) / "metrics.jsonl").string();
  if (!fs::exists(path)) throw InputError(path + ": no metrics; run `vcycle run` first");
  RunMetrics m;
  m.name = name;
  size_t line_no = 0;
  for (const auto& line : read_jsonl_lines(path)) {
    ++line_no;
    json row;
    try {
      row = json::parse(line);
      const std::string type = row.at("type");
      if (type == "eval") {
        // A non-finite loss is stored as null; it can reach no target, so it is no curve point.
        if (!row.at("val_loss").is_number()) continue;
        m.curve.push_back({row.at("train_flops").get<double>(), row.at("wall_s").get<double>(), row.at("val_loss").get<double>()});
        m.final_loss = m.curve.back().loss;
        if (row.contains("val_accuracy") && row.at("val_accuracy").is_number()) m.final_accuracy = row.at("val_accuracy").get<double>();
        if (row.contains("val_bits_per_byte") && row.at("val_bits_per_byte").is_number()) {
          m.final_bits_per_byte = row.at("val_bits_per_byte").get<double>();
        }
      } else if (type == "train") {
        if (row.contains("optimizer_state_bytes"))
          m.peak_state_bytes = std::max(m.peak_state_bytes.value_or(0), row.at("optimizer_state_bytes").get<double>());
        if (row.contains("peak_flops")) {
          m.peak_flops = row.at("peak_flops").get<double>();
          m.peak_source = row.value("peak_source", "");
        }
      } else if (type == "phase_end") {
        m.phases.push_back(row);
      } else if (type == "transition") {
        m.transition_flops.push_back(row.at("train_flops").get<double>());
        m.transition_walls.push_back(row.at("wall_s").get<double>());
      }
    } catch (const json::exception& e) {
      throw InputError(fmt::format("{}:{}: malformed metrics row ({})", path, line_no, e.what()));
    }
    m.last = row;
  }
  if (m.curve.empty()) throw InputError(path + ": no evaluation rows");
  return m;
}

json phase_json(const json& p) {
  return json{{"phase", p.at("phase")},        {"level", p.at("level")},
              {"shape", p.at("shape")},        {"params", p.at("params")},
              {"steps", p.at("steps")},        {"optimizer", p.at("optimizer")},
              {"tokens", p.at("phase_tokens")}, {"flops", p.at("phase_flops")},
              {"wall_s", p.at("phase_wall")},  {"final_val_loss", p.at("val_loss")}};
}

json run_json(const RunMetrics& m, const std::optional<CrossingCost>& at_target) {
  json phases = json::array();
  for (const auto& p : m.phases) phases.push_back(phase_json(p));
  json r{{"phases", phases},
       {"total_train_flops", m.last.at("train_flops")},
       {"operator_flops", m.last.at("op_flops")},
       {"eval_flops", m.last.at("eval_flops")},
       {"tokens", m.last.at("tokens")},
       {"train_wall_s", m.last.at("wall_s")},
       {"eval_wall_s", m.last.at("eval_wall_s")},
       {"final_val_loss", m.final_loss},
       {"flops_to_target", at_target ? json(at_target->flops) : json(nullptr)},
       {"wall_s_to_target", at_target ? json(at_target->wall) : json(nullptr)}};
  if (m.final_accuracy) r["final_val_accuracy"] = *m.final_accuracy;
  if (m.final_bits_per_byte) r["final_val_bits_per_byte"] = *m.final_bits_per_byte;
  r["peak_optimizer_state_bytes"] = m.peak_state_bytes ? json(*m.peak_state_bytes) : json(nullptr);
  // Throughput over the whole run's training time (level changes included, evaluation not).
  const double wall = m.last.at("wall_s").get<double>();
  const double flop_s = wall > 0 ? m.last.at("train_flops").get<double>() / wall : 0;
  r["tokens_per_s"] = wall > 0 ? m.last.at("tokens").get<double>() / wall : 0;
  r["model_flops_per_s"] = flop_s;
  r["mfu"] = m.peak_flops ? json(flop_s / *m.peak_flops) : json(nullptr);
  r["peak_flops"] = m.peak_flops ? json(*m.peak_flops) : json(nullptr);
  r["peak_source"] = m.peak_flops ? json(m.peak_source) : json(nullptr);
  return r;
}

std::string pct(const std::optional<double>& x) { return x ? fmt::format("{:.1f}%", 100.0 * *x) : "n/a"; }
std::string num(const json& x, const char* f = "{:.3g}") { return x.is_null() ? "never" : fmt::format(f, x.get<double>()); }

// Which peak the MFU column is against, and where it came from.
std::string peak_note(const json& r) {
  std::string out;
  for (const char* name : {"baseline", "vcycle"}) {
    const json& x = r[name];
    out += x["peak_flops"].is_null()
               ? fmt::format("{}: no MFU (no peak FLOP/s known: `vcycle bench peak` or train.peak_flops). ", name)
               : fmt::format("{}: MFU against a peak of {:.3g} FLOP/s ({}). ", name, x["peak_flops"].get<double>(),
                             x["peak_source"].get<std::string>());
  }
  out.pop_back();
  return out;
}

std::string markdown(const json& r) {
  std::ostringstream md;
  md << "# vcycle savings report\n\n";
  md << fmt::format("Target loss L* = baseline's final validation loss = **{:.4f}** nats/token", r["target_loss"].get<double>());
  if (r.contains("target_bits_per_byte")) md << fmt::format(" ({:.4f} bits/byte)", r["target_bits_per_byte"].get<double>());
  md << "\n\n";
  md << "| run | final val loss | train FLOPs | FLOPs to L* | train s | s to L* | peak optimizer state | tokens/s | model FLOP/s | MFU |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n";
  for (const char* name : {"baseline", "vcycle"}) {
    const json& x = r[name];
    md << fmt::format("| {} | {:.4f} | {} | {} | {} | {} | {} | {:.0f} | {:.3g} | {} |\n", name,
                      x["final_val_loss"].get<double>(), num(x["total_train_flops"]), num(x["flops_to_target"]),
                      num(x["train_wall_s"], "{:.1f}"), num(x["wall_s_to_target"], "{:.1f}"),
                      format_mib(x["peak_optimizer_state_bytes"]), x["tokens_per_s"].get<double>(),
                      x["model_flops_per_s"].get<double>(),
                      x["mfu"].is_null() ? std::string("n/a") : fmt::format("{:.1f}%", 100.0 * x["mfu"].get<double>()));
  }
  md << "\n" << peak_note(r) << "\n\n";
  if (r["reached_target"].get<bool>()) {
    md << fmt::format("**FLOP savings at equal loss: {}** · wall-time savings at equal loss: {}\n\n",
                      pct(r["flop_savings"].is_null() ? std::nullopt : std::optional<double>(r["flop_savings"].get<double>())),
                      pct(r["wall_savings"].is_null() ? std::nullopt : std::optional<double>(r["wall_savings"].get<double>())));
  } else {
    md << "**The V-cycle never reached L*: no saving is claimed.**\n\n";
  }
  md << fmt::format("Final-loss difference (vcycle − baseline): {:+.4f}\n\n", r["final_loss_difference"].get<double>());
  if (r["baseline"].contains("final_val_accuracy") && r["vcycle"].contains("final_val_accuracy")) {
    md << fmt::format("Final validation accuracy: baseline {:.2f}%, vcycle {:.2f}%\n\n",
                      100.0 * r["baseline"]["final_val_accuracy"].get<double>(),
                      100.0 * r["vcycle"]["final_val_accuracy"].get<double>());
  }
  md << "| run | phase | level | shape | params | steps | optimizer | tokens | FLOPs | s | val loss |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const char* name : {"baseline", "vcycle"}) {
    for (const auto& p : r[name]["phases"]) {
      md << fmt::format("| {} | {} | {} | {} | {:.3g} | {} | {} | {:.3g} | {:.3g} | {:.1f} | {:.4f} |\n", name,
                        p["phase"].get<int>() + 1, p["level"].get<int>(), p["shape"].get<std::string>(),
                        p["params"].get<double>(), p["steps"].get<int64_t>(), p["optimizer"].get<std::string>(),
                        p["tokens"].get<double>(), p["flops"].get<double>(), p["wall_s"].get<double>(),
                        p["final_val_loss"].get<double>());
    }
  }
  md << "\nFLOPs are model FLOPs (6·N_mm + 12·L·T·d_attn per token, operators included); seconds are training\n"
        "time, evaluation excluded (it is reported in report.json). " << r["plot_note"].get<std::string>() << "\n";
  return md.str();
}

// Writes the plot data and a gnuplot script, and runs gnuplot if it is installed.
std::string plot(const std::string& out, const RunMetrics& base, const RunMetrics& vc, double target) {
  const fs::path dir(out);
  for (const RunMetrics* m : {&base, &vc}) write_curve_data((dir / ("curve_" + m->name + ".dat")).string(), m->curve);
  std::ostringstream gp;
  gp << "set terminal svg size 900,540 dynamic\nset grid\nset key top right\nset ylabel 'validation loss'\n";
  auto panel = [&](const std::string& file, const std::string& xlabel, int column, const std::vector<double>& marks) {
    gp << "set output '" << (dir / file).string() << "'\nset xlabel '" << xlabel << "'\nunset arrow\n";
    for (double x : marks) gp << fmt::format("set arrow from {:.6g}, graph 0 to {:.6g}, graph 1 nohead dt 2 lc rgb '#888888'\n", x, x);
    gp << fmt::format("plot '{}' using {}:3 with linespoints title 'baseline', '{}' using {}:3 with linespoints title "
                      "'V-cycle (dashed: level changes)', {:.6g} with lines dt 3 title 'L*'\n",
                      (dir / "curve_baseline.dat").string(), column, (dir / "curve_vcycle.dat").string(), column, target);
  };
  panel("loss_vs_flops.svg", "training FLOPs", 1, vc.transition_flops);
  panel("loss_vs_wall.svg", "training seconds", 2, vc.transition_walls);
  const std::string script = (dir / "plot.gp").string();
  write_file_atomic(script, gp.str());
  return run_gnuplot(script, "loss_vs_flops.svg, loss_vs_wall.svg");
}

}  // namespace

void write_curve_data(const std::string& path, const std::vector<CurvePoint>& curve) {
  std::ostringstream dat;
  dat << "# train_flops wall_s val_loss\n";
  for (const auto& p : curve) dat << fmt::format("{:.6g} {:.6g} {:.6g}\n", p.flops, p.wall, p.loss);
  write_file_atomic(path, dat.str());
}

std::string run_gnuplot(const std::string& script, const std::string& what) {
  const std::string name = fs::path(script).filename().string();
  if (std::system("command -v gnuplot > /dev/null 2>&1") != 0) {
    return "Plot skipped: gnuplot is not installed (apt-get install gnuplot-nox), its script is " + name + ".";
  }
  if (std::system(("gnuplot '" + script + "' > /dev/null 2>&1").c_str()) != 0) {
    return "Plot failed: gnuplot returned an error on " + name + ".";
  }
  return "Plots: " + what + ".";
}

std::string format_mib(const json& bytes) {
  return bytes.is_number() ? fmt::format("{:.2f} MiB", bytes.get<double>() / (1 << 20)) : "n/a";
}

RunCurve read_run_curve(const std::string& dir) {
  const RunMetrics m = read_run(dir, fs::path(dir).filename().string());
  return RunCurve{m.curve, m.final_loss, m.last.at("train_flops").get<double>(), m.last.at("wall_s").get<double>(),
                  m.peak_state_bytes};
}

ReportSummary write_report(const std::string& output_dir) {
  // Checked first: a missing run is "no metrics" below, not a directory made for a lock.
  for (const char* run : {"baseline", "vcycle"}) {
    const fs::path metrics = fs::path(output_dir) / run / "metrics.jsonl";
    if (!fs::exists(metrics)) throw InputError(metrics.string() + ": no metrics; run `vcycle run` first");
  }
  lock_run_directory(output_dir);  // one writer of report.json / report.md (a no-op for the run that holds it)
  const RunMetrics base = read_run((fs::path(output_dir) / "baseline").string(), "baseline");
  const RunMetrics vc = read_run((fs::path(output_dir) / "vcycle").string(), "vcycle");
  const double target = base.final_loss;
  const auto base_cost = first_crossing(base.curve, target);  // reached by construction
  const auto vc_cost = first_crossing(vc.curve, target);

  ReportSummary s;
  s.target_loss = target;
  if (vc_cost && base_cost && base_cost->flops > 0) s.flop_savings = 1.0 - vc_cost->flops / base_cost->flops;
  if (vc_cost && base_cost && base_cost->wall > 0) s.wall_savings = 1.0 - vc_cost->wall / base_cost->wall;

  json r;
  r["target_loss"] = target;
  // Bits per byte compare runs across tokenizers (the V-cycle's and the baseline's valid data are the same).
  if (base.final_bits_per_byte) r["target_bits_per_byte"] = *base.final_bits_per_byte;
  r["reached_target"] = vc_cost.has_value();
  r["flop_savings"] = s.flop_savings ? json(*s.flop_savings) : json(nullptr);
  r["wall_savings"] = s.wall_savings ? json(*s.wall_savings) : json(nullptr);
  r["final_loss_difference"] = vc.final_loss - base.final_loss;
  r["baseline"] = run_json(base, base_cost);
  r["vcycle"] = run_json(vc, vc_cost);
  r["plot_note"] = plot(output_dir, base, vc, target);
  s.markdown = markdown(r);
  write_file_atomic((fs::path(output_dir) / "report.json").string(), r.dump(2) + "\n");
  write_file_atomic((fs::path(output_dir) / "report.md").string(), s.markdown);
  return s;
}

}  // namespace vcycle
