#!/usr/bin/env bash
# Checks the replay models against the allocators themselves, on a GPU machine:
#   tests/analyzer/replay/gpu_replay_check.sh LAUNCHER OUT_DIR [WORKLOAD...]   (default: diffusion)
# For each workload of bench/workloads/workloads.py:
#   1. records a trace of it under `cudefrag run --mode passthrough` with
#      backend:cudaMallocAsync, so that every tensor is one recorded request and the driver's own
#      pool serves it (the shim only watches);
#   2. runs it under each allocator on the whole card (bench/workloads/compare.py) for the peaks
#      PyTorch reports (max_memory_reserved; for cudefrag, the arena's peak physical);
#   3. replays the trace (`cudefrag replay --json`) and prints model against measurement.
# With BISECT="LO HI" in the environment, also the smallest card of each (compare.py --bisect,
# slow: one run per step) against the replay's smallest card.
# Exit status: 0 when every step ran; the comparison is for a person to read (docs/replay.md).
set -euo pipefail
launcher=${1:?usage: $0 LAUNCHER OUT_DIR [WORKLOAD...]}
out=${2:?usage: $0 LAUNCHER OUT_DIR [WORKLOAD...]}
shift 2
workloads=("${@:-diffusion}")
repo=$(cd "$(dirname "$0")/../../.." && pwd)
py=${PYTHON:-python3}
scale=${SCALE:-1.0}
mkdir -p "$out"

for w in "${workloads[@]}"; do
  trace="$out/$w.cdtrace"
  rm -f "$trace"
  PYTORCH_CUDA_ALLOC_CONF=backend:cudaMallocAsync "$launcher" run --quiet --mode passthrough \
    --trace "$trace" -- "$py" "$repo/bench/workloads/workloads.py" "$w" --scale "$scale" \
    > "$out/$w.record.log" 2>&1
  "$py" "$repo/bench/workloads/compare.py" "$w" --cudefrag "$launcher" --scale "$scale" \
    --contenders native,expandable,async,cudefrag+async --out "$out/$w.measured.jsonl" \
    > "$out/$w.measured.log" 2>&1
  "$launcher" replay "$trace" --json "$out/$w.replay.json" > "$out/$w.replay.txt"
  if [[ -n ${BISECT:-} ]]; then
    # shellcheck disable=SC2086
    "$py" "$repo/bench/workloads/compare.py" "$w" --cudefrag "$launcher" --scale "$scale" \
      --contenders native,expandable,async,cudefrag+async --bisect $BISECT \
      --out "$out/$w.bisect.jsonl" > "$out/$w.bisect.log" 2>&1
  fi
  "$py" - "$w" "$out" <<'PY'
import json, os, sys
w, out = sys.argv[1], sys.argv[2]
G = 1 << 30
replay = {m["name"]: m for m in json.load(open(os.path.join(out, w + ".replay.json")))["models"]}
runs = [json.loads(l) for l in open(os.path.join(out, w + ".measured.jsonl"))]
measured = {}
for r in runs:
    key = {"cudefrag+async": "cudefrag"}.get(r["contender"], r["contender"])
    held = r.get("pool_reserved_high") if key == "cudefrag" else r.get("peak_reserved")
    measured[key] = (held, r.get("peak_allocated"), r.get("status"))
bisect = {}
path = os.path.join(out, w + ".bisect.jsonl")
if os.path.exists(path):
    for l in open(path):
        r = json.loads(l)
        key = {"cudefrag+async": "cudefrag"}.get(r["contender"], r["contender"])
        if r.get("status") == "ok" and r.get("card_gib") is not None:
            bisect[key] = min(bisect.get(key, 1e9), r["card_gib"])
print(f"{w}: model vs measured (GiB)")
print("model       replay peak  measured peak  measured live  replay card  measured card")
for name in ["native", "expandable", "async", "cudefrag"]:
    m = replay.get(name, {})
    held, live, status = measured.get(name, (None, None, None))
    f = lambda v: "-" if v is None else "%.2f" % (v / G)
    card = m.get("smallest_card")
    print("%-11s %11s %14s %14s %12s %14s" % (name, f(m.get("peak_reserved")), f(held), f(live),
          f(card), "%.2f" % bisect[name] if name in bisect else "-"))
PY
done
