// LoRA layers (src/models/lora.cpp): exact identity at injection, the forward really goes through the
// adapters, merge/unmerge, frozen base, target patterns, and the adapters-only file.

#include <filesystem>
#include <functional>

#include <torch/torch.h>

#include "../../examples/custom_model/llama.h"
#include "test_util.h"
#include "vcycle/core/checkpoint.h"
#include "vcycle/core/errors.h"
#include "vcycle/models/lora.h"
#include "vcycle/models/bert/bert.h"
#include "vcycle/models/gpt/gpt.h"
#include "vcycle/models/vit/vit.h"
#include "vcycle/optim/registry.h"

// Catch last: LibTorch pulls in glog, whose CHECK macro must not replace Catch's.
#include <catch2/catch.hpp>

using namespace vcycle;

namespace {

const std::vector<std::string> kAllTargets = {"attn.qkv", "attn.proj", "mlp.fc", "mlp.proj"};

GPTConfig tiny_config(int64_t hidden = 32) {
  GPTConfig cfg;
  cfg.layers = 2; cfg.hidden = hidden; cfg.heads = 4; cfg.head_size = hidden / 4; cfg.ffn = 2 * hidden;
  cfg.context = 16; cfg.vocab = 50;
  return cfg;
}

torch::Tensor tokens() {
  torch::manual_seed(99);
  return torch::randint(0, 50, {3, 12}, torch::kLong);
}

// Gives every B a non-zero value, so that the adapters change the output.
void randomize_b(torch::nn::Module& m) {
  torch::NoGradGuard no_grad;
  for (auto& [name, layer] : lora::lora_layers(m)) layer->lora_B.normal_(0.0, 0.05);
}

// A user's module that keeps its Linear in a member holder and calls it directly: inject() cannot
// redirect that call, and require_routed() must say so.
struct DirectImpl : torch::nn::Module {
  DirectImpl() { fc = register_module("fc", torch::nn::Linear(8, 8)); }
  torch::Tensor forward(const torch::Tensor& x) { return fc->forward(x); }
  torch::nn::Linear fc{nullptr};
};

// The same module written for LoRA: calls its child by registered name.
struct RoutedImpl : torch::nn::Module {
  RoutedImpl() { fc = register_module("fc", torch::nn::Linear(8, 8)); }
  torch::Tensor forward(const torch::Tensor& x) { return lora::linear_forward(*this, "fc", x); }
  torch::nn::Linear fc{nullptr};
};

}  // namespace

TEST_CASE("lora: at injection the GPT's logits are bitwise the base model's", "[lora]") {
  for (bool tied : {true, false}) {
    torch::manual_seed(1);
    auto cfg = tiny_config();
    cfg.tied_embeddings = tied;
    GPT model(cfg);
    const auto idx = tokens();
    const auto before = model->forward(idx);
    auto targets = kAllTargets;
    if (!tied) targets.push_back("head");
    const auto wrapped = lora::inject(*model, targets, lora::LoRAOptions().r(8).alpha(16));
    CHECK(wrapped.size() == (tied ? 8u : 9u));
    CHECK(wrapped.front() == "blocks.0.attn.qkv");
    const auto after = model->forward(idx);
    CHECK(torch::equal(before, after));
    // Base names unchanged (the base checkpoint still loads), adapters added beside them.
    const auto params = model->named_parameters();
    CHECK(params.contains("blocks.1.mlp.fc.weight"));
    CHECK(params.contains("blocks.1.mlp.fc.bias"));
    CHECK(params["blocks.1.mlp.fc.lora_A"].sizes() == torch::IntArrayRef({8, 32}));
    CHECK(params["blocks.1.mlp.fc.lora_B"].sizes() == torch::IntArrayRef({64, 8}));
    // Dropout on the adapter path does not change the identity either: B is still zero.
    model->train();
  }
}

