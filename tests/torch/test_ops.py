"""torch.ops.stableqat.fake_quantize / fake_quantize_backward / init_step against independent references."""

import math

import pytest
import torch

import reference as ref
import stableqat

LAYOUTS = [dict(), dict(axis=0), dict(group_size=8)]


def steps_for(x, layout, value=None, dtype=None):
    count = 1 if not layout else (x.shape[0] if "axis" in layout else x.numel() // layout["group_size"])
    g = torch.Generator().manual_seed(3)
    s = 0.05 + 0.1 * torch.rand(count, generator=g, dtype=torch.float64)
    if value is not None:
        s.fill_(value)
    return s.to(dtype or x.dtype)


def data(shape=(16, 32), dtype=torch.float32, seed=0, scale=0.3):
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(shape, generator=g, dtype=torch.float64)).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("bits,grid", [(1, "signed"), (2, "signed"), (4, "signed"), (3, "unsigned"), (2, "ternary")])
def test_forward_bit_identical_to_transcription(dtype, layout, bits, grid):
    x = data(dtype=dtype)
    if grid == "unsigned":
        x = x.abs()
    s = steps_for(x, layout)
    y = stableqat.fake_quantize(x, s, bits, grid=grid, **layout)
    want = ref.forward(x, s, bits, grid, **layout)
    assert y.dtype == dtype and y.shape == x.shape
    if bits == 1:  # sign grid: compare values (sign(0) is 0 either way)
        assert torch.equal(y, want)
    else:  # same bits, including the sign of zero (s * -0 = -0)
        assert torch.equal(torch.signbit(y), torch.signbit(want)) and torch.equal(y, want)


def test_forward_with_offset():
    x = data(dtype=torch.float64)
    s = steps_for(x, dict(axis=0))
    b = torch.linspace(-0.1, 0.1, x.shape[0], dtype=torch.float64)
    y = stableqat.fake_quantize(x, s, 3, axis=0, offset=b)
    assert torch.allclose(y, ref.forward(x, s, 3, axis=0, offset=b), rtol=0, atol=1e-15)


CASES = [
    ("ste", {}, []),
    ("stableqat", {}, ref.paper_coefficients(0.21, 1)),
    ("stableqat", dict(amplitude=0.15), ref.paper_coefficients(0.15, 1)),
    ("stableqat", dict(harmonics=2, amplitude=0.23), ref.paper_coefficients(0.23, 2)),
    ("stableqat", dict(harmonics=3, coefficients=[0.2, -0.02, 0.005]), [0.2, -0.02, 0.005]),
]


@pytest.mark.parametrize("estimator,kwargs,coefficients", CASES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 2e-5), (torch.float64, 1e-12)])
def test_backward_matches_paper_eq10(estimator, kwargs, coefficients, layout, dtype, tol):
    """dx within tol*|dy| of an eager float64 transcription of Eq. 10; dstep within tol of sum|terms|."""
    x = data(dtype=dtype, scale=0.4)
    s = steps_for(x, layout)
    dy = data(dtype=dtype, seed=1)
    dx, ds, doff, dalpha = stableqat.fake_quantize_backward(dy, x, s, 2, estimator=estimator, **kwargs, **layout)
    assert doff is None and dalpha is None
    x64, s64, dy64 = x.double(), s.double(), dy.double()
    want_dx, want_ds = ref.backward(dy64, x64, s64, 2, coefficients, **layout)
    assert ((dx.double() - want_dx).abs() <= tol * dy64.abs()).all()
    # summation error bound: relative to grad_scale * sum |term|
    _, mag = ref.backward(dy64.abs(), x64, s64, 2, coefficients, **layout)
    v = x64 * (1 / ref.expand_steps(x64, s64, **layout))
    scale = 1 / math.sqrt(x.numel() * 1)
    bound = scale * ref.reduce_steps(dy64.abs() * (v.abs() + 2), s64, **layout)
    assert ((ds.double() - want_ds).abs() <= tol * bound).all()
    assert mag is not None


def test_autograd_equals_backward_op_and_grad_scale_is_whole_tensor():
    x = data().requires_grad_()
    s = steps_for(x, dict(axis=0)).requires_grad_()
    dy = data(seed=5)
    stableqat.fake_quantize(x, s, 4, axis=0, estimator="stableqat").backward(dy)
    dx, ds, _, _ = stableqat.fake_quantize_backward(dy, x.detach(), s.detach(), 4, axis=0, estimator="stableqat")
    assert torch.equal(x.grad, dx) and torch.equal(s.grad, ds)
    # default grad_scale = 1/sqrt(numel * qmax) over the whole matrix, even per row
    _, ds1, _, _ = stableqat.fake_quantize_backward(dy, x.detach(), s.detach(), 4, axis=0, estimator="stableqat",
                                                    grad_scale=1.0)
    assert torch.allclose(ds, ds1 / math.sqrt(x.numel() * 7), rtol=1e-6, atol=0)


def test_surrogate_reference_values():
    """DESIGN reference values, A = 0.21, K = 1: g(0) = 0.0346582, g(0.25) = 0.205012, g(0.5) = 1."""
    x = torch.tensor([0.0, 0.25, 0.5, 1.25], dtype=torch.float64)
    dx, _, _, _ = stableqat.fake_quantize_backward(torch.ones_like(x), x, torch.ones(1, dtype=torch.float64), 4,
                                                   estimator="stableqat")
    assert torch.allclose(dx, torch.tensor([0.0346582, 0.205012, 1.0, 0.205012], dtype=torch.float64), atol=1e-6)


