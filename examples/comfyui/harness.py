#!/usr/bin/env python3
"""Runs ComfyUI headless on a series of text-to-image jobs and reports each one as a JSON line.

    harness.py --comfyui PATH [options] [-- COMFYUI_FLAGS...]
    harness.py --table FILE.jsonl... (no GPU, no ComfyUI: the comparison table of earlier runs)

What it does, in the order ComfyUI's own main.py does it:
1. Puts the checkout at PATH first on sys.path and hands COMFYUI_FLAGS to ComfyUI's own argument
   parser (comfy.cli_args), e.g. `-- --disable-cuda-malloc` or `-- --cpu`.
2. Starts comfy-aimdo (DynamicVRAM) where the checkout has it and its flags ask for it, then imports
   `cuda_malloc` (which picks PyTorch's allocator backend, `backend:cudaMallocAsync` by default),
   all before torch is imported. `--no-cuda-malloc-module` skips that import (torch's default
   backend then, as when ComfyUI is imported as a library).
3. Writes a checkpoint of the Stable Diffusion 1.5 shape with random weights, built from
   ComfyUI's own model classes (UNetModel, AutoencoderKL, SDClipModel: the tokenizer files ship
   in the checkout, comfy/sd1_tokenizer), into a models folder it registers with folder_paths.
   Nothing is downloaded. `--models-dir DIR` keeps it for later runs (it is reused when present).
4. For each WxHxB of --series, queues the prompt CheckpointLoaderSimple -> CLIPTextEncode x2 ->
   EmptyLatentImage -> KSampler -> VAEDecode on one execution.PromptExecutor, as the server's
   prompt worker does (classic node cache: the model stays loaded between images, as in a real
   session; a new seed per image).

Each image gives one line on stdout (and appended to --out FILE):
  {"event": "image", "index", "width", "height", "batch", "status", "wall_s",
   "tiled_vae", "attention_oom_retries", "partial_loads", "oom_logged",
   "max_allocated", "max_reserved", "free", "total", "error_type", "error", ...tags}
status: "finished" | "tiled_vae" (finished after ComfyUI caught an OOM in VAE decoding and
retried tiled) | "oom" (the prompt failed with an out-of-memory error) | "error" (another error).
Memory figures come from torch.cuda (max_memory_allocated / max_memory_reserved since the
image started, mem_get_info after it), null on the CPU. A "start" line comes first (versions,
allocator backend, DynamicVRAM state, stand-ins used) and a "summary" line last. Under
`cudefrag run` each image is also marked in the trace (cudefrag_mark), so `cudefrag report`
shows which image an out-of-memory belongs to.

Stand-ins: packages that ComfyUI imports at module level but that the core text-to-image path
never uses are replaced, only when they are not installed, by empty modules whose every
attribute is a placeholder class:
  av          (video containers: comfy_api.latest imports it; PyAV is a compiled package)
  torchsde    (only the SDE samplers use torchsde.BrownianTree; this harness samples with euler)
  trampoline  (torchsde's own dependency, in case a real torchsde is importable without it)
and comfy_aimdo, when a checkout that imports it lacks it, by a module that reports "not
available" (control.lib is None, init() and init_devices() return False): ComfyUI then runs
without DynamicVRAM, as it does when the package is missing. `--stub NAME` adds a placeholder
for another missing package. Real packages always win over stand-ins.

Exit status: 0 every image finished (tiled decoding included), 1 some image ran out of memory
or failed, 2 the harness could not start (ComfyUI import failed, no usable device...), 64 bad
command line. Running out of memory while starting (loading torch on a tiny card) is 1, so a
bisection over card sizes treats it as "does not fit".
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import importlib.abc
import importlib.machinery
import importlib.util
import json
import logging
import math
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import types

PREFIX = "harness:"
CHECKPOINT_NAME = "cudefrag_sd15_random.safetensors"
DEFAULT_SERIES = (
    "512x512x1,768x768x1,1024x1024x1,512x512x2,768x768x2,1024x1024x2,"
    "1280x1280x1,512x512x4,1536x1536x1,1280x1280x2,768x768x4,1536x1536x2"
)
PERMISSIVE_STAND_INS = ("av", "torchsde", "trampoline")
EXIT_OK, EXIT_FAILED, EXIT_SETUP, EXIT_USAGE = 0, 1, 2, 64

# The Stable Diffusion 1.5 UNet, as ComfyUI's UNetModel takes it (the shape its model detection
# recognises as SD15: context_dim 768, model_channels 320, no linear projections in the
# transformers, no adm input, no temporal layers).
SD15_UNET = {
    "image_size": 32,
    "in_channels": 4,
    "out_channels": 4,
    "model_channels": 320,
    "num_res_blocks": [2, 2, 2, 2],
    "channel_mult": [1, 2, 4, 4],
    "transformer_depth": [1, 1, 1, 1, 1, 1, 0, 0],
    "transformer_depth_middle": 1,
    "transformer_depth_output": [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0],
    "context_dim": 768,
    "num_heads": 8,
    "num_head_channels": -1,
    "use_spatial_transformer": True,
    "use_linear_in_transformer": False,
    "legacy": False,
    "adm_in_channels": None,
    "use_checkpoint": False,
    "use_temporal_attention": False,
    "use_temporal_resblock": False,
}

# The SD VAE (ComfyUI's default branch in comfy/sd.py for a "decoder.conv_in.weight" state dict).
SD_VAE_DDCONFIG = {
    "double_z": True,
    "z_channels": 4,
    "resolution": 256,
    "in_channels": 3,
    "out_ch": 3,
    "ch": 128,
    "ch_mult": [1, 2, 4, 4],
    "num_res_blocks": 2,
    "attn_resolutions": [],
    "dropout": 0.0,
}

# Keys a real SD1.5 checkpoint's text encoder does not carry (ComfyUI drops them on saving).
CLIP_KEYS_NOT_SAVED = ("transformer.text_projection.weight", "logit_scale")


# ---------------------------------------------------------------------------------------------
# Pure parts: no torch, no ComfyUI (tested by test_harness_parts.py).


@dataclasses.dataclass(frozen=True)
class Shape:
    width: int
    height: int
    batch: int

    def label(self) -> str:
        return f"{self.width}x{self.height}x{self.batch}"


_SHAPE = re.compile(r"^(\d+)x(\d+)(?:x(\d+))?(?:\*(\d+))?$")


def parse_series(text: str) -> list[Shape]:
    """'512x512x1,1024x768x2,768x768*3' -> shapes; the batch defaults to 1, '*N' repeats."""
    shapes: list[Shape] = []
    for item in (part.strip().lower() for part in text.split(",")):
        if not item:
            continue
        m = _SHAPE.match(item)
        if not m:
            raise ValueError(f"'{item}' is not WIDTHxHEIGHT[xBATCH][*REPEAT]")
        width, height = int(m.group(1)), int(m.group(2))
        batch = int(m.group(3)) if m.group(3) else 1
        repeat = int(m.group(4)) if m.group(4) else 1
        for name, value in (("width", width), ("height", height)):
            if value < 64 or value % 8:
                raise ValueError(f"'{item}': {name} {value} must be a multiple of 8, at least 64")
        if not 1 <= batch <= 64:
            raise ValueError(f"'{item}': batch {batch} must be 1..64")
        if not 1 <= repeat <= 100:
            raise ValueError(f"'{item}': repeat {repeat} must be 1..100")
        shapes.extend([Shape(width, height, batch)] * repeat)
    if not shapes:
        raise ValueError("the series is empty")
    return shapes


def parse_indexes(text: str) -> set[int]:
    """'1,3' -> {1, 3}; '' -> set(). Raises ValueError naming the bad item."""
    out = set()
    for item in filter(None, (part.strip() for part in text.split(","))):
        if not item.isdigit():
            raise ValueError(f"--profile-images takes image indexes like 1,3, not {item!r}")
        out.add(int(item))
    return out


def parse_tags(items: list[str]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ValueError(f"--tag '{item}' is not KEY=VALUE")
        tags[key] = value
    return tags


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="harness.py",
        description="Run ComfyUI headless on a series of text-to-image jobs; one JSON line per "
        "image. Arguments after '--' go to ComfyUI's own parser.",
    )
    p.add_argument("--comfyui", metavar="PATH", help="a ComfyUI checkout (has nodes.py)")
    p.add_argument("--series", default=DEFAULT_SERIES, help="WxH[xB][*N],... (default: 12 images)")
    p.add_argument("--steps", type=int, default=4, help="sampler steps per image (default 4)")
    p.add_argument("--cfg", type=float, default=7.0, help="classifier-free guidance (default 7.0)")
    p.add_argument("--sampler", default="euler", help="KSampler sampler_name (default euler)")
    p.add_argument("--scheduler", default="normal", help="KSampler scheduler (default normal)")
    p.add_argument("--seed", type=int, default=1, help="seed of the first image and the weights")
    p.add_argument("--models-dir", metavar="DIR", help="keep the checkpoint here (reused)")
    p.add_argument("--work-dir", metavar="DIR", help="ComfyUI's output/temp/input (default: temp)")
    p.add_argument("--prepare-only", action="store_true", help="write the checkpoint and stop")
    p.add_argument("--out", metavar="FILE", help="also append the JSON lines to FILE")
    p.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE",
                   help="added to every JSON line (compare.sh: config, card_gib)")
    p.add_argument("--stub", action="append", default=[], metavar="NAME",
                   help="a placeholder module for another missing package")
    p.add_argument("--no-cuda-malloc-module", action="store_true",
                   help="do not import ComfyUI's cuda_malloc (keep torch's default backend)")
    p.add_argument("--gc-interval", type=float, default=10.0, metavar="S",
                   help="gc + soft_empty_cache after an image when S seconds have passed since the "
                   "last one, as the server's prompt worker does (default 10)")
    p.add_argument("--stop-on-failure", action="store_true", help="stop at the first failed image")
    p.add_argument("--profile-images", metavar="I,J", default="",
                   help="run these images (0-based indexes) under torch.profiler and add a "
                   "\"profile\" line for each: device time, CPU time, the busiest operations")
    p.add_argument("--verbose", action="store_true", help="show ComfyUI's INFO log on stderr")
    p.add_argument("--table", nargs="+", metavar="FILE",
                   help="print the comparison table of these JSON-line files and exit")
    return p


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Our options before '--', ComfyUI's after it (in .comfy_args). Raises SystemExit(64)."""
    if "--" in argv:
        cut = argv.index("--")
        ours, comfy = argv[:cut], argv[cut + 1 :]
    else:
        ours, comfy = argv, []
    parser = build_parser()
    try:
        args = parser.parse_args(ours)
    except SystemExit as e:
        raise SystemExit(EXIT_USAGE if e.code else 0) from None
    args.comfy_args = comfy

    def fail(message: str):
        parser.print_usage(sys.stderr)
        print(f"{PREFIX} error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)

    if args.table:
        return args
    if not args.comfyui:
        fail("--comfyui PATH is required (or --table FILE...)")
    try:
        args.shapes = parse_series(args.series)
        args.tags = parse_tags(args.tag)
    except ValueError as e:
        fail(str(e))
    if args.steps < 1:
        fail("--steps must be at least 1")
    try:
        args.profile_images = parse_indexes(args.profile_images)
    except ValueError as e:
        fail(str(e))
    if args.prepare_only and not args.models_dir:
        fail("--prepare-only needs --models-dir (a temporary checkpoint would be deleted)")
    return args


def build_prompt(shape: Shape, ckpt_name: str, seed: int, steps: int, cfg: float,
                 sampler: str, scheduler: str) -> tuple[dict, list[str]]:
    """The text-to-image workflow in ComfyUI's API format, and the node to execute."""
    prompt = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt_name}},
        "2": {"class_type": "CLIPTextEncode",
              "inputs": {"text": "a lighthouse on a cliff at dawn, oil painting",
                         "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode",
              "inputs": {"text": "blurry, low quality", "clip": ["1", 1]}},
        "4": {"class_type": "EmptyLatentImage",
              "inputs": {"width": shape.width, "height": shape.height, "batch_size": shape.batch}},
        "5": {"class_type": "KSampler",
              "inputs": {"model": ["1", 0], "seed": seed, "steps": steps, "cfg": cfg,
                         "sampler_name": sampler, "scheduler": scheduler, "positive": ["2", 0],
                         "negative": ["3", 0], "latent_image": ["4", 0], "denoise": 1.0}},
        "6": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}},
    }
    return prompt, ["6"]