TEST_CASE("lora: the forward goes through the adapters (GPT, LLaMA example, a user's module)", "[lora]") {
  torch::manual_seed(2);
  GPT model(tiny_config());
  const auto idx = tokens();
  const auto base = model->forward(idx);
  lora::inject(*model, {"mlp.*"}, lora::LoRAOptions().r(4));
  const auto zero_b = model->forward(idx);
  CHECK_NOTHROW(lora::require_routed(*model));
  randomize_b(*model);
  const auto adapted = model->forward(idx);
  CHECK(torch::equal(base, zero_b));
  CHECK((adapted - base).abs().max().item<double>() > 1e-3);

  torch::manual_seed(3);
  llama::LlamaConfig lc;
  lc.layers = 2; lc.hidden = 32; lc.heads = 4; lc.head_size = 8; lc.ffn = 48; lc.context = 16; lc.vocab = 50;
  llama::Llama lm(lc);
  const auto lm_base = lm->forward(idx);
  const auto lm_wrapped = lora::inject(*lm, {"self_attn.*_proj", "mlp.**"}, lora::LoRAOptions().r(4));
  CHECK(lm_wrapped.size() == 2u * 7u);
  CHECK(torch::equal(lm_base, lm->forward(idx)));
  CHECK_NOTHROW(lora::require_routed(*lm));
  randomize_b(*lm);
  CHECK((lm->forward(idx) - lm_base).abs().max().item<double>() > 1e-3);

  // A module that calls its member holder bypasses the wrapper; require_routed() names the layer.
  auto direct = std::make_shared<DirectImpl>();
  lora::inject(*direct, {"fc"}, lora::LoRAOptions().r(2));
  direct->forward(torch::randn({2, 8}));
  CHECK_THROWS_WITH(lora::require_routed(*direct), Catch::Contains("fc") && Catch::Contains("linear_forward"));
  auto routed = std::make_shared<RoutedImpl>();
  lora::inject(*routed, {"fc"}, lora::LoRAOptions().r(2));
  routed->forward(torch::randn({2, 8}));
  CHECK_NOTHROW(lora::require_routed(*routed));
}

TEST_CASE("lora: merge then unmerge restores W, and the merged model computes the adapter output", "[lora]") {
  torch::manual_seed(4);
  GPT model(tiny_config());
  lora::inject(*model, kAllTargets, lora::LoRAOptions().r(8).alpha(16));
  randomize_b(*model);
  const auto idx = tokens();
  const auto adapted = model->forward(idx);
  std::map<std::string, torch::Tensor> w0;
  for (auto& [name, layer] : lora::lora_layers(*model)) w0[name] = layer->weight.clone();

  lora::merge(*model);
  const auto merged = model->forward(idx);
  for (auto& [name, layer] : lora::lora_layers(*model)) {
    CHECK(layer->merged());
    // W' - W is exactly the low-rank update (α/r)·B·A.
    const auto expect = torch::matmul(layer->lora_B, layer->lora_A) * layer->scale();
    CHECK(torch::allclose(layer->weight - w0[name], expect, 1e-5, 1e-6));
  }
  // float32 rounding of W + ΔW differs from computing W·x + B·A·x separately; 1e-4 on logits of O(1).
  CHECK(torch::allclose(merged, adapted, 1e-4, 1e-4));

  lora::unmerge(*model);
  for (auto& [name, layer] : lora::lora_layers(*model)) {
    INFO(name);
    CHECK(!layer->merged());
    // Adding and subtracting the same ΔW rounds at most one ulp of W (|W| ~ 0.02-0.1): well below 1e-6.
    CHECK((layer->weight - w0[name]).abs().max().item<double>() <= 1e-6);
  }
  CHECK(torch::allclose(model->forward(idx), adapted, 1e-5, 1e-6));
}

TEST_CASE("lora: only A and B get gradients and only they reach the optimizer", "[lora]") {
  torch::manual_seed(5);
  GPT model(tiny_config());
  const auto wrapped = lora::inject(*model, kAllTargets, lora::LoRAOptions().r(4).dropout(0.1));
  for (const auto& item : model->named_parameters()) {
    INFO(item.key());
    const bool adapter = item.key().find(".lora_") != std::string::npos;
    CHECK(item.value().requires_grad() == adapter);
  }
  const auto params = lora::adapter_parameters(*model);
  REQUIRE(params.size() == 2 * wrapped.size());
  auto opt = optim::make_optimizer("adamw", params, 1e-2, YAML::Node(), "test");
  size_t in_optimizer = 0;
  for (const auto& group : opt->param_groups()) in_optimizer += group.params().size();
  CHECK(in_optimizer == params.size());

  std::map<std::string, torch::Tensor> frozen;
  for (const auto& item : model->named_parameters()) {
    if (item.key().find(".lora_") == std::string::npos) frozen[item.key()] = item.value().clone();
  }
  auto idx = tokens();
  model->loss(idx, idx.roll(1, 1)).backward();
  for (const auto& item : model->named_parameters()) {
    INFO(item.key());
    const bool adapter = item.key().find(".lora_") != std::string::npos;
    // B starts at zero, so A's first gradient is zero too (∂/∂A ∝ Bᵀ); B's is not.
    if (adapter) CHECK(item.value().grad().defined());
    else CHECK_FALSE(item.value().grad().defined());
  }
  for (const auto& [name, p] : params) {
    if (name.find("lora_B") != std::string::npos) CHECK(p.grad().abs().sum().item<double>() > 0);
  }
  opt->step();
  for (const auto& item : model->named_parameters()) {
    if (frozen.count(item.key())) CHECK(torch::equal(item.value(), frozen[item.key()]));
  }
  CHECK(optim::state_bytes(*opt) == 2 * 4 * [&] { int64_t n = 0; for (auto& [k, p] : params) n += p.numel(); return n; }());
}

