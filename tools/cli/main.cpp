// vcycle: multi-level (V-cycle) transformer training. `vcycle --help` lists the commands.
#include <iostream>

#include <c10/util/Exception.h>

#include "commands.h"
#include "vcycle/core/errors.h"
#include "vcycle/core/runtime.h"
#include "vcycle/io/run_info.h"

namespace vcycle::cli {
namespace {
std::vector<std::string> g_arguments;
}
void set_command_line(int argc, char** argv) { g_arguments.assign(argv + 1, argv + argc); }
const std::vector<std::string>& command_line_arguments() { return g_arguments; }
}  // namespace vcycle::cli

int main(int argc, char** argv) {
  vcycle::ensure_omp_wait_policy(argv);
  vcycle::cli::set_command_line(argc, argv);
  CLI::App app{"vcycle — train transformers cheaper with multi-level V-cycles (Zou et al., ICLR 2024)"};
  app.require_subcommand(1);
  app.fallthrough();
  app.set_version_flag("--version", "vcycle " + vcycle::vcycle_version() + " (LibTorch " + vcycle::libtorch_version() + ")");
  vcycle::cli::add_prepare_command(app);
  vcycle::cli::add_train_commands(app);
  vcycle::cli::add_bench_command(app);
  vcycle::cli::add_operator_commands(app);
  vcycle::cli::add_finetune_command(app);
  vcycle::cli::add_study_command(app);
  vcycle::cli::add_model_io_commands(app);
  vcycle::cli::add_use_model_commands(app);
  std::string valid;
  bool known = false;
  for (const auto* sub : app.get_subcommands({})) {
    valid += (valid.empty() ? "" : ", ") + sub->get_name();
    known = known || (argc > 1 && sub->get_name() == argv[1]);
  }
  if (argc > 1 && argv[1][0] != '-' && !known) {
    std::cerr << "vcycle: error: unknown command '" << argv[1] << "' (valid: " << valid << "; see vcycle --help)\n";
    return vcycle::kExitBadInput;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? vcycle::kExitOk : vcycle::kExitBadInput;
  } catch (const vcycle::InputError& e) {
    std::cerr << "vcycle: error: " << e.what() << "\n";
    return vcycle::kExitBadInput;
  } catch (const vcycle::RunError& e) {
    std::cerr << "vcycle: run failed: " << e.what() << "\n";
    return vcycle::kExitRunFailed;
  } catch (const c10::Error& e) {
    std::cerr << "vcycle: run failed: " << e.what_without_backtrace() << "\n";
    return vcycle::kExitRunFailed;
  } catch (const std::exception& e) {
    std::cerr << "vcycle: run failed: " << e.what() << "\n";
    return vcycle::kExitRunFailed;
  }
  return vcycle::kExitOk;
}
