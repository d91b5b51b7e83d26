#!/usr/bin/env bash
# ComfyUI on emulated smaller cards, side by side: its default allocator (cudaMallocAsync, chosen
# by its cuda_malloc.py), --disable-cuda-malloc (PyTorch's native caching allocator), and the
# default under `cudefrag run`. For each, the smallest card (in steps of 0.25 GiB) on which the
# whole series finishes, found by bisection, and the series' wall time there and on the full
# card. For the GPU machine; a table is printed last.
#
# Usage: examples/comfyui/compare.sh --comfyui PATH --out DIR [options]
#   --comfyui PATH     a ComfyUI checkout (see README.md: export_comfyui.sh makes one)
#   --out DIR          results.jsonl (every image, run and trial), logs/, traces/, table.txt
#   --cudefrag PATH    the launcher (default: cudefrag on PATH, then build-release/launcher/
#                      and build/launcher/ of this repository)
#   --series S         WxH[xB],... (default: harness.py's 12 images); --steps N (default 4)
#   --lo GIB --hi GIB  the bracket to bisect in (default 1 and 6); cards are multiples of 0.25
#   --configs LIST     comma-separated, from: default, no-cuda-malloc, cudefrag,
#                      cudefrag-no-cuda-malloc, expandable, cudefrag-limit,
#                      cudefrag-passthrough (the hooks without the arena: what the hooks
#                      alone cost, against cudefrag's arena)
#                      (default: default,no-cuda-malloc,cudefrag)
#   --budget S         start no trial after S seconds (default 1500); --trial-timeout S (300)
#   --timing N         after the bisections, N more whole-card runs of every config, untraced,
#                      in rounds (each round runs every config once, the order rotated by one
#                      per round, so drift of the machine falls on all alike): the wall-time
#                      comparison (median per config, ratio to the first config of --configs)
#   --no-bisect        no smaller cards: the whole-card runs only (with --timing)
#   --profile-images I,J  the --timing runs profile these images (harness.py --profile-images:
#                      a "profile" line each in results.jsonl); profiling slows every config
#   --trace-stacks V   cudefrag's --stacks for the traced runs (default python; none, native,
#                      both); --no-trace: no traces
#   --quick            series 512x512x1,1024x1024x2,768x768x1,1536x1536x1, 2 steps, 1..4 GiB
# Everything after `--` goes to ComfyUI's flags of every run (e.g. -- --reserve-vram 0).
#
# How a card is emulated: ballast.py (not under cudefrag) holds all free memory but GIB, the
# run starts, the ballast ends after it. cudefrag-limit is the second way: no ballast, the
# arena capped with `cudefrag run --limit GIB` (ComfyUI then sees total = the limit).
# expandable: PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True with --disable-cuda-malloc, and
# ComfyUI's cuda_malloc module not imported (newer versions strip expandable_segments).
# Checkouts whose flags have --disable-dynamic-vram get it in every run (comfy-aimdo hooks the
# driver itself: README.md).
#
# Exit status 0 when every config was measured (whatever it found), 1 when a run could not be
# made (no GPU, no launcher for a cudefrag config, the ballast failed), 64 for a bad command line.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
py=${PYTHON:-python3}
comfy="" out="" launcher="" series="" steps=4 lo=1 hi=6 budget=1500 trial_timeout=300
configs="default,no-cuda-malloc,cudefrag" stacks=python trace=1 extra=() timing=0 bisect=1
profile_images=""

usage() {
  sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
  exit "${1:-64}"
}
while [[ $# -gt 0 ]]; do
  case $1 in
    --comfyui) comfy=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --cudefrag) launcher=$2; shift 2 ;;
    --series) series=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --lo) lo=$2; shift 2 ;;
    --hi) hi=$2; shift 2 ;;
    --configs) configs=$2; shift 2 ;;
    --budget) budget=$2; shift 2 ;;
    --trial-timeout) trial_timeout=$2; shift 2 ;;
    --trace-stacks) stacks=$2; shift 2 ;;
    --no-trace) trace=0; shift ;;
    --timing) timing=$2; shift 2 ;;
    --no-bisect) bisect=0; shift ;;
    --profile-images) profile_images=$2; shift 2 ;;
    --quick) series=512x512x1,1024x1024x2,768x768x1,1536x1536x1 steps=2 lo=1 hi=4; shift ;;
    --) shift; extra=("$@"); break ;;
    -h | --help) usage 0 ;;
    *) echo "compare.sh: unknown option $1" >&2; usage ;;
  esac
