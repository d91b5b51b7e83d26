#!/usr/bin/env python3
"""Runs a workload (workloads.py) under each allocator a user could pick, side by side.

    python3 compare.py WORKLOAD --cudefrag PATH/TO/cudefrag [--scale S] [--repeat N] [--passes P]
                       [--card GIB | --bisect LO HI] [--step 0.25] [--cpus LIST] [--out FILE]
    python3 compare.py WORKLOAD --table FILE    (the timing table again, from an --out FILE)

Contenders (same script, same seed, one process each, run one after another; a cudefrag
contender takes launcher options after slashes, e.g. cudefrag+async/small-max=1MiB; a value
cannot hold a slash, so give a trace a name relative to the working directory; any contender
takes conf=KEY:VALUE, added to its PYTORCH_CUDA_ALLOC_CONF, once per key, e.g.
cudefrag+native/conf=max_split_size_mb:21):
    native            PyTorch's caching allocator, no PYTORCH_CUDA_ALLOC_CONF
    expandable        expandable_segments:True
    async             backend:cudaMallocAsync
    cudefrag+async    `cudefrag run` with backend:cudaMallocAsync
    cudefrag+native   `cudefrag run` with PyTorch's caching allocator
    cudefrag+uncached `cudefrag run` with PyTorch's native backend told not to cache
                      (PYTORCH_NO_CUDA_MEMORY_CACHING=1): every tensor a cudaMalloc/cudaFree
                      the arena serves, without the async backend's start-up (its stream pool)

Without --card/--bisect: every contender on the whole card, --repeat times in rounds (each round
runs every contender once, the order rotated by one per round, so that drift of the machine falls
on all alike); prints the median wall time of the steps (with --passes N > 1, of the passes after the first: steady state, without
warm-up), the ratio to the fastest, the paired
ratio (per round, the contender's time over the fastest contender's in the same round: median
and range over the rounds, which cancels drift between rounds that the medians keep), the
in-run spread (median over runs of slowest steady pass / fastest - 1), the 10th percentile of
all the contender's steady passes and its ratio to the smallest (fast_time: the machine's fast
level), peak
allocated/reserved as PyTorch reports them, and for cudefrag the arena's peak physical (the
default pool's ReservedMemHigh that the arena answers).
--card G: each contender once on an emulated card of G GiB (ballast.py holds the rest): did every
step finish. --bisect LO HI: the smallest card, to --step GiB, on which each contender finishes
every step (a contender that fails at HI is reported as "> HI").
--cpus LIST (as taskset takes it: 2-5,8): every contender's process, and what it starts, runs
on these CPUs only. Unpinned, the steady diffusion passes of one contender took 0.19-0.26 s
from one process to the next on the H200's host (the same code, the same card) and shifted by
10-25 % within a process; the workloads are launch-bound, so where the scheduler puts the
Python thread is a suspect, and pinning every contender to the same CPUs takes it out.
The table is printed last; --out also writes every run as a JSON line as soon as it ends.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CONTENDERS = ["native", "expandable", "async", "cudefrag+async", "cudefrag+native"]
CONF = {"native": None, "expandable": "expandable_segments:True", "async": "backend:cudaMallocAsync",
        "cudefrag+async": "backend:cudaMallocAsync", "cudefrag+native": None,
        "cudefrag+uncached": None}
# Other environment a contender sets (named only: not among the default CONTENDERS).
ENV = {"cudefrag+uncached": {"PYTORCH_NO_CUDA_MEMORY_CACHING": "1"}}
GIB = 1 << 30


def split_contender(contender):
    """'cudefrag+async/small-max=1MiB' -> ('cudefrag+async', ['--small-max', '1MiB']).
    conf=KEY:VALUE options are not launcher options: alloc_conf() reads them."""
    name, *options = contender.split("/")
    if name not in CONF:
        raise SystemExit(f"compare.py: unknown contender {name!r} (known: {', '.join(CONF)})")
    extra = []
    for o in options:
        key, _, value = o.partition("=")
        if key == "conf":
            continue
        extra += [f"--{key}"] + ([value] if value else [])
    if extra and not name.startswith("cudefrag"):
        raise SystemExit(f"compare.py: launcher options only go with cudefrag contenders: {contender}")
    return name, extra


def alloc_conf(contender):
    """The PYTORCH_CUDA_ALLOC_CONF a contender runs with: its name's (CONF), then each
    conf=KEY:VALUE option, comma-joined; None for none. SystemExit on an option that is not
    KEY:VALUE or names a key twice (PyTorch would take the last one silently)."""
    name, *options = contender.split("/")
    items = [CONF[name]] if CONF.get(name) else []
    keys = {item.partition(":")[0] for item in items}
    for o in options:
        key, _, value = o.partition("=")
        if key != "conf":
            continue
        conf_key, colon, conf_value = value.partition(":")
        if not (conf_key and colon and conf_value) or "," in value:
            raise SystemExit(f"compare.py: {contender}: conf={value!r} is not one KEY:VALUE")
        if conf_key in keys:
            raise SystemExit(f"compare.py: {contender}: {conf_key} is set twice")
        keys.add(conf_key)
        items.append(value)
    return ",".join(items) or None


def parse_cpus(text):
    """'2-5,8' -> {2, 3, 4, 5, 8}, as taskset and the kernel's cpulist take it. SystemExit with
    the reason on anything else (an empty item, a range that runs backwards, a negative CPU)."""
    cpus = set()
    for item in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", item)
        if not m:
            raise SystemExit(f"compare.py: --cpus {text!r}: {item!r} is not a CPU or a range A-B")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise SystemExit(f"compare.py: --cpus {text!r}: the range {item.strip()} runs backwards")
        cpus.update(range(lo, hi + 1))
    return cpus


def run_one(args, contender, card=None):
    name, extra = split_contender(contender)
    env = dict(os.environ)
    env.pop("PYTORCH_CUDA_ALLOC_CONF", None)
    env.pop("PYTORCH_NO_CUDA_MEMORY_CACHING", None)
    conf = alloc_conf(contender)
    if conf:
        env["PYTORCH_CUDA_ALLOC_CONF"] = conf
    env.update(ENV.get(name, {}))
    cmd = [sys.executable, os.path.join(HERE, "workloads.py"), args.workload,
           "--scale", str(args.scale), "--passes", str(args.passes)]
    if name.startswith("cudefrag"):
        # The contender's PyTorch allocator as named, not the launcher's default choice.
        cmd = [args.cudefrag, "run", "--quiet", "--keep-torch-alloc-conf"] + extra + ["--"] + cmd
    ballast = None
    cpus = getattr(args, "cpu_set", None)
    try:
        if card is not None:
            ballast = subprocess.Popen([sys.executable, os.path.join(HERE, "ballast.py"), str(card)],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            ready = ballast.stdout.readline()
            if not ready.startswith("ballast: ready"):
                raise RuntimeError(f"ballast did not start: {ready!r}")
        # The affinity is inherited: the launcher, the program it starts and their threads.
        pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout,
                              preexec_fn=pin)
    finally:
        if ballast is not None:
            ballast.stdin.close()
            ballast.wait()
    result = None
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            result = json.loads(line)
    if result is None:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-5:]
        result = {"status": "crash", "exit": proc.returncode, "tail": tail}
    result.update({"contender": contender, "card_gib": card, "exit": proc.returncode})
    if cpus:
        result["cpus"] = sorted(cpus)
    return result


def run_time(run):
    """The time a run is compared by: with several passes, the median of the passes after the
    first (steady state: the first pass of the diffusion workload took 1.1-1.6 s on the H200 and
    the later ones 0.2 s, cuDNN's and the caches' warm-up, so whole runs compared mostly warm-up);
    with one, the run's seconds. None for a run without a time."""
    passes = run.get("pass_seconds") or []
    if len(passes) > 1:
        return statistics.median(passes[1:])
    return run.get("seconds") or None


