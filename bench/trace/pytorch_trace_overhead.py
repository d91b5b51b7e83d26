#!/usr/bin/env python3
"""What the full trace costs a PyTorch program: wall time with and without it, and its size.

    python3 bench/trace/pytorch_trace_overhead.py --cudefrag BUILD/launcher/cudefrag [--pairs N]

Runs one workload 2N times under `cudefrag run`, alternating a run with `--trace FILE --stacks
both` and one without a trace (same mode, same limit, nothing else different), so that drift of
the machine (clocks, other tenants) falls on both sides alike. Prints the median of each side and
their ratio (goal: traced / untraced <= 1.03), and the trace's bytes per event on disk.

Workloads (--workload):
  steps       (default) this script's own loop of training-step-like allocations: per step, many
              short-lived small tensors (activations, 4 KiB - 1 MiB), a few large ones (32 - 256
              MiB) and a little compute on each. The time is the loop's, measured inside the
              program after a warm-up (torch import and CUDA start-up are the same in both runs
              and would only dilute the ratio); the whole process's wall time is printed too.
  train_step  examples/pytorch/train_step.py; the time is the whole process's.
  diffusion, transformer
              bench/workloads/workloads.py (a UNet + VAE-style decoder over 8 image sizes, a
              decoder-only transformer over 7 prompt lengths): whole inference workloads; the time
              is the steps' wall time the script reports (model build and warm-up excluded).
PyTorch runs with PYTORCH_CUDA_ALLOC_CONF=backend:cudaMallocAsync unless --alloc-conf says
otherwise: with its own caching allocator PyTorch calls cudaMalloc a few times per run and the
trace would see almost nothing; with cudaMallocAsync every tensor is a traced call.

Exit status: 0 when measured (whatever the ratio: the figures are the result), 1 when a run
failed, 77 when torch or a CUDA device is missing (nothing measured). One call takes under 60 s
on an H200 with the defaults (--budget-s bounds it: no pair starts after it).
"""

import argparse
import json
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time

PREFIX = "pytorch_trace_overhead:"
SKIP = 77
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN_STEP = os.path.join(REPO, "examples", "pytorch", "train_step.py")
WORKLOADS = os.path.join(REPO, "bench", "workloads", "workloads.py")
LOOP_MARK = "loop_seconds="


# ------------------------------------------------------------------------------------------------
# The workload, run as a child of `cudefrag run`.


