#!/usr/bin/env python3
"""Speed of `cudefrag report` on a large synthetic trace.

Writes a trace with the real recorder (tests/analyzer/report/synthetic_trace.cpp: two threads,
40 call sites with native stacks, zstd blocks), then times `cudefrag report` on it and prints
records per second of wall-clock time and of CPU time, and the peak memory.

    python3 bench/analyzer/report_bench.py BUILD_DIR [--events N] [--runs R]

BUILD_DIR must have the targets cudefrag_launcher and analyzer_synthetic_trace built. Timings
are not asserted anywhere: record them with the date and the machine.
"""
import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build", help="the build directory")
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    generator = os.path.join(args.build, "tests/analyzer/analyzer_synthetic_trace")
    cudefrag = os.path.join(args.build, "launcher/cudefrag")
    for program in (generator, cudefrag):
        if not os.access(program, os.X_OK):
            sys.exit(f"{program} is missing: build analyzer_synthetic_trace and cudefrag_launcher")

    with tempfile.TemporaryDirectory(prefix="cudefrag-report-bench-") as directory:
        trace = os.path.join(directory, "synthetic.trace")
        made = subprocess.run([generator, trace, "--events", str(args.events)], check=True,
                              capture_output=True, text=True).stdout.strip()
        records = int(made.split()[0])
        size = os.path.getsize(trace)
        print(f"trace: {made}; {size / 2**20:.1f} MiB on disk")

        best_wall = best_cpu = None
        for run in range(args.runs):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run([cudefrag, "report", trace], check=True, stdout=subprocess.DEVNULL)
            wall = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            print(f"run {run + 1}: {wall:.2f} s wall, {cpu:.2f} s CPU: "
                  f"{records / wall / 1e6:.2f} M records/s wall, "
                  f"{records / cpu / 1e6:.2f} M records/CPU-second")
            best_wall = wall if best_wall is None else min(best_wall, wall)
            best_cpu = cpu if best_cpu is None else min(best_cpu, cpu)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        print(f"best: {records / best_wall / 1e6:.2f} M records/s wall "
              f"({records / best_cpu / 1e6:.2f} M/CPU-s); peak memory {peak / 1024:.0f} MiB; "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
