#!/usr/bin/env python3
"""Compares the calls a program says it made with the calls the shim counted.

Reads one log holding both: the program's own lines (examples/cuda/call_log.hpp)
    [program] call <entry point> count=<n> bytes=<n>
and the launcher's end-of-run summary, of which it needs only lines that name an entry point
(cuXxx or cudaXxx) followed by a call count. Names are compared by family: the suffixes _v2, _v3,
_ptsz and _ptds are dropped and the counts of a family added, because whether the shim reports
cuMemAllocAsync_ptsz apart from cuMemAllocAsync is its choice, not a miscount.

Verdicts, one line per entry point the program reported, then a last line:
    match      the shim counted exactly the program's calls
    MISMATCH   it counted a different number
    MISSING    an allocation entry point the shim must hook, absent from its summary
    unhooked   another entry point absent from the summary (information only)
Exit status: 0 all matched, 1 a mismatch or a missing allocation entry point, 3 no summary found
in the log (nothing to compare), 64 bad usage.

With --info it only prints what the shim saw (for programs whose calls the shim cannot see,
such as one linked with the static CUDA runtime) and exits 0 when a summary was found.
"""

import argparse
import re
import sys

PROGRAM_LINE = re.compile(r"^\[(?P<prog>[\w.-]+)\] call (?P<name>\w+) count=(?P<count>\d+)")
ENTRY_POINT = re.compile(r"\b(cuda[A-Z]\w*|cu[A-Z]\w*)\b")
INTEGER = re.compile(r"(?<![\w.])(\d[\d,_']*)(?![\w.])")
# Lines of the example programs and of this project's scripts, never part of a summary.
OWN_LINE = re.compile(r"^(\[|(train_step|two_functions|compare_counts|RESULT)\b)")
SUFFIX = re.compile(r"(_v\d+|_ptsz|_ptds)+$")

# Entry points the shim hooks to serve allocations: a program's calls to these must be counted.
ALLOCATION_FAMILIES = {
    "cudaMalloc", "cudaFree", "cudaMallocAsync", "cudaFreeAsync", "cudaMallocPitch",
    "cudaMalloc3D", "cudaMallocFromPoolAsync", "cuMemAlloc", "cuMemFree", "cuMemAllocPitch",
    "cuMemAllocAsync", "cuMemFreeAsync", "cuMemAllocFromPoolAsync",
}


def family(name):
    return SUFFIX.sub("", name)


def parse(lines):
    """Returns (program counts by family, shim counts by family, raw shim names)."""
    program, shim, shim_raw = {}, {}, {}
    for line in lines:
        line = line.rstrip("\n")
        m = PROGRAM_LINE.match(line)
        if m:
            fam = family(m["name"])
            program[fam] = program.get(fam, 0) + int(m["count"])
            continue
        if OWN_LINE.match(line):
            continue
        name_match = ENTRY_POINT.search(line)
        if not name_match:
            continue
        number = INTEGER.search(line, name_match.end())
        if not number:
            continue
        name = name_match.group(1)
        count = int(re.sub(r"[,_']", "", number.group(1)))
        # A summary names each entry point once; a repeated name is a second table (per device,
        # say), whose counts add up.
        shim_raw[name] = shim_raw.get(name, 0) + count
        shim[family(name)] = shim.get(family(name), 0) + count
    return program, shim, shim_raw


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("log", help="combined output of the program and the launcher")
    parser.add_argument("--info", action="store_true", help="report only, never fail")
    args = parser.parse_args()
    try:
        with open(args.log, encoding="utf-8", errors="replace") as f:
            program, shim, shim_raw = parse(f)
    except OSError as e:
        print(f"compare_counts: {e}", file=sys.stderr)
        return 64
    if not shim:
        print("compare_counts: no summary of the shim's counts in the log")
        return 3
    seen = " ".join(f"{n}={c}" for n, c in sorted(shim_raw.items()))
    print(f"compare_counts: shim saw {seen}")
    if args.info:
        return 0
    bad = matched = 0
    for fam, count in sorted(program.items()):
        if fam in shim:
            verdict = "match" if shim[fam] == count else "MISMATCH"
        else:
            verdict = "MISSING" if fam in ALLOCATION_FAMILIES else "unhooked"
        bad += verdict in ("MISMATCH", "MISSING")
        matched += verdict == "match"
        print(f"compare_counts: {verdict:9} {fam}: program {count}, shim {shim.get(fam, '-')}")
    print(f"compare_counts: {matched} of {len(program)} entry points agree, {bad} disagree")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
