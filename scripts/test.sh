#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs dependencies, then builds and runs the tests
# three times — plain, under AddressSanitizer + UndefinedBehaviorSanitizer, and the concurrent
# tests under ThreadSanitizer. GPU tests skip without a GPU (scripts/gpu_check.sh runs them on
# one), then a short run of the trace reader's fuzz target (scripts/fuzz.sh; CUDEFRAG_FUZZ_SECONDS,
# default 30; the preset name `fuzz` runs only that).
# Usage: scripts/test.sh [default|asan-ubsan|tsan|fuzz ...]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
presets=("$@")
((${#presets[@]})) || presets=(default asan-ubsan tsan fuzz)
jobs=$(nproc)
for preset in "${presets[@]}"; do
  if [[ $preset == fuzz ]]; then
    echo "=== fuzz: the trace reader, ${CUDEFRAG_FUZZ_SECONDS:-30} s (at ${SECONDS} s)"
    scripts/fuzz.sh "${CUDEFRAG_FUZZ_SECONDS:-30}"
    continue
  fi
  echo "=== ${preset}: configure and build (at ${SECONDS} s)"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  echo "=== ${preset}: test (at ${SECONDS} s)"
  ctest --preset "$preset" --no-tests=error
done
echo "=== done in ${SECONDS} s"
