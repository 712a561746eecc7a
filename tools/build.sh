#!/usr/bin/env bash
# Configures (Release; unity build of the library and program) and builds vcycle into ./build.
# Arguments are build targets (default: all).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DVCYCLE_UNITY_BUILD=ON > /dev/null
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build build --parallel "$(nproc)" "${targets[@]}"