TEST_CASE("lora: target patterns — suffix globs, regexes, and errors naming the pattern", "[lora]") {
  CHECK(lora::pattern_matches("attn.qkv", "blocks.3.attn.qkv"));
  CHECK_FALSE(lora::pattern_matches("attn.qkv", "blocks.3.xattn.qkv"));
  CHECK(lora::pattern_matches("mlp.*", "blocks.0.mlp.fc"));
  CHECK_FALSE(lora::pattern_matches("blocks.*", "blocks.0.mlp.fc"));  // * is one component
  CHECK(lora::pattern_matches("blocks.**", "blocks.0.mlp.fc"));
  CHECK(lora::pattern_matches("re:blocks\\.[01]\\.attn\\..*", "blocks.1.attn.proj"));
  CHECK_FALSE(lora::pattern_matches("re:attn\\.qkv", "blocks.1.attn.qkv"));  // regexes match whole names

  torch::manual_seed(6);
  GPT model(tiny_config());
  CHECK_THROWS_WITH(lora::inject(*model, {"attn.qkv", "attn.nothing"}, lora::LoRAOptions()),
                    Catch::Contains("'attn.nothing'") && Catch::Contains("blocks.0.attn.qkv"));
  CHECK(lora::lora_layers(*model).empty());  // a failed inject changes nothing
  CHECK_THROWS_WITH(lora::inject(*model, {"re:("}, lora::LoRAOptions()), Catch::Contains("re:("));
  CHECK_THROWS_WITH(lora::inject(*model, {"attn.qkv"}, lora::LoRAOptions().r(33)),
                    Catch::Contains("r=33") && Catch::Contains("blocks.0.attn.qkv") && Catch::Contains("[96, 32]"));
  CHECK_THROWS_AS(lora::inject(*model, {"attn"}, lora::LoRAOptions()), InputError);  // not a Linear
  lora::inject(*model, {"attn.qkv"}, lora::LoRAOptions().r(2));
  CHECK_THROWS_WITH(lora::inject(*model, {"mlp.fc"}, lora::LoRAOptions()), Catch::Contains("already"));
}

TEST_CASE("lora: the adapters-only file has the expected size and round-trips", "[lora]") {
  test::TempDir dir("lora_file");
  torch::manual_seed(7);
  GPT model(tiny_config());
  const TensorMap base = [&] { TensorMap m; for (auto& i : model->named_parameters()) m[i.key()] = i.value().clone(); return m; }();
  const int64_t r = 8;
  const auto wrapped = lora::inject(*model, kAllTargets, lora::LoRAOptions().r(r).alpha(16));
  randomize_b(*model);
  const auto idx = tokens();
  const auto adapted = model->forward(idx);
  const std::string path = dir.str("a.lora");
  lora::save_adapters(*model, path);

  // Payload: float32 A (r × in) and B (out × r) per layer. Per layer: qkv 32→96, proj 32→32,
  // fc 32→64, proj 64→32.
  int64_t payload = 0;
  for (auto [in, out] : {std::pair<int64_t, int64_t>{32, 96}, {32, 32}, {32, 64}, {64, 32}}) payload += 4 * r * (in + out);
  payload *= 2;  // layers
  const auto size = static_cast<int64_t>(std::filesystem::file_size(path));
  INFO("file " << size << " bytes, payload " << payload);
  CHECK(size >= payload);
  // The rest is the checkpoint header, the JSON meta and the torch archive's per-tensor records
  // (zip headers, 64-byte alignment, pickled names): a few hundred bytes per tensor, not the model.
  CHECK(size <= payload + 2048 + 512 * 2 * static_cast<int64_t>(wrapped.size()));
  int64_t model_bytes = 0;
  for (auto& [k, t] : base) model_bytes += 4 * t.numel();
  CHECK(size < model_bytes / 2);

  const auto file = lora::read_adapters(path);
  CHECK(file.options.r() == r);
  CHECK(file.options.alpha() == 16);
  CHECK(file.layers == wrapped);

  // Round trip: a fresh model with the same base weights + the file computes the same function.
  torch::manual_seed(8);
  GPT other(tiny_config());
  load_module_tensors(*other, base, "base");
  CHECK(lora::load_adapters(*other, path) == wrapped);
  CHECK(torch::equal(other->forward(idx), adapted));
  for (auto& [name, t] : lora::adapter_parameters(*other)) {
    INFO(name);
    CHECK(t.requires_grad());
  }
  // Loading into a model that is already injected (and merged) gives the same result too.
  lora::merge(*other);
  CHECK(lora::load_adapters(*other, path) == wrapped);
  CHECK(torch::allclose(other->forward(idx), adapted, 1e-4, 1e-4));
}

