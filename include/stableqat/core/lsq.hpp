// stableqat/core/lsq.hpp: the per-element LSQ fake quantizer, forward and backward.
//
// This is the only place the quantizer's formulas are written. Every backend
// (scalar reference, SIMD body and tail, CUDA) instantiates these templates with
// its value type V: float/double scalars or SIMD batches.
#pragma once

#include <cmath>
#include <cstddef>
#include <type_traits>

#include "config.hpp"
#include "errors.hpp"
#include "grid.hpp"
#include "math.hpp"
#include "rounding.hpp"
#include "../surrogates/concepts.hpp"

namespace stableqat {

/// Marks "no offset" (b = 0). A separate type rather than a zero keeps the sign
/// of zero of s * round(v) (y = s * (-0) = -0, as torch.round gives it; ATen's
/// fake_quantize_* kernels go through an integer and return +0) and lets the
/// compiler drop the offset arithmetic.
struct no_offset {};

/// v = (x - b) * inv_step: the input in units of the step.
template <class V>
STABLEQAT_HD constexpr V scaled_input(V x, V inv_step, no_offset) noexcept {
  return x * inv_step;
}
template <class V>
STABLEQAT_HD constexpr V scaled_input(V x, V inv_step, V offset) noexcept {
  return (x - offset) * inv_step;
}

/// y = step * level + b, rounded once (fma) so every backend gets the same bits.
template <class V>
STABLEQAT_HD constexpr V dequantize(V step, V level, no_offset) noexcept {
  return step * level;
}
template <class V>
STABLEQAT_HD constexpr V dequantize(V step, V level, V offset) noexcept {
  return stableqat::fma(step, level, offset);
}

namespace element_detail {

/// The value the grid rounds: v itself on integer grids, the levels'
/// `coordinate(v)` on grids that have one (stretched elastic).
template <class V, class Levels>
STABLEQAT_HD constexpr V grid_coordinate(Levels const& levels, V v) noexcept {
  return apply_level_hook<level_hook::coordinate>(levels, v);
}

/// The estimator's rounding of w: its own tie rule (hook `round`) or round_half_even.
template <class V, class Surrogate>
STABLEQAT_HD constexpr V estimator_round(Surrogate const& surrogate, V w) noexcept {
  if constexpr (surrogate_with_rounding<Surrogate>) {
    return surrogate.round(w);
  } else {
    return round_half_even(w);
  }
}

/// The band where dx may be nonzero: the levels' own (stretched elastic),
/// else the surrogate's (hook `inside`), else qmin <= v <= qmax.
template <class V, class Levels, class Surrogate>
STABLEQAT_HD constexpr auto estimator_inside(Surrogate const& surrogate, Levels const& levels, V v) noexcept {
  if constexpr (requires { levels.inside(v); }) {
    return levels.inside(v);
  } else if constexpr (surrogate_with_band<Surrogate>) {
    return surrogate.inside(v, V(levels.qmin), V(levels.qmax));
  } else {
    return (V(levels.qmin) <= v) && (v <= V(levels.qmax));
  }
}

/// The level the step term uses outside the band: the clamped level, or the
/// levels' own `outside_level(v)` (stretched elastic).
template <class V, class Levels, class Mask>
STABLEQAT_HD constexpr V step_level(Levels const& levels, Mask const& inside, V v, V level) noexcept {
  if constexpr (requires { levels.outside_level(v); }) {
    return select(inside, level, levels.outside_level(v));
  } else {
    (void)inside;
    (void)v;
    return level;
  }
}

}  // namespace element_detail

/// The grid level of one element (or batch): level(v), v = (x - b) * inv_step,
/// with level(v) = clamp(round_half_even(v), qmin, qmax) on a uniform grid,
/// sign(v) on the binary grid and (round(w) + shift)/m, w = clamp(v) m - shift,
/// on a stretched elastic grid. NaN gives NaN; ±Inf gives the grid edge. The
/// forward pass and the integer export (export.hpp) both take the level from
/// here, which is what makes dequantize(codes) equal fake_quantize bit for bit.
template <class V, class Levels, class Offset>
STABLEQAT_HD constexpr V quantize_level_element(V x, V inv_step, Offset offset, Levels const& levels) noexcept {
  const V v = scaled_input(x, inv_step, offset);
  return levels.level(v, round_half_even(element_detail::grid_coordinate(levels, v)));
}

/// Forward fake quantization of one element (or one batch of lanes):
///   y = step * level(v) + b  with level(v) from quantize_level_element.
template <class V, class Levels, class Offset>
STABLEQAT_HD constexpr V fake_quantize_element(V x, V step, V inv_step, Offset offset,
                                               Levels const& levels) noexcept {
  return dequantize(step, quantize_level_element(x, inv_step, offset, levels), offset);
}

/// Forward of one element with the surrogate's own rounding rule when it has
/// one (surrogate_with_rounding, e.g. DSQ's ties-down); otherwise exactly the
/// overload above.
template <class V, class Levels, class Offset, class Surrogate>
STABLEQAT_HD constexpr V fake_quantize_element(V x, V step, V inv_step, Offset offset, Levels const& levels,
                                               Surrogate const& surrogate) noexcept {
  if constexpr (surrogate_with_rounding<Surrogate>) {
    const V v = scaled_input(x, inv_step, offset);
    const V w = element_detail::grid_coordinate(levels, v);
    return dequantize(step, levels.level(v, element_detail::estimator_round(surrogate, w)), offset);
  } else {
    return fake_quantize_element(x, step, inv_step, offset, levels);
  }
}

/// What the backward pass of one element contributes; P learnable surrogate
/// parameters add P unscaled parameter terms (see surrogates/concepts.hpp).
template <class V, std::size_t P = 0>
struct lsq_element_gradients {
  V dx;              ///< gradient w.r.t. x: inside ? g(r) * dy : 0
  V dstep;           ///< unscaled step term: dy * (inside ? level - v : level)
  V doffset;         ///< unscaled offset term: dy * (inside ? 1 - g : 1), i.e. dy - dx up to one rounding
  V dparameters[P];  ///< inside ? dy * dL/dp_j : 0, in step units (multiply by the step)
};
template <class V>
struct lsq_element_gradients<V, 0> {
  V dx;       ///< gradient w.r.t. x: inside ? g(r) * dy : 0
  V dstep;    ///< unscaled step term: dy * (inside ? level - v : level)
  V doffset;  ///< unscaled offset term: dy * (inside ? 1 - g : 1), i.e. dy - dx up to one rounding
};

/// The backward of one element with dy not yet multiplied into its summed
/// terms (fake_quantize_backward_element is these factors times dy):
///   dstep_i = dy * step_factor,  dparameters[j] = inside ? dy * parameter_factors[j] : 0.
/// exec::simd's row kernels fuse those products into their block sums, one
/// fma per term instead of a multiply and an add (exec/simd/lane_sums.hpp).
template <class V, class Mask, std::size_t P = 0>
struct lsq_element_factors {
  V dx;                    ///< gradient w.r.t. x: inside ? g(r) * dy : 0
  V step_factor;           ///< inside ? level - v : level (consistent step term: level - v g)
  V doffset;               ///< unscaled offset term: dy * (inside ? 1 - g : 1)
  V parameter_factors[P];  ///< dL/dp_j, in step units (not masked: see inside)
  Mask inside;             ///< the band of the estimator
};
template <class V, class Mask>
struct lsq_element_factors<V, Mask, 0> {
  V dx;           ///< gradient w.r.t. x: inside ? g(r) * dy : 0
  V step_factor;  ///< inside ? level - v : level (consistent step term: level - v g)
  V doffset;      ///< unscaled offset term: dy * (inside ? 1 - g : 1)
  Mask inside;    ///< the band of the estimator
};

/// Backward of one element, for upstream gradient dy and surrogate g = d round/dv:
///   inside  = qmin <= v <= qmax                       (inclusive, on v itself as LSQ and the
///                                                      official StableQAT code; ATen tests round(v))
///   dx      = inside ? g(v - round(v)) * dy : 0
///   dstep_i = dy * (inside ? level - v : level)       (LSQ; level = clamp(v) outside)
///   dofs_i  = dy * (inside ? 1 - g : 1)               (= dy - dx: dx + db = dy)
/// A NaN input gives dx = 0 and a NaN step term, so the NaN reaches the step
/// gradient instead of vanishing. Returns the terms as factors of dy
/// (lsq_element_factors); fake_quantize_backward_element multiplies them out.
///
/// The optional hooks of surrogates/concepts.hpp and of the level map change
/// single lines of this: the rounding (`round`), the band (`inside`), the
/// inside step term (`level - v * g` for consistent_step_term; the stretched
/// elastic grid's `outside_level` outside), g(r, dy), and P > 0 parameter
/// terms dparameters[j] = inside ? dy * dL/dp_j : 0. Without hooks the code is
/// the plain LSQ element.
template <class V, class Levels, class Offset, class Surrogate>
STABLEQAT_HD constexpr auto fake_quantize_backward_factors(V x, V dy, V inv_step, Offset offset,
                                                           Levels const& levels,
                                                           Surrogate const& surrogate) noexcept {
  using T = scalar_of_t<V>;
  constexpr std::size_t P = surrogate_parameter_count<Surrogate>;
  static_assert(P == 0 || !dy_aware_surrogate<Surrogate>,
                "a learnable surrogate's derivative_with_parameters(r) cannot also depend on dy");
  const V v = scaled_input(x, inv_step, offset);
  const V w = element_detail::grid_coordinate(levels, v);
  const V rounded = element_detail::estimator_round(surrogate, w);
  const V level = levels.level(v, rounded);
  const auto inside = element_detail::estimator_inside(surrogate, levels, v);
  const V r = w - rounded;
  // Filled member by member: GCC 12 keeps dead stack copies of named batch
  // locals that initialise a returned aggregate (two extra stores per batch).
  lsq_element_factors<V, std::remove_const_t<decltype(inside)>, P> out;
  out.inside = inside;
  V g;
  if constexpr (P > 0) {
    const auto local = surrogate.derivative_with_parameters(r);
    g = local.derivative;
    for (std::size_t j = 0; j < P; ++j) {
      out.parameter_factors[j] = local.parameters[j];
    }
  } else if constexpr (dy_aware_surrogate<Surrogate>) {
    g = surrogate.derivative(r, dy);
  } else {
    g = surrogate.derivative(r);
  }
  out.dx = select(inside, g * dy, V(T(0)));
  const V step_level = element_detail::step_level(levels, inside, v, level);
  if constexpr (surrogate_with_consistent_step_term<Surrogate>) {
    // d/ds of s * L(x/s) = L - v L'(v), through the fma shim (same bits on every backend).
    out.step_factor = select(inside, stableqat::fma(-v, g, step_level), step_level);
  } else {
    // = step_level - select(inside, v, 0), the same bits (x - (+0) = x for every x, -0 and NaN
    // included), in one masked subtraction instead of a masked move and a subtraction.
    out.step_factor = select(inside, step_level - v, step_level);
  }
  // dy * (1 - g) rounded once, through an explicit fma: written as dy - dx, the
  // compiler fuses g * dy into the subtraction in some inlining contexts and
  // not in others (-ffp-contract=fast), so backends would disagree.
  out.doffset = select(inside, stableqat::fma(-g, dy, dy), dy);
  return out;
}

/// The terms of lsq_element_factors f multiplied out (each product rounded once).
template <class V, class Mask, std::size_t P>
STABLEQAT_HD constexpr lsq_element_gradients<V, P> multiply_out(lsq_element_factors<V, Mask, P> const& f,
                                                                V dy) noexcept {
  using T = scalar_of_t<V>;
  lsq_element_gradients<V, P> out;
  out.dx = f.dx;
  out.dstep = dy * f.step_factor;
  out.doffset = f.doffset;
  if constexpr (P > 0) {
    for (std::size_t j = 0; j < P; ++j) {
      out.dparameters[j] = select(f.inside, dy * f.parameter_factors[j], V(T(0)));
    }
  }
  return out;
}

/// The backward of one element (fake_quantize_backward_factors) with its terms
/// multiplied by dy: what exec::seq, exec::cuda and the per_column kernels sum.
template <class V, class Levels, class Offset, class Surrogate>
STABLEQAT_HD constexpr lsq_element_gradients<V, surrogate_parameter_count<Surrogate>>
fake_quantize_backward_element(V x, V dy, V inv_step, Offset offset, Levels const& levels,
                               Surrogate const& surrogate) noexcept {
  return multiply_out(fake_quantize_backward_factors(x, dy, inv_step, offset, levels, surrogate), dy);
}

/// LSQ's gradient scale 1 / sqrt(numel * positive_levels(g)) (Esser et al. 2019),
/// with numel the element count of the whole tensor, also for per-channel
/// steps (as the official StableQAT code does). numel must be positive.
inline double lsq_grad_scale(std::size_t numel, grid const& g) {
  if (numel == 0) {
    detail::throw_invalid_argument("stableqat::lsq_grad_scale", "numel", numel, "must be positive");
  }
  return 1.0 / std::sqrt(static_cast<double>(numel) * positive_levels(g));
}

}  // namespace stableqat
