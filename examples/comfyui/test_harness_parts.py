#!/usr/bin/env python3
"""The parts of harness.py and compare.sh that run without torch, ComfyUI or a GPU.

    python3 examples/comfyui/test_harness_parts.py     (or: python3 -m unittest discover -s
                                                        examples/comfyui -p 'test_*.py')

compare.sh is run for real against stand-ins: a fake ComfyUI checkout, a fake cudefrag launcher
that runs what follows its `--`, and a `python` that plays ballast.py and harness.py (each
config "fits" from a known card size up) and runs every other Python snippet for real. The
bisection, the commands per config and the table printed last are then checked.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402


class SeriesTest(unittest.TestCase):
    def test_shapes_batches_and_repeats(self):
        shapes = harness.parse_series("512x512x1, 1024x768x2,768x768*3,,")
        self.assertEqual([s.label() for s in shapes],
                         ["512x512x1", "1024x768x2", "768x768x1", "768x768x1", "768x768x1"])

    def test_default_series_is_valid(self):
        self.assertEqual(len(harness.parse_series(harness.DEFAULT_SERIES)), 12)

    def test_bad_items_are_refused_with_the_item_named(self):
        for text, needle in [("512x500x1", "multiple of 8"), ("32x32", "at least 64"),
                             ("512", "WIDTHxHEIGHT"), ("512x512x0", "batch"),
                             ("512x512x1*0", "repeat"), ("", "empty"), ("axb", "WIDTHxHEIGHT")]:
            with self.subTest(text=text):
                with self.assertRaises(ValueError) as caught:
                    harness.parse_series(text)
                self.assertIn(needle, str(caught.exception))


class ArgumentsTest(unittest.TestCase):
    def parse(self, argv):
        with contextlib.redirect_stderr(io.StringIO()) as err:
            try:
                return harness.parse_args(argv), err.getvalue()
            except SystemExit as e:
                return e.code, err.getvalue()

    def test_comfyui_flags_after_the_separator(self):
        args, _ = self.parse(["--comfyui", "/c", "--steps", "2", "--tag", "config=x", "--",
                              "--disable-cuda-malloc", "--steps", "9"])
        self.assertEqual(args.comfy_args, ["--disable-cuda-malloc", "--steps", "9"])
        self.assertEqual(args.steps, 2)
        self.assertEqual(args.tags, {"config": "x"})
        self.assertEqual(len(args.shapes), 12)

    def test_comfyui_is_required_except_for_the_table(self):
        code, err = self.parse(["--series", "512x512"])
        self.assertEqual(code, harness.EXIT_USAGE)
        self.assertIn("--comfyui", err)
        args, _ = self.parse(["--table", "a.jsonl", "b.jsonl"])
        self.assertEqual(args.table, ["a.jsonl", "b.jsonl"])

    def test_bad_values_exit_64(self):
        for argv in (["--comfyui", "/c", "--series", "nope"], ["--comfyui", "/c", "--tag", "x"],
                     ["--comfyui", "/c", "--steps", "0"], ["--comfyui", "/c", "--bogus"],
                     ["--comfyui", "/c", "--prepare-only"],
                     ["--comfyui", "/c", "--profile-images", "1,x"]):
            with self.subTest(argv=argv):
                code, _ = self.parse(argv)
                self.assertEqual(code, harness.EXIT_USAGE)


class ProfileTest(unittest.TestCase):
    def test_indexes(self):
        self.assertEqual(harness.parse_indexes(""), set())
        self.assertEqual(harness.parse_indexes("3, 1,3,"), {1, 3})
        with self.assertRaisesRegex(ValueError, "'-1'"):
            harness.parse_indexes("-1")

    def test_summary_adds_device_and_host_time_apart(self):
        class Event:
            def __init__(self, key, device_type, count, **times):
                self.key, self.device_type, self.count = key, device_type, count
                self.__dict__.update(times)

        averages = [
            # A CPU operation with the device time of its kernels: not counted again.
            Event("aten::conv2d", "DeviceType.CPU", 4, self_cpu_time_total=300.0,
                  self_device_time_total=9000.0),
            Event("aten::empty", "DeviceType.CPU", 100, self_cpu_time_total=1500.0,
                  self_device_time_total=0.0),
            Event("conv_kernel", "DeviceType.CUDA", 4, self_cpu_time_total=0.0,
                  self_device_time_total=9000.0),
            # An older torch names it self_cuda_time_total.
            Event("gemm_kernel", "DeviceType.CUDA", 2, self_cuda_time_total=2500.0),
        ]
        summary = harness.profile_summary(averages, top=1)
        self.assertEqual(summary["device_ms"], 11.5)
        self.assertEqual(summary["host_self_ms"], 1.8)
        self.assertEqual(summary["top_device"], [{"name": "conv_kernel", "count": 4,
                                                  "self_ms": 9.0}])
        self.assertEqual(summary["top_host"], [{"name": "aten::empty", "count": 100,
                                                "self_ms": 1.5}])

    def test_profile_table(self):
        records = [{"event": "profile", "config": "default", "wall_s": 3.0, "device_ms": 2000.0,
                    "host_self_ms": 900.0},
                   {"event": "profile", "config": "default", "wall_s": 5.0, "device_ms": 2200.0,
                    "host_self_ms": 1100.0},
                   {"event": "profile", "config": "cudefrag", "error": "RuntimeError: x"},
                   {"event": "image", "config": "cudefrag", "wall_s": 1.0}]
        rows = harness.profile_rows(records)
        self.assertEqual(rows, [{"config": "default", "images": 2, "wall_s": 4.0,
                                 "device_ms": 2100.0, "host_self_ms": 1000.0}])
        self.assertRegex(harness.format_profiles(rows), r"\ndefault\s+2\s+4\s+2100\s+1000$")
        self.assertEqual(harness.format_profiles([]), "")


class PromptTest(unittest.TestCase):
    def test_workflow_links_and_values(self):
        prompt, outputs = harness.build_prompt(harness.Shape(768, 512, 2), "m.safetensors", 7, 3,
                                               6.5, "euler", "normal")
        self.assertEqual(outputs, ["6"])
        self.assertEqual(prompt["1"]["inputs"]["ckpt_name"], "m.safetensors")
        latent = prompt["4"]["inputs"]
        self.assertEqual((latent["width"], latent["height"], latent["batch_size"]), (768, 512, 2))
        sampler = prompt["5"]["inputs"]
        self.assertEqual((sampler["seed"], sampler["steps"], sampler["cfg"]), (7, 3, 6.5))
        self.assertEqual(sampler["model"], ["1", 0])
        self.assertEqual(prompt["6"]["inputs"], {"samples": ["5", 0], "vae": ["1", 2]})
        # Every link points at a node of the prompt.
        for node in prompt.values():
            for value in node["inputs"].values():
                if isinstance(value, list):
                    self.assertIn(value[0], prompt)


class ClassifyTest(unittest.TestCase):
    def counts(self, **kw):
        base = {name: 0 for name in harness.LOG_PATTERNS}
        base.update(kw)
        return base

    def test_finished_and_tiled(self):
        self.assertEqual(harness.classify(True, [("execution_success", {})], self.counts()),
                         ("finished", "", ""))
        self.assertEqual(harness.classify(True, [], self.counts(tiled_vae=1))[0], "tiled_vae")

    def test_oom_from_the_exception_or_the_log(self):
        error = ("execution_error", {"exception_type": "torch.OutOfMemoryError",
                                     "exception_message": "Allocation on device\nTIPS: ..."})
        self.assertEqual(harness.classify(False, [error], self.counts()),
                         ("oom", "torch.OutOfMemoryError", "Allocation on device"))
        accel = ("execution_error", {"exception_type": "torch.AcceleratorError",
                                     "exception_message": "CUDA error: out of memory"})
        self.assertEqual(harness.classify(False, [accel], self.counts())[0], "oom")
        other = ("execution_error", {"exception_type": "RuntimeError", "exception_message": "x"})
        self.assertEqual(harness.classify(False, [other], self.counts(oom_logged=1))[0], "oom")
        self.assertEqual(harness.classify(False, [other], self.counts()),
                         ("error", "RuntimeError", "x"))

    def test_log_watch_counts_comfyui_lines(self):
        watch = harness.LogWatch()
        logger = logging.getLogger("harness-test")
        logger.propagate = False
        logger.addHandler(watch)
        logger.setLevel(logging.INFO)
        logger.warning("Warning: Ran out of memory when regular VAE decoding, retrying with "
                       "tiled VAE decoding.")
        logger.warning("out of memory error, increasing steps and trying again 4")
        logger.info("loaded partially 1200.0 1100.5 0")
        logger.info("loaded completely 9000 1600 True")
        logger.error("Got an OOM, unloading all loaded models.")
        self.assertEqual(watch.counts, {"tiled_vae": 1, "attention_oom_retries": 1,
                                        "partial_loads": 1, "oom_logged": 1})
        watch.reset()
        self.assertEqual(sum(watch.counts.values()), 0)


class TableTest(unittest.TestCase):
    def records(self):
        def summary(config, card, ok, wall, tiled=0):
            return {"event": "summary", "config": config, "card_gib": card, "all_finished": ok,
                    "wall_s": wall, "tiled_vae": tiled}

        def trial(config, card, rc):
            return {"event": "trial", "config": config, "card_gib": card, "rc": rc,
                    "all_finished": rc == 0}

        return [
            summary("default", "full", True, 27.0), trial("default", "full", 0),
            summary("default", "6", True, 30.0), trial("default", "6", 0),
            summary("default", "2.5", True, 59.0, 2), trial("default", "2.5", 0),
            summary("default", "2.25", False, 40.0), trial("default", "2.25", 1),
            # The run died after its summary said all finished: the trial line wins.
            summary("cudefrag", "1", True, 70.0), trial("cudefrag", "1", 139),
            summary("cudefrag", "1.25", True, 65.0, 1), trial("cudefrag", "1.25", 0),
            trial("cudefrag", "full", 0),
            # No summary at all (killed): only the trial line.
            trial("broken", "full", 124),
            {"event": "image", "config": "default", "card_gib": "2.5", "status": "oom"},
        ]

    def test_rows(self):
        rows = {r["config"]: r for r in harness.comparison_rows(self.records())}
        self.assertEqual(rows["default"]["smallest_card_gib"], 2.5)
        self.assertEqual(rows["default"]["largest_failing_gib"], 2.25)
        self.assertEqual(rows["default"]["wall_s_at_smallest"], 59.0)
        self.assertEqual(rows["default"]["tiled_at_smallest"], 2)
        self.assertEqual(rows["default"]["wall_s_full_card"], 27.0)
        self.assertEqual(rows["cudefrag"]["smallest_card_gib"], 1.25)
        self.assertEqual(rows["cudefrag"]["largest_failing_gib"], 1.0)
        self.assertIsNone(rows["cudefrag"]["wall_s_full_card"])
        self.assertIsNone(rows["broken"]["smallest_card_gib"])
        self.assertEqual(rows["broken"]["largest_failing_gib"], "full")
        order = [r["config"] for r in harness.comparison_rows(self.records())]
        self.assertEqual(order, ["cudefrag", "default", "broken"])

    def test_text(self):
        text = harness.format_table(harness.comparison_rows(self.records()))
        lines = text.splitlines()
        self.assertTrue(lines[0].startswith("config"))
        self.assertRegex(lines[1], r"^cudefrag\s+1\.25 GiB\s+1 GiB\s+65\s+1\s+-\s+3$")
        self.assertRegex(lines[3], r"^broken\s+-\s+full GiB")

    def test_timing_rows(self):
        def timing(config, rnd, wall, finished=True):
            return {"event": "timing", "config": config, "card_gib": "full", "round": rnd,
                    "rc": 0 if finished else 1, "all_finished": finished, "wall_s": wall}

        def summary(config, rnd, wall):
            return {"event": "summary", "config": config, "card_gib": "full",
                    "timing_round": str(rnd), "all_finished": True, "wall_s": wall}

        def image(config, rnd, index, wall):
            return {"event": "image", "config": config, "card_gib": "full",
                    "timing_round": str(rnd), "index": index, "wall_s": wall}

        # As compare.sh writes them: a run's image lines, its summary, then its timing line.
        # Later images (index > 0) of finished rounds only; the first image is left out.
        records = self.records() + [
            image("cudefrag", 1, 0, 9.0), image("cudefrag", 1, 1, 2.5),
            timing("cudefrag", 1, 12.0), summary("cudefrag", 1, 12.0),
            image("default", 1, 0, 8.0), image("default", 1, 1, 1.0), image("default", 1, 2, 1.0),
            timing("default", 1, 10.0),
            image("default", 2, 1, 3.0), timing("default", 2, 11.0),
            image("cudefrag", 2, 1, 2.5), timing("cudefrag", 2, 11.0),
            image("cudefrag", 3, 1, 50.0), timing("cudefrag", 3, 99.0, finished=False),
            timing("default", 3, 30.0),
        ]
        rows = {r["config"]: r for r in harness.timing_rows(records)}
        self.assertEqual(rows["default"]["median_s"], 11.0)
        self.assertEqual((rows["default"]["min_s"], rows["default"]["max_s"]), (10.0, 30.0))
        self.assertEqual((rows["cudefrag"]["runs"], rows["cudefrag"]["finished"]), (3, 2))
        self.assertEqual(rows["cudefrag"]["median_s"], 11.5)
        self.assertEqual(rows["cudefrag"]["ratio"], round(11.5 / 11.0, 3))
        self.assertEqual(rows["default"]["ratio"], 1.0)
        self.assertEqual(rows["default"]["later_s"], 2.5)  # rounds 1 (1 + 1) and 2 (3)
        self.assertEqual(rows["cudefrag"]["later_s"], 2.5)  # round 3 did not finish
        self.assertEqual(rows["cudefrag"]["later_ratio"], 1.0)
        # Paired by round: round 1 (12/10 series, 2.5/2 later) and 2 (11/11, 2.5/3); round 3
        # did not finish for cudefrag.
        self.assertEqual(rows["cudefrag"]["paired_ratio"], round((1.2 + 1.0) / 2, 3))
        self.assertEqual(rows["cudefrag"]["paired_later_ratio"], round((1.25 + 2.5 / 3) / 2, 3))
        self.assertEqual(rows["cudefrag"]["later_slower"], "1/2")
        self.assertEqual(rows["cudefrag"]["later_p"], 1.0)
        self.assertEqual(harness.sign_test_p(11, 17), harness.sign_test_p(6, 17))
        self.assertAlmostEqual(harness.sign_test_p(11, 17), 0.332, places=3)
        self.assertAlmostEqual(harness.sign_test_p(0, 5), 0.0625)
        self.assertEqual(rows["default"]["paired_ratio"], 1.0)
        # Two files of the same rounds (two compare.sh runs) are kept apart, not added up.
        twice = {r["config"]: r for r in harness.timing_rows(records + records)}
        self.assertEqual(twice["default"]["later_s"], 2.5)
        self.assertEqual(twice["cudefrag"]["runs"], 6)
        # As load_records tags them: the rounds of each file are paired within the file.
        tagged = [{**r, "_source": 0} for r in records] + [{**r, "_source": 1} for r in records]
        self.assertEqual({r["config"]: r for r in harness.timing_rows(tagged)}["cudefrag"]
                         ["later_slower"], "2/4")
        # A timing run's own summary does not replace the traced whole-card figure.
        full = {r["config"]: r for r in harness.comparison_rows(records)}
        self.assertIsNone(full["cudefrag"]["wall_s_full_card"])
        self.assertEqual(full["default"]["wall_s_full_card"], 27.0)
        self.assertIn("ratio", harness.format_timing(harness.timing_rows(records)))
        self.assertEqual(harness.format_timing([]), "")

    def test_main_reads_files(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "r.jsonl")
            with open(path, "w", encoding="utf-8") as f:
                for record in self.records():
                    f.write(json.dumps(record) + "\n")
                f.write("not json\n")
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                self.assertEqual(harness.main(["--table", path]), 0)
            self.assertIn("2.5 GiB", out.getvalue())
            self.assertIn("not a JSON line", err.getvalue())

    def test_summary(self):
        images = [{"status": "finished", "wall_s": 1.5, "max_reserved": 10},
                  {"status": "tiled_vae", "wall_s": 2.0, "max_reserved": 30},
                  {"status": "oom", "wall_s": 0.5, "max_reserved": None}]
        s = harness.summarize(images)
        self.assertEqual((s["finished"], s["tiled_vae"], s["oom"], s["all_finished"]),
                         (2, 1, 1, False))
        self.assertEqual((s["wall_s"], s["max_reserved"]), (4.0, 30))
        self.assertFalse(harness.summarize([])["all_finished"])


class StandInTest(unittest.TestCase):
    def test_placeholders_import_and_behave(self):
        name = "cudefrag_missing_pkg_for_test"
        finder = harness.StandInFinder([name])
        sys.meta_path.append(finder)
        try:
            module = __import__(f"{name}.container", fromlist=["InputContainer"])
            container = module.InputContainer
            self.assertIsInstance(container, type)

            class Derived(container):  # a base class, as ComfyUI's type hints and subclasses use
                pass

            self.assertIsNotNone(Derived())
            self.assertIsNotNone(container | None)
            self.assertIsNotNone(sys.modules[name].logging.set_level(3))
            self.assertTrue(sys.modules[name].__cudefrag_stand_in__)
        finally:
            sys.meta_path.remove(finder)
            for key in [k for k in sys.modules if k.split(".")[0] == name]:
                del sys.modules[key]

    def test_installed_packages_win(self):
        finder = harness.StandInFinder(["json"])
        self.assertIsNotNone(finder.find_spec("json"))  # it would serve it...
        sys.meta_path.append(finder)
        try:
            import importlib

            self.assertIs(importlib.import_module("json"), json)  # ...but it is asked last
        finally:
            sys.meta_path.remove(finder)

    def test_aimdo_stand_in_says_unavailable(self):
        modules = harness._aimdo_unavailable_package()
        control = modules["comfy_aimdo.control"]
        self.assertIsNone(control.lib)
        self.assertFalse(control.init())
        self.assertFalse(control.init_devices([(0, 0)]))
        self.assertEqual(control.get_total_vram_usage(), 0)


FAKE_PYTHON = textwrap.dedent("""\
    #!{real}
    # Plays ballast.py and harness.py for compare.sh; any other use runs the real Python.
    import json, os, sys, time
    argv = sys.argv[1:]
    script = argv[0] if argv else ""
    log = os.environ["FAKE_LOG"]
    if script.endswith("ballast.py"):
        with open(log, "a") as f:
            f.write("ballast " + " ".join(argv[1:]) + "\\n")
        print("ballast: ready keep=1 free=1 held=1 total=2", flush=True)
        while True:
            time.sleep(0.05)
    if script.endswith("harness.py") and "--table" not in argv:
        with open(log, "a") as f:
            f.write("harness " + " ".join(argv[1:]) + "\\n")
        if "--prepare-only" in argv:
            sys.exit(0)
        tags = dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "--tag")
        out = argv[argv.index("--out") + 1]
        needs = {{"default": 2.5, "no-cuda-malloc": 2.0, "cudefrag": 1.25,
             "cudefrag-limit": 1.25, "cudefrag-passthrough": 2.5}}[tags["config"]]
        card = float("inf") if tags["card_gib"] == "full" else float(tags["card_gib"])
        ok = card >= needs
        line = json.dumps({{"event": "summary", "images": 3, "finished": 3 if ok else 1,
                           "tiled_vae": 0, "oom": 0 if ok else 2, "all_finished": ok,
                           "wall_s": 10.0 if card == float("inf") else 20.0 / card, **tags}})
        print(line, flush=True)
        with open(out, "a") as f:
            f.write(line + "\\n")
        sys.exit(0 if ok else 1)
    os.execv("{real}", ["{real}"] + argv)
    """)

FAKE_LAUNCHER = textwrap.dedent("""\
    #!/usr/bin/env bash
    # cudefrag run [options] -- program...: records the options, runs the program.
    echo "cudefrag $*" >>"$FAKE_LOG"
    while [[ $# -gt 0 && $1 != -- ]]; do shift; done
    shift
    exec "$@"
    """)


@unittest.skipUnless(shutil.which("bash") and shutil.which("timeout") and shutil.which("awk"),
                     "needs bash, timeout and awk")
class CompareScriptTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="cudefrag-compare-test-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        comfy = os.path.join(self.tmp, "ComfyUI")
        os.makedirs(os.path.join(comfy, "comfy"))
        open(os.path.join(comfy, "nodes.py"), "w").close()
        with open(os.path.join(comfy, "comfy", "cli_args.py"), "w") as f:
            f.write('parser.add_argument("--disable-dynamic-vram", action="store_true")\n')
        self.comfy = comfy
        self.log = os.path.join(self.tmp, "calls.log")
        self.python = self.executable("python", FAKE_PYTHON.format(real=sys.executable))
        self.launcher = self.executable("cudefrag", FAKE_LAUNCHER)

    def executable(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
        return path

    def run_compare(self, *extra):
        env = {**os.environ, "PYTHON": self.python, "FAKE_LOG": self.log}
        out = os.path.join(self.tmp, "out")
        result = subprocess.run(
            ["bash", os.path.join(HERE, "compare.sh"), "--comfyui", self.comfy, "--out", out,
             "--cudefrag", self.launcher, *extra],
            env=env, capture_output=True, text=True, timeout=120)
        return result, out

    def test_bisection_commands_and_table(self):
        # default needs 2.5 GiB: bisected in 2..3; the others fit on 2 GiB, the bracket's floor.
        result, out = self.run_compare("--lo", "2", "--hi", "3", "--", "--reserve-vram", "0")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        table = result.stdout[result.stdout.rindex("config "):]
        self.assertRegex(table, r"\ndefault\s+2\.5 GiB\s+2\.25 GiB\s+8\s+0\s+10\s+5\n")
        self.assertRegex(table, r"\ncudefrag\s+2 GiB\s+-\s")
        self.assertRegex(table, r"\nno-cuda-malloc\s+2 GiB\s+-\s")
        with open(self.log) as f:
            calls = f.read().splitlines()
        runs = [c for c in calls if c.startswith("harness") and "--prepare-only" not in c]
        for call in runs:
            self.assertIn("-- ", call)
            flags = call.split(" -- ", 1)[1].split()
            self.assertIn("--disable-dynamic-vram", flags)
            self.assertIn("--reserve-vram", flags)
            self.assertEqual("--disable-cuda-malloc" in flags, "config=no-cuda-malloc" in call)
        # Every emulated card had a ballast; the full-card runs had none.
        ballasts = [c for c in calls if c.startswith("ballast")]
        cards = [c for c in runs if "card_gib=full" not in c]
        self.assertEqual(len(ballasts), len(cards))
        self.assertTrue(all("--trace" in c for c in calls if c.startswith("cudefrag")))
        self.assertEqual(sum(c.startswith("cudefrag") for c in calls),
                         sum("config=cudefrag" in c for c in runs))
        with open(os.path.join(out, "results.jsonl")) as f:
            events = [json.loads(line)["event"] for line in f]
        self.assertEqual(events.count("trial"), len(runs))

    def test_limit_config_uses_the_arena_limit_not_a_ballast(self):
        result, _ = self.run_compare("--configs", "cudefrag-limit", "--lo", "1", "--hi", "1.5")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        with open(self.log) as f:
            calls = f.read()
        self.assertNotIn("ballast", calls)
        self.assertIn("--limit 1.25GiB", calls)

    def test_spent_budget_runs_nothing_and_counts_nothing(self):
        result, out = self.run_compare("--budget", "-1", "--configs", "default,cudefrag")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        with open(self.log) as f:
            self.assertEqual([c for c in f.read().splitlines() if "--prepare-only" not in c], [])
        with open(os.path.join(out, "results.jsonl")) as f:
            self.assertEqual({json.loads(line)["event"] for line in f}, {"not_run"})
        self.assertEqual(harness.comparison_rows(harness.load_records(
            [os.path.join(out, "results.jsonl")])), [])

    def test_timing_rounds_rotate_the_order_and_run_untraced(self):
        result, out = self.run_compare("--no-bisect", "--timing", "2", "--configs",
                                       "default,cudefrag,cudefrag-limit")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        with open(self.log) as f:
            calls = [c for c in f.read().splitlines() if "--prepare-only" not in c]
        runs = [c.split("config=")[1].split()[0] for c in calls if c.startswith("harness")]
        self.assertEqual(runs, ["default", "cudefrag", "cudefrag", "default"])
        self.assertFalse(any(c.startswith("ballast") for c in calls))
        self.assertFalse(any("--trace" in c for c in calls if c.startswith("cudefrag")))
        with open(os.path.join(out, "results.jsonl")) as f:
            timing = [json.loads(line) for line in f if '"timing"' in line]
        self.assertEqual([(t["config"], t["round"], t["wall_s"]) for t in timing],
                         [("default", 1, 10.0), ("cudefrag", 1, 10.0), ("cudefrag", 2, 10.0),
                          ("default", 2, 10.0)])
        self.assertRegex(result.stdout,
                         r"\ncudefrag\s+2\s+2\s+10\s+10\s+10\s+1\s+-\s+-\s+1\s+-\s+-\s+-\n")
        result, _ = self.run_compare("--timing", "many")
        self.assertEqual(result.returncode, 64)

    def test_passthrough_config_and_profiled_timing_runs(self):
        result, _ = self.run_compare("--no-bisect", "--timing", "1", "--profile-images", "1,2",
                                     "--configs", "default,cudefrag-passthrough")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        with open(self.log) as f:
            calls = [c for c in f.read().splitlines() if "--prepare-only" not in c]
        self.assertEqual([c for c in calls if c.startswith("cudefrag")],
                         [c for c in calls if c.startswith("cudefrag run --mode passthrough --")])
        self.assertEqual(sum(c.startswith("cudefrag") for c in calls), 1)
        runs = [c for c in calls if c.startswith("harness")]
        self.assertEqual(len(runs), 2)
        self.assertTrue(all("--profile-images 1,2" in c for c in runs))
        result, _ = self.run_compare("--timing", "1", "--profile-images", "1;2")
        self.assertEqual(result.returncode, 64)

    def test_bad_command_lines(self):
        result, _ = self.run_compare("--configs", "nonsense")
        self.assertEqual(result.returncode, 64)
        result, _ = self.run_compare("--lo", "3", "--hi", "2")
        self.assertEqual(result.returncode, 64)
        result, _ = self.run_compare("--bogus")
        self.assertEqual(result.returncode, 64)


if __name__ == "__main__":
    unittest.main(verbosity=2)
