"""The seam between the LM experiment and the quantizer implementations.

Everything the experiment needs from a quantizer goes through this module:

    quantizer = make_quantizer("stableqat", bits=2, impl="library")   # or "reference", "auto"
    changed = quantize_model(model, quantizer)    # swaps the blocks' nn.Linear for QuantLinear
    ...train...; post_step(model)                 # keeps steps > 0 and DSQ alpha in (0, 1)

Two implementations of one fake-quantize call `fq(w, step, alpha) -> y` exist:
  * "library": `stableqat.fake_quantize(...)` of the package python/stableqat (issues 14 and 12),
    found through PYTHONPATH, called with the keyword contract of DESIGN.md §3;
  * "eager-reference": torch.autograd.Functions below, a transcription of DESIGN.md §1 in
    eager torch ops (float32, the reciprocal of the step computed once per row).
Both are driven by the same QuantLinear (same parameters, same state_dict, same step
initialisation), so a checkpoint, an experiment protocol and a parity check are shared, and every
report row names the implementation that produced it (`Quantizer.impl`).

Methods (spec per bit width; "ParetoQ" is ParetoQ's recipe: SEQ at 2 bits, LSQ at 3-4):
  lsq           signed grid, STE, LSQ step term
  paretoq       2 bits: stretched elastic grid (SEQ) + STE; 3-4 bits: identical to lsq
  dsq           signed grid, DSQ surrogate with a learnable alpha per layer (init 0.2)
  stableqat     signed grid, rotated Fourier surrogate K=1, A=0.21 (paper default)
  stableqat_k2  same with K=2 harmonics, A=0.21
  stableqat_seq 2 bits: SEQ + the K=1 surrogate (StableQAT on ParetoQ's grid)
  ste030        control: g(r) = 0.302457 (the K=1 surrogate's mean), LSQ step term unchanged
Step initialisation per output row, as the official repository: max|w_row|/qmax on the signed
grid (qmax = 1 at 2 bits, i.e. max|w_row|), alpha = max|w_row| on SEQ.
"""
from __future__ import annotations

import importlib
import math
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn as nn
import torch.nn.functional as F

FOURIER_C = math.sqrt(2.0) * math.pi
PAPER_AMPLITUDE = 0.21
STABLEQAT_K1_MEAN = 0.302457      # mean of g over a period for K=1, A=0.21 (DESIGN.md §1)
DSQ_ALPHA_INIT = 0.2
DSQ_ALPHA_RANGE = (1e-3, 1.0 - 1e-3)   # AdamW may push alpha out of (0, 1); it is clamped after each step
STEP_FLOOR = 1e-5   # steps stay >= this after each optimiser step (the library rejects steps <= 0)
SEQ_CLIP = 0.99

METHODS = ("lsq", "paretoq", "dsq", "stableqat", "stableqat_k2", "stableqat_seq", "ste030")
METHOD_LABELS = {
    "fp": "full precision (no QAT)",
    "lsq": "STE/LSQ",
    "paretoq": "ParetoQ (SEQ@2b, LSQ@3-4b)",
    "dsq": "DSQ (learnable alpha)",
    "stableqat": "StableQAT K=1 A=0.21",
    "stableqat_k2": "StableQAT K=2 A=0.21",
    "stableqat_seq": "StableQAT K=1 on SEQ",
    "ste030": "STE x 0.30 (control)",
}


class LibraryUnavailable(RuntimeError):
    """--impl library was asked for but the stableqat package cannot run this method."""


@dataclass(frozen=True)
class QuantSpec:
    """What one quantized linear layer computes (independent of the implementation)."""

    method: str
    bits: int
    grid: str = "signed"            # "signed" | "stretched_elastic"
    estimator: str = "ste"          # "ste" | "stableqat" | "dsq"
    harmonics: int = 0
    amplitude: float = 0.0
    dx_scale: float = 1.0           # STE x c control: dx = c * dy inside the band

    @property
    def qmin(self) -> int:
        return -(1 << (self.bits - 1))

    @property
    def qmax(self) -> int:
        return (1 << (self.bits - 1)) - 1

    @property
    def levels(self) -> int:
        return 1 << self.bits

    def key(self) -> tuple:
        """Two methods with the same key train identically (e.g. paretoq and lsq at 3-4 bits)."""
        return (self.bits, self.grid, self.estimator, self.harmonics, self.amplitude, self.dx_scale)

    def to_dict(self) -> dict:
        return asdict(self)


