// Optimizer state across level changes (levels.optimizer_state: project): export / project / import
// by parameter name on a tiny GPT, and the V-cycle runner carrying the state over (or resetting it).
#include <cmath>
#include <filesystem>
#include <iostream>
#include <memory>
#include <sstream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "test_util.h"
#include "vcycle/core/checkpoint.h"
#include "vcycle/config/run_config.h"
#include "vcycle/schedules/cycle_runner.h"
#include "vcycle/core/errors.h"
#include "vcycle/models/gpt/param_map.h"
#include "vcycle/core/metrics.h"
#include "vcycle/models/gpt/gpt.h"
#include "vcycle/models/registry.h"
#include "vcycle/operators/operators.h"
#include "vcycle/optim/registry.h"
#include "vcycle/operators/state_projection.h"

// Catch last: LibTorch pulls in glog, whose CHECK macro must not replace Catch's.
#include <catch2/catch.hpp>

using namespace vcycle;
using json = nlohmann::json;

namespace {

// Every width space and the depth halve once: hidden 8 → 4, heads 2·4 → 1·4, ffn 16 → 8, layers 2 → 1.
GPTConfig tiny_gpt() {
  GPTConfig cfg;
  cfg.layers = 2; cfg.hidden = 8; cfg.heads = 2; cfg.head_size = 4; cfg.ffn = 16; cfg.context = 6; cfg.vocab = 11;
  cfg.tied_embeddings = true;
  return cfg;
}

void train(GPT& model, torch::optim::Optimizer& opt, int steps) {
  for (int s = 0; s < steps; ++s) {
    const auto idx = torch::randint(model->cfg.vocab, {3, model->cfg.context});
    const auto target = torch::randint(model->cfg.vocab, {3, model->cfg.context});
    opt.zero_grad();
    model->loss(idx, target).backward();
    opt.step();
  }
}

std::unique_ptr<torch::optim::Optimizer> make(const std::string& name, GPT& model) {
  return optim::make_optimizer(name, optim::named_parameters(*model), 1e-2, YAML::Node(), "test");
}

bool bitwise_equal(const TensorMap& a, const TensorMap& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [name, t] : a) {
    auto it = b.find(name);
    if (it == b.end() || t.sizes() != it->second.sizes() || !torch::equal(t, it->second)) return false;
  }
  return true;
}

bool close(const TensorMap& a, const TensorMap& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [name, t] : a) {
    auto it = b.find(name);
    if (it == b.end() || t.sizes() != it->second.sizes() || !torch::allclose(t, it->second, 1e-6, 0)) return false;
  }
  return true;
}

void check_close(const torch::Tensor& actual, const torch::Tensor& expected) {
  REQUIRE(actual.sizes() == expected.sizes());
  CHECK(torch::allclose(actual, expected, 1e-6, 1e-12));
}

// ---- runs -------------------------------------------------------------------------------------------

// A 2-level V-cycle (6, 8, 9 steps) with the given optimizer per phase and optimizer_state.
std::string cycle_config(const std::string& data, const std::string& out, const std::string& state,
                         const std::vector<std::string>& optimizers) {
  return "name: tiny\nseed: 5\nthreads: 1\n"
         "model: { type: gpt, layers: 4, hidden: 32, heads: 4, head_size: 8, ffn: 64, context: 16 }\n"
         "data: { train: " + data + "/train.bin, valid: " + data + "/valid.bin, batch_size: 4 }\n"
         "levels: { count: 2, width_factor: 2, depth_factor: 2, interpolation: { alpha: 0.5 }, optimizer_state: " +
         state + " }\n"
         "phases:\n"
         "  - { level: 1, steps: 6, lr: 3e-3, warmup: 2, optimizer: " + optimizers[0] + " }\n"
         "  - { level: 2, steps: 8, lr: 3e-3, warmup: 2, optimizer: " + optimizers[1] + " }\n"
         "  - { level: 1, steps: 9, lr: 2e-3, optimizer: " + optimizers[2] + " }\n"
         "baseline: { steps: 10, optimizer: adamw, lr: 3e-3, warmup: 2 }\n"
         "eval: { every: 4, batches: 2 }\n"
         "train: { log_every: 2, checkpoint_every: 3 }\n"
         "output: " + out + "\n";
}

