"""The paper's baselines through torch.ops.stableqat: DSQ, EWGS and ParetoQ's stretched elastic grid (SEQ).

Every expected value comes from tests/torch/reference.py (DESIGN.md's formulas
transcribed with torch ops) or from finite differences, never from the op itself.
"""

import math

import pytest
import torch

import reference as ref
import stableqat

DTYPES = [torch.float32, torch.float64]
# float32: the op sums in double, the reference in float32; float64: both in double.
TOL = {torch.float32: dict(rtol=2e-5, atol=2e-6), torch.float64: dict(rtol=1e-11, atol=1e-13)}
LAYOUTS = [dict(), dict(axis=0), dict(group_size=8)]


def weights(dtype, rows=6, cols=16, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(rows, cols, generator=g, dtype=torch.float64)).to(dtype)


def steps_for(x, layout, value=0.3):
    count = 1 if not layout else (x.shape[0] if "axis" in layout else x.numel() // layout["group_size"])
    g = torch.Generator().manual_seed(7)
    return (value * (1 + 0.2 * torch.rand(count, generator=g, dtype=torch.float64))).to(x.dtype)


def upstream(x, seed=3):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(x.shape, generator=g, dtype=torch.float64).to(x.dtype)


# --- DSQ ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", LAYOUTS, ids=["tensor", "axis0", "group8"])
@pytest.mark.parametrize("bits,grid", [(2, "signed"), (4, "signed"), (3, "unsigned"), (2, "ternary")])
def test_dsq_forward_and_backward_match_the_formulas(dtype, layout, bits, grid):
    x = weights(dtype, scale=0.8)
    if grid == "unsigned":
        x = x.abs()
    step = steps_for(x, layout)
    alpha = torch.tensor([0.3], dtype=dtype)
    dy = upstream(x)
    kw = dict(grid=grid, estimator="dsq", alpha=alpha, **layout)
    y = stableqat.fake_quantize(x, step, bits, **kw)
    assert torch.equal(y, ref.dsq_forward(x, step, bits, 0.3, grid, **layout).to(dtype))
    dx, dstep, doffset, dalpha = stableqat.fake_quantize_backward(dy, x, step, bits, **kw)
    assert doffset is None and dalpha.shape == alpha.shape and dalpha.dtype == dtype
    # the reference in float64 from the same (rounded) inputs; alpha as the op reads it
    a = float(alpha)
    rdx, rdstep, rdalpha = ref.dsq_backward(dy.double(), x.double(), step.double(), bits, a, grid, **layout)
    assert torch.allclose(dx.double(), rdx, **TOL[dtype])
    assert torch.allclose(dstep.double(), rdstep, **TOL[dtype])
    assert torch.allclose(dalpha.double(), rdalpha.reshape(1), rtol=TOL[dtype]["rtol"] * 10,
                          atol=1e-5 if dtype == torch.float32 else 1e-12)
    assert rdalpha.abs() > 1e-3  # a real gradient, not a vacuous zero


def test_dsq_ties_go_down_and_band_edges():
    # v = x/s with s = 1 (exact): ties k + 1/2 round down (phi = 0 is not > 0), unlike round-half-even.
    x = torch.tensor([[-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, -2.75, 1.75]], dtype=torch.float64)
    step = torch.ones(1, dtype=torch.float64)
    alpha = torch.tensor(0.2, dtype=torch.float64)
    y = stableqat.fake_quantize(x, step, 2, estimator="dsq", alpha=alpha)
    assert y.tolist() == [[-2.0, -2.0, -1.0, 0.0, 1.0, 1.0, -2.0, 1.0]]
    # band qmin - 1/2 < v <= qmax + 1/2 on [-2, 1]: -2.5 and -2.75 out, 1.5 in, 1.75 and 2.5 out
    dx, dstep, _, _ = stableqat.fake_quantize_backward(torch.ones_like(x), x, step, 2, estimator="dsq", alpha=alpha,
                                                       grad_scale=1.0)
    inside = [False, True, True, True, True, False, False, False]
    assert [bool(v != 0) for v in dx[0]] == inside
    # at a tie d = 0: g = scale k / 2, the peak of DSQ's derivative
    k, scale = math.log(2 / 0.2 - 1), 1 / 0.8
    assert dx[0, 1].item() == pytest.approx(0.5 * scale * k, rel=1e-14)
    rdx, rdstep, _ = ref.dsq_backward(torch.ones_like(x), x, step, 2, 0.2, grad_scale=1.0)
    assert torch.allclose(dx, rdx, rtol=1e-13, atol=0) and torch.allclose(dstep, rdstep, rtol=1e-13)


class _SoftDSQ(torch.autograd.Function):
    """s * L(x/s; alpha), DSQ's smooth part (reference.py), differentiated by the op's backward.

    Inside the band the op's dx and d alpha are the true derivatives of this
    function; its step term uses the hard level where d/ds s L(x/s) has L, so
    the difference sum dy (L - level) is added back: what remains is the
    op's -v g, checked against finite differences.
    """

    @staticmethod
    def forward(ctx, x, step, alpha, axis):
        ctx.save_for_backward(x, step, alpha)
        ctx.axis = axis
        p = ref.dsq_parts(x, step, 2, float(alpha), axis=axis)
        return p["s"] * p["soft"]

    @staticmethod
    def backward(ctx, dy):
        x, step, alpha = ctx.saved_tensors
        dx, dstep, _, dalpha = stableqat.fake_quantize_backward(dy, x, step, 2, axis=ctx.axis, estimator="dsq",
                                                                alpha=alpha, grad_scale=1.0)
        p = ref.dsq_parts(x, step, 2, float(alpha), axis=ctx.axis)
        dstep = dstep + ref.reduce_steps(dy * (p["soft"] - p["level"]), step, axis=ctx.axis)
        return dx, dstep, dalpha, None


@pytest.mark.parametrize("axis", [None, 0])
@pytest.mark.parametrize("alpha", [0.05, 0.2, 0.6])
def test_dsq_gradients_are_derivatives_of_the_smooth_part(axis, alpha):
    g = torch.Generator().manual_seed(11)
    # 2-bit grid [-2, 1]: keep v = x/s inside the band (-2.5, 1.5] with a margin
    v = -2.3 + 3.6 * torch.rand(4, 5, generator=g, dtype=torch.float64)
    step = torch.tensor([0.4, 0.5, 0.45, 0.6], dtype=torch.float64) if axis == 0 else torch.tensor([0.5],
                                                                                                    dtype=torch.float64)
    x = (v * ref.expand_steps(v, step, axis)).requires_grad_()
    step.requires_grad_()
    a = torch.tensor([alpha], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, s, a: _SoftDSQ.apply(x, s, a, axis), (x, step, a), eps=1e-7,
                                    atol=1e-6, rtol=1e-5)


def test_dsq_alpha_gradient_equals_autograd_of_the_soft_level():
    # d alpha = sum inside dy * s * dL/dalpha, with dL/dalpha from torch's autograd of reference.dsq_parts.
    x = weights(torch.float64, scale=0.7)
    step = steps_for(x, dict(axis=0))
    dy = upstream(x)
    a = torch.tensor(0.25, dtype=torch.float64, requires_grad=True)
    p = ref.dsq_parts(x, step, 3, a, axis=0)
    (p["s"] * p["soft"] * dy * p["inside"]).sum().backward()
    _, _, _, dalpha = stableqat.fake_quantize_backward(dy, x, step, 3, axis=0, estimator="dsq", alpha=a.detach())
    assert dalpha.item() == pytest.approx(a.grad.item(), rel=1e-12)


def test_dsq_autograd_reaches_alpha():
    x = weights(torch.float32).requires_grad_()
    step = torch.full((6,), 0.3, requires_grad=True)
    alpha = torch.tensor(0.2, requires_grad=True)
    dy = upstream(x)
    y = stableqat.fake_quantize(x, step, 2, axis=0, estimator="dsq", alpha=alpha)
    (y * dy).sum().backward()
    dx, dstep, _, dalpha = stableqat.fake_quantize_backward(dy, x.detach(), step.detach(), 2, axis=0,
                                                            estimator="dsq", alpha=alpha.detach())
    assert torch.equal(x.grad, dx) and torch.equal(step.grad, dstep) and torch.equal(alpha.grad, dalpha)


def test_dsq_with_offset_shifts_x():
    # y(x, s, b) = s * level((x - b)/s) + b; with b = s*k (k integer) the levels shift by k exactly
    x = weights(torch.float64)
    step = torch.full((1,), 0.25, dtype=torch.float64)
    alpha = torch.tensor(0.3, dtype=torch.float64)
    y0 = stableqat.fake_quantize(x - 0.5, step, 4, estimator="dsq", alpha=alpha)
    y1 = stableqat.fake_quantize(x, step, 4, estimator="dsq", alpha=alpha, offset=torch.full((1,), 0.5,
                                                                                              dtype=torch.float64))
    assert torch.allclose(y1, y0 + 0.5, rtol=0, atol=1e-15)


# --- EWGS ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", LAYOUTS, ids=["tensor", "axis0", "group8"])
@pytest.mark.parametrize("delta", [1e-3, 0.2, 1.5])
def test_ewgs_backward_matches_the_formula(dtype, layout, delta):
    x = weights(dtype)
    step = steps_for(x, layout)
    dy = upstream(x)
    dx, dstep, _, dalpha = stableqat.fake_quantize_backward(dy, x, step, 3, estimator="ewgs", delta=delta, **layout)
    assert dalpha is None
    rdx, rdstep = ref.ewgs_backward(dy.double(), x.double(), step.double(), 3, delta, **layout)
    assert torch.allclose(dx.double(), rdx, **TOL[dtype])
    assert torch.allclose(dstep.double(), rdstep, **TOL[dtype])
    # the forward is the plain round-half-even quantizer
    assert torch.equal(stableqat.fake_quantize(x, step, 3, estimator="ewgs", delta=delta, **layout),
                       ref.forward(x, step, 3, **layout))


@pytest.mark.parametrize("grid,bits", [("signed", 2), ("signed", 1), ("stretched_elastic", 2)])
def test_ewgs_delta_zero_is_ste_bit_for_bit(grid, bits):
    x = weights(torch.float32, rows=64, cols=33)
    step = steps_for(x, dict(axis=0))
    dy = upstream(x)
    ewgs = stableqat.fake_quantize_backward(dy, x, step, bits, axis=0, grid=grid, estimator="ewgs", delta=0.0)
    ste = stableqat.fake_quantize_backward(dy, x, step, bits, axis=0, grid=grid, estimator="ste")
    assert torch.equal(ewgs[0], ste[0]) and torch.equal(ewgs[1], ste[1])
    assert torch.equal(stableqat.fake_quantize(x, step, bits, axis=0, grid=grid, estimator="ewgs", delta=0.0),
                       stableqat.fake_quantize(x, step, bits, axis=0, grid=grid))


def test_ewgs_delta_zero_is_ste_in_float64():
    # float64 EWGS runs exec::seq, STE exec::par: dx is identical, the step sums differ only in summation order
    x = weights(torch.float64, rows=64, cols=33)
    step = steps_for(x, dict(axis=0))
    dy = upstream(x)
    ewgs = stableqat.fake_quantize_backward(dy, x, step, 2, axis=0, estimator="ewgs", delta=0.0)
    ste = stableqat.fake_quantize_backward(dy, x, step, 2, axis=0, estimator="ste")
    assert torch.equal(ewgs[0], ste[0])
    assert torch.allclose(ewgs[1], ste[1], rtol=1e-14, atol=1e-16)


def test_ewgs_gradient_depends_on_the_sign_of_dy():
    # r = v - round(v) = 0.25 at v = 1.25: dy > 0 scales by 1 + delta r, dy < 0 by 1 - delta r
    x = torch.tensor([1.25, 1.25], dtype=torch.float64)
    dy = torch.tensor([2.0, -2.0], dtype=torch.float64)
    dx, _, _, _ = stableqat.fake_quantize_backward(dy, x, torch.ones(1, dtype=torch.float64), 4, estimator="ewgs",
                                                   delta=0.4)
    assert dx.tolist() == [2.0 * 1.1, -2.0 * 0.9]


# --- ParetoQ's stretched elastic grid ------------------------------------------------------------------------

SEQ_GRIDS = ["stretched_elastic", "stretched_elastic_ternary"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("grid", SEQ_GRIDS)
@pytest.mark.parametrize("layout", LAYOUTS, ids=["tensor", "axis0", "group8"])
def test_seq_forward_levels(dtype, grid, layout):
    x = weights(dtype, scale=0.5)
    step = steps_for(x, layout, value=1.0)
    y = stableqat.fake_quantize(x, step, 2, grid=grid, **layout)
    assert torch.equal(y, ref.seq_forward(x, step, grid, **layout))
    levels = {"stretched_elastic": {-0.75, -0.25, 0.25, 0.75}, "stretched_elastic_ternary": {-2 / 3, 0.0, 2 / 3}}
    q = (y.double() / ref.expand_steps(x, step, **layout).double()).flatten().tolist()
    assert {round(v, 6) for v in q} == {round(v, 6) for v in levels[grid]}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("grid", SEQ_GRIDS)
@pytest.mark.parametrize("estimator", ["ste", "stableqat", "ewgs"])
def test_seq_backward_matches_the_formula(dtype, grid, estimator):
    x = weights(dtype, scale=0.5)
    step = steps_for(x, dict(axis=0), value=1.0)  # some |x/s| beyond the clip 0.99
    dy = upstream(x)
    kw = dict(delta=0.3) if estimator == "ewgs" else {}
    dx, dstep, _, _ = stableqat.fake_quantize_backward(dy, x, step, 2, grid=grid, axis=0, estimator=estimator, **kw)
    coefficients = ref.paper_coefficients(0.21, 1) if estimator == "stableqat" else ()
    rdx, rdstep = ref.seq_backward(dy.double(), x.double(), step.double(), grid, coefficients, axis=0,
                                   ewgs_delta=kw.get("delta"))
    assert torch.allclose(dx.double(), rdx, **TOL[dtype])
    assert torch.allclose(dstep.double(), rdstep, **TOL[dtype])
    assert (ref.seq_coordinates(x, step, grid, axis=0)[1].abs() > ref.SEQ_CLIP).any()  # the outside term is tested


@pytest.mark.parametrize("grid", SEQ_GRIDS)
def test_seq_init_step_is_max_abs_per_row(grid):
    x = weights(torch.float32)
    step = stableqat.init_step(x, 2, grid=grid, axis=0)
    assert torch.equal(step, x.abs().amax(1))


def test_seq_quantlinear_and_export_round_trip():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 8))
    assert stableqat.quantize_model(model, bits=2, estimator="ste", grid="stretched_elastic", skip=()) == ["0"]
    layer = model[0]
    assert "grid='stretched_elastic'" in repr(layer)
    assert torch.equal(layer.weight_step.detach(), layer.weight.detach().abs().amax(1))
    exported = stableqat.export_quantized(model)
    assert torch.equal(stableqat.dequantize_entry(exported["0"]), layer.quantized_weight().detach())


