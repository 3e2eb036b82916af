"""Bad input: a Python exception naming the argument, nothing written, no crash."""

import pytest
import torch

import stableqat

X = torch.randn(4, 8)


def call(x=None, step=None, **kw):
    x = X.clone() if x is None else x
    step = torch.full((4,), 0.1) if step is None else step
    kw.setdefault("axis", 0)
    return stableqat.fake_quantize(x, step, kw.pop("bits", 2), **kw)


CASES = [
    # (exception, message fragment, arguments)
    (RuntimeError, "x has dtype Int", dict(x=torch.ones(4, 8, dtype=torch.int32))),
    (RuntimeError, "x has dtype ComplexFloat", dict(x=torch.ones(4, 8, dtype=torch.complex64))),
    # float16 x is computed in float32: its step must be float32 (tests/torch/test_half.py)
    (RuntimeError, "step has dtype Half but x has dtype Half; it must be Float",
     dict(x=torch.ones(4, 8, dtype=torch.float16), step=torch.full((4,), 0.1, dtype=torch.float16))),
    (RuntimeError, "step has dtype Double", dict(step=torch.full((4,), 0.1, dtype=torch.float64))),
    (ValueError, "step.numel() = 3", dict(step=torch.full((3,), 0.1))),
    (ValueError, "steps[1] = 0", dict(step=torch.tensor([0.1, 0.0, 0.1, 0.1]))),
    (ValueError, "steps[2] = -0.1", dict(step=torch.tensor([0.1, 0.1, -0.1, 0.1]))),
    (ValueError, "steps[0] = nan", dict(step=torch.tensor([float("nan"), 0.1, 0.1, 0.1]))),
    (ValueError, "steps[3] = inf", dict(step=torch.tensor([0.1, 0.1, 0.1, float("inf")]))),
    (ValueError, "steps[0] = 1e-45", dict(step=torch.tensor([1e-45, 0.1, 0.1, 0.1]))),
    (ValueError, "offsets[1] = nan", dict(offset=torch.tensor([0.0, float("nan"), 0.0, 0.0]))),
    (ValueError, "offset.numel() = 2", dict(offset=torch.zeros(2))),
    (ValueError, "bits = 17", dict(bits=17)),
    (ValueError, "bits = 3 must be 2 for grid = 'ternary'", dict(bits=3, grid="ternary")),
    (ValueError, "grid = 'nf4'", dict(grid="nf4")),
    (ValueError, "axis = 1", dict(axis=1)),
    (ValueError, "group_size = 3 does not divide", dict(axis=None, group_size=3)),
    (ValueError, "group_size = 0", dict(axis=None, group_size=0)),
    (ValueError, "group_size = 8 cannot be combined with axis", dict(group_size=8)),
    (ValueError, "estimator = 'lsq'", dict(estimator="lsq")),
    (ValueError, "harmonics = 4", dict(estimator="stableqat", harmonics=4)),
    (ValueError, "harmonics = 0", dict(estimator="stableqat", harmonics=0)),
    (ValueError, "amplitude = 0.3", dict(estimator="stableqat", amplitude=0.3)),
    (ValueError, "amplitude = nan", dict(estimator="stableqat", amplitude=float("nan"))),
    (ValueError, "params = a list of 2 values", dict(estimator="stableqat", harmonics=3, coefficients=[0.1, 0.0])),
    (ValueError, "coefficients[1] = inf", dict(estimator="stableqat", harmonics=2, coefficients=[0.1, float("inf")])),
    (ValueError, "reach", dict(estimator="stableqat", harmonics=2, coefficients=[0.3, 0.1])),
    (ValueError, "alpha = a tensor", dict(alpha=torch.tensor([0.2]))),
    (ValueError, "grad_scale = inf", dict(grad_scale=float("inf"))),
    (ValueError, "mask_band = 'round'", dict(mask_band="round")),
    (ValueError, "mask_band = 'aten' has no meaning on the binary", dict(bits=1, mask_band="aten")),
    (ValueError, "amplitude or coefficients, not both", dict(estimator="stableqat", amplitude=0.2, coefficients=[0.2])),
    # the baselines: DSQ's alpha, EWGS's delta, the stretched elastic grid's bits, and what cannot be combined
    (ValueError, "alpha = 1.5", dict(estimator="dsq", alpha=torch.tensor([1.5]))),
    (ValueError, "alpha = 0 ", dict(estimator="dsq", alpha=torch.tensor([0.0]))),
    (ValueError, "alpha = -0.2", dict(estimator="dsq", alpha=torch.tensor(-0.2))),
    (ValueError, "alpha = nan", dict(estimator="dsq", alpha=torch.tensor([float("nan")]))),
    (ValueError, "alpha.numel() = 2", dict(estimator="dsq", alpha=torch.tensor([0.2, 0.3]))),
    (RuntimeError, "alpha has dtype Double", dict(estimator="dsq", alpha=torch.tensor([0.2], dtype=torch.float64))),
    (ValueError, "alpha = None but estimator = 'dsq' needs it", dict(estimator="dsq")),
    (ValueError, "grid = 'signed' with bits = 1 cannot be used with estimator = 'dsq'",
     dict(bits=1, estimator="dsq", alpha=torch.tensor([0.2]))),
    (ValueError, "grid = 'stretched_elastic' cannot be used with estimator = 'dsq'",
     dict(grid="stretched_elastic", estimator="dsq", alpha=torch.tensor([0.2]))),
    (ValueError, "delta = -0.1", dict(estimator="ewgs", delta=-0.1)),
    (ValueError, "delta = 2 ", dict(estimator="ewgs", delta=2.0)),
    (ValueError, "delta = inf", dict(estimator="ewgs", delta=float("inf"))),
    (ValueError, "delta is required for estimator='ewgs'", dict(estimator="ewgs")),
    (ValueError, "delta applies to estimator='ewgs'", dict(estimator="ste", delta=0.1)),
    (ValueError, "bits = 3 must be 2 for grid = 'stretched_elastic'", dict(bits=3, grid="stretched_elastic")),
    (ValueError, "bits = 1 must be 2 for grid = 'stretched_elastic_ternary'",
     dict(bits=1, grid="stretched_elastic_ternary")),
    (ValueError, "mask_band = 'aten' has no meaning on the stretched elastic grid",
     dict(grid="stretched_elastic", mask_band="aten")),
    (ValueError, "mask_band = 'aten' is offered for estimator = 'ste' and 'stableqat' only",
     dict(estimator="ewgs", delta=0.1, mask_band="aten")),
]


