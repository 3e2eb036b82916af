"""stableqat.fake_quantize and friends: thin, autograd-aware wrappers over torch.ops.stableqat.

Every function validates only what the op schema cannot express (keyword
combinations); values are checked by the op library, which raises
ValueError (bad value, naming the argument) or RuntimeError (dtype, device)
before writing anything.

Estimators (the gradient of round(); DESIGN.md section 1):
  'ste'        g = 1.
  'stableqat'  rotated Fourier surrogate: harmonics K = 1..3, amplitude A (default 0.21) or K coefficients.
  'dsq'        DSQ: alpha, a 1-element tensor in (0, 1) (learnable; backward returns d alpha),
               its own forward level (ties down), band qmin - 1/2 < v <= qmax + 1/2 and step term.
               Uniform grids only.
  'ewgs'       EWGS: delta >= 0 (required; < 2), g = 1 + delta sign(dy) r. delta = 0 is 'ste' bit for bit.
Grids: 'signed' (bits 1..16, bits 1 = sign), 'unsigned', 'ternary' (bits=2), and ParetoQ's stretched
elastic grid 'stretched_elastic' (bits=2: levels +-1/4, +-3/4 of the step) and
'stretched_elastic_ternary' (bits=2: levels 0, +-2/3), clip |x/s| <= 0.99, with 'ste', 'stableqat', 'ewgs'.
"""

from typing import List, Optional, Sequence

import torch

from . import _library

_library.load()

#: The estimators of the op library.
ESTIMATORS = ("ste", "stableqat", "dsq", "ewgs")
#: The grids of the op library (the stretched elastic ones: ParetoQ's SEQ, bits=2).
GRIDS = ("signed", "unsigned", "ternary", "stretched_elastic", "stretched_elastic_ternary")
#: Who receives a gradient: 'official' tests v (LSQ, official StableQAT code), 'aten' tests round(v).
MASK_BANDS = ("official", "aten")


def estimator_params(estimator: str, amplitude: Optional[float] = None,
                     coefficients: Optional[Sequence[float]] = None,
                     delta: Optional[float] = None) -> List[float]:
    """The op's ``params`` list for an estimator's keyword arguments.

    stableqat: [] (paper amplitude A = 0.21), [A], or the K coefficients a_k
    (K = harmonics >= 2; for K = 1, a_0 = A). ewgs: [delta] (delta required).
    ste, dsq: [] (DSQ's alpha is a tensor argument, not a param).
    """
    if amplitude is not None and coefficients is not None:
        raise ValueError("stableqat: pass amplitude or coefficients, not both")
    if estimator == "stableqat":
        if coefficients is not None:
            return [float(c) for c in coefficients]
        return [] if amplitude is None else [float(amplitude)]
    if amplitude is not None or coefficients is not None:
        raise ValueError(f"stableqat: amplitude/coefficients apply to estimator='stableqat', not {estimator!r}")
    if estimator == "ewgs":
        if delta is None:
            raise ValueError("stableqat: delta is required for estimator='ewgs' (g = 1 + delta sign(dy) r, "
                             "0 <= delta < 2; delta = 0 is the STE)")
        return [float(delta)]
    if delta is not None:
        raise ValueError(f"stableqat: delta applies to estimator='ewgs', not {estimator!r}")
    return []


