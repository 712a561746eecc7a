#!/usr/bin/env bash
# Optimizer comparison on the default GPT (issues #3 and #11): every run trains the default model
# with `vcycle train` (the config's baseline section) and prints its final validation loss.
#
#   tools/compare-optimizers.sh default [OPT...]  # configs/optim-OPT.yaml: 600 steps at batch 16
#   tools/compare-optimizers.sh large [OPT...]    # configs/large-batch-OPT.yaml: batch 256, same tokens
#   tools/compare-optimizers.sh sweep OPT LR...   # configs/optim-OPT.yaml at each LR (STEPS=n: shorter)
#
# Runs are deterministic (fixed seed, THREADS threads, default 1), so the losses do not depend on what
# else the machine is doing; wall time does and is not compared here. Results: runs/compare/*.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:?usage: tools/compare-optimizers.sh default|large|sweep [ARGS]}
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

shift
case $mode in
  default)
    for opt in "${@:-adamw came lamb adafactor}"; do
      for o in $opt; do train "default-$o" "configs/optim-$o.yaml"; done
    done | tee -a "$out/default.txt" ;;
  large)
    for opt in "${@:-adamw came lamb}"; do
      for o in $opt; do train "large-$o" "configs/large-batch-$o.yaml"; done
    done | tee -a "$out/large.txt" ;;
  sweep)
    opt=${1:?usage: tools/compare-optimizers.sh sweep OPT LR...}; shift
    steps=(); [[ -n ${STEPS:-} ]] && steps=(baseline.steps="$STEPS")
    for lr in "$@"; do
      train "sweep-$opt-$lr${STEPS:+-$STEPS}" "configs/optim-$opt.yaml" baseline.lr="$lr" "${steps[@]}"
    done | tee -a "$out/sweep.txt" ;;
  *) echo "unknown mode '$mode' (default | large | sweep)" >&2; exit 2 ;;
esac
