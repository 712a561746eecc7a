#!/usr/bin/env bash
# README command 2: install dependencies, build, and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
tools/build.sh
cd build && OMP_WAIT_POLICY=PASSIVE ctest --output-on-failure -j"$(nproc)"
