"""Integer export of a QAT model (issue 13) through the stableqat package, and its check.

export_model(model, ...) does what a deployment would:
  1. hands the model's quantized layers to `stableqat.export_quantized` (as the package's
     QuantLinear, with the learned per-row steps): per layer, the weight's integer codes packed
     row by row (2-bit fields at 2 bits, 4-bit fields at 3-4 bits) and the steps;
  2. builds an inference model in which every one of those layers is a PackedLinear that keeps
     only the packed bytes and the steps and dequantizes them (`stableqat.dequantize`) on each
     forward pass; the rest of the model (embeddings, LayerNorms, LM head, biases) is the QAT
     model's, in float32;
  3. evaluates both models on the same validation windows and compares the losses bit for bit;
  4. also reloads the export with `stableqat.load_quantized` into a package QuantLinear model and
     counts the weights whose fake-quantized value differs from the QAT model's.

Why the losses must be equal: by the export's contract (docs/export.md) dequantize(pack(codes))
returns the very bits of the forward pass of fake_quantize (round half to even), except -0,
which comes back +0 (a zero weight: it changes no product's value). The one method whose forward
pass is not round-half-even is DSQ: its level floor(v) + (phi(v) > 0) sends an exact tie
v = n + 1/2 down, where the codes send it to the even neighbour. Such weights are counted
(`weight_mismatches`); with none, the losses are equal for DSQ too.
"""
from __future__ import annotations

import copy
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

import quant
from model import evaluate


def _lib():
    lib, reason = quant._import_library()
    return lib, reason


def export_status() -> tuple[bool, str]:
    lib, reason = _lib()
    if lib is None:
        return False, reason
    missing = [n for n in ("export_quantized", "load_quantized", "dequantize", "QuantLinear") if not hasattr(lib, n)]
    if missing:
        return False, f"the stableqat package has no {', '.join(missing)} (integer export, issue 13)"
    return True, "stableqat.export_quantized"


class PackedLinear(nn.Module):
    """Inference-only linear layer that stores its weight as packed integer codes plus one step
    per output row and dequantizes on every forward pass: y = x W^T + b with
    W = stableqat.dequantize(packed, step, shape, bits, grid, axis=0) (= step_row * level)."""

    def __init__(self, entry: dict):
        super().__init__()
        self.shape = list(entry["shape"])
        self.bits, self.grid, self.code_bits = int(entry["bits"]), entry["grid"], int(entry["code_bits"])
        self.register_buffer("packed", entry["packed"].clone())
        self.register_buffer("step", entry["step"].clone())
        self.register_buffer("bias", None if entry["bias"] is None else entry["bias"].clone())

    def weight(self) -> torch.Tensor:
        lib, _ = _lib()
        return lib.dequantize(self.packed, self.step, self.shape, self.bits, grid=self.grid, axis=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight(), self.bias)

    def extra_repr(self) -> str:
        return f"shape={self.shape}, bits={self.bits}, grid={self.grid}, packed={tuple(self.packed.shape)} uint8"


def _set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, module)


def to_package_layers(model: nn.Module) -> nn.Module:
    """A copy of `model` whose quant.QuantLinear layers are the package's stableqat.QuantLinear with
    the same weight, bias and learned steps (estimator 'ste': the export needs only the grid)."""
    lib, _ = _lib()
    twin = copy.deepcopy(model)
    for name, m in quant.quant_layers(twin):
        layer = lib.QuantLinear(m.in_features, m.out_features, bias=m.bias is not None, bits=m.quantizer.spec.bits,
                                estimator="ste", grid=m.quantizer.spec.grid)
        with torch.no_grad():
            layer.weight.copy_(m.weight)
            layer.weight_step.copy_(m.step)
            if m.bias is not None:
                layer.bias.copy_(m.bias)
        _set_module(twin, name, layer)
    return twin


def inference_model(model: nn.Module, exported: dict) -> nn.Module:
    """A copy of `model` with every exported layer replaced by a PackedLinear of its export entry."""
    inf = copy.deepcopy(model)
    for name, entry in exported.items():
        _set_module(inf, name, PackedLinear(entry))
    return inf


def _tensor_bytes(t) -> int:
    return 0 if t is None else t.numel() * t.element_size()


