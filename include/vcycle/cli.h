// The whole `vcycle` program as a function, so that a program of one's own — typically one that
// registers its own model (models/registry.h) — gets every command of `vcycle` for it: run, train,
// report, coalesce, decoalesce, interpolate, finetune, study, bench, prepare, with --set, --resume
// and --nproc.
//
//   int main(int argc, char** argv) {
//     vcycle::register_model("llama", make_llama_adapter);
//     return vcycle::cli_main(argc, argv);
//   }
#pragma once

namespace vcycle {

// Runs the command line `argv` (argv[0] is the program) and returns the process exit code:
// kExitOk, kExitBadInput (2) for bad arguments or input, kExitRunFailed (3) when a run fails
// (core/errors.h). Errors are printed to stderr prefixed with the program's name; nothing throws.
//
// It may re-execute the program (/proc/self/exe, the same argv) once to set OMP_WAIT_POLICY=PASSIVE
// (core/runtime.h, ensure_runtime_env), and `--nproc N` starts N copies of the program as workers:
// call it from main, after every register_model, before anything else that matters.
int cli_main(int argc, char** argv);

}  // namespace vcycle
