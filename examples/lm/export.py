"""Optional integer export of a QAT model (issue 13), through the stableqat package.

The export is exact by contract (DESIGN.md §3: dequantize(pack(codes)) == fake_quantize, bit for
bit); here we only call it and report its size next to the full-precision size of the same
weights. When the package (or its export) is missing the step reports "export unavailable" with
the reason and the experiment goes on.
"""
from __future__ import annotations

import torch

import quant


def _nbytes(obj) -> int:
    """Bytes of every tensor/bytes object inside a (nested) export result."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return len(obj)
    if isinstance(obj, dict):
        return sum(_nbytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_nbytes(v) for v in obj)
    return 0


def export_status() -> tuple[bool, str]:
    lib, reason = quant._import_library()
    if lib is None:
        return False, reason
    if not hasattr(lib, "export_quantized"):
        return False, "the stableqat package has no export_quantized (integer export, issue 13)"
    return True, "stableqat.export_quantized"


def export_model(model: torch.nn.Module) -> dict:
    """{"status": "ok" | "export unavailable" | "export failed", "detail": ..., "packed_bytes",
    "fp32_bytes"}: fp32_bytes counts the quantized layers' weights in float32."""
    fp32 = sum(m.weight.numel() * 4 for _, m in quant.quant_layers(model))
    ok, detail = export_status()
    if not ok:
        return {"status": "export unavailable", "detail": detail, "packed_bytes": None, "fp32_bytes": fp32}
    try:
        exported = quant._import_library()[0].export_quantized(model)
    except Exception as error:  # the library rejects our module types, a shape, ...
        return {"status": "export failed", "detail": f"{type(error).__name__}: {error}",
                "packed_bytes": None, "fp32_bytes": fp32}
    return {"status": "ok", "detail": detail, "packed_bytes": _nbytes(exported), "fp32_bytes": fp32}
