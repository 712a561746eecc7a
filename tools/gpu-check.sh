#!/usr/bin/env bash
# One run on a GPU machine (written for an NVIDIA H200 with PyTorch 2.x + CUDA in python3, CMake,
# ninja and nvcc; no yaml-cpp, fmt, Catch2, CLI11 or nlohmann-json): builds vcycle with
# -DVCYCLE_WITH_CUDA=ON against PyTorch's LibTorch, runs the CUDA tests, a `device: cuda`,
# `precision: bf16` smoke V-cycle of GPT, BERT and ViT, `vcycle bench train --model gpt2-small` with
# MFU against the GPU's dense bf16 peak, `vcycle bench optim` on the GPU, and PyTorch's fused AdamW
# at the same shapes. Everything goes to $OUT: gpu-check.json (one summary) and one log per step.
#
# Before: run tools/gpu-deps.sh on a machine with network and ship third_party/gpu-deps along.
#
#   OUT=/some/dir tools/gpu-check.sh [--deps DIR] [--build DIR] [--check-only] [--cpu --configure-only]
#     --check-only      stop after the GPU check (exit 0 when a GPU is usable)
#     --configure-only  stop after configuring
#     --cpu             no GPU check, VCYCLE_WITH_CUDA=OFF, the LibTorch CMake finds by itself (with
#                       --configure-only: how the tests check the deps and configure step on a CPU)
#
# Exit 0: every step passed; 1: some step failed (gpu-check.json says which); 2: bad setup (no
# GPU, no $OUT, no deps), said at once. Estimated (not yet timed on the machine): the build ~5
# minutes on 16 cores (the test binary is most of it), everything else ~3.
#
# The peak: NVIDIA's H200 datasheet gives 1,979 TFLOP/s BF16 Tensor Core *with 2:4 sparsity* for
# H200 SXM (989 dense) and 1,671 for H200 NVL (835 dense). The dense figure of the detected model is
# used; set GPU_PEAK_FLOPS to override it (e.g. 7.9e14 for a figure measured on the machine).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}
deps=third_party/gpu-deps
build=build-gpu
check_only=0
configure_only=0
cpu=0
while [ $# -gt 0 ]; do
  case "$1" in
    --deps) deps="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    --check-only) check_only=1; shift ;;
    --configure-only) configure_only=1; shift ;;
    --cpu) cpu=1; shift ;;
    *) echo "gpu-check.sh: unknown argument '$1' (valid: --deps DIR, --build DIR, --check-only, --configure-only, --cpu)" >&2; exit 2 ;;
  esac
done
fail_setup() { echo "gpu-check.sh: $*" >&2; exit 2; }

# ---- 0. a GPU, or stop now
[ -n "${OUT:-}" ] || fail_setup "set OUT to the directory for the results"
mkdir -p "$OUT" || fail_setup "cannot create OUT=$OUT"
[ "$cpu" = 1 ] && [ "$configure_only" = 0 ] && fail_setup "--cpu goes with --configure-only"
if [ "$cpu" = 0 ]; then
  command -v nvidia-smi > /dev/null 2>&1 || fail_setup "no GPU: nvidia-smi not found"
  gpu_name=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
  [ -n "$gpu_name" ] || fail_setup "no GPU: nvidia-smi lists none"
  "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' > /dev/null 2>&1 ||
    fail_setup "no GPU usable from $PY: torch.cuda.is_available() is false (or torch is missing)"
  echo "gpu-check: $gpu_name"
  [ "$check_only" = 1 ] && exit 0
else
  gpu_name="none (--cpu)"
fi
[ -d "$deps/root/usr" ] || fail_setup "$deps/root missing: run tools/gpu-deps.sh (on a machine with network) first"

case "$gpu_name" in
  *H200*NVL*) peak_default=835e12 ;;
  *H200*|*H100*SXM*|*H100\ 80GB\ HBM3*) peak_default=989e12 ;;
  *H100*) peak_default=756e12 ;;  # H100 PCIe: 1,513 with sparsity
  *) peak_default=0 ;;
esac
PEAK=${GPU_PEAK_FLOPS:-$peak_default}

# ---- the steps: each logs to $OUT/<name>.log and records its status and time
declare -a NAMES STATUS SECONDS_TAKEN
step() {  # step NAME TIMEOUT_S COMMAND...
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  echo "gpu-check: $name ..."
  # bash -c: a step may be one of the functions below (exported with the variables they read).
  timeout "$limit" bash -c '"$@"' "$name" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  NAMES+=("$name"); STATUS+=("$rc"); SECONDS_TAKEN+=($((SECONDS - t0)))
  [ $rc = 0 ] && echo "gpu-check: $name ok ($((SECONDS - t0)) s)" || { echo "gpu-check: $name FAILED (exit $rc), see $OUT/$name.log"; tail -5 "$OUT/$name.log"; }
  return $rc
}

