#!/usr/bin/env bash
# Training tokens/s of vcycle (`vcycle bench train`) against the same GPT and step written in Python
# with Debian's python3-torch (bench/train_gpt.py; the same LibTorch 1.13), measured in one run.
# Python runs twice per round: as a user would start it, and with vcycle's runtime settings
# (OMP_WAIT_POLICY=PASSIVE before start, glibc malloc thresholds). The three alternate for ROUNDS
# rounds so that drift in machine load hits all of them; ratios are of the medians over rounds.
#
#   bench/compare-python.sh [default|gpt2-small]      (env: ROUNDS=3 THREADS=0 VCYCLE=build/vcycle)
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-default}
rounds=${ROUNDS:-3}
threads=${THREADS:-0}
bin=${VCYCLE:-build/vcycle}
case $model in
  default) args=(--model default --batch 16 --steps 20 --warmup 3) ;;
  gpt2-small) args=(--model gpt2-small --batch 1 --steps 5 --warmup 1) ;;
  *) echo "unknown model '$model' (default | gpt2-small)" >&2; exit 2 ;;
esac
[[ -x $bin ]] || { echo "$bin not found: build it first (tools/build.sh vcycle_cli)" >&2; exit 2; }
/usr/bin/python3 -c 'import torch' 2>/dev/null || { echo "python3-torch missing: apt-get install python3-torch" >&2; exit 2; }
rate() { sed -n 's/.*: \([0-9]*\) tokens\/s.*/\1/p'; }
cpp=() plain=() tuned=()
for ((r = 1; r <= rounds; r++)); do
  c=$("$bin" bench train "${args[@]}" --threads "$threads" | rate)
  p=$(env -u OMP_WAIT_POLICY /usr/bin/python3 bench/train_gpt.py "${args[@]}" --threads "$threads" | rate)
  t=$(OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 bench/train_gpt.py "${args[@]}" --threads "$threads" --tuned | rate)
  echo "round $r: vcycle $c, python $p, python tuned $t tokens/s"
  cpp+=("$c") plain+=("$p") tuned+=("$t")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
awk -v c="$(median "${cpp[@]}")" -v p="$(median "${plain[@]}")" -v t="$(median "${tuned[@]}")" -v m="$model" 'BEGIN {
  printf "%s (median of rounds): vcycle %d tokens/s | python %d (vcycle %.2fx) | python tuned %d (vcycle %.2fx)\n", m, c, p, c / p, t, c / t }'