def quantile(values, q):
    """The q-quantile of `values` (nearest rank below, no interpolation); None when empty."""
    v = sorted(values)
    return v[int(q * (len(v) - 1))] if v else None


def fast_time(runs, contender, q=0.1):
    """The 10th percentile of all of a contender's steady passes (after each run's first), over
    all its runs. On the H200's host a run's steady passes sat at one of two levels, ~0.19 s or
    ~0.23-0.25 s for the diffusion workload, switching within a process whatever the allocator
    and with the CPUs pinned: medians then measure how often the machine was slow. The low
    quantile measures each contender at the machine's fast level, which every contender of the
    diffusion runs of 2026-11-29 reached in some run; a contender whose runs all fell on the slow
    level (seen in the tensors workload) is overstated by it. None without two passes per run."""
    passes = [t for r in runs if r["contender"] == contender
              for t in (r.get("pass_seconds") or [])[1:]]
    return quantile(passes, q)


def pair_costs(runs, contender, q=0.1):
    """For the tensors workload: {step name: ns per tensor pair} at the q-quantile of the step's
    steady times (passes after the first), over all the contender's runs."""
    out = {}
    for r in runs:
        if r["contender"] != contender or not r.get("pairs_per_step"):
            continue
        for name, times in (r.get("step_seconds") or {}).items():
            out.setdefault(name, []).extend(t * 1e9 / r["pairs_per_step"] for t in times[1:])
    return {name: quantile(v, q) for name, v in out.items() if v}


