// The `vcycle` program as a function (vcycle/cli.h): each command family registers its subcommand
// on one CLI11 app (commands.h); errors become exit codes here.
#include "vcycle/cli.h"

#include <filesystem>
#include <iostream>

#include <c10/util/Exception.h>

#include "commands.h"
#include "vcycle/core/errors.h"
#include "vcycle/core/runtime.h"
#include "vcycle/io/run_info.h"
#include "vcycle/models/cpu_kernels.h"

namespace vcycle::cli {
namespace {
std::vector<std::string> g_arguments;
}
void set_command_line(int argc, char** argv) { g_arguments.assign(argv + 1, argv + argc); }
const std::vector<std::string>& command_line_arguments() { return g_arguments; }
}  // namespace vcycle::cli

namespace vcycle {

int cli_main(int argc, char** argv) {
  ensure_runtime_env(argv);
  cli::set_command_line(argc, argv);
  // Messages name the program that runs: `vcycle`, or a user's program built on this function.
  const std::string program = argc > 0 ? std::filesystem::path(argv[0]).filename().string() : "vcycle";
  CLI::App app{"vcycle — train transformers cheaper with multi-level V-cycles (Zou et al., ICLR 2024)", program};
  app.require_subcommand(1);
  app.fallthrough();
  app.set_version_flag("--version", program + " " + vcycle_version() + " (LibTorch " + libtorch_version() + ", " + blas_description() + ")");
  cli::add_prepare_command(app);
  cli::add_train_commands(app);
  cli::add_bench_command(app);
  cli::add_operator_commands(app);
  cli::add_finetune_command(app);
  cli::add_study_command(app);
  cli::add_model_io_commands(app);
  cli::add_use_model_commands(app);
  std::string valid;
  bool known = false;
  for (const auto* sub : app.get_subcommands({})) {
    valid += (valid.empty() ? "" : ", ") + sub->get_name();
    known = known || (argc > 1 && sub->get_name() == argv[1]);
  }
  if (argc > 1 && argv[1][0] != '-' && !known) {
    std::cerr << program << ": error: unknown command '" << argv[1] << "' (valid: " << valid << "; see " << program
              << " --help)\n";
    return kExitBadInput;
  }
  try {
    if (known) cpu_kernels();  // a bad VCYCLE_KERNELS fails here, before any work
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitBadInput;
  } catch (const StopRequested& e) {
    std::cerr << program << ": " << e.what() << "\n";
    return e.exit_code();
  } catch (const InputError& e) {
    std::cerr << program << ": error: " << e.what() << "\n";
    return kExitBadInput;
  } catch (const RunError& e) {
    std::cerr << program << ": run failed: " << e.what() << "\n";
    return kExitRunFailed;
  } catch (const c10::Error& e) {
    std::cerr << program << ": run failed: " << e.what_without_backtrace() << "\n";
    return kExitRunFailed;
  } catch (const std::exception& e) {
    std::cerr << program << ": run failed: " << e.what() << "\n";
    return kExitRunFailed;
  }
  return kExitOk;
}

}  // namespace vcycle
