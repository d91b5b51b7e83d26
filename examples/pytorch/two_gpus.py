#!/usr/bin/env python3
"""Two GPUs under cudefrag: peer copies and an NCCL all-reduce on memory the arena serves.

    cudefrag run -- python3 examples/pytorch/two_gpus.py [--sizes 4096,3000000,268435456]

Needs two visible CUDA devices (exit 77 otherwise). Under the shim every tensor below comes from
an arena, one per device and process:
  1. peer copies, one process: tensors made on cuda:0 are copied to cuda:1 and back, with peer
     access on (PyTorch calls cudaDeviceEnablePeerAccess, which the shim answers by granting the
     peer access to every arena range with cuMemSetAccess) and compared element by element;
  2. NCCL, one process per GPU (torch.multiprocessing): all_reduce, all_gather and broadcast of
     tensors of each size, with values that differ per rank, checked against the sums computed on
     the host.
Prints "RESULT PASS" or "RESULT FAIL ..." per check (what scripts/gpu_check.sh greps) and exits 0
only when every check passed. NVLink multicast stays off (NCCL_NVLS_ENABLE=0): a program that
uses it can take shared GPUs out of service.
"""
import argparse
import os
import sys
import tempfile

os.environ.setdefault("NCCL_NVLS_ENABLE", "0")
os.environ.setdefault("TORCH_SYMM_MEM_DISABLE_MULTICAST", "1")
os.environ.setdefault("NVSHMEM_DISABLE_NVLS", "1")

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402

SKIP = 77


def pattern(n, seed, device):
    # Distinct values per element and per seed, exact in float32 (< 2^24).
    i = torch.arange(n, device=device, dtype=torch.int64)
    return ((i * 7 + seed * 1009) % 1000003).to(torch.float32)


def peer_copies(sizes):
    can = torch.cuda.can_device_access_peer(0, 1) and torch.cuda.can_device_access_peer(1, 0)
    failures = []
    for k, n in enumerate(sizes):
        a = pattern(n, k + 1, "cuda:0")
        b = a.to("cuda:1")  # device-to-device across GPUs
        b.mul_(2)
        c = b.to("cuda:0")
        torch.cuda.synchronize(0)
        torch.cuda.synchronize(1)
        if not torch.equal(c, a * 2):
            failures.append(f"{n} elements")
        del a, b, c
    state = "peer access" if can else "no peer access (copies staged by the driver)"
    if failures:
        print(f"RESULT FAIL peer copies ({state}): wrong values for {', '.join(failures)}", flush=True)
        return False
    print(f"RESULT PASS peer copies ({state}): {len(sizes)} sizes, cuda:0 -> cuda:1 -> cuda:0",
          flush=True)
    return True


def nccl_rank(rank, world, init_file, sizes, results):
    torch.cuda.set_device(rank)
    dist.init_process_group("nccl", init_method=f"file://{init_file}", rank=rank, world_size=world,
                            device_id=torch.device("cuda", rank))
    bad = []
    for k, n in enumerate(sizes):
        x = pattern(n, rank + 10 * k, f"cuda:{rank}")
        dist.all_reduce(x)
        want = sum(pattern(n, r + 10 * k, "cpu") for r in range(world))
        if not torch.equal(x.cpu(), want):
            bad.append(f"all_reduce {n}")
        mine = pattern(n, 100 + rank + k, f"cuda:{rank}")
        gathered = [torch.empty_like(mine) for _ in range(world)]
        dist.all_gather(gathered, mine)
        for r in range(world):
            if not torch.equal(gathered[r].cpu(), pattern(n, 100 + r + k, "cpu")):
                bad.append(f"all_gather {n} from rank {r}")
        y = pattern(n, 500 + k, f"cuda:{rank}") if rank == 0 else torch.zeros(n, device=f"cuda:{rank}")
        dist.broadcast(y, src=0)
        if not torch.equal(y.cpu(), pattern(n, 500 + k, "cpu")):
            bad.append(f"broadcast {n}")
        del x, mine, gathered, y
    torch.cuda.synchronize()
    dist.destroy_process_group()
    results.put((rank, bad))


def nccl(sizes):
    world = 2
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    with tempfile.TemporaryDirectory() as d:
        init_file = os.path.join(d, "init")
        procs = [ctx.Process(target=nccl_rank, args=(r, world, init_file, sizes, results))
                 for r in range(world)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=240)
    got = {}
    while not results.empty():
        rank, bad = results.get()
        got[rank] = bad
    exits = [p.exitcode for p in procs]
    if len(got) != world or any(e != 0 for e in exits):
        print(f"RESULT FAIL nccl: ranks reported {sorted(got)}, exit codes {exits}", flush=True)
        return False
    bad = [f"rank {r}: {b}" for r, bs in sorted(got.items()) for b in bs]
    if bad:
        print("RESULT FAIL nccl: " + "; ".join(bad), flush=True)
        return False
    print(f"RESULT PASS nccl: all_reduce, all_gather, broadcast on 2 GPUs, {len(sizes)} sizes",
          flush=True)
    return True


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="4096,3000000,268435456",
                   help="elements (float32) per tensor, comma-separated")
    args = p.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if not torch.cuda.is_available() or torch.cuda.device_count() < 2:
        print("two_gpus: needs two CUDA devices", file=sys.stderr)
        return SKIP
    print(f"two_gpus: {torch.cuda.get_device_name(0)} x {torch.cuda.device_count()}, "
          f"PYTORCH_CUDA_ALLOC_CONF={os.environ.get('PYTORCH_CUDA_ALLOC_CONF', '')}", flush=True)
    ok = peer_copies(sizes)
    ok = nccl(sizes) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