# ComfyUI's log lines that say how an image got through (comfy/sd.py, comfy/model_patcher.py,
# comfy/ldm/modules/attention.py, comfy/ldm/modules/diffusionmodules/model.py, execution.py).
LOG_PATTERNS = {
    "tiled_vae": re.compile(r"retrying with tiled VAE decoding", re.I),
    "attention_oom_retries": re.compile(
        r"out of memory error, (emptying cache|increasing steps)|OOMed: switched to slice"
        r"|ran out of memory while running softmax", re.I),
    "partial_loads": re.compile(r"^loaded partially", re.I),
    "oom_logged": re.compile(r"Got an OOM, unloading all loaded models", re.I),
}


class LogWatch(logging.Handler):
    """Counts ComfyUI's log lines of LOG_PATTERNS since the last reset()."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.counts = {name: 0 for name in LOG_PATTERNS}

    def reset(self):
        self.counts = {name: 0 for name in LOG_PATTERNS}

    def emit(self, record: logging.LogRecord):
        try:
            message = record.getMessage()
        except Exception:  # a malformed record must not stop the run
            return
        for name, pattern in LOG_PATTERNS.items():
            if pattern.search(message):
                self.counts[name] += 1


def is_oom_text(text: str) -> bool:
    return "outofmemoryerror" in text.lower().replace(" ", "") or "out of memory" in text.lower()


def classify(success: bool, status_messages: list, counts: dict) -> tuple[str, str, str]:
    """(status, error_type, error) of one prompt from PromptExecutor's outcome and the log."""
    error_type, error = "", ""
    for event, data in status_messages:
        if event == "execution_error":
            error_type = str(data.get("exception_type", ""))
            lines = str(data.get("exception_message", "")).strip().splitlines()
            error = lines[0] if lines else ""
        elif event == "execution_interrupted" and not error_type:
            error_type, error = "interrupted", "execution interrupted"
    if success and not error_type:
        return ("tiled_vae" if counts.get("tiled_vae") else "finished"), "", ""
    if is_oom_text(error_type) or is_oom_text(error) or counts.get("oom_logged"):
        return "oom", error_type, error
    return "error", error_type or "unknown", error or "the prompt did not finish"


