"""stableqat.fake_quantize and friends: thin, autograd-aware wrappers over torch.ops.stableqat.

Every function validates only what the op schema cannot express (keyword
combinations); values are checked by the op library, which raises
ValueError (bad value, naming the argument), RuntimeError (dtype, device) or
NotImplementedError (estimators and grids of issue 12) before writing anything.
"""

from typing import List, Optional, Sequence

import torch

from . import _library

_library.load()

#: Estimators the schema knows; 'dsq' and 'ewgs' arrive with issue 12.
ESTIMATORS = ("ste", "stableqat", "dsq", "ewgs")
#: Grids the schema knows; the stretched elastic ones arrive with issue 12.
GRIDS = ("signed", "unsigned", "ternary", "stretched_elastic", "stretched_elastic_ternary")
#: Who receives a gradient: 'official' tests v (LSQ, official StableQAT code), 'aten' tests round(v).
MASK_BANDS = ("official", "aten")


def estimator_params(estimator: str, amplitude: Optional[float] = None,
                     coefficients: Optional[Sequence[float]] = None,
                     delta: Optional[float] = None) -> List[float]:
    """The op's ``params`` list for an estimator's keyword arguments.

    stableqat: [] (paper amplitude A = 0.21), [A], or the K coefficients a_k
    (K = harmonics >= 2; for K = 1, a_0 = A). ewgs: [delta]. ste, dsq: [].
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
        return [] if delta is None else [float(delta)]
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
    ``amplitude`` A (default 0.21) or ``coefficients``). grad_scale None means
    LSQ's 1/sqrt(x.numel() * max(qmax, 1)) over the whole tensor, also per row.
    float32/float64 CPU tensors of any shape; non-contiguous inputs are copied.
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

    doffset is None without an offset; dalpha is None (no estimator with a
    learnable parameter yet: DSQ arrives with issue 12).
    """
    params = estimator_params(estimator, amplitude, coefficients, delta)
    return torch.ops.stableqat.fake_quantize_backward(dy, x, step, offset, int(bits), grid, axis, group_size,
                                                      estimator, int(harmonics), params, alpha,
                                                      None if grad_scale is None else float(grad_scale), mask_band)


def init_step(x: torch.Tensor, bits: int, *, grid: str = "signed", axis: Optional[int] = None,
              group_size: Optional[int] = None, rule: str = "official") -> torch.Tensor:
    """Initial step(s) from data, one per step of the layout (a 1-D tensor, x's dtype).

    rule 'official' (the official StableQAT/ParetoQ code): mean|x| on the 1-bit
    grid, max|x| / max(qmax, 1) otherwise (max|x| for 2-bit signed and ternary,
    max|x| / qmax for 3-4 bits); 'max_abs': max|x| / max(qmax, 1); 'lsq':
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
