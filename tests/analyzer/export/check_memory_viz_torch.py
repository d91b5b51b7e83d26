#!/usr/bin/env python3
"""Renders a `cudefrag export --memory-viz` pickle with PyTorch's own memory_viz functions.

    python3 check_memory_viz_torch.py SNAPSHOT.pickle [OUT_DIR]

Needs torch (the GPU machine has it; no GPU is used). Runs torch.cuda._memory_viz's segsum
(the `stats` command, with its internal assertions), trace, segments and memory (flamegraph
input; flamegraph.pl itself is not fetched), compare (the snapshot with itself), trace_plot,
trace_plot with segments and segment_plot (the HTML pages of the viewer). With OUT_DIR the
pages are written there to be opened in a browser: the viewer runs in the page.
Exit 0 when every function ran, 1 when one raised, 77 (skipped) without torch.
"""

import os
import pickle
import sys
import traceback


def main(argv):
    if len(argv) not in (2, 3):
        print("usage: check_memory_viz_torch.py SNAPSHOT.pickle [OUT_DIR]", file=sys.stderr)
        return 2
    try:
        from torch.cuda import _memory_viz as mv
    except ImportError as e:
        print(f"skipped: torch is not installed here ({e})")
        return 77
    with open(argv[1], "rb") as f:
        snapshot = pickle.load(f)
    lines = lambda text: text  # what flamegraph.pl would be given  # noqa: E731
    steps = [
        ("segsum", lambda: mv.segsum(snapshot)),
        ("trace", lambda: mv.trace(snapshot)),
        ("segments", lambda: mv.segments(snapshot, format_flamegraph=lines)),
        ("memory", lambda: mv.memory(snapshot, format_flamegraph=lines)),
        ("compare", lambda: mv.compare(snapshot["segments"], snapshot["segments"],
                                       format_flamegraph=lines)),
        ("trace_plot", lambda: mv.trace_plot(snapshot)),
        ("trace_plot_segments", lambda: mv.trace_plot(snapshot, plot_segments=True)),
        ("segment_plot", lambda: mv.segment_plot(snapshot)),
    ]
    failed = 0
    for name, step in steps:
        try:
            result = step()
        except Exception:  # noqa: BLE001 - report every failure, then fail
            print(f"FAIL {name}")
            traceback.print_exc()
            failed += 1
            continue
        print(f"ok   {name} ({len(result)} characters)")
        if len(argv) == 3:
            suffix = ".html" if "plot" in name else ".txt"
            with open(os.path.join(argv[2], name + suffix), "w", encoding="utf-8") as out:
                out.write(result)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
