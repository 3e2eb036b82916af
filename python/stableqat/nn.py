"""QuantLinear (a drop-in nn.Linear with a fake-quantized weight) and quantize_model."""

import math
from typing import Iterable, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .functional import ESTIMATORS, GRIDS, MASK_BANDS, estimator_params, init_step

#: DSQ's initial alpha (the official code's).
DSQ_DEFAULT_ALPHA = 0.2
#: The range QuantLinear clamps DSQ's alpha parameter to before each forward
#: pass: the op refuses alpha outside (0, 1), and near 1 d alpha's two terms cancel.
DSQ_ALPHA_RANGE = (1e-3, 0.999)

#: Weight dtypes the op stores in 16 bits and computes in float32: their step
#: (and DSQ's alpha) must be float32 (a bfloat16 step would be a coarse, 8-bit-mantissa learnable).
HALF_DTYPES = (torch.bfloat16, torch.float16)


def step_dtype(weight_dtype: torch.dtype) -> torch.dtype:
    """The dtype of a weight's step (and alpha): float32 for 16-bit weights, the weight's own otherwise."""
    return torch.float32 if weight_dtype in HALF_DTYPES else weight_dtype


class QuantLinear(nn.Linear):
    """nn.Linear whose weight is fake-quantized per output row with a learnable step.

    y = x @ fake_quantize(W, step, axis=0)^T + bias, with ``weight_step`` of
    shape [out_features], initialised from W as the official StableQAT code
    does per bit width (``stableqat.init_step(rule='official')``: mean|w_row|
    at 1 bit, max|w_row| at 2 bits, ternary and the stretched elastic grids,
    max|w_row| / qmax at 3-4 bits). Gradients: the op's fused backward
    (estimator, grad_scale = LSQ's 1/sqrt(W.numel() * max(qmax, 1)) unless given).

    estimator 'dsq' adds ``weight_alpha``, a 0-dim nn.Parameter (init ``alpha``,
    0.2), DSQ's learnable alpha for this weight; the forward pass uses
    clamp(weight_alpha, *DSQ_ALPHA_RANGE) (gradient 0 once the raw value leaves
    that range, as torch.clamp). For the other estimators ``weight_alpha`` is None.
    estimator 'ewgs' needs ``delta``; ``set_delta(d)`` changes it between steps.
    Scriptable with torch.jit.script.

    A bfloat16 / float16 weight (``dtype=``, ``from_linear`` of a 16-bit layer,
    or ``.to(torch.bfloat16)`` / ``.half()`` afterwards) keeps ``weight_step``
    (and ``weight_alpha``) float32: the op computes the 16-bit weight in float32
    and rounds the quantized weight and its gradient once to the weight's dtype.
    16-bit weights support estimator 'ste' and 'stableqat' with harmonics=1.
    (Debian's torch 1.13 has no float16 matmul on the CPU: a float16 layer's
    ``quantized_weight()`` works there, its forward needs another device.)
    """

    bits: int
    grid: str
    estimator: str
    harmonics: int
    params: List[float]
    grad_scale: Optional[float]
    mask_band: str
    alpha_min: float
    alpha_max: float

    def __init__(self, in_features: int, out_features: int, bias: bool = True, bits: int = 2,
                 estimator: str = "stableqat", *, grid: str = "signed", harmonics: int = 1,
                 amplitude: Optional[float] = None, coefficients: Optional[Sequence[float]] = None,
                 delta: Optional[float] = None, alpha: Optional[float] = None, grad_scale: Optional[float] = None,
                 mask_band: str = "official", device=None, dtype=None):
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        if estimator not in ESTIMATORS:
            raise ValueError(f"QuantLinear: estimator = {estimator!r} is not one of {ESTIMATORS}")
        if grid not in GRIDS:
            raise ValueError(f"QuantLinear: grid = {grid!r} is not one of {GRIDS}")
        if mask_band not in MASK_BANDS:
            raise ValueError(f"QuantLinear: mask_band = {mask_band!r} is not one of {MASK_BANDS}")
        if grad_scale is not None and not math.isfinite(grad_scale):
            raise ValueError(f"QuantLinear: grad_scale = {grad_scale} is not finite")
        self.bits = int(bits)
        self.grid = grid
        self.estimator = estimator
        self.harmonics = int(harmonics)
        self.params = estimator_params(estimator, amplitude, coefficients, delta)
        self.grad_scale = None if grad_scale is None else float(grad_scale)
        self.mask_band = mask_band
        self.alpha_min, self.alpha_max = DSQ_ALPHA_RANGE
        if estimator == "dsq":
            initial = DSQ_DEFAULT_ALPHA if alpha is None else float(alpha)
            if not DSQ_ALPHA_RANGE[0] <= initial <= DSQ_ALPHA_RANGE[1]:
                raise ValueError(f"QuantLinear: alpha = {initial} is outside [{DSQ_ALPHA_RANGE[0]}, "
                                 f"{DSQ_ALPHA_RANGE[1]}] (DSQ's alpha lies in (0, 1))")
            self.weight_alpha = nn.Parameter(torch.tensor(initial, device=device,
                                                          dtype=step_dtype(self.weight.dtype)))
        else:
            if alpha is not None:
                raise ValueError(f"QuantLinear: alpha applies to estimator='dsq', not {estimator!r}")
            self.register_parameter("weight_alpha", None)
        self.weight_step = nn.Parameter(torch.empty(out_features, device=device, dtype=step_dtype(self.weight.dtype)))
        self.reset_step()

    def _apply(self, fn):
        # Module.to / .bfloat16() / .half() cast every floating parameter: a 16-bit
        # weight gets back its float32 step and alpha (and their gradients), cast
        # from the float32 originals (no 16-bit rounding in between), on fn's device.
        originals = {name: (p.data, p.grad) for name in ("weight_step", "weight_alpha")
                     if (p := getattr(self, name)) is not None}
        super()._apply(fn)
        wanted = step_dtype(self.weight.dtype)
        for name, (data, grad) in originals.items():
            param = getattr(self, name)
            if param.dtype != wanted:
                param.data = data.to(device=param.device, dtype=wanted)
                if grad is not None and param.grad is not None:
                    param.grad = grad.to(device=param.device, dtype=wanted)
        return self

    def set_delta(self, delta: float) -> None:
        """EWGS: the delta of the following forward/backward passes (checked by the op)."""
        if self.estimator != "ewgs":
            raise ValueError(f"QuantLinear.set_delta: estimator is {self.estimator!r}, not 'ewgs'")
        self.params = estimator_params("ewgs", delta=delta)

    def reset_step(self) -> None:
        """Sets weight_step from the current weight (official per-bit-width rule)."""
        with torch.no_grad():
            self.weight_step.copy_(init_step(self.weight, self.bits, grid=self.grid, axis=0, rule="official"))

    @classmethod
    def from_linear(cls, linear: nn.Linear, **kwargs) -> "QuantLinear":
        """A QuantLinear with linear's weight and bias (copied), steps initialised from that weight."""
        layer = cls(linear.in_features, linear.out_features, bias=linear.bias is not None,
                    device=linear.weight.device, dtype=linear.weight.dtype, **kwargs)
        with torch.no_grad():
            layer.weight.copy_(linear.weight)
            if linear.bias is not None:
                layer.bias.copy_(linear.bias)
        layer.weight.requires_grad_(linear.weight.requires_grad)
        layer.reset_step()
        return layer

    def quantized_weight(self) -> torch.Tensor:
        """The fake-quantized weight the forward pass multiplies by (differentiable)."""
        alpha: Optional[torch.Tensor] = None
        if self.weight_alpha is not None:
            alpha = torch.clamp(self.weight_alpha, self.alpha_min, self.alpha_max)
        return torch.ops.stableqat.fake_quantize(self.weight, self.weight_step, None, self.bits, self.grid, 0, None,
                                                 self.estimator, self.harmonics, self.params, alpha, self.grad_scale,
                                                 self.mask_band)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return F.linear(input, self.quantized_weight(), self.bias)

    def extra_repr(self) -> str:
        text = (f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
                f"bits={self.bits}, grid={self.grid!r}, estimator={self.estimator!r}")
        if self.estimator == "stableqat":
            text += f", harmonics={self.harmonics}"
            if len(self.params) == 1:
                text += f", amplitude={self.params[0]}"
            elif self.params:
                text += f", coefficients={self.params}"
            else:
                text += ", amplitude=0.21"
        elif self.estimator == "ewgs":
            text += f", delta={self.params[0]}"
        elif self.estimator == "dsq" and self.weight_alpha is not None:
            text += f", alpha={float(self.weight_alpha.detach()):.6g}"
        if self.grad_scale is not None:
            text += f", grad_scale={self.grad_scale}"
        if self.mask_band != "official":
            text += f", mask_band={self.mask_band!r}"
        return text


