#!/usr/bin/env python3
"""Runs `cudefrag export` on the golden and recorded traces and checks that each output is
what its consumer reads (standard library only; ctest runs it):

    python3 check_exports.py EXPORT_CLI TRACES_DIR

- Perfetto / chrome://tracing JSON: parses; traceEvents of known phases; a "GPU N live"
  counter track per device with allocations, each track's ts never going back; an instant per
  out-of-memory error; process and thread names.
- memory_viz pickle: check_memory_viz.py (next to this file), and the same device, OOM and
  live-memory figures as the other two outputs; where torch is installed, also
  check_memory_viz_torch.py (PyTorch's own memory_viz functions).
- RMM log: parses with the csv module, header exact, every free follows its allocate with the
  same size, no pointer allocated twice while live.
A few deliberately broken snapshots must fail the memory_viz checks, so that they can fail.
"""

import copy
import csv
import importlib.util
import json
import os
import pickle
import re
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # nothing written into the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_memory_viz  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
# Where torch is installed (the GPU machine), PyTorch's own memory_viz renders every snapshot.
HAVE_TORCH = importlib.util.find_spec("torch") is not None
RMM_HEADER = ["Thread", "Time", "Action", "Pointer", "Size", "Stream"]
TIME = re.compile(r"^\d\d:\d\d:\d\d\.\d{6}$")


class Failure(Exception):
    pass


def expect(condition, message):
    if not condition:
        raise Failure(message)


def check_perfetto(path):
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    expect(isinstance(doc, dict) and isinstance(doc.get("traceEvents"), list),
           "no traceEvents list")
    last_ts = {}
    tracks = {}
    ooms = 0
    names = set()
    for i, e in enumerate(doc["traceEvents"]):
        ph = e.get("ph")
        expect(ph in ("C", "i", "M"), f"event {i}: phase {ph!r}")
        expect(isinstance(e.get("pid"), int), f"event {i}: no pid")
        if ph == "M":
            expect(e["name"] in ("process_name", "thread_name"), f"event {i}: metadata {e['name']}")
            expect(isinstance(e["args"]["name"], str), f"event {i}: no name")
            names.add(e["name"])
            continue
        expect(isinstance(e.get("ts"), (int, float)) and e["ts"] >= 0, f"event {i}: ts")
        if ph == "C":
            args = e["args"]
            expect(args and all(isinstance(v, int) and v >= 0 for v in args.values()),
                   f"event {i}: counter values")
            name = e["name"]
            expect(e["ts"] >= last_ts.get(name, 0), f"event {i}: {name} goes back in time")
            last_ts[name] = e["ts"]
            tracks[name] = args["bytes"]
        else:
            expect(e.get("s") in ("g", "p", "t"), f"event {i}: instant scope")
            if e.get("cat") == "oom":
                expect(e["s"] == "g", f"event {i}: OOM not global")
                for key in ("requested", "device", "site", "frames", "live", "physical",
                            "largest_extent", "driver_free"):
                    expect(key in e["args"], f"event {i}: OOM without {key}")
                ooms += 1
    expect("process_name" in names, "no process name")
    return {"tracks": tracks, "ooms": ooms}