std::vector<json> rows_of(const std::string& path, const std::string& type = "") {
  std::vector<json> rows;
  for (const auto& line : read_jsonl_lines(path)) {
    json row = json::parse(line);
    if (type.empty() || row["type"] == type) rows.push_back(std::move(row));
  }
  return rows;
}

// Collects what is written to std::cerr while alive (the runner's warnings go there).
struct CaptureCerr {
  std::ostringstream text;
  std::streambuf* saved;
  CaptureCerr() : saved(std::cerr.rdbuf(text.rdbuf())) {}
  ~CaptureCerr() { std::cerr.rdbuf(saved); }
};

struct Interrupted : std::runtime_error {
  Interrupted() : std::runtime_error("interrupted by the test") {}
};

// The built-in GPT adapter, but throwing Interrupted at a chosen point, which leaves the run's last
// checkpoint behind as a kill would: when building a model of hidden size `fail_build_hidden`, or in
// the first training step (loss with autograd on) of a model of hidden size `fail_train_hidden`.
class InterruptingAdapter : public ModelAdapter {
 public:
  InterruptingAdapter(std::shared_ptr<ModelAdapter> inner, int64_t fail_build_hidden, int64_t fail_train_hidden)
      : inner_(std::move(inner)), fail_build_(fail_build_hidden), fail_train_(fail_train_hidden) {}
  std::string type() const override { return inner_->type(); }
  LevelShape top_shape() const override { return inner_->top_shape(); }
  ParamMap param_map() const override { return inner_->param_map(); }
  std::shared_ptr<torch::nn::Module> build(const LevelShape& shape) const override {
    if (shape.size("hidden") == fail_build_) throw Interrupted();
    return inner_->build(shape);
  }
  torch::Tensor loss(torch::nn::Module& module, const Batch& batch) const override {
    if (torch::GradMode::is_enabled() && module.named_parameters()["ln_f.weight"].size(0) == fail_train_) {
      throw Interrupted();
    }
    return inner_->loss(module, batch);
  }
  FlopShape flop_shape(const LevelShape& shape) const override { return inner_->flop_shape(shape); }
  std::unique_ptr<BatchSource> batches(const RunConfig& cfg) const override { return inner_->batches(cfg); }
  int64_t context() const override { return inner_->context(); }
  int64_t vocab_size() const override { return inner_->vocab_size(); }

 private:
  std::shared_ptr<ModelAdapter> inner_;
  int64_t fail_build_, fail_train_;
};

}  // namespace