TEST_CASE("lora: a mismatched adapter file names the tensor and both shapes", "[lora]") {
  test::TempDir dir("lora_bad");
  torch::manual_seed(9);
  GPT small(tiny_config(32));
  lora::inject(*small, kAllTargets, lora::LoRAOptions().r(4));
  lora::save_adapters(*small, dir.str("small.lora"));

  GPT wide(tiny_config(48));
  CHECK_THROWS_WITH(lora::load_adapters(*wide, dir.str("small.lora")),
                    Catch::Contains("blocks.0.attn.qkv.lora_A") && Catch::Contains("[4, 32]") && Catch::Contains("[4, 48]"));

  GPT other(tiny_config(32));
  lora::inject(*other, {"mlp.fc"}, lora::LoRAOptions().r(4));
  CHECK_THROWS_WITH(lora::load_adapters(*other, dir.str("small.lora")), Catch::Contains("blocks.0.attn.qkv"));

  // A run checkpoint is not an adapter file.
  Checkpoint ckpt;
  ckpt.meta_json = "{}";
  save_checkpoint(dir.str("run.ckpt"), ckpt);
  CHECK_THROWS_WITH(lora::read_adapters(dir.str("run.ckpt")), Catch::Contains("not a LoRA adapter file"));
}

// ---------------------------------------------------------------------------- every built-in Linear
TEST_CASE("lora: every Linear of every built-in model goes through the LoRA path", "[lora]") {
  torch::manual_seed(21);
  GPTConfig gc = tiny_config();
  gc.tied_embeddings = false;  // the untied head is a Linear too
  GPT gpt(gc);
  BertConfig bc;
  bc.layers = 2; bc.hidden = 16; bc.heads = 2; bc.head_size = 8; bc.ffn = 32; bc.context = 12; bc.vocab = 50;
  Bert bert(bc);
  ViTConfig vc;
  vc.image_size = 8; vc.patch = 4; vc.classes = 3; vc.layers = 2; vc.hidden = 16; vc.heads = 2; vc.head_size = 8; vc.ffn = 32;
  ViT vit(vc);
  const auto count_linears = [](torch::nn::Module& m) {
    int n = 0;
    for (const auto& item : m.named_modules("", false)) n += std::dynamic_pointer_cast<torch::nn::LinearImpl>(item.value()) != nullptr;
    return n;
  };
  struct Case {
    const char* name;
    torch::nn::Module& module;
    std::function<torch::Tensor()> forward;
  };
  const auto idx = tokens();
  const auto images = torch::rand({2, 1, 8, 8});
  const std::vector<Case> cases = {{"gpt", *gpt, [&] { return gpt->forward(idx); }},
                                   {"bert", *bert, [&] { return bert->forward(idx); }},
                                   {"vit", *vit, [&] { return vit->forward(images); }}};
  for (const auto& c : cases) {
    INFO(c.name);
    const int linears = count_linears(c.module);
    const auto before = c.forward();
    // Every Linear, the fused qkv in slices: (L blocks × 4) + the family's own (head, MLM dense, patch embedding).
    const auto wrapped = lora::inject(c.module, {"re:^(?!.*qkv$).*$", "attn.qkv[q,v]"}, lora::LoRAOptions().r(2));
    CHECK(static_cast<int>(wrapped.size()) == linears);
    CHECK(count_linears(c.module) == 0);  // all replaced
    const auto after = c.forward();
    CHECK(torch::equal(before, after));  // B = 0: bitwise the base model
    CHECK_NOTHROW(lora::require_routed(c.module));
  }
}

