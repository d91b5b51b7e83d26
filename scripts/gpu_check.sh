#!/usr/bin/env bash
# The whole GPU check in one run, for the GPU machine (GPU time is scarce: one run does all).
#
# Usage: scripts/gpu_check.sh BUILD_DIR OUT_DIR
#
# BUILD_DIR is either a build folder made elsewhere and carried over (run scripts/gpu_bundle.sh
# on it before carrying) or a path with no build in it, where the project is then configured with
# the `release` preset and built. Each step below writes OUT_DIR/logs/<step>.log and gets one
# line in the table printed last (name, PASS/FAIL/SKIP, key figure), also saved as
# OUT_DIR/summary.txt; benchmark results go to OUT_DIR/bench_<program>.json;
# OUT_DIR/gpu_check_logs.tar.gz holds all of it, so that one file carries everything back. A
# missing piece (launcher not built, a benchmark absent) is SKIP, never an abort. A full run took
# about 3 minutes on an H200 (carried build) plus about 30 s to build there.
#
# Steps: nvidia-smi; ctest -L gpu; the CUDA semantics test under the shim (passthrough, arena);
# each CUDA example alone, under `cudefrag run --mode passthrough` (its printed call counts
# compared with the launcher's summary) and under --mode arena; the fragmentation demo under the
# arena with a 2 GiB limit; train_step.py in each PyTorch allocator configuration alone and under
# the shim in both modes (checksums compared, the entry points each backend calls captured);
# memory_check.py under the arena with backend:cudaMallocAsync; two_functions.py under the shim with a trace; passthrough_bench with
# and without the shim (time the hooks add per pair); compute-sanitizer memcheck on the GPU test
# and the CUDA examples under the shim; the Google Benchmark programs of bench/vmm, bench/arena (CUDA backend) and
# bench/trace. Exit status 0 when no step failed.
#
# Environment: PYTHON (default python3), GPU_CHECK_STEPS (step groups, below), GPU_CHECK_BENCH (0: skip the benchmark programs), GPU_CHECK_BUDGET_S (seconds for all steps after the
# build, default 270, so that a whole run stays under 5 minutes: steps that would start later are
# skipped), CUDA_HOME (default /usr/local/cuda).
set -uo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 BUILD_DIR OUT_DIR" >&2
  exit 64
fi
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$(mkdir -p "$1" && cd "$1" && pwd)
out=$(mkdir -p "$2" && cd "$2" && pwd)
logs="$out/logs"
mkdir -p "$logs"
py=${PYTHON:-python3}
cuda_home=${CUDA_HOME:-/usr/local/cuda}
budget=${GPU_CHECK_BUDGET_S:-270}
compare_counts="$repo/tests/gpu/compare_counts.py"

export PATH="$cuda_home/bin:$PATH"
export LD_LIBRARY_PATH="$build/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PYTHONUNBUFFERED=1
export CUBLAS_WORKSPACE_CONFIG=:4096:8

rows=()
failures=0

# GPU_CHECK_STEPS: the step groups to run, comma-separated (default: all): ctest, semantics,
# examples, pytorch, oom, passthrough, memcheck, bench, workloads (or workload_<w>),
# trace_overhead, exports, record_workloads, two_gpus. Only when named: bisect*, comfyui*,
# traced_card_<w>, python_versions, outside_memory, workload_tensors, alternate_<w>.
steps=${GPU_CHECK_STEPS:-all}
want() { [[ $steps == all || ",$steps," == *",$1,"* ]]; }
# The slow and special groups run only when named.
asked() { [[ ",$steps," == *",$1,"* ]]; }

# record NAME STATUS FIGURE
record() {
  local line
  line=$(printf '%-44s %-5s %s' "$1" "$2" "$3")
  rows+=("$line")
  [[ $2 == FAIL ]] && failures=$((failures + 1))
  echo "== $line"
}

# run_logged LOG LIMIT_S CMD...: runs CMD with a time limit, output (both streams) to LOG.
# Returns CMD's exit status; 124 means it ran out of time.
run_logged() {
  local log=$1 limit=$2
  shift 2
  echo "\$ $*" >"$log"
  timeout --kill-after=10 "$limit" "$@" >>"$log" 2>&1
  local rc=$?
  [[ $rc -eq 124 ]] && echo "TIMEOUT after ${limit}s" >>"$log"
  echo "exit status $rc" >>"$log"
  return "$rc"
}

steps_started=$SECONDS
# remaining_s: seconds left of the budget for steps.
# GPU_CHECK_DEADLINE (seconds since the epoch; set for lanes) ends the budget earlier.
remaining_s() {
  local left=$((budget - (SECONDS - steps_started)))
  if [[ -n ${GPU_CHECK_DEADLINE:-} ]]; then
    local to_deadline=$((GPU_CHECK_DEADLINE - $(date +%s)))
    ((to_deadline < left)) && left=$to_deadline
  fi
  echo "$left"
}
# limit_for WANTED_S: the time limit a step gets, or nothing when the budget is spent.
limit_for() {
  local left
  left=$(remaining_s)
  ((left < 5)) && return 1
  echo $(($1 < left ? $1 : left))
}

# for_workload NAME W DEFAULT: the value of NAME_W, else of NAME, else DEFAULT (a step's setting
# for one workload, or for all of them).
for_workload() {
  local one="$1_$2" all=$1
  echo "${!one:-${!all:-$3}}"
}

is_elf() { [[ -f $1 && $(head -c4 "$1" 2>/dev/null | od -An -c | tr -d ' ') == '177ELF' ]]; }

# ---------------------------------------------------------------------------------------------
# Build, or adopt a carried build.
echo "gpu_check: repo $repo, build $build, out $out"
echo "gpu_check: $(date -u +%FT%TZ) $(hostname) commit $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -f $build/CMakeCache.txt ]]; then
  # A carried build refers to the paths it was made at (ctest files, run paths). Where those do
  # not exist here, point them at this build and this checkout.
  orig_build=$(sed -n 's/^CMAKE_CACHEFILE_DIR:INTERNAL=//p' "$build/CMakeCache.txt")
  orig_src=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$build/CMakeCache.txt")
  figure="carried (made at $orig_build)"
  for pair in "$orig_build|$build" "$orig_src|$repo"; do
    from=${pair%%|*} to=${pair#*|}
    if [[ -n $from && $from != "$to" && ! -e $from ]]; then
      if mkdir -p "$(dirname "$from")" 2>/dev/null && ln -s "$to" "$from" 2>/dev/null; then
        figure+="; linked $from"
      else
        figure+="; cannot link $from"
      fi
    fi
  done
  record build PASS "$figure"
else
  log="$logs/build.log"
  if (cd "$repo" && run_logged "$log" 120 cmake --preset release -B "$build"); then
    run_logged "$log.tmp" 420 cmake --build "$build" -j "$(nproc)" -- -k 0
    rc=$?
    cat "$log.tmp" >>"$log" && rm -f "$log.tmp"
    if [[ $rc -eq 0 ]]; then
      record build PASS "built with the release preset"
    else
      record build FAIL "some targets failed (exit $rc): continuing with what was built"
    fi
  else
    record build FAIL "configure failed: see logs/build.log"
  fi
  steps_started=$SECONDS
fi

# Where the pieces are, if they were built.
find_built() { find "$build" -path '*/CMakeFiles' -prune -o -type f -name "$1" -print 2>/dev/null | head -1; }
launcher=$(find_built cudefrag)
is_elf "$launcher" || launcher=""
shim_lib=$(find_built libcudefrag.so)
examples="$build/examples/cuda"
semantics="$build/tests/gpu/test_cuda_semantics"
echo "gpu_check: launcher ${launcher:-none}, shim ${shim_lib:-none}"

# shim_prefix MODE: sets the array `shim` to the command prefix that runs a program under the
# launcher, or with the library preloaded by hand when only the library was built (then there is
# no summary to compare with).
have_shim() { [[ -n $launcher || -n $shim_lib ]]; }
shim_prefix() {
  if [[ -n $launcher ]]; then
    # Each step sets PYTORCH_CUDA_ALLOC_CONF itself (none: PyTorch's native allocator).
    shim=("$launcher" run --mode "$1" --keep-torch-alloc-conf --)
  else
    shim=(env LD_PRELOAD="$shim_lib" CUDEFRAG_MODE="$1")
  fi
}

# A program passed when it said so and nothing in its log (a child process, say) said otherwise.
passed() { grep -q "RESULT PASS" "$1" && ! grep -q "RESULT FAIL" "$1"; }

# Calls per entry point, from a program's own lines: "cudaMalloc=12 cudaFree=12 ...".
program_calls() {
  sed -n 's/^\[[^]]*\] call \([A-Za-z0-9_]*\) count=\([0-9]*\).*/\1=\2/p' "$1" | tr '\n' ' '
}

# ---------------------------------------------------------------------------------------------
# nvidia-smi
log="$logs/nvidia_smi.log"
if limit=$(limit_for 30) && run_logged "$log" "$limit" nvidia-smi; then
  gpus=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null |
    sed 's/^/ /' | tr '\n' ';')
  record nvidia-smi PASS "${gpus# }"