def arena_over_cuda(route_seconds):
    """--alternate-arena: the median over pairs of passes (an arena pass, then the next pass
    with the arena paused) of arena time / CUDA time, the first pair (each route's warm-up)
    left out; None without such a pair. Neighbouring passes share more of the machine's state
    than separate processes, whose levels differed by ~20 % on the H200's host; the host also
    switched levels within a process, now and then, which the median over pairs rides out.
    On an H200 (docs/RESULTS.md, 2026-11-29 04:11): 0.940 diffusion, 0.949 transformer."""
    pairs = list(zip(route_seconds["arena"], route_seconds["cuda"]))[1:]
    ratios = sorted(a / c for a, c in pairs if c > 0)
    if not ratios:
        return None
    mid = len(ratios) // 2
    return ratios[mid] if len(ratios) % 2 else (ratios[mid - 1] + ratios[mid]) / 2


def in_run_spread(run):
    """How far a run's steady passes (after the first) spread: slowest over fastest, minus one.
    None with fewer than two of them. Beside the spread between runs it tells a machine that
    drifts within a process from one that differs between processes."""
    passes = (run.get("pass_seconds") or [])[1:]
    if len(passes) < 2 or min(passes) <= 0:
        return None
    return max(passes) / min(passes) - 1


def paired_ratios(runs, reference):
    """Per contender, its time (run_time) over `reference`'s in each round where both have one
    (runs carry "round"): {contender: sorted ratios}. The reference's own are all 1."""
    by_round = {}
    for r in runs:
        if run_time(r) and "round" in r:
            by_round.setdefault(r["round"], {})[r["contender"]] = run_time(r)
    out = {}
    for times in by_round.values():
        if reference not in times:
            continue
        for c, t in times.items():
            out.setdefault(c, []).append(t / times[reference])
    return {c: sorted(v) for c, v in out.items()}


def rotated(contenders, round_index):
    """The contenders in the order of round `round_index` (0-based): rotated by one per round."""
    k = round_index % len(contenders) if contenders else 0
    return contenders[k:] + contenders[:k]


def outside(run):
    """The process's device memory beyond what its allocator held at the end (MiB), or '-'."""
    used, held = run.get("process_used_at_end"), run.get("reserved_at_end")
    return "-" if used is None or held is None else f"{(used - held) / (1 << 20):.0f}"


def fmt_gib(v):
    return "-" if v is None else f"{v / GIB:.2f}"


