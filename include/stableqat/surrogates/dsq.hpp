// stableqat/surrogates/dsq.hpp: Differentiable Soft Quantization (DSQ), a surrogate with a learnable alpha.
#pragma once

#include <cmath>
#include <cstddef>

#include "../core/config.hpp"
#include "../core/errors.hpp"
#include "../core/exp.hpp"
#include "../core/math.hpp"
#include "concepts.hpp"

namespace stableqat {

/// DSQ (Gong et al. 2019), as the official StableQAT repository's baseline
/// computes it: between two grid points the staircase is replaced by
///
///     L(v) = floor(v) + (1 + phi(d)) / 2,   phi(d) = scale * tanh(k d),
///     d = v - (floor(v) + 1/2)  (signed distance to the rounding threshold, [-1/2, 1/2)),
///     scale = 1/(1 - alpha),  k = ln(2/alpha - 1),  alpha in (0, 1) learnable,
///
/// whose ends meet the grid (scale * tanh(k/2) = 1). The forward pass keeps
/// the hard level floor(v) + (phi > 0) (ties go down; phi > 0 exactly when
/// d > 0), clamped to [qmin, qmax]; the backward pass differentiates L:
///
///     inside  = qmin - 1/2 < v <= qmax + 1/2       (the unclamped level is on the grid)
///     g       = dL/dv = (1/2) scale k sech^2(k d)  (even in d: a function of |r|;
///                mean exactly 1 over a period, from k alpha (2 - alpha)/(2 (1 - alpha))
///                at the grid points to scale k / 2 at the thresholds)
///     dx      = inside ? g dy : 0
///     dstep_i = dy * (inside ? level - v g : level)  (the consistent d/ds of s L(x/s))
///     dL/dalpha = (1/2) dphi/dalpha
///               = (1/2) [tanh(k d)/(1 - alpha)^2 - scale sech^2(k d) d 2/(alpha (2 - alpha))],
///     d alpha = sum over the tensor of inside ? dy * s * dL/dalpha : 0  (no grad_scale).
///
/// It uses the optional hooks of surrogates/concepts.hpp: one learnable
/// parameter (alpha), its own rounding and band, and the consistent step
/// term; so it runs on uniform integer grids only. Backward calls return
/// d alpha through fake_quantize_backward's `dparameters` argument.
///
/// Evaluation: |d| = 1/2 - |r| and d's sign (that of -r) by bit operations;
/// with y = k |d|, e = exp(-2y) and t = expm1(-2y) = e - 1 (one shared
/// polynomial, core/exp.hpp), sech^2 = 4e/(1 + e)^2 (no cancellation for
/// small alpha, where sech^2 is small; the 4 is folded into the constants),
/// and for d alpha tanh(y) = -t/(1 + e) (no cancellation near the thresholds):
/// one division for both. Hook (d) drops the exponential's clamp for alphas
/// that cannot reach it. On Zen 4 the backward loop is bound by the two
/// multiply/FMA pipes (docs/benchmarks.md), so every multiply saved counts.
/// d alpha's two terms cancel as alpha -> 1 (k -> 0): its relative accuracy
/// in float degrades there like 1/(1 - alpha).
class dsq_surrogate {
 public:
  /// One learnable parameter, alpha.
  static constexpr std::size_t parameter_count = 1;
  /// The inside step term is level - v g.
  static constexpr bool consistent_step_term = true;
  /// The official code's initial alpha.
  static constexpr double default_alpha = 0.2;

  /// alpha = 0.2.
  dsq_surrogate() : dsq_surrogate(default_alpha) {}

  /// Throws std::invalid_argument naming `alpha` unless 0 < alpha < 1 (and
  /// 2/alpha - 1 is finite, i.e. alpha is not subnormal).
  explicit dsq_surrogate(double alpha) {
    if (!(alpha > 0.0 && alpha < 1.0)) {
      detail::throw_invalid_argument("stableqat::dsq_surrogate", "alpha", alpha, "is outside (0, 1)");
    }
    const long double a = alpha;
    const long double ratio = 2.0L / a - 1.0L;
    if (!std::isfinite(static_cast<double>(ratio))) {
      detail::throw_invalid_argument("stableqat::dsq_surrogate", "alpha", alpha,
                                     "is too small: k = ln(2/alpha - 1) overflows");
    }
    const long double k = std::log(ratio);
    const long double scale = 1.0L / (1.0L - a);
    alpha_ = alpha;
    k_ = static_cast<double>(k);
    scale_ = static_cast<double>(scale);
    minus_two_k_ = static_cast<double>(-2.0L * k);
    two_scale_k_ = static_cast<double>(2.0L * scale * k);
    tanh_factor_ = static_cast<double>(0.5L / ((1.0L - a) * (1.0L - a)));
    four_sech_factor_ = static_cast<double>(4.0L * scale / (a * (2.0L - a)));
    max_derivative_ = static_cast<double>(0.5L * scale * k);
    min_derivative_ = static_cast<double>(k * a * (2.0L - a) / (2.0L * (1.0L - a)));
  }