else
  record nvidia-smi FAIL "nvidia-smi did not run: see logs/nvidia_smi.log"
fi

# ---------------------------------------------------------------------------------------------
# Lanes: GPU_CHECK_LANES="groups;groups;..." runs each lane's step groups in a copy of this script
# on a GPU of its own (lane i on GPU i mod the GPUs there; lanes that share a GPU run one after
# another), all lanes at once, so that a machine of several GPUs does several slow steps (the
# smaller-card bisections, ComfyUI) in the time of one. Each lane writes OUT_DIR/laneN/ and its
# rows join this table. The steps of GPU_CHECK_STEPS then run here, after the lanes, with every
# GPU visible (the two-GPU checks, the peer-access tests). Each lane has the whole
# GPU_CHECK_BUDGET_S, counted from their common start (lanes that share a GPU share it); the
# steps after them have GPU_CHECK_AFTER_LANES_S (default 120).
lane_dirs=()
if [[ -n ${GPU_CHECK_LANES:-} && -z ${GPU_CHECK_IN_LANE:-} ]]; then
  ngpu=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')
  ((ngpu > 0)) || ngpu=1
  IFS=';' read -ra lanes <<<"$GPU_CHECK_LANES"
  declare -A lane_cmds=()
  deadline=$(($(date +%s) + budget))
  for i in "${!lanes[@]}"; do
    dev=$((i % ngpu))
    lane_dirs+=("$out/lane$i")
    lane_cmds[$dev]+="CUDA_VISIBLE_DEVICES=$dev GPU_CHECK_IN_LANE=1 GPU_CHECK_DEADLINE=$deadline GPU_CHECK_STEPS='${lanes[i]}' \
'$0' '$build' '$out/lane$i' >'$logs/lane$i.log' 2>&1; "
  done
  echo "gpu_check: ${#lanes[@]} lanes on $ngpu GPU(s): ${GPU_CHECK_LANES}"
  for dev in "${!lane_cmds[@]}"; do
    bash -c "${lane_cmds[$dev]}" &
  done
  wait
  for i in "${!lanes[@]}"; do
    if [[ -f $out/lane$i/summary.txt ]]; then
      while IFS= read -r line; do
        [[ $line =~ ^(build|nvidia-smi)\  ]] && continue
        rows+=("$line")
        [[ ${line:45:4} == FAIL ]] && failures=$((failures + 1))
      done < <(tail -n +3 "$out/lane$i/summary.txt")
    else
      record "lane $i (${lanes[i]})" FAIL "no summary: see logs/lane$i.log"
    fi
  done
  budget=$((SECONDS - steps_started + ${GPU_CHECK_AFTER_LANES_S:-120}))
  steps=${GPU_CHECK_STEPS:-none}
fi

if want ctest; then
# ---------------------------------------------------------------------------------------------
# GPU tests: ctest -L gpu, or, where ctest cannot run this build, the gtest programs whose tests
# carry the gpu label.
log="$logs/ctest_gpu.log"
if ! limit=$(limit_for 240); then
  record "ctest -L gpu" SKIP "out of time"
elif [[ ! -f $build/CTestTestfile.cmake ]]; then
  record "ctest -L gpu" SKIP "no ctest files in the build"
else
  run_logged "$log" "$limit" ctest --test-dir "$build" -L gpu --output-on-failure --timeout 180
  rc=$?
  summary=$(grep -E "tests passed|No tests were found" "$log" | tail -1)
  skipped=$(grep -c "(Skipped)" "$log")
  if grep -q "No tests were found" "$log"; then
    record "ctest -L gpu" SKIP "no test carries the gpu label"
  elif grep -qE "Could not find executable|Unable to find executable" "$log"; then
    # ctest's files point at executables that are not where they say: run them directly.
    fallback_rc=0
    count=0
    while read -r f; do
      exe=$(grep -o 'add_test( *\[=\[[^]]*\]=\] *[^ ]*' "$f" | head -1 | awk '{print $NF}')
      [[ -n $orig_build ]] && exe=${exe/#$orig_build/$build}
      is_elf "$exe" || continue
      count=$((count + 1))
      run_logged "$logs/gtest_$(basename "$exe").log" "$limit" "$exe" || fallback_rc=1
    done < <(find "$build" -name '*_tests.cmake' -exec grep -l 'LABELS.*gpu' {} + 2>/dev/null)
    if [[ $fallback_rc -eq 0 ]]; then
      record "gtest (gpu) programs" PASS "$count programs passed (ctest could not run them)"
    else
      record "gtest (gpu) programs" FAIL "of $count programs some failed: see logs/gtest_*.log"
    fi
  elif [[ $rc -eq 0 ]]; then
    record "ctest -L gpu" PASS "$summary; $skipped skipped"
  else
    record "ctest -L gpu" FAIL "${summary:-exit $rc}; see logs/ctest_gpu.log"
  fi
fi

fi  # want
if want semantics; then
# The semantics test under the shim, in both modes: the shim must keep every semantic it checks.
for mode in passthrough arena; do
  name="semantics test ($mode)"
  log="$logs/semantics_$mode.log"
  if ! is_elf "$semantics"; then
    record "$name" SKIP "test_cuda_semantics not built"
  elif ! have_shim; then
    record "$name" SKIP "neither launcher nor libcudefrag.so built"
  elif ! limit=$(limit_for 120); then
    record "$name" SKIP "out of time"
  elif shim_prefix "$mode" && run_logged "$log" "$limit" "${shim[@]}" "$semantics"; then
    record "$name" PASS "$(grep -o '\[  PASSED  \] [0-9]* tests\?' "$log" | tail -1)"
  else
    record "$name" FAIL "$(grep -o '[0-9]* FAILED TESTS\?' "$log" | tail -1): see ${log#"$out"/}"
  fi
done

fi  # want
if want examples; then
# ---------------------------------------------------------------------------------------------
# CUDA examples.
# example_run NAME KIND(alone|passthrough|arena) COUNTS(compare|info|none) PROGRAM ARGS...
example_run() {
  local name=$1 kind=$2 counts=$3
  shift 3
  local label="$name ($kind)" log="$logs/example_${name// /_}_$kind.log" limit
  if ! is_elf "$1"; then
    record "$label" SKIP "$(basename "$1") not built"
    return
  fi
  if [[ $kind != alone ]] && ! have_shim; then
    record "$label" SKIP "neither launcher nor libcudefrag.so built"
    return
  fi
  if ! limit=$(limit_for 120); then
    record "$label" SKIP "out of time"
    return
  fi
  local rc
  if [[ $kind == alone ]]; then
    run_logged "$log" "$limit" "$@"
  else
    shim_prefix "$kind"
    run_logged "$log" "$limit" "${shim[@]}" "$@"
  fi
  rc=$?
  if [[ $rc -ne 0 ]] || ! passed "$log"; then
    record "$label" FAIL "exit $rc: see ${log#"$out"/}"
    return
  fi
  local calls
  calls=$(program_calls "$log")
  if [[ $counts == none ]]; then
    record "$label" PASS "$calls"
    return
  fi
  if [[ -z $launcher ]]; then
    record "$label" PASS "no launcher, counts not compared"
    return
  fi
  local verdict
  if [[ $counts == info ]]; then
    verdict=$($py "$compare_counts" --info "$log" 2>&1)
    echo "$verdict" >>"$log"
    record "$label" PASS "${verdict#compare_counts: }"
    return
  fi
  verdict=$($py "$compare_counts" "$log" 2>&1)
  rc=$?
  echo "$verdict" >>"$log"
  case $rc in
    0) record "$label" PASS "$(echo "$verdict" | tail -1 | sed 's/compare_counts: //')" ;;
    3) record "$label" FAIL "launcher printed no summary of calls" ;;
    *) record "$label" FAIL "$(echo "$verdict" | grep -E 'MISMATCH|MISSING' | sed 's/compare_counts: *//' | tr '\n' ';')" ;;
  esac
}

