// LR schedule and the report's crossing-point arithmetic, against hand-computed values.

#include <cmath>

#include "vcycle/config/run_config.h"
#include "vcycle/core/flops.h"
#include "vcycle/schedules/lr_schedule.h"
#include "vcycle/models/registry.h"
#include "vcycle/schedules/report.h"

// Catch last: LibTorch pulls in glog, whose CHECK macro must not replace Catch's.
#include <catch2/catch.hpp>

using namespace vcycle;

TEST_CASE("LR: linear warmup, then cosine to min_lr at the last step, or constant", "[schedule]") {
  PhaseConfig p;
  p.lr = 1.0;
  p.steps = 11;
  p.warmup = 4;
  p.min_lr_ratio = 0.1;
  CHECK(lr_at(p, 0) == Approx(0.25));
  CHECK(lr_at(p, 3) == Approx(1.0));
  CHECK(lr_at(p, 4) == Approx(1.0));
  // decay over steps 4..10 (6 intervals): halfway at step 7 = 0.1 + 0.9 * 0.5
  CHECK(lr_at(p, 7) == Approx(0.55));
  CHECK(lr_at(p, 10) == Approx(0.1));
  p.schedule = LrSchedule::constant;
  CHECK(lr_at(p, 10) == Approx(1.0));
}

TEST_CASE("FLOPs per token match a hand count for a small GPT", "[flops]") {
  // L=2, d=8, H·h=8, f=32, T=4, V=10, tied.
  // N_mm = 2·(3·8·8 + 8·8 + 2·8·32) + 10·8 = 2·(192 + 64 + 512) + 80 = 1616
  // F_fwd = 2·1616 + 4·2·4·8 = 3232 + 256 = 3488;  F_train = 10464
  GPTConfig c;
  c.layers = 2; c.hidden = 8; c.heads = 2; c.head_size = 4; c.ffn = 32; c.context = 4; c.vocab = 10;
  GPTAdapter a(c);
  const FlopShape s = a.flop_shape(a.top_shape());
  CHECK(s.matmul_params == 1616);
  CHECK(forward_flops_per_token(s) == 3488.0);
  CHECK(train_flops_per_token(s) == 10464.0);
  // The untied head is the same matmul: the count does not change.
  c.tied_embeddings = false;
  CHECK(GPTAdapter(c).flop_shape(a.top_shape()).matmul_params == 1616);
  // N_mm equals the model's 2-D weight count plus the head for untied (embeddings excluded).
  GPT m(c);
  int64_t n = 0;
  for (auto& item : m->named_parameters()) {
    if (item.value().dim() == 2 && item.key().find("emb") == std::string::npos) n += item.value().numel();
  }
  CHECK(n == 1616);
}

TEST_CASE("first crossing interpolates linearly and reports never-reached", "[report]") {
  const std::vector<CurvePoint> curve = {{0, 0, 5.0}, {100, 10, 3.0}, {200, 20, 2.0}, {300, 30, 2.5}};
  auto c = first_crossing(curve, 2.5);
  REQUIRE(c);
  CHECK(c->flops == Approx(150));  // halfway between 3.0 and 2.0
  CHECK(c->wall == Approx(15));
  CHECK(first_crossing(curve, 6.0)->flops == 0);
  CHECK(first_crossing(curve, 2.0)->flops == Approx(200));
  CHECK_FALSE(first_crossing(curve, 1.9));
}