def workload(steps, warmup):
    import torch

    device = torch.device("cuda", 0)
    generator = torch.Generator(device="cpu").manual_seed(7)
    small = [int(s) for s in torch.randint(1 << 12, 1 << 20, (64,), generator=generator)]
    large = [32 << 20, 96 << 20, 256 << 20]
    weights = torch.randn(1024, 1024, device=device)

    def step():
        keep = []
        for i, size in enumerate(small):
            t = torch.empty(size // 4, dtype=torch.float32, device=device)
            t.fill_(1.0)
            if i % 8 == 0:
                keep.append(t)  # lives to the end of the step, like saved activations
        for size in large:
            t = torch.empty(size // 4, dtype=torch.float32, device=device)
            t.zero_()
        x = torch.randn(512, 1024, device=device)
        for _ in range(4):
            x = torch.relu(x @ weights)
        return float(x[0, 0].item()) + len(keep)

    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    print(f"{PREFIX} {LOOP_MARK}{time.perf_counter() - start:.6f}", flush=True)
    return 0


# ------------------------------------------------------------------------------------------------
# The driver: checks, runs, figures.


def missing_requirement(python):
    """Why the workload cannot run here (no torch, no CUDA device), or None."""
    probe = ("import sys\n"
             "try:\n"
             "    import torch\n"
             "except Exception as e:\n"
             "    print('torch cannot be imported: %s' % e); sys.exit(1)\n"
             "if not torch.cuda.is_available():\n"
             "    print('torch %s sees no CUDA device' % torch.__version__); sys.exit(1)\n")
    try:
        r = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"cannot run {python}: {e}"
    if r.returncode != 0:
        return (r.stdout.strip() or r.stderr.strip() or f"{python} failed").splitlines()[-1]
    return None


def trace_records(path):
    """Records in the trace, from its block headers (no decompression needed)."""
    records = 0
    with open(path, "rb") as f:
        header = f.read(24)
        if len(header) < 24:
            return 0
        offset = struct.unpack_from("<I", header, 12)[0]  # header_size: blocks start there
        f.seek(offset)
        while True:
            block = f.read(32)
            if len(block) < 32:
                break
            magic, _, _, _, stored, _, count = struct.unpack_from("<IBBHIII", block)
            if magic != 0x42464443:
                break
            records += count
            f.seek(stored, os.SEEK_CUR)
    return records


def trace_events(cudefrag, path):
    """Events (allocations, frees, arena events, OOMs, counters, marks) from `cudefrag report`;
    None when the report cannot be read."""
    try:
        r = subprocess.run([cudefrag, "report", path, "--json", "-"], capture_output=True,
                           text=True, timeout=120)
        counts = json.loads(r.stdout)["events"]
    except (OSError, subprocess.TimeoutExpired, ValueError, KeyError, TypeError):
        return None
    return sum(counts.get(k, 0) for k in ("allocations", "frees", "failed_allocations",
                                          "arena_events", "counters", "marks"))


def run_once(args, trace_path):
    """One run under `cudefrag run`: (workload seconds, process seconds, the shim's own timing of
    the trace in seconds or None, the summary's breakdown of a call stack's time or None). A
    traced run keeps the launcher's summary, whose "trace cost" line is that timing (sampled in
    the shim: the allocating threads' time in the recorder), followed by where a call stack's
    time went (Python frames, native frames and ns per frame, stack table)."""
    command = [args.cudefrag, "run", "--mode", args.mode, "--keep-torch-alloc-conf"]
    if not trace_path:
        command.append("--quiet")
    if args.limit:
        command += ["--limit", args.limit]
    if trace_path:
        command += ["--trace", trace_path, "--stacks", args.stacks]
        if args.native_frames:
            command += ["--native-frames", str(args.native_frames)]
    if args.workload == "steps":
        command += ["--", args.python, os.path.abspath(__file__), "--child",
                    "--steps", str(args.steps), "--warmup", str(args.warmup)]
    elif args.workload == "train_step":
        command += ["--", args.python, TRAIN_STEP, "--steps", str(args.steps)]
    else:
        command += ["--", args.python, WORKLOADS, args.workload, "--passes", str(args.passes)]
    env = dict(os.environ)
    if args.alloc_conf:
        env["PYTORCH_CUDA_ALLOC_CONF"] = args.alloc_conf
    else:
        env.pop("PYTORCH_CUDA_ALLOC_CONF", None)
    start = time.perf_counter()
    r = subprocess.run(command, capture_output=True, text=True, env=env, timeout=args.budget_s)
    wall = time.perf_counter() - start
    if r.returncode != 0:
        tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-15:])
        raise RuntimeError(f"{' '.join(command)} exited {r.returncode}:\n{tail}")
    loop = None
    for line in r.stdout.splitlines():
        if LOOP_MARK in line:
            loop = float(line.split(LOOP_MARK, 1)[1])
        elif line.startswith("{") and args.workload in ("diffusion", "transformer"):
            loop = json.loads(line).get("seconds")
    if args.workload != "train_step" and loop is None:
        raise RuntimeError(f"the workload printed no {LOOP_MARK} line:\n{r.stdout[-2000:]}")
    cost = None
    breakdown = None
    for line in r.stderr.splitlines():
        if "trace cost:" in line and "about " in line and " s on the" in line:
            cost = float(line.rsplit("about ", 1)[1].split(" s on the")[0])
        elif "of a call stack:" in line:
            breakdown = line.split("of a call stack:", 1)[1].strip()
    return (loop if loop is not None else wall), wall, cost, breakdown


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cudefrag", default=shutil.which("cudefrag"),
                        help="the launcher (default: cudefrag on PATH)")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--workload", choices=("steps", "train_step", "diffusion", "transformer"), default="steps")
    parser.add_argument("--pairs", type=int, default=4, help="traced + untraced runs (default 4)")
    parser.add_argument("--steps", type=int, default=None,
                        help="steps per run (default: 200 for steps, 4 for train_step)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--stacks", choices=("none", "native", "python", "both"), default="both",
                        help="the traced runs' call stacks (default both: the full trace)")
    parser.add_argument("--native-frames", type=int, default=None, metavar="N",
                        help="cudefrag run --native-frames N for the traced runs (default: the "
                        "launcher's, 64)")
    parser.add_argument("--passes", type=int, default=1,
                        help="diffusion, transformer: workloads.py --passes (a longer run)")
    parser.add_argument("--mode", choices=("arena", "passthrough"), default="arena")
    parser.add_argument("--limit", default="", help="the arena's limit (default: none)")
    parser.add_argument("--alloc-conf", default="backend:cudaMallocAsync",
                        help="PYTORCH_CUDA_ALLOC_CONF for the program ('' for PyTorch's default)")
    parser.add_argument("--budget-s", type=float, default=40.0,
                        help="no pair starts after this many seconds (default 40)")
    parser.add_argument("--keep", metavar="DIR", help="keep the last trace in DIR")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.steps is None:
        args.steps = 200 if args.workload == "steps" else 4

    if args.child:
        return workload(args.steps, args.warmup)

    why = missing_requirement(args.python)
    if why is not None:
        print(f"{PREFIX} SKIP: {why}")
        return SKIP
    if not args.cudefrag or not os.access(args.cudefrag, os.X_OK):
        print(f"{PREFIX} no launcher: pass --cudefrag BUILD/launcher/cudefrag", file=sys.stderr)
        return 2

    workdir = tempfile.mkdtemp(prefix="cudefrag-trace-overhead-")
    trace_path = os.path.join(workdir, "run.trace")
    traced, untraced, traced_wall, untraced_wall = [], [], [], []
    started = time.perf_counter()
    costs = []  # the shim's own timing of the trace per traced run, seconds
    breakdowns = []  # where a call stack's time went, per traced run (the summary's words)
    try:
        for pair in range(args.pairs):
            if pair > 0 and time.perf_counter() - started > args.budget_s:
                print(f"{PREFIX} budget of {args.budget_s:.0f} s reached after {pair} pairs")
                break
            # Alternate which side goes first, so neither always runs on a warmer machine.
            for with_trace in ((True, False) if pair % 2 == 0 else (False, True)):
                if with_trace and os.path.exists(trace_path):
                    os.remove(trace_path)
                seconds, wall, cost, breakdown = run_once(args,
                                                          trace_path if with_trace else None)
                (traced if with_trace else untraced).append(seconds)
                if cost is not None:
                    costs.append(cost)
                if breakdown is not None:
                    breakdowns.append(breakdown)
                (traced_wall if with_trace else untraced_wall).append(wall)
                print(f"{PREFIX} pair {pair + 1} {'traced  ' if with_trace else 'untraced'} "
                      f"{seconds:.3f} s (process {wall:.2f} s)", flush=True)
        size = os.path.getsize(trace_path)
        records = trace_records(trace_path)
        events = trace_events(args.cudefrag, trace_path)
        if args.keep:
            os.makedirs(args.keep, exist_ok=True)
            shutil.copy(trace_path, os.path.join(args.keep, "pytorch_trace_overhead.trace"))
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
        print(f"{PREFIX} FAIL: {e}")
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    t, u = statistics.median(traced), statistics.median(untraced)
    what = {"steps": "loop", "train_step": "process"}.get(args.workload, "steps'")
    print(f"{PREFIX} workload={args.workload} steps={args.steps} mode={args.mode} "
          f"alloc_conf={args.alloc_conf or '(default)'} pairs={len(traced)}")
    print(f"{PREFIX} median {what} time: untraced {u:.3f} s, traced (stacks {args.stacks}) {t:.3f} s")
    print(f"{PREFIX} median process time: untraced {statistics.median(untraced_wall):.2f} s, "
          f"traced {statistics.median(traced_wall):.2f} s")
    ratio = t / u if u > 0 else float("inf")
    print(f"{PREFIX} ratio traced/untraced {ratio:.4f} (goal <= 1.03: "
          f"{'met' if ratio <= 1.03 else 'NOT met'})")
    # The two runs of a pair ran back to back: their ratio cancels drift that the medians of
    # each side keep. Its spread says how far one figure can be trusted.
    pairs = sorted(a / b for a, b in zip(traced, untraced) if b > 0)
    if pairs:
        print(f"{PREFIX} per-pair ratios: median {statistics.median(pairs):.4f}, "
              f"range {pairs[0]:.4f}-{pairs[-1]:.4f} over {len(pairs)} pairs")
    if costs and u > 0:
        # Noise-free beside the ratios above: the time the allocating threads spent recording,
        # over the untraced run's time (the writer thread and cache effects are not in it).
        c = statistics.median(costs)
        print(f"{PREFIX} shim's timing of the trace: median {c:.3f} s per traced run, "
              f"{c / u * 100:.1f} % of the untraced median (ratio {1 + c / u:.4f} from it)")
    for i, breakdown in enumerate(breakdowns):
        print(f"{PREFIX} call stacks of traced run {i + 1}: {breakdown}")
    per_event = f"{size / events:.2f}" if events else "?"
    print(f"{PREFIX} trace {size} bytes, {events if events is not None else '?'} events, "
          f"{records} records: {per_event} bytes per event, {size / max(records, 1):.2f} per record")
    return 0


if __name__ == "__main__":
    sys.exit(main())