def print_timing(runs, contenders, header):
    """The timing table of `runs` (compare.py's own JSON lines), one row per contender."""
    times = {c: [run_time(r) for r in runs if r["contender"] == c and run_time(r)]
             for c in contenders}
    medians = {c: statistics.median(t) for c, t in times.items() if t}
    fastest = min(medians.values()) if medians else None
    reference = min(medians, key=medians.get) if medians else None
    paired = paired_ratios(runs, reference) if reference else {}
    several = any(len(r.get("pass_seconds") or []) > 1 for r in runs)
    timed = "passes after the first (median per run)" if several else "the steps"
    print(f"\n{header}; time: {timed}; paired: per round, over {reference or '-'} in the same round")
    fast = {c: fast_time(runs, c) for c in contenders}
    fastest_fast = min((t for t in fast.values() if t), default=None)
    print(f"  {'contender':16s} {'status':7s} {'steps':>5s} {'median s':>9s} {'ratio':>6s} "
          f"{'paired':>6s} {'range':>11s} {'in-run':>6s} {'p10 s':>7s} {'ratio':>6s} "
          f"{'alloc GiB':>9s} {'reserved':>9s} {'arena phys':>10s} {'outside MiB':>11s}")
    for c in contenders:
        last = [r for r in runs if r["contender"] == c][-1]
        m = medians.get(c)
        phys = last.get("pool_reserved_high") if c.startswith("cudefrag") else None
        pr = paired.get(c, [])
        spreads = [s for s in (in_run_spread(r) for r in runs if r["contender"] == c)
                   if s is not None]
        spread = f"{100 * statistics.median(spreads):.0f}%" if spreads else "-"
        print(f"  {c:16s} {last['status']:7s} {last.get('steps', 0):5d} "
              f"{(f'{m:.3f}' if m else '-'):>9s} "
              f"{(f'{m / fastest:.3f}' if m and fastest else '-'):>6s} "
              f"{(f'{statistics.median(pr):.3f}' if pr else '-'):>6s} "
              f"{(f'{pr[0]:.3f}-{pr[-1]:.3f}' if pr else '-'):>11s} {spread:>6s} "
              f"{(f'{fast[c]:.3f}' if fast[c] else '-'):>7s} "
              f"{(f'{fast[c] / fastest_fast:.3f}' if fast[c] and fastest_fast else '-'):>6s} "
              f"{fmt_gib(last.get('peak_allocated')):>9s} {fmt_gib(last.get('peak_reserved')):>9s} "
              f"{fmt_gib(phys):>10s} {outside(last):>11s}")
    costs = {c: pair_costs(runs, c) for c in contenders}
    if any(costs.values()):
        names = list(next(v for v in costs.values() if v))
        print("\n  ns per tensor created and dropped (10th percentile of the steady passes):")
        print(f"  {'contender':16s} " + " ".join(f"{n:>8s}" for n in names))
        for c in contenders:
            print(f"  {c:16s} " + " ".join(
                f"{costs[c][n]:8.0f}" if n in costs[c] else f"{'-':>8s}" for n in names))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("workload", choices=["diffusion", "transformer", "tensors"])
    p.add_argument("--cudefrag", help="the cudefrag launcher (needed unless --table)")
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--passes", type=int, default=1,
                   help="workloads.py --passes: the series this many times per run (timing)")
    p.add_argument("--card", type=float)
    p.add_argument("--bisect", type=float, nargs=2, metavar=("LO", "HI"))
    p.add_argument("--step", type=float, default=0.25)
    p.add_argument("--contenders", default=",".join(CONTENDERS))
    p.add_argument("--timeout", type=float, default=300)
    p.add_argument("--cpus", help="run every contender on these CPUs only (taskset's list: 2-5,8)")
    p.add_argument("--out")
    p.add_argument("--table", metavar="FILE",
                   help="run nothing: print the timing table of the runs an --out FILE recorded")
    args = p.parse_args()
    if args.table:
        with open(args.table) as f:
            runs = [json.loads(line) for line in f if line.strip()]
        contenders = list(dict.fromkeys(r["contender"] for r in runs))
        print_timing(runs, contenders, f"{args.workload}: the runs in {args.table}")
        return 0
    if not args.cudefrag:
        p.error("--cudefrag is needed to run contenders")
    args.cpu_set = parse_cpus(args.cpus) if args.cpus else None
    if args.cpu_set and not args.cpu_set <= os.sched_getaffinity(0):
        p.error(f"--cpus {args.cpus}: this process may only run on "
                f"{sorted(os.sched_getaffinity(0))}")
    contenders = args.contenders.split(",")
    for c in contenders:  # a misspelt contender stops here, before any run
        split_contender(c)
        alloc_conf(c)
    runs = []
    # Every run is written as it ends, so that a bisection cut short by a time limit still leaves
    # what it measured.
    out = open(args.out, "w") if args.out else None

    def record(r):
        runs.append(r)
        line = json.dumps(r, sort_keys=True)
        print("compare: " + line, flush=True)
        if out:
            out.write(line + "\n")
            out.flush()
        return r

    rows = []
    if args.bisect:
        lo_card, hi_card = args.bisect
        for c in contenders:
            if record(run_one(args, c, hi_card))["status"] != "ok":
                rows.append((c, f"> {hi_card:g}"))
                continue
            lo, hi = lo_card - args.step, hi_card  # fails at lo (assumed), fits at hi
            while hi - lo > args.step + 1e-9:
                mid = round((lo + hi) / 2 / args.step) * args.step
                mid = min(max(mid, lo + args.step), hi - args.step)
                if record(run_one(args, c, mid))["status"] == "ok":
                    hi = mid
                else:
                    lo = mid
            rows.append((c, f"{hi:g}"))
        print(f"\nsmallest card (GiB, step {args.step:g}) for {args.workload} --scale {args.scale:g}")
        for c, card in rows:
            print(f"  {c:16s} {card}")
    else:
        for i in range(args.repeat):
            for c in rotated(contenders, i):
                record({**run_one(args, c, args.card), "round": i + 1})
        where = f"a {args.card:g} GiB card" if args.card else "the whole card"
        if args.cpu_set:
            where += f", CPUs {args.cpus}"
        print_timing(runs, contenders,
                     f"{args.workload} --scale {args.scale:g} on {where}, {args.repeat} run(s) each")
    if out:
        out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