# --- QuantLinear with DSQ / EWGS ------------------------------------------------------------------------------

def test_quantlinear_dsq_alpha_is_a_learnable_parameter():
    torch.manual_seed(1)
    layer = stableqat.QuantLinear(8, 4, bits=2, estimator="dsq", alpha=0.25)
    names = [name for name, _ in layer.named_parameters()]
    assert names == ["weight", "bias", "weight_alpha", "weight_step"]
    assert layer.weight_alpha.shape == () and layer.weight_alpha.item() == pytest.approx(0.25)
    assert "estimator='dsq', alpha=0.25" in repr(layer)
    x = torch.randn(3, 8)
    layer(x).square().sum().backward()
    assert layer.weight_alpha.grad is not None and layer.weight_alpha.grad.item() != 0
    # state_dict round trip into a fresh layer
    other = stableqat.QuantLinear(8, 4, bits=2, estimator="dsq")
    other.load_state_dict(layer.state_dict())
    assert set(layer.state_dict()) == {"weight", "bias", "weight_alpha", "weight_step"}
    assert torch.equal(other(x), layer(x)) and other.weight_alpha.item() == pytest.approx(0.25)
    # other estimators have no alpha
    assert stableqat.QuantLinear(8, 4, estimator="ste").weight_alpha is None


