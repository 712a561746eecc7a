// The fused CPU attention (src/models/fused_attention.cpp) against the unfused product —
// softmax(q·kᵀ/sqrt(h)) with the future masked, times v — written out here with ATen ops: outputs and
// the gradients of q, k and v, in fp64 (where the two differ only by rounding, ~1e-15, so 1e-10
// catches any real error), in bf16 against an fp32 reference, and through a whole GPT.

#include <cmath>
#include <limits>
#include <set>
#include <string>
#include <tuple>

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include "vcycle/core/errors.h"
#include "vcycle/models/attention.h"
#include "vcycle/models/cpu_kernels.h"
#include "vcycle/models/fused_attention.h"
#include "vcycle/models/gpt/gpt.h"

#include "test_util.h"

// Catch last: LibTorch pulls in glog, whose CHECK macro must not replace Catch's.
#include <catch2/catch.hpp>

using namespace vcycle;

namespace {

torch::Tensor reference(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, bool causal) {
  auto scores = torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(static_cast<double>(q.size(-1)));
  if (causal) {
    const int64_t t = q.size(-2);
    const auto future = torch::ones({t, t}, torch::kBool).triu(1);
    scores = scores.masked_fill(future, -std::numeric_limits<double>::infinity());
  }
  return torch::matmul(torch::softmax(scores, -1), v);
}

double max_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

// q, k, v of shape (B, H, T, h) as SelfAttention makes them: non-contiguous views of one (B, T, 3, H, h)
// tensor, leaves that require grad.
std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> qkv(int64_t b, int64_t heads, int64_t t, int64_t h,
                                                             torch::ScalarType dtype) {
  auto all = torch::randn({b, t, 3, heads, h}, torch::kDouble).to(dtype).requires_grad_();
  auto parts = all.permute({2, 0, 3, 1, 4});
  return {parts[0], parts[1], parts[2]};
}

struct Diffs {
  double y, dq, dk, dv;
};

// Output and input gradients (for one random upstream gradient) of fused_attention and of `ref_dtype`
// reference on the same values.
Diffs compare(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, bool causal,
              torch::ScalarType ref_dtype) {
  const auto go = torch::randn(q.sizes(), torch::kDouble);
  auto y = fused_attention(q, k, v, causal);
  REQUIRE(y.sizes() == q.sizes());
  const auto g = torch::autograd::grad({y}, {q, k, v}, {go.to(y.scalar_type())});
  auto rq = q.detach().to(ref_dtype).requires_grad_(), rk = k.detach().to(ref_dtype).requires_grad_(),
       rv = v.detach().to(ref_dtype).requires_grad_();
  auto ry = reference(rq, rk, rv, causal);
  const auto rg = torch::autograd::grad({ry}, {rq, rk, rv}, {go.to(ref_dtype)});
  for (int i = 0; i < 3; ++i) REQUIRE(g[i].scalar_type() == std::vector<torch::Tensor>{q, k, v}[i].scalar_type());
  return {max_diff(y, ry), max_diff(g[0], rg[0]), max_diff(g[1], rg[1]), max_diff(g[2], rg[2])};
}

}  // namespace

TEST_CASE("fused attention matches the unfused product and its gradients in fp64", "[models][attention]") {
  torch::manual_seed(1);
  test::ScopedThreads threads(2);  // B·H > threads: the tiles are shared out between threads
  // T: one row, fewer rows than a tile, one more than two tiles (64); head sizes 64 and odd ones.
  for (const auto& [b, heads, t, h] : std::vector<std::tuple<int64_t, int64_t, int64_t, int64_t>>{
           {1, 1, 1, 64}, {2, 3, 7, 64}, {2, 3, 130, 64}, {1, 5, 130, 37}, {3, 1, 65, 5}, {1, 2, 200, 33}}) {
    for (bool causal : {true, false}) {
      auto [q, k, v] = qkv(b, heads, t, h, torch::kDouble);
      if (t > 1 && heads > 1) CHECK_FALSE(q.is_contiguous());
      const Diffs d = compare(q, k, v, causal, torch::kDouble);
      INFO("B " << b << " H " << heads << " T " << t << " h " << h << " causal " << causal << ": y " << d.y << " dq "
                << d.dq << " dk " << d.dk << " dv " << d.dv);
      CHECK(d.y < 1e-10);
      CHECK(d.dq < 1e-10);
      CHECK(d.dk < 1e-10);
      CHECK(d.dv < 1e-10);
    }
  }
}

