// llama_vcycle: trains the LLaMA-style model of this example through vcycle's V-cycle and its plain
// baseline, then prints vcycle's savings report (the same report `vcycle run` prints for the GPT).
//
//   llama_vcycle CONFIG.yaml [--resume] [--quiet] [--no-baseline] [--set key=value ...]
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include <c10/util/Exception.h>

#include <vcycle/config/run_config.h>
#include <vcycle/core/errors.h>
#include <vcycle/schedules/experiment.h>
#include <vcycle/models/registry.h>
#include <vcycle/core/runtime.h>

#include "llama_adapter.h"

namespace {

constexpr const char* kUsage =
    "usage: llama_vcycle CONFIG.yaml [--resume] [--quiet] [--no-baseline] [--set key=value ...]\n";

int run(int argc, char** argv) {
  std::string config;
  std::vector<std::string> overrides;
  vcycle::ExperimentOptions options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--resume") options.resume = true;
    else if (arg == "--quiet") options.quiet = true;
    else if (arg == "--no-baseline") options.no_baseline = true;
    else if (arg == "--set" && i + 1 < argc) overrides.push_back(argv[++i]);
    else if (arg == "-h" || arg == "--help") {
      std::cout << kUsage;
      return vcycle::kExitOk;
    } else if (config.empty() && arg.rfind("--", 0) != 0) config = arg;
    else throw vcycle::InputError("unexpected argument '" + arg + "'\n" + kUsage);
  }
  if (config.empty()) throw vcycle::InputError(std::string("missing CONFIG.yaml\n") + kUsage);

  // Everything but `model:` is checked by vcycle; the model section is ours.
  const vcycle::RunConfig cfg = vcycle::load_config_unchecked(config, overrides);
  const auto adapter = llama::LlamaAdapter::from_config(cfg);
  vcycle::validate_model_config(cfg, *adapter);  // vocab vs tokenizer, every level divides evenly
  llama::validate_param_map(cfg, *adapter);      // the map covers the model at every level
  vcycle::runtime_init(cfg.threads);

  const auto report = vcycle::run_experiment(cfg, *adapter, options);
  if (report) std::cout << report->markdown;
  return vcycle::kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  vcycle::ensure_omp_wait_policy(argv);  // re-executes once with OMP_WAIT_POLICY=PASSIVE
  try {
    return run(argc, argv);
  } catch (const vcycle::InputError& e) {
    std::cerr << "llama_vcycle: error: " << e.what() << "\n";
    return vcycle::kExitBadInput;
  } catch (const c10::Error& e) {
    std::cerr << "llama_vcycle: run failed: " << e.what_without_backtrace() << "\n";
    return vcycle::kExitRunFailed;
  } catch (const std::exception& e) {
    std::cerr << "llama_vcycle: run failed: " << e.what() << "\n";
    return vcycle::kExitRunFailed;
  }
}
