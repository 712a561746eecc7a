// A trained model leaves vcycle and comes back: `vcycle export` (pt, safetensors, hf) checked from
// Python against vcycle's own logits, `import` bitwise, `init:` starts a run from imported weights,
// `generate` reproducible, `eval` equal to the run's last eval row.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "test_util.h"
#include "vcycle/core/checkpoint.h"
#include "vcycle/io/safetensors.h"
#include "vcycle/models/gpt/gpt.h"
#include "vcycle/models/lora.h"
#include "vcycle/schedules/run_checkpoint.h"

// Catch last: LibTorch pulls in glog, whose CHECK macro must not replace Catch's.
#include <catch2/catch.hpp>

using namespace vcycle;

namespace {

// The val_loss of the last eval row of a run directory's metrics.jsonl.
double last_eval_loss(const std::string& metrics) {
  std::ifstream in(metrics);
  std::string line;
  double loss = -1;
  while (std::getline(in, line)) {
    const auto row = nlohmann::json::parse(line);
    if (row.value("type", "") == "eval") loss = row["val_loss"].get<double>();
  }
  return loss;
}

double printed_loss(const std::string& output) {
  const auto at = output.find("val_loss ");
  REQUIRE(at != std::string::npos);
  return std::stod(output.substr(at + 9));
}

}  // namespace

