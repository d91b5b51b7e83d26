#!/usr/bin/env python3
"""A few deterministic training steps of a small conv + attention model on CUDA, with checksums.

The shim must not change a single bit of what a program computes. This script trains a small model
(convolutions, hand-written attention, linear layers) for a few steps with a fixed seed and
deterministic algorithms, twice in the same process (the second run reuses the allocator's cached
memory), and prints float64 checksums of the losses, the gradients and the final weights.

It checks itself: both runs in the process must agree bit for bit, every value must be finite and
the loss must fall. With --compare FILE it also writes the checksums to FILE when FILE does not
exist, and otherwise compares with them (exit 1 on a difference), so that a run under
`cudefrag run` can be held against one without it.

Output lines the GPU check reads:
    train_step: allocator_backend=<native|cudaMallocAsync> alloc_conf=<PYTORCH_CUDA_ALLOC_CONF>
    train_step: peak_allocated_bytes=<n> peak_reserved_bytes=<n>
    train_step: checksum <name> <float64 repr>
    train_step: RESULT PASS|FAIL
"""

import argparse
import json
import math
import os
import sys

# cuBLAS needs this before its first handle is made to pick deterministic reductions.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import torch  # noqa: E402  (after the environment it reads)
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

PREFIX = "train_step:"


class Attention(nn.Module):
    """Single-head self-attention written out with matmuls: the fused kernels' backward passes
    are not all deterministic."""

    def __init__(self, dim):
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim)
        self.scale = 1.0 / math.sqrt(dim)

    def forward(self, x):
        q, k, v = self.qkv(self.norm(x)).chunk(3, dim=-1)
        weights = torch.softmax(q @ k.transpose(-2, -1) * self.scale, dim=-1)
        return x + self.out(weights @ v)


class SmallNet(nn.Module):
    def __init__(self, channels=32, dim=64, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.patch = nn.Conv2d(channels, dim, 4, stride=4)  # 64x64 -> 16x16 tokens
        self.blocks = nn.Sequential(Attention(dim), Attention(dim))
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.head = nn.Linear(dim, classes)

    def forward(self, images):
        x = F.relu(self.conv1(images))
        x = F.relu(self.conv2(x))
        x = self.patch(x).flatten(2).transpose(1, 2)  # (batch, tokens, dim)
        x = self.blocks(x)
        x = x + self.mlp(x)
        return self.head(x.mean(dim=1))


def train_once(steps, batch, device):
    """One seeded training run; returns {name: float} checksums."""
    torch.manual_seed(1234)
    torch.cuda.manual_seed_all(1234)
    model = SmallNet().to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    generator = torch.Generator(device="cpu").manual_seed(99)
    images = torch.randn(batch, 3, 64, 64, generator=generator).to(device)
    labels = torch.randint(0, 10, (batch,), generator=generator).to(device)

    sums = {}
    losses = []
    for step in range(steps):
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(images), labels)
        loss.backward()
        losses.append(loss.detach().double().item())
        grad_sum = sum(p.grad.double().sum().item() for p in model.parameters())
        grad_abs = sum(p.grad.double().abs().sum().item() for p in model.parameters())
        sums[f"step{step}.loss"] = losses[-1]
        sums[f"step{step}.grad_sum"] = grad_sum
        sums[f"step{step}.grad_abs_sum"] = grad_abs
        optimizer.step()
    sums["final.weight_sum"] = sum(p.detach().double().sum().item() for p in model.parameters())
    sums["final.weight_abs_sum"] = sum(
        p.detach().double().abs().sum().item() for p in model.parameters()
    )
    return sums, losses


def differences(a, b, rtol):
    """Names whose values differ (beyond rtol), with both values."""
    out = []
    for name in sorted(set(a) | set(b)):
        x, y = a.get(name), b.get(name)
        if x is None or y is None:
            out.append((name, x, y))
        elif x != y and abs(x - y) > rtol * max(abs(x), abs(y)):
            out.append((name, x, y))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--compare", metavar="FILE",
                        help="write checksums to FILE if absent, else compare with it")
    parser.add_argument("--rtol", type=float, default=0.0,
                        help="relative tolerance for --compare (default: bit-exact)")
    args = parser.parse_args()

    if not torch.cuda.is_available():
        print(f"{PREFIX} no CUDA device", flush=True)
        return 2
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.use_deterministic_algorithms(True, warn_only=True)
    device = torch.device("cuda", 0)

    print(f"{PREFIX} torch={torch.__version__} device={torch.cuda.get_device_name(device)}")
    print(f"{PREFIX} allocator_backend={torch.cuda.get_allocator_backend()} "
          f"alloc_conf={os.environ.get('PYTORCH_CUDA_ALLOC_CONF', '')}", flush=True)

    ok = True
    first, losses = train_once(args.steps, args.batch, device)
    second, _ = train_once(args.steps, args.batch, device)
    torch.cuda.synchronize()
    for name, value in first.items():
        print(f"{PREFIX} checksum {name} {value!r}")
    print(f"{PREFIX} peak_allocated_bytes={torch.cuda.max_memory_allocated(device)} "
          f"peak_reserved_bytes={torch.cuda.max_memory_reserved(device)}")

    if not all(math.isfinite(v) for v in first.values()):
        print(f"{PREFIX} error: a checksum is not finite")
        ok = False
    if not losses[-1] < losses[0]:
        print(f"{PREFIX} error: the loss did not fall ({losses[0]!r} -> {losses[-1]!r})")
        ok = False
    for name, x, y in differences(first, second, 0.0):
        print(f"{PREFIX} error: run 2 differs from run 1 at {name}: {x!r} != {y!r}")
        ok = False

    if args.compare:
        if os.path.exists(args.compare):
            with open(args.compare, encoding="utf-8") as f:
                reference = json.load(f)["checksums"]
            diffs = differences(reference, first, args.rtol)
            for name, x, y in diffs:
                print(f"{PREFIX} error: {name} differs from {args.compare}: {x!r} != {y!r}")
            print(f"{PREFIX} compare {args.compare}: {len(diffs)} of {len(first)} differ")
            ok = ok and not diffs
        else:
            with open(args.compare, "w", encoding="utf-8") as f:
                json.dump({"torch": torch.__version__,
                           "alloc_conf": os.environ.get("PYTORCH_CUDA_ALLOC_CONF", ""),
                           "checksums": first}, f, indent=1)
            print(f"{PREFIX} compare: wrote {args.compare}")

    print(f"{PREFIX} RESULT {'PASS' if ok else 'FAIL'}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
