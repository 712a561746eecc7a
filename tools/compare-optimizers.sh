#!/usr/bin/env bash
# Optimizer comparison on the default GPT (issues #3 and #11): every run trains the default model
# with `vcycle train` (the config's baseline section) and prints its final validation loss.
#
#   tools/compare-optimizers.sh sweep   # lr sweep at a quarter of the step budget, per optimizer
#   tools/compare-optimizers.sh default # configs/optim-*.yaml: the full 600-step budget, batch 16
#   tools/compare-optimizers.sh large   # configs/large-batch-*.yaml: batch 256, same tokens
#
# Runs are deterministic (fixed seed, THREADS threads, default 1), so the losses do not depend on what
# else the machine is doing; wall time does and is not compared here. Results: runs/compare/*.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:?usage: tools/compare-optimizers.sh sweep|default|large}
threads=${THREADS:-1}
bin=${VCYCLE:-build/vcycle}  # VCYCLE=path: a copy of the program, so rebuilding does not disturb a long comparison
out=runs/compare
mkdir -p "$out"

train() {  # name config [--set k=v ...] -> one line "name tokens final_val_loss"
  local name=$1 config=$2; shift 2
  local sets=(--set "threads=$threads" --set "output=$out/$name")
  for kv in "$@"; do sets+=(--set "$kv"); done
  local log="$out/$name.log"
  "$bin" train "$config" "${sets[@]}" --quiet >"$log" 2>&1 || { echo "$name FAILED (see $log)"; return 0; }
  local loss tokens
  loss=$(sed -n 's/^final validation loss \([0-9.na]*\).*/\1/p' "$log")
  tokens=$(awk 'NF==4 && $1 ~ /^[0-9]+$/ {t=$2} END {print t}' "$log")
  printf '%-28s %10s %8s\n' "$name" "$tokens" "$loss"
}

case $mode in
  sweep)
    for opt_lrs in "adamw 1e-3 2e-3 4e-3" "came 1e-3 2e-3 4e-3" "adafactor 1e-3 2e-3 4e-3" "lamb 5e-3 1e-2 2e-2"; do
      read -r opt lrs <<<"$opt_lrs"
      for lr in $lrs; do
        train "sweep-$opt-$lr" configs/default.yaml baseline.optimizer=$opt baseline.lr=$lr baseline.steps=150 baseline.warmup=15
      done
    done | tee "$out/sweep.txt" ;;
  default)
    for opt in adamw came lamb adafactor; do train "default-$opt" "configs/optim-$opt.yaml"; done | tee "$out/default.txt" ;;
  large)
    for opt in adamw came lamb; do train "large-$opt" "configs/large-batch-$opt.yaml"; done | tee "$out/large.txt" ;;
  *) echo "unknown mode '$mode' (sweep|default|large)" >&2; exit 2 ;;
esac
