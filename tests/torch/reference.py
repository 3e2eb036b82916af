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


# --- the paper's baselines (DESIGN.md section 1, "The paper's baselines") -------------------------------

SEQ_CLIP = 0.99


def seq_shape(grid):
    """(m, shift) of ParetoQ's stretched elastic grid: 2-bit m = 2, shift = 1/2; ternary m = 3/2, shift = 0."""
    return (1.5, 0.0) if grid == "stretched_elastic_ternary" else (2.0, 0.5)


def seq_coordinates(x, step, grid, axis=None, group_size=None):
    """v = x/s, the rounded coordinate w = clamp(v, -clip, clip) * m - shift, its code n and level q."""
    m, shift = seq_shape(grid)
    s = expand_steps(x, step, axis, group_size)
    v = x * (1.0 / s)
    w = torch.clamp(v, -SEQ_CLIP, SEQ_CLIP) * m - shift
    n = torch.round(w)
    return s, v, w, n, (n + shift) / m


def seq_forward(x, step, grid, axis=None, group_size=None):
    """y = s * (round(clamp(x/s) m - shift) + shift) / m."""
    s, _, _, _, q = seq_coordinates(x, step, grid, axis, group_size)
    return s * q


def seq_backward(dy, x, step, grid, coefficients=(), axis=None, group_size=None, grad_scale=None, ewgs_delta=None):
    """(dx, dstep): dx = inside ? g(w - n) dy : 0 with inside = |x/s| <= clip; step term
    dy * (inside ? q - v : sign(v) (m - shift)/m); grad_scale 1/sqrt(numel) (2^(bits-1) - 1 = 1)."""
    m, shift = seq_shape(grid)
    s, v, w, n, q = seq_coordinates(x, step, grid, axis, group_size)
    inside = v.abs() <= SEQ_CLIP
    g = ewgs_derivative(w - n, dy, ewgs_delta) if ewgs_delta is not None else surrogate(w, n, list(coefficients))
    dx = torch.where(inside, g * dy, torch.zeros_like(dy))
    term = dy * torch.where(inside, q - v, torch.sign(v) * (m - shift) / m)
    if grad_scale is None:
        grad_scale = 1.0 / math.sqrt(x.numel())
    return dx, grad_scale * reduce_steps(term, step, axis, group_size)


def ewgs_derivative(r, dy, delta):
    """EWGS: g = 1 + delta * sign(dy) * r (sign(0) taken as +1; dx = g * 0 = 0 anyway)."""
    return 1 + delta * torch.where(dy < 0, -torch.ones_like(dy), torch.ones_like(dy)) * r


def ewgs_backward(dy, x, step, bits, delta, grid="signed", axis=None, group_size=None, grad_scale=None):
    """(dx, dstep) of EWGS: LSQ band and step term, g = 1 + delta sign(dy) (v - round(v))."""
    qmin, qmax = grid_bounds(bits, grid)
    s = expand_steps(x, step, axis, group_size)
    v = x * (1.0 / s)
    n = torch.round(v)
    inside = (v >= qmin) & (v <= qmax)
    dx = torch.where(inside, ewgs_derivative(v - n, dy, delta) * dy, torch.zeros_like(dy))
    term = dy * torch.where(inside, n - v, torch.clamp(v, qmin, qmax))
    if grad_scale is None:
        grad_scale = 1.0 / math.sqrt(x.numel() * max(qmax, 1))
    return dx, grad_scale * reduce_steps(term, step, axis, group_size)


def dsq_parts(x, step, bits, alpha, grid="signed", axis=None, group_size=None):
    """DSQ (Gong et al. 2019, as the official StableQAT baseline): every intermediate, as tensors.

    scale = 1/(1 - alpha), k = ln(2/alpha - 1), d = v - (floor(v) + 1/2), phi = scale tanh(k d);
    level = clamp(floor(v) + (phi > 0), qmin, qmax); soft level L = floor(v) + (1 + phi)/2;
    inside = qmin - 1/2 < v <= qmax + 1/2; g = dL/dv = (1/2) scale k sech^2(k d).
    alpha may be a tensor that requires grad (then L is differentiable in alpha and v).
    """
    qmin, qmax = grid_bounds(bits, grid)
    s = expand_steps(x, step, axis, group_size)
    v = x * (1.0 / s)
    below = torch.floor(v).detach()
    d = v - (below + 0.5)
    scale = 1 / (1 - alpha)
    k = torch.log(2 / alpha - 1) if torch.is_tensor(alpha) else math.log(2 / alpha - 1)
    phi = scale * torch.tanh(k * d)
    level = torch.clamp(below + (phi > 0).to(x.dtype), qmin, qmax).detach()
    soft = below + (1 + phi) / 2
    inside = (v > qmin - 0.5) & (v <= qmax + 0.5)
    g = 0.5 * scale * k / torch.cosh(k * d) ** 2
    return dict(s=s, v=v, d=d, scale=scale, k=k, level=level, soft=soft, inside=inside, g=g)


def dsq_forward(x, step, bits, alpha, grid="signed", axis=None, group_size=None):
    p = dsq_parts(x, step, bits, alpha, grid, axis, group_size)
    return p["s"] * p["level"]


def dsq_backward(dy, x, step, bits, alpha, grid="signed", axis=None, group_size=None, grad_scale=None):
    """(dx, dstep, dalpha) of DSQ by DESIGN.md's formulas (alpha a float)."""
    qmin, qmax = grid_bounds(bits, grid)
    p = dsq_parts(x, step, bits, alpha, grid, axis, group_size)
    inside, g, level, v, d = p["inside"], p["g"], p["level"], p["v"], p["d"]
    zero = torch.zeros_like(dy)
    dx = torch.where(inside, g * dy, zero)
    term = dy * torch.where(inside, level - v * g, level)
    if grad_scale is None:
        grad_scale = 1.0 / math.sqrt(x.numel() * max(qmax, 1))
    scale, k = p["scale"], p["k"]
    sech2 = 1 / torch.cosh(k * d) ** 2
    dphi = torch.tanh(k * d) / (1 - alpha) ** 2 - scale * sech2 * d * 2 / (alpha * (2 - alpha))
    dalpha = torch.where(inside, dy * p["s"] * 0.5 * dphi, zero).sum()
    return dx, grad_scale * reduce_steps(term, step, axis, group_size), dalpha