def _us(event, *names) -> float:
    """The first of these attributes the profiler's event has (names changed across torch
    versions: self_cuda_time_total became self_device_time_total), in microseconds."""
    for name in names:
        value = getattr(event, name, None)
        if value is not None:
            return float(value)
    return 0.0


def profile_summary(averages, top: int = 8) -> dict:
    """What one image spent, from torch.profiler's key_averages(): the device's busy time (the
    self time of the entries that ran on the device, kernels and copies, added up as torch's own
    table totals them), the host's self time of the operations, and the busiest entries of each.
    Comparing two allocators on the same image tells whether a difference in wall time is on
    the GPU (kernels on other memory) or on the host (the allocator's calls under aten::empty and
    its kin)."""
    device, host = [], []
    for e in averages:
        on_device = "CPU" not in str(getattr(e, "device_type", "CPU"))
        row = (str(e.key), int(getattr(e, "count", 0) or 0),
               _us(e, "self_device_time_total", "self_cuda_time_total") if on_device
               else _us(e, "self_cpu_time_total"))
        (device if on_device else host).append(row)

    def busiest(rows):
        ranked = sorted((r for r in rows if r[2] > 0), key=lambda r: -r[2])[:top]
        return [{"name": r[0][:80], "count": r[1], "self_ms": round(r[2] / 1000, 3)}
                for r in ranked]

    return {"device_ms": round(sum(r[2] for r in device) / 1000, 3),
            "host_self_ms": round(sum(r[2] for r in host) / 1000, 3),
            "top_device": busiest(device), "top_host": busiest(host)}


def summarize(images: list[dict]) -> dict:
    statuses = [r["status"] for r in images]
    return {
        "event": "summary",
        "images": len(images),
        "finished": sum(s in ("finished", "tiled_vae") for s in statuses),
        "tiled_vae": statuses.count("tiled_vae"),
        "oom": statuses.count("oom"),
        "errors": statuses.count("error"),
        "all_finished": bool(images) and all(s in ("finished", "tiled_vae") for s in statuses),
        "wall_s": round(sum(r.get("wall_s") or 0.0 for r in images), 3),
        "max_reserved": max((r.get("max_reserved") or 0 for r in images), default=0),
        "max_allocated": max((r.get("max_allocated") or 0 for r in images), default=0),
    }