example_run runtime_alloc alone none "$examples/runtime_alloc"
example_run runtime_alloc passthrough compare "$examples/runtime_alloc"
example_run runtime_alloc arena compare "$examples/runtime_alloc"
# Static runtime: the shim cannot see its cuda* calls; record which driver calls it did see.
example_run runtime_alloc_static alone none "$examples/runtime_alloc_static"
example_run runtime_alloc_static passthrough info "$examples/runtime_alloc_static"
example_run driver_alloc alone none "$examples/driver_alloc" --mode all
for m in direct procaddress procaddress-ptds dlopen; do
  example_run "driver_alloc $m" passthrough compare "$examples/driver_alloc" --mode "$m"
done
example_run driver_alloc arena compare "$examples/driver_alloc" --mode all
example_run fork_first alone none "$examples/fork_first"
example_run fork_first passthrough compare "$examples/fork_first"
example_run stress_streams alone none "$examples/stress_streams"
example_run stress_streams passthrough compare "$examples/stress_streams"
example_run stress_streams arena compare "$examples/stress_streams"

# Fragmentation under a 2 GiB limit: fill, free every other block, allocate one larger than any
# hole. Only under the arena (alone it would fill the whole card).
frag="$examples/fragmentation"
log="$logs/example_fragmentation_arena.log"
if ! is_elf "$frag"; then
  record "fragmentation (arena, 2GiB)" SKIP "fragmentation not built"
elif ! have_shim; then
  record "fragmentation (arena, 2GiB)" SKIP "neither launcher nor libcudefrag.so built"
elif ! limit=$(limit_for 60); then
  record "fragmentation (arena, 2GiB)" SKIP "out of time"
else
  if [[ -n $launcher ]]; then
    cmd=("$launcher" run --mode arena --limit 2GiB -- "$frag")
  else
    cmd=(env LD_PRELOAD="$shim_lib" CUDEFRAG_MODE=arena CUDEFRAG_LIMIT=2GiB "$frag")
  fi
  run_logged "$log" "$limit" "${cmd[@]}"
  rc=$?
  if [[ $rc -eq 0 ]] && passed "$log"; then
    record "fragmentation (arena, 2GiB)" PASS \
      "$(grep -o 'filled [0-9]* blocks' "$log"); $(grep -o 'stitches [0-9]*' "$log" | tail -1)"
  else
    record "fragmentation (arena, 2GiB)" FAIL "exit $rc: see ${log#"$out"/}"
  fi
fi

fi  # want
if want pytorch; then
# ---------------------------------------------------------------------------------------------
# PyTorch: train_step.py per allocator configuration, alone (writes the reference checksums)
# and under the shim (compares with them); the shim's summary says what each backend calls.
if ! $py -c 'import torch; assert torch.cuda.is_available()' >"$logs/torch_probe.log" 2>&1; then
  record "pytorch" SKIP "$py has no CUDA PyTorch: see logs/torch_probe.log"
else
  for conf in "" "expandable_segments:True" "backend:cudaMallocAsync"; do
    tag=${conf:-native}
    tag=${tag%%:*}
    [[ $conf == backend:cudaMallocAsync ]] && tag=cudaMallocAsync
    ref="$logs/train_step_$tag.json"
    rm -f "$ref"
    for kind in alone passthrough arena; do
      label="train_step $tag ($kind)"
      log="$logs/train_step_${tag}_$kind.log"
      if [[ $kind != alone ]] && ! have_shim; then
        record "$label" SKIP "neither launcher nor libcudefrag.so built"
        continue
      fi
      if ! limit=$(limit_for 150); then
        record "$label" SKIP "out of time"
        continue
      fi
      envs=(env -u PYTORCH_CUDA_ALLOC_CONF)
      [[ -n $conf ]] && envs=(env PYTORCH_CUDA_ALLOC_CONF="$conf")
      cmd=("${envs[@]}" "$py" "$repo/examples/pytorch/train_step.py" --compare "$ref")
      if [[ $kind == alone ]]; then
        run_logged "$log" "$limit" "${cmd[@]}"
      else
        shim_prefix "$kind"
        run_logged "$log" "$limit" "${shim[@]}" "${cmd[@]}"
      fi
      rc=$?
      peak=$(sed -n 's/.*peak_allocated_bytes=\([0-9]*\).*/\1/p' "$log" | tail -1)
      backend=$(sed -n 's/.*allocator_backend=\([A-Za-z]*\).*/\1/p' "$log" | tail -1)
      figure="backend=$backend peak=$(( ${peak:-0} / 1048576 ))MiB"
      if [[ $kind != alone ]]; then
        figure+="; checksums equal to alone's"
        if [[ -n $launcher ]]; then
          seen=$($py "$compare_counts" --info "$log" 2>&1)
          echo "$seen" >>"$log"
          figure+="; ${seen#compare_counts: }"
        fi
      fi
      if [[ $rc -eq 0 ]] && passed "$log"; then
        record "$label" PASS "$figure"
      elif [[ $kind == alone && ! -f $ref ]]; then
        record "$label" FAIL "exit $rc, no reference written: see ${log#"$out"/}"
      else
        record "$label" FAIL "exit $rc: $(grep -m1 'error' "$log" | cut -c1-120)"
      fi
    done
  done

  # memory_check.py: under the arena with backend:cudaMallocAsync, what memory_stats(),
  # mem_get_info() and empty_cache() report must agree with what the arena holds.
  log="$logs/memory_check_arena.log"
  if ! have_shim; then
    record "memory_check (arena)" SKIP "neither launcher nor libcudefrag.so built"
  elif ! limit=$(limit_for 90); then
    record "memory_check (arena)" SKIP "out of time"
  else
    if [[ -n $launcher ]]; then
      cmd=("$launcher" run --mode arena --limit 8GiB --)
    else
      cmd=(env LD_PRELOAD="$shim_lib" CUDEFRAG_MODE=arena CUDEFRAG_LIMIT=8GiB)
    fi
    run_logged "$log" "$limit" "${cmd[@]}" env PYTORCH_CUDA_ALLOC_CONF=backend:cudaMallocAsync \
      "$py" "$repo/examples/pytorch/memory_check.py" --expect-total $((8 << 30))
    rc=$?
    if [[ $rc -eq 0 ]] && grep -q "memory_check: RESULT PASS" "$log"; then
      record "memory_check (arena)" PASS "$(grep -c '^memory_check: ok' "$log") checks held"
    else
      record "memory_check (arena)" FAIL \
        "exit $rc: $(grep -m1 '^memory_check: FAIL' "$log" | cut -c1-100)"
    fi
  fi

  # two_functions.py: alone, then under the launcher with a trace, and the launcher's report of it.
  log="$logs/two_functions_alone.log"
  if limit=$(limit_for 90) && run_logged "$log" "$limit" "$py" "$repo/examples/pytorch/two_functions.py" &&
    passed "$log"; then
    record "two_functions (alone)" PASS "$(grep -o 'make_weights tensors=[0-9]* bytes=[0-9]*' "$log")"
  else
    record "two_functions (alone)" FAIL "see ${log#"$out"/}"
  fi
  log="$logs/two_functions_trace.log"
  trace="$logs/two_functions.trace"
  if [[ -z $launcher ]]; then
    record "two_functions (trace)" SKIP "launcher not built"
  elif ! limit=$(limit_for 120); then
    record "two_functions (trace)" SKIP "out of time"
  else
    run_logged "$log" "$limit" "$launcher" run --trace "$trace" -- \
      "$py" "$repo/examples/pytorch/two_functions.py"
    rc=$?
    if [[ $rc -ne 0 ]] || ! passed "$log"; then
      record "two_functions (trace)" FAIL "exit $rc: see ${log#"$out"/}"
    elif [[ ! -s $trace ]]; then
      record "two_functions (trace)" FAIL "no trace written: see ${log#"$out"/}"
    else
      figure="trace $(stat -c %s "$trace") bytes"
      dump=$(find_built cudefrag_trace_dump)
      if is_elf "$dump" && "$dump" "$trace" >"$logs/two_functions_dump.txt" 2>>"$log"; then
        figure+="; $(grep -c '^alloc' "$logs/two_functions_dump.txt") allocs,"
        figure+=" $(grep -c '^free' "$logs/two_functions_dump.txt") frees"
        # The Python frames of the allocations: both functions, with file and line.
        for fn in make_weights make_activations; do
          site=$(grep -o "$fn@[^ ]*two_functions.py:[0-9]*" "$logs/two_functions_dump.txt" | head -1)
          figure+="; ${site:-$fn NOT in any stack}"
          [[ -n $site ]] || trace_bad=1
        done
      elif is_elf "$dump"; then
        figure+="; cudefrag_trace_dump could not read it"
        trace_bad=1
      fi
      if run_logged "$logs/two_functions_report.log" 60 "$launcher" report "$trace"; then
        named=0
        for fn in make_weights make_activations; do
          grep -q "$fn" "$logs/two_functions_report.log" && named=$((named + 1))
        done
        figure+="; report names $named of 2 functions"
      else
        figure+="; 'cudefrag report' failed or is missing"
      fi
      if [[ ${trace_bad:-0} -eq 1 ]]; then
        record "two_functions (trace)" FAIL "$figure"
      else
        record "two_functions (trace)" PASS "$figure"
      fi
    fi
  fi
