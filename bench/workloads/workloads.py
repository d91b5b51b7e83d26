#!/usr/bin/env python3
"""Two PyTorch workloads that allocate the way real inference does, with random weights.

    python3 workloads.py diffusion|transformer|tensors [--scale S] [--passes N] [--json-out FILE]
                         [--alternate-arena]

diffusion: a UNet (conv + group norm + spatial self-attention, skip connections) denoising
    latents for a few steps, then a VAE-style decoder that upsamples the latents 8x to pixels, over
    a series of resolutions and batch sizes (the shape of a text-to-image queue in ComfyUI).
    Attention memory grows with the square of the latent's pixels and the decoder's activations
    with the image: each new size needs differently sized blocks than the last one left cached.
transformer: a decoder-only model generating tokens with a key/value cache that grows by
    concatenation each step (as Hugging Face's DynamicCache does), for prompts of changing lengths
    and batch sizes.
tensors: no model, only what an allocation costs the program: a step per size (512 B, 64 KiB,
    2 MiB, 48 MiB) creates and drops TENSOR_PAIRS tensors of it (torch.empty, del) one at a time
    on the current stream, nothing queued on the GPU. A pass's time over its 4 * TENSOR_PAIRS
    pairs is the cost of one pair through PyTorch's allocator and whatever serves it; --scale
    multiplies the pairs. The whole workloads spend part of their time on exactly this.

All run under torch.inference_mode() in float16.

--alternate-arena (under `cudefrag run` only): passes alternate between the arena and CUDA's own
allocator in one process (cudefrag_arena_pause() around every other pass; frees go where their
memory came from), and the JSON gains route_seconds {"arena": [...], "cuda": [...]} and
arena_over_cuda (arena_over_cuda()). Both routes keep their caches, so the process holds both. Each step's outcome is printed as it ends; an
out-of-memory error ends the run (status "oom" with the step). Last line: one JSON object
    {"workload", "status", "steps", "failed_step", "seconds", "peak_allocated", "peak_reserved",
     "pool_reserved_high", "pool_used_high", "allocator_backend", "alloc_conf", "pass_seconds",
     "step_seconds", "reserved_at_end", "process_used_at_end"}
(process_used_at_end: the process's device memory by nvidia-smi; minus reserved_at_end, the
memory outside the allocator: context, library workspaces, a shim's own. reserved_at_end is
what the allocators hold from the driver: under `cudefrag run` the arena's physical memory,
else torch.cuda.memory_reserved())
where seconds is the wall time of the steps (model build and warm-up excluded; with --passes N
the series runs N times over and seconds covers them all, pass_seconds each, step_seconds each
step's time per pass by the step's name), peak_allocated /
peak_reserved are torch.cuda.max_memory_allocated() / max_memory_reserved(), and pool_* are the
device's default memory pool's ReservedMemHigh / UsedMemHigh read through the process's global
symbol scope (under `cudefrag run` the arena answers them: its peak physical and peak live
bytes; without the shim they describe the driver's pool, unused by the native allocator).
"""

import argparse
import ctypes
import json
import math
import os
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from compare import arena_over_cuda  # compare.py holds the timing rules: tested without torch

# (height, width, batch) in pixels, the order a user queues them in.
DIFFUSION_SERIES = [(512, 512, 1), (768, 768, 1), (512, 512, 4), (1024, 1024, 1),
                    (640, 960, 2), (1024, 1024, 2), (768, 1152, 1), (512, 512, 2)]
# (prompt tokens, batch)
TRANSFORMER_SERIES = [(128, 1), (1024, 1), (512, 4), (2048, 1), (64, 8), (1536, 2), (256, 2)]


class ResBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.n1 = nn.GroupNorm(32, cin)
        self.c1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.n2 = nn.GroupNorm(32, cout)
        self.c2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x):
        h = self.c1(F.silu(self.n1(x)))
        h = self.c2(F.silu(self.n2(h)))
        return self.skip(x) + h


