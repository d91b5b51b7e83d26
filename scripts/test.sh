#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs dependencies, then builds and runs the tests
# three times — plain, under AddressSanitizer + UndefinedBehaviorSanitizer, and the concurrent
# tests under ThreadSanitizer. GPU tests skip without a GPU (scripts/gpu_check.sh runs them on
# one). Usage: scripts/test.sh [default|asan-ubsan|tsan ...]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
presets=("$@")
((${#presets[@]})) || presets=(default asan-ubsan tsan)
jobs=$(nproc)
for preset in "${presets[@]}"; do
  echo "=== ${preset}: configure and build"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  echo "=== ${preset}: test"
  ctest --preset "$preset" --no-tests=error
done