  /// alpha.
  [[nodiscard]] double alpha() const noexcept { return alpha_; }
  /// k = ln(2/alpha - 1), the sharpness of tanh.
  [[nodiscard]] double sharpness() const noexcept { return k_; }
  /// scale = 1/(1 - alpha).
  [[nodiscard]] double scale() const noexcept { return scale_; }
  /// min over r of g: k alpha (2 - alpha) / (2 (1 - alpha)), at the grid points.
  [[nodiscard]] double min_derivative() const noexcept { return min_derivative_; }
  /// max over r of g: scale k / 2, at the rounding thresholds.
  [[nodiscard]] double max_derivative() const noexcept { return max_derivative_; }

  /// Throws std::invalid_argument naming `alpha` (forward and backward alike) when the constants of g and
  /// d alpha do not fit the compute type T (float: alpha below ~6e-39 makes
  /// 4/(alpha (2 - alpha)) overflow, and d alpha would come back as NaN).
  template <class T>
  void check_compute_type(const char* function) const {
    if (!(std::isfinite(static_cast<T>(four_sech_factor_)) && std::isfinite(static_cast<T>(two_scale_k_)))) {
      detail::throw_invalid_argument(function, "alpha", alpha_,
                                     sizeof(T) == 4 ? "is too small for float: 4/(alpha (2 - alpha)) overflows"
                                                    : "is too small for this type: 4/(alpha (2 - alpha)) overflows");
    }
  }

  // floor of a batch calls AVX-512 intrinsics (core/config.hpp).
  STABLEQAT_GCC_PR105593_PUSH
  /// DSQ's hard level before clamping: floor(v) + (d > 0), ties (d = 0) down.
  /// NaN and ±Inf come back unchanged.
  template <class V>
  STABLEQAT_HD V round(V v) const noexcept {
    using T = scalar_of_t<V>;
    const V below = floor(v);
    const V d = v - (below + V(T(0.5)));
    return select(V(T(0)) < d, below + V(T(1)), below);
  }

  STABLEQAT_GCC_PR105593_POP

  /// qmin - 1/2 < v <= qmax + 1/2: the unclamped level lies on the grid.
  template <class V>
  STABLEQAT_HD auto inside(V v, V qmin, V qmax) const noexcept {
    using T = scalar_of_t<V>;
    return (qmin - V(T(0.5)) < v) && (v <= qmax + V(T(0.5)));
  }

  /// g(r) = (1/2) scale k sech^2(k d) with |d| = 1/2 - |r|, for r in [-1/2, 1/2].
  template <class V>
  STABLEQAT_HD V derivative(V r) const noexcept {
    return derivative_with_parameters(r).derivative;
  }

  STABLEQAT_GCC_PR105593_PUSH
  /// g(r) and dL/dalpha at the residual r = v - round(v) of DSQ's rounding
  /// (r in (-1/2, 1/2]: d = r + 1/2 where the level rounded up, r - 1/2 where down).
  template <class V>
  STABLEQAT_HD derivative_and_parameters<V, 1> derivative_with_parameters(V r) const noexcept {
    return evaluate<true>(r);
  }

  STABLEQAT_GCC_PR105593_POP

  /// Hook (d) of surrogates/concepts.hpp: when -k >= the exponential's lower
  /// limit for T (k <= 80 in float, 700 in double: alpha > 3.6e-35 resp. 2e-304,
  /// every practical alpha), -2 k |d| never reaches the limit and f gets a DSQ
  /// whose exponential skips the clamp (a compare and three blends per batch,
  /// the same bits); otherwise f(*this).
  template <class T, class F>
  decltype(auto) visit_branch_free(F&& f) const;

