#!/usr/bin/env python3
"""Checks that a `cudefrag export --memory-viz` pickle is what PyTorch's memory_viz reads.

    python3 check_memory_viz.py SNAPSHOT.pickle

Standard library only. What is checked comes from reading torch/cuda/_memory_viz.py and the
viewer torch/utils/viz/MemoryViz.js (pytorch.org/memory_viz):
- the pickle uses only opcodes the viewer's own unpickler knows, protocol 2 to 4, and no
  APPENDS batch larger than the viewer can spread into a call;
- the snapshot dict: "segments" and "device_traces" (a list per device ordinal);
- segments: the keys _memory_viz reads, blocks that tile the segment (segsum asserts it),
  allocated_size = sum of active blocks, requested <= size, frames {filename, line, name};
- device_traces: the actions the viewer knows, with the keys each one needs;
- the viewer's "Allocator State History" rebuilds each earlier state by undoing events from the
  final segments; this replays that undo and fails where the viewer would throw (a segment_map
  with no segment containing it, a segment_alloc with no segment at its address, a
  free_requested with no block) or draw a block outside every segment.
Exit 0 when every check passes, 1 with the first problem otherwise.
"""

import pickle
import pickletools
import sys

# MemoryViz.js unpickle(): the opcodes it handles.
VIEWER_OPCODES = {
    "PROTO", "FRAME", "EMPTY_DICT", "EMPTY_LIST", "EMPTY_TUPLE", "MARK", "SETITEM", "SETITEMS",
    "APPEND", "APPENDS", "DICT", "LIST", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3", "BININT",
    "BININT1", "BININT2", "LONG1", "SHORT_BINUNICODE", "BINUNICODE", "BINFLOAT", "NEWTRUE",
    "NEWFALSE", "NONE", "MEMOIZE", "BINPUT", "LONG_BINPUT", "BINGET", "LONG_BINGET", "STOP",
}
# The viewer spreads each batch into push(...); Python's pickler writes batches of 1000.
MAX_BATCH = 1000

ACTIONS = {"alloc", "free_requested", "free_completed", "segment_alloc", "segment_free",
           "segment_map", "segment_unmap", "oom", "snapshot"}
SEGMENT_KEYS = {"device", "address", "total_size", "allocated_size", "active_size",
                "requested_size", "stream", "segment_type", "blocks"}
BLOCK_STATES = {"active_allocated", "active_pending_free", "inactive"}


