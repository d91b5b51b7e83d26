#!/usr/bin/env python3
"""Emulates a smaller card: takes all of the GPU's free memory but CARD GiB, then waits.

    python3 ballast.py CARD_GIB   (prints "ballast: ready <bytes held>" and waits for stdin EOF)

"A card of CARD GiB" means CARD GiB free to the program when it starts, as on a real card of that
size less what the display and driver hold. The memory is taken with plain cudaMalloc through
ctypes (no framework cache), so the driver counts it as used by another process, as the programs
being compared see it.
"""
import ctypes
import sys

GIB = 1 << 30


def main():
    card = int(float(sys.argv[1]) * GIB)
    cudart = None
    for name in ("libcudart.so.13", "libcudart.so.12", "libcudart.so"):
        try:
            cudart = ctypes.CDLL(name)
            break
        except OSError:
            continue
    if cudart is None:
        try:
            import torch  # noqa: F401  (loads its own libcudart)
            cudart = ctypes.CDLL(None)
        except ImportError:
            print("ballast: no libcudart found", file=sys.stderr)
            return 77
    free, total = ctypes.c_size_t(), ctypes.c_size_t()
    if cudart.cudaMemGetInfo(ctypes.byref(free), ctypes.byref(total)) != 0:
        print("ballast: cudaMemGetInfo failed", file=sys.stderr)
        return 1
    # The context this process made already holds memory; take the rest but CARD in chunks, so
    # that no single allocation needs the whole span contiguously.
    held = 0
    chunks = []
    want = free.value - card
    chunk = 2 * GIB
    while held < want:
        size = min(chunk, want - held)
        size -= size % (2 << 20)
        if size == 0:
            break
        p = ctypes.c_void_p()
        if cudart.cudaMalloc(ctypes.byref(p), ctypes.c_size_t(size)) != 0:
            if chunk <= (64 << 20):
                break
            chunk //= 2
            continue
        chunks.append(p)
        held += size
    print(f"ballast: ready {held}", flush=True)
    sys.stdin.read()
    return 0


if __name__ == "__main__":
    sys.exit(main())
