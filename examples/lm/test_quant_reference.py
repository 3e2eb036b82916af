#!/usr/bin/python3
"""ctest lm_quant_reference (tests/lm.cmake): the eager reference quantizers of quant.py against
independent scalar transcriptions of DESIGN.md §1 in Python floats (float64), DESIGN's reference
values, and central finite differences of DSQ's smooth part. When the stableqat package can be
imported it also checks library == reference (quant.parity) for every method and bit width.
"""
from __future__ import annotations

import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

import quant  # noqa: E402

failures: list[str] = []


def check(ok: bool, what: str) -> None:
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        failures.append(what)


def rhe(x: float) -> float:
    return float(round(x))  # Python's round() is round-half-even


def scalar_lsq(x, s, qmin, qmax, g_of_r):
    """(y, dx/dy, step term) of one element, DESIGN.md §1."""
    v = x * (1.0 / s)
    n = rhe(v)
    inside = qmin <= v <= qmax
    return s * min(max(n, qmin), qmax), (g_of_r(v - n) if inside else 0.0), (n - v if inside else min(max(v, qmin), qmax))


def scalar_fourier(r, harmonics, amplitude):
    s = sum(amplitude * (-1) ** k / (2 * k + 1) * math.cos((2 * k + 1) * math.pi * r) for k in range(harmonics))
    c = math.sqrt(2) * math.pi
    return (1 - c * s) / (1 + c * s)


def scalar_seq(x, a):
    m, shift, clip = 2.0, 0.5, 0.99
    xa = x * (1.0 / a)
    t = min(max(xa, -clip), clip) * m - shift
    n = rhe(t)
    q = (n + shift) / m
    inside = abs(xa) <= clip
    return a * q, (1.0 if inside else 0.0), (q - xa if inside else math.copysign(1.0, x) * (m - shift) / m)


def dsq_soft(x, s, alpha):
    """DSQ's smooth level inside a cell, s * (floor(v) + 1/2 + phi/2): its x- and alpha-derivatives
    are what DSQ's backward returns (finite-difference target)."""
    v = x / s
    fl = math.floor(v)
    d = v - (fl + 0.5)
    phi = math.tanh(math.log(2 / alpha - 1) * d) / (1 - alpha)
    return s * (fl + 0.5 + 0.5 * phi)


