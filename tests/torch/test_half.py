"""bfloat16 / float16 CPU tensors: computed in float32, y and dx rounded once to x's dtype.

Contract (docs/torch.md): for 16-bit x (and dy), float32 step/offset, the op
returns exactly the float32 op on x.float() (dy.float()) followed by
.to(x.dtype) — torch's own round-to-nearest-even — for y and dx, and the very
same float32 dstep/doffset. Checked against that, against the independent
transcription of tests/torch/reference.py, through autograd, on odd shapes,
non-contiguous inputs, special values, the ATen band, and every kernel module.
"""

import os
import pathlib
import subprocess
import sys

import pytest
import torch

import reference as ref
import stableqat

ROOT = pathlib.Path(__file__).resolve().parents[2]
HALF = [torch.bfloat16, torch.float16]
LAYOUTS = [dict(), dict(axis=0), dict(group_size=37)]


def data(shape, dtype, seed=0, scale=0.3):
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(shape, generator=g, dtype=torch.float64)).to(dtype)


def steps_for(shape, layout, seed=1):
    count = 1 if not layout else (shape[0] if "axis" in layout else shape[0] * shape[1] // layout["group_size"])
    g = torch.Generator().manual_seed(seed)
    return (0.05 + 0.1 * torch.rand(count, generator=g, dtype=torch.float64)).to(torch.float32)


def same(a, b):
    """Same bits, NaN compared as NaN-ness (NaN payloads differ between libraries)."""
    assert a.dtype == b.dtype and a.shape == b.shape
    nan = torch.isnan(a)
    assert torch.equal(nan, torch.isnan(b))
    a, b = a.masked_fill(nan, 0), b.masked_fill(nan, 0)
    return torch.equal(a, b) and torch.equal(torch.signbit(a), torch.signbit(b))


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("bits,grid", [(1, "signed"), (2, "signed"), (4, "signed"), (3, "unsigned")])
def test_forward_is_the_float_result_rounded(dtype, layout, bits, grid):
    shape = (7, 37 * 5)  # odd row length: SIMD heads and tails
    x = data(shape, dtype)
    if grid == "unsigned":
        x = x.abs()
    s = steps_for(shape, layout)
    y = stableqat.fake_quantize(x, s, bits, grid=grid, **layout)
    assert y.dtype == dtype and y.shape == x.shape and y.is_contiguous()
    assert same(y, stableqat.fake_quantize(x.float(), s, bits, grid=grid, **layout).to(dtype))
    # Independent transcription in float64 on the same (widened) inputs, then torch's rounding.
    want = ref.forward(x.double(), s.double(), bits, grid, **layout).to(dtype)
    assert same(y, want) if bits == 1 else torch.equal(y, want)


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("estimator,kw,coefficients", [("ste", {}, []),
                                                       ("stableqat", {}, ref.paper_coefficients(0.21, 1))])
def test_backward_is_the_float_result_rounded(dtype, layout, estimator, kw, coefficients):
    shape = (7, 37 * 5)
    x = data(shape, dtype)
    dy = data(shape, dtype, seed=2, scale=1.0)
    dy[0, :5] = torch.tensor([1e-6, -3e-7, 65000.0, 0.0, -0.0]).to(dtype)  # float16 subnormals, large values
    s = steps_for(shape, layout)
    dx, ds, doff, _ = stableqat.fake_quantize_backward(dy, x, s, 2, estimator=estimator, **layout, **kw)
    assert dx.dtype == dtype and ds.dtype == torch.float32 and doff is None
    dx_f, ds_f, _, _ = stableqat.fake_quantize_backward(dy.float(), x.float(), s, 2, estimator=estimator, **layout,
                                                        **kw)
    assert same(dx, dx_f.to(dtype))
    assert torch.equal(ds, ds_f)  # the same float terms, summed the same way
    # Against the float64 transcription: dx within one 16-bit rounding (plus float32 error), dstep within float error.
    dx_r, ds_r = ref.backward(dy.double(), x.double(), s.double(), 2, coefficients, **layout)
    eps = torch.finfo(dtype).eps
    tiny = torch.finfo(dtype).smallest_normal * eps
    assert torch.all((dx.double() - dx_r).abs() <= eps * dx_r.abs() + tiny)
    assert torch.allclose(ds.double(), ds_r, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("dtype", HALF)
def test_offsets_and_aten_band(dtype):
    shape = (5, 203)
    x = data(shape, dtype, scale=1.5)
    dy = data(shape, dtype, seed=4, scale=1.0)
    s = steps_for(shape, dict(axis=0)) * 4
    b = torch.linspace(-0.1, 0.1, shape[0])
    y = stableqat.fake_quantize(x, s, 2, axis=0, offset=b)
    assert same(y, stableqat.fake_quantize(x.float(), s, 2, axis=0, offset=b).to(dtype))
    for band in ("official", "aten"):
        dx, ds, db, _ = stableqat.fake_quantize_backward(dy, x, s, 2, axis=0, offset=b, estimator="stableqat",
                                                         mask_band=band)
        dx_f, ds_f, db_f, _ = stableqat.fake_quantize_backward(dy.float(), x.float(), s, 2, axis=0, offset=b,
                                                               estimator="stableqat", mask_band=band)
        assert same(dx, dx_f.to(dtype)) and torch.equal(ds, ds_f) and torch.equal(db, db_f)
        assert db.dtype == torch.float32


@pytest.mark.parametrize("dtype", HALF)
def test_autograd_gives_x_grad_in_dtype_and_step_grad_in_float(dtype):
    shape = (6, 129)
    x0 = data(shape, dtype)
    dy = data(shape, dtype, seed=5, scale=1.0)
    s0 = steps_for(shape, dict(axis=0))
    grads = {}
    for name, xin in (("half", x0), ("float", x0.float())):
        x = xin.clone().requires_grad_()
        s = s0.clone().requires_grad_()
        y = stableqat.fake_quantize(x, s, 2, axis=0, estimator="stableqat")
        y.backward(dy.to(xin.dtype))
        grads[name] = (y.detach(), x.grad, s.grad)
    y, gx, gs = grads["half"]
    assert y.dtype == dtype and gx.dtype == dtype and gs.dtype == torch.float32
    assert same(y, grads["float"][0].to(dtype))
    assert same(gx, grads["float"][1].to(dtype))
    assert torch.equal(gs, grads["float"][2])


@pytest.mark.parametrize("dtype", HALF)
def test_special_values_non_contiguous_and_empty(dtype):
    x = data((64, 33), dtype).t()  # non-contiguous
    assert not x.is_contiguous()
    x[0, :6] = torch.tensor([float("nan"), float("inf"), float("-inf"), 0.0, -0.0, 1e-30]).to(dtype)
    s = torch.tensor([0.07])
    y = stableqat.fake_quantize(x, s, 3)
    assert same(y, stableqat.fake_quantize(x.contiguous().float(), s, 3).to(dtype))
    assert torch.isnan(y[0, 0]) and y[0, 1] == (3 * s).to(dtype) and y[0, 2] == (-4 * s).to(dtype)  # clamped ±Inf
    dx, ds, _, _ = stableqat.fake_quantize_backward(torch.ones_like(x), x, s, 3)
    assert dx[0, 0] == 0 and torch.isnan(ds).all()  # NaN input: dx = 0, the step gradient becomes NaN
    empty = torch.empty(0, 5, dtype=dtype)
    assert stableqat.fake_quantize(empty, s, 3).shape == (0, 5)
    dx, ds, _, _ = stableqat.fake_quantize_backward(empty, empty, s, 3)
    assert dx.dtype == dtype and torch.equal(ds, torch.zeros(1))


def test_init_step_and_codes_widen_16bit_x():
    x = data((4, 64), torch.bfloat16, scale=1.0)
    s = stableqat.init_step(x, 4, axis=0)
    assert s.dtype == torch.float32 and torch.equal(s, stableqat.init_step(x.float(), 4, axis=0))
    codes = stableqat.quantize_to_codes(x, s, 4, axis=0)
    assert torch.equal(codes, stableqat.quantize_to_codes(x.float(), s, 4, axis=0))


@pytest.mark.parametrize("dtype", HALF)
def test_bad_input_names_the_argument(dtype):
    x = data((4, 8), dtype)
    with pytest.raises(RuntimeError, match="step has dtype .* must be Float"):
        stableqat.fake_quantize(x, torch.tensor([0.1], dtype=dtype), 2)
    with pytest.raises(RuntimeError, match="dy has dtype"):
        stableqat.fake_quantize_backward(x.float(), x, torch.tensor([0.1]), 2)
    with pytest.raises(RuntimeError, match="offset has dtype"):
        stableqat.fake_quantize(x, torch.tensor([0.1]), 2, offset=torch.tensor([0.0], dtype=torch.float64))
    # Compiled for STE and the one-harmonic surrogate only: others fail in forward, before anything runs.
    name = str(dtype).removeprefix("torch.")
    with pytest.raises(NotImplementedError, match=f"'stableqat' with harmonics = 3 is not compiled for {name}"):
        stableqat.fake_quantize(x, torch.tensor([0.1]), 2, estimator="stableqat", harmonics=3,
                                coefficients=[0.2, -0.02, 0.005])
    with pytest.raises(ValueError, match="steps\\[0\\]"):
        stableqat.fake_quantize(x, torch.tensor([-0.1]), 2)
    with pytest.raises(RuntimeError, match="supported: float32, float64, bfloat16, float16"):
        stableqat.fake_quantize(torch.zeros(3, dtype=torch.int32), torch.tensor([0.1]), 2)


WORKER = r"""
import sys, torch, stableqat
g = torch.Generator().manual_seed(11)
out = {"arch": stableqat.kernel_arch()}
for dtype in (torch.bfloat16, torch.float16):
    x = (torch.randn(19, 515, generator=g) * 0.5).to(dtype)
    x[0, :3] = torch.tensor([float("nan"), float("inf"), -0.0]).to(dtype)
    dy = torch.randn(19, 515, generator=g).to(dtype)
    step = torch.rand(19, generator=g) * 0.1 + 0.02
    out[f"{dtype}-y"] = stableqat.fake_quantize(x, step, 2, axis=0)
    out[f"{dtype}-dx"] = stableqat.fake_quantize_backward(dy, x, step, 2, axis=0)[0]
torch.save(out, sys.argv[1])
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or os.uname().machine != "x86_64", reason="x86-64 modules")
def test_every_kernel_module_gives_the_same_16bit_bits(tmp_path):
    results = []
    for arch in ("sse2", "avx2", "avx512"):
        path = tmp_path / f"{arch}.pt"
        env = dict(os.environ, STABLEQAT_TORCH_ARCH=arch, PYTHONPATH=str(ROOT / "python"))
        r = subprocess.run([sys.executable, "-c", WORKER, str(path)], env=env, capture_output=True, text=True,
                           timeout=240)
        if r.returncode != 0:
            assert "does not support that instruction set" in r.stderr, r.stderr
            continue
        results.append(torch.load(path))
    assert results and results[0]["arch"] == "sse2"
    for other in results[1:]:
        for key, value in results[0].items():
            if key != "arch":  # forward and STE dx are exact in float: identical bits on every module
                assert same(value, other[key]), (other["arch"], key)


def test_quant_linear_bfloat16_is_the_float_computation_rounded_once():
    """A bfloat16 QuantLinear: float32 step; quantized weight, weight.grad and
    step.grad are the float32 computation on the bf16 weight, rounded once."""
    torch.manual_seed(0)
    layer = stableqat.QuantLinear(67, 9, bits=2, estimator="stableqat", dtype=torch.bfloat16)
    assert layer.weight.dtype == torch.bfloat16 and layer.bias.dtype == torch.bfloat16
    assert layer.weight_step.dtype == torch.float32
    assert torch.equal(layer.weight_step, stableqat.init_step(layer.weight.float(), 2, axis=0))
    x = data((5, 67), torch.bfloat16, seed=7, scale=1.0)
    dy = data((5, 9), torch.bfloat16, seed=8, scale=1.0)

    q = layer.quantized_weight()
    q.retain_grad()
    y = torch.nn.functional.linear(x, q, layer.bias)
    y.backward(dy)
    w32, s32 = layer.weight.detach().float(), layer.weight_step.detach()
    q32 = stableqat.fake_quantize(w32, s32, 2, axis=0, estimator="stableqat")
    assert q.dtype == torch.bfloat16 and same(q.detach(), q32.to(torch.bfloat16))
    # y: torch's bf16 matmul on that weight; one bf16 rounding of the float result
    # (plus float32 summation-order error) from the float computation.
    y_ref = (x.double() @ q.detach().double().t() + layer.bias.detach().double())
    bound = torch.finfo(torch.bfloat16).eps * y_ref.abs() + 1e-5 * (x.double().abs() @ q.detach().double().abs().t())
    assert torch.all((y.detach().double() - y_ref).abs() <= bound)
    dq = q.grad  # bf16 dL/dq from torch's matmul backward: the op's dy
    dw32, ds32, _, _ = stableqat.fake_quantize_backward(dq.float(), w32, s32, 2, axis=0, estimator="stableqat")
    assert layer.weight.grad.dtype == torch.bfloat16 and same(layer.weight.grad, dw32.to(torch.bfloat16))
    assert layer.weight_step.grad.dtype == torch.float32 and torch.equal(layer.weight_step.grad, ds32)

    # One SGD step: the step is updated in float32, the weight in bf16; dtypes stay.
    step_before, weight_before = layer.weight_step.detach().clone(), layer.weight.detach().clone()
    torch.optim.SGD(layer.parameters(), lr=0.01).step()
    assert layer.weight_step.dtype == torch.float32 and layer.weight.dtype == torch.bfloat16
    assert_sgd_update(layer.weight_step, step_before, ds32, 0.01)
    assert_sgd_update(layer.weight, weight_before, layer.weight.grad, 0.01)
    assert not torch.equal(layer.weight_step.detach(), step_before)

    # Integer export of the bf16 layer: float32 steps; dequantized (float32 k s)
    # and rounded to bf16 it is the layer's quantized weight, and it loads back.
    exported = stableqat.export_quantized(torch.nn.Sequential(layer))["0"]
    assert exported["step"].dtype == torch.float32
    q = layer.quantized_weight().detach()
    assert torch.equal(stableqat.dequantize_entry(exported).to(torch.bfloat16), q)
    other = stableqat.QuantLinear(67, 9, bits=2, estimator="stableqat", dtype=torch.bfloat16)
    assert stableqat.load_quantized(torch.nn.Sequential(other), {"0": exported}) == ["0"]
    assert other.weight_step.dtype == torch.float32 and torch.equal(other.quantized_weight().detach(), q)


def assert_sgd_update(param, before, grad, lr):
    """param == before - lr * grad in param's dtype: within the two roundings
    (of lr * grad and of the sum) torch's update may make in that dtype."""
    want = before.double() - lr * grad.double()
    eps = torch.finfo(param.dtype).eps
    assert torch.all((param.detach().double() - want).abs() <= eps * (want.abs() + lr * grad.double().abs()))


@pytest.mark.parametrize("dtype", HALF)
def test_quant_linear_cast_to_16bit_keeps_a_float32_step(dtype):
    """.to(bfloat16) / .half() of a float32 QuantLinear (or of a model after
    quantize_model) keeps weight_step float32 with its exact values; float16's
    quantized weight and gradients follow the same contract (torch 1.13 has no
    float16 matmul on the CPU, so the layer's own forward is not run in float16)."""
    model = torch.nn.Sequential(torch.nn.Linear(40, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3))
    assert stableqat.quantize_model(model, bits=2, estimator="ste", skip=()) == ["0", "2"]
    layer = model[0]
    with torch.no_grad():
        layer.weight_step.mul_(1.0 + 2.0 ** -12)  # a value bf16/fp16 cannot hold
    step32 = layer.weight_step.detach().clone()
    model.to(dtype)
    assert layer.weight.dtype == dtype and layer.weight_step.dtype == torch.float32
    assert torch.equal(layer.weight_step.detach(), step32)
    q = layer.quantized_weight()
    w32 = layer.weight.detach().float()
    assert same(q.detach(), stableqat.fake_quantize(w32, step32, 2, axis=0).to(dtype))
    dq = data(tuple(q.shape), dtype, seed=9, scale=1.0)
    q.backward(dq)
    dw32, ds32, _, _ = stableqat.fake_quantize_backward(dq.float(), w32, step32, 2, axis=0)
    assert same(layer.weight.grad, dw32.to(dtype)) and torch.equal(layer.weight_step.grad, ds32)
    torch.optim.SGD(layer.parameters(), lr=0.1).step()
    assert_sgd_update(layer.weight_step, step32, ds32, 0.1)
    step_after = layer.weight_step.detach().clone()
    # Back to float32: the step is cast as every parameter (it is float32 already).
    model.float()
    assert layer.weight.dtype == torch.float32 and torch.equal(layer.weight_step.detach(), step_after)


def test_quant_linear_16bit_refuses_uncompiled_estimators_by_name():
    layer = stableqat.QuantLinear(8, 4, bits=2, estimator="ewgs", delta=1e-3, dtype=torch.bfloat16)
    with pytest.raises(NotImplementedError, match="estimator 'ewgs' is not compiled for bfloat16"):
        layer(torch.zeros(2, 8, dtype=torch.bfloat16))
    layer = stableqat.QuantLinear(8, 4, bits=2, estimator="dsq", dtype=torch.float16)
    assert layer.weight_alpha.dtype == torch.float32
    with pytest.raises(NotImplementedError, match="estimator 'dsq' is not compiled for float16"):
        layer.quantized_weight()
