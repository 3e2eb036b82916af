"""Independent transcriptions of the formulas, written with torch ops (not the code under test).

Paper Eq. 6-10 (Chen et al. 2026) with the official code's conventions: mask on
v itself, LSQ step term, grad_scale = 1/sqrt(numel * Qp) over the whole tensor.
"""

import math

import torch

C = math.sqrt(2.0) * math.pi


def grid_bounds(bits, grid="signed"):
    if grid == "ternary":
        return -1, 1
    if grid == "unsigned":
        return 0, 2 ** bits - 1
    if bits == 1:
        return -1, 1
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


def expand_steps(x, step, axis=None, group_size=None):
    """The step of every element, shaped like x."""
    if axis is not None:
        return step.reshape(-1).reshape([-1] + [1] * (x.dim() - 1)).expand_as(x)
    if group_size is not None:
        return step.reshape(-1, 1).expand(-1, group_size).reshape(x.shape)
    return step.reshape(()).expand_as(x)


def reduce_steps(term, step, axis=None, group_size=None):
    if axis is not None:
        return term.reshape(term.shape[0], -1).sum(1)
    if group_size is not None:
        return term.reshape(-1, group_size).sum(1)
    return term.sum().reshape(1)


def forward(x, step, bits, grid="signed", axis=None, group_size=None, offset=None):
    qmin, qmax = grid_bounds(bits, grid)
    s = expand_steps(x, step, axis, group_size)
    b = 0 if offset is None else expand_steps(x, offset, axis, group_size)
    v = (x - b) * (1.0 / s) if offset is not None else x * (1.0 / s)
    level = torch.sign(v) if bits == 1 and grid == "signed" else torch.clamp(torch.round(v), qmin, qmax)
    # no "+ 0" without an offset: it would turn s * (-0) into +0
    return s * level if offset is None else s * level + b


def paper_coefficients(amplitude, harmonics):
    return [amplitude * (-1) ** k / (2 * k + 1) for k in range(harmonics)]


def surrogate(v, n, coefficients):
    """Eq. 10: g = (1 - c S) / (1 + c S), S = sum_k a_k cos((2k+1) pi (v + n)); STE for no coefficients."""
    if not coefficients:
        return torch.ones_like(v)
    S = sum(a * torch.cos((2 * k + 1) * math.pi * (v + n)) for k, a in enumerate(coefficients))
    return (1 - C * S) / (1 + C * S)


def backward(dy, x, step, bits, coefficients=(), grid="signed", axis=None, group_size=None, grad_scale=None,
             mask_band="official"):
    """(dx, dstep) in the dtype of the inputs (pass float64 for a reference)."""
    qmin, qmax = grid_bounds(bits, grid)
    s = expand_steps(x, step, axis, group_size)
    v = x * (1.0 / s)
    n = torch.round(v)
    if mask_band == "aten":
        inside = (n >= qmin) & (n <= qmax)
    else:
        inside = (v >= qmin) & (v <= qmax)
    g = surrogate(v, n, list(coefficients))
    dx = torch.where(inside, g * dy, torch.zeros_like(dy))
    term = dy * torch.where(inside, n - v, torch.clamp(v, qmin, qmax))
    if grad_scale is None:
        grad_scale = 1.0 / math.sqrt(x.numel() * max(qmax, 1))
    return dx, grad_scale * reduce_steps(term, step, axis, group_size)
