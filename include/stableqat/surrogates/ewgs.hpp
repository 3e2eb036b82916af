// stableqat/surrogates/ewgs.hpp: Element-Wise Gradient Scaling (EWGS), a surrogate that sees dy.
#pragma once

#include "../core/config.hpp"
#include "../core/errors.hpp"
#include "../core/math.hpp"
#include "concepts.hpp"

namespace stableqat {

/// EWGS (Lee et al. 2021): the STE's gradient scaled per element by how far
/// the input sits from its level, in the direction of the update,
///
///     g(r, dy) = 1 + delta * sign(dy) * r,   r = v - round_half_even(v) in [-1/2, 1/2],
///
/// so dx = dy + delta |dy| r inside the band (the LSQ band, LSQ step term).
/// delta = 0 is the STE bit for bit (g = 1 exactly). g lies in
/// [1 - delta/2, 1 + delta/2] with mean 1 over a period; 0 <= delta < 2 keeps
/// it positive. (sign(0) is taken as +1: dx = g * 0 = 0 either way.)
///
/// Uses hook (c) of surrogates/concepts.hpp: derivative(r, dy). The one-argument
/// derivative(r) = 1 + delta r is the dy > 0 branch, for plots.
class ewgs_surrogate {
 public:
  /// Throws std::invalid_argument naming `delta` unless 0 <= delta < 2
  /// (finite); a compile-time error in constant evaluation.
  constexpr explicit ewgs_surrogate(double delta) : delta_(delta) {
    if (!(delta >= 0.0 && delta < 2.0)) {
      detail::throw_invalid_argument("stableqat::ewgs_surrogate", "delta", delta,
                                     "must be finite and in [0, 2) (negative delta is not EWGS; from 2 on g "
                                     "reaches 0)");
    }
  }

  /// delta.
  [[nodiscard]] constexpr double delta() const noexcept { return delta_; }
  /// min over r and dy of g: 1 - delta/2.
  [[nodiscard]] constexpr double min_derivative() const noexcept { return 1.0 - 0.5 * delta_; }
  /// max over r and dy of g: 1 + delta/2.
  [[nodiscard]] constexpr double max_derivative() const noexcept { return 1.0 + 0.5 * delta_; }

  /// g for dy > 0: 1 + delta r.
  template <class V>
  STABLEQAT_HD constexpr V derivative(V r) const noexcept {
    using T = scalar_of_t<V>;
    return stableqat::fma(V(static_cast<T>(delta_)), r, V(T(1)));
  }

  /// g(r, dy) = 1 + delta sign(dy) r, one fma (exactly 1 when delta = 0).
  template <class V>
  STABLEQAT_HD constexpr V derivative(V r, V dy) const noexcept {
    using T = scalar_of_t<V>;
    const V delta = V(static_cast<T>(delta_));
    return stableqat::fma(select(dy < V(T(0)), -delta, delta), r, V(T(1)));
  }

 private:
  double delta_;
};

static_assert(dy_aware_surrogate<ewgs_surrogate>);

}  // namespace stableqat