fi

fi  # want
if want oom; then
# ---------------------------------------------------------------------------------------------
# An out-of-memory provoked on an emulated 1 GiB card (ComfyUI's default PyTorch backend): the
# program catches it and goes on (catch), or dies of it (die). Either way the trace must hold the
# OOM with the arena's state. Traces are kept in OUT_DIR/traces/ (the example traces come from here).
mkdir -p "$out/traces"
for how in catch die; do
  label="oom trace ($how, arena 1GiB)"
  log="$logs/oom_$how.log"
  trace="$out/traces/oom-$how.cdtrace"
  if [[ -z $launcher ]]; then
    record "$label" SKIP "launcher not built"
    continue
  elif ! limit=$(limit_for 90); then
    record "$label" SKIP "out of time"
    continue
  fi
  args=()
  [[ $how == die ]] && args=(--die)
  run_logged "$log" "$limit" env PYTORCH_CUDA_ALLOC_CONF=backend:cudaMallocAsync \
    "$launcher" run --limit 1GiB --trace "$trace" -- \
    "$py" "$repo/examples/pytorch/oom_then_continue.py" "${args[@]}"
  rc=$?
  dump=$(find_built cudefrag_trace_dump)
  ooms=0
  if [[ -s $trace ]] && is_elf "$dump"; then
    "$dump" "$trace" >"$logs/oom_${how}_dump.txt" 2>&1
    ooms=$(grep -c '^oom' "$logs/oom_${how}_dump.txt")
  fi
  figure="exit $rc; trace $(stat -c %s "$trace" 2>/dev/null || echo 0) bytes; $ooms oom records"
  if [[ $how == catch ]] && { [[ $rc -ne 0 ]] || ! passed "$log"; }; then
    record "$label" FAIL "$figure: see ${log#"$out"/}"
  elif [[ $how == die && $rc -eq 0 ]]; then
    record "$label" FAIL "$figure: the program should have died of the OOM"
  elif [[ $ooms -lt 1 ]]; then
    record "$label" FAIL "$figure: no OOM in the trace"
  else
    record "$label" PASS "$figure"
  fi
done

fi  # want
if want passthrough; then
# ---------------------------------------------------------------------------------------------
# passthrough_bench: under the shim it alternates calls through the shim and straight into
# libcudart in one process and reports the difference (added_ns); alone, the same difference is
# the noise floor. Two runs under the shim, one alone, and one under the arena.
bench="$build/bench/hooks/passthrough_bench"
if ! is_elf "$bench" && command -v g++ >/dev/null; then
  bench="$out/passthrough_bench"
  g++ -O2 -std=c++20 -I"$cuda_home/include" "$repo/bench/hooks/passthrough_bench.cpp" \
    -L"$cuda_home/lib64" -lcudart -ldl -Wl,-rpath,"$cuda_home/lib64" -o "$bench" \
    >"$logs/passthrough_bench_build.log" 2>&1 || bench=""
fi
if ! is_elf "$bench"; then
  record "passthrough_bench" SKIP "not built, and it could not be compiled here"
elif ! limit=$(limit_for 120); then
  record "passthrough_bench" SKIP "out of time"
else
  bench_ok=1
  run_logged "$logs/bench_alone.log" 40 "$bench" || bench_ok=0
  if have_shim; then
    shim_prefix passthrough
    for round in 1 2; do
      run_logged "$logs/bench_shim_$round.log" 40 "${shim[@]}" "$bench" || bench_ok=0
    done
    # Under the arena the program's own calls are served by the arena: their median beside the
    # run alone (the driver's pool, cudaMalloc) is what one allocation costs each way. Separate
    # processes, so the alone run's two paths give the spread to read it against.
    shim_prefix arena
    run_logged "$logs/bench_arena.log" 40 "${shim[@]}" "$bench" || bench_ok=0
  fi
  # added SIDE BENCH: the added_ns values of BENCH in the runs of SIDE, comma-separated.
  added() {
    cat "$logs"/bench_"$1"*.log 2>/dev/null | grep "RESULT bench=$2 added_ns=" |
      sed 's/.*added_ns=\(-\{0,1\}[0-9]*\).*/\1/' | paste -sd, -
  }
  figure=""
  for b in "cudaMallocAsync+cudaFreeAsync" "cudaMalloc+cudaFree"; do
    floor=$(added alone "$b")
    [[ -z $floor ]] && bench_ok=0
    if have_shim; then
      with=$(added shim "$b")
      [[ -z $with ]] && bench_ok=0
      figure+="$b: added ${with:-?} ns/pair (noise floor ${floor:-?}); "
    else
      figure+="$b floor ${floor:-?} ns/pair; "
    fi
  done
  # linked LOG BENCH: the median_ns of BENCH's calls through the program's own symbols.
  linked() {
    grep "RESULT bench=$2 path=linked" "$1" 2>/dev/null | sed 's/.*median_ns=\([0-9]*\).*/\1/' |
      head -1
  }
  if have_shim; then
    for b in "cudaMallocAsync+cudaFreeAsync" "cudaMalloc+cudaFree"; do
      from_arena=$(linked "$logs/bench_arena.log" "$b")
      alone=$(linked "$logs/bench_alone.log" "$b")
      figure+="$b: ${from_arena:-?} ns/pair from the arena, ${alone:-?} alone; "
    done
  fi
  if grep -q "bypass=no" "$logs"/bench_shim*.log 2>/dev/null; then
    figure+="the shim could not be bypassed in-process, so the figures are noise"
  fi
  if [[ $bench_ok -eq 0 ]]; then
    record "passthrough_bench" FAIL "a run failed: see logs/bench_*.log"
  elif ! have_shim; then
    record "passthrough_bench" SKIP "no shim built; ${figure}"
  else
    record "passthrough_bench" PASS "$figure"
  fi
fi

