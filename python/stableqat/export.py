"""Integer export of a QAT model: codes, packed bytes, exact dequantization.

Thin wrappers over the op library's export ops (the library's
include/stableqat/export.hpp; format in docs/export.md): a weight's codes are
the grid levels fake_quantize rounds to, packed row by row (rows of the last
dimension, each padded to a whole byte, element 0 in the low bits), in fields
of code_bits(grid) = 2, 4, 8 or 16 bits. dequantize(pack_codes(codes)) returns
the very bits of the fake-quantized weight, except -0 which comes back as +0.
"""

from typing import Dict, List, Optional, Sequence

import torch
from torch import nn

from . import _library
from .nn import QuantLinear

_library.load()


def quantize_to_codes(x: torch.Tensor, step: torch.Tensor, bits: int = 8, *, grid: str = "signed",
                      axis: Optional[int] = None, group_size: Optional[int] = None,
                      offset: Optional[torch.Tensor] = None) -> torch.Tensor:
    """codes = clamp(round_half_even((x - b) / s), qmin, qmax) as integers, x's shape.

    dtype: int8 (signed grids up to 8 bits, ternary, binary), uint8 (unsigned up
    to 8 bits), int16 (signed 9-16 bits), int32 (unsigned 9-16 bits; torch has no uint16).
    """
    with torch.no_grad():
        return torch.ops.stableqat.quantize_to_codes(x.detach(), step.detach(),
                                                     None if offset is None else offset.detach(), int(bits), grid,
                                                     axis, group_size)


def pack_codes(codes: torch.Tensor, bits: int = 8, *, grid: str = "signed") -> torch.Tensor:
    """uint8 tensor [rows, ceil(cols * code_bits / 8)], cols = codes.size(-1)."""
    return torch.ops.stableqat.pack_codes(codes, int(bits), grid)


def unpack_codes(packed: torch.Tensor, shape: Sequence[int], bits: int = 8, *, grid: str = "signed") -> torch.Tensor:
    """The inverse of pack_codes: codes of the given shape."""
    return torch.ops.stableqat.unpack_codes(packed, list(shape), int(bits), grid)


def dequantize(packed: torch.Tensor, step: torch.Tensor, shape: Sequence[int], bits: int = 8, *,
               grid: str = "signed", axis: Optional[int] = None, group_size: Optional[int] = None,
               offset: Optional[torch.Tensor] = None) -> torch.Tensor:
    """y = s * code + b from packed codes, step's dtype: fake_quantize's output bit for bit (-0 -> +0)."""
    with torch.no_grad():
        return torch.ops.stableqat.dequantize(packed, step.detach(), None if offset is None else offset.detach(),
                                              list(shape), int(bits), grid, axis, group_size)


def export_quantized(model: nn.Module) -> Dict[str, dict]:
    """For every QuantLinear of model: its integer weight and what restores it.

    Returns {module name: {"packed": uint8 [out, ceil(in * code_bits / 8)],
    "step": [out] (the learned per-row steps), "shape": [out, in], "bits",
    "grid", "signed" (codes are two's complement), "code_bits" (field width),
    "bias": tensor or None}}. Tensors are detached copies on the CPU.
    """
    out: Dict[str, dict] = {}
    for name, m in model.named_modules():
        if not isinstance(m, QuantLinear):
            continue
        w = m.weight.detach()
        step = m.weight_step.detach().clone()
        codes = quantize_to_codes(w, step, m.bits, grid=m.grid, axis=0)
        packed = pack_codes(codes, m.bits, grid=m.grid)
        out[name] = {
            "packed": packed,
            "step": step,
            "shape": list(w.shape),
            "bits": m.bits,
            "grid": m.grid,
            "signed": codes.dtype in (torch.int8, torch.int16),
            "code_bits": _code_bits(m.bits, m.grid),
            "bias": None if m.bias is None else m.bias.detach().clone(),
        }
    return out


def _code_bits(bits: int, grid: str) -> int:
    """Field width of the grid's codes (docs/export.md): 8 codes pack into code_bits bytes."""
    codes = torch.zeros(1, 8, dtype=quantize_to_codes(torch.zeros(1), torch.ones(1), bits, grid=grid).dtype)
    return pack_codes(codes, bits, grid=grid).numel()


def dequantize_entry(entry: dict) -> torch.Tensor:
    """The float weight of one export_quantized entry (step's dtype)."""
    return dequantize(entry["packed"], entry["step"], entry["shape"], entry["bits"], grid=entry["grid"], axis=0)


def load_quantized(model: nn.Module, exported: Dict[str, dict]) -> List[str]:
    """Writes each entry's dequantized weight, step and bias into model's QuantLinear of that name.

    Afterwards the model's fake-quantized weights equal the exported model's.
    Returns the names loaded; KeyError for a name that is not a QuantLinear of model.
    """
    modules = dict(model.named_modules())
    loaded = []
    for name, entry in exported.items():
        m = modules.get(name)
        if not isinstance(m, QuantLinear):
            raise KeyError(f"stableqat.load_quantized: {name!r} is not a QuantLinear of the model")
        if list(m.weight.shape) != list(entry["shape"]):
            raise ValueError(f"stableqat.load_quantized: {name!r} has weight shape {list(m.weight.shape)}, "
                             f"the export {entry['shape']}")
        if m.bits != entry["bits"] or m.grid != entry["grid"]:
            raise ValueError(f"stableqat.load_quantized: {name!r} quantizes to bits={m.bits}, grid={m.grid!r}; "
                             f"the export has bits={entry['bits']}, grid={entry['grid']!r}")
        with torch.no_grad():
            m.weight.copy_(dequantize_entry(entry).to(m.weight.dtype))
            m.weight_step.copy_(entry["step"])
            if m.bias is not None and entry["bias"] is not None:
                m.bias.copy_(entry["bias"])
        loaded.append(name)
    return loaded
