#!/usr/bin/env bash
# The main job on a machine without a GPU: install what is needed, build the `cudefrag` command,
# and run the analyzer on a trace recorded on a real GPU (shipped in examples/traces/).
# Usage: scripts/demo.sh [TRACE] [report options...]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh >&2
if [[ ! -f build/CMakeCache.txt ]]; then
  cmake --preset default >/dev/null
fi
cmake --build build -j "$(nproc)" --target cudefrag_launcher >/dev/null
trace=${1:-examples/traces/h200/pytorch-oom-1gib.cdtrace}
shift || true
exec build/launcher/cudefrag report "$trace" "$@"
