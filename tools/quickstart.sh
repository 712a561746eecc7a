#!/usr/bin/env bash
# README command 1: install dependencies, build, prepare the default corpus, run the default V-cycle
# and its baseline, and print the FLOP-savings report.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
tools/build.sh vcycle_cli   # the program only; tools/test.sh builds the tests
[ -f data/austen/train.bin ] || build/vcycle prepare --corpus austen --out data/austen
build/vcycle run configs/default.yaml --resume "$@"
