"""Cost of one traced allocation when the caller is Python, per stack mode.

    python3 bench/trace/python_bench.py BUILD/bench/trace/libcudefrag_trace_bench_probe.so

The probe records from C while Python frames sit above it, the way a tensor allocation made with
the GIL held would: DEPTH nested Python functions (Python calls Python without a C frame since
3.11), then the same through LAYERS callable objects, each of which enters the interpreter again
from C (slot_tp_call) as every nn.Module call does: a PyTorch-like native depth. Prints ns per
record and bytes per event.
"""
import ctypes
import os
import sys
import tempfile

DEPTH = 20
LAYERS = 6
COUNT = 200000


def nest(depth, fn):
    if depth == 0:
        return fn()
    return nest(depth - 1, fn)


class Layer:
    """Like torch.nn.Module: calling it goes through C (slot_tp_call) back into Python."""

    def __init__(self, inner):
        self.inner = inner

    def __call__(self, fn):
        if self.inner is None:
            return nest(DEPTH // LAYERS, fn)
        return self.inner(fn)


def layered(fn):
    model = None
    for _ in range(LAYERS):
        model = Layer(model)
    return model(fn)


def main():
    probe = ctypes.PyDLL(sys.argv[1])
    probe.bench_record.restype = ctypes.c_double
    probe.bench_record.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_long,
                                   ctypes.POINTER(ctypes.c_double)]
    path = os.path.join(tempfile.gettempdir(), "cudefrag-python-bench-%d.trace" % os.getpid())
    for title, run in (("%d nested Python functions" % DEPTH, lambda fn: nest(DEPTH, fn)),
                       ("%d callable objects" % LAYERS, layered)):
        print("python %s, %s above the call" % (sys.version.split()[0], title))
        print("%-8s %12s %16s" % ("stacks", "ns/record", "bytes/event"))
        for mode in ("none", "python", "native", "both"):
            best = None
            for _ in range(3):
                size = ctypes.c_double()
                ns = run(lambda: probe.bench_record(path.encode(), mode.encode(), COUNT,
                                                    ctypes.byref(size)))
                best = min(best, ns) if best is not None else ns
            print("%-8s %12.1f %16.2f" % (mode, best, size.value))


if __name__ == "__main__":
    main()
