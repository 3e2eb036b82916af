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

/// The grid level of one element (or batch): level(v), v = (x - b) * inv_step,
/// with level(v) = clamp(round_half_even(v), qmin, qmax) on a uniform grid and
/// sign(v) on the binary grid. NaN gives NaN; ±Inf gives the grid edge. The
/// forward pass and the integer export (export.hpp) both take the level from
/// here, which is what makes dequantize(codes) equal fake_quantize bit for bit.
template <class V, class Levels, class Offset>
STABLEQAT_HD constexpr V quantize_level_element(V x, V inv_step, Offset offset, Levels const& levels) noexcept {
  const V v = scaled_input(x, inv_step, offset);
  return levels.level(v, round_half_even(v));
}

/// Forward fake quantization of one element (or one batch of lanes):
///   y = step * level(v) + b  with level(v) from quantize_level_element.
template <class V, class Levels, class Offset>
STABLEQAT_HD constexpr V fake_quantize_element(V x, V step, V inv_step, Offset offset,
                                               Levels const& levels) noexcept {
  return dequantize(step, quantize_level_element(x, inv_step, offset, levels), offset);
}

/// What the backward pass of one element contributes.
template <class V>
struct lsq_element_gradients {
  V dx;       ///< gradient w.r.t. x: inside ? g(r) * dy : 0
  V dstep;    ///< unscaled step term: dy * (inside ? level - v : level)
  V doffset;  ///< unscaled offset term: dy * (inside ? 1 - g : 1), i.e. dy - dx up to one rounding
};

/// Backward of one element, for upstream gradient dy and surrogate g = d round/dv:
///   inside  = qmin <= v <= qmax                       (inclusive, on v itself as LSQ and the
///                                                      official StableQAT code; ATen tests round(v))
///   dx      = inside ? g(v - round(v)) * dy : 0
///   dstep_i = dy * (inside ? level - v : level)       (LSQ; level = clamp(v) outside)
///   dofs_i  = dy * (inside ? 1 - g : 1)               (= dy - dx: dx + db = dy)
/// A NaN input gives dx = 0 and a NaN step term, so the NaN reaches the step
/// gradient instead of vanishing.
template <class V, class Levels, class Offset, class Surrogate>
STABLEQAT_HD constexpr lsq_element_gradients<V> fake_quantize_backward_element(
    V x, V dy, V inv_step, Offset offset, Levels const& levels, Surrogate const& surrogate) noexcept {
  using T = scalar_of_t<V>;
  const V v = scaled_input(x, inv_step, offset);
  const V rounded = round_half_even(v);
  const V level = levels.level(v, rounded);
  const auto inside = (V(levels.qmin) <= v) && (v <= V(levels.qmax));
  const V g = surrogate.derivative(v - rounded);
  // Filled member by member: GCC 12 keeps dead stack copies of named batch
  // locals that initialise a returned aggregate (two extra stores per batch).
  lsq_element_gradients<V> out;
  out.dx = select(inside, g * dy, V(T(0)));
  out.dstep = dy * (level - select(inside, v, V(T(0))));
  // dy * (1 - g) rounded once, through an explicit fma: written as dy - dx, the
  // compiler fuses g * dy into the subtraction in some inlining contexts and
  // not in others (-ffp-contract=fast), so backends would disagree.
  out.doffset = select(inside, stableqat::fma(-g, dy, dy), dy);
  return out;
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
