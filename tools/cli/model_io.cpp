// `vcycle export` and `vcycle import`: a trained model out to safetensors / PyTorch / Hugging Face's
// GPT-2 layout, and weights in from them (io/safetensors.h, io/hf_gpt2.h).
#include <filesystem>
#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/serialize.h>

#include "commands.h"
#include "vcycle/core/errors.h"
#include "vcycle/core/file_util.h"
#include "vcycle/core/runtime.h"
#include "vcycle/io/checkpoint_model.h"
#include "vcycle/io/hf_gpt2.h"
#include "vcycle/io/run_info.h"
#include "vcycle/io/safetensors.h"
#include "vcycle/models/lora.h"
#include "vcycle/models/registry.h"
#include "vcycle/schedules/run_checkpoint.h"

namespace vcycle::cli {

namespace fs = std::filesystem;

namespace {

struct ExportArgs {
  std::string checkpoint, format, out, config;
  std::vector<std::string> overrides;
};

const GPTAdapter& gpt_adapter(const CheckpointModel& m, const std::string& format) {
  const auto* gpt = dynamic_cast<const GPTAdapter*>(m.adapter.get());
  if (!gpt) throw InputError("--format " + format + " is for GPT models; this run's model.type is " + m.adapter->type());
  return *gpt;
}

// LoRA adapters in PEFT's layout (adapter_config.json + adapter_model.safetensors), for a base model
// exported with --format hf: PEFT names a layer's adapters by the base model's module path under
// `base_model.model.`, keeps lora_A (r, in) and lora_B (out, r) as Linear weights whatever the base
// layer, and needs fan_in_fan_out for GPT-2's Conv1D base layers.
void export_peft(const ExportArgs& a) {
  const lora::AdapterFile file = lora::read_adapters(a.checkpoint);
  const std::string out = a.out.empty() ? (fs::path(a.checkpoint).parent_path() / "export-peft").string() : a.out;
  fs::create_directories(out);
  TensorMap tensors;
  nlohmann::json targets = nlohmann::json::array();
  for (const auto& layer : file.layers) targets.push_back(gpt_hf_module_name(layer));
  for (const auto& [name, t] : file.tensors) {
    const auto dot = name.rfind('.');
    const std::string part = name.substr(dot + 1);  // lora_A | lora_B
    tensors["base_model.model." + gpt_hf_module_name(name.substr(0, dot)) + "." + part + ".weight"] = t.contiguous();
  }
  const nlohmann::json config = {{"peft_type", "LORA"},
                                 {"task_type", "CAUSAL_LM"},
                                 {"r", file.options.r()},
                                 {"lora_alpha", file.options.alpha()},
                                 {"lora_dropout", file.options.dropout()},
                                 {"target_modules", targets},
                                 {"fan_in_fan_out", true},
                                 {"bias", "none"},
                                 {"modules_to_save", nullptr},
                                 {"base_model_name_or_path", nullptr},
                                 {"inference_mode", true},
                                 {"vcycle_version", vcycle_version()}};
  write_file_atomic((fs::path(out) / "adapter_config.json").string(), config.dump(2) + "\n");
  save_safetensors((fs::path(out) / "adapter_model.safetensors").string(), tensors, {{"format", "pt"}});
  std::cout << fmt::format("exported {} ({} LoRA layers, r {}, alpha {}) as PEFT adapters:\n  {}\n", a.checkpoint,
                           file.layers.size(), file.options.r(), file.options.alpha(), out);
}

void export_model(const ExportArgs& a) {
  if (a.format == "peft") return export_peft(a);
  const std::string config = find_checkpoint_config(a.checkpoint, a.config);
  const CheckpointModel m = load_checkpoint_model(a.checkpoint, config, a.overrides);
  const std::string out = a.out.empty() ? (fs::path(a.checkpoint).parent_path() / ("export-" + a.format)).string() : a.out;
  fs::create_directories(out);
  const TensorMap tensors = module_tensors(*m.module);
  const SafetensorsMetadata meta = {{"format", "pt"},
                                    {"vcycle_version", vcycle_version()},
                                    {"model_type", m.adapter->type()},
                                    {"level", std::to_string(m.level)}};
  std::vector<std::string> written;
  if (a.format == "safetensors") {
    written.push_back((fs::path(out) / "model.safetensors").string());
    save_safetensors(written.back(), tensors, meta);
  } else if (a.format == "pt") {
    // A plain {name: tensor} dict in torch.save's zip format: torch.load(path) gives a state_dict.
    c10::Dict<std::string, at::Tensor> dict;
    for (const auto& [name, t] : tensors) dict.insert(name, t.contiguous());
    const std::vector<char> bytes = torch::pickle_save(dict);
    written.push_back((fs::path(out) / "model.pt").string());
    write_file_atomic(written.back(), std::string(bytes.begin(), bytes.end()));
  } else if (a.format == "hf") {
    const GPTConfig gpt = gpt_adapter(m, a.format).config_for(m.shape);
    const TensorMap hf = gpt_to_hf(tensors, gpt);
    written.push_back((fs::path(out) / "config.json").string());
    write_file_atomic(written.back(), gpt_hf_config(gpt).dump(2) + "\n");
    written.push_back((fs::path(out) / "model.safetensors").string());
    save_safetensors(written.back(), hf, meta);
  } else {
    throw InputError("--format must be safetensors, pt, hf or peft, got '" + a.format + "'");
  }
  // Beside the weights: what they are and where they came from.
  nlohmann::json info = run_info(m.cfg);
  info["checkpoint"] = a.checkpoint;
  info["level"] = m.level;
  info["shape"] = m.shape.to_string();
  info["format"] = a.format;
  write_file_atomic((fs::path(out) / "vcycle.json").string(), info.dump(2) + "\n");
  write_file_atomic((fs::path(out) / kResolvedConfigFile).string(), resolved_config_yaml(config, a.overrides));
  int64_t n = 0;
  for (const auto& [name, t] : tensors) n += t.numel();
  std::cout << fmt::format("exported {} ({} level {}: {}, {} tensors, {} parameters) as {}:\n", a.checkpoint,
                           m.adapter->type(), m.level, m.shape.to_string(), tensors.size(), n, a.format);
  for (const auto& w : written) std::cout << "  " << w << "\n";
}

struct ImportArgs {
  std::string input, config, out;
  std::vector<std::string> overrides;
};

// A Hugging Face GPT-2 directory (config.json + model.safetensors), or one safetensors file with
// vcycle's tensor names, into a model-only checkpoint of the config's level-1 model.
void import_model(const ImportArgs& a) {
  const RunConfig cfg = load_config(a.config, a.overrides);
  auto adapter = make_model(cfg);
  auto module = adapter->build(adapter->top_shape());
  TensorMap tensors;
  std::string what;
  if (fs::is_directory(a.input)) {
    const auto* gpt = dynamic_cast<const GPTAdapter*>(adapter.get());
    if (!gpt) throw InputError(a.input + ": a Hugging Face directory imports into a GPT; the config's model.type is " + adapter->type());
    const std::string config_json = (fs::path(a.input) / "config.json").string();
    nlohmann::json hf_config;
    try {
      hf_config = nlohmann::json::parse(read_file(config_json));
    } catch (const nlohmann::json::exception& e) {
      throw InputError(config_json + ": not JSON (" + e.what() + ")");
    }
    gpt_hf_config_check(hf_config, gpt->config(), config_json);
    what = (fs::path(a.input) / "model.safetensors").string();
    tensors = gpt_from_hf(load_safetensors(what), gpt->config(), what);
  } else {
    what = a.input;
    tensors = load_safetensors(a.input);
  }
  load_module_tensors(*module, tensors, what);  // every name and shape checked, the tensor named
  save_model_checkpoint(a.out, module_tensors(*module), 1);
  std::cout << fmt::format("imported {} ({} tensors) into {} (level 1 of {})\n", a.input, tensors.size(), a.out, a.config);
}

}  // namespace

void add_model_io_commands(CLI::App& app) {
  auto ex = std::make_shared<ExportArgs>();
  auto* cmd = app.add_subcommand("export", "Write a checkpoint's model as safetensors, a PyTorch state_dict, or a Hugging Face GPT-2 directory");
  cmd->add_option("checkpoint", ex->checkpoint, "a run's checkpoint (any level) or one `vcycle import` wrote")->required();
  cmd->add_option("--format", ex->format, "safetensors | pt | hf (a GPT checkpoint) | peft (a `vcycle finetune` adapters.lora)")->required();
  cmd->add_option("--out", ex->out, "output directory (default: export-<format> beside the checkpoint)");
  cmd->add_option("--config", ex->config, "the run's config (default: the run directory's config.resolved.yaml)");
  cmd->add_option("--set", ex->overrides, "override a config key (repeatable)");
  cmd->callback([ex] {
    runtime_init(1);
    export_model(*ex);
  });

  auto im = std::make_shared<ImportArgs>();
  auto* imp = app.add_subcommand("import", "Read a Hugging Face GPT-2 directory or a safetensors file into a checkpoint (`init:` in a run config starts from it)");
  imp->add_option("input", im->input, "directory with config.json + model.safetensors, or a .safetensors file")->required();
  imp->add_option("--config", im->config, "run config whose level-1 model the weights are for")->required();
  imp->add_option("--out", im->out, "output checkpoint")->required();
  imp->add_option("--set", im->overrides, "override a config key (repeatable)");
  imp->callback([im] {
    runtime_init(1);
    import_model(*im);
  });
}

}  // namespace vcycle::cli
