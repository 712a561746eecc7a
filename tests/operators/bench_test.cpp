// Hidden benchmark (run with `vcycle_tests "[.bench]"`): coalesce + de-coalesce of a GPT-2-small
// shaped model (124M parameters, tied) on CPU with 2 threads. Target (spec §2): well under 1 s.
#include <algorithm>
#include <chrono>
#include <cstdio>

#include "op_test_util.h"

using namespace vcycle;

TEST_CASE("bench: coalesce + decoalesce of GPT-2 small on CPU, 2 threads", "[.bench]") {
  const int old_threads = at::get_num_threads();
  at::set_num_threads(2);
  GPTConfig cfg;
  cfg.layers = 12; cfg.hidden = 768; cfg.heads = 12; cfg.head_size = 64; cfg.ffn = 3072; cfg.context = 1024;
  cfg.vocab = 50257; cfg.tied_embeddings = true;
  const auto map = gpt_param_map(cfg);
  const auto shape = gpt_level_shape(cfg);
  TensorMap theta;
  {
    torch::manual_seed(0);
    GPT model(cfg);
    theta = module_tensors(*model);
  }
  int64_t params = 0;
  for (const auto& [name, t] : theta) params += t.numel();
  CHECK(params == 124439808);

  for (const CoalesceFactors f : {CoalesceFactors{2, 2}, CoalesceFactors{2, 1}}) {
    std::vector<double> co, de;
    for (int rep = 0; rep < 7; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      auto small = coalesce(theta, map, shape, f);
      const auto t1 = std::chrono::steady_clock::now();
      auto big = decoalesce(small, map, shape, f);
      const auto t2 = std::chrono::steady_clock::now();
      co.push_back(std::chrono::duration<double>(t1 - t0).count());
      de.push_back(std::chrono::duration<double>(t2 - t1).count());
      if (rep == 0) {  // untimed: the outputs have the right names and shapes
        param_map_validate(map, small, coalesce_shape(map, shape, f));
        param_map_validate(map, big, shape);
      }
    }
    std::sort(co.begin(), co.end());
    std::sort(de.begin(), de.end());
    std::vector<double> total;
    for (size_t i = 0; i < co.size(); ++i) total.push_back(co[i] + de[i]);
    std::printf("GPT-2 small (124M, tied), width %lld depth %lld, 2 threads: median coalesce %.3f s, "
                "decoalesce %.3f s, sum %.3f s (min %.3f + %.3f)\n",
                static_cast<long long>(f.width), static_cast<long long>(f.depth), co[co.size() / 2],
                de[de.size() / 2], co[co.size() / 2] + de[de.size() / 2], co.front(), de.front());
    CHECK(co[co.size() / 2] + de[de.size() / 2] < 1.0);
  }
  at::set_num_threads(old_threads);
}