TEST_CASE("optimizer state projects down and up by parameter name (AdamW, CAME)", "[projection]") {
  const GPTConfig cfg = tiny_gpt();
  const ParamMap map = gpt_param_map(cfg);
  const LevelShape large = gpt_level_shape(cfg);
  const CoalesceFactors f{};
  for (const std::string name : {"adamw", "came"}) {
    INFO(name);
    torch::manual_seed(7);
    GPT model(cfg);
    auto opt = make(name, model);
    train(model, *opt, 3);
    const auto s = optim::export_optimizer_state(*opt, optim::named_parameters(*model));
    REQUIRE(s.optimizer == name);
    REQUIRE(s.steps.size() == model->parameters().size());
    CHECK(s.max_step() == 3);

    const auto down = optim::project_optimizer_state(s, map, large, f, optim::StateProjection::coalesce);
    CHECK(down.fields.size() == s.fields.size());
    for (const auto& [param, step] : down.steps) CHECK(step == 3);  // step counters are kept
    // First moments move exactly like the parameters (coalesce_state, MomentKind::first).
    CHECK(bitwise_equal(down.fields.at("exp_avg"),
                        coalesce_state(s.fields.at("exp_avg"), map, large, f, MomentKind::first)));
    // Down, up, down again: the first moments come back bitwise, the rest (averaged / copied) too up
    // to the mean over a broadcast axis of the factored statistics.
    const auto up = optim::project_optimizer_state(down, map, large, f, optim::StateProjection::decoalesce);
    CHECK(up.shapes == s.shapes);
    const auto again = optim::project_optimizer_state(up, map, large, f, optim::StateProjection::coalesce);
    CHECK(bitwise_equal(again.fields.at("exp_avg"), down.fields.at("exp_avg")));
    for (const auto& [field, tensors] : down.fields) {
      INFO(field);
      CHECK(close(again.fields.at(field), tensors));
    }
    // The tied ln_f takes the *in* role: its first moment is summed over the halves groups.
    check_close(down.fields.at("exp_avg").at("ln_f.weight"),
                s.fields.at("exp_avg").at("ln_f.weight").view({2, 4}).sum(0));

    // By hand: blocks 0 and 1 form the small block 0; mlp.fc.weight is (ffn 16, hidden 8), halves
    // pairing groups rows {i, i+8} and columns {j, j+4}; second moments average over all of it.
    const std::string w = ".mlp.fc.weight", b = ".ln1.bias";
    auto both = [&](const std::string& field, const std::string& suffix) {
      const TensorMap& t = s.fields.at(field);
      return (t.at("blocks.0" + suffix) + t.at("blocks.1" + suffix)) / 2;
    };
    if (name == "adamw") {
      check_close(down.fields.at("exp_avg_sq").at("blocks.0" + w),
                  both("exp_avg_sq", w).view({2, 8, 2, 4}).mean(std::vector<int64_t>{0, 2}));
      check_close(down.fields.at("exp_avg_sq").at("blocks.0" + b), both("exp_avg_sq", b).view({2, 4}).mean(0));
    } else {
      for (const std::string field : {"exp_avg_sq_row", "exp_avg_res_row"}) {
        INFO(field);  // r: shape W[:-1] = (16), the ffn axis
        check_close(down.fields.at(field).at("blocks.0" + w), both(field, w).view({2, 8}).mean(0));
      }
      for (const std::string field : {"exp_avg_sq_col", "exp_avg_res_col"}) {
        INFO(field);  // c: shape W[:-2]+W[-1:] = (8), the hidden axis
        check_close(down.fields.at(field).at("blocks.0" + w), both(field, w).view({2, 4}).mean(0));
      }
      check_close(down.fields.at("exp_avg_sq").at("blocks.0" + b), both("exp_avg_sq", b).view({2, 4}).mean(0));
      // de-coalescing copies: the large r of every block of the group is the small r, repeated
      check_close(up.fields.at("exp_avg_sq_row").at("blocks.1" + w),
                  down.fields.at("exp_avg_sq_row").at("blocks.0" + w).repeat({2}));
    }

    // Into the small model's optimizer: the same state comes back out, and training goes on from it.
    const LevelShape small_shape = coalesce_shape(map, large, f);
    GPT small(gpt_config_for_shape(cfg, small_shape));
    load_module_tensors(*small, coalesce(module_tensors(*model), map, large, f));
    auto small_opt = make(name, small);
    CHECK(small_opt->state().empty());
    optim::import_optimizer_state(*small_opt, optim::named_parameters(*small), down);
    CHECK(small_opt->state().size() == small->parameters().size());
    const auto out = optim::export_optimizer_state(*small_opt, optim::named_parameters(*small));
    CHECK(out.steps == down.steps);
    REQUIRE(out.fields.size() == down.fields.size());
    for (const auto& [field, tensors] : down.fields) CHECK(bitwise_equal(out.fields.at(field), tensors));
    train(small, *small_opt, 1);
    CHECK(optim::export_optimizer_state(*small_opt, optim::named_parameters(*small)).max_step() == 4);
    for (const auto& p : small->parameters()) CHECK(torch::isfinite(p).all().item<bool>());
  }
}

