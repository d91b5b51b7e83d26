#!/usr/bin/env python3
"""Runs out of device memory on purpose, from two distinct Python functions, then goes on.

Meant to run on a small emulated card, e.g. `cudefrag run --limit 1GiB --trace t.cdtrace --
python3 oom_then_continue.py`: `keep_weights` allocates long-lived tensors and `scratch`
short-lived ones until a request fails. The program catches torch.cuda.OutOfMemoryError, frees
half of what it holds, checks that an allocation succeeds again and that every tensor it kept
still holds its values. The trace must then show the out-of-memory with the arena's state, and a
report must name both functions and their lines as what held the memory.

--die: do not catch the error; the program ends with it (exit code 1), so the trace must have
been written before the error returned.

Prints `oom_then_continue: RESULT PASS|FAIL` last; exit code 0 only on PASS (2 without a GPU).
"""

import sys

import torch

PREFIX = "oom_then_continue:"
MiB = 1 << 20


def keep_weights(index):
    """Long-lived: 48 MiB of float32, filled with the index."""
    return torch.full((48 * MiB // 4,), float(index), dtype=torch.float32, device="cuda")


def scratch(index):
    """Short-lived: 20 MiB of float16, used and dropped."""
    t = torch.full((20 * MiB // 2,), float(index % 7), dtype=torch.float16, device="cuda")
    return float(t[:16].sum().item())


def main():
    if not torch.cuda.is_available():
        print(f"{PREFIX} no GPU")
        return 2
    die = "--die" in sys.argv
    kept = []
    oom_at = None
    for i in range(100000):
        try:
            kept.append(keep_weights(i))
            scratch(i)
        except torch.cuda.OutOfMemoryError as error:
            if die:
                raise
            oom_at = i
            print(f"{PREFIX} out of memory after {len(kept)} tensors: {str(error).splitlines()[0]}")
            break
    if oom_at is None:
        print(f"{PREFIX} RESULT FAIL (never ran out of memory: run it under a limit)")
        return 1
    del kept[::2]
    torch.cuda.empty_cache()
    again = keep_weights(-1)
    ok = all(float(t[0].item()) == float(t[-1].item()) for t in kept)
    ok = ok and float(again[0].item()) == -1.0
    print(f"{PREFIX} allocated again after freeing half; kept tensors intact: {ok}")
    print(f"{PREFIX} RESULT {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