 protected:
  STABLEQAT_GCC_PR105593_PUSH
  // Clamped = false: the caller guarantees -2 k |d| >= exp_detail::lower_limit<T> or NaN.
  template <bool Clamped, class V>
  STABLEQAT_HD derivative_and_parameters<V, 1> evaluate(V r) const noexcept {
    using T = scalar_of_t<V>;
    // |d| = 1/2 - |r|, and d has the sign of -r (d > 0 exactly where the level
    // rounded up, i.e. r < 0; r = 0 gives d = -1/2): the values of d = r +/- 1/2,
    // by bit operations instead of compares. The code carries minus_d = -d =
    // copysign(|d|, r + 0) (+ 0 turns -0 into +0, so r = -0 is r = 0 as before)
    // and never negates a batch (xsimd's negation of +0 is +0).
    const V magnitude = V(T(0.5)) - abs(r);
    const V minus_d = copysign(magnitude, r + V(T(0)));
    const V minus_two_y = V(static_cast<T>(minus_two_k_)) * magnitude;  // -2 k |d|
    const V scaled_minus_d = V(static_cast<T>(four_sech_factor_)) * minus_d;  // off the exponential's chain
    // e^(-2y) and e^(-2y) - 1 from one polynomial, the same bits on every backend;
    // one division serves sech^2 and tanh (2 + t = 1 + e).
    const auto [e, t] = exp_detail::exp_pair<Clamped>(minus_two_y);
    const V reciprocal = V(T(1)) / (V(T(1)) + e);
    // e / (1 + e)^2 = sech^2 / 4: the 4 lives in the constants (exact: a power of two).
    const V quarter_sech2 = e * (reciprocal * reciprocal);
    const V minus_tanh_kd = copysign(t * reciprocal, minus_d);  // tanh(k|d|) = |t|/(1 + e), sign of -d
    derivative_and_parameters<V, 1> out;
    out.derivative = V(static_cast<T>(two_scale_k_)) * quarter_sech2;
    // (1/2) dphi/dalpha = tanh(kd)/(2 (1-alpha)^2) - scale sech^2(kd) d / (alpha (2 - alpha)),
    // here with both signs flipped inside (exact), the same rounding.
    out.parameters[0] = stableqat::fma(V(static_cast<T>(-tanh_factor_)), minus_tanh_kd,
                                       quarter_sech2 * scaled_minus_d);
    return out;
  }

  STABLEQAT_GCC_PR105593_POP

 private:
  double alpha_ = default_alpha;
  double k_ = 0.0;
  double scale_ = 1.0;
  double minus_two_k_ = 0.0;   // -2 k
  double two_scale_k_ = 0.0;   // 2 scale k: g = 2 scale k * sech^2 / 4
  double tanh_factor_ = 0.0;   // 1 / (2 (1 - alpha)^2)
  double four_sech_factor_ = 0.0;  // 4 scale / (alpha (2 - alpha))
  double min_derivative_ = 0.0;
  double max_derivative_ = 0.0;
};

namespace dsq_detail {

/// The dsq_surrogate that dsq_surrogate::visit_branch_free hands to a vector
/// loop when -2 k |d| cannot reach the exponential's lower limit: the same
/// values, without the clamp.
class unclamped_exponential : public dsq_surrogate {
 public:
  explicit unclamped_exponential(dsq_surrogate const& s) noexcept : dsq_surrogate(s) {}

  /// dsq_surrogate::derivative_with_parameters(r), bit for bit, on its valid alphas.
  template <class V>
  STABLEQAT_HD derivative_and_parameters<V, 1> derivative_with_parameters(V r) const noexcept {
    return this->template evaluate<false>(r);
  }
};

}  // namespace dsq_detail

template <class T, class F>
decltype(auto) dsq_surrogate::visit_branch_free(F&& f) const {
  // x = -2 k |d| >= -k since |d| <= 1/2.
  if (-k_ >= static_cast<double>(exp_detail::lower_limit<T>)) {
    return f(dsq_detail::unclamped_exponential(*this));
  }
  return f(*this);
}

static_assert(learnable_surrogate<dsq_surrogate>);
static_assert(learnable_surrogate<dsq_detail::unclamped_exponential>);
static_assert(surrogate_with_rounding<dsq_surrogate> && surrogate_with_band<dsq_surrogate> &&
              surrogate_with_consistent_step_term<dsq_surrogate>);

}  // namespace stableqat
