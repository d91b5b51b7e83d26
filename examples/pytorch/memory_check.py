#!/usr/bin/env python3
"""What PyTorch is told about memory under the arena, with backend:cudaMallocAsync.

Run under `cudefrag run --mode arena` with PYTORCH_CUDA_ALLOC_CONF=backend:cudaMallocAsync
(scripts/gpu_check.sh does). PyTorch's cudaMallocAsync backend reads its statistics from the
device's default pool (cudaMemPoolGetAttribute), empties its cache with cudaMemPoolTrimTo and
asks cudaMemGetInfo how much is free; the arena answers all three for the pool it replaces
(docs/semantics.md). This checks that the answers agree with what the program did:

- memory_stats(): allocated bytes grow by at least what the tensors need and at most that rounded
  up to the 2 MiB granularity per tensor; reserved bytes are at least the allocated ones;
- freed memory stays reserved (cached); mem_get_info() does not count it as free again, so that
  free + reserved - allocated (what ComfyUI computes) grows by exactly what was freed;
- empty_cache() gives the cached memory back: reserved bytes fall;
- reset_peak_memory_stats() restarts the peaks from the current values;
- with --expect-total BYTES (the arena's limit), mem_get_info() reports that total and never
  more free than the limit minus what the arena holds.

Prints "memory_check: RESULT PASS" when every check held (exit 0), FAIL otherwise (exit 1).
"""

import argparse
import sys

import torch

PREFIX = "memory_check:"
MIB = 1 << 20
GRANULE = 2 * MIB


def say(text):
    print(f"{PREFIX} {text}", flush=True)


class Checks:
    def __init__(self):
        self.failed = 0

    def expect(self, ok, what):
        say(f"{'ok  ' if ok else 'FAIL'} {what}")
        if not ok:
            self.failed += 1


def stats():
    s = torch.cuda.memory_stats()
    return {
        "allocated": s.get("allocated_bytes.all.current", -1),
        "allocated_peak": s.get("allocated_bytes.all.peak", -1),
        "reserved": s.get("reserved_bytes.all.current", -1),
        "reserved_peak": s.get("reserved_bytes.all.peak", -1),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--expect-total", type=int, default=0,
                        help="the arena's limit in bytes: the total mem_get_info must report")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        say("no CUDA device")
        return 2
    c = Checks()
    backend = torch.cuda.get_allocator_backend()
    c.expect(backend == "cudaMallocAsync", f"allocator backend is cudaMallocAsync ({backend})")
    torch.cuda.init()
    torch.zeros(1, device="cuda")  # the arena exists from the first allocation on
    torch.cuda.synchronize()

    base = stats()
    sizes = [64 * MIB, 96 * MIB, 3 * MIB + 512, 200 * MIB]
    tensors = [torch.empty(n, dtype=torch.uint8, device="cuda").fill_(7) for n in sizes]
    torch.cuda.synchronize()
    held = stats()
    grown = held["allocated"] - base["allocated"]
    need = sum(sizes)
    granted = sum((n + GRANULE - 1) // GRANULE * GRANULE for n in sizes)
    say(f"allocated grew by {grown} bytes for {need} requested ({granted} at 2 MiB granularity)")
    c.expect(need <= grown <= granted, "allocated bytes follow the tensors")
    c.expect(held["reserved"] >= held["allocated"], "reserved >= allocated")
    c.expect(held["allocated_peak"] >= held["allocated"], "allocated peak >= allocated")

    free_held, total = torch.cuda.mem_get_info()
    say(f"mem_get_info with the tensors: free {free_held} total {total}")
    if args.expect_total:
        c.expect(total == args.expect_total, f"total is the arena's limit ({args.expect_total})")
        c.expect(free_held <= total - held["reserved"], "free <= limit - reserved")

    del tensors
    torch.cuda.synchronize()
    freed = stats()
    free_after, _ = torch.cuda.mem_get_info()
    say(f"after freeing: allocated {freed['allocated']} reserved {freed['reserved']} "
        f"free {free_after}")
    c.expect(freed["allocated"] == base["allocated"], "allocated is back where it started")
    c.expect(freed["reserved"] >= freed["allocated"] + need,
             "freed memory stays reserved (the arena caches it)")
    # The cache is told once, as the driver's own pool would tell it: reserved - allocated in
    # memory_stats(), not again as free in mem_get_info(). What a program such as ComfyUI
    # computes as available (free + reserved - active) grows by what was freed.
    c.expect(abs(free_after - free_held) <= 2 * GRANULE,
             "cached memory is not counted again as free in mem_get_info")
    available_held = free_held + held["reserved"] - held["allocated"]
    available_after = free_after + freed["reserved"] - freed["allocated"]
    c.expect(available_after >= available_held + need - 2 * GRANULE,
             "free + reserved - allocated grows by what was freed")

    torch.cuda.empty_cache()
    trimmed = stats()
    say(f"after empty_cache: reserved {trimmed['reserved']}")
    c.expect(trimmed["reserved"] <= freed["reserved"] - need + GRANULE,
             "empty_cache gives the cached memory back")

    torch.cuda.reset_peak_memory_stats()
    reset = stats()
    c.expect(reset["allocated_peak"] == reset["allocated"], "allocated peak restarts from now")
    c.expect(reset["reserved_peak"] == reset["reserved"], "reserved peak restarts from now")

    say(f"RESULT {'PASS' if c.failed == 0 else 'FAIL'}")
    return 0 if c.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
