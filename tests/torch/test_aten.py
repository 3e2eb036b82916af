"""Parity with ATen's fake quantization, and the one documented difference (the mask band).

By design: (1) ATen returns +0 where an element rounds to zero from below; this
library returns s * (-0) = -0 (as torch.round does). Values compare equal.
(2) ATen gives a gradient where the *rounded* value is on the grid,
qmin <= round(v) <= qmax; the library's default ('official', LSQ and the
official StableQAT code) tests v itself, qmin <= v <= qmax. mask_band='aten'
reproduces ATen's band. (ATen's per-tensor learnable kernel also misreads a
negative zero point; every case here uses zero point 0.)
"""

import pytest
import torch

import stableqat


def weights(rows=64, cols=257, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(rows, cols, generator=g) * torch.linspace(0.5, 2.0, rows).unsqueeze(1)


def row_steps(w, bits):
    return (w.abs().amax(1) / (2 ** (bits - 1) - 0.5)).float()  # a few elements land beyond the grid


def same_bits_up_to_zero_sign(a, b):
    # +0.0 turns -0 into +0 and changes nothing else
    return torch.equal((a + 0.0).view(torch.int32), (b + 0.0).view(torch.int32))


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_forward_per_tensor_matches_aten(bits):
    x = weights().reshape(-1)
    s = torch.tensor([float(x.abs().max()) / (2 ** (bits - 1) - 0.5)])
    qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    ours = stableqat.fake_quantize(x, s, bits)
    aten = torch.fake_quantize_per_tensor_affine(x, float(s), 0, qmin, qmax)
    assert same_bits_up_to_zero_sign(ours, aten)
    # the sign-of-zero difference, named: ours is -0 exactly where a negative x rounds to zero
    negative_zero = (ours == 0) & torch.signbit(ours)
    assert torch.equal(negative_zero, (x < 0) & (torch.round(x * (1 / s)) == 0))
    assert not torch.signbit(aten[aten == 0]).any()


@pytest.mark.parametrize("bits,unsigned", [(2, False), (4, False), (4, True)])
def test_forward_per_channel_matches_aten(bits, unsigned):
    w = weights()
    if unsigned:
        w = w.abs()
    s = row_steps(w, bits)
    qmin, qmax = (0, 2 ** bits - 1) if unsigned else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    ours = stableqat.fake_quantize(w, s, bits, axis=0, grid="unsigned" if unsigned else "signed")
    aten = torch.fake_quantize_per_channel_affine(w, s, torch.zeros(w.shape[0], dtype=torch.int32), 0, qmin, qmax)
    assert same_bits_up_to_zero_sign(ours, aten)


def aten_learnable(w, s, bits, grad_factor, dy, per_channel=True):
    qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    x = w.clone().requires_grad_()
    scale = s.clone().requires_grad_()
    if per_channel:
        zp = torch.zeros_like(s, requires_grad=True)
        y = torch._fake_quantize_learnable_per_channel_affine(x, scale, zp, 0, qmin, qmax, grad_factor)
    else:
        zp = torch.zeros(1, requires_grad=True)
        y = torch._fake_quantize_learnable_per_tensor_affine(x, scale, zp, qmin, qmax, grad_factor)
    y.backward(dy)
    return y.detach(), x.grad, scale.grad


def band(w, s, bits, per_channel=True):
    """Elements where ATen's and the official band disagree: round(v) on the grid, v not."""
    qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    v = w * (1 / (s.unsqueeze(1) if per_channel else s))
    n = torch.round(v)
    return ((n >= qmin) & (n <= qmax)) != ((v >= qmin) & (v <= qmax))


@pytest.mark.parametrize("bits", [2, 4])
@pytest.mark.parametrize("per_channel", [True, False])
def test_ste_backward_with_aten_band_matches_aten_learnable(bits, per_channel):
    w = weights()
    s = row_steps(w, bits) if per_channel else torch.tensor([float(w.abs().max()) / (2 ** (bits - 1) - 0.5)])
    dy = weights(seed=1)
    grad_factor = 1.0 / (w.numel() * max(2 ** (bits - 1) - 1, 1)) ** 0.5
    y_aten, dx_aten, ds_aten = aten_learnable(w, s, bits, grad_factor, dy, per_channel)
    layout = dict(axis=0) if per_channel else {}
    xs = w.clone().requires_grad_()
    ss = s.clone().requires_grad_()
    y = stableqat.fake_quantize(xs, ss, bits, estimator="ste", mask_band="aten", **layout)
    y.backward(dy)
    assert same_bits_up_to_zero_sign(y.detach(), y_aten)
    assert band(w, s, bits, per_channel).any(), "the test data must exercise the band"
    assert torch.equal(xs.grad, dx_aten)  # == treats ATen's dy * 0 = -0 and our +0 as equal
    # step: same terms; ATen sums float terms in float, we accumulate in double
    terms = (dy.abs() * (w * (1 / (s.unsqueeze(1) if per_channel else s))).abs().add(2**(bits - 1)))
    bound = grad_factor * (terms.sum(1) if per_channel else terms.sum().reshape(1))
    assert ((ss.grad.double() - ds_aten.double()).abs() <= 2e-6 * bound.double()).all()


def test_default_band_differs_from_aten_exactly_in_the_band():
    bits = 4
    w = weights()
    s = row_steps(w, bits)
    dy = weights(seed=1)
    _, dx_aten, _ = aten_learnable(w, s, bits, 1.0, dy)
    dx, _, _, _ = stableqat.fake_quantize_backward(dy, w, s, bits, axis=0)  # mask_band="official"
    differs = dx != dx_aten
    assert torch.equal(differs, band(w, s, bits) & (dy != 0))
    assert torch.equal(dx[differs], torch.zeros(int(differs.sum())))


def test_issue_example_grid_minus8_7_x_7_3():
    """Grid [-8, 7], s = 1, x = 7.3: ATen dx = 1, dscale = -0.3; official band dx = 0, dstep = 7."""
    x = torch.tensor([[7.3]])
    s = torch.tensor([1.0])
    dy = torch.ones(1, 1)
    _, dx_aten, ds_aten = aten_learnable(x, s, 4, 1.0, dy)
    assert dx_aten.item() == 1 and ds_aten.item() == pytest.approx(-0.3, abs=1e-6)
    dx, ds, _, _ = stableqat.fake_quantize_backward(dy, x, s, 4, axis=0, grad_scale=1.0)
    assert dx.item() == 0 and ds.item() == 7
    dx, ds, _, _ = stableqat.fake_quantize_backward(dy, x, s, 4, axis=0, grad_scale=1.0, mask_band="aten")
    assert dx.item() == 1 and ds.item() == pytest.approx(-0.3, abs=1e-6)


def test_aten_band_ties_follow_round_half_even():
    """v = qmax + 1/2 = 7.5 rounds to 8 (outside for ATen); v = qmin - 1/2 = -8.5 rounds to -8 (inside)."""
    x = torch.tensor([7.5, -8.5, 7.4999995, -8.5000010, 6.5, -7.5])
    s = torch.tensor([1.0])
    dy = torch.ones(6)
    _, dx_aten, _ = aten_learnable(x.reshape(1, -1), s, 4, 1.0, dy.reshape(1, -1))
    dx, _, _, _ = stableqat.fake_quantize_backward(dy, x, s, 4, mask_band="aten")
    assert torch.equal(dx, dx_aten.reshape(-1))
    assert dx.tolist() == [0, 1, 1, 0, 1, 1]


@pytest.mark.parametrize("estimator,kwargs", [("stableqat", {}), ("stableqat", dict(harmonics=3, amplitude=0.2))])
def test_aten_band_with_fourier_matches_transcription(estimator, kwargs):
    import reference as ref
    w = weights().double()
    s = row_steps(w, 3).double()
    dy = weights(seed=2).double()
    coefficients = ref.paper_coefficients(kwargs.get("amplitude", 0.21), kwargs.get("harmonics", 1))
    dx, ds, _, _ = stableqat.fake_quantize_backward(dy, w, s, 3, axis=0, estimator=estimator, mask_band="aten",
                                                    **kwargs)
    want_dx, want_ds = ref.backward(dy, w, s, 3, coefficients, axis=0, mask_band="aten")
    assert band(w, s, 3).any()
    assert torch.allclose(dx, want_dx, rtol=0, atol=1e-12)
    assert torch.allclose(ds, want_ds, rtol=1e-10, atol=1e-12)
