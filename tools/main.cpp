// vcycle command line (placeholder main until the commands land).
#include "vcycle/runtime.h"
int main(int argc, char** argv) { vcycle::ensure_omp_wait_policy(argv); return 0; }