def load_records(paths: list[str]) -> list[dict]:
    """Every JSON line of the files, each tagged with "_source" (the file's position), so that
    rounds of different compare.sh runs, whose numbers repeat, are paired within their run."""
    records = []
    for source, path in enumerate(paths):
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    print(f"{PREFIX} {path}:{number}: not a JSON line, skipped", file=sys.stderr)
                    continue
                if isinstance(record, dict):
                    record["_source"] = source
                    records.append(record)
    return records


def _card_value(card) -> float:
    """'full' (no ballast) sorts above any size."""
    try:
        return float(card)
    except (TypeError, ValueError):
        return float("inf")


def comparison_rows(records: list[dict]) -> list[dict]:
    """Per config: the smallest card on which the whole series finished, the largest on which it
    did not, and the series wall time there and on the full card. Whether a run finished comes
    from its 'trial' line (compare.sh writes one per run, also for runs that died before their
    summary) or else from the harness's 'summary' line; the figures come from the summary."""
    per_config: dict[str, dict[float, dict]] = {}
    for r in records:
        event = r.get("event")
        # The runs of compare.sh --timing have rows of their own (timing_rows).
        if event not in ("summary", "trial") or "config" not in r or "timing_round" in r:
            continue
        card = _card_value(r.get("card_gib", "full"))
        entry = per_config.setdefault(r["config"], {}).setdefault(card, {})
        if event == "trial":
            entry["finished"] = bool(r.get("all_finished"))
            entry["from_trial"] = True
        else:
            entry["wall_s"] = r.get("wall_s")
            entry["tiled_vae"] = r.get("tiled_vae")
            if not entry.get("from_trial"):
                entry["finished"] = bool(r.get("all_finished"))
    rows = []
    for config, per_card in per_config.items():
        fits = sorted(c for c, e in per_card.items() if e.get("finished"))
        fails = sorted(c for c, e in per_card.items() if not e.get("finished"))
        smallest = fits[0] if fits else None
        there = per_card[smallest] if smallest is not None else {}
        full = per_card.get(float("inf"), {})
        rows.append({
            "config": config,
            "smallest_card_gib": "full" if smallest == float("inf") else smallest,
            "largest_failing_gib": "full" if fails and fails[-1] == float("inf") else
            (fails[-1] if fails else None),
            "wall_s_at_smallest": there.get("wall_s"),
            "tiled_at_smallest": there.get("tiled_vae"),
            "wall_s_full_card": full.get("wall_s"),
            "runs": len(per_card),
        })
    rows.sort(key=lambda row: (_card_value(row["smallest_card_gib"])
                               if row["smallest_card_gib"] is not None else float("inf"),
                               row["config"]))
    return rows


def sign_test_p(k: int, n: int) -> float:
    """Two-sided sign test: the chance of a split at least as uneven as k of n if each round were
    a fair coin (no difference between the configs)."""
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(max(k, n - k), n + 1))
    return min(1.0, 2 * tail / 2**n)


def timing_rows(records: list[dict]) -> list[dict]:
    """Per config, the whole-card series of compare.sh --timing ('timing' lines): how many ran,
    finished, and the median, least and most wall time of those that finished; the ratio is the
    median over the median of 'default' (else of the first config seen). later_s is the median
    over finished runs of the images after the first (their 'image' lines, tagged with the
    run): the first image loads the checkpoint from disk and carries most of a run's spread,
    the later ones are sampling and decoding alone; later_ratio compares those medians.
    Paired figures compare each config with the reference round by round (a round runs every
    config back to back, so the machine's drift between rounds cancels, which the medians above
    keep): paired_ratio and paired_later_ratio are the medians of the per-round ratios of series
    and of later images, later_slower "k/n" the rounds in which the later images took longer than
    the reference's, and later_p the two-sided sign test's chance of so uneven a split with no
    real difference."""
    # A run's image lines come before the 'timing' line compare.sh writes when the run ends, so
    # the later images seen since a config's last timing line belong to its next one (this also
    # keeps the runs of several files apart, whose rounds share numbers).
    per_config: dict[str, list[tuple[dict, float | None]]] = {}
    pending: dict[str, float] = {}
    by_round: dict[tuple, dict[str, tuple[float, float | None]]] = {}
    for r in records:
        if r.get("event") == "timing" and "config" in r:
            later = pending.pop(r["config"], None)
            per_config.setdefault(r["config"], []).append((r, later))
            if r.get("all_finished") and r.get("wall_s") and "round" in r:
                key = (r.get("_source"), r["round"])
                by_round.setdefault(key, {})[r["config"]] = (r["wall_s"], later)
        elif (r.get("event") == "image" and "timing_round" in r and "config" in r
              and r.get("index", 0) > 0 and r.get("wall_s") is not None):
            pending[r["config"]] = pending.get(r["config"], 0.0) + r["wall_s"]
    rows = []
    for config, runs in per_config.items():
        done = [(r, later) for r, later in runs if r.get("all_finished") and r.get("wall_s")]
        times = [r["wall_s"] for r, _ in done]
        rest = [later for _, later in done if later is not None]
        rows.append({"config": config, "runs": len(runs), "finished": len(times),
                     "median_s": statistics.median(times) if times else None,
                     "min_s": min(times) if times else None,
                     "max_s": max(times) if times else None,
                     "later_s": round(statistics.median(rest), 3) if rest else None})
    reference = next((r for r in rows if r["config"] == "default"), rows[0] if rows else None)
    for row in rows:
        for value, base_key, out in (("median_s", "median_s", "ratio"),
                                     ("later_s", "later_s", "later_ratio")):
            base = reference[base_key] if reference else None
            row[out] = (round(row[value] / base, 3) if row[value] is not None and base else None)
        series, later = [], []
        for runs in by_round.values():
            if reference is None or row["config"] not in runs or reference["config"] not in runs:
                continue
            (wall, rest), (ref_wall, ref_rest) = runs[row["config"]], runs[reference["config"]]
            series.append(wall / ref_wall)
            if rest is not None and ref_rest:
                later.append(rest / ref_rest)
        row["paired_ratio"] = round(statistics.median(series), 3) if series else None
        row["paired_later_ratio"] = round(statistics.median(later), 3) if later else None
        # The reference against itself splits nothing.
        compared = later if row is not reference else []
        slower = sum(x > 1 for x in compared)
        row["later_slower"] = f"{slower}/{len(compared)}" if compared else None
        row["later_p"] = round(sign_test_p(slower, len(compared)), 2) if compared else None
    return rows