def resolve_spec(method: str, bits: int) -> QuantSpec:
    """The QuantSpec of a method at a bit width; ValueError names a bad argument."""
    if bits not in (2, 3, 4):
        raise ValueError(f"bits must be 2, 3 or 4, got {bits}")
    if method == "lsq":
        return QuantSpec(method, bits)
    if method == "paretoq":
        return QuantSpec(method, bits, grid="stretched_elastic") if bits == 2 else QuantSpec(method, bits)
    if method == "dsq":
        return QuantSpec(method, bits, estimator="dsq")
    if method == "stableqat":
        return QuantSpec(method, bits, estimator="stableqat", harmonics=1, amplitude=PAPER_AMPLITUDE)
    if method == "stableqat_k2":
        return QuantSpec(method, bits, estimator="stableqat", harmonics=2, amplitude=PAPER_AMPLITUDE)
    if method == "stableqat_seq":
        if bits != 2:
            raise ValueError("method stableqat_seq exists at bits=2 only (SEQ is a 2-bit/ternary grid)")
        return QuantSpec(method, bits, grid="stretched_elastic", estimator="stableqat", harmonics=1,
                         amplitude=PAPER_AMPLITUDE)
    if method == "ste030":
        return QuantSpec(method, bits, dx_scale=STABLEQAT_K1_MEAN)
    raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")


def grad_scale(spec: QuantSpec, numel: int) -> float:
    """LSQ's 1/sqrt(numel * max(qmax, 1)) over the whole matrix (also per row, as the official
    code); for SEQ 1/sqrt(numel * max(2^(bits-1) - 1, 1)), the same number at 2 bits."""
    return 1.0 / math.sqrt(numel * max(spec.qmax, 1))


@torch.no_grad()
def init_step(spec: QuantSpec, weight: torch.Tensor) -> torch.Tensor:
    """Per-row step as the official repository: max|w_row| / qmax on the signed grid
    (max|w_row| at 2 bits, where qmax = 1), max|w_row| (SEQ's alpha) on the stretched elastic grid.
    An all-zero row gets a tiny positive step instead of 0."""
    row_max = weight.detach().abs().amax(dim=1).clamp_min(1e-8)
    return row_max.clone() if spec.grid == "stretched_elastic" else row_max / spec.qmax


# ---------------------------------------------------------------------------------------------
# Eager reference (DESIGN.md §1, transcribed with torch ops)
# ---------------------------------------------------------------------------------------------

def fourier_g(r: torch.Tensor, harmonics: int, amplitude: float) -> torch.Tensor:
    """StableQAT's rotated Fourier surrogate g(r) = (1 - c S)/(1 + c S), c = sqrt2 pi,
    S = sum_{k<K} a_k cos((2k+1) pi r), a_k = A (-1)^k/(2k+1)."""
    s = torch.zeros_like(r)
    for k in range(harmonics):
        s = s + (amplitude * (-1.0) ** k / (2 * k + 1)) * torch.cos((2 * k + 1) * math.pi * r)
    cs = FOURIER_C * s
    return (1.0 - cs) / (1.0 + cs)


def _surrogate(spec: QuantSpec, r: torch.Tensor) -> torch.Tensor:
    if spec.estimator == "stableqat":
        return fourier_g(r, spec.harmonics, spec.amplitude)
    if spec.estimator == "ste":
        return torch.full_like(r, spec.dx_scale)
    raise ValueError(f"no residual surrogate for estimator {spec.estimator!r}")


class _UniformGridFQ(torch.autograd.Function):
    """Signed integer grid with a residual surrogate (STE, Fourier, STE x c) and LSQ's step term."""

    @staticmethod
    def forward(ctx, w, step, spec, gscale):
        s = step.view(-1, 1)
        v = w * torch.reciprocal(s)
        n = torch.round(v)
        ctx.save_for_backward(w, step)
        ctx.spec, ctx.gscale = spec, gscale
        return s * n.clamp(spec.qmin, spec.qmax)

    @staticmethod
    def backward(ctx, dy):
        w, step = ctx.saved_tensors
        spec = ctx.spec
        v = w * torch.reciprocal(step.view(-1, 1))
        n = torch.round(v)
        inside = (v >= spec.qmin) & (v <= spec.qmax)
        g = _surrogate(spec, v - n)
        dx = torch.where(inside, g * dy, torch.zeros_like(dy))
        term = torch.where(inside, n - v, v.clamp(spec.qmin, spec.qmax))
        dstep = ctx.gscale * (dy * term).sum(dim=1)
        return dx, dstep, None, None


