// stableqat/core/stretched_grid.hpp: the level map of ParetoQ's stretched elastic grid (SEQ).
//
// SEQ (Liu et al. 2025, ParetoQ) places 2-bit levels at ±1/4, ±3/4 of the
// learnable scale alpha (no zero level) and ternary levels at 0, ±2/3 of it.
// With the step s playing alpha and v = (x - b)/s:
//
//     u = clamp(v, -clip, clip),  w = u*m - shift,  n = round_half_even(w),
//     level q = (n + shift) / m,  y = s * q + b,
//     2-bit: m = 2, shift = 1/2 (codes n in -2..1);  ternary: m = 3/2, shift = 0 (n in -1..1);
//     clip = 0.99.
//
// Backward: inside = |v| <= clip; dx = inside ? g(w - n) dy : 0 for any
// surrogate g (dq/dv = (1/m) * g * m = g); step term
// dy * (inside ? q - v : sign(v) * (m - shift)/m). Note that the outside term
// is ±(m - shift)/m = ±3/4 (2-bit) or ±1 (ternary), not the clipped level
// ±2/3 (ternary): that is ParetoQ's gradient. Its default grad_scale
// 1/sqrt(numel * max(2^(bits-1) - 1, 1)) is lsq_grad_scale of the grid, whose
// code range [qmin, qmax] has qmax = 1 for both kinds.
//
// The level map is what the per-element templates of core/lsq.hpp take: it
// adds three optional members to the integer grids' `level(v, rounded)`,
// qmin, qmax: `coordinate(v)` (the value that is rounded), `inside(v)` (the
// band) and `outside_level(v)` (the step term's value outside the band).
#pragma once

#include "config.hpp"
#include "math.hpp"
#include "rounding.hpp"

namespace stableqat {

/// ParetoQ's clip of v = x/alpha, 1 - 1e-2 as in its reference code.
inline constexpr double stretched_elastic_clip = 0.99;

/// Level map of a stretched elastic grid in element type T (see the header comment).
template <real_scalar T>
struct stretched_elastic_levels {
  T qmin;     ///< smallest code n (-2 for 2 bits, -1 for ternary)
  T qmax;     ///< largest code n (1 for both)
  T clip;     ///< band and clamp bound on v, 0.99
  T m;        ///< codes per unit of v: 2 (2-bit) or 3/2 (ternary)
  T shift;    ///< 1/2 (2-bit) or 0 (ternary)
  T inv_m;    ///< 1/m; (n + shift) * inv_m equals (n + shift) / m exactly for these grids
  T edge;     ///< (m - shift)/m, the step term's magnitude outside the band

  /// The grid for code range [qmin, qmax]: ternary when symmetric (-1..1), else 2^(bits-1) = -qmin codes.
  static constexpr stretched_elastic_levels for_codes(int code_min, int code_max) noexcept {
    const bool ternary = code_min == -code_max;
    const double m = ternary ? 1.5 : -static_cast<double>(code_min);
    const double shift = ternary ? 0.0 : 0.5;
    return {static_cast<T>(code_min), static_cast<T>(code_max), static_cast<T>(stretched_elastic_clip),
            static_cast<T>(m),        static_cast<T>(shift),    static_cast<T>(1.0 / m),
            static_cast<T>((m - shift) / m)};
  }

  /// w = clamp(v, -clip, clip) * m - shift, the value rounded to a code
  /// (one fma: every backend rounds it the same way; -shift is -0 for ternary,
  /// so the sign of a zero survives as in `u * m - 0`). NaN stays NaN.
  template <class V>
  STABLEQAT_HD constexpr V coordinate(V v) const noexcept {
    return stableqat::fma(clamp_keep_nan(v, V(-clip), V(clip)), V(m), V(-shift));
  }

  /// q = (n + shift) / m for the rounded code n (already within [qmin, qmax]).
  template <class V>
  STABLEQAT_HD constexpr V level(V /*v*/, V rounded) const noexcept {
    return (rounded + V(shift)) * V(inv_m);
  }

  /// The integer code n of a level q (the export, core/codes.hpp): n = q*m - shift,
  /// rounded so that the one rounding of q = (n + shift) * inv_m cannot leave
  /// a code a hair off its integer (ternary: inv_m = 2/3 is inexact).
  template <class V>
  STABLEQAT_HD constexpr V code_of_level(V level) const noexcept {
    return round_half_even(stableqat::fma(level, V(m), V(-shift)));
  }

  /// The level of code n, the very expression the forward pass uses.
  template <class V>
  STABLEQAT_HD constexpr V level_of_code(V code) const noexcept {
    return level(code, code);
  }

  /// The band |v| <= clip (false for NaN).
  template <class V>
  STABLEQAT_HD constexpr auto inside(V v) const noexcept {
    return (V(-clip) <= v) && (v <= V(clip));
  }

  /// The step term's level outside the band: sign(v) * (m - shift)/m (NaN kept).
  template <class V>
  STABLEQAT_HD constexpr V outside_level(V v) const noexcept {
    return sign_keep_nan(v) * V(edge);
  }
};

}  // namespace stableqat
