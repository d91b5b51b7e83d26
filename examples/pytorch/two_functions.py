#!/usr/bin/env python3
"""Device memory allocated from two distinct Python functions, for the trace's Python frames.

`make_weights` and `make_activations` each allocate tensors of their own sizes, and some of
each stay alive to the end, so a trace of this run should attribute each allocation to the
function that made it, and a report of what was live at the peak should name both. Sizes are
chosen so that PyTorch's native allocator sends each tensor to the device as its own segment
(above 1 MiB, rounded to 2 MiB), and the two functions never share a size.

It checks itself (every tensor holds what was written into it) and prints what each function
allocated, in bytes requested:
    two_functions: make_weights tensors=<n> bytes=<n>
    two_functions: make_activations tensors=<n> bytes=<n>
    two_functions: RESULT PASS|FAIL
"""

import sys

import torch

PREFIX = "two_functions:"
MiB = 1 << 20


def make_weights(index, device):
    """Large, long-lived: 24 MiB + index MiB of float32."""
    n = (24 + index) * MiB // 4
    return torch.full((n,), float(index + 1), dtype=torch.float32, device=device)


def make_activations(index, device):
    """Smaller and short-lived: 6 MiB + index * 2 MiB of float16."""
    n = (6 + 2 * index) * MiB // 2
    return torch.full((n,), float(index + 100), dtype=torch.float16, device=device)


def holds(tensor, value):
    """Every element equals value. min and max allocate only scalars, so the checks add no
    large allocation of their own to the trace."""
    return tensor.min().item() == value and tensor.max().item() == value


def main():
    if not torch.cuda.is_available():
        print(f"{PREFIX} no CUDA device", flush=True)
        return 2
    device = torch.device("cuda", 0)
    tally = {"make_weights": [0, 0], "make_activations": [0, 0]}
    weights, kept_activations = [], []
    ok = True
    for i in range(6):
        w = make_weights(i, device)
        weights.append((i, w))
        tally["make_weights"][0] += 1
        tally["make_weights"][1] += w.numel() * w.element_size()
        for j in range(3):
            a = make_activations(j, device)
            tally["make_activations"][0] += 1
            tally["make_activations"][1] += a.numel() * a.element_size()
            if not holds(a, j + 100):
                print(f"{PREFIX} error: activation {i}.{j} does not hold its value")
                ok = False
            if j == 2:
                kept_activations.append((j, a))
    torch.cuda.synchronize()
    for i, w in weights:
        if not holds(w, i + 1):
            print(f"{PREFIX} error: weight {i} does not hold its value")
            ok = False
    for j, a in kept_activations:
        if not holds(a, j + 100):
            print(f"{PREFIX} error: a kept activation does not hold its value")
            ok = False
    for name, (count, nbytes) in tally.items():
        print(f"{PREFIX} {name} tensors={count} bytes={nbytes}")
    print(f"{PREFIX} live_at_end_bytes={torch.cuda.memory_allocated(device)} "
          f"peak_allocated_bytes={torch.cuda.max_memory_allocated(device)}")
    print(f"{PREFIX} RESULT {'PASS' if ok else 'FAIL'}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
