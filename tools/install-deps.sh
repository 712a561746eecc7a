#!/usr/bin/env bash
# Installs vcycle's build and run dependencies from Debian/Ubuntu packages (needs root or sudo).
# Skips apt entirely when everything is already installed.
set -euo pipefail
packages=(cmake ninja-build g++ ccache libtorch-dev libgloo-dev libyaml-cpp-dev libfmt-dev catch2 libopenblas0-openmp libopenblas0-pthread
          libcli11-dev nlohmann-json3-dev zlib1g-dev gnuplot-nox r-cran-janeaustenr bible-kjv dataset-fashion-mnist
          libsentencepiece-dev python3-torch python3-numpy python3-sentencepiece)  # python3-*: independent checks in the tests (export, tokenizer)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