def fake_quantize(x: torch.Tensor, step: torch.Tensor, bits: int = 8, *, offset: Optional[torch.Tensor] = None,
                  grid: str = "signed", axis: Optional[int] = None, group_size: Optional[int] = None,
                  estimator: str = "ste", harmonics: int = 1, amplitude: Optional[float] = None,
                  coefficients: Optional[Sequence[float]] = None, alpha: Optional[torch.Tensor] = None,
                  delta: Optional[float] = None, grad_scale: Optional[float] = None,
                  mask_band: str = "official") -> torch.Tensor:
    """y = s * clamp(round_half_even((x - b) / s), qmin, qmax) + b, differentiable.

    step: one value (per tensor), x.size(0) values with ``axis=0`` (one per row,
    PyTorch's [out, in] weights), or x.numel() / group_size values with
    ``group_size`` (contiguous groups). offset (LSQ+): same count as step.
    Backward (one fused pass): dx = inside ? g(r) dy : 0, dstep = grad_scale *
    sum dy * (inside ? n - v : clamp(v)), g from ``estimator`` ('ste': 1;
    'stableqat': the rotated Fourier surrogate with ``harmonics`` odd harmonics,
    ``amplitude`` A (default 0.21) or ``coefficients``; 'ewgs': 1 + delta sign(dy) r
    with ``delta``; 'dsq': DSQ with the 1-element tensor ``alpha``, which then
    receives d alpha = sum of inside ? dy * s * dL/dalpha : 0, no grad_scale).
    grad_scale None means LSQ's 1/sqrt(x.numel() * max(qmax, 1)) over the whole
    tensor, also per row. grid 'stretched_elastic' / 'stretched_elastic_ternary'
    (bits=2): ParetoQ's SEQ levels, band |v| <= 0.99. float32/float64 CPU tensors
    of any shape; non-contiguous inputs are copied. DSQ and EWGS in float64 run
    the library's scalar exec::seq (one thread); float32 runs exec::par.
    """
    params = estimator_params(estimator, amplitude, coefficients, delta)
    return torch.ops.stableqat.fake_quantize(x, step, offset, int(bits), grid, axis, group_size, estimator,
                                             int(harmonics), params, alpha,
                                             None if grad_scale is None else float(grad_scale), mask_band)


def fake_quantize_backward(dy: torch.Tensor, x: torch.Tensor, step: torch.Tensor, bits: int = 8, *,
                           offset: Optional[torch.Tensor] = None, grid: str = "signed", axis: Optional[int] = None,
                           group_size: Optional[int] = None, estimator: str = "ste", harmonics: int = 1,
                           amplitude: Optional[float] = None, coefficients: Optional[Sequence[float]] = None,
                           alpha: Optional[torch.Tensor] = None, delta: Optional[float] = None,
                           grad_scale: Optional[float] = None, mask_band: str = "official"):
    """(dx, dstep, doffset, dalpha) of fake_quantize for upstream gradient dy, without autograd.

    doffset is None without an offset; dalpha (alpha's shape) is DSQ's d alpha,
    None for the other estimators.
    """
    params = estimator_params(estimator, amplitude, coefficients, delta)
    return torch.ops.stableqat.fake_quantize_backward(dy, x, step, offset, int(bits), grid, axis, group_size,
                                                      estimator, int(harmonics), params, alpha,
                                                      None if grad_scale is None else float(grad_scale), mask_band)


def init_step(x: torch.Tensor, bits: int, *, grid: str = "signed", axis: Optional[int] = None,
              group_size: Optional[int] = None, rule: str = "official") -> torch.Tensor:
    """Initial step(s) from data, one per step of the layout (a 1-D tensor, x's dtype; float32 for 16-bit x).

    rule 'official' (the official StableQAT/ParetoQ code): mean|x| on the 1-bit
    grid, max|x| / max(qmax, 1) otherwise (max|x| for 2-bit signed, ternary and the
    stretched elastic grids: ParetoQ's max|w_row|; max|x| / qmax for 3-4 bits); 'max_abs': max|x| / max(qmax, 1); 'lsq':
    2 mean|x| / sqrt(max(qmax, 1)). ValueError for all-zero or non-finite data.
    """
    with torch.no_grad():
        return torch.ops.stableqat.init_step(x.detach(), int(bits), grid, axis, group_size, rule)


def kernel_arch() -> str:
    """Instruction set of the op library's kernel module in use: 'avx512', 'avx2' or 'sse2'.

    Chosen at first use from the CPU (the widest it and the OS support), or
    forced with the environment variable STABLEQAT_TORCH_ARCH=sse2|avx2|avx512
    (set before the first op call; an unsupported choice raises RuntimeError).
    """
    return torch.ops.stableqat.kernel_arch()
