#!/usr/bin/env bash
# Training tokens/s of vcycle (`vcycle bench train`) against the same GPT and step written in Python
# with Debian's python3-torch (bench/train_gpt.py; the same LibTorch 1.13), measured in one run.
# Python runs twice per round: as a user would start it, and with vcycle's runtime settings
# (OMP_WAIT_POLICY=PASSIVE before start, glibc malloc thresholds, and OpenBLAS's OpenMP build where
# vcycle loads it: see `vcycle --version`). Each precision is measured: fp32,
# and bf16 (autocast forward, on both sides) where the CPU has native bf16, which is then vcycle's
# default. All runs alternate for ROUNDS rounds so that drift in machine load hits all of them;
# ratios are of the medians over rounds.
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
precisions=(fp32)
grep -qwE 'avx512_bf16|amx_bf16' /proc/cpuinfo && precisions+=(bf16)
tuned_env=(OMP_WAIT_POLICY=PASSIVE)
version=$("$bin" --version)
openmp_dir=$(ls -d /usr/lib/*/openblas-openmp 2>/dev/null | head -n 1)
[[ $version == *", OpenMP"* && -n $openmp_dir ]] && tuned_env+=(LD_LIBRARY_PATH="$openmp_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")
echo "$version; python tuned: ${tuned_env[*]}"
rate() { sed -n 's/.*: \([0-9]*\) tokens\/s.*/\1/p'; }
declare -A runs
for ((r = 1; r <= rounds; r++)); do
  line="round $r:"
  for p in "${precisions[@]}"; do
    c=$("$bin" bench train "${args[@]}" --threads "$threads" --precision "$p" | rate)
    y=$(env -u OMP_WAIT_POLICY /usr/bin/python3 bench/train_gpt.py "${args[@]}" --threads "$threads" --precision "$p" | rate)
    t=$(env "${tuned_env[@]}" /usr/bin/python3 bench/train_gpt.py "${args[@]}" --threads "$threads" --precision "$p" --tuned | rate)
    runs[$p.vcycle]+="$c " runs[$p.python]+="$y " runs[$p.tuned]+="$t "
    line+=" $p: vcycle $c, python $y, python tuned $t |"
  done
  echo "${line% |} tokens/s"
done
median() { printf '%s\n' $1 | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for p in "${precisions[@]}"; do
  awk -v c="$(median "${runs[$p.vcycle]}")" -v y="$(median "${runs[$p.python]}")" -v t="$(median "${runs[$p.tuned]}")" \
    -v m="$model" -v p="$p" 'BEGIN {
    printf "%s %s (median of rounds): vcycle %d tokens/s | python %d (vcycle %.2fx) | python tuned %d (vcycle %.2fx)\n", m, p, c, y, c / y, t, c / t }'
done
if [[ ${#precisions[@]} == 2 ]]; then
  awk -v c="$(median "${runs[bf16.vcycle]}")" -v t="$(median "${runs[fp32.tuned]}")" -v m="$model" 'BEGIN {
    printf "%s, each side as it starts by default on this CPU: vcycle (bf16, auto) %d tokens/s | python tuned fp32 %d (vcycle %.2fx)\n", m, c, t, c / t }'
fi
