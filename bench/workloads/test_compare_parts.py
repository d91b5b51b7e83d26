#!/usr/bin/env python3
"""The parts of compare.py that run without torch or a GPU: the order of the timing rounds and the
paired ratios.

    python3 bench/workloads/test_compare_parts.py
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import compare  # noqa: E402


class RoundsTest(unittest.TestCase):
    def test_order_rotates_by_one_per_round(self):
        c = ["native", "async", "cudefrag+async"]
        self.assertEqual([compare.rotated(c, i) for i in range(4)],
                         [c, ["async", "cudefrag+async", "native"],
                          ["cudefrag+async", "native", "async"], c])
        self.assertEqual(compare.rotated([], 3), [])


class AllocConfTest(unittest.TestCase):
    def test_conf_options_add_to_the_contenders_own(self):
        self.assertIsNone(compare.alloc_conf("native"))
        self.assertEqual(compare.alloc_conf("cudefrag+async"), "backend:cudaMallocAsync")
        self.assertEqual(compare.alloc_conf("cudefrag+native/conf=max_split_size_mb:21/grow=150"),
                         "max_split_size_mb:21")
        self.assertEqual(compare.alloc_conf("expandable/conf=roundup_power2_divisions:4"),
                         "expandable_segments:True,roundup_power2_divisions:4")

    def test_conf_is_not_a_launcher_option(self):
        self.assertEqual(compare.split_contender("cudefrag+native/conf=max_split_size_mb:21/grow=150"),
                         ("cudefrag+native", ["--grow", "150"]))
        self.assertEqual(compare.split_contender("native/conf=max_split_size_mb:21"), ("native", []))

    def test_malformed_or_repeated_keys_are_refused(self):
        for bad in ["native/conf=max_split_size_mb", "native/conf=:21", "native/conf=a:1,b:2",
                    "async/conf=backend:native", "native/conf=a:1/conf=a:2"]:
            with self.assertRaises(SystemExit, msg=bad):
                compare.alloc_conf(bad)


class CpusTest(unittest.TestCase):
    def test_lists_and_ranges_as_taskset_takes_them(self):
        self.assertEqual(compare.parse_cpus("2-5,8"), {2, 3, 4, 5, 8})
        self.assertEqual(compare.parse_cpus("3"), {3})
        self.assertEqual(compare.parse_cpus(" 0 - 1 ,1"), {0, 1})

    def test_anything_else_is_refused_with_the_reason(self):
        for bad, why in [("", "is not a CPU"), ("2,,3", "is not a CPU"), ("a-b", "is not a CPU"),
                         ("-1", "is not a CPU"), ("5-2", "runs backwards"), ("1-2-3", "not a CPU")]:
            with self.assertRaises(SystemExit) as e:
                compare.parse_cpus(bad)
            self.assertIn(why, str(e.exception), bad)


class SpreadTest(unittest.TestCase):
    def test_steady_passes_slowest_over_fastest(self):
        self.assertAlmostEqual(compare.in_run_spread({"pass_seconds": [1.5, 0.2, 0.25, 0.21]}),
                               0.25)
        # The first pass is warm-up: not counted; one steady pass has no spread.
        self.assertIsNone(compare.in_run_spread({"pass_seconds": [9.0, 0.2]}))
        self.assertIsNone(compare.in_run_spread({"seconds": 3.0}))


class FastTimeTest(unittest.TestCase):
    def test_low_quantile_of_every_steady_pass(self):
        runs = [{"contender": "a", "pass_seconds": [9.0] + [0.19 + i / 1000 for i in range(10)]},
                {"contender": "a", "pass_seconds": [9.0] + [0.25] * 10},
                {"contender": "b", "pass_seconds": [9.0]}]
        # 20 steady passes: the third smallest, whatever the slow run's level; first passes never.
        self.assertAlmostEqual(compare.fast_time(runs, "a"), 0.191)
        self.assertIsNone(compare.fast_time(runs, "b"))
        self.assertIsNone(compare.quantile([], 0.1))

    def test_pair_costs_per_step_in_ns(self):
        runs = [{"contender": "a", "pairs_per_step": 1000,
                 "step_seconds": {"512B": [1.0, 0.002, 0.003], "48MiB": [1.0, 0.005]}},
                {"contender": "b", "pairs_per_step": None, "step_seconds": {"x": [1.0, 2.0]}}]
        self.assertEqual(compare.pair_costs(runs, "a"), {"512B": 2000.0, "48MiB": 5000.0})
        self.assertEqual(compare.pair_costs(runs, "b"), {})


class AlternateArenaTest(unittest.TestCase):
    def test_median_over_neighbouring_pairs_after_the_warm_ups(self):
        # Pass 0 (arena) and 1 (cuda) are warm-ups; the machine slows down for the third pair,
        # which moves both of its passes alike.
        routes = {"arena": [9.0, 0.20, 0.30, 0.21], "cuda": [5.0, 0.21, 0.31, 0.20]}
        self.assertAlmostEqual(compare.arena_over_cuda(routes), 0.30 / 0.31)
        self.assertIsNone(compare.arena_over_cuda({"arena": [9.0], "cuda": [5.0]}))
        # An arena pass without its CUDA neighbour (an odd number of passes) pairs nothing.
        odd = {"arena": [9.0, 0.2, 0.5], "cuda": [5.0, 0.25]}
        self.assertAlmostEqual(compare.arena_over_cuda(odd), 0.8)


class TableTest(unittest.TestCase):
    def test_the_timing_table_again_from_recorded_runs(self):
        runs = [{"round": 1, "contender": "native", "status": "ok", "steps": 8,
                 "pass_seconds": [1.0, 0.20, 0.22]},
                {"round": 1, "contender": "cudefrag+async", "status": "ok", "steps": 8,
                 "pass_seconds": [1.0, 0.21, 0.25], "pool_reserved_high": 3 << 30}]
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
            f.write("\n".join(json.dumps(r) for r in runs) + "\n")
        try:
            out = subprocess.run([sys.executable, compare.__file__, "diffusion", "--table", f.name],
                                 capture_output=True, text=True, check=True).stdout
        finally:
            os.unlink(f.name)
        rows = {line.split()[0]: line.split() for line in out.splitlines()
                if line.strip().startswith(("native", "cudefrag"))}
        # median of steady passes 0.21 / 0.23; p10 0.20 / 0.21; arena physical 3.00 GiB.
        self.assertEqual(rows["native"][3:5], ["0.210", "1.000"])
        self.assertEqual(rows["cudefrag+async"][3:5], ["0.230", "1.095"])
        self.assertEqual(rows["cudefrag+async"][8:10], ["0.210", "1.050"])
        self.assertEqual(rows["cudefrag+async"][12], "3.00")


class PairedTest(unittest.TestCase):
    def test_ratios_are_per_round_over_the_reference(self):
        runs = [
            # Round 2 ran on a slower machine: every contender took twice as long.
            {"round": 1, "contender": "native", "seconds": 10.0},
            {"round": 1, "contender": "cudefrag+async", "seconds": 10.5},
            {"round": 2, "contender": "cudefrag+async", "seconds": 20.4},
            {"round": 2, "contender": "native", "seconds": 20.0},
            # A failed run has no time; a round without the reference pairs nothing.
            {"round": 3, "contender": "native", "seconds": None},
            {"round": 3, "contender": "cudefrag+async", "seconds": 30.0},
            {"contender": "native", "seconds": 1.0},
        ]
        paired = compare.paired_ratios(runs, "native")
        self.assertEqual(paired["native"], [1.0, 1.0])
        self.assertEqual([round(r, 3) for r in paired["cudefrag+async"]], [1.02, 1.05])


class RunTimeTest(unittest.TestCase):
    def test_steady_passes_leave_the_first_out(self):
        self.assertEqual(compare.run_time({"seconds": 2.0, "pass_seconds": [1.4, 0.2, 0.3, 0.25]}),
                         0.25)
        self.assertEqual(compare.run_time({"seconds": 2.0, "pass_seconds": [2.0]}), 2.0)
        self.assertEqual(compare.run_time({"seconds": 2.0}), 2.0)
        self.assertIsNone(compare.run_time({"seconds": None, "status": "oom"}))

    def test_paired_ratios_use_the_steady_passes(self):
        runs = [{"round": 1, "contender": "a", "seconds": 9.0, "pass_seconds": [8.0, 0.5, 0.5]},
                {"round": 1, "contender": "b", "seconds": 3.0, "pass_seconds": [2.0, 0.5, 0.6]}]
        self.assertEqual(compare.paired_ratios(runs, "a")["b"], [1.1])


if __name__ == "__main__":
    unittest.main()
