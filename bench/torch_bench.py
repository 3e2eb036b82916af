"""make bench-torch: one forward+backward call of the op library against ATen and the eager paper formula.

Medians of wall-clock repetitions (time.perf_counter), not Google Benchmark:
the comparison is with torch's own kernels, called the way a PyTorch user calls
them (autograd included). Usage:
    PYTHONPATH=python /usr/bin/python3 bench/torch_bench.py [--reps 5] [--size 4096]
"""

import argparse
import math
import os
import platform
import statistics
import time

import torch

import stableqat

BITS = 2
QMIN, QMAX = -2, 1
C = math.sqrt(2) * math.pi


class PaperEq10(torch.autograd.Function):
    """The paper's surrogate as the official code writes it: eager tensor ops (per-row step)."""

    @staticmethod
    def forward(ctx, w, s, amplitude):
        ctx.save_for_backward(w, s)
        ctx.amplitude = amplitude
        return torch.clamp(torch.round(w / s), QMIN, QMAX) * s

    @staticmethod
    def backward(ctx, dy):
        w, s = ctx.saved_tensors
        v = w / s
        n = torch.round(v)
        inside = (v >= QMIN) & (v <= QMAX)
        S = ctx.amplitude * torch.cos(math.pi * (v + n))
        g = (1 - C * S) / (1 + C * S)
        dw = torch.where(inside, g * dy, torch.zeros_like(dy))
        grad_scale = 1.0 / math.sqrt(w.numel() * max(QMAX, 1))
        ds = (dy * torch.where(inside, n - v, torch.clamp(v, QMIN, QMAX))).sum(1, keepdim=True) * grad_scale
        return dw, ds, None


def median_time(fn, reps):
    fn()  # warm-up
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cases(rows, cols, dtype=torch.float32):
    """Calls on a [rows, cols] weight of `dtype`; bfloat16: x and dy bfloat16, the op's step float32
    (computed in float, y and dx rounded to bfloat16), the eager formula all in bfloat16 (as a
    bfloat16 model runs it); ATen's learnable fake quant has no bfloat16 CPU kernel (torch 1.13)."""
    g = torch.Generator().manual_seed(0)
    w = (torch.randn(rows, cols, generator=g) * 0.02).to(dtype)
    dy = torch.randn(rows, cols, generator=g).to(dtype)
    s = (w.float().abs().amax(1) / QMAX).contiguous()

    def ours(estimator, band="official"):
        x = w.clone().requires_grad_()
        step = s.clone().requires_grad_()

        def run():
            x.grad = None
            step.grad = None
            stableqat.fake_quantize(x, step, BITS, axis=0, estimator=estimator, mask_band=band).backward(dy)
        return run

    def aten():
        x = w.clone().requires_grad_()
        scale = s.clone().requires_grad_()
        zp = torch.zeros(rows, requires_grad=True)
        factor = 1.0 / math.sqrt(w.numel() * max(QMAX, 1))

        def run():
            x.grad = scale.grad = zp.grad = None
            torch._fake_quantize_learnable_per_channel_affine(x, scale, zp, 0, QMIN, QMAX, factor).backward(dy)
        return run

    def paper():
        x = w.clone().requires_grad_()
        step = s.reshape(-1, 1).to(dtype).clone().requires_grad_()

        def run():
            x.grad = step.grad = None
            PaperEq10.apply(x, step, 0.21).backward(dy)
        return run

    if dtype != torch.float32:
        return {"stableqat op (StableQAT K=1)": ours("stableqat"), "stableqat op (STE, ATen band)": ours("ste", "aten"),
                "eager paper Eq. 10": paper()}
    return {"stableqat op (StableQAT K=1)": ours("stableqat"), "stableqat op (STE, ATen band)": ours("ste", "aten"),
            "ATen learnable per-channel": aten(), "eager paper Eq. 10": paper()}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--size", type=int, default=4096, help="rows = cols of the big weight (4096: 16M)")
    args = parser.parse_args()
    all_threads = os.cpu_count() or 1
    print(f"# {time.strftime('%Y-%m-%d %H:%M')} {platform.processor() or platform.machine()} "
          f"cpus={all_threads} torch={torch.__version__} kernels={stableqat.kernel_arch()} "
          f"library={stableqat.library_path()}")
    print("| size | dtype | threads | call (forward+backward) | median ms | vs stableqat op |")
    print("|---|---|---|---|---|---|")
    runs = ((args.size, args.size, args.reps, torch.float32), (args.size, args.size, args.reps, torch.bfloat16),
            (64, 64, 200, torch.float32))
    for rows, cols, reps, dtype in runs:
        for threads in sorted({1, all_threads}):
            torch.set_num_threads(threads)
            results = {name: median_time(fn, reps) for name, fn in cases(rows, cols, dtype).items()}
            base = results["stableqat op (StableQAT K=1)"]
            for name, t in results.items():
                unit = f"{t * 1e3:.3f}" if rows * cols > 1e5 else f"{t * 1e6:.1f} us"
                print(f"| {rows}x{cols} | {str(dtype).replace('torch.', '')} | {threads} | {name} | {unit} | "
                      f"{t / base:.2f}x |")


if __name__ == "__main__":
    main()
