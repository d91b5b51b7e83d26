#!/usr/bin/env bash
# Fuzzes the trace reader and the report (analyzer/fuzz/, docs/fuzzing.md): builds the libFuzzer
# target with the `fuzz` preset (clang) and runs it for SECONDS (default 60) on a copy of
# tests/fuzz/corpus/reader, so the checked-in corpus only changes when someone merges into it.
# Fails on any crash, sanitizer report, input slower than 10 s or allocation over 64 MiB; the
# input is kept in BUILD/fuzz-run/artifacts/ and the command to replay it is printed.
#
# Usage: scripts/fuzz.sh [SECONDS]
# Environment: CUDEFRAG_FUZZ_BUILD   build directory (default build-fuzz, the preset's)
#              CUDEFRAG_FUZZ_JOBS    build jobs (default: all cores)
# Needs clang and its runtime libraries: on Debian 12 the packages clang and libclang-rt-14-dev.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
if [[ ! $seconds =~ ^[0-9]+$ ]] || ((seconds == 0)); then
  echo "usage: scripts/fuzz.sh [SECONDS]   (a whole number of seconds, default 60)" >&2
  exit 2
fi
build=${CUDEFRAG_FUZZ_BUILD:-build-fuzz}
jobs=${CUDEFRAG_FUZZ_JOBS:-$(nproc)}

if ! command -v clang++ >/dev/null; then
  echo "error: clang++ not found (Debian 12: apt-get install clang libclang-rt-14-dev)" >&2
  exit 1
fi
echo "=== fuzz: configure and build (${build})"
cmake --preset fuzz -B "$build" >/dev/null
if ! grep -q '^CUDEFRAG_HAVE_LIBFUZZER:INTERNAL=1$' "$build/CMakeCache.txt"; then
  echo "error: clang cannot link -fsanitize=fuzzer (Debian 12: apt-get install libclang-rt-14-dev)" >&2
  exit 1
fi
cmake --build "$build" --target cudefrag_reader_fuzz -j "$jobs"
fuzzer=$build/analyzer/fuzz/cudefrag_reader_fuzz

run=$build/fuzz-run
rm -rf "$run"
mkdir -p "$run/corpus" "$run/artifacts"
cp tests/fuzz/corpus/reader/* "$run/corpus/"

# -max_len: the seeds are real traces of a few KiB (a file header, one or two blocks); 16 KiB
# leaves room for several blocks and for records up to a quarter of their 64 KiB limit.
# -malloc_limit_mb: the reader holds one block (at most 4 MiB raw), so a larger allocation means
# a length field in the file drove it.
echo "=== fuzz: ${seconds} s on a copy of tests/fuzz/corpus/reader ($(ls "$run/corpus" | wc -l) seeds)"
status=0
"$fuzzer" "$run/corpus" \
  -dict=tests/fuzz/reader.dict \
  -max_len=16384 \
  -max_total_time="$seconds" \
  -timeout=10 \
  -rss_limit_mb=2048 \
  -malloc_limit_mb=64 \
  -print_final_stats=1 \
  -artifact_prefix="$run/artifacts/" \
  >"$run/fuzz.log" 2>&1 || status=$?

grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)' "$run/fuzz.log" || true
grep -E '^stat::' "$run/fuzz.log" || true
if ((status != 0)) || [[ -n $(ls -A "$run/artifacts") ]]; then
  echo "--- end of $run/fuzz.log"
  tail -n 60 "$run/fuzz.log"
  echo "error: the fuzzer failed (exit status ${status}); inputs kept:" >&2
  for f in "$run"/artifacts/*; do
    [[ -e $f ]] && echo "  $f   replay: $fuzzer $f" >&2
  done
  exit 1
fi
echo "=== fuzz: no crash in ${seconds} s; the grown corpus is in $run/corpus (log: $run/fuzz.log)"