def test_quantlinear_dsq_clamps_alpha_in_forward():
    layer = stableqat.QuantLinear(8, 4, bits=2, estimator="dsq")
    with torch.no_grad():
        layer.weight_alpha.fill_(1.7)  # an optimizer step past 1
    lo, hi = stableqat.nn.DSQ_ALPHA_RANGE
    expected = stableqat.fake_quantize(layer.weight.detach(), layer.weight_step.detach(), 2, axis=0,
                                       estimator="dsq", alpha=torch.tensor(hi))
    assert torch.equal(layer.quantized_weight().detach(), expected)
    layer(torch.randn(2, 8)).sum().backward()
    assert layer.weight_alpha.grad.item() == 0  # clamped: no gradient until it comes back


def test_quantlinear_ewgs_delta():
    layer = stableqat.QuantLinear(8, 4, bits=2, estimator="ewgs", delta=0.01)
    assert "estimator='ewgs', delta=0.01" in repr(layer)
    layer.set_delta(0.5)
    assert layer.params == [0.5]
    with pytest.raises(ValueError, match="delta"):
        stableqat.QuantLinear(8, 4, estimator="ewgs")
    with pytest.raises(ValueError, match="set_delta"):
        stableqat.QuantLinear(8, 4, estimator="ste").set_delta(0.1)