TEST_CASE("LAMB and Adafactor state projects and trains on, and mismatches are errors", "[projection]") {
  const GPTConfig cfg = tiny_gpt();
  const ParamMap map = gpt_param_map(cfg);
  const LevelShape large = gpt_level_shape(cfg);
  const CoalesceFactors f{};
  GPT small(gpt_config_for_shape(cfg, coalesce_shape(map, large, f)));
  for (const std::string name : {"lamb", "adafactor"}) {
    INFO(name);
    torch::manual_seed(3);
    GPT model(cfg);
    auto opt = make(name, model);
    train(model, *opt, 2);
    const auto s = optim::export_optimizer_state(*opt, optim::named_parameters(*model));
    const auto down = optim::project_optimizer_state(s, map, large, f, optim::StateProjection::coalesce);
    auto small_opt = make(name, small);
    optim::import_optimizer_state(*small_opt, optim::named_parameters(*small), down);
    train(small, *small_opt, 1);
    CHECK(optim::export_optimizer_state(*small_opt, optim::named_parameters(*small)).max_step() == 3);

    // the large state does not fit the small model; another optimizer's state is refused
    CHECK_THROWS_AS(optim::import_optimizer_state(*small_opt, optim::named_parameters(*small), s), InputError);
    auto adamw = make("adamw", small);
    CHECK_THROWS_AS(optim::import_optimizer_state(*adamw, optim::named_parameters(*small), down), InputError);
  }
  CHECK(optim::state_field_kind("exp_avg") == optim::StateFieldKind::first);
  CHECK(optim::state_field_kind("exp_avg_res_col") == optim::StateFieldKind::factor_col);
  CHECK_THROWS_AS(optim::state_field_kind("momentum_buffer"), std::invalid_argument);
}

TEST_CASE("a 2-level V-cycle with optimizer_state: project carries the state, reset does not", "[projection][vcycle]") {
  test::TempDir dir("project");
  test::prepare_fixture_corpus(dir.str("data"));
  std::map<std::string, std::vector<json>> transitions;
  std::map<std::string, double> final_loss;
  for (const std::string state : {"reset", "project"}) {
    const std::string out = dir.str(state);
    test::write_text(dir.str(state + ".yaml"), cycle_config(dir.str("data"), out, state, {"adamw", "adamw", "adamw"}));
    const RunConfig cfg = load_config(dir.str(state + ".yaml"));
    auto adapter = make_model(cfg);
    final_loss[state] = run_cycle(cfg, *adapter, cfg.phases, out, CycleOptions{false, state, true}).final_val_loss;
    transitions[state] = rows_of(out + "/metrics.jsonl", "transition");
    REQUIRE(transitions[state].size() == 2);
  }
  for (const auto& row : transitions["reset"]) {
    CHECK(row["optimizer_state"] == "reset");
    CHECK(row["optimizer_state_bytes"].get<int64_t>() == 0);  // a fresh optimizer holds nothing yet
  }
  for (const auto& row : transitions["project"]) {
    CHECK(row["optimizer_state"] == "project");
    CHECK(row["optimizer_state_bytes"].get<int64_t>() > 0);  // AdamW: m and v of every parameter
  }
  // the projected state is charged as operator FLOPs: one per state element written
  CHECK(transitions["project"][0]["op_flops"].get<double>() > transitions["reset"][0]["op_flops"].get<double>());
  CHECK(std::isfinite(final_loss["project"]));
  CHECK(final_loss["project"] != final_loss["reset"]);
}

TEST_CASE("optimizer_state: project resets, with a warning, where the optimizer changes", "[projection][vcycle]") {
  test::TempDir dir("mismatch");
  test::prepare_fixture_corpus(dir.str("data"));
  const std::string out = dir.str("out");
  test::write_text(dir.str("c.yaml"), cycle_config(dir.str("data"), out, "project", {"adamw", "came", "came"}));
  const RunConfig cfg = load_config(dir.str("c.yaml"));
  auto adapter = make_model(cfg);
  std::string warnings;
  {
    CaptureCerr capture;
    run_cycle(cfg, *adapter, cfg.phases, out, CycleOptions{false, "mismatch", true});
    warnings = capture.text.str();
  }
  const auto rows = rows_of(out + "/metrics.jsonl", "transition");
  REQUIRE(rows.size() == 2);
  CHECK(rows[0]["optimizer_state"] == "reset");  // adamw -> came
  CHECK(rows[0]["optimizer_state_bytes"].get<int64_t>() == 0);
  CHECK(rows[1]["optimizer_state"] == "project");  // came -> came
  CHECK(rows[1]["optimizer_state_bytes"].get<int64_t>() > 0);
  CHECK_THAT(warnings, Catch::Contains("phase 2 uses came but phase 1 used adamw"));
}