done
[[ -n $comfy && -n $out ]] || usage
[[ $timing =~ ^[0-9]+$ ]] || { echo "compare.sh: --timing takes a count, not $timing" >&2; exit 64; }
[[ -z $profile_images || $profile_images =~ ^[0-9]+(,[0-9]+)*$ ]] ||
  { echo "compare.sh: --profile-images takes indexes like 1,3, not $profile_images" >&2; exit 64; }
[[ -f $comfy/nodes.py ]] || { echo "compare.sh: $comfy is not a ComfyUI checkout" >&2; exit 64; }

# Sizes are handled in quarters of a GiB (integers), printed back in GiB.
to_quarters() { awk -v g="$1" 'BEGIN { printf "%d", g * 4 + 0.5 }'; }
to_gib() { awk -v q="$1" 'BEGIN { printf "%g", q / 4 }'; }
q_lo=$(to_quarters "$lo") q_hi=$(to_quarters "$hi")
if ((q_lo < 1 || q_hi <= q_lo)); then
  echo "compare.sh: need 0.25 <= --lo < --hi" >&2
  exit 64
fi

if [[ -z $launcher ]]; then
  for candidate in "$(command -v cudefrag 2>/dev/null)" "$repo/build-release/launcher/cudefrag" \
    "$repo/build/launcher/cudefrag"; do
    [[ -n $candidate && -x $candidate ]] && launcher=$candidate && break
  done
fi
# A carried build keeps the libraries the GPU machine lacks in BUILD/lib (scripts/gpu_bundle.sh).
if [[ -n $launcher ]]; then
  build_dir=$(cd "$(dirname "$launcher")/.." && pwd)
  if [[ -d $build_dir/lib && $build_dir != /usr && $build_dir != /usr/local ]]; then
    export LD_LIBRARY_PATH="$build_dir/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  fi
fi

mkdir -p "$out/logs" "$out/traces" "$out/models"
out=$(cd "$out" && pwd)
results="$out/results.jsonl"
export PYTHONUNBUFFERED=1

comfy_flags=("${extra[@]}")
if grep -q '"--disable-dynamic-vram"' "$comfy/comfy/cli_args.py" 2>/dev/null; then
  comfy_flags+=(--disable-dynamic-vram)
fi
harness=("$py" "$here/harness.py" --comfyui "$comfy" --models-dir "$out/models" --out "$results"
  --steps "$steps")
[[ -n $series ]] && harness+=(--series "$series")

started=$SECONDS
failures=0
trial_rows=()

# command_for CONFIG CARD TRACE: sets the array `cmd` that runs one series.
command_for() {
  local config=$1 card=$2 tracefile=$3
  local tags=(--tag "config=$config" --tag "card_gib=$card")
  [[ -n ${timing_round:-} ]] && tags+=(--tag "timing_round=$timing_round")
  [[ -n ${timing_round:-} && -n $profile_images ]] && tags+=(--profile-images "$profile_images")
  local shim=()
  if [[ $config == cudefrag* ]]; then
    shim=("$launcher" run)
    [[ $config == cudefrag-limit && $card != full ]] && shim+=(--limit "${card}GiB")
    [[ $config == cudefrag-passthrough ]] && shim+=(--mode passthrough)
    # --disable-cuda-malloc means PyTorch's native allocator, also under the launcher.
    [[ $config == cudefrag-no-cuda-malloc ]] && shim+=(--keep-torch-alloc-conf)
    [[ $trace == 1 ]] && shim+=(--trace "$tracefile" --stacks "$stacks")
    shim+=(--)
  fi
  case $config in
    default | cudefrag | cudefrag-limit | cudefrag-passthrough)
      cmd=("${shim[@]}" "${harness[@]}" "${tags[@]}" -- "${comfy_flags[@]}") ;;
    no-cuda-malloc | cudefrag-no-cuda-malloc)
      cmd=("${shim[@]}" "${harness[@]}" "${tags[@]}" -- --disable-cuda-malloc "${comfy_flags[@]}") ;;
    expandable)
      cmd=(env PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True "${harness[@]}"
        --no-cuda-malloc-module "${tags[@]}" -- --disable-cuda-malloc "${comfy_flags[@]}") ;;
    *) return 1 ;;
  esac
}