def aligned(lines: list[tuple]) -> str:
    """Rows of cells as text columns, each as wide as its widest cell, two spaces apart."""
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(lines[0]))]
    return "\n".join("  ".join(str(v).ljust(w) for v, w in zip(line, widths)).rstrip()
                     for line in lines)


def profile_rows(records: list[dict]) -> list[dict]:
    """Per config, the profiled images (harness.py --profile-images; 'profile' lines): how
    many, and the medians of their wall, device and host self time. Where the wall time differs
    between two configs but the device time does not, the difference is on the host."""
    per_config: dict[str, list[dict]] = {}
    for r in records:
        if r.get("event") == "profile" and "config" in r and "device_ms" in r:
            per_config.setdefault(r["config"], []).append(r)
    rows = []
    for config, found in per_config.items():
        rows.append({"config": config, "images": len(found),
                     **{key: round(statistics.median(p[key] for p in found), 3)
                        for key in ("wall_s", "device_ms", "host_self_ms")}})
    return rows


def format_profiles(rows: list[dict]) -> str:
    """The table of profile_rows, or '' when no image was profiled."""
    if not rows:
        return ""
    lines = [("config", "images", "wall s", "device ms", "host self ms")]
    lines += [(r["config"], str(r["images"]), f"{r['wall_s']:g}", f"{r['device_ms']:g}",
               f"{r['host_self_ms']:g}") for r in rows]
    return aligned(lines)


def format_table(rows: list[dict]) -> str:
    def cell(value, unit=""):
        if value is None:
            return "-"
        if isinstance(value, float) and value != float("inf"):
            return f"{value:g}{unit}"
        return f"{value}{unit}"

    header = ("config", "smallest card", "fails at", "series s there", "tiled", "full card s",
              "runs")
    lines = [header]
    for row in rows:
        lines.append((row["config"], cell(row["smallest_card_gib"], " GiB"),
                      cell(row["largest_failing_gib"], " GiB"), cell(row["wall_s_at_smallest"]),
                      cell(row["tiled_at_smallest"]), cell(row["wall_s_full_card"]),
                      cell(row["runs"])))
    return aligned(lines)


# ---------------------------------------------------------------------------------------------
# Stand-ins for packages the core path imports but does not use.