fi  # want
if want memcheck; then
# ---------------------------------------------------------------------------------------------
# compute-sanitizer memcheck under the shim in arena mode, on the GPU tests and examples: every
# kernel's access to arena memory (remapped, stitched, slab pages) checked. Each program a row.
# An item's third field "api-errors-expected": the program provokes failing CUDA calls on
# purpose (the semantics test asks for more memory than the card has, to check the error and
# that it is not sticky), which compute-sanitizer would count as errors; for it only API errors
# are not reported, and every memory access is still checked.
memcheck_items=(
  "runtime_alloc|$examples/runtime_alloc|"
  "driver_alloc|$examples/driver_alloc --mode all|"
  "stress_streams|$examples/stress_streams --iterations 200|"
  "test_cuda_semantics|$semantics|api-errors-expected"
)
for item in "${memcheck_items[@]}"; do
  IFS='|' read -r what cmdline flags <<<"$item"
  read -ra prog <<<"$cmdline"
  api_errors=()
  [[ $flags == api-errors-expected ]] && api_errors=(--report-api-errors no)
  name="memcheck $what (arena)"
  log="$logs/memcheck_$what.log"
  if ! command -v compute-sanitizer >/dev/null; then
    record "$name" SKIP "compute-sanitizer not found"
  elif ! is_elf "${prog[0]}"; then
    record "$name" SKIP "$what not built"
  elif ! have_shim; then
    record "$name" SKIP "neither launcher nor libcudefrag.so built"
  elif ! limit=$(limit_for 240); then
    record "$name" SKIP "out of time"
  else
    shim_prefix arena
    run_logged "$log" "$limit" compute-sanitizer --tool memcheck --target-processes all \
      --error-exitcode 99 "${api_errors[@]}" "${shim[@]}" "${prog[@]}"
    rc=$?
    errors=$(grep -o 'ERROR SUMMARY: [0-9]* error' "$log" | tail -1)
    if [[ $rc -eq 0 ]] && [[ $errors == "ERROR SUMMARY: 0 error" ]]; then
      record "$name" PASS "${errors}s${api_errors:+ (API errors it provokes not counted)}"
    else
      record "$name" FAIL "exit $rc, ${errors:-no error summary}: see ${log#"$out"/}"
    fi
  fi
done

fi  # want
if want bench; then
# ---------------------------------------------------------------------------------------------
# Google Benchmark programs, console output in the log and JSON beside it.
# GPU_CHECK_BENCH=0 skips them (a run that only re-proves correctness after a change).
found_bench=0
# GPU_CHECK_BENCH_DIRS: which folders of benchmark programs (default: all three).
read -ra bench_dirs <<<"${GPU_CHECK_BENCH_DIRS:-bench/vmm bench/arena bench/trace}"
[[ ${GPU_CHECK_BENCH:-1} == 0 ]] && bench_dirs=() && record "benchmarks" SKIP "GPU_CHECK_BENCH=0"
for dir in "${bench_dirs[@]}"; do
  [[ -d $build/$dir ]] || continue
  while read -r exe; do
    # Google Benchmark programs only: not the probes and helper libraries beside them.
    is_elf "$exe" || continue
    [[ $exe == *.so || $exe == *.so.* ]] && continue
    grep -qa -e libbenchmark -e benchmark_format "$exe" || continue
    found_bench=1
    name=$(basename "$exe")
    log="$logs/bench_$name.log"
    json="$out/bench_$name.json"
    if ! limit=$(limit_for 90); then
      record "benchmark $name" SKIP "out of time"
      continue
    fi
    if run_logged "$log" "$limit" env CUDEFRAG_BENCH_BACKEND=cuda "$exe" \
      --benchmark_format=console --benchmark_out="$json" --benchmark_out_format=json; then
      n=$($py -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["benchmarks"]))' "$json" 2>/dev/null)
      record "benchmark $name" PASS "${n:-?} benchmarks, JSON in ${json#"$out"/}"
    else
      record "benchmark $name" FAIL "see ${log#"$out"/}"
    fi
  done < <(find "$build/$dir" -maxdepth 1 -type f -perm -u+x | sort)
