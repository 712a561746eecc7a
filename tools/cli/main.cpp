// vcycle: multi-level (V-cycle) transformer training. `vcycle --help` lists the commands; the program
// itself is vcycle::cli_main (vcycle/cli.h), which programs with models of their own call too.
#include "vcycle/cli.h"

int main(int argc, char** argv) { return vcycle::cli_main(argc, argv); }
