// The GPT <-> GPT-2 mapping: every tensor mapped once, Conv1D weights transposed, the inverse exact,
// and mismatches named.
#include "vcycle/core/errors.h"
#include "vcycle/io/hf_gpt2.h"

// Catch last: LibTorch pulls in glog, whose CHECK macro must not replace Catch's.
#include <catch2/catch.hpp>

using namespace vcycle;

TEST_CASE("GPT <-> GPT-2 layout covers every tensor and inverts exactly", "[io][hf]") {
  for (const bool tied : {true, false}) {
    INFO("tied " << tied);
    GPTConfig cfg;
    cfg.layers = 2, cfg.hidden = 16, cfg.heads = 2, cfg.head_size = 8, cfg.ffn = 24, cfg.context = 8, cfg.vocab = 40;
    cfg.tied_embeddings = tied;
    torch::manual_seed(1);
    GPT model(cfg);
    const TensorMap ours = module_tensors(*model);
    CHECK(gpt_hf_names(cfg).size() == ours.size());  // the table covers the model, nothing more
    const TensorMap hf = gpt_to_hf(ours, cfg);
    CHECK(hf.count("lm_head.weight") == (tied ? 0u : 1u));
    // Conv1D: (in, out).
    CHECK(hf.at("transformer.h.1.attn.c_attn.weight").sizes() == torch::IntArrayRef({16, 48}));
    CHECK(hf.at("transformer.h.0.mlp.c_proj.weight").sizes() == torch::IntArrayRef({24, 16}));
    CHECK(torch::equal(hf.at("transformer.h.0.mlp.c_fc.weight"), ours.at("blocks.0.mlp.fc.weight").t()));
    const TensorMap back = gpt_from_hf(hf, cfg, "x");
    REQUIRE(back.size() == ours.size());
    for (const auto& [name, t] : ours) {
      INFO(name);
      CHECK(torch::equal(back.at(name), t));
    }
    const auto config = gpt_hf_config(cfg);
    CHECK(config["tie_word_embeddings"] == tied);
    CHECK_NOTHROW(gpt_hf_config_check(config, cfg, "config.json"));
    GPTConfig other = cfg;
    other.layers = 3;
    CHECK_THROWS_WITH(gpt_hf_config_check(config, other, "config.json"), Catch::Contains("n_layer is 2"));
    CHECK_THROWS_WITH(gpt_from_hf(hf, other, "m.safetensors"), Catch::Contains("transformer.h.2.ln_1.weight"));
  }
}

TEST_CASE("GPT-2 layout refuses what GPT-2 cannot express, naming it", "[io][hf]") {
  GPTConfig cfg;
  cfg.layers = 1, cfg.hidden = 16, cfg.heads = 2, cfg.head_size = 4, cfg.ffn = 24, cfg.context = 8, cfg.vocab = 40;
  CHECK_THROWS_WITH(gpt_hf_config(cfg), Catch::Contains("heads·head_size == hidden"));
  cfg.head_size = 8;
  GPT model(cfg);
  TensorMap hf = gpt_to_hf(module_tensors(*model), cfg);
  hf["transformer.h.0.attn.c_attn.weight"] = torch::zeros({48, 16});  // Linear layout, not Conv1D
  CHECK_THROWS_WITH(gpt_from_hf(hf, cfg, "m.safetensors"),
                    Catch::Contains("'transformer.h.0.attn.c_attn.weight' has shape [48, 16]") && Catch::Contains("[16, 48]"));
  hf = gpt_to_hf(module_tensors(*model), cfg);
  hf["transformer.extra"] = torch::zeros({1});
  CHECK_THROWS_WITH(gpt_from_hf(hf, cfg, "m.safetensors"), Catch::Contains("unexpected tensor 'transformer.extra'"));
  auto config = gpt_hf_config(cfg);
  config["activation_function"] = "gelu_new";
  CHECK_THROWS_WITH(gpt_hf_config_check(config, cfg, "config.json"), Catch::Contains("gelu_new"));
}