// ---------------------------------------------------------------------------- slices of a fused weight
namespace {

// Gives every adapter B (whole or slice) a non-zero value.
void randomize_all_b(torch::nn::Module& m) {
  torch::NoGradGuard no_grad;
  for (auto& [name, p] : lora::adapter_parameters(m)) {
    if (name.find(".lora_B") != std::string::npos) p.normal_(0.0, 0.05);
  }
}

}  // namespace

TEST_CASE("lora: q,v slices of the fused qkv — merge adds (α/r)·B·A to the q and v rows only", "[lora]") {
  torch::manual_seed(31);
  GPT model(tiny_config());
  const auto wrapped = lora::inject(*model, {"attn.qkv[q,v]"}, lora::LoRAOptions().r(4).alpha(8));
  CHECK(wrapped == std::vector<std::string>{"blocks.0.attn.qkv", "blocks.1.attn.qkv"});
  std::map<std::string, torch::Tensor> params;
  for (auto& [name, p] : lora::adapter_parameters(*model)) params[name] = p;
  CHECK(params.size() == 8);  // 2 layers × (q, v) × (A, B)
  CHECK(params.at("blocks.0.attn.qkv.lora_A_q").sizes() == torch::IntArrayRef({4, 32}));
  CHECK(params.at("blocks.0.attn.qkv.lora_B_v").sizes() == torch::IntArrayRef({32, 4}));
  CHECK(params.count("blocks.0.attn.qkv.lora_B_k") == 0);
  CHECK(params.count("blocks.0.attn.qkv.lora_A") == 0);
  randomize_all_b(*model);
  const auto idx = tokens();
  const auto adapted = model->forward(idx);

  std::map<std::string, torch::Tensor> w0;
  for (auto& [name, layer] : lora::lora_layers(*model)) w0[name] = layer->weight.clone();
  lora::merge(*model);
  const int64_t n = 32;  // rows per slice: H·h
  for (auto& [name, layer] : lora::lora_layers(*model)) {
    INFO(name);
    REQUIRE(layer->sliced());
    REQUIRE(layer->slices().size() == 2);
    const auto& q = layer->slices()[0];
    const auto& v = layer->slices()[1];
    CHECK((q.spec.name == "q" && q.spec.start == 0 && q.spec.rows == n));
    CHECK((v.spec.name == "v" && v.spec.start == 2 * n && v.spec.rows == n));
    const double scale = 8.0 / 4.0;
    // q and v rows: W + (α/r)·B·A (fp32 rounding of one addition: 1e-6 absolute at |W| ~ 0.1).
    CHECK(torch::allclose(layer->weight.narrow(0, 0, n), w0[name].narrow(0, 0, n) + scale * torch::matmul(q.B, q.A), 1e-5, 1e-6));
    CHECK(torch::allclose(layer->weight.narrow(0, 2 * n, n), w0[name].narrow(0, 2 * n, n) + scale * torch::matmul(v.B, v.A),
                          1e-5, 1e-6));
    CHECK_FALSE(torch::equal(layer->weight.narrow(0, 0, n), w0[name].narrow(0, 0, n)));
    // k rows: bitwise untouched.
    CHECK(torch::equal(layer->weight.narrow(0, n, n), w0[name].narrow(0, n, n)));
  }
  CHECK(torch::allclose(model->forward(idx), adapted, 1e-4, 1e-4));
  lora::unmerge(*model);
  for (auto& [name, layer] : lora::lora_layers(*model)) {
    CHECK(torch::equal(layer->weight.narrow(0, n, n), w0[name].narrow(0, n, n)));
    CHECK((layer->weight - w0[name]).abs().max().item<double>() <= 1e-6);
  }

  // The adapters-only file keeps the slices; a fresh model loads them and computes the same function.
  test::TempDir dir("lora_slices");
  lora::save_adapters(*model, dir.str("qv.lora"));
  const auto file = lora::read_adapters(dir.str("qv.lora"));
  REQUIRE(file.slices.count("blocks.1.attn.qkv") == 1);
  CHECK(file.slices.at("blocks.1.attn.qkv").size() == 2);
  CHECK(file.tensors.size() == 8);
  torch::manual_seed(31);
  GPT other(tiny_config());  // same seed: the same base weights
  CHECK(lora::load_adapters(*other, dir.str("qv.lora")) == wrapped);
  CHECK(torch::equal(other->forward(idx), adapted));
  // A model holding whole-layer adapters does not take them.
  torch::manual_seed(31);
  GPT whole(tiny_config());
  lora::inject(*whole, {"attn.qkv"}, lora::LoRAOptions().r(4).alpha(8));
  CHECK_THROWS_WITH(lora::load_adapters(*whole, dir.str("qv.lora")), Catch::Contains("[q,v]") && Catch::Contains("whole"));
}