@torch.no_grad()
def export_model(model: nn.Module, val_inputs: torch.Tensor, val_targets: torch.Tensor,
                 save_path: str | None = None, meta: dict | None = None) -> dict:
    """Exports `model` (a QAT TransformerLM with quant.QuantLinear layers), reloads it as packed
    codes and compares. Returns {"status": "ok" | "export unavailable" | "export failed", "detail",
    "packed_bytes" (codes), "step_bytes", "fp32_bytes" (the same weights in float32),
    "model_fp32_bytes", "model_packed_bytes" (whole model: packed layers + every other tensor in
    float32), "val_fake_quant", "val_packed", their hex, "val_equal", "weight_mismatches",
    "load_quantized_mismatches"}; with save_path, torch.saves the export and `meta` there."""
    layers = quant.quant_layers(model)
    fp32 = sum(m.weight.numel() * 4 for _, m in layers)
    row = {"status": "ok", "packed_bytes": None, "step_bytes": None, "fp32_bytes": fp32}
    ok, detail = export_status()
    row["detail"] = detail
    if not ok:
        return dict(row, status="export unavailable")
    lib, _ = _lib()
    try:
        exported = lib.export_quantized(to_package_layers(model))
    except Exception as error:  # the package rejects a grid or a shape: report it, the sweep stands
        return dict(row, status="export failed", detail=f"{type(error).__name__}: {error}")
    names = [n for n, _ in layers]
    if sorted(exported) != sorted(names):
        return dict(row, status="export failed", detail=f"exported {sorted(exported)} instead of {sorted(names)}")

    fq = {n: m.quantized_weight() for n, m in layers}     # the QAT model's own forward-pass weights
    inf = inference_model(model, exported)
    mismatches = 0
    for n, m in inf.named_modules():
        if isinstance(m, PackedLinear):
            mismatches += int((m.weight() != fq[n]).sum())   # != treats -0 == +0, as the contract says
    reloaded = to_package_layers(model)
    lib.load_quantized(reloaded, exported)
    reload_mismatches = sum(int((m.quantized_weight() != fq[n]).sum())
                            for n, m in reloaded.named_modules() if isinstance(m, lib.QuantLinear))

    val_fq = evaluate(model, val_inputs, val_targets)
    val_packed = evaluate(inf, val_inputs, val_targets)
    packed = sum(_tensor_bytes(e["packed"]) for e in exported.values())
    steps = sum(_tensor_bytes(e["step"]) for e in exported.values())
    exported_params = {f"{n}.{k}" for n in names for k in ("weight", "step", "dsq_alpha")}
    others = sum(_tensor_bytes(p) for k, p in model.state_dict().items() if k not in exported_params)
    model_fp32 = sum(_tensor_bytes(p) for k, p in model.state_dict().items()
                     if not k.endswith(".step") and not k.endswith(".dsq_alpha"))
    row.update(packed_bytes=packed, step_bytes=steps, model_fp32_bytes=model_fp32,
               model_packed_bytes=packed + steps + others,
               code_bits=sorted({int(e["code_bits"]) for e in exported.values()}),
               val_fake_quant=val_fq, val_packed=val_packed,
               val_fake_quant_hex=float(val_fq).hex(), val_packed_hex=float(val_packed).hex(),
               val_equal=val_fq == val_packed, weight_mismatches=mismatches,
               load_quantized_mismatches=reload_mismatches)
    if not row["val_equal"]:
        why = (f"{mismatches} weights differ from the fake-quantized ones"
               + (" (DSQ: exact ties v = n + 1/2 go down in DSQ's forward, to even in the codes)"
                  if any(m.quantizer.spec.estimator == "dsq" for _, m in layers) else ""))
        row["detail"] = f"validation loss differs: {why}"
    else:
        row["detail"] = (f"packed-code model == fake-quantized model: val {val_packed:.6f} nats/char, bit for bit "
                         f"({mismatches} weights differ; load_quantized: {reload_mismatches})")
    if save_path:
        torch.save({"meta": dict(meta or {}), "exported": exported,
                    "result": {k: v for k, v in row.items() if not isinstance(v, float) or math.isfinite(v)}},
                   save_path)
    return row
