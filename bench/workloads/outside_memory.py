#!/usr/bin/env python3
"""Where a PyTorch process's device memory outside its allocator comes from, step by step.

    python3 outside_memory.py [--json-out FILE]

A smaller card has to hold, besides what the allocator holds, the CUDA context, library handles
and workspaces, and anything else in the process. On an H200 that was 646 MiB with PyTorch's
native allocator and `expandable_segments`, 716 MiB with `backend:cudaMallocAsync` and 682 MiB
with it under `cudefrag run` (docs/RESULTS.md): on a card at the edge, those differences decide.
This script takes the steps a PyTorch program takes (CUDA start, a first tensor, a matmul with
cuBLAS, a convolution with cuDNN, scaled-dot-product attention, a synchronize, a side stream
from PyTorch's stream pool) and after each prints the process's device memory by nvidia-smi,
what the allocators hold from the driver (under `cudefrag run` the arena's physical memory,
whatever PyTorch's backend), and their difference. Run it under each set-up
(PYTORCH_CUDA_ALLOC_CONF, `cudefrag run`) and compare the "outside" column step by step.

Last line: one JSON object {"alloc_conf", "allocator_backend", "steps": [{"step", "process_mib",
"reserved_mib", "outside_mib"}, ...]}. Exit status 0 when measured, 77 without CUDA or
nvidia-smi.
"""
import argparse
import json
import os
import sys


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json-out", help="also write the last line's JSON to this file")
    args = parser.parse_args()
    import torch  # after argparse, so that --help works without torch

    # Beside this script; it imports torch too.
    from workloads import allocator_held, process_device_memory

    def process_mib():
        used = process_device_memory()
        return None if used is None else used >> 20

    if not torch.cuda.is_available():
        print("outside_memory: no CUDA device", file=sys.stderr)
        return 77
    device = torch.device("cuda", 0)
    keep = []

    def first_tensor():
        keep.append(torch.ones(1024, device=device))

    def matmul():
        a = torch.randn(1024, 1024, device=device, dtype=torch.float16)
        keep.append(a @ a)

    def convolution():
        x = torch.randn(1, 64, 128, 128, device=device, dtype=torch.float16)
        w = torch.randn(64, 64, 3, 3, device=device, dtype=torch.float16)
        keep.append(torch.nn.functional.conv2d(x, w, padding=1))

    def attention():
        q = torch.randn(1, 8, 1024, 64, device=device, dtype=torch.float16)
        keep.append(torch.nn.functional.scaled_dot_product_attention(q, q, q))

    def side_stream():
        # torch.cuda.Stream() takes a stream from PyTorch's stream pool, which creates the
        # pool's streams on first use. backend:cudaMallocAsync creates that pool when it
        # starts (lazy_init_device takes a stream from it), the native allocator does not: if
        # the pool costs device memory, this step shows it under native and expandable, and
        # the first-tensor step shows it under the async set-ups.
        keep.append(torch.cuda.Stream(device=device))

    steps = [("cuda init", lambda: torch.cuda.init()), ("first tensor", first_tensor),
             ("matmul (cuBLAS)", matmul), ("conv2d (cuDNN)", convolution),
             ("attention", attention), ("synchronize", torch.cuda.synchronize),
             ("side stream", side_stream)]
    rows = []
    for name, step in steps:
        step()
        torch.cuda.synchronize()
        used = process_mib()
        if used is None:
            print("outside_memory: nvidia-smi does not list this process", file=sys.stderr)
            return 77
        reserved = allocator_held(device) >> 20
        rows.append({"step": name, "process_mib": used, "reserved_mib": reserved,
                     "outside_mib": used - reserved})
        print(f"outside_memory: {name:18s} process {used:6d} MiB  reserved {reserved:6d} MiB  "
              f"outside {used - reserved:6d} MiB", flush=True)
    result = {"alloc_conf": os.environ.get("PYTORCH_CUDA_ALLOC_CONF", ""),
              "allocator_backend": torch.cuda.get_allocator_backend(), "steps": rows}
    line = json.dumps(result, sort_keys=True)
    print(line, flush=True)
    if args.json_out:
        with open(args.json_out, "w") as f:
            f.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
