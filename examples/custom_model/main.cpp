// llama_vcycle: the whole `vcycle` program — run, train, report, coalesce, finetune, study, ...,
// with --set, --resume and --nproc — for the LLaMA-style model of this example.
//
//   llama_vcycle run configs/llama-2level.yaml [--nproc 2]
//   llama_vcycle --help
#include <vcycle/cli.h>
#include <vcycle/models/registry.h>

#include "llama_adapter.h"

int main(int argc, char** argv) {
  // `model: { type: llama, ... }` in a run config now names this model; vcycle checks the rest of
  // the config and, before training, that the parameter map fits the model at every level.
  vcycle::register_model("llama", llama::LlamaAdapter::from_yaml);
  return vcycle::cli_main(argc, argv);
}
