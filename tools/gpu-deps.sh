#!/usr/bin/env bash
# Prepares the libraries vcycle needs besides LibTorch for a machine that lacks them (a GPU machine
# with only PyTorch, CMake, ninja and nvcc; see tools/gpu-check.sh), from Debian bookworm's packages:
# `apt-get download`s the .debs (dev packages and the runtime libraries they link to) and unpacks
# them with `dpkg -x` into third_party/gpu-deps/root (ignored by git). Also fetches the upstream
# sources of the two compiled ones (yaml-cpp, fmt) from the same Debian versions, for a LibTorch
# built with the pre-C++11 string ABI (PyTorch wheels before 2.7), which cannot link Debian's builds.
#
# Run it on any Debian/Ubuntu machine with network access (the GPU machine may have none), then
# ship third_party/gpu-deps with the source tree. Rerunning reuses the .debs already downloaded.
#
#   tools/gpu-deps.sh [--dest DIR] [--dry-run] [--no-sources]
#     --dest DIR    where to put debs/, root/ and src/ (default third_party/gpu-deps)
#     --dry-run     print what would be downloaded and run; touch nothing
#     --no-sources  skip the yaml-cpp / fmt source tarballs
set -euo pipefail
cd "$(dirname "$0")/.."

# Dev packages and the runtime libraries their .so links point at. CLI11, nlohmann-json and Catch2 2
# are header-only; gloo's headers are included by LibTorch's c10d headers (its code is in LibTorch).
PACKAGES=(libyaml-cpp-dev libyaml-cpp0.7 libfmt-dev libfmt9 libcli11-dev nlohmann-json3-dev catch2 libgloo-dev zlib1g-dev zlib1g)
SOURCES=(libyaml-cpp-dev libfmt-dev)  # the packages whose upstream source is fetched

dest=third_party/gpu-deps
dry=0
sources=1
while [ $# -gt 0 ]; do
  case "$1" in
    --dest) dest="$2"; shift 2 ;;
    --dry-run) dry=1; shift ;;
    --no-sources) sources=0; shift ;;
    *) echo "gpu-deps.sh: unknown argument '$1' (valid: --dest DIR, --dry-run, --no-sources)" >&2; exit 2 ;;
  esac
done

run() {
  if [ "$dry" = 1 ]; then echo "+ $*"; else "$@"; fi
}

for tool in apt-get dpkg-deb; do
  command -v "$tool" > /dev/null || { echo "gpu-deps.sh: $tool not found: run this on a Debian/Ubuntu machine" >&2; exit 2; }
done

echo "gpu-deps: ${#PACKAGES[@]} packages into $dest/root: ${PACKAGES[*]}"
run mkdir -p "$dest/debs" "$dest/root" "$dest/src"
for p in "${PACKAGES[@]}"; do
  if [ "$dry" = 0 ] && compgen -G "$dest/debs/${p}_*.deb" > /dev/null; then continue; fi
  # apt-get download writes to the current directory (and warns when _apt cannot write there).
  if [ "$dry" = 1 ]; then echo "+ (cd $dest/debs && apt-get download $p)"; else (cd "$dest/debs" && apt-get download -q "$p" 2>&1 | grep -v "unsandboxed" || true); fi
  if [ "$dry" = 0 ] && ! compgen -G "$dest/debs/${p}_*.deb" > /dev/null; then
    echo "gpu-deps.sh: apt-get download $p failed (network, or apt-get update needed)" >&2
    exit 3
  fi
done
for p in "${PACKAGES[@]}"; do
  if [ "$dry" = 1 ]; then echo "+ dpkg -x $dest/debs/${p}_<version>_<arch>.deb $dest/root"; continue; fi
  dpkg -x "$(ls "$dest"/debs/"${p}"_*.deb | head -1)" "$dest/root"
done

# Upstream sources: pool/main/<s>/<source>/<source>_<upstream version>.orig.tar.{xz,gz}, with the
# source name and version read from the binary package (no deb-src entries needed).
if [ "$sources" = 1 ]; then
  for p in "${SOURCES[@]}"; do
    if [ "$dry" = 1 ]; then echo "+ fetch the upstream source of $p (Debian pool, .orig.tar.xz or .gz) into $dest/src"; continue; fi
    deb=$(ls "$dest"/debs/"${p}"_*.deb | head -1)
    src=$(dpkg-deb -f "$deb" Source | cut -d' ' -f1)
    version=$(dpkg-deb -f "$deb" Version)
    upstream=${version#*:}
    upstream=${upstream%-*}
    if compgen -G "$dest/src/${src}_${upstream}.orig.tar.*" > /dev/null; then continue; fi
    got=0
    for ext in xz gz bz2; do
      url="http://deb.debian.org/debian/pool/main/${src:0:1}/$src/${src}_${upstream}.orig.tar.$ext"
      if curl -fsL -o "$dest/src/${src}_${upstream}.orig.tar.$ext" "$url"; then got=1; break; fi
      rm -f "$dest/src/${src}_${upstream}.orig.tar.$ext"
    done
    [ "$got" = 1 ] || { echo "gpu-deps.sh: cannot fetch the source of $src $upstream from deb.debian.org" >&2; exit 3; }
  done
fi

if [ "$dry" = 0 ]; then
  echo "gpu-deps: done; CMAKE_PREFIX_PATH=$(cd "$dest/root/usr" && pwd)"
fi
