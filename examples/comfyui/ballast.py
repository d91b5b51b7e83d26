#!/usr/bin/env python3
"""Holds all of a GPU's free memory but N GiB, so that the next program sees a smaller card.

    ballast.py --keep GIB [--device N]

Allocates with the driver API (libcuda.so.1 through ctypes: no torch, no toolkit needed, and
quick to start), in 1 GiB blocks and then smaller ones down to 2 MiB, until the driver reports
at most GIB free (cuMemGetInfo). Then prints one line

    ballast: ready keep=BYTES free=BYTES held=BYTES total=BYTES

and waits until it is ended (SIGTERM, SIGINT, or its standard input closing when --stdin is
given); the memory goes back to the driver when the process exits. Every contender run after it
sees the same card: its free memory, less what its own CUDA context takes (a few hundred MiB).

If the card already has less than GIB free, it holds nothing and prints `ballast: short ...`
instead of `ready` (exit status 3 when it is ended). Exit status 2 when CUDA cannot be used.
Never run it under cudefrag: it is the card, not a contender.
"""

from __future__ import annotations

import argparse
import ctypes
import signal
import sys
import threading

MiB = 1 << 20
GiB = 1 << 30
GRAIN = 2 * MiB


def gib_to_bytes(text: str) -> int:
    value = float(text)
    if not 0 <= value <= 1 << 20:
        raise argparse.ArgumentTypeError(f"{text}: a size in GiB, 0 or more")
    return int(value * GiB)


class Driver:
    """The few driver calls the ballast needs."""

    def __init__(self):
        self.lib = ctypes.CDLL("libcuda.so.1")
        self.lib.cuMemGetInfo_v2.argtypes = [ctypes.POINTER(ctypes.c_size_t)] * 2
        self.lib.cuMemAlloc_v2.argtypes = [ctypes.POINTER(ctypes.c_uint64), ctypes.c_size_t]

    def check(self, result: int, what: str):
        if result != 0:
            raise RuntimeError(f"{what} failed with CUresult {result}")

    def start(self, ordinal: int):
        self.check(self.lib.cuInit(0), "cuInit")
        device = ctypes.c_int()
        self.check(self.lib.cuDeviceGet(ctypes.byref(device), ordinal), "cuDeviceGet")
        context = ctypes.c_void_p()
        self.check(self.lib.cuDevicePrimaryCtxRetain(ctypes.byref(context), device),
                   "cuDevicePrimaryCtxRetain")
        self.check(self.lib.cuCtxSetCurrent(context), "cuCtxSetCurrent")

    def mem_info(self) -> tuple[int, int]:
        free, total = ctypes.c_size_t(), ctypes.c_size_t()
        self.check(self.lib.cuMemGetInfo_v2(ctypes.byref(free), ctypes.byref(total)),
                   "cuMemGetInfo")
        return free.value, total.value

    def alloc(self, size: int) -> bool:
        ptr = ctypes.c_uint64()
        return self.lib.cuMemAlloc_v2(ctypes.byref(ptr), size) == 0


def fill(driver: Driver, keep: int) -> int:
    """Allocates until at most `keep` bytes are free; returns the bytes held."""
    held = 0
    block = GiB
    # Bounded: a driver whose free figure did not move would otherwise keep it here.
    for _ in range(1 << 16):
        if block < GRAIN:
            break
        free, _ = driver.mem_info()
        room = free - keep
        if room < GRAIN:
            break
        size = min(block, room) // GRAIN * GRAIN
        if driver.alloc(size):
            held += size
        else:
            block //= 2
    return held


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=gib_to_bytes, required=True, metavar="GIB",
                        help="free memory to leave, in GiB (e.g. 2.25)")
    parser.add_argument("--device", type=int, default=0, help="CUDA device ordinal (default 0)")
    parser.add_argument("--stdin", action="store_true", help="also end when stdin closes")
    options = parser.parse_args(argv)

    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    try:
        driver = Driver()
        driver.start(options.device)
        free_before, total = driver.mem_info()
        held = fill(driver, options.keep) if free_before > options.keep else 0
        free, _ = driver.mem_info()
    except (OSError, RuntimeError, AttributeError) as e:
        print(f"ballast: cannot use CUDA: {e}", flush=True)
        return 2
    word = "ready" if free_before >= options.keep else "short"
    print(f"ballast: {word} keep={options.keep} free={free} held={held} total={total}",
          flush=True)
    if options.stdin:
        threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    while not done.wait(1.0):
        pass
    return 0 if word == "ready" else 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