class Problem(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Problem(message)


def check_opcodes(data):
    counts = [0]  # items pushed since each open MARK; [0] is the top level
    proto = None
    for op, arg, pos in pickletools.genops(data):
        name = op.name
        check(name in VIEWER_OPCODES, f"offset {pos}: opcode {name} is not read by the viewer")
        if name == "PROTO":
            proto = arg
            check(2 <= arg <= 4, f"protocol {arg}: the viewer reads 2 to 4")
        elif name == "MARK":
            counts.append(0)
        elif name in ("APPENDS", "SETITEMS"):
            n = counts.pop()
            limit = MAX_BATCH * (2 if name == "SETITEMS" else 1)
            check(n <= limit, f"offset {pos}: {name} of {n} items (at most {limit})")
        elif name in ("LIST", "TUPLE", "DICT"):
            counts.pop()
            counts[-1] += 1
        elif name == "APPEND":
            counts[-1] -= 1
        elif name == "SETITEM":
            counts[-1] -= 2
        elif name in ("TUPLE2", "TUPLE3"):
            counts[-1] -= 1 if name == "TUPLE2" else 2
        elif name in ("TUPLE1", "PROTO", "FRAME", "MEMOIZE", "BINPUT", "LONG_BINPUT", "STOP"):
            pass
        else:
            counts[-1] += 1
    check(proto is not None, "no PROTO opcode")


def check_frames(frames, where):
    check(isinstance(frames, list), f"{where}: frames is not a list")
    for f in frames:
        check(isinstance(f, dict), f"{where}: a frame is not a dict")
        check(isinstance(f.get("filename"), str), f"{where}: frame without filename")
        check(isinstance(f.get("line"), int), f"{where}: frame without line")
        check(isinstance(f.get("name"), str), f"{where}: frame without name")


def check_segments(snapshot):
    segments = snapshot["segments"]
    check(isinstance(segments, list), "segments is not a list")
    free_internal = free_external = allocated_total = reserved = 0
    for i, seg in enumerate(segments):
        where = f"segment {i}"
        missing = SEGMENT_KEYS - set(seg)
        check(not missing, f"{where}: missing {sorted(missing)}")
        check(seg["total_size"] > 0, f"{where}: empty")
        addr = seg["address"]
        active = requested = 0
        for j, b in enumerate(seg["blocks"]):
            bw = f"{where} block {j}"
            check(b["state"] in BLOCK_STATES, f"{bw}: state {b['state']!r}")
            check(b["size"] > 0, f"{bw}: size {b['size']}")
            if "address" in b:
                check(b["address"] == addr, f"{bw}: address {b['address']:#x}, tiles at {addr:#x}")
            check_frames(b.get("frames", []), bw)
            if b["state"] == "active_allocated":
                check(0 < b["requested_size"] <= b["size"], f"{bw}: requested_size not in (0, size]")
                active += b["size"]
                requested += b["requested_size"]
                # _memory_viz.segsum: allocated + internal free
                allocated_total += b["requested_size"]
                free_internal += b["size"] - b["requested_size"]
            else:
                free_external += b["size"]
            addr += b["size"]
        check(addr == seg["address"] + seg["total_size"],
              f"{where}: blocks end at {addr:#x}, the segment at "
              f"{seg['address'] + seg['total_size']:#x}")
        check(seg["allocated_size"] == active, f"{where}: allocated_size != active blocks")
        check(seg["requested_size"] == requested, f"{where}: requested_size != sum")
        reserved += seg["total_size"]
        check(0 <= seg["device"] < max(1, len(snapshot["device_traces"])),
              f"{where}: device {seg['device']} has no device_traces entry")
    check(free_internal + free_external + allocated_total == reserved, "segsum totals differ")
    # Segments of one device must not overlap.
    by_device = {}
    for seg in segments:
        by_device.setdefault(seg["device"], []).append((seg["address"], seg["total_size"]))
    for device, ranges in by_device.items():
        ranges.sort()
        for (a, n), (b, _) in zip(ranges, ranges[1:]):
            check(a + n <= b, f"device {device}: segments at {a:#x} and {b:#x} overlap")


def check_events(snapshot):
    for device, trace in enumerate(snapshot["device_traces"]):
        check(isinstance(trace, list), f"device_traces[{device}] is not a list")
        last_time = None
        for i, e in enumerate(trace):
            where = f"device {device} event {i}"
            action = e.get("action")
            check(action in ACTIONS, f"{where}: action {action!r}")
            check("stream" in e, f"{where}: no stream")
            check_frames(e.get("frames", []), where)
            check(isinstance(e.get("time_us"), int), f"{where}: no time_us")
            check(last_time is None or e["time_us"] >= last_time, f"{where}: time goes back")
            last_time = e["time_us"]
            if action == "oom":
                check(isinstance(e.get("size"), int) and isinstance(e.get("device_free"), int),
                      f"{where}: oom without size or device_free")
            elif action != "snapshot":
                check(isinstance(e.get("addr"), int) and isinstance(e.get("size"), int),
                      f"{where}: no addr or size")
            check("category" not in e, f"{where}: a category (the viewer then needs 'unknown')")


def annotate(trace):
    """MemoryViz.js annotate_snapshot(): a free_requested followed by its free_completed
    becomes one 'free'."""
    out = []
    for e in trace:
        if (e["action"] == "free_completed" and out and out[-1]["action"] == "free_requested"
                and out[-1]["addr"] == e["addr"]):
            out[-1] = dict(out[-1], action="free")
            continue
        out.append(dict(e))
    return out


def replay_backwards(snapshot, device):
    """MemoryViz.js MemoryView.simulate_memory(), undoing every event of `device`."""
    segments = []
    blocks = {}
    for seg in snapshot["segments"]:
        if seg["device"] != device:
            continue
        segments.append([seg["address"], seg["total_size"], seg["stream"]])
        addr = seg["address"]
        for b in seg["blocks"]:
            if b["state"] in ("active_allocated", "active_pending_free"):
                blocks[addr] = b["size"]
            addr += b["size"]
    segments.sort()

    def containing(addr):
        for s in segments:
            if s[0] <= addr < s[0] + s[1]:
                return s
        return None

    def check_block(addr, size, where):
        s = containing(addr)
        check(s is not None, f"{where}: block {addr:#x} outside every segment")
        check(addr + size <= s[0] + s[1], f"{where}: block {addr:#x} runs past its segment")

    def check_all(where):
        for addr, size in blocks.items():
            check_block(addr, size, where)

    check_all(f"device {device} final state")
    events = annotate(snapshot["device_traces"][device])
    for i in range(len(events) - 1, -1, -1):
        e = events[i]
        where = f"device {device}, undoing event {i} ({e['action']})"
        action = e["action"]
        if action in ("free", "free_completed"):
            check(e["addr"] not in blocks, f"{where}: block {e['addr']:#x} already live")
            blocks[e["addr"]] = e["size"]
            check_block(e["addr"], e["size"], where)
        elif action == "free_requested":
            check(e["addr"] in blocks, f"{where}: no block {e['addr']:#x} (the viewer throws)")
        elif action == "alloc":
            check(e["addr"] in blocks, f"{where}: undoing an alloc of no live block")
            del blocks[e["addr"]]
        elif action in ("segment_free", "segment_unmap"):
            merge = action == "segment_unmap"
            new = [e["addr"], e["size"], e["stream"]]
            for s in segments:
                check(new[0] + new[1] <= s[0] or s[0] + s[1] <= new[0],
                      f"{where}: {new[0]:#x} overlaps a segment")
            segments.append(new)
            segments.sort()
            if merge:
                merged = []
                for s in segments:
                    if merged and merged[-1][0] + merged[-1][1] == s[0] and merged[-1][2] == s[2]:
                        merged[-1][1] += s[1]
                    else:
                        merged.append(s)
                segments[:] = merged
        elif action in ("segment_alloc", "segment_map"):
            if action == "segment_alloc":
                match = [s for s in segments if s[0] == e["addr"]]
                check(match, f"{where}: no segment at {e['addr']:#x} (the viewer drops another)")
                segments.remove(match[0])
            else:
                s = containing(e["addr"])
                check(s is not None and e["addr"] + e["size"] <= s[0] + s[1],
                      f"{where}: no segment holds {e['addr']:#x}+{e['size']} (the viewer throws)")
                end, s_end = e["addr"] + e["size"], s[0] + s[1]
                segments.remove(s)
                if s[0] < e["addr"]:
                    segments.append([s[0], e["addr"] - s[0], s[2]])
                if end < s_end:
                    segments.append([end, s_end - end, s[2]])
                segments.sort()
            check_all(where)


def load(path):
    with open(path, "rb") as f:
        data = f.read()
    check_opcodes(data)
    snapshot = pickle.loads(data)
    check(isinstance(snapshot, dict), "the pickle is not a dict")
    check("segments" in snapshot and "device_traces" in snapshot,
          "no segments or device_traces")
    check(isinstance(snapshot["device_traces"], list), "device_traces is not a list")
    return snapshot


def check_snapshot(path):
    snapshot = load(path)
    check_segments(snapshot)
    check_events(snapshot)
    for device in range(len(snapshot["device_traces"])):
        replay_backwards(snapshot, device)
    return snapshot


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    try:
        snapshot = check_snapshot(argv[1])
    except Problem as p:
        print(f"{argv[1]}: {p}", file=sys.stderr)
        return 1
    events = sum(len(t) for t in snapshot["device_traces"])
    print(f"{argv[1]}: ok ({len(snapshot['segments'])} segments, {events} events)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