class _StretchedElasticFQ(torch.autograd.Function):
    """ParetoQ's stretched elastic grid (2 bits: m = 2, shift = 1/2; levels +-1/4, +-3/4 of alpha)."""

    M, SHIFT = 2.0, 0.5

    @staticmethod
    def forward(ctx, w, alpha, spec, gscale):
        m, shift = _StretchedElasticFQ.M, _StretchedElasticFQ.SHIFT
        a = alpha.view(-1, 1)
        u = (w * torch.reciprocal(a)).clamp(-SEQ_CLIP, SEQ_CLIP)
        q = (torch.round(u * m - shift) + shift) / m
        ctx.save_for_backward(w, alpha)
        ctx.spec, ctx.gscale = spec, gscale
        return a * q

    @staticmethod
    def backward(ctx, dy):
        m, shift = _StretchedElasticFQ.M, _StretchedElasticFQ.SHIFT
        w, alpha = ctx.saved_tensors
        xa = w * torch.reciprocal(alpha.view(-1, 1))
        t = xa.clamp(-SEQ_CLIP, SEQ_CLIP) * m - shift
        n = torch.round(t)
        q = (n + shift) / m
        inside = xa.abs() <= SEQ_CLIP
        g = _surrogate(ctx.spec, t - n)
        dx = torch.where(inside, g * dy, torch.zeros_like(dy))
        term = torch.where(inside, q - xa, torch.sign(w) * ((m - shift) / m))
        dalpha = ctx.gscale * (dy * term).sum(dim=1)
        return dx, dalpha, None, None


class _DSQFQ(torch.autograd.Function):
    """DSQ on the signed grid: level floor(v) + (phi > 0), g = scale k sech^2(k d) / 2, consistent
    step term level - v g, and the gradient of the learnable alpha (no grad_scale on alpha)."""

    @staticmethod
    def _parts(w, step, alpha):
        v = w * torch.reciprocal(step.view(-1, 1))
        fl = torch.floor(v)
        d = v - (fl + 0.5)
        scale = 1.0 / (1.0 - alpha)
        k = torch.log(2.0 / alpha - 1.0)
        th = torch.tanh(k * d)
        return v, fl, d, scale, k, th

    @staticmethod
    def forward(ctx, w, step, alpha, spec, gscale):
        v, fl, d, scale, k, th = _DSQFQ._parts(w, step, alpha)
        level = (fl + (scale * th > 0).to(w.dtype)).clamp(spec.qmin, spec.qmax)
        ctx.save_for_backward(w, step, alpha)
        ctx.spec, ctx.gscale = spec, gscale
        return step.view(-1, 1) * level

    @staticmethod
    def backward(ctx, dy):
        w, step, alpha = ctx.saved_tensors
        spec = ctx.spec
        v, fl, d, scale, k, th = _DSQFQ._parts(w, step, alpha)
        level = (fl + (scale * th > 0).to(w.dtype)).clamp(spec.qmin, spec.qmax)
        inside = (v > spec.qmin - 0.5) & (v <= spec.qmax + 0.5)
        sech2 = 1.0 - th * th
        g = 0.5 * scale * k * sech2
        zero = torch.zeros_like(dy)
        dx = torch.where(inside, g * dy, zero)
        dstep = ctx.gscale * (dy * torch.where(inside, level - v * g, level)).sum(dim=1)
        dphi = th / (1.0 - alpha) ** 2 - scale * sech2 * d * (2.0 / (alpha * (2.0 - alpha)))
        dalpha = torch.where(inside, dy * step.view(-1, 1) * 0.5 * dphi, zero).sum().reshape(alpha.shape)
        return dx, dstep, dalpha, None, None


def reference_fake_quantize(spec: QuantSpec, w: torch.Tensor, step: torch.Tensor,
                            alpha: torch.Tensor | None = None) -> torch.Tensor:
    """Per-row fake quantization of a [out, in] weight with one step (or SEQ alpha) per row."""
    gs = grad_scale(spec, w.numel())
    if spec.estimator == "dsq":
        if spec.grid != "signed":
            raise ValueError("DSQ is defined on the signed grid only")
        return _DSQFQ.apply(w, step, alpha, spec, gs)
    if spec.grid == "stretched_elastic":
        return _StretchedElasticFQ.apply(w, step, spec, gs)
    return _UniformGridFQ.apply(w, step, spec, gs)


# ---------------------------------------------------------------------------------------------
# Library (python/stableqat, issues 14 and 12), called with DESIGN.md §3's keywords
# ---------------------------------------------------------------------------------------------

class _ScaleGrad(torch.autograd.Function):
    """Identity forward, dx = c * dy: turns the library's STE into the STE x c control without
    touching its step term (the step gradient does not flow through x)."""

    @staticmethod
    def forward(ctx, x, c):
        ctx.c = c
        return x.view_as(x)

    @staticmethod
    def backward(ctx, dy):
        return dy * ctx.c, None