done
((found_bench)) || ((${#bench_dirs[@]} == 0)) || record "benchmarks (vmm, arena, trace)" SKIP "none built"
# Whether the arena's virtual-memory calls wait for queued GPU work (bench/vmm/busy_gpu_probe).
probe="$build/bench/vmm/busy_gpu_probe"
if [[ ${GPU_CHECK_BENCH:-1} != 0 ]] && is_elf "$probe" && limit=$(limit_for 60); then
  run_logged "$logs/busy_gpu_probe.log" "$limit" "$probe"
  rc=$?
  figure=$(grep -E ' (yes|no \(waited\))' "$logs/busy_gpu_probe.log" |
    awk '{ yes = ($NF == "yes"); printf "%s %s ms%s; ", $1, yes ? $(NF-1) : $(NF-2), yes ? "" : " WAITS" }')
  figure+=$(grep -o 'with [0-9]* create.*per cycle' "$logs/busy_gpu_probe.log" | tail -1)
  if ((rc == 0)); then
    record "VMM calls on a busy GPU" PASS "$figure"
  elif ((rc == 77)); then
    record "VMM calls on a busy GPU" SKIP "no usable GPU"
  else
    record "VMM calls on a busy GPU" FAIL "exit $rc; see logs/busy_gpu_probe.log"
  fi
fi

fi  # want
# ---------------------------------------------------------------------------------------------
# The arena against CUDA's own allocator in one process (step group alternate_<workload>, only
# when named): workloads.py --alternate-arena under `cudefrag run`, PyTorch on
# backend:cudaMallocAsync, every other pass with the arena paused; GPU_CHECK_ALTERNATE_PASSES
# passes (default 12). Key figure: the median arena / CUDA ratio over neighbouring passes.
for w in diffusion transformer tensors; do
  asked "alternate_$w" || continue
  if [[ -z $launcher ]]; then
    record "alternate $w" SKIP "needs the launcher"
    continue
  fi
  if ! limit=$(limit_for 300); then
    record "alternate $w" SKIP "out of time"
    continue
  fi
  log="$logs/alternate_$w.log"
  run_logged "$log" "$limit" "$launcher" run -- $py "$repo/bench/workloads/workloads.py" "$w" \
    --passes "${GPU_CHECK_ALTERNATE_PASSES:-12}" --alternate-arena \
    --json-out "$out/alternate_$w.json"
  figure=$($py -c 'import json, sys
r = json.load(open(sys.argv[1]))
ratio = r.get("arena_over_cuda")
print("%s; arena over CUDA %s; arena passes %s; CUDA passes %s" % (r["status"],
      "%.3f" % ratio if ratio else "-", r["route_seconds"]["arena"], r["route_seconds"]["cuda"]))' \
    "$out/alternate_$w.json" 2>/dev/null)
  if [[ $figure == ok* ]]; then
    record "alternate $w" PASS "$figure"
  else
    record "alternate $w" FAIL "${figure:-no result}; see logs/alternate_$w.log"
  fi
done

# ---------------------------------------------------------------------------------------------
# Whole workloads (bench/workloads/): each contender allocator on the whole card,
# GPU_CHECK_WORKLOAD_REPEAT runs each (default 1; compare.py interleaves them), each of
# GPU_CHECK_WORKLOAD_PASSES passes over the series (default 1): peaks and the
# median wall time side by side. GPU_CHECK_WORKLOAD_CPUS pins every contender to those CPUs
# (compare.py --cpus); GPU_CHECK_WORKLOAD_CONTENDERS[_<workload>] picks the contenders
# (compare.py --contenders; default its five). Step group workloads runs both; workload_diffusion and
# workload_transformer one each (for separate lanes). The smaller-card bisection (bisect*) is a
# group of its own.
repeat=${GPU_CHECK_WORKLOAD_REPEAT:-1}
for w in diffusion transformer tensors; do
  # tensors (what one tensor allocation costs) only when named: workload_tensors.
  if [[ $w == tensors ]]; then asked workload_tensors || continue; fi
  want workloads || asked "workload_$w" || continue
  if [[ -z $launcher ]] || ! $py -c 'import torch; assert torch.cuda.is_available()' >/dev/null 2>&1; then
    record "workload $w" SKIP "needs the launcher and CUDA PyTorch"
    continue
  fi
  log="$logs/workload_$w.log"
  if ! limit=$(limit_for $((150 * repeat * ${GPU_CHECK_WORKLOAD_PASSES:-1}))); then
    record "workload $w" SKIP "out of time"
    continue
  fi
  workload_options=()
  [[ -n ${GPU_CHECK_WORKLOAD_CPUS:-} ]] && workload_options+=(--cpus "$GPU_CHECK_WORKLOAD_CPUS")
  contenders=$(for_workload GPU_CHECK_WORKLOAD_CONTENDERS "$w" "")
  [[ -n $contenders ]] && workload_options+=(--contenders "$contenders")
  run_logged "$log" "$limit" $py "$repo/bench/workloads/compare.py" "$w" --cudefrag "$launcher" \
    --scale "${GPU_CHECK_WORKLOAD_SCALE:-1.0}" --repeat "$repeat" \
    --passes "${GPU_CHECK_WORKLOAD_PASSES:-1}" "${workload_options[@]}" \
    --out "$out/workload_$w.jsonl"
  # Per contender: status, what it held at its peak, median steps time / the fastest median
  # (with the runs' spread when repeated).
  figure=$($py - "$out/workload_$w.jsonl" "$repo/bench/workloads" <<'PY' 2>/dev/null
import json, statistics, sys
sys.path.insert(0, sys.argv[2])
from compare import fast_time, paired_ratios, run_time  # the table's own rules
runs = [json.loads(l) for l in open(sys.argv[1])]
order, times, held, bad, outside = [], {}, {}, 0, {}
for r in runs:
    c = r["contender"]
    order.append(c) if c not in order else None
    bad += r.get("status") != "ok"
    if run_time(r):
        times.setdefault(c, []).append(run_time(r))
    if r.get("process_used_at_end") is not None and r.get("reserved_at_end") is not None:
        outside[c] = (r["process_used_at_end"] - r["reserved_at_end"]) / 2**20
    h = r.get("pool_reserved_high") if c.startswith("cudefrag") else r.get("peak_reserved")
    held[c] = max(held.get(c, 0), h or 0)
med = {c: statistics.median(t) for c, t in times.items()}
fast = min(med.values())
paired = paired_ratios(runs, min(med, key=med.get))
low = {c: fast_time(runs, c) for c in order}
lowest = min((v for v in low.values() if v), default=None)
parts = []
for c in order:
    t = times.get(c, [])
    spread = " [%.3f-%.3f s]" % (min(t), max(t)) if len(t) > 1 else ""
    out = " outside %.0fM" % outside[c] if c in outside else ""
    pr = paired.get(c, [])
    pair = " paired %.3f [%.3f-%.3f]" % (statistics.median(pr), pr[0], pr[-1]) if len(pr) > 1 else ""
    p10 = " p10 %.3f s %.3fx" % (low[c], low[c] / lowest) if low[c] and lowest else ""
    parts.append("%s %.2fG %.3fx of %.3f s, n=%d%s%s%s%s" % (c, held[c] / 2**30,
                                                             med.get(c, 0) / fast, fast, len(t),
                                                             spread, pair, p10, out))
print(("BAD " if bad else "") + "; ".join(parts))
PY
)
  if [[ -z $figure ]]; then
    record "workload $w" FAIL "no results: see logs/workload_$w.log"
  elif [[ $figure == BAD* ]]; then
    record "workload $w" FAIL "${figure#BAD }"
  else
    record "workload $w" PASS "$figure"
  fi
done

# ---------------------------------------------------------------------------------------------
# Exports opened by their consumer: the memory_viz pickle of a trace recorded here, rendered by
# PyTorch's own torch.cuda._memory_viz.
if want exports; then
log="$logs/export_memory_viz.log"
viz_check="$repo/tests/analyzer/export/check_memory_viz_torch.py"
viz_trace=$(ls "$out"/traces/*.cdtrace "$repo"/examples/traces/h200/*.cdtrace 2>/dev/null | head -1)
if [[ -z $launcher || ! -f $viz_check || -z $viz_trace ]]; then
  record "memory_viz pickle in torch" SKIP "needs the launcher, $viz_check and a trace"
elif ! limit=$(limit_for 60); then
  record "memory_viz pickle in torch" SKIP "out of time"
else
  run_logged "$log" "$limit" bash -c "'$launcher' export '$viz_trace' --memory-viz '$out/snapshot.pickle' && $py '$viz_check' '$out/snapshot.pickle'"
  rc=$?
  if [[ $rc -eq 0 ]]; then
    record "memory_viz pickle in torch" PASS "$(basename "$viz_trace"): $(tail -3 "$log" | head -1)"
  else
    record "memory_viz pickle in torch" FAIL "exit $rc; see logs/export_memory_viz.log"
  fi
fi
fi  # want
# ---------------------------------------------------------------------------------------------
# The cost of the full trace on a PyTorch workload (goal: <= 1.03 x the run without it).
if want trace_overhead; then
overhead_script="$repo/bench/trace/pytorch_trace_overhead.py"
# GPU_CHECK_TRACE_WORKLOADS: the script's --workload values (default: its allocation-heavy loop,
# then the diffusion workload, a whole inference run).
# An item WORKLOAD/STACKS overrides GPU_CHECK_TRACE_STACKS (default both) for that run, and
# WORKLOAD/STACKS/N also caps the native frames (cudefrag run --native-frames N).
for item in ${GPU_CHECK_TRACE_WORKLOADS:-steps diffusion}; do
  IFS=/ read -r tw item_stacks tframes <<<"$item"
  tstacks=${item_stacks:-${GPU_CHECK_TRACE_STACKS:-both}}
  frames_args=()
  [[ -n $tframes ]] && frames_args=(--native-frames "$tframes")
  log="$logs/trace_overhead_${tw}_$tstacks${tframes:+_$tframes}.log"
  name="trace overhead (PyTorch, $tw, stacks $tstacks${tframes:+, $tframes native frames})"
  if [[ -z $launcher || ! -f $overhead_script ]]; then
    record "$name" SKIP "needs the launcher and $overhead_script"
  elif ! limit=$(limit_for "${GPU_CHECK_TRACE_LIMIT_S:-120}"); then
    record "$name" SKIP "out of time"
  else
    run_logged "$log" "$limit" $py "$overhead_script" --cudefrag "$launcher" --workload "$tw" \
      --pairs "${GPU_CHECK_TRACE_PAIRS:-4}" --budget-s "$((limit > 40 ? limit - 30 : 10))" \
      --stacks "$tstacks" --passes "${GPU_CHECK_TRACE_PASSES:-1}" "${frames_args[@]}"
    rc=$?
    figure=$(grep -E "ratio|per event|timing of the trace|call stacks of traced run 1:" "$log" |
      sed 's/^pytorch_trace_overhead: //' | tr '\n' ' ')
    if [[ $rc -eq 0 ]]; then
      record "$name" PASS "${figure:-see ${log#"$out"/}}"
    else
      record "$name" FAIL "${figure:-exit $rc}; see ${log#"$out"/}"
    fi
  fi
done
fi  # want

# ---------------------------------------------------------------------------------------------
# The smallest card per contender (compare.py --bisect, ballast.py): step groups bisect (both
# workloads) or bisect_diffusion / bisect_transformer (one each, for separate lanes). The range
# is GPU_CHECK_BISECT_<workload>, else GPU_CHECK_BISECT ("LO HI" GiB, default "2 8"), in steps
# of GPU_CHECK_BISECT_STEP (default 0.25 GiB). The figure: each
# contender's smallest card, and the workload's peak live bytes (the largest
# max_memory_allocated() of the finished runs) for scale.
for w in diffusion transformer; do
  asked bisect || asked "bisect_$w" || continue
  log="$logs/bisect_$w.log"
  jsonl="$out/bisect_$w.jsonl"
  if [[ -z $launcher ]] || ! $py -c 'import torch; assert torch.cuda.is_available()' >/dev/null 2>&1; then
    record "smallest card $w" SKIP "needs the launcher and CUDA PyTorch"
    continue
  elif ! limit=$(limit_for 1200); then
    record "smallest card $w" SKIP "out of time"
    continue
  fi
  # GPU_CHECK_CONTENDERS_<workload>, else GPU_CHECK_CONTENDERS: compare.py's --contenders.
  contenders=$(for_workload GPU_CHECK_CONTENDERS "$w" cudefrag+async,cudefrag+native,native,expandable,async)
  range=$(for_workload GPU_CHECK_BISECT "$w" "2 8")
  step=${GPU_CHECK_BISECT_STEP:-0.25}
  # shellcheck disable=SC2086
  run_logged "$log" "$limit" $py "$repo/bench/workloads/compare.py" "$w" --cudefrag "$launcher" \
    --scale "${GPU_CHECK_BISECT_SCALE:-${GPU_CHECK_WORKLOAD_SCALE:-1.0}}" --bisect $range \
    --step "$step" \
    --contenders "$contenders" \
    --out "$jsonl"
  rc=$?
  figure=$($py - "$jsonl" "$step" <<'PY' 2>/dev/null
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
step = float(sys.argv[2])
order, ok, bad = [], {}, {}
for r in runs:
    c, card = r["contender"], r.get("card_gib")
    order.append(c) if c not in order else None
    if r.get("status") == "ok":
        ok[c] = min(ok.get(c, 1e9), card)
    else:
        bad[c] = max(bad.get(c, 0), card)
# Every finished run of the same workload and seed asked for the same bytes; uncached PyTorch
# counts none (0), so the largest figure is the workload's.
live = max((r.get("peak_allocated") or 0 for r in runs if r.get("status") == "ok"), default=0)
def cell(c):
    if c in ok:
        # Unfinished: no failure one step below the smallest card that worked (LO bounded it).
        return "%s %g" % (c, ok[c]) + ("" if bad.get(c, 0) + step >= ok[c] - 1e-9 else " (unfinished)")
    return "%s >%g" % (c, bad.get(c, 0))
print("; ".join(cell(c) for c in order) + "; peak live %.2f GiB" % (live / 2**30))
PY
)
  if [[ $rc -eq 0 && -n $figure ]]; then
    record "smallest card $w (GiB)" PASS "$figure"
  else
    record "smallest card $w (GiB)" FAIL "${figure:-no results} (exit $rc); see ${log#"$out"/}"
  fi
done

# ---------------------------------------------------------------------------------------------
# A traced run on one emulated card (step groups traced_card_diffusion, traced_card_transformer):
# GPU_CHECK_CARD GiB (default 3.25), contender GPU_CHECK_CARD_CONTENDER (default cudefrag+async),
# Python stacks. Whether it finished, and for a failed run the arena's state at the first
# out-of-memory error from `cudefrag report`: where the memory was when the card was too small.
for w in diffusion transformer; do
  asked "traced_card_$w" || continue
  card=${GPU_CHECK_CARD:-3.25}
  name="traced run $w on $card GiB"
  log="$logs/traced_card_$w.log"
  mkdir -p "$out/traces"
  if [[ -z $launcher ]]; then
    record "$name" SKIP "launcher not built"
  elif ! limit=$(limit_for 150); then
    record "$name" SKIP "out of time"
  else
    # compare.py's contender options cannot hold a slash: the trace is named in its folder.
    run_logged "$log" "$limit" bash -c "cd '$out/traces' && $py '$repo/bench/workloads/compare.py' \
      $w --cudefrag '$launcher' --card $card --out '$out/traced_card_$w.jsonl' --contenders \
      '${GPU_CHECK_CARD_CONTENDER:-cudefrag+async}/trace=card_$w.cdtrace/stacks=python'"
    trace="$out/traces/card_$w.cdtrace"
    status=$($py -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["status"])' \
      "$out/traced_card_$w.jsonl" 2>/dev/null)
    if [[ -f $trace ]] && "$launcher" report "$trace" >"$logs/traced_card_${w}_report.txt" 2>&1; then
      state=$(grep -m1 -A1 "arena state" "$logs/traced_card_${w}_report.txt" | tr -s ' ' | tr '\n' ' ')
      request=$(grep -m1 -E "^  #1 at" "$logs/traced_card_${w}_report.txt" | sed 's/^ *#1 at //')
      record "$name" PASS "${status:-no status}; ${request:+first OOM: $request; }${state:-no OOM}"
    else
      record "$name" FAIL "${status:-no status}; no readable trace: see ${log#"$out"/}"
    fi
  fi
done

# ---------------------------------------------------------------------------------------------
# Device memory outside the allocator, step by step (step group outside_memory, only when named):
# bench/workloads/outside_memory.py under each allocator set-up; the figure is the "outside"
# MiB after each step, per set-up. What decides a card at the edge besides the allocator.
if asked outside_memory; then
  # What the driver takes for the arena's reservation, scattered mappings and events
  # (bench/vmm/overhead_probe): MiB beyond the bytes mapped, per step.
  probe="$build/bench/vmm/overhead_probe"
  if ! is_elf "$probe"; then
    record "driver overhead of the arena" SKIP "overhead_probe not built"
  elif limit=$(limit_for 60); then
    run_logged "$logs/overhead_probe.log" "$limit" "$probe"
    rc=$?
    figure=$(grep -E '^(reserve|  then|[0-9]+ events)' "$logs/overhead_probe.log" |
      sed -E 's/ +/ /g' | tr '\n' ';')
    if ((rc == 0)); then
      record "driver overhead of the arena" PASS "$figure (MiB beyond the bytes mapped)"
    elif ((rc == 77)); then
      record "driver overhead of the arena" SKIP "no usable GPU"
    else
      record "driver overhead of the arena" FAIL "exit $rc; see logs/overhead_probe.log"
    fi
  fi
  script="$repo/bench/workloads/outside_memory.py"
  for setup in native expandable async cudefrag+async cudefrag+native cudefrag+uncached; do
    log="$logs/outside_memory_$setup.log"
    conf=() shim=()
    case $setup in
      expandable) conf=(PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True) ;;
      async | cudefrag+async) conf=(PYTORCH_CUDA_ALLOC_CONF=backend:cudaMallocAsync) ;;
      cudefrag+uncached) conf=(PYTORCH_NO_CUDA_MEMORY_CACHING=1) ;;
    esac
    [[ $setup == cudefrag* ]] && shim=("$launcher" run --keep-torch-alloc-conf --)
    if [[ $setup == cudefrag* && -z $launcher ]]; then
      record "outside memory ($setup)" SKIP "launcher not built"
    elif ! limit=$(limit_for 90); then
      record "outside memory ($setup)" SKIP "out of time"
    elif run_logged "$log" "$limit" env -u PYTORCH_CUDA_ALLOC_CONF "${conf[@]}" "${shim[@]}" \
      $py "$script"; then
      record "outside memory ($setup)" PASS "$(grep -E '^outside_memory: ' "$log" |
        awk '{ printf "%s %s; ", $2, $(NF-1) }')(MiB outside the allocator after each step)"
    else
      record "outside memory ($setup)" FAIL "see ${log#"$out"/}"
    fi
  done
fi

# ---------------------------------------------------------------------------------------------
# Python frames on this machine's interpreter (step group python_versions, only when named): the
# Python stack tests with PYTHON, and python_bench.py's cost per record with it.
if asked python_versions; then
  log="$logs/python_versions.log"
  probe="$build/bench/trace/libcudefrag_trace_bench_probe.so"
  version=$($py -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null)
  if ! limit=$(limit_for 180); then
    record "Python stacks on python $version" SKIP "out of time"
  elif run_logged "$log" "$limit" env CUDEFRAG_TEST_PYTHONS="$(command -v "$py")" \
    ctest --test-dir "$build" -R Python --output-on-failure; then
    record "Python stack tests on python $version" PASS "$(grep -E 'tests passed' "$log" | tail -1)"
  else
    record "Python stack tests on python $version" FAIL "$(grep -E 'tests passed|tests failed' "$log" | tail -1); see ${log#"$out"/}"
  fi
  if [[ -f $probe ]] && limit=$(limit_for 120); then
    if run_logged "$logs/python_bench.log" "$limit" $py "$repo/bench/trace/python_bench.py" "$probe"; then
      record "python_bench on python $version" PASS "$(grep -E 'both' "$logs/python_bench.log" | head -2 | tr -s ' ' | tr '\n' ';')"
    else
      record "python_bench on python $version" FAIL "see logs/python_bench.log"
    fi
  fi
fi

# ---------------------------------------------------------------------------------------------
# Traces of the whole workloads (passthrough, backend:cudaMallocAsync: every tensor one request,
# Python stacks), for `cudefrag replay` anywhere: OUT_DIR/traces/workload_<name>.cdtrace.
if want record_workloads; then
  mkdir -p "$out/traces"
  for w in diffusion transformer; do
    log="$logs/record_$w.log"
    trace="$out/traces/workload_$w.cdtrace"
    if [[ -z $launcher ]]; then
      record "trace of workload $w" SKIP "launcher not built"
    elif ! limit=$(limit_for 90); then
      record "trace of workload $w" SKIP "out of time"
    elif run_logged "$log" "$limit" env PYTORCH_CUDA_ALLOC_CONF=backend:cudaMallocAsync \
      "$launcher" run --quiet --mode passthrough --trace "$trace" --stacks python -- \
      $py "$repo/bench/workloads/workloads.py" "$w" --scale "${GPU_CHECK_WORKLOAD_SCALE:-1.0}" &&
      "$launcher" replay "$trace" >"$logs/replay_$w.txt" 2>&1; then
      record "trace of workload $w" PASS "$(du -h "$trace" | cut -f1); replay: $(grep -iE 'smallest' "$logs/replay_$w.txt" | head -1 | tr -s ' ')"
    else
      record "trace of workload $w" FAIL "see ${log#"$out"/}"
    fi
  done
fi

# ---------------------------------------------------------------------------------------------
# ComfyUI (examples/comfyui/compare.sh) on a ComfyUI tree: GPU_CHECK_COMFYUI is a folder or a
# .tar.gz that export_comfyui.sh made. Step group comfyui runs the configs of
# GPU_CHECK_COMFYUI_CONFIGS (default "default,cudefrag") in one call; comfyui_<config> runs one
# config (one lane each). GPU_CHECK_COMFYUI_ARGS: compare.sh's other options (default --quick).
# Step group comfyui_profile: whole-card rounds of GPU_CHECK_COMFYUI_PROFILE_CONFIGS (default
# "default,cudefrag") with the later images under torch.profiler (GPU_CHECK_COMFYUI_PROFILE_ARGS,
# default "--quick --no-bisect --timing 2 --profile-images 1,2,3"): device against host time.
# For cudefrag configs, the report of the newest trace that holds an out-of-memory error (a
# trial on a card too small): does it name ComfyUI's source lines.
comfy_jobs=()
comfy_args=${GPU_CHECK_COMFYUI_ARGS:---quick}
asked comfyui && comfy_jobs+=("comfyui|${GPU_CHECK_COMFYUI_CONFIGS:-default,cudefrag}|$comfy_args")
for c in default no-cuda-malloc cudefrag cudefrag-no-cuda-malloc expandable cudefrag-limit \
  cudefrag-passthrough; do
  asked "comfyui_$c" && comfy_jobs+=("comfyui_$c|$c|$comfy_args")
done
asked comfyui_profile && comfy_jobs+=("comfyui_profile|${GPU_CHECK_COMFYUI_PROFILE_CONFIGS:-default,cudefrag}|${GPU_CHECK_COMFYUI_PROFILE_ARGS:---quick --no-bisect --timing 2 --profile-images 1,2,3}")
for job in "${comfy_jobs[@]}"; do
  IFS='|' read -r name configs job_args <<<"$job"
  log="$logs/$name.log"
  comfy=${GPU_CHECK_COMFYUI:-}
  if [[ -n $comfy && $comfy == *.tar.gz && -f $comfy ]]; then
    mkdir -p "$out/comfyui_tree" && tar -xzf "$comfy" -C "$out/comfyui_tree" &&
      comfy=$(find "$out/comfyui_tree" -maxdepth 2 -name main.py -printf '%h\n' | head -1)
  fi
  if [[ -z $comfy || ! -f $comfy/main.py || -z $launcher ]]; then
    record "$name" SKIP "needs GPU_CHECK_COMFYUI (a ComfyUI tree) and the launcher"
    continue
  elif ! limit=$(limit_for 1500); then
    record "$name" SKIP "out of time"
    continue
  fi
  # shellcheck disable=SC2086
  run_logged "$log" "$limit" bash "$repo/examples/comfyui/compare.sh" --comfyui "$comfy" \
    --out "$out/$name" --cudefrag "$launcher" --budget "$((limit > 90 ? limit - 60 : 30))" \
    --configs "$configs" $job_args
  rc=$?
  # The harness's tables (smaller cards, then the --timing rounds), their rows only.
  table=$(sed -n '/^config /,$p' "$out/$name/table.txt" 2>/dev/null | tr -s ' ' |
    grep -vE '^\s*$|^config |^whole card|^profiled images' | tr '\n' ';')
  if [[ $rc -eq 0 && -n $table ]]; then
    record "$name smaller cards" PASS "$table"
  else
    record "$name smaller cards" FAIL "${table:-no table} (exit $rc); see ${log#"$out"/}"
  fi
  [[ $configs == *cudefrag* ]] || continue
  oom_trace=$(ls -t "$out/$name"/traces/*.cdtrace 2>/dev/null | while read -r t; do
    "$launcher" report "$t" 2>/dev/null | grep -q -i "out of memory" && echo "$t" && break; done)
  if [[ -n $oom_trace ]]; then
    "$launcher" report "$oom_trace" >"$logs/${name}_oom_report.txt" 2>&1
    cp "$oom_trace" "$out/${name}_oom.cdtrace"
    # The report names call sites as "function (path/file.py:line)"; ComfyUI's are under its tree.
    sites=$(grep -oE '[A-Za-z0-9_]+/[A-Za-z0-9_/.]+\.py:[0-9]+' "$logs/${name}_oom_report.txt" |
      grep -E '(^|/)(comfy|comfy_extras)/' | sed 's|.*/\(comfy[a-z_]*/\)|\1|' | sort | uniq -c |
      sort -rn | head -3 | awk '{print $2}' | tr '\n' ' ')
    if [[ -n $sites ]]; then
      record "$name OOM report" PASS "$(basename "$oom_trace"): $sites"
    else
      record "$name OOM report" FAIL "no ComfyUI source line named: see logs/${name}_oom_report.txt"
    fi
  else
    record "$name OOM report" SKIP "no trace with an out-of-memory error"
  fi
done

# ---------------------------------------------------------------------------------------------
# Two GPUs (needs two visible devices): examples/pytorch/two_gpus.py under the arena with each
# PyTorch allocator backend: peer copies and NCCL collectives on arena memory.
if want two_gpus; then
  for conf in backend:cudaMallocAsync native; do
    log="$logs/two_gpus_${conf#backend:}.log"
    if [[ -z $launcher ]]; then
      record "two GPUs ($conf)" SKIP "launcher not built"
    elif ! limit=$(limit_for 240); then
      record "two GPUs ($conf)" SKIP "out of time"
    else
      env_conf=()
      [[ $conf == native ]] || env_conf=(PYTORCH_CUDA_ALLOC_CONF="$conf")
      run_logged "$log" "$limit" env "${env_conf[@]}" "$launcher" run --mode arena \
        --keep-torch-alloc-conf -- \
        $py "$repo/examples/pytorch/two_gpus.py"
      rc=$?
      if [[ $rc -eq 77 ]]; then
        record "two GPUs ($conf)" SKIP "fewer than two GPUs visible"
      elif [[ $rc -eq 0 ]] && passed "$log"; then
        record "two GPUs ($conf)" PASS "$(grep -c 'RESULT PASS' "$log") checks: peer copies, NCCL all_reduce/all_gather/broadcast"
      else
        record "two GPUs ($conf)" FAIL "$(grep 'RESULT FAIL' "$log" | head -1 | cut -c1-120) (exit $rc)"
      fi
    fi
  done
fi

# ---------------------------------------------------------------------------------------------
{
  echo "gpu_check $(date -u +%FT%TZ), steps took $((SECONDS - steps_started)) s, $failures failed"
  printf '%-44s %-5s %s\n' STEP STATUS "KEY FIGURE"
  printf '%s\n' "${rows[@]}"
} >"$out/summary.txt"
(
  cd "$out" || exit
  shopt -s nullglob
  # Everything but the large files (traces and checkpoints are copied out one by one).
  find . -type f -size -4M ! -name gpu_check_logs.tar.gz ! -name .tar_list ! -path '*/comfyui_tree/*' -print >.tar_list
  tar -czf gpu_check_logs.tar.gz -T .tar_list && rm -f .tar_list
)
echo
cat "$out/summary.txt"
((failures == 0))