TEST_CASE("fused attention takes contiguous and other-rank inputs too", "[models][attention]") {
  torch::manual_seed(5);
  // (B·H, T, h) contiguous, and (B, H, T, h) contiguous.
  for (const auto& shape : std::vector<std::vector<int64_t>>{{6, 70, 16}, {2, 3, 70, 16}}) {
    auto mk = [&] { return torch::randn(shape, torch::kDouble).requires_grad_(); };
    const auto q = mk(), k = mk(), v = mk();
    const Diffs d = compare(q, k, v, true, torch::kDouble);
    INFO("shape " << torch::IntArrayRef(shape) << ": y " << d.y << " dq " << d.dq << " dk " << d.dk << " dv " << d.dv);
    CHECK(std::max({d.y, d.dq, d.dk, d.dv}) < 1e-10);
  }
}

TEST_CASE("fused attention is causal: an output row does not depend on later positions", "[models][attention]") {
  torch::manual_seed(2);
  auto [q, k, v] = qkv(1, 2, 100, 16, torch::kDouble);
  const auto y = fused_attention(q, k, v, true).detach();
  // Change keys and values from position 70 on: rows before 70 stay exactly as they were.
  auto k2 = k.detach().clone(), v2 = v.detach().clone();
  k2.narrow(2, 70, 30).normal_();
  v2.narrow(2, 70, 30).normal_();
  const auto y2 = fused_attention(q.detach(), k2, v2, true);
  CHECK(torch::equal(y.narrow(2, 0, 70), y2.narrow(2, 0, 70)));
  CHECK(max_diff(y.narrow(2, 70, 30), y2.narrow(2, 70, 30)) > 1e-3);
  // The first row attends to itself only: its output is v's first row.
  CHECK(max_diff(y.narrow(2, 0, 1), v.detach().narrow(2, 0, 1)) < 1e-15);
}

TEST_CASE("fused attention in fp32 and bf16 agrees with the fp32 reference to their rounding", "[models][attention]") {
  torch::manual_seed(3);
  for (bool causal : {true, false}) {
    {
      auto [q, k, v] = qkv(2, 4, 130, 64, torch::kFloat);
      const Diffs d = compare(q, k, v, causal, torch::kDouble);
      INFO("fp32 causal " << causal << ": y " << d.y << " dq " << d.dq << " dk " << d.dk << " dv " << d.dv);
      // Float rounding of sums over 64 products and 130 weights: a few 1e-7 seen; 1e-5 is 100 ulps of 1.
      CHECK(std::max({d.y, d.dq, d.dk, d.dv}) < 1e-5);
    }
    {
      // bf16 inputs: computed in float, returned (and the gradients) in bf16, so the difference to the
      // fp32 reference on the same (bf16) values is the result's rounding, 2^-9 relative of values up
      // to about 4: seen up to 0.008 (outputs) and 0.014 (gradients).
      auto [q, k, v] = qkv(2, 4, 130, 64, torch::kBFloat16);
      auto y = fused_attention(q, k, v, causal);
      CHECK(y.scalar_type() == torch::kBFloat16);
      const Diffs d = compare(q, k, v, causal, torch::kFloat);
      INFO("bf16 causal " << causal << ": y " << d.y << " dq " << d.dq << " dk " << d.dk << " dv " << d.dv);
      CHECK(d.y < 2e-2);
      CHECK(std::max({d.dq, d.dk, d.dv}) < 5e-2);
    }
  }
  // Mixed dtypes are promoted: float q with double k and v computes (and returns) double.
  auto [q, k, v] = qkv(1, 2, 9, 8, torch::kDouble);
  const auto qf = q.detach().to(torch::kFloat).requires_grad_();
  const auto y = fused_attention(qf, k, v, true);
  CHECK(y.scalar_type() == torch::kDouble);
  CHECK(max_diff(y, reference(qf.detach().to(torch::kDouble), k, v, true)) < 1e-12);
  CHECK(torch::autograd::grad({y.sum()}, {qf})[0].scalar_type() == torch::kFloat);
}

