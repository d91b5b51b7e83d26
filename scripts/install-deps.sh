#!/usr/bin/env bash
# Installs what cudefrag needs on Debian 12 (the CUDA 13 toolkit under /usr/local/cuda, cmake and
# g++ are expected to be there). Safe to run again: it installs only what is missing.
set -euo pipefail
# clang + libclang-rt-14-dev: the reader's libFuzzer target (scripts/fuzz.sh); chromium: the HTML
# report's screenshot test.
packages=(ninja-build pkg-config libspdlog-dev libfmt-dev libgtest-dev libgmock-dev
          libbenchmark-dev libunwind-dev libzstd-dev python3 clang libclang-rt-14-dev chromium)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if [[ ! -d /usr/local/cuda/include ]]; then
  echo "error: the CUDA toolkit is expected under /usr/local/cuda (headers are needed to build)" >&2
  exit 1
fi