class SpatialAttention(nn.Module):
    """Self-attention over all pixels of a feature map, written with matmuls so that the score
    matrix is materialised as in attention without memory-efficient kernels."""

    def __init__(self, channels, heads=8):
        super().__init__()
        self.norm = nn.GroupNorm(32, channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)
        self.heads = heads

    def forward(self, x):
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w).unbind(1)
        scores = torch.softmax(q.transpose(-2, -1) @ k / math.sqrt(c // self.heads), dim=-1)
        y = (v @ scores.transpose(-2, -1)).reshape(b, c, h, w)
        return x + self.out(y)


class UNet(nn.Module):
    def __init__(self, base):
        super().__init__()
        ch = [base, base * 2, base * 4]
        self.inp = nn.Conv2d(4, ch[0], 3, padding=1)
        self.down = nn.ModuleList([ResBlock(ch[0], ch[0]), ResBlock(ch[0], ch[1]),
                                   ResBlock(ch[1], ch[2])])
        self.attn = nn.ModuleList([nn.Identity(), SpatialAttention(ch[1]),
                                   SpatialAttention(ch[2])])
        self.mid = ResBlock(ch[2], ch[2])
        self.up = nn.ModuleList([ResBlock(ch[2] * 2, ch[1]), ResBlock(ch[1] * 2, ch[0]),
                                 ResBlock(ch[0] * 2, ch[0])])
        self.out = nn.Conv2d(ch[0], 4, 3, padding=1)

    def forward(self, x):
        h = self.inp(x)
        skips = []
        for i, (block, attn) in enumerate(zip(self.down, self.attn)):
            h = attn(block(h))
            skips.append(h)
            if i < 2:
                h = F.avg_pool2d(h, 2)
        h = self.mid(h)
        for i, block in enumerate(self.up):
            s = skips.pop()
            if h.shape[-1] != s.shape[-1]:
                h = F.interpolate(h, size=s.shape[-2:], mode="nearest")
            h = block(torch.cat([h, s], dim=1))
        return self.out(h)


class Decoder(nn.Module):
    """Latents (4 channels) to RGB at 8x the size, three 2x upsamplings, wide at low resolution
    and narrow at high, as a VAE decoder is."""

    def __init__(self, base):
        super().__init__()
        widths = [base * 4, base * 4, base * 2, base]
        self.inp = nn.Conv2d(4, widths[0], 3, padding=1)
        self.mid = nn.Sequential(ResBlock(widths[0], widths[0]), SpatialAttention(widths[0], heads=1))
        self.stages = nn.ModuleList()
        for i in range(3):
            self.stages.append(nn.ModuleList([ResBlock(widths[i], widths[i + 1]),
                                              nn.Conv2d(widths[i + 1], widths[i + 1], 3,
                                                        padding=1)]))
        self.out = nn.Sequential(nn.GroupNorm(32, widths[-1]), nn.SiLU(),
                                 nn.Conv2d(widths[-1], 3, 3, padding=1))

    def forward(self, z):
        h = self.mid(self.inp(z))
        for block, conv in self.stages:
            h = block(h)
            h = conv(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.out(h)


class DecoderLayer(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.n1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim, bias=False)
        self.n2 = nn.LayerNorm(dim)
        self.ff1 = nn.Linear(dim, 4 * dim, bias=False)
        self.ff2 = nn.Linear(4 * dim, dim, bias=False)

    def forward(self, x, cache):
        b, t, d = x.shape
        q, k, v = self.qkv(self.n1(x)).view(b, t, 3, self.heads, d // self.heads).unbind(2)
        q, k, v = (y.transpose(1, 2) for y in (q, k, v))
        if cache is not None:
            k = torch.cat([cache[0], k], dim=2)  # a new, larger block every token
            v = torch.cat([cache[1], v], dim=2)
        scores = q @ k.transpose(-2, -1) / math.sqrt(d // self.heads)
        if t > 1:
            mask = torch.ones(t, k.shape[2], device=x.device, dtype=torch.bool).tril(
                k.shape[2] - t)
            scores = scores.masked_fill(~mask, float("-inf"))
        y = (torch.softmax(scores.float(), dim=-1).to(x.dtype) @ v).transpose(1, 2).reshape(b, t, d)
        x = x + self.proj(y)
        x = x + self.ff2(F.gelu(self.ff1(self.n2(x))))
        return x, (k, v)


class Transformer(nn.Module):
    def __init__(self, dim, layers, heads, vocab):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.layers = nn.ModuleList([DecoderLayer(dim, heads) for _ in range(layers)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)

    def forward(self, tokens, caches):
        x = self.embed(tokens)
        new = []
        for layer, cache in zip(self.layers, caches):
            x, c = layer(x, cache)
            new.append(c)
        return self.head(self.norm(x[:, -1:])), new


# The default memory pool's attributes (cudaMemPoolAttr): under `cudefrag run` the arena answers.
POOL_RESERVED_CURRENT, POOL_RESERVED_HIGH, POOL_USED_HIGH = 5, 6, 8


def pool_attribute(attr, device_index):
    """The device's default memory pool's attribute `attr`, read through the global symbol scope
    (where a preloaded shim's cudaMemPoolGetAttribute comes first); None when unreachable."""
    try:
        scope = ctypes.CDLL(None)
        get_pool = scope.cudaDeviceGetDefaultMemPool
        get_attr = scope.cudaMemPoolGetAttribute
    except (OSError, AttributeError):
        return None
    pool = ctypes.c_void_p()
    if get_pool(ctypes.byref(pool), device_index) != 0:
        return None
    v = ctypes.c_uint64()
    return v.value if get_attr(pool, attr, ctypes.byref(v)) == 0 else None


def pool_figures():
    """The default pool's ReservedMemHigh and UsedMemHigh on the current device."""
    device_index = torch.cuda.current_device()
    return (pool_attribute(POOL_RESERVED_HIGH, device_index),
            pool_attribute(POOL_USED_HIGH, device_index))


def under_cudefrag():
    """Whether libcudefrag.so is loaded in this process (its cudefrag_mark is in global scope)."""
    try:
        return hasattr(ctypes.CDLL(None), "cudefrag_mark")
    except OSError:
        return False


def allocator_held(device):
    """Bytes the process's allocators hold from the driver now: under cudefrag the arena's physical
    memory (the default pool's ReservedMemCurrent, which the arena answers), whatever PyTorch's
    backend (with PYTORCH_NO_CUDA_MEMORY_CACHING, torch.cuda.memory_reserved() says 0, and with
    the native allocator it leaves out the arena's own cache); else memory_reserved()."""
    if under_cudefrag():
        held = pool_attribute(POOL_RESERVED_CURRENT, device.index or 0)
        if held is not None:
            return held
    return torch.cuda.memory_reserved(device)


def process_device_memory():
    """What this process holds on its GPUs by the driver's account (nvidia-smi: context, library
    workspaces and every allocator's memory), in bytes; None when nvidia-smi cannot tell. Minus
    what the allocator holds, it is the memory a smaller card must also fit that no allocator
    controls, and which differs between set-ups (a preloaded shim included)."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory",
                              "--format=csv,noheader,nounits"], capture_output=True, text=True,
                             timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    used = [int(m) for pid, m in (line.split(",")[:2] for line in out.splitlines() if "," in line)
            if pid.strip() == str(os.getpid()) and m.strip().isdigit()]
    return sum(used) << 20 if used else None


def diffusion_steps(scale, device):
    base = int(128 * scale) // 32 * 32 or 32
    unet = UNet(base).to(device, torch.float16).eval()
    decoder = Decoder(base).to(device, torch.float16).eval()

    def step(h, w, batch, sampler_steps=4):
        latents = torch.randn(batch, 4, h // 8, w // 8, device=device, dtype=torch.float16)
        for _ in range(sampler_steps):
            latents = latents - 0.1 * unet(latents)
        image = decoder(latents)
        return float(image.float().mean())

    return [(f"{h}x{w}x{b}", (lambda h=h, w=w, b=b: step(h, w, b)))
            for h, w, b in DIFFUSION_SERIES], lambda: step(256, 256, 1, 1)


def transformer_steps(scale, device):
    dim = int(2048 * scale) // 64 * 64 or 64
    model = Transformer(dim, layers=12, heads=16, vocab=32000).to(device, torch.float16).eval()
    new_tokens = 24

    def step(prompt, batch):
        tokens = torch.randint(0, 32000, (batch, prompt), device=device)
        caches = [None] * len(model.layers)
        logits, caches = model(tokens, caches)
        out = []
        for _ in range(new_tokens):
            nxt = logits.argmax(dim=-1)
            out.append(nxt)
            logits, caches = model(nxt, caches)
        return int(torch.cat(out, dim=1).sum())

    return [(f"prompt{p}x{b}", (lambda p=p, b=b: step(p, b))) for p, b in TRANSFORMER_SERIES], \
        lambda: step(16, 1)


TENSOR_SIZES = [("512B", 512), ("64KiB", 64 << 10), ("2MiB", 2 << 20), ("48MiB", 48 << 20)]
TENSOR_PAIRS = 20000


def tensor_pairs(scale):
    """How many tensors a step of the tensors workload creates and drops at `scale`."""
    return max(1, int(TENSOR_PAIRS * scale))


def tensor_steps(scale, device):
    pairs = tensor_pairs(scale)

    def step(nbytes, n):
        for _ in range(n):
            t = torch.empty(nbytes, dtype=torch.uint8, device=device)
            del t

    return [(name, (lambda b=b: step(b, pairs))) for name, b in TENSOR_SIZES], \
        lambda: [step(b, 100) for _, b in TENSOR_SIZES]


def is_cuda_out_of_memory(error):
    """Whether a CUDA error PyTorch raised is cudaErrorMemoryAllocation ("CUDA error: out of
    memory"), as it words the failure of a cudaMalloc it checks outside its caching allocator."""
    return "CUDA error: out of memory" in str(error)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workload", choices=["diffusion", "transformer", "tensors"])
    parser.add_argument("--scale", type=float, default=1.0,
                        help="model width factor (1.0: the sizes in the results file)")
    parser.add_argument("--passes", type=int, default=1,
                        help="run the series this many times (a longer run for timing)")
    parser.add_argument("--json-out", help="also write the last line's JSON to this file")
    parser.add_argument("--alternate-arena", action="store_true",
                        help="under `cudefrag run`: every other pass with the arena paused "
                             "(cudefrag_arena_pause: CUDA's own allocator serves it), so that "
                             "one process times both on the same machine state")
    args = parser.parse_args()
    if args.passes < 1:
        parser.error("--passes must be at least 1")
    routes = None
    if args.alternate_arena:
        routes = ctypes.CDLL(None)
        if not hasattr(routes, "cudefrag_arena_pause"):
            parser.error("--alternate-arena needs the program to run under `cudefrag run`")
        if args.passes < 4:
            parser.error("--alternate-arena needs --passes 4 or more (two warm-ups, then pairs)")
    if not torch.cuda.is_available():
        print("workloads: no CUDA device", file=sys.stderr)
        return 77
    device = torch.device("cuda", 0)
    torch.manual_seed(0)
    make = {"diffusion": diffusion_steps, "transformer": transformer_steps,
            "tensors": tensor_steps}[args.workload]
    result = {"workload": args.workload, "status": "ok", "steps": 0, "failed_step": None,
              "pairs_per_step": tensor_pairs(args.scale) if args.workload == "tensors" else None,
              "allocator_backend": torch.cuda.get_allocator_backend(),
              "alloc_conf": os.environ.get("PYTORCH_CUDA_ALLOC_CONF", "")}
    start = None
    try:
        with torch.inference_mode():
            steps, warm_up = make(args.scale, device)
            warm_up()
            torch.cuda.synchronize()
            start = time.perf_counter()
            result["pass_seconds"] = []
            for index in range(args.passes):
                # With --alternate-arena, odd passes run with the arena paused on this thread
                # (PyTorch allocates on it): their tensors come from CUDA's allocator.
                route = "cuda" if routes is not None and index % 2 else "arena"
                if route == "cuda":
                    routes.cudefrag_arena_pause()
                pass_start = time.perf_counter()
                for name, run in steps:
                    t0 = time.perf_counter()
                    run()
                    torch.cuda.synchronize()
                    result["steps"] += 1
                    result.setdefault("step_seconds", {}).setdefault(name, []).append(
                        round(time.perf_counter() - t0, 5))
                    print(f"workloads: {args.workload} step {name} ok "
                          f"{time.perf_counter() - t0:.3f} s "
                          f"allocated {torch.cuda.max_memory_allocated(device)} "
                          f"reserved {torch.cuda.max_memory_reserved(device)}", flush=True)
                result["pass_seconds"].append(round(time.perf_counter() - pass_start, 4))
                if routes is not None:
                    if route == "cuda":
                        routes.cudefrag_arena_resume()
                    result.setdefault("route_seconds", {"arena": [], "cuda": []})[route].append(
                        result["pass_seconds"][-1])
    except (torch.cuda.OutOfMemoryError, RuntimeError) as e:
        # Under PYTORCH_NO_CUDA_MEMORY_CACHING PyTorch checks cudaMalloc like any CUDA call: an
        # out-of-memory error arrives as a generic CUDA error (torch.AcceleratorError, a
        # RuntimeError) that says "out of memory". Any other error is not an outcome: re-raised.
        if not isinstance(e, torch.cuda.OutOfMemoryError) and not is_cuda_out_of_memory(e):
            raise
        result["status"] = "oom"
        result["failed_step"] = result["steps"]
        print(f"workloads: {args.workload} out of memory: {str(e).splitlines()[0]}", flush=True)
    result["seconds"] = round(time.perf_counter() - start, 4) if start is not None else None
    if "route_seconds" in result:
        result["arena_over_cuda"] = arena_over_cuda(result["route_seconds"])
    result["peak_allocated"] = torch.cuda.max_memory_allocated(device)
    result["peak_reserved"] = torch.cuda.max_memory_reserved(device)
    result["pool_reserved_high"], result["pool_used_high"] = pool_figures()
    torch.cuda.synchronize()
    result["reserved_at_end"] = allocator_held(device)
    result["process_used_at_end"] = process_device_memory()
    line = json.dumps(result, sort_keys=True)
    print(line, flush=True)
    if args.json_out:
        with open(args.json_out, "w") as f:
            f.write(line + "\n")
    return 0 if result["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