TEST_CASE("fused_attention_qkv matches the unfused product from a qkv projection, and its gradient", "[models][attention]") {
  torch::manual_seed(6);
  test::ScopedThreads threads(2);
  // Against the reference in fp64, and bit for bit against fused_attention on the split views (the same
  // arithmetic, only the layouts of the output and the gradient differ) in fp32 and fp64.
  for (const auto& [b, heads, t, h] : std::vector<std::tuple<int64_t, int64_t, int64_t, int64_t>>{
           {2, 3, 70, 8}, {1, 1, 1, 64}, {3, 2, 130, 33}}) {
    for (bool causal : {true, false}) {
      for (auto dtype : {torch::kDouble, torch::kFloat}) {
        INFO("B " << b << " H " << heads << " T " << t << " h " << h << " causal " << causal << " " << dtype);
        const auto qkv_in = torch::randn({b, t, 3 * heads * h}, torch::kDouble).to(dtype).requires_grad_();
        const auto go = torch::randn({b, t, heads * h}, torch::kDouble).to(dtype);
        const auto y = fused_attention_qkv(qkv_in, heads, causal);
        REQUIRE(y.sizes() == torch::IntArrayRef({b, t, heads * h}));
        CHECK(y.is_contiguous());
        const auto g = torch::autograd::grad({y}, {qkv_in}, {go})[0];
        CHECK(g.sizes() == qkv_in.sizes());

        const auto split = [&](const torch::Tensor& x) {
          return x.view({b, t, 3, heads, h}).permute({2, 0, 3, 1, 4}).unbind(0);
        };
        const auto merge = [&](const torch::Tensor& y4) { return y4.transpose(1, 2).reshape({b, t, heads * h}); };
        const auto other = qkv_in.detach().clone().requires_grad_();
        const auto p = split(other);
        const auto y_split = merge(fused_attention(p[0], p[1], p[2], causal));
        CHECK(torch::equal(y, y_split));
        CHECK(torch::equal(g, torch::autograd::grad({y_split}, {other}, {go})[0]));

        if (dtype == torch::kDouble) {
          const auto ref_in = qkv_in.detach().clone().requires_grad_();
          const auto r = split(ref_in);
          const auto y_ref = merge(reference(r[0], r[1], r[2], causal));
          CHECK(max_diff(y, y_ref) < 1e-10);
          CHECK(max_diff(g, torch::autograd::grad({y_ref}, {ref_in}, {go})[0]) < 1e-10);
        }
      }
    }
  }
  // bf16 is computed in float and returned, with its gradient, in bf16.
  const auto xb = torch::randn({1, 9, 3 * 2 * 8}).to(torch::kBFloat16).requires_grad_();
  const auto yb = fused_attention_qkv(xb, 2, true);
  CHECK(yb.scalar_type() == torch::kBFloat16);
  CHECK(torch::autograd::grad({yb.sum()}, {xb})[0].scalar_type() == torch::kBFloat16);
  CHECK_THROWS_WITH(fused_attention_qkv(torch::randn({1, 4, 20}), 2, true),
                    Catch::Contains("fused_attention_qkv") && Catch::Contains("[1, 4, 20]"));
  CHECK_THROWS_WITH(fused_attention_qkv(torch::randn({4, 24}), 2, true), Catch::Contains("(batch, time"));
  CHECK_THROWS_WITH(fused_attention_qkv(torch::randn({1, 4, 24}), 0, true), Catch::Contains("heads must be >= 1"));
  CHECK_THROWS_WITH(fused_attention_qkv(torch::randn({1, 4, 24}).to(torch::kInt), 2, true),
                    Catch::Contains("qkv: dtype"));
}

TEST_CASE("SelfAttention takes fused_attention_qkv for fp32, fp64 and bf16 on the CPU unless the ATen kernels are chosen", "[models][attention]") {
  torch::manual_seed(7);
  SelfAttention attn(16, 2, 8, /*causal=*/true);
  const auto x = torch::randn({2, 5, 16});
  // Whether the output's autograd graph holds a node of that name.
  const auto graph_has = [](const torch::Tensor& y, const std::string& node) {
    std::vector<torch::autograd::Node*> todo{y.grad_fn().get()};
    std::set<torch::autograd::Node*> seen;
    while (!todo.empty()) {
      auto* n = todo.back();
      todo.pop_back();
      if (n == nullptr || !seen.insert(n).second) continue;
      if (n->name().find(node) != std::string::npos) return true;
      for (const auto& e : n->next_edges()) todo.push_back(e.function.get());
    }
    return false;
  };
  for (auto dtype : {torch::kFloat, torch::kDouble}) {
    attn->to(dtype);
    const auto xd = x.to(dtype);
    {
      test::ScopedCpuKernels kernels(CpuKernels::fused);
      CHECK(graph_has(attn->forward(xd), "FusedQkvAttention"));
    }
    {
      test::ScopedCpuKernels kernels(CpuKernels::aten);
      CHECK_FALSE(graph_has(attn->forward(xd), "Fused"));
    }
  }
  // bf16 too (computed in float; attention() keeps bf16 on LibTorch's ops).
  attn->to(torch::kBFloat16);
  test::ScopedCpuKernels kernels(CpuKernels::fused);
  CHECK(graph_has(attn->forward(x.to(torch::kBFloat16)), "FusedQkvAttention"));
}