def main() -> int:
    torch.set_num_threads(1)
    # DESIGN.md §1 reference values of the K=1, A=0.21 surrogate.
    r = torch.tensor([0.0, 0.25, 0.5], dtype=torch.float64)
    g = quant.fourier_g(r, 1, 0.21)
    for got, want in zip(g.tolist(), [0.0346582, 0.205012, 1.0]):
        check(abs(got - want) < 5e-7, f"fourier g = {got:.7f} (DESIGN {want})")
    n = 400000
    grid = (torch.arange(n, dtype=torch.float64) + 0.5) / n - 0.5      # midpoint rule over one period
    mean = float(quant.fourier_g(grid, 1, 0.21).mean())
    check(abs(mean - quant.STABLEQAT_K1_MEAN) < 2e-6, f"mean of g over a period {mean:.6f} == 0.302457")

    gen = torch.Generator().manual_seed(7)
    w = torch.randn(5, 33, generator=gen, dtype=torch.float64) * 0.1
    w[0, :4] = torch.tensor([0.0, -0.0, 1e3, -1e3], dtype=torch.float64)   # zeros and far outside the grid
    dy = torch.randn(5, 33, generator=gen, dtype=torch.float64)

    for method, bits in [(m, b) for m in ("lsq", "stableqat", "stableqat_k2", "ste030") for b in (2, 3, 4)] + \
                        [("paretoq", 2), ("stableqat_seq", 2)]:
        spec = quant.resolve_spec(method, bits)
        step = quant.init_step(spec, w) * 0.7       # pushes some weights out of the band
        wt, st = w.clone().requires_grad_(True), step.clone().requires_grad_(True)
        y = quant.reference_fake_quantize(spec, wt, st)
        y.backward(dy)
        gs = 1.0 / math.sqrt(w.numel() * max(spec.qmax, 1))
        worst = 0.0
        for i in range(w.shape[0]):
            ds = 0.0
            for j in range(w.shape[1]):
                x, s = float(w[i, j]), float(step[i])
                if spec.grid == "stretched_elastic":
                    yy, inside, term = scalar_seq(x, s)
                    rr = min(max(x / s, -0.99), 0.99) * 2 - 0.5
                    rr -= rhe(rr)
                    gg = inside * (scalar_fourier(rr, 1, 0.21) if spec.estimator == "stableqat" else 1.0)
                else:
                    def g_of_r(rr):
                        return scalar_fourier(rr, spec.harmonics, spec.amplitude) if spec.estimator == "stableqat" \
                            else spec.dx_scale
                    yy, gg, term = scalar_lsq(x, s, spec.qmin, spec.qmax, g_of_r)
                ds += float(dy[i, j]) * term
                worst = max(worst, abs(yy - float(y[i, j])), abs(gg * float(dy[i, j]) - float(wt.grad[i, j])))
            worst = max(worst, abs(gs * ds - float(st.grad[i])) / max(1.0, abs(gs * ds)))
        check(worst < 1e-9, f"{method} {bits}-bit: y, dx, dstep == scalar transcription (max err {worst:.2e})")

    # SEQ 2-bit levels are +-1/4, +-3/4 of alpha.
    spec = quant.resolve_spec("paretoq", 2)
    a = torch.ones(1, dtype=torch.float64)
    xs = torch.tensor([[-2.0, -0.6, -0.4, -0.01, 0.01, 0.4, 0.6, 2.0]], dtype=torch.float64)
    got = quant.reference_fake_quantize(spec, xs, a).tolist()[0]
    check(got == [-0.75, -0.75, -0.25, -0.25, 0.25, 0.25, 0.75, 0.75], f"SEQ 2-bit levels {got}")

    # DSQ: levels (ties go down), band, dx and d alpha against finite differences of the smooth part.
    spec = quant.resolve_spec("dsq", 2)
    s, alpha = 0.1, 0.2
    xs = torch.tensor([[-0.26, -0.25, -0.149, -0.05, 0.0, 0.05, 0.0501, 0.149, 0.151, 0.2]], dtype=torch.float64)
    st = torch.full((1,), s, dtype=torch.float64, requires_grad=True)
    al = torch.tensor(alpha, dtype=torch.float64, requires_grad=True)
    xt = xs.clone().requires_grad_(True)
    y = quant.reference_fake_quantize(spec, xt, st, al)
    y.backward(torch.ones_like(y))
    levels = [round(v / s) for v in y.tolist()[0]]
    # v = -2.6 -2.5 -1.49 -0.5 0 0.5 0.501 1.49 1.51 2: floor + (frac > 1/2), clamped to [-2, 1]
    check(levels == [-2, -2, -1, -1, 0, 0, 1, 1, 1, 1], f"DSQ levels {levels}")
    h, da_fd = 1e-6, 0.0
    for j, x in enumerate(xs.tolist()[0]):
        v = x / s
        inside = spec.qmin - 0.5 < v <= spec.qmax + 0.5
        fd = (dsq_soft(x + h, s, alpha) - dsq_soft(x - h, s, alpha)) / (2 * h) if inside else 0.0
        if inside:
            da_fd += (dsq_soft(x, s, alpha + h) - dsq_soft(x, s, alpha - h)) / (2 * h)
        check(abs(fd - float(xt.grad[0, j])) < 1e-5 * max(1.0, abs(fd)), f"DSQ dx at v={v:+.3f}: {float(xt.grad[0, j]):.6f} vs FD {fd:.6f}")
    check(abs(da_fd - float(al.grad)) < 1e-6 * max(1.0, abs(da_fd)), f"DSQ d alpha {float(al.grad):.8f} vs FD {da_fd:.8f}")
    # mean of g over a period is 1 (DESIGN.md §1); g(d) = scale k sech^2(k d) / 2, d in [-1/2, 1/2)
    k = math.log(2 / alpha - 1)
    dd = (torch.arange(n, dtype=torch.float64) + 0.5) / n - 0.5
    gmean = float((0.5 / (1 - alpha) * k / torch.cosh(k * dd) ** 2).mean())
    check(abs(gmean - 1.0) < 1e-9, f"DSQ mean g over a period {gmean:.6f} == 1")

    # STE x 0.30: dx = 0.302457 dy inside, step gradient identical to STE's.
    w32, dy32 = w.float(), dy.float()
    grads = {}
    for method in ("lsq", "ste030"):
        spec = quant.resolve_spec(method, 3)
        wt, st = w32.clone().requires_grad_(True), quant.init_step(spec, w32).requires_grad_(True)
        quant.reference_fake_quantize(spec, wt, st).backward(dy32)
        grads[method] = (wt.grad, st.grad)
    check(torch.equal(grads["lsq"][1], grads["ste030"][1]), "STE x 0.30: step gradient == STE's")
    check(torch.allclose(grads["ste030"][0], grads["lsq"][0] * quant.STABLEQAT_K1_MEAN, rtol=1e-6, atol=0),
          "STE x 0.30: dx == 0.302457 x STE's dx")

    # Library parity, whenever the package imports (it must run every method: DSQ and SEQ included).
    ok, why = quant.library_status(quant.resolve_spec("lsq", 2))
    if ok:
        for method in quant.METHODS:
            for bits in (2, 3, 4):
                try:
                    spec = quant.resolve_spec(method, bits)
                except ValueError:
                    continue
                okm, whym = quant.library_status(spec)
                check(okm, f"the stableqat package runs {method} {bits}-bit" + ("" if okm else f": {whym[:200]}"))
                if not okm:
                    continue
                err = quant.parity(spec)
                # forward bit-identical; dx within float rounding of the surrogate (|dy| <= ~4 here);
                # summed gradients within float summation error
                tol = {"y": 0.0, "dx": 4e-6, "dstep": 1e-5, "dalpha": 1e-4}
                check(all(err[k] <= tol[k] for k in err), f"library == reference, {method} {bits}-bit: {err}")
    else:
        print(f"library parity: skipped ({why})")
    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