TEST_CASE("optimizer_state: project resumes exactly across level changes", "[projection][vcycle][resume]") {
  test::TempDir dir("presume");
  test::prepare_fixture_corpus(dir.str("data"));
  test::write_text(dir.str("a.yaml"), cycle_config(dir.str("data"), dir.str("a"), "project", {"came", "came", "came"}));
  test::write_text(dir.str("b.yaml"), cycle_config(dir.str("data"), dir.str("b"), "project", {"came", "came", "came"}));
  const RunConfig cfg_a = load_config(dir.str("a.yaml"));
  auto gpt_a = make_model(cfg_a);
  run_cycle(cfg_a, *gpt_a, cfg_a.phases, dir.str("a"), CycleOptions{false, "a", true});

  // Interrupted (hidden 32 is level 1, 16 level 2): (1) building the level-2 model, i.e. after
  // phase 1's end checkpoint and before the transition's: the finished phase's optimizer must come
  // back from the checkpoint to be projected; (2) in the first training step at level 2, right after
  // the transition's checkpoint: the projected state must come back; (3), (4) the same on the way
  // up (a resume at level 2 builds the level-1 model only in the transition). Each run resumes the
  // previous one; the last runs to the end.
  const RunConfig cfg = load_config(dir.str("b.yaml"));
  auto gpt = make_model(cfg);
  const std::string b = dir.str("b");
  constexpr int64_t kNone = -1;
  const std::vector<std::pair<int64_t, int64_t>> stops = {{16, kNone}, {kNone, 16}, {32, kNone}, {kNone, 32}};
  bool resume = false;
  for (size_t i = 0; i < stops.size(); ++i) {
    const auto [build_hidden, train_hidden] = stops[i];
    INFO("interrupt at build " << build_hidden << " / train " << train_hidden);
    InterruptingAdapter adapter(gpt, build_hidden, train_hidden);
    CHECK_THROWS_AS(run_cycle(cfg, adapter, cfg.phases, b, CycleOptions{resume, "b", true}), Interrupted);
    resume = true;
    // the checkpoint left behind: between phases 1|2 (2|3) or at step 0 of phase 2 (3), with an optimizer
    const Checkpoint left = load_checkpoint(b + "/checkpoint.ckpt");
    const json meta = json::parse(left.meta_json);
    CHECK(meta["phase"].get<int>() == (i < 2 ? 1 : 2));
    CHECK(meta["entered"].get<bool>() == (i % 2 == 1));
    CHECK(meta["step"].get<int64_t>() == 0);
    CHECK(left.blobs.count("optimizer") == 1);
  }
  run_cycle(cfg, *gpt, cfg.phases, b, CycleOptions{true, "b", true});

  const Checkpoint ca = load_checkpoint(dir.str("a/checkpoint.ckpt"));
  const Checkpoint cb = load_checkpoint(dir.str("b/checkpoint.ckpt"));
  REQUIRE(ca.tensors.size() == cb.tensors.size());
  for (const auto& [name, t] : ca.tensors) {
    INFO(name);
    CHECK(torch::equal(t, cb.tensors.at(name)));
  }
  auto timeless = [](std::vector<json> rows) {
    for (auto& r : rows) {
      for (const char* k : {"wall_s", "eval_wall_s", "tokens_per_s", "phase_wall", "model_flops_per_s", "mfu"}) r.erase(k);
    }
    return rows;
  };
  const auto rows_a = timeless(rows_of(dir.str("a/metrics.jsonl")));
  const auto rows_b = timeless(rows_of(dir.str("b/metrics.jsonl")));
  CHECK(rows_a.size() == rows_b.size());
  CHECK(rows_a == rows_b);
}