def test_quantize_model_with_dsq_gives_each_layer_its_alpha():
    model = torch.nn.Sequential(torch.nn.Linear(6, 6), torch.nn.ReLU(), torch.nn.Linear(6, 2))
    assert stableqat.quantize_model(model, bits=4, estimator="dsq", skip=()) == ["0", "2"]
    alphas = [name for name, _ in model.named_parameters() if name.endswith("weight_alpha")]
    assert alphas == ["0.weight_alpha", "2.weight_alpha"]


def test_torchscript_quantlinear_dsq(tmp_path):
    torch.manual_seed(2)
    model = torch.nn.Sequential(stableqat.QuantLinear(8, 4, bits=2, estimator="dsq"), torch.nn.ReLU(),
                                stableqat.QuantLinear(4, 3, bits=2, estimator="stableqat"))
    scripted = torch.jit.script(model)
    path = tmp_path / "dsq.pt"
    torch.jit.save(scripted, str(path))
    loaded = torch.jit.load(str(path))
    x = torch.randn(5, 8)
    outputs = []
    for m in (model, scripted, loaded):
        m.zero_grad()
        y = m(x)
        y.square().sum().backward()
        outputs.append((y.detach(), [p.grad.clone() for p in m.parameters()]))
    for y, grads in outputs[1:]:
        assert torch.equal(y, outputs[0][0])
        assert all(torch.equal(a, b) for a, b in zip(grads, outputs[0][1]))
    assert outputs[0][1][2].shape == ()  # weight_alpha's gradient reached