TEST_CASE("export to pt / safetensors / hf matches a Python forward, and import, generate and eval work", "[cli][export]") {
  test::TempDir dir("modelio");
  test::prepare_fixture_corpus(dir.str("data"));
  const std::string cfg = dir.str("c.yaml");
  test::write_text(cfg, "threads: 1\nmodel: { type: gpt, layers: 2, hidden: 32, heads: 4, ffn: 64, context: 16 }\n"
                        "data: { train: " + dir.str("data/train.bin") + ", valid: " + dir.str("data/valid.bin") + ", batch_size: 2 }\n"
                        "phases: [ { level: 1, steps: 2 } ]\n"
                        "baseline: { steps: 6, lr: 3e-3 }\neval: { every: 3, batches: 2 }\n"
                        "train: { checkpoint_every: 2, keep_checkpoints: 1 }\noutput: " + dir.str("out") + "\n");
  const auto train = test::run_cli({"train", cfg, "--quiet"});
  INFO(train.output);
  REQUIRE(train.exit_code == 0);
  const std::string ckpt = dir.str("out/baseline/checkpoint.ckpt");
  // The run directory describes itself: export below finds the config without --config.
  REQUIRE(std::filesystem::exists(dir.str("out/config.resolved.yaml")));
  const auto info = nlohmann::json::parse(std::ifstream(dir.str("out/run_info.json")));
  CHECK(info["data"]["train"]["bytes"].get<int64_t>() == static_cast<int64_t>(std::filesystem::file_size(dir.str("data/train.bin"))));

  // keep_checkpoints: 1 keeps the newest mid-phase checkpoint (step 4 of 2, 4) and every phase end.
  CHECK(std::filesystem::exists(dir.str("out/baseline/checkpoint-step4.ckpt")));
  CHECK_FALSE(std::filesystem::exists(dir.str("out/baseline/checkpoint-step2.ckpt")));
  REQUIRE(std::filesystem::exists(dir.str("out/baseline/checkpoint-phase1.ckpt")));
  CHECK(load_run_checkpoint(dir.str("out/baseline/checkpoint-step4.ckpt")).state.global_step == 4);
  CHECK(load_run_checkpoint(dir.str("out/baseline/checkpoint-phase1.ckpt")).state.global_step == 6);

  for (const std::string format : {"pt", "safetensors", "hf"}) {
    const auto ex = test::run_cli({"export", ckpt, "--format", format, "--out", dir.str("x-" + format)});
    INFO(ex.output);
    REQUIRE(ex.exit_code == 0);
    CHECK(std::filesystem::exists(dir.str("x-" + format + "/vcycle.json")));
    CHECK(std::filesystem::exists(dir.str("x-" + format + "/config.resolved.yaml")));
  }
  const auto hf_config = nlohmann::json::parse(std::ifstream(dir.str("x-hf/config.json")));
  CHECK(hf_config["n_embd"] == 32);
  CHECK(hf_config["n_inner"] == 64);
  CHECK(hf_config["activation_function"] == "gelu");

  {  // Python reads every format and computes vcycle's logits
    const auto ev = test::run_cli({"eval", ckpt, "--logits-out", dir.str("logits.safetensors")});
    INFO(ev.output);
    REQUIRE(ev.exit_code == 0);
    const auto py = test::run_shell(test::debian_python() + " " + test::source_path("tests/tools/export_check.py") + " " +
                              dir.str("logits.safetensors") + " 4 --pt " + dir.str("x-pt/model.pt") + " --safetensors " +
                              dir.str("x-safetensors/model.safetensors") + " --hf " + dir.str("x-hf"));
    INFO(py.output);
    CHECK(py.exit_code == 0);
    CHECK_THAT(py.output, Catch::Contains("pt: logits (2, 16, 256)") && Catch::Contains("safetensors: logits") &&
                              Catch::Contains("hf: logits"));
  }

  {  // export hf -> import is bitwise; a run starts from imported weights
    const auto im = test::run_cli({"import", dir.str("x-hf"), "--config", cfg, "--out", dir.str("imported.ckpt")});
    INFO(im.output);
    REQUIRE(im.exit_code == 0);
    const auto original = checkpoint_model(load_checkpoint(ckpt));
    const auto imported = checkpoint_model(load_checkpoint(dir.str("imported.ckpt")));
    REQUIRE(original.size() == imported.size());
    for (const auto& [name, t] : original) {
      INFO(name);
      CHECK(torch::equal(t, imported.at(name)));
    }
    // A vcycle-named safetensors file imports too.
    REQUIRE(test::run_cli({"import", dir.str("x-safetensors/model.safetensors"), "--config", cfg, "--out",
                           dir.str("imported2.ckpt")}).exit_code == 0);
    CHECK(torch::equal(checkpoint_model(load_checkpoint(dir.str("imported2.ckpt"))).at("blocks.1.mlp.fc.weight"),
                       original.at("blocks.1.mlp.fc.weight")));
    // init: the new run's first evaluation is the imported model's, i.e. the old run's last one.
    const auto run = test::run_cli({"train", cfg, "--quiet", "--set", "init=" + dir.str("imported.ckpt"), "--set",
                                    "output=" + dir.str("out2"), "--set", "baseline.steps=1"});
    INFO(run.output);
    REQUIRE(run.exit_code == 0);
    std::ifstream m(dir.str("out2/baseline/metrics.jsonl"));
    std::string first;
    while (std::getline(m, first) && nlohmann::json::parse(first).value("type", "") != "eval") {}
    CHECK(nlohmann::json::parse(first)["val_loss"].get<double>() ==
          Approx(last_eval_loss(dir.str("out/baseline/metrics.jsonl"))).epsilon(1e-6));
  }

  {  // import checks names and shapes and names the tensor
    // One tensor dropped from the hf export.
    SafetensorsMetadata meta;
    auto hf = load_safetensors(dir.str("x-hf/model.safetensors"), &meta);
    hf.erase("transformer.h.1.mlp.c_fc.weight");
    std::filesystem::create_directories(dir.str("broken"));
    std::filesystem::copy_file(dir.str("x-hf/config.json"), dir.str("broken/config.json"));
    save_safetensors(dir.str("broken/model.safetensors"), hf, meta);
    const auto missing = test::run_cli({"import", dir.str("broken"), "--config", cfg, "--out", dir.str("b.ckpt")});
    CHECK(missing.exit_code == 2);
    CHECK_THAT(missing.output, Catch::Contains("transformer.h.1.mlp.c_fc.weight"));
    // A config of another width: config.json disagrees (hf), the tensor shape disagrees (safetensors).
    const auto wide = test::run_cli({"import", dir.str("x-hf"), "--config", cfg, "--set", "model.ffn=128", "--out", dir.str("b.ckpt")});
    CHECK(wide.exit_code == 2);
    CHECK_THAT(wide.output, Catch::Contains("n_inner"));
    const auto shape = test::run_cli({"import", dir.str("x-safetensors/model.safetensors"), "--config", cfg, "--set",
                                      "model.ffn=128", "--out", dir.str("b.ckpt")});
    CHECK(shape.exit_code == 2);
    CHECK_THAT(shape.output, Catch::Contains("blocks.0.mlp.fc.bias") || Catch::Contains("blocks.0.mlp.fc.weight"));
    CHECK(test::run_cli({"export", ckpt, "--format", "onnx"}).exit_code == 2);
  }

  {  // LoRA adapters leave in PEFT's layout, named after the hf export's modules
    GPTConfig g;
    g.layers = 2, g.hidden = 32, g.heads = 4, g.head_size = 8, g.ffn = 64, g.context = 16, g.vocab = 256;
    GPT model(g);
    lora::inject(*model, {"attn.qkv", "mlp.*"}, lora::LoRAOptions().r(4).alpha(8));
    torch::NoGradGuard no_grad;
    for (auto& [name, p] : lora::adapter_parameters(*model)) p.normal_();  // B starts at zero; make it count
    lora::save_adapters(*model, dir.str("adapters.lora"));
    const auto ex = test::run_cli({"export", dir.str("adapters.lora"), "--format", "peft", "--out", dir.str("peft")});
    INFO(ex.output);
    REQUIRE(ex.exit_code == 0);
    const auto config = nlohmann::json::parse(std::ifstream(dir.str("peft/adapter_config.json")));
    CHECK(config["peft_type"] == "LORA");
    CHECK(config["r"] == 4);
    CHECK(config["lora_alpha"] == 8.0);
    CHECK(config["fan_in_fan_out"] == true);
    CHECK(config["target_modules"].size() == 6);
    CHECK(std::find(config["target_modules"].begin(), config["target_modules"].end(), "transformer.h.1.mlp.c_fc") !=
          config["target_modules"].end());
    const auto peft = load_safetensors(dir.str("peft/adapter_model.safetensors"));
    const auto file = lora::read_adapters(dir.str("adapters.lora"));
    REQUIRE(peft.size() == file.tensors.size());
    TensorMap ours(file.tensors.begin(), file.tensors.end());
    CHECK(torch::equal(peft.at("base_model.model.transformer.h.0.attn.c_attn.lora_A.weight"), ours.at("blocks.0.attn.qkv.lora_A")));
    CHECK(torch::equal(peft.at("base_model.model.transformer.h.1.mlp.c_proj.lora_B.weight"), ours.at("blocks.1.mlp.proj.lora_B")));
    CHECK(peft.at("base_model.model.transformer.h.0.attn.c_attn.lora_B.weight").sizes() == torch::IntArrayRef({96, 4}));
  }

  {  // generate is reproducible with a seed; eval repeats the run's last eval row
    const auto a = test::run_cli({"generate", ckpt, "--prompt", "It is a truth", "--tokens", "20", "--seed", "7"});
    const auto b = test::run_cli({"generate", ckpt, "--prompt", "It is a truth", "--tokens", "20", "--seed", "7"});
    const auto c = test::run_cli({"generate", ckpt, "--prompt", "It is a truth", "--tokens", "20", "--seed", "8"});
    INFO(a.output);
    REQUIRE(a.exit_code == 0);
    // The text, without the summary line on stderr (which names the seed).
    auto text = [](const std::string& out) { return out.substr(0, out.rfind("\n[")); };
    CHECK(text(a.output).size() > std::string("It is a truth").size());
    CHECK(text(a.output) == text(b.output));
    CHECK(text(a.output) != text(c.output));
    CHECK_THAT(a.output, Catch::StartsWith("It is a truth"));
    const auto ev = test::run_cli({"eval", ckpt});
    INFO(ev.output);
    REQUIRE(ev.exit_code == 0);
    const double loss = printed_loss(ev.output);
    CHECK(loss == Approx(last_eval_loss(dir.str("out/baseline/metrics.jsonl"))).epsilon(1e-5));
    CHECK_THAT(ev.output, Catch::Contains("bits/byte"));
    const auto more = test::run_cli({"eval", ckpt, "--batches", "3", "--data", dir.str("data/train.bin")});
    INFO(more.output);
    REQUIRE(more.exit_code == 0);
    CHECK_THAT(more.output, Catch::Contains("3 batches"));
  }
}
