// The vcycle command line (vcycle::cli_main, vcycle/cli.h): each command family registers its
// subcommand on the CLI11 app.
// A command's callback throws vcycle::InputError (exit 2) or RunError (exit 3) on failure.
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace vcycle::cli {

// The program's arguments after argv[0] (set by cli_main; `--nproc` re-executes them in its workers).
void set_command_line(int argc, char** argv);
const std::vector<std::string>& command_line_arguments();

void add_prepare_command(CLI::App& app);
void add_train_commands(CLI::App& app);  // train, run, report
void add_bench_command(CLI::App& app);
void add_operator_commands(CLI::App& app);  // coalesce, decoalesce, interpolate
void add_finetune_command(CLI::App& app);   // LoRA fine-tuning (finetune.h)
void add_study_command(CLI::App& app);      // study, study-report (study.h)
void add_model_io_commands(CLI::App& app);  // export, import (model_io.cpp)
void add_use_model_commands(CLI::App& app); // generate, eval (use_model.cpp)

}  // namespace vcycle::cli