TEST_CASE("lora: slice targets that cannot be honoured name the target and the valid slices", "[lora]") {
  GPT model(tiny_config());
  CHECK_THROWS_WITH(lora::inject(*model, {"attn.qkv[q,x]"}, lora::LoRAOptions().r(2)),
                    Catch::Contains("attn.qkv[q,x]") && Catch::Contains("no slice 'x'") && Catch::Contains("q, k, v"));
  CHECK_THROWS_WITH(lora::inject(*model, {"mlp.fc[q]"}, lora::LoRAOptions().r(2)),
                    Catch::Contains("mlp.fc[q]") && Catch::Contains("not a fused layer") && Catch::Contains("qkv = q, k, v"));
  CHECK_THROWS_WITH(lora::inject(*model, {"attn.qkv", "attn.qkv[v]"}, lora::LoRAOptions().r(2)),
                    Catch::Contains("both whole and in slices"));
  CHECK_THROWS_WITH(lora::inject(*model, {"attn.qkv[q,,v]"}, lora::LoRAOptions().r(2)), Catch::Contains("empty slice name"));
  CHECK_THROWS_WITH(lora::inject(*model, {"attn.qkv[q]"}, lora::LoRAOptions().r(33)),
                    Catch::Contains("slice 'q'") && Catch::Contains("r=33"));
  CHECK(lora::lora_layers(*model).empty());  // a failed inject changes nothing
  // Two targets naming slices of one layer add up.
  CHECK(lora::inject(*model, {"blocks.0.attn.qkv[v]", "attn.qkv[q]"}, lora::LoRAOptions().r(2)).size() == 2);
  CHECK(lora::lora_layers(*model)[0].second->slices().size() == 2);
  CHECK(lora::lora_layers(*model)[1].second->slices().size() == 1);
}

TEST_CASE("lora: fine-tuning the q,v slices changes no parameter but the adapters, bit for bit", "[lora]") {
  torch::manual_seed(41);
  GPT model(tiny_config());
  TensorMap base;
  for (auto& item : model->named_parameters()) base[item.key()] = item.value().clone();
  lora::inject(*model, {"attn.qkv[q,v]"}, lora::LoRAOptions().r(4).alpha(8));
  std::vector<torch::Tensor> trainable;
  for (auto& [name, p] : lora::adapter_parameters(*model)) trainable.push_back(p);
  // Weight decay on: it must reach the adapters only.
  torch::optim::AdamW opt(trainable, torch::optim::AdamWOptions(1e-2).weight_decay(0.1));
  const auto idx = tokens();
  const auto input = idx.narrow(1, 0, 11), target = idx.narrow(1, 1, 11);
  double first = 0, last = 0;
  for (int step = 0; step < 6; ++step) {
    opt.zero_grad();
    auto loss = model->loss(input, target);
    loss.backward();
    opt.step();
    (step == 0 ? first : last) = loss.item<double>();
  }
  CHECK(last < first);  // the adapters learned something
  int adapters = 0, frozen = 0;
  for (auto& item : model->named_parameters()) {
    INFO(item.key());
    if (item.key().find(".lora_") != std::string::npos) {
      ++adapters;
      CHECK(item.value().requires_grad());
      continue;
    }
    ++frozen;
    CHECK_FALSE(item.value().requires_grad());
    CHECK_FALSE(item.value().grad().defined());
    REQUIRE(base.count(item.key()) == 1);
    CHECK(torch::equal(item.value(), base.at(item.key())));
  }
  CHECK(adapters == 8);
  CHECK(frozen == static_cast<int>(base.size()));
  for (auto& [name, p] : lora::adapter_parameters(*model)) {
    if (name.find("lora_B") != std::string::npos) CHECK(p.abs().sum().item<double>() > 0);
  }
}