def _import_library():
    try:
        return importlib.import_module("stableqat"), None
    except Exception as error:  # ImportError, or the op library failing to load
        return None, f"`import stableqat` failed ({type(error).__name__}: {error}); build the PyTorch adapter " \
                     f"(issue 14, `make test`) and put the repository's python/ on PYTHONPATH"


def library_kwargs(spec: QuantSpec, numel: int) -> dict:
    """The keyword arguments of stableqat.fake_quantize for a spec (DESIGN.md §3)."""
    # axis=0: one step per row of dim 0 (the adapter's per-channel layout); grad_scale is passed
    # explicitly so both implementations use the same number by construction.
    kw = {"bits": spec.bits, "axis": 0, "grad_scale": grad_scale(spec, numel),
          "grid": "stretched_elastic" if spec.grid == "stretched_elastic" else "signed"}
    if spec.estimator == "stableqat":
        kw.update(estimator="stableqat", harmonics=spec.harmonics, amplitude=spec.amplitude)
    else:
        kw["estimator"] = spec.estimator    # "ste" (also for the x c control) or "dsq"
    return kw


def library_fake_quantize(lib, spec: QuantSpec, w: torch.Tensor, step: torch.Tensor,
                          alpha: torch.Tensor | None = None) -> torch.Tensor:
    kw = library_kwargs(spec, w.numel())
    if spec.estimator == "dsq":
        kw["alpha"] = alpha
    x = _ScaleGrad.apply(w, spec.dx_scale) if spec.dx_scale != 1.0 else w
    return lib.fake_quantize(x, step, **kw)


def _probe_tensors(spec: QuantSpec, seed: int = 1234):
    g = torch.Generator().manual_seed(seed)
    w = (torch.randn(6, 40, generator=g) * 0.05).requires_grad_(True)
    step = init_step(spec, w).requires_grad_(True)
    alpha = torch.tensor(DSQ_ALPHA_INIT, requires_grad=True) if spec.estimator == "dsq" else None
    dy = torch.randn(6, 40, generator=g)
    return w, step, alpha, dy


def _forward_backward(fq, spec: QuantSpec, seed: int = 1234) -> dict:
    with torch.enable_grad():   # the probe may be called under no_grad (e.g. the no-QAT baseline)
        w, step, alpha, dy = _probe_tensors(spec, seed)
        y = fq(spec, w, step, alpha)
        y.backward(dy)
    out = {"y": y.detach(), "dx": w.grad, "dstep": step.grad}
    if alpha is not None:
        out["dalpha"] = alpha.grad
    return out


def library_status(spec: QuantSpec) -> tuple[bool, str]:
    """(True, version) if the stableqat package runs this spec forward and backward with finite
    results, else (False, reason)."""
    lib, reason = _import_library()
    if lib is None:
        return False, reason
    if not hasattr(lib, "fake_quantize"):
        return False, "the stableqat package has no fake_quantize (issue 14)"
    try:
        out = _forward_backward(lambda s, w, st, a: library_fake_quantize(lib, s, w, st, a), spec)
    except Exception as error:
        return False, (f"stableqat.fake_quantize does not run method {spec.method} at {spec.bits} bits "
                       f"({type(error).__name__}: {error}); kwargs {library_kwargs(spec, 240)}")
    bad = [k for k, t in out.items() if t is None or not torch.isfinite(t).all()]
    if bad:
        return False, f"stableqat.fake_quantize returned missing or non-finite {', '.join(bad)} for {spec.method}"
    return True, str(getattr(lib, "__version__", "unknown version"))


def parity(spec: QuantSpec, seeds=(1234, 99)) -> dict:
    """Largest |library - reference| of y, dx, dstep (and dalpha) on small random weights: the
    library must agree with this transcription of DESIGN.md §1 (run by the tests once it exists)."""
    lib, reason = _import_library()
    if lib is None:
        raise LibraryUnavailable(reason)
    worst: dict[str, float] = {}
    for seed in seeds:
        ref = _forward_backward(reference_fake_quantize, spec, seed)
        got = _forward_backward(lambda s, w, st, a: library_fake_quantize(lib, s, w, st, a), spec, seed)
        for key in ref:
            worst[key] = max(worst.get(key, 0.0), float((ref[key] - got[key]).abs().max()))
    return worst