@pytest.mark.parametrize("error,fragment,kwargs", CASES, ids=[c[1] for c in CASES])
def test_forward_refuses(error, fragment, kwargs):
    x = kwargs.pop("x", X.clone())
    x.requires_grad_(x.is_floating_point())
    before = x.detach().clone()
    with pytest.raises(error, match=fragment.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
                       .replace("]", r"\]").replace(".", r"\.")):
        call(x, **kwargs)
    assert torch.equal(x.detach(), before) and x.grad is None


@pytest.mark.parametrize("error,fragment,kwargs", CASES[3:], ids=[c[1] for c in CASES[3:]])
def test_backward_refuses(error, fragment, kwargs):
    step = kwargs.pop("step", torch.full((4,), 0.1))
    bits = kwargs.pop("bits", 2)
    kwargs.setdefault("axis", 0)
    with pytest.raises(error):
        stableqat.fake_quantize_backward(torch.ones(4, 8), X, step, bits, **kwargs)


def test_backward_shape_and_device_errors():
    with pytest.raises(ValueError, match="dy has shape"):
        stableqat.fake_quantize_backward(torch.ones(4, 7), X, torch.full((4,), 0.1), 2, axis=0)
    with pytest.raises(RuntimeError, match="dy has dtype Double"):
        stableqat.fake_quantize_backward(torch.ones(4, 8, dtype=torch.float64), X, torch.full((4,), 0.1), 2, axis=0)
    with pytest.raises(RuntimeError, match="x is on device meta; this op library has CPU kernels only"):
        stableqat.fake_quantize(torch.ones(4, 8, device="meta"), torch.ones(1, device="meta"), 2)
    with pytest.raises(RuntimeError, match="step is on device meta"):
        stableqat.fake_quantize(X, torch.ones(1, device="meta"), 2)


def test_error_after_backward_leaves_gradients_untouched():
    x = X.clone().requires_grad_()
    s = torch.full((4,), 0.1, requires_grad=True)
    y = stableqat.fake_quantize(x, s, 2, axis=0)
    with torch.no_grad():
        s[1] = -1.0  # invalid by the time backward runs
    with pytest.raises(RuntimeError):  # autograd reports the op's ValueError as RuntimeError or ValueError
        y.sum().backward()
    assert x.grad is None and s.grad is None


def test_module_level_errors():
    with pytest.raises(ValueError, match="estimator"):
        stableqat.QuantLinear(4, 4, estimator="magic")
    with pytest.raises(ValueError, match="grid"):
        stableqat.QuantLinear(4, 4, grid="nf4")
    with pytest.raises(ValueError, match="step\\[0\\]"):
        layer = torch.nn.Linear(4, 2)
        torch.nn.init.zeros_(layer.weight)
        stableqat.QuantLinear.from_linear(layer)