def _skipped(name: str, skip: Iterable[str]) -> bool:
    # A pattern matches the module's qualified name or any dotted suffix of it,
    # so "lm_head" skips "lm_head" and "model.lm_head".
    return any(name == pattern or name.endswith("." + pattern) for pattern in skip)


def quantize_model(model: nn.Module, bits: int = 2, estimator: str = "stableqat",
                   skip: Iterable[str] = ("lm_head",), **kwargs) -> List[str]:
    """Replaces every nn.Linear of ``model`` (in place) by QuantLinear.from_linear(...).

    Modules whose qualified name (or a dotted suffix of it) is in ``skip`` stay
    as they are, as do embeddings and every non-Linear module (the paper keeps
    embeddings and the LM head in full precision). Existing QuantLinear layers
    are left alone. Returns the qualified names of the replaced layers, in
    module order. kwargs go to QuantLinear (grid, harmonics, amplitude,
    delta, alpha, ...), e.g. estimator="dsq" (each layer gets its own learnable
    weight_alpha), estimator="ewgs", delta=1e-3, or grid="stretched_elastic".
    """
    skip = tuple(skip)
    targets = [(name, module) for name, module in model.named_modules()
               if type(module) is nn.Linear and name and not _skipped(name, skip)]
    if type(model) is nn.Linear and not _skipped("", skip):
        raise ValueError("quantize_model: model is itself an nn.Linear; use QuantLinear.from_linear(model)")
    changed = []
    for name, module in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, QuantLinear.from_linear(module, bits=bits, estimator=estimator, **kwargs))
        changed.append(name)
    return changed