# ---------------------------------------------------------------------------------------------
# The quantizer object and the model surgery
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Quantizer:
    spec: QuantSpec
    impl: str                # "library" | "eager-reference"
    detail: str = ""         # library version, or why the reference was chosen

    def fake_quantize(self, w, step, alpha=None):
        if self.impl == "library":
            lib, reason = _import_library()
            if lib is None:
                raise LibraryUnavailable(reason)
            return library_fake_quantize(lib, self.spec, w, step, alpha)
        return reference_fake_quantize(self.spec, w, step, alpha)


def make_quantizer(method: str, bits: int, impl: str = "library") -> Quantizer:
    """impl="library": the stableqat package, LibraryUnavailable (with the reason) if it cannot run
    the method; impl="reference": the eager transcription; impl="auto": the library when it runs
    the method, else the reference (the reason is kept in Quantizer.detail)."""
    spec = resolve_spec(method, bits)
    if impl == "reference":
        return Quantizer(spec, "eager-reference", "requested")
    if impl not in ("library", "auto"):
        raise ValueError(f"impl must be library, reference or auto, got {impl!r}")
    ok, detail = library_status(spec)
    if ok:
        return Quantizer(spec, "library", detail)
    if impl == "library":
        raise LibraryUnavailable(f"--impl library: {detail}. Use --impl reference for the eager "
                                 f"transcription (not the experiment's implementation).")
    return Quantizer(spec, "eager-reference", detail)


class QuantLinear(nn.Module):
    """nn.Linear whose weight is fake-quantized per output row on every forward.
    Parameters: weight, bias, step [out] (SEQ: alpha per row), and for DSQ a scalar dsq_alpha."""

    def __init__(self, linear: nn.Linear, quantizer: Quantizer):
        super().__init__()
        self.quantizer = quantizer
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight = linear.weight
        self.bias = linear.bias
        self.step = nn.Parameter(init_step(quantizer.spec, linear.weight))
        if quantizer.spec.estimator == "dsq":
            self.dsq_alpha = nn.Parameter(torch.tensor(DSQ_ALPHA_INIT, dtype=linear.weight.dtype))
        else:
            self.register_parameter("dsq_alpha", None)

    def quantized_weight(self) -> torch.Tensor:
        return self.quantizer.fake_quantize(self.weight, self.step, self.dsq_alpha)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.quantized_weight(), self.bias)

    def extra_repr(self) -> str:
        s = self.quantizer.spec
        return (f"{self.in_features}, {self.out_features}, bits={s.bits}, grid={s.grid}, estimator={s.estimator}"
                f"{f', K={s.harmonics}, A={s.amplitude}' if s.estimator == 'stableqat' else ''}"
                f"{f', dx_scale={s.dx_scale}' if s.dx_scale != 1.0 else ''}, impl={self.quantizer.impl}")


def quantize_model(model: nn.Module, quantizer: Quantizer, targets: list[str]) -> list[str]:
    """Replaces each nn.Linear named in `targets` by a QuantLinear (sharing its weight and bias
    Parameters) and returns the names it replaced."""
    changed = []
    for name in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        module = getattr(parent, child)
        if not isinstance(module, nn.Linear):
            raise ValueError(f"target {name} is a {type(module).__name__}, not an nn.Linear")
        setattr(parent, child, QuantLinear(module, quantizer))
        changed.append(name)
    return changed


def quant_layers(model: nn.Module) -> list[tuple[str, QuantLinear]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, QuantLinear)]


@torch.no_grad()
def post_step(model: nn.Module) -> int:
    """After each optimiser step: steps >= STEP_FLOOR and DSQ alpha inside DSQ_ALPHA_RANGE
    (AdamW can push either outside the domain where the quantizer is defined). Returns how
    many values had to be clamped (reported per run; 0 in a healthy run)."""
    clamped = 0
    for _, m in quant_layers(model):
        low = m.step < STEP_FLOOR
        if bool(low.any()):
            clamped += int(low.sum())
            m.step.clamp_(min=STEP_FLOOR)
        if m.dsq_alpha is not None:
            lo, hi = DSQ_ALPHA_RANGE
            if not lo <= float(m.dsq_alpha) <= hi:
                clamped += 1
                m.dsq_alpha.clamp_(lo, hi)
    return clamped


@torch.no_grad()
def max_distinct_per_row(model: nn.Module) -> int:
    """The largest number of distinct values in one row of any quantized weight."""
    worst = 0
    for _, m in quant_layers(model):
        wq = m.quantized_weight()
        for row in wq:
            worst = max(worst, int(torch.unique(row).numel()))
    return worst


def with_method(spec: QuantSpec, method: str) -> QuantSpec:
    return replace(spec, method=method)