class _PlaceholderMeta(type):
    def __getattr__(cls, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return placeholder_class(name)


class _Placeholder(metaclass=_PlaceholderMeta):
    def __init__(self, *args, **kwargs):
        pass

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return placeholder_class(name)

    def __call__(self, *args, **kwargs):
        return _Placeholder()


def placeholder_class(name: str) -> type:
    """A class usable as a base, an annotation (X | None), a callable and an attribute chain."""
    return _PlaceholderMeta(name, (_Placeholder,), {})


class _PlaceholderModule(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        value = placeholder_class(name)
        setattr(self, name, value)
        return value


class StandInFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves NAME and every NAME.sub module as a placeholder module; asked last on sys.meta_path,
    so an installed package always wins."""

    def __init__(self, names):
        self.names = set(names)

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] not in self.names:
            return None
        return importlib.machinery.ModuleSpec(fullname, self, is_package=True)

    def create_module(self, spec):
        module = _PlaceholderModule(spec.name)
        module.__path__ = []
        module.__cudefrag_stand_in__ = True
        return module

    def exec_module(self, module):
        pass


def _aimdo_unavailable_package() -> dict[str, types.ModuleType]:
    """comfy_aimdo as ComfyUI sees it when the package is there but its library is not."""
    package = _PlaceholderModule("comfy_aimdo")
    package.__path__ = []
    package.__cudefrag_stand_in__ = True
    control = _PlaceholderModule("comfy_aimdo.control")
    control.__cudefrag_stand_in__ = True
    control.lib = None
    control.devctxs = []
    control.init = lambda *a, **k: False
    control.init_device = lambda *a, **k: False
    control.init_devices = lambda *a, **k: False
    control.deinit = lambda *a, **k: None
    control.analyze = lambda *a, **k: None
    control.get_total_vram_usage = lambda *a, **k: 0
    control.detect_vendor = lambda *a, **k: None
    package.control = control
    return {"comfy_aimdo": package, "comfy_aimdo.control": control}


def install_stand_ins(extra: list[str]) -> list[str]:
    """Installs stand-ins for the missing ones among the known packages and `extra`; returns the
    names it replaced."""
    missing = [n for n in dict.fromkeys([*PERMISSIVE_STAND_INS, *extra])
               if importlib.util.find_spec(n) is None]
    if missing:
        sys.meta_path.append(StandInFinder(missing))
    if importlib.util.find_spec("comfy_aimdo") is None:
        sys.modules.update(_aimdo_unavailable_package())
        sys.meta_path.append(StandInFinder(["comfy_aimdo"]))
        missing.append("comfy_aimdo")
    return missing


# ---------------------------------------------------------------------------------------------
# ComfyUI.


def emit(record: dict, out_file):
    line = json.dumps(record, sort_keys=False)
    print(line, flush=True)
    if out_file is not None:
        out_file.write(line + "\n")
        out_file.flush()


def trace_marker():
    """cudefrag_mark from the preloaded shim, or None outside `cudefrag run`."""
    import ctypes

    try:
        mark = ctypes.CDLL(None).cudefrag_mark
    except (AttributeError, OSError):
        return None
    mark.argtypes = [ctypes.c_char_p]
    mark.restype = None
    return lambda text: mark(text.encode("utf-8", "replace"))


def set_up_logging(verbose: bool) -> LogWatch:
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.INFO if verbose else logging.WARNING)
    console.setFormatter(logging.Formatter("comfyui: %(message)s"))
    watch = LogWatch()
    root.addHandler(console)
    root.addHandler(watch)
    return watch


def import_comfyui(root: str, comfy_args: list[str], cuda_malloc_module: bool) -> dict:
    """Imports ComfyUI (already first on sys.path) the way main.py does: flags, DynamicVRAM,
    cuda_malloc, then torch. Returns what the start line reports."""
    sys.argv = [os.path.join(root, "main.py"), *comfy_args]
    import comfy.options

    comfy.options.enable_args_parsing()
    import comfy.cli_args as cli_args

    args = cli_args.args
    info = {"dynamic_vram": "not in this ComfyUI"}
    aimdo_control = None
    wants_dynamic_vram = getattr(cli_args, "enables_dynamic_vram", None)
    if wants_dynamic_vram is not None:
        import comfy_aimdo.control as aimdo_control

        info["dynamic_vram"] = "off (flags)"
        if wants_dynamic_vram():
            aimdo_control.init()
    if cuda_malloc_module and "torch" not in sys.modules:
        import cuda_malloc  # noqa: F401  (sets PYTORCH_CUDA_ALLOC_CONF, as main.py does)
    info["pytorch_cuda_alloc_conf"] = os.environ.get("PYTORCH_CUDA_ALLOC_CONF", "")

    import comfy.model_management as mm
    import comfy.utils

    if aimdo_control is not None and wants_dynamic_vram():
        info["dynamic_vram"] = start_dynamic_vram(args, mm, aimdo_control)
    if hasattr(comfy.utils, "set_progress_bar_enabled"):
        comfy.utils.set_progress_bar_enabled(False)
    import execution  # noqa: F401
    import folder_paths  # noqa: F401
    import nodes  # noqa: F401

    return info


def start_dynamic_vram(args, mm, aimdo_control) -> str:
    """main.py's DynamicVRAM start-up (ComfyUI versions that have comfy-aimdo), defensively."""
    try:
        import comfy.memory_management
        import comfy.model_patcher

        is_nvidia = getattr(mm, "is_nvidia", lambda: False)()
        is_wsl = getattr(mm, "is_wsl", lambda: False)()
        forced = getattr(args, "enable_dynamic_vram", False)
        if not (forced or (is_nvidia and not is_wsl)):
            return "off (not an Nvidia device)"
        if not forced and getattr(mm, "torch_version_numeric", (99, 0)) < (2, 8):
            return "off (torch older than 2.8)"
        headroom = int(float(getattr(args, "vram_headroom", 0) or 0) * 1024**3)
        devices = ((d.index, headroom) for d in mm.get_all_torch_devices())
        if not aimdo_control.init_devices(devices):
            return "off (no working comfy-aimdo)"
        comfy.model_patcher.CoreModelPatcher = comfy.model_patcher.ModelPatcherDynamic
        comfy.memory_management.aimdo_enabled = True
        return "on"
    except Exception as e:  # report it, run without: the run says which it was
        return f"off (start-up failed: {type(e).__name__}: {e})"


def tensor_plan() -> list[tuple[str, tuple, str]]:
    """(key, shape, fill) of every tensor of the checkpoint, from ComfyUI's own model classes
    built on the meta device (no memory for the weights)."""
    import torch
    import comfy.ops
    import comfy.sd1_clip
    from comfy.ldm.models.autoencoder import AutoencoderKL
    from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel

    def build(device):
        with torch.device(device):
            unet = UNetModel(**SD15_UNET, dtype=torch.float16, device=device,
                             operations=comfy.ops.disable_weight_init)
            vae = AutoencoderKL(ddconfig=dict(SD_VAE_DDCONFIG), embed_dim=4)
            clip = comfy.sd1_clip.SDClipModel(device=device, dtype=torch.float16)
        return unet, vae, clip

    try:
        unet, vae, clip = build("meta")
    except Exception as e:
        print(f"{PREFIX} building on the meta device failed ({e}); building on the CPU",
              file=sys.stderr)
        unet, vae, clip = build("cpu")
    plan = []
    for prefix, module, skip in (("model.diffusion_model.", unet, ()),
                                 ("first_stage_model.", vae, ()),
                                 ("cond_stage_model.", clip, CLIP_KEYS_NOT_SAVED)):
        for key, tensor in module.state_dict().items():
            if key in skip:
                continue
            shape = tuple(tensor.shape)
            if len(shape) == 1:
                fill = "ones" if key.endswith("weight") else "zeros"
            elif len(shape) == 0:
                fill = "zeros"
            else:
                fill = "randn"
            plan.append((prefix + key, shape, fill))
    return plan


def write_checkpoint(path: str, seed: int) -> dict:
    import torch
    import safetensors.torch

    plan = tensor_plan()
    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for key, shape, fill in plan:
        if fill == "ones":
            t = torch.ones(shape, dtype=torch.float16)
        elif fill == "zeros":
            t = torch.zeros(shape, dtype=torch.float16)
        else:
            t = (torch.randn(shape, generator=generator) * 0.02).to(torch.float16)
        tensors[key] = t
    partial = path + ".partial"
    safetensors.torch.save_file(tensors, partial, metadata={"made_by": "cudefrag harness",
                                                            "shape": "sd15", "seed": str(seed)})
    os.replace(partial, path)
    return {"tensors": len(tensors), "bytes": os.path.getsize(path)}


def register_folders(models_dir: str, work_dir: str):
    import folder_paths

    checkpoints = os.path.join(models_dir, "checkpoints")
    os.makedirs(checkpoints, exist_ok=True)
    try:
        folder_paths.add_model_folder_path("checkpoints", checkpoints, is_default=True)
    except TypeError:
        folder_paths.add_model_folder_path("checkpoints", checkpoints)
    for kind in ("output", "temp", "input"):
        directory = os.path.join(work_dir, kind)
        os.makedirs(directory, exist_ok=True)
        setter = getattr(folder_paths, f"set_{kind}_directory", None)
        if setter is not None:
            setter(directory)
    return os.path.join(checkpoints, CHECKPOINT_NAME)


class HeadlessServer:
    """What PromptExecutor asks of the server: no client, messages dropped."""

    def __init__(self):
        self.client_id = None
        self.last_node_id = None
        self.last_prompt_id = None
        self.sockets_metadata = {}

    def send_sync(self, *args, **kwargs):
        pass

    def queue_updated(self, *args, **kwargs):
        pass

    def __getattr__(self, name):
        # Newer ComfyUI versions may call more notification methods on the server.
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args, **kwargs: None


def make_executor(server):
    import inspect

    import execution

    params = inspect.signature(execution.PromptExecutor).parameters
    kwargs = {}
    cache_type = getattr(getattr(execution, "CacheType", None), "CLASSIC", None)
    if cache_type is not None and "cache_type" in params:
        kwargs["cache_type"] = cache_type
    if "cache_args" in params:
        kwargs["cache_args"] = {"lru": 0, "ram": 0, "ram_inactive": 0}
    elif "cache_size" in params:
        kwargs["cache_size"] = 0
    return execution.PromptExecutor(server, **kwargs)


class Memory:
    """torch.cuda's figures, or nothing on the CPU."""

    def __init__(self, torch, device):
        self.torch = torch
        self.cuda = getattr(device, "type", "") == "cuda"
        self.device = device

    def reset(self):
        if self.cuda:
            with contextlib.suppress(Exception):
                self.torch.cuda.reset_peak_memory_stats(self.device)

    def figures(self) -> dict:
        out = {"max_allocated": None, "max_reserved": None, "free": None, "total": None}
        if not self.cuda:
            return out
        with contextlib.suppress(Exception):
            out["max_allocated"] = int(self.torch.cuda.max_memory_allocated(self.device))
            out["max_reserved"] = int(self.torch.cuda.max_memory_reserved(self.device))
        with contextlib.suppress(Exception):
            free, total = self.torch.cuda.mem_get_info(self.device)
            out["free"], out["total"] = int(free), int(total)
        return out

    def backend(self) -> str:
        if not self.cuda:
            return "cpu"
        try:
            return self.torch.cuda.get_allocator_backend()
        except Exception:
            return "unknown"


def run_series(options, watch: LogWatch, out_file) -> int:
    import torch

    import comfy.model_management as mm

    device = mm.get_torch_device()
    memory = Memory(torch, device)
    mark = trace_marker()
    executor = make_executor(HeadlessServer())
    images = []
    last_gc = 0.0
    for index, shape in enumerate(options.shapes):
        prompt, outputs = build_prompt(shape, CHECKPOINT_NAME, options.seed + index,
                                       options.steps, options.cfg, options.sampler,
                                       options.scheduler)
        if mark is not None:
            mark(f"image {index} {shape.label()} start")
        watch.reset()
        memory.reset()
        profiler = None
        if index in options.profile_images and memory.cuda:
            acts = [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
            try:
                profiler = torch.profiler.profile(activities=acts)
                profiler.__enter__()
            except Exception as e:  # no CUPTI, say: the image runs unprofiled, the run goes on
                profiler = None
                emit({"event": "profile", "index": index,
                      "error": f"{type(e).__name__}: {e}", **options.tags}, out_file)
        started = time.perf_counter()
        try:
            executor.execute(prompt, f"image-{index}", {}, outputs)
            success, messages = executor.success, executor.status_messages
        except Exception as e:  # PromptExecutor catches node errors; this is anything else
            logging.getLogger(__name__).exception("the executor raised")
            success = False
            messages = [("execution_error", {"exception_type": type(e).__name__,
                                             "exception_message": str(e)})]
        wall = time.perf_counter() - started
        if profiler is not None:
            try:
                profiler.__exit__(None, None, None)
                emit({"event": "profile", "index": index, "wall_s": round(wall, 3),
                      **profile_summary(profiler.key_averages()), **options.tags}, out_file)
            except Exception as e:  # a profiler that failed must not cost the run
                emit({"event": "profile", "index": index, "error": f"{type(e).__name__}: {e}",
                      **options.tags}, out_file)
        status, error_type, error = classify(success, messages, watch.counts)
        if mark is not None:
            mark(f"image {index} {shape.label()} {status}")
        record = {"event": "image", "index": index, "width": shape.width,
                  "height": shape.height, "batch": shape.batch, "status": status,
                  "wall_s": round(wall, 3), "tiled_vae": watch.counts["tiled_vae"] > 0,
                  "attention_oom_retries": watch.counts["attention_oom_retries"],
                  "partial_loads": watch.counts["partial_loads"],
                  "oom_logged": watch.counts["oom_logged"] > 0, **memory.figures(),
                  "error_type": error_type, "error": error[:300], **options.tags}
        images.append(record)
        emit(record, out_file)
        if options.stop_on_failure and status in ("oom", "error"):
            break
        # The server's prompt worker, with a busy queue: at most every gc_interval seconds.
        now = time.perf_counter()
        if now - last_gc > options.gc_interval:
            gc.collect()
            mm.soft_empty_cache()
            last_gc = now
    summary = {**summarize(images), "series": options.series, "steps": options.steps,
               "allocator_backend": memory.backend(), **options.tags}
    emit(summary, out_file)
    return EXIT_OK if summary["all_finished"] else EXIT_FAILED


def comfyui_version(root: str) -> str:
    try:
        with open(os.path.join(root, "comfyui_version.py"), encoding="utf-8") as f:
            m = re.search(r"__version__\s*=\s*['\"]([^'\"]+)", f.read())
            return m.group(1) if m else "unknown"
    except OSError:
        return "unknown"


def run(options) -> int:
    root = os.path.abspath(options.comfyui)
    needed = ("nodes.py", "execution.py", "comfy")
    if not all(os.path.exists(os.path.join(root, p)) for p in needed):
        print(f"{PREFIX} {root} is not a ComfyUI checkout (no nodes.py, execution.py, comfy/)",
              file=sys.stderr)
        return EXIT_USAGE
    out_file = open(options.out, "a", encoding="utf-8") if options.out else None
    own_work_dir = options.work_dir is None
    work_dir = options.work_dir or tempfile.mkdtemp(prefix="cudefrag-comfyui-")
    models_dir = options.models_dir or os.path.join(work_dir, "models")
    watch = set_up_logging(options.verbose)
    try:
        sys.path.insert(0, root)
        stand_ins = install_stand_ins(options.stub)
        stage = "import"
        try:
            info = import_comfyui(root, options.comfy_args, not options.no_cuda_malloc_module)
            stage = "checkpoint"
            ckpt = register_folders(models_dir, work_dir)
            made = None
            if not os.path.exists(ckpt):
                made = write_checkpoint(ckpt, options.seed)
        except SystemExit as e:  # ComfyUI's argument parser refused a flag
            print(f"{PREFIX} ComfyUI exited during {stage} (status {e.code}): check the flags "
                  f"after '--'", file=sys.stderr)
            return EXIT_USAGE
        except Exception as e:
            oom = is_oom_text(f"{type(e).__name__} {e}")
            error = str(e)[:500]
            if isinstance(e, ModuleNotFoundError) and e.name:
                error += (f" (install it; if the text-to-image path never uses it, "
                          f"--stub {e.name.split('.')[0]} stands in for it)")
            emit({"event": "setup_failed", "stage": stage, "error_type": type(e).__name__,
                  "error": error, "oom": oom, **options.tags}, out_file)
            logging.getLogger(__name__).exception("setup failed")
            return EXIT_FAILED if oom else EXIT_SETUP
        import torch

        import comfy.model_management as mm

        device = mm.get_torch_device()
        try:
            device_name = mm.get_torch_device_name(device)
        except Exception:
            device_name = str(device)
        emit({"event": "start", "comfyui": comfyui_version(root), "torch": torch.__version__,
              "device": device_name, "allocator_backend": Memory(torch, device).backend(),
              "comfy_args": options.comfy_args, "stand_ins": stand_ins,
              "checkpoint": ckpt, "checkpoint_written": made, "under_cudefrag":
              trace_marker() is not None, **info, **options.tags}, out_file)
        if options.prepare_only:
            return EXIT_OK
        return run_series(options, watch, out_file)
    finally:
        if out_file is not None:
            out_file.close()
        if own_work_dir:
            shutil.rmtree(work_dir, ignore_errors=True)


def format_timing(rows: list[dict]) -> str:
    """The table of timing_rows, or '' when there were no timing runs."""
    if not rows:
        return ""
    lines = [("config", "runs", "finished", "median s", "least s", "most s", "ratio",
              "later images s", "ratio", "paired", "later paired", "later slower", "p")]
    for row in rows:
        lines.append(tuple("-" if v is None else f"{v:g}" if isinstance(v, float) else str(v)
                           for v in (row["config"], row["runs"], row["finished"],
                                     row["median_s"], row["min_s"], row["max_s"], row["ratio"],
                                     row["later_s"], row["later_ratio"], row["paired_ratio"],
                                     row["paired_later_ratio"], row["later_slower"],
                                     row["later_p"])))
    return aligned(lines)


def main(argv: list[str]) -> int:
    options = parse_args(argv)
    if options.table:
        records = load_records(options.table)
        print(format_table(comparison_rows(records)))
        timing = format_timing(timing_rows(records))
        if timing:
            print("\nwhole card, untraced, in rounds (compare.sh --timing):")
            print(timing)
        profiles = format_profiles(profile_rows(records))
        if profiles:
            print("\nprofiled images (medians; harness.py --profile-images):")
            print(profiles)
        return EXIT_OK
    return run(options)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