TEST_CASE("fused attention refuses shapes it cannot take", "[models][attention]") {
  const auto x = torch::randn({1, 2, 4, 8});
  CHECK_THROWS_WITH(fused_attention(x, torch::randn({1, 2, 5, 8}), x, true), Catch::Contains("same shape"));
  CHECK_THROWS_WITH(fused_attention(x.to(torch::kInt), x, x, true), Catch::Contains("dtype"));
}

TEST_CASE("attention() takes the fused kernel for fp32 and fp64 on the CPU unless the ATen kernels are chosen", "[models][attention]") {
  auto [q, k, v] = qkv(1, 2, 9, 8, torch::kDouble);
  const auto name = [&] { return attention(q, k, v, true).grad_fn()->name(); };
  {
    test::ScopedCpuKernels kernels(CpuKernels::fused);
    CHECK(name().find("FusedAttention") != std::string::npos);
  }
  {
    test::ScopedCpuKernels kernels(CpuKernels::aten);
    CHECK(name().find("FusedAttention") == std::string::npos);
  }
  {
    // bf16 stays on LibTorch's bf16 GEMMs even with the fused kernels chosen.
    test::ScopedCpuKernels kernels(CpuKernels::fused);
    const auto qb = q.to(torch::kBFloat16), kb = k.to(torch::kBFloat16), vb = v.to(torch::kBFloat16);
    CHECK(attention(qb, kb, vb, true).grad_fn()->name().find("FusedAttention") == std::string::npos);
  }
  CHECK(parse_cpu_kernels("aten", "x") == CpuKernels::aten);
  CHECK(to_string(CpuKernels::fused) == "fused");
  CHECK_THROWS_AS(parse_cpu_kernels("flash", "VCYCLE_KERNELS"), InputError);
  CHECK_THROWS_WITH(parse_cpu_kernels("flash", "VCYCLE_KERNELS"),
                    Catch::Contains("VCYCLE_KERNELS") && Catch::Contains("valid: fused, aten"));
}

TEST_CASE("a GPT's loss and gradients are the same with the fused and the ATen CPU kernels in fp64", "[models][attention]") {
  GPTConfig cfg;
  cfg.layers = 2; cfg.hidden = 32; cfg.heads = 4; cfg.head_size = 8; cfg.ffn = 64; cfg.context = 80; cfg.vocab = 50;
  torch::manual_seed(4);
  GPT model(cfg);
  model->to(torch::kDouble);
  const auto x = torch::randint(0, cfg.vocab, {3, 70}, torch::kLong);
  const auto y = torch::randint(0, cfg.vocab, {3, 70}, torch::kLong);
  const auto params = model->parameters();
  auto run = [&](CpuKernels k) {
    test::ScopedCpuKernels kernels(k);
    const auto loss = model->loss(x, y);
    auto grads = torch::autograd::grad({loss}, params);
    return std::make_pair(loss.item<double>(), grads);
  };
  const auto [fused_loss, fused_grads] = run(CpuKernels::fused);
  const auto [aten_loss, aten_grads] = run(CpuKernels::aten);
  CHECK(std::abs(fused_loss - aten_loss) < 1e-12);
  REQUIRE(fused_grads.size() == aten_grads.size());
  double worst = 0, largest = 0;
  for (size_t i = 0; i < fused_grads.size(); ++i) {
    worst = std::max(worst, max_diff(fused_grads[i], aten_grads[i]));
    largest = std::max(largest, aten_grads[i].abs().max().item<double>());
  }
  INFO("largest gradient difference " << worst << ", largest gradient " << largest);
  CHECK(largest > 1e-3);  // the comparison is not between zeros
  CHECK(worst < 1e-10);
}