def check_rmm(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    expect(rows and rows[0] == RMM_HEADER, f"header {rows[0] if rows else None}")
    live = {}
    allocations = 0
    for n, row in enumerate(rows[1:], start=2):
        expect(len(row) == 6, f"line {n}: {len(row)} columns")
        thread, time, action, pointer, size, stream = row
        int(thread)
        expect(TIME.match(time), f"line {n}: time {time!r}")
        expect(pointer.startswith("0x"), f"line {n}: pointer {pointer!r}")
        ptr = int(pointer, 16)
        size = int(size)
        expect(stream == "0" or stream.startswith("0x"), f"line {n}: stream {stream!r}")
        int(stream, 16)
        if action == "allocate":
            expect(ptr not in live, f"line {n}: {pointer} allocated twice")
            live[ptr] = size
            allocations += 1
        else:
            expect(action == "free", f"line {n}: action {action!r}")
            expect(live.get(ptr) == size, f"line {n}: free of {pointer} without its allocate")
            del live[ptr]
    return {"allocations": allocations, "live": len(live)}


def export(cli, trace, out_dir, extra=()):
    outputs = {k: os.path.join(out_dir, k) for k in ("perfetto.json", "viz.pickle", "rmm.csv")}
    run = subprocess.run([cli, trace, "--perfetto", outputs["perfetto.json"], "--memory-viz",
                          outputs["viz.pickle"], "--rmm-csv", outputs["rmm.csv"], *extra],
                         capture_output=True, text=True)
    return run, outputs


def check_trace(cli, trace, extra=()):
    with tempfile.TemporaryDirectory() as out_dir:
        run, outputs = export(cli, trace, out_dir, extra)
        expect(run.returncode == 0, f"exit {run.returncode}: {run.stderr.strip()}")
        perfetto = check_perfetto(outputs["perfetto.json"])
        rmm = check_rmm(outputs["rmm.csv"])
        try:
            snapshot = check_memory_viz.check_snapshot(outputs["viz.pickle"])
        except check_memory_viz.Problem as p:
            raise Failure(f"memory_viz: {p}")
        breakable(snapshot, outputs["viz.pickle"])
        if HAVE_TORCH:
            torch_run = subprocess.run([sys.executable, os.path.join(HERE, "check_memory_viz_torch.py"),
                                        outputs["viz.pickle"]], capture_output=True, text=True)
            expect(torch_run.returncode == 0,
                   f"torch memory_viz: {torch_run.stdout}{torch_run.stderr}")
    if "--until-oom" in extra:
        last = [t[-1]["action"] for t in snapshot["device_traces"] if t]
        expect("oom" in last, f"--until-oom: the traces end with {last}, not an oom")
    # The three outputs tell the same story.
    viz_ooms = sum(1 for t in snapshot["device_traces"] for e in t if e["action"] == "oom")
    expect(perfetto["ooms"] == viz_ooms, f"{perfetto['ooms']} OOM instants, {viz_ooms} in viz")
    viz_allocs = sum(1 for t in snapshot["device_traces"] for e in t if e["action"] == "alloc")
    expect(rmm["allocations"] == viz_allocs, f"{rmm['allocations']} RMM allocations, {viz_allocs}")
    for device, trace_events in enumerate(snapshot["device_traces"]):
        if not any(e["action"] == "alloc" for e in trace_events):
            continue
        live = sum(s["allocated_size"] for s in snapshot["segments"] if s["device"] == device)
        track = f"GPU {device} live"
        expect(track in perfetto["tracks"], f"no {track} counter track")
        expect(perfetto["tracks"][track] == live,
               f"{track} ends at {perfetto['tracks'][track]}, the segments hold {live}")
    return run.stderr


def breakable(snapshot, path):
    """The memory_viz checks must catch a snapshot the viewer would choke on."""
    def fails(broken, what):
        with tempfile.NamedTemporaryFile(suffix=".pickle") as f:
            pickle.dump(broken, f, protocol=4)
            f.flush()
            try:
                check_memory_viz.check_snapshot(f.name)
            except check_memory_viz.Problem:
                return
        raise Failure(f"check_memory_viz accepts a snapshot with {what}")

    for s, seg in enumerate(snapshot["segments"]):
        if any(b["state"] == "active_allocated" for b in seg["blocks"]):
            broken = copy.deepcopy(snapshot)
            del broken["segments"][s]
            fails(broken, "a live block outside every segment")
            break
    for s, seg in enumerate(snapshot["segments"]):
        if len(seg["blocks"]) > 0:
            broken = copy.deepcopy(snapshot)
            broken["segments"][s]["blocks"][0]["size"] += 512
            fails(broken, "blocks that do not tile their segment")
            return


def main(argv):
    if len(argv) != 3:
        print("usage: check_exports.py EXPORT_CLI TRACES_DIR", file=sys.stderr)
        return 2
    cli, traces = argv[1], argv[2]
    cases = [("oom.trace", ()), ("oom.trace", ("--from", "1.5", "--to", "3.2")),
             ("oom.trace", ("--to", "4.05")), ("oom.trace", ("--until-oom",)),
             ("multi_device.trace", ()),
             ("multi_device.trace", ("--device", "1")), ("truncated.trace", ())]
    h200 = os.path.join(traces, "h200")
    for n in sorted(os.listdir(h200)):
        # The checkers here take 30-90 s on the whole-workload and ComfyUI traces (100k records,
        # most of it in Python); the small program traces cover every record kind they check.
        if n.endswith(".cdtrace") and os.path.getsize(os.path.join(h200, n)) > 64 * 1024:
            print(f"skip h200/{n}: larger than 64 KiB")
            continue
        if n.endswith(".cdtrace"):
            cases.append((os.path.join("h200", n), ()))
            if "oom" in n:
                cases.append((os.path.join("h200", n), ("--until-oom",)))
    failed = 0
    for name, extra in cases:
        label = " ".join([name, *extra])
        try:
            stderr = check_trace(cli, os.path.join(traces, name), extra)
            if name == "truncated.trace":
                expect("warning" in stderr, "no warning for a truncated trace")
            print(f"ok   {label}")
        except (Failure, ValueError, KeyError, json.JSONDecodeError) as e:
            print(f"FAIL {label}: {e}")
            failed += 1
    # A corrupted trace: exit 2, and no output left behind.
    with tempfile.TemporaryDirectory() as out_dir:
        run, outputs = export(cli, os.path.join(traces, "corrupted.trace"), out_dir)
        left = [p for p in outputs.values() if os.path.exists(p)]
        if run.returncode != 2 or left:
            print(f"FAIL corrupted.trace: exit {run.returncode}, left {left}")
            failed += 1
        else:
            print("ok   corrupted.trace (exit 2, nothing left)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