def saturated(shape, dtype=torch.float64, seed=0):
    """Values at least 3 steps beyond the grid edges: there the op's gradients are true derivatives."""
    g = torch.Generator().manual_seed(seed)
    magnitude = 12.0 + 4 * torch.rand(shape, generator=g, dtype=dtype)
    sign = torch.where(torch.rand(shape, generator=g, dtype=dtype) < 0.5, -1.0, 1.0).to(dtype)
    return magnitude * sign


@pytest.mark.parametrize("estimator,kwargs", [(e, k) for e, k, _ in CASES])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_gradcheck_where_the_gradient_is_a_true_derivative(estimator, kwargs, layout):
    """Outside the grid y = s*edge + b: dx = 0, dstep = edge, doffset = 1 are exact derivatives (grad_scale=1).
    Inside, surrogate gradients are not derivatives of the forward: those are checked against Eq. 10 above."""
    x = saturated((4, 8)).requires_grad_()
    s = steps_for(x, layout, value=1.0, dtype=torch.float64).requires_grad_()
    b = (0.01 * torch.arange(s.numel(), dtype=torch.float64)).requires_grad_()

    def f(x, s, b):
        return stableqat.fake_quantize(x, s, 3, offset=b, estimator=estimator, grad_scale=1.0, **kwargs, **layout)

    assert torch.autograd.gradcheck(f, (x, s, b), eps=1e-6, atol=1e-9)


def test_offset_gradients_sum_to_dy():
    x = data(dtype=torch.float64)
    s = steps_for(x, dict())
    b = torch.tensor([0.02], dtype=torch.float64)
    dy = data(dtype=torch.float64, seed=4)
    dx, ds, db, _ = stableqat.fake_quantize_backward(dy, x, s, 2, offset=b, estimator="stableqat", grad_scale=1.0)
    assert torch.allclose(dx.sum() + db.sum(), dy.sum(), atol=1e-12)


def test_non_contiguous_and_leading_shapes():
    base = data((6, 5, 16), dtype=torch.float64)
    x = base.transpose(1, 2)  # non-contiguous view, shape [6, 16, 5]
    assert not x.is_contiguous()
    s = steps_for(x, dict(axis=0))
    dy = data((6, 16, 5), dtype=torch.float64, seed=2)
    xr = x.clone().requires_grad_()
    y = stableqat.fake_quantize(xr, s, 3, axis=0, estimator="stableqat")
    assert torch.equal(y, ref.forward(x.contiguous(), s, 3, axis=0))
    y.backward(dy)
    want_dx, _ = ref.backward(dy, x.contiguous(), s, 3, ref.paper_coefficients(0.21, 1), axis=0)
    assert torch.allclose(xr.grad, want_dx, atol=1e-12, rtol=0)
    # a view as input with an expanded (stride-0) upstream gradient from sum()
    xv = base.transpose(1, 2).requires_grad_()
    stableqat.fake_quantize(xv, s, 3, axis=0).sum().backward()
    want_dx, _ = ref.backward(torch.ones_like(dy), x.contiguous(), s, 3, axis=0)
    assert torch.equal(xv.grad, want_dx)
    # a non-contiguous step
    s2 = torch.stack([s, s], 1)[:, 0]
    assert not s2.is_contiguous()
    assert torch.equal(stableqat.fake_quantize(x, s2, 3, axis=0), ref.forward(x.contiguous(), s, 3, axis=0))


def test_empty_tensor():
    x = torch.empty(0, 8, requires_grad=True)
    s = torch.ones(1, requires_grad=True)
    y = stableqat.fake_quantize(x, s, 2)
    y.sum().backward()
    assert y.shape == (0, 8) and torch.equal(s.grad, torch.zeros(1))


def test_nan_and_inf():
    x = torch.tensor([float("nan"), float("inf"), -float("inf"), 0.3])
    s = torch.ones(1)
    y = stableqat.fake_quantize(x, s, 2)
    assert math.isnan(y[0]) and y[1] == 1 and y[2] == -2 and y[3] == 0
    dx, ds, _, _ = stableqat.fake_quantize_backward(torch.ones(4), x, s, 2, estimator="stableqat")
    assert torch.equal(dx[:3], torch.zeros(3)) and math.isnan(ds[0])


def test_step_gradient_does_not_depend_on_thread_count():
    x = data((1 << 20,), seed=7)
    dy = data((1 << 20,), seed=8)
    s = torch.tensor([0.1])
    old = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            results.append(stableqat.fake_quantize_backward(dy, x, s, 2, estimator="stableqat", mask_band="aten"))
    finally:
        torch.set_num_threads(old)
    for r in results[1:]:
        assert torch.equal(r[0], results[0][0]) and torch.equal(r[1], results[0][1])


@pytest.mark.parametrize("bits,grid,rule", [(1, "signed", "mean"), (2, "signed", "max"), (2, "ternary", "max"),
                                            (3, "signed", "max/3"), (4, "signed", "max/7")])
def test_init_step_official_rules(bits, grid, rule):
    w = data((8, 32), dtype=torch.float64)
    got = stableqat.init_step(w, bits, grid=grid, axis=0)
    mean, top = w.abs().mean(1), w.abs().amax(1)
    want = {"mean": mean, "max": top, "max/3": top / 3, "max/7": top / 7}[rule]
    assert torch.allclose(got, want, rtol=1e-15, atol=0)


def test_init_step_lsq_and_errors():
    w = data((4, 16), dtype=torch.float64)
    assert torch.allclose(stableqat.init_step(w, 4, rule="lsq"), 2 * w.abs().mean() / math.sqrt(7), rtol=1e-15)
    w[2] = 0
    with pytest.raises(ValueError, match=r"step\[2\]"):
        stableqat.init_step(w, 4, axis=0)
    with pytest.raises(ValueError, match="rule"):
        stableqat.init_step(w, 4, rule="median")