if [ "$cpu" = 0 ]; then
  TORCH_PREFIX=$("$PY" -c 'import torch; print(torch.utils.cmake_prefix_path)')
  ABI=$("$PY" -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')
else
  TORCH_PREFIX=""  # Debian's LibTorch, found in /usr
  ABI=1
fi
DEPS=$(cd "$deps" && pwd)
LIBDIR=$(ls -d "$DEPS"/root/usr/lib/*-linux-gnu | head -1)
PREFIX="$DEPS/root/usr"
RPATH="$LIBDIR"

# ---- 1. yaml-cpp and fmt for a pre-C++11-ABI LibTorch (Debian's are built with the C++11 ABI)
build_abi0() {
  local src=$DEPS/abi0-src inst=$DEPS/abi0
  rm -rf "$src" && mkdir -p "$src" "$inst" || return 1
  for t in "$DEPS"/src/yaml-cpp_*.orig.tar.* "$DEPS"/src/fmtlib_*.orig.tar.*; do
    [ -f "$t" ] || { echo "missing $DEPS/src/yaml-cpp / fmtlib sources: rerun tools/gpu-deps.sh without --no-sources"; return 1; }
    local d="$src/$(basename "$t" | sed 's/_.*//')"
    mkdir -p "$d" && tar -xf "$t" -C "$d" --strip-components=1 || return 1
    cmake -S "$d" -B "$d/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$inst" \
      -DCMAKE_CXX_FLAGS="-D_GLIBCXX_USE_CXX11_ABI=0" -DBUILD_SHARED_LIBS=ON -DYAML_BUILD_SHARED_LIBS=ON \
      -DYAML_CPP_BUILD_TESTS=OFF -DYAML_CPP_BUILD_TOOLS=OFF -DFMT_DOC=OFF -DFMT_TEST=OFF -DCMAKE_POSITION_INDEPENDENT_CODE=ON || return 1
    cmake --build "$d/build" -j "$(nproc)" && cmake --install "$d/build" || return 1
  done
}
export -f build_abi0
export DEPS
if [ "$ABI" = 0 ]; then
  step abi0-deps 300 build_abi0 || true
  PREFIX="$DEPS/abi0;$PREFIX"
  RPATH="$DEPS/abi0/lib;$DEPS/abi0/lib64;$RPATH"
fi

# ---- 2. configure and build with CUDA
NVCC=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
CUDA_ARGS=(-DVCYCLE_WITH_CUDA=ON -DCMAKE_CUDA_COMPILER="$NVCC")
[ "$cpu" = 1 ] && CUDA_ARGS=(-DVCYCLE_WITH_CUDA=OFF)
# c10d's NCCL headers include <nccl.h>; PyTorch wheels keep it (and libnccl.so.2, without the
# unversioned link) in the nvidia-nccl package next to torch.
NCCL_DIR=$("$PY" -c 'import os, nvidia.nccl as n; print(list(n.__path__)[0])' 2>/dev/null || true)
CXXFLAGS_EXTRA=""
LDFLAGS_EXTRA=""
if [ -n "$NCCL_DIR" ] && [ -f "$NCCL_DIR/include/nccl.h" ]; then
  CXXFLAGS_EXTRA="-isystem $NCCL_DIR/include"
  LDFLAGS_EXTRA="-L$NCCL_DIR/lib -Wl,--no-as-needed -l:libnccl.so.2 -Wl,--as-needed"
  RPATH="$RPATH;$NCCL_DIR/lib"
fi
step configure 180 cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "${CUDA_ARGS[@]}" \
  -DVCYCLE_UNITY_BUILD=ON \
  -DCMAKE_PREFIX_PATH="$PREFIX;$TORCH_PREFIX" -DCMAKE_INCLUDE_PATH="$DEPS/root/usr/include" \
  -DCMAKE_BUILD_RPATH="$RPATH" -DCMAKE_INSTALL_RPATH="$RPATH" -DCMAKE_CXX_FLAGS="$CXXFLAGS_EXTRA" \
  -DCMAKE_EXE_LINKER_FLAGS="$LDFLAGS_EXTRA"
if [ "$configure_only" = 1 ]; then
  [ "${STATUS[-1]}" = 0 ] && exit 0
  exit 1
fi
step build 420 cmake --build "$build" -j "$(nproc)"
export LD_LIBRARY_PATH="${RPATH//;/:}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
VC="$build/vcycle"
[ -x "$VC" ] || VC="$build/vcycle_cli"

# ---- 3. the CUDA tests (kernels vs the per-tensor path, operators on CUDA)
step cuda-tests 180 "$build/tests/vcycle_tests" "[cuda]"

# ---- 4. smoke V-cycles: device cuda, precision bf16, a few steps
SMOKE="$OUT/smoke"
mkdir -p "$SMOKE"
prepare_smoke_data() {
  # The README is ~60 kB: small chunks, so that a tenth of it can be held out.
  "$VC" prepare "$ROOT/README.md" --out "$SMOKE/text" --chunk-bytes 1024 --valid-fraction 0.1 || return 1
  # A tiny IDX image set (28×28, 10 classes: the label says which band is bright), for ViT.
  "$PY" - "$SMOKE/img" <<'EOF'
import os, random, struct, sys
d = sys.argv[1]; os.makedirs(d, exist_ok=True); random.seed(0)
for split, n in (("train", 512), ("t10k", 128)):
    labels = [random.randrange(10) for _ in range(n)]
    img = bytearray()
    for y in labels:
        px = [random.randrange(40) for _ in range(28 * 28)]
        for r in range(28):
            if r * 10 // 28 == y:
                for c in range(28): px[r * 28 + c] = 200 + random.randrange(55)
        img += bytes(px)
    open(f"{d}/{split}-images-idx3-ubyte", "wb").write(struct.pack(">IIII", 0x803, n, 28, 28) + img)
    open(f"{d}/{split}-labels-idx1-ubyte", "wb").write(struct.pack(">II", 0x801, n) + bytes(labels))
EOF
}
smoke() {  # smoke NAME CONFIG DATA-OVERRIDES...
  local name=$1 cfg=$2; shift 2
  "$VC" run "$cfg" --quiet --set device=cuda --set precision=bf16 --set output="$SMOKE/$name" \
    --set baseline.steps=6 --set phases[0].steps=2 --set phases[1].steps=2 --set phases[2].steps=2 \
    --set eval.every=2 --set eval.batches=2 --set train.checkpoint_every=0 "$@" &&
    "$PY" -c 'import json,sys; r=json.load(open(sys.argv[1])); print("final val loss", r["baseline"]["final_val_loss"], r["vcycle"]["final_val_loss"])' "$SMOKE/$name/report.json"
}
export -f prepare_smoke_data smoke
export VC SMOKE PY ROOT
step smoke-data 60 prepare_smoke_data
TEXT="--set data.train=$SMOKE/text/train.bin --set data.valid=$SMOKE/text/valid.bin"
# shellcheck disable=SC2086
step smoke-gpt 120 smoke gpt configs/default.yaml $TEXT
# shellcheck disable=SC2086
step smoke-bert 120 smoke bert configs/bert-2level.yaml $TEXT
step smoke-vit 120 smoke vit configs/vit-2level.yaml --set data.train="$SMOKE/img/train-images-idx3-ubyte" \
  --set data.valid="$SMOKE/img/t10k-images-idx3-ubyte"

# ---- 5. benchmarks: training step with MFU, optimizers, PyTorch's fused AdamW at the same shapes
PEAK_ARGS=()
[ "$PEAK" != 0 ] && PEAK_ARGS=(--peak-flops "$PEAK")
step bench-train 180 "$VC" bench train --model gpt2-small --device cuda --precision bf16 --batch 16 --steps 10 \
  --warmup 3 "${PEAK_ARGS[@]}" --json "$OUT/bench_train.json"
step bench-optim 120 "$VC" bench optim --shapes gpt2-small --device cuda --steps 50 --warmup 5 --json "$OUT/bench_optim.json"
step adamw-fused 120 "$PY" bench/adamw_fused.py "$OUT/bench_optim.json" "$OUT/adamw_fused.json" --steps 50 --warmup 5

# ---- the summary
status_json=$(for i in "${!NAMES[@]}"; do printf '{"step":"%s","exit":%s,"seconds":%s}\n' "${NAMES[$i]}" "${STATUS[$i]}" "${SECONDS_TAKEN[$i]}"; done)
"$PY" - "$OUT" "$gpu_name" "$PEAK" "$ABI" <<EOF
import json, os, sys, torch
out, gpu, peak, abi = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
steps = [json.loads(l) for l in """$status_json""".splitlines() if l.strip()]
def load(name):
    p = os.path.join(out, name)
    return json.load(open(p)) if os.path.exists(p) else None
summary = {"gpu": gpu, "torch": torch.__version__, "cuda": torch.version.cuda, "cxx11_abi": abi,
           "peak_flops": peak or None,
           "peak_source": "NVIDIA H200/H100 datasheet dense BF16 Tensor Core figure (sparsity figure / 2), or GPU_PEAK_FLOPS",
           "steps": steps, "ok": all(s["exit"] == 0 for s in steps),
           "bench_train": load("bench_train.json"), "bench_optim": load("bench_optim.json"),
           "adamw_fused": load("adamw_fused.json")}
json.dump(summary, open(os.path.join(out, "gpu-check.json"), "w"), indent=2)
print("gpu-check:", "all steps passed" if summary["ok"] else "FAILED: " + ", ".join(s["step"] for s in steps if s["exit"]))
sys.exit(0 if summary["ok"] else 1)
EOF