# trial_line CONFIG CARD RC NOTE [LOG]: appends one line to results.jsonl for every run, even
# one that died before the harness wrote its summary ("not_run" for 125..127: nothing was
# measured); prints the run's summary line (the last in LOG) in a few words. A run of --timing
# (timing_round set) is a "timing" line with the round and the series' wall time instead.
trial_line() {
  TIMING_ROUND=${timing_round:-} "$py" - "$results" "$@" <<'EOF'
import json, os, sys
results, config, card, rc, note = sys.argv[1:6]
summary = None
if len(sys.argv) > 6:
    with open(sys.argv[6], encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("{") and '"event": "summary"' in line:
                summary = json.loads(line)
with open(results, "a", encoding="utf-8") as f:
    event = "not_run" if 125 <= int(rc) <= 127 else "trial"
    line = {"event": event, "config": config, "card_gib": card, "rc": int(rc),
            "all_finished": rc == "0", "note": note}
    if os.environ["TIMING_ROUND"] and event == "trial":
        line.update(event="timing", round=int(os.environ["TIMING_ROUND"]),
                    wall_s=(summary or {}).get("wall_s"))
    f.write(json.dumps(line) + "\n")
if summary:
    print("%s/%s finished, %s tiled, %s oom, %s s" % (summary.get("finished"),
          summary.get("images"), summary.get("tiled_vae"), summary.get("oom"),
          summary.get("wall_s")))
EOF
}

ballast_pid=""
stop_ballast() {
  if [[ -n $ballast_pid ]]; then
    kill "$ballast_pid" 2>/dev/null
    wait "$ballast_pid" 2>/dev/null
    ballast_pid=""
  fi
}
trap stop_ballast EXIT

# trial CONFIG CARD: runs the series once; 0 when every image finished, 125 (budget spent), 126
# (the ballast failed) or 127 (no launcher) when it could not run. CARD is "full" or GiB.
trial() {
  local config=$1 card=$2
  local name="${config}_${card}${timing_round:+_round$timing_round}"
  local log="$out/logs/$name.log" tracefile="$out/traces/$name.cdtrace"
  if (( SECONDS - started > budget )); then
    echo "== $config on $card GiB: skipped, budget of ${budget}s spent"
    trial_line "$config" "$card" 125 "skipped: budget spent"
    return 125
  fi
  if [[ $config == cudefrag* && -z $launcher ]]; then
    trial_line "$config" "$card" 127 "no cudefrag launcher"
    failures=$((failures + 1))
    return 127
  fi
  command_for "$config" "$card" "$tracefile"
  : >"$log"
  if [[ $card != full && $config != cudefrag-limit ]]; then
    "$py" "$here/ballast.py" --keep "$card" >"$out/logs/${name}_ballast.log" 2>&1 &
    ballast_pid=$!
    local waited=0
    until grep -qE '^ballast: (ready|short|cannot)' "$out/logs/${name}_ballast.log" 2>/dev/null; do
      sleep 0.1
      waited=$((waited + 1))
      if ((waited > 1200)) || ! kill -0 "$ballast_pid" 2>/dev/null; then break; fi
    done
    if ! grep -q '^ballast: ready' "$out/logs/${name}_ballast.log"; then
      echo "== $config on $card GiB: the ballast did not get ready: $(tail -1 "$out/logs/${name}_ballast.log")"
      stop_ballast
      trial_line "$config" "$card" 126 "ballast not ready"
      failures=$((failures + 1))
      return 126
    fi
    cat "$out/logs/${name}_ballast.log" >>"$log"
  fi
  echo "\$ ${cmd[*]}" >>"$log"
  local t0=$SECONDS rc
  timeout --kill-after=15 "$trial_timeout" "${cmd[@]}" >>"$log" 2>&1
  rc=$?
  stop_ballast
  local note="exit $rc"
  ((rc == 124)) && note="timed out after ${trial_timeout}s"
  ((rc == 2)) && note="harness could not start: see logs/$name.log" && failures=$((failures + 1))
  local summary
  summary=$(trial_line "$config" "$card" "$rc" "$note" "$log")
  trial_rows+=("$(printf '%-24s %-6s %-5s %s (%ss)' "$config" "$card" "$rc" "${summary:-no summary: $note}" $((SECONDS - t0)))")
  echo "== ${trial_rows[-1]}"
  return "$rc"
}

fits() { trial "$1" "$(to_gib "$2")"; }

echo "compare.sh: $(date -u +%FT%TZ), ComfyUI $comfy, launcher ${launcher:-none}, out $out"
nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv,noheader 2>&1 | head -2

# The checkpoint, once, outside every measurement.
if ! "${harness[@]}" --prepare-only --tag config=prepare -- "${comfy_flags[@]}" \
  >"$out/logs/prepare.log" 2>&1; then
  echo "compare.sh: preparing the checkpoint failed: see $out/logs/prepare.log"
  tail -5 "$out/logs/prepare.log"
  exit 1
fi

IFS=, read -r -a config_list <<<"$configs"
for config in "${config_list[@]}"; do
  command_for "$config" full /dev/null || { echo "compare.sh: unknown config $config" >&2; exit 64; }
done
for config in "${config_list[@]}"; do
  ((bisect)) || break
  echo "== $config"
  # cudefrag-limit without a limit is the cudefrag config: no full-card run of its own.
  if [[ $config != cudefrag-limit ]]; then
    trial "$config" full
    rc=$?
    if ((rc >= 125)); then
      echo "== $config: not run (exit $rc)"
      continue
    elif ((rc != 0)); then
      echo "== $config did not finish the series on the full card (exit $rc): no bisection"
      continue
    fi
  fi
  fits "$config" "$q_hi"
  rc=$?
  if ((rc >= 125)); then
    echo "== $config: bisection stopped (exit $rc)"
    continue
  elif ((rc != 0)); then
    echo "== $config does not finish on $(to_gib "$q_hi") GiB: raise --hi"
    continue
  fi
  fits "$config" "$q_lo"
  rc=$?
  ((rc == 0)) && echo "== $config finishes on $(to_gib "$q_lo") GiB: lower --lo to know more"
  ((rc == 0 || rc >= 125)) && continue
  lo_q=$q_lo hi_q=$q_hi
  while ((hi_q - lo_q > 1)); do
    mid=$(((lo_q + hi_q) / 2))
    fits "$config" "$mid"
    rc=$?
    if ((rc >= 125)); then
      echo "== $config: bisection stopped between $(to_gib "$lo_q") and $(to_gib "$hi_q") GiB"
      break
    fi
    if ((rc == 0)); then hi_q=$mid; else lo_q=$mid; fi
  done
done

# The wall-time comparison: untraced whole-card runs in rounds, the order rotated per round.
timed=()
for config in "${config_list[@]}"; do
  [[ $config == cudefrag-limit ]] || timed+=("$config")
done
saved_trace=$trace
trace=0
for ((round = 1; round <= timing; round++)); do
  timing_round=$round
  for ((k = 0; k < ${#timed[@]}; k++)); do
    trial "${timed[(k + round - 1) % ${#timed[@]}]}" full
    (($? == 125)) && break 2
  done
done
timing_round=""
trace=$saved_trace

{
  echo
  echo "compare.sh: $(date -u +%FT%TZ), $((SECONDS - started)) s; series ${series:-harness default}, $steps steps"
  printf '%-24s %-6s %-5s %s\n' CONFIG CARD EXIT OUTCOME
  printf '%s\n' "${trial_rows[@]}"
  echo
  "$py" "$here/harness.py" --table "$results"
} | tee "$out/table.txt"
((failures == 0))
