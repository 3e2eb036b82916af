// stableqat/surrogates/fourier.hpp: the StableQAT rotated Fourier surrogate.
#pragma once

#include <array>
#include <cstddef>
#include <initializer_list>
#include <limits>
#include <string>

#include "../core/config.hpp"
#include "../core/errors.hpp"
#include "../core/math.hpp"
#include "detail/fourier_series.hpp"

namespace stableqat {

template <int K>
class fourier_surrogate;

namespace fourier_detail {

/// fourier_surrogate<K> (K >= 2) whose derivative() works in Working whatever
/// evaluates_float_in_float() says: what fourier_surrogate<K>::visit_branch_free
/// hands to a vector loop, so the loop has no branch between the two paths.
/// (In GCC's flattened backward loop the branch alone, never taken the other
/// way within a call, cost 40 % of K = 3's time on AVX2: both paths' registers
/// and constants shared one loop.)
template <int K, class Working>
class fixed_precision : public fourier_surrogate<K> {
 public:
  constexpr explicit fixed_precision(fourier_surrogate<K> const& s) noexcept : fourier_surrogate<K>(s) {}

  /// g(r), computed in Working (rounded once to r's type).
  template <class V>
  STABLEQAT_HD constexpr V derivative(V r) const noexcept {
    return this->template derivative_in<Working>(r);
  }
};

inline std::string surrogate_name(int k) {
  return "stableqat::fourier_surrogate<" + std::to_string(k) + ">";
}

}  // namespace fourier_detail

/// StableQAT's surrogate for d round(v)/dv (Chen et al. 2026, Eq. 6-10).
///
/// Rotating the rounding staircase by 45 degrees turns it into a triangle wave;
/// truncating that wave's Fourier series to K odd harmonics and rotating back
/// gives, with c = sqrt(2)*pi and r = v - round_half_even(v) in [-1/2, 1/2],
///
///     g(r) = (1 - c*S(r)) / (1 + c*S(r)),   S(r) = sum_{k<K} a_k cos((2k+1) pi r).
///
/// (cos((2k+1) pi (v + n)) = cos((2k+1) pi r) because 2n(2k+1) pi is a whole
/// number of turns.) The paper's family is a_k = A (-1)^k / (2k+1) with default
/// A = 0.21, K = 1. K = 0 is the straight-through estimator exactly (g = 1).
///
/// A surrogate is valid when |c*S(r)| < 1 on all of [-1/2, 1/2], i.e. g stays
/// positive and finite; construction checks this exactly (through the extremes
/// of S as a polynomial in cos(pi r)) and throws std::invalid_argument
/// otherwise, a compile-time error in constant evaluation. For the paper family
/// the limits are |A| < 0.225079 (K=1), 0.2387 (K=2), 0.2412 (K=3).
///
/// Evaluation never calls cos: t = 1 - cos(pi r) = z E(z), z = r^2, with E
/// a polynomial economised on [0, 1/4] at compile time (5 terms float, 8
/// double; surrogates/detail/fourier_series.hpp). K = 1 uses
/// g = ((1 - cA) + cA t) / ((1 + cA) - cA t), whose terms never cancel, in the
/// working precision, with cA folded into E's coefficients at construction:
/// a multiply, 4 (7) fmas, 2 fmas and one division per element. K >= 2 uses
/// the Chebyshev (Clenshaw) recurrence for the odd harmonics. A float argument
/// is evaluated in float when the series is well enough conditioned
/// (evaluates_float_in_float(): K <= 4 and float_condition() <= 128, e.g. the
/// paper family at A = 0.21 for K = 2, 3, 4), else in double and rounded once.
/// Accuracy (docs/math.md, tested): float within 4e-7 (K = 1), within
/// 2 eps_float float_condition() <= 1.5e-5 on the float path of K >= 2
/// (paper family at A = 0.21: 0.75e-6, 1.07e-6, 1.23e-6 measured for K = 2, 3, 4)
/// and 1.2e-7 when evaluated in double; double within 1e-15 (K = 1) and 4e-15
/// (K = 2..4, A = 0.21), over all of r in [-1/2, 1/2].
template <int K>
class fourier_surrogate {
  static_assert(K >= 0, "fourier_surrogate<K>: the harmonic count K must be >= 0");
  static_assert(K <= fourier_detail::max_harmonics, "fourier_surrogate<K>: K must be <= 16");

 public:
  /// Number of odd harmonics K.
  static constexpr int harmonics = K;
  /// The paper's default amplitude A.
  static constexpr double paper_amplitude = 0.21;

  /// The paper's default: amplitude A = 0.21 (and plain STE when K = 0).
  constexpr fourier_surrogate() : fourier_surrogate(paper_amplitude) {}

  /// Paper parametrisation a_k = A (-1)^k / (2k+1). Throws std::invalid_argument
  /// if A is not finite or |c*S| would reach 1 (see max_paper_amplitude()).
  constexpr explicit fourier_surrogate(double amplitude) {
    if (!fourier_detail::is_finite(amplitude)) {
      detail::throw_invalid_argument(fourier_detail::surrogate_name(K), "amplitude", amplitude,
                                     "is not finite");
    }
    if constexpr (K > 0) {
      std::array<double, static_cast<std::size_t>(K)> a{};
      // `!=`, not `<`, in these loops: for K = 0 nvcc warns "pointless comparison with zero".
      for (std::size_t k = 0; k != a.size(); ++k) {
        a[k] = amplitude * (k % 2 == 0 ? 1.0 : -1.0) / static_cast<double>(2 * k + 1);
      }
      const auto extremes = fourier_detail::rotated_series_extremes<K>(a);
      const long double reach = fourier_detail::rotated_series_reach<K>(extremes);
      if (!is_valid_reach(reach)) {
        throw_reach(reach, "amplitude", amplitude);
      }
      fold(a, extremes);
    }
  }

  /// Custom coefficients a_0 .. a_{K-1}; exactly K of them.
  static constexpr fourier_surrogate from_coefficients(std::array<double, static_cast<std::size_t>(K)> const& a) {
    return fourier_surrogate(a);
  }

  /// Custom coefficients from a braced list, e.g. from_coefficients({0.2, -0.02, 0.005}).
  static constexpr fourier_surrogate from_coefficients(std::initializer_list<double> list) {
    if (list.size() != static_cast<std::size_t>(K)) {
      detail::throw_invalid_argument(fourier_detail::surrogate_name(K) + "::from_coefficients",
                                     "coefficients.size()", list.size(),
                                     "differs from the harmonic count K = " + std::to_string(K));
    }
    std::array<double, static_cast<std::size_t>(K)> a{};
    std::size_t k = 0;
    for (double value : list) {
      a[k++] = value;
    }
    return fourier_surrogate(a);
  }

  /// g(r) for a residual r in [-1/2, 1/2]; V is float, double or a SIMD batch.
  template <class V>
  STABLEQAT_HD constexpr V derivative(V r) const noexcept {
    using T = scalar_of_t<V>;
    if constexpr (K == 0) {
      return V(T(1));
    } else if constexpr (K == 1) {
      // c a_0 (1 - cos(pi r)) = z Q(z), z = r^2, with c a_0 folded into Q's coefficients.
      const V z = r * r;
      const V q = detail::horner(z, folded_table<T>());
      return stableqat::fma(z, q, V(static_cast<T>(numerator_at_zero_))) /
             stableqat::fma(-z, q, V(static_cast<T>(denominator_at_zero_)));
    } else {
      if constexpr (std::is_same_v<T, float>) {
        if (evaluates_float_in_float()) {
          return derivative_in<float>(r);
        }
      }
      return derivative_in<double>(r);
    }
  }

  /// Hook (d) of surrogates/concepts.hpp: calls f with a surrogate equal to
  /// this one whose derivative() for element type T has the precision chosen
  /// at construction (evaluates_float_in_float()) built in, so that a vector
  /// loop holds one evaluation only. Only float with K >= 2 has a choice.
  template <class T, class F>
  constexpr decltype(auto) visit_branch_free(F&& f) const {
    if constexpr (K >= 2 && std::is_same_v<T, float>) {
      if (evaluates_float_in_float()) {
        return f(fourier_detail::fixed_precision<K, float>(*this));
      }
      return f(fourier_detail::fixed_precision<K, double>(*this));
    } else {
      return f(*this);
    }
  }

  /// True when derivative() of a float (or a float batch) is computed in float:
  /// always for K <= 1; for 2 <= K <= max_float_harmonics when
  /// float_condition() <= max_float_condition. Otherwise in double, rounded once.
  [[nodiscard]] STABLEQAT_HD constexpr bool evaluates_float_in_float() const noexcept {
    return K <= max_float_harmonics && float_condition_ <= max_float_condition;  // K <= 1: condition 0
  }

  /// kappa = (1 + sum_k |c a_k| (2k+1)^2) / (1 - max|c S|): how much float's
  /// rounding of u = cos(pi r) and of Clenshaw's sums (the first term; Markov's
  /// bound on |d(cS)/du|) is amplified by the cancellation in 1 - cS (the
  /// second). On the float path the relative error of g is within
  /// 2 eps_float kappa (measured at most 1.45 eps_float kappa over random
  /// series, tests/test_fourier_surrogate.cpp). 0 for K <= 1.
  [[nodiscard]] constexpr double float_condition() const noexcept { return float_condition_; }

  /// Largest K evaluated in float (Clenshaw's error grows with K).
  static constexpr int max_float_harmonics = 4;
  /// Largest float_condition() evaluated in float: 2 eps_float 128 = 1.5e-5.
  static constexpr double max_float_condition = 128.0;

  /// The coefficients a_k.
  [[nodiscard]] constexpr std::array<double, static_cast<std::size_t>(K)> coefficients() const noexcept {
    std::array<double, static_cast<std::size_t>(K)> a{};
    for (std::size_t k = 0; k != a.size(); ++k) {
      a[k] = coefficients_[k];
    }
    return a;
  }

  /// min over r of g(r) = (1 - max cS) / (1 + max cS).
  [[nodiscard]] constexpr double min_derivative() const noexcept { return min_derivative_; }
  /// max over r of g(r) = (1 - min cS) / (1 + min cS).
  [[nodiscard]] constexpr double max_derivative() const noexcept { return max_derivative_; }

  /// Supremum of valid |A| in the paper family for this K (exclusive; +inf for K = 0).
  [[nodiscard]] static constexpr double max_paper_amplitude() noexcept {
    if constexpr (K == 0) {
      return std::numeric_limits<double>::infinity();
    } else {
      std::array<double, static_cast<std::size_t>(K)> a{};
      for (std::size_t k = 0; k != a.size(); ++k) {
        a[k] = (k % 2 == 0 ? 1.0 : -1.0) / static_cast<double>(2 * k + 1);
      }
      return static_cast<double>(
          1.0L / fourier_detail::rotated_series_reach<K>(fourier_detail::rotated_series_extremes<K>(a)));
    }
  }

 private:
  constexpr explicit fourier_surrogate(std::array<double, static_cast<std::size_t>(K)> const& a) {
    for (std::size_t k = 0; k != a.size(); ++k) {
      if (!fourier_detail::is_finite(a[k])) {
        detail::throw_invalid_argument(fourier_detail::surrogate_name(K) + "::from_coefficients",
                                       detail::indexed_name("coefficients", k), a[k], "is not finite");
      }
    }
    if constexpr (K > 0) {
      const auto extremes = fourier_detail::rotated_series_extremes<K>(a);
      const long double reach = fourier_detail::rotated_series_reach<K>(extremes);
      if (!is_valid_reach(reach)) {
        throw_reach(reach, "max |sqrt(2)*pi*S(r)| of coefficients", static_cast<double>(reach));
      }
      fold(a, extremes);
    }
  }

  // 64 ulp of headroom below 1 keeps the double-precision g strictly positive and finite.
  static constexpr bool is_valid_reach(long double reach) noexcept {
    return reach < 1.0L - 64.0L * std::numeric_limits<double>::epsilon();
  }

  // `argument = shown` names the user's input in the message.
  [[noreturn]] static void throw_reach(long double reach, const char* argument, double shown) {
    detail::throw_invalid_argument(
        fourier_detail::surrogate_name(K), argument, shown,
        "makes |sqrt(2)*pi*S(r)| reach " + detail::format_number(static_cast<double>(reach)) +
            "; it must stay below 1 for a positive, finite gradient (paper family: |A| < " +
            detail::format_number(max_paper_amplitude()) + ")");
  }

  // Stores the coefficients and what evaluation needs of them, all folded in long double.
  constexpr void fold(std::array<double, static_cast<std::size_t>(K)> const& a,
                      detail::unit_interval_extremes<2 * K> const& extremes) noexcept {
    for (std::size_t k = 0; k != a.size(); ++k) {
      coefficients_[k] = a[k];
      scaled_[k] = static_cast<double>(fourier_detail::sqrt2_pi * static_cast<long double>(a[k]));
    }
    const long double ca0 = fourier_detail::sqrt2_pi * static_cast<long double>(a[0]);
    folded_float_ = detail::scaled_coefficients<float>(ca0, fourier_detail::one_minus_cos_over_z_economized<folded_terms<float>>());
    folded_double_ = detail::scaled_coefficients<double>(ca0, fourier_detail::one_minus_cos_over_z_economized<folded_terms<double>>());
    if constexpr (K >= 2) {
      long double markov = 1.0L;
      for (std::size_t k = 0; k != a.size(); ++k) {
        const long double n = static_cast<long double>(2 * k + 1);
        markov += fourier_detail::sqrt2_pi * n * n * static_cast<long double>(a[k] < 0 ? -a[k] : a[k]);
      }
      float_condition_ = static_cast<double>(markov / (1.0L - fourier_detail::rotated_series_reach<K>(extremes)));
    }
    numerator_at_zero_ = static_cast<double>(1.0L - ca0);
    denominator_at_zero_ = static_cast<double>(1.0L + ca0);
    min_derivative_ = static_cast<double>((1.0L - extremes.max_value) / (1.0L + extremes.max_value));
    max_derivative_ = static_cast<double>((1.0L - extremes.min_value) / (1.0L + extremes.min_value));
  }

  // g = (1 - c S) / (1 + c S) with S by Clenshaw on T_{2k+1}(u), u = cos(pi r):
  // odd Chebyshev polynomials obey T_{n+2} = 2 T_2(u) T_n - T_{n-2}, T_{-1} = T_1 = u.
  // W is double (or a double batch), or float on the float path.
  //
  // The loop carries m = -2u and Clenshaw's b_k halved (c a_k / 2): every value
  // is the textbook one times a power of two, so the result has the same bits,
  // but 2 T_2(u) = m^2 - 2 needs no multiply by 4 and no step negates a batch
  // (a subtraction from zero in xsimd; two before, for -E and -u, against one
  // extra b2 - b1 now): one multiply-pipe and one add-pipe operation fewer per
  // batch in the backward loop.
  template <class W>
  STABLEQAT_HD constexpr W rotated_ratio(W r) const noexcept {
    using WT = scalar_of_t<W>;
    // m = -2 cos(pi r) = 2 z E(z) - 2 through one explicit fma: written as
    // 2 t - 2, GCC fuses E * z into it or not depending on inlining and -O
    // level, and the cancellation in 1 - c S below turns that into several ulp.
    constexpr auto two_one_minus_cos_over_z =
        detail::scaled_coefficients<WT>(2.0L, fourier_detail::one_minus_cos_over_z_economized<folded_terms<WT>>());
    const W z = r * r;
    const W m = stableqat::fma(detail::horner(z, two_one_minus_cos_over_z), z, W(WT(-2)));
    const W two_t2 = stableqat::fma(m, m, W(WT(-2)));  // 2 T_2(u) = 4 u^2 - 2 = 2 cos(2 pi r)
    // The first two steps start from b = 0, where fma(x, 0, s - 0) = s exactly: skipped.
    W b1 = W(half_scaled<WT>(K - 1));
    W b2 = W(WT(0));
    if constexpr (K >= 2) {
      b2 = b1;
      b1 = stableqat::fma(two_t2, b2, W(half_scaled<WT>(K - 2)));
    }
    for (int k = K - 3; k >= 0; --k) {
      const W b0 = stableqat::fma(two_t2, b1, W(half_scaled<WT>(k)) - b2);
      b2 = b1;
      b1 = b0;
    }
    // c S = u (b1 - b2) = m (b2 - b1) with the halved b; 1 -/+ c S through the
    // fma shim so compiler contraction cannot change the bits.
    return stableqat::fma(m, b1 - b2, W(WT(1))) / stableqat::fma(m, b2 - b1, W(WT(1)));
  }

  template <int, class>
  friend class fourier_detail::fixed_precision;

  // g of K >= 2 computed in Working (float: only for float r), rounded once.
  template <class Working, class V>
  STABLEQAT_HD constexpr V derivative_in(V r) const noexcept {
    if constexpr (std::is_same_v<Working, float>) {
      return rotated_ratio(r);
    } else {
      return evaluate_in_double(r, [this](auto r_double) { return this->rotated_ratio(r_double); });
    }
  }

  // c a_k / 2 in the working type (float: the double value rounded once, then
  // halved, exact above float's subnormals).
  template <class WT>
  STABLEQAT_HD constexpr WT half_scaled(int k) const noexcept {
    return static_cast<WT>(scaled_[k]) * WT(0.5);
  }

  template <class T>
  STABLEQAT_HD constexpr auto const& folded_table() const noexcept {
    if constexpr (std::is_same_v<T, float>) {
      return folded_float_;
    } else {
      return folded_double_;
    }
  }

  static constexpr std::size_t storage = K == 0 ? 1 : static_cast<std::size_t>(K);
  // K = 1: c a_0 times the coefficients of (1 - cos(pi r)) / r^2 in z = r^2:
  // economised to 5 terms (float) or 8 (double).
  template <class T>
  static constexpr std::size_t folded_terms = std::is_same_v<T, float> ? 5 : 8;
  detail::coefficients<float, folded_terms<float>> folded_float_ = {};
  detail::coefficients<double, folded_terms<double>> folded_double_ = {};
  double coefficients_[storage] = {};
  double scaled_[storage] = {};  // c * a_k
  double numerator_at_zero_ = 1.0;    // 1 - c a_0 (K = 1 form)
  double denominator_at_zero_ = 1.0;  // 1 + c a_0
  double min_derivative_ = 1.0;
  double max_derivative_ = 1.0;
  double float_condition_ = 0.0;  // kappa; 0 for K <= 1
};

/// The straight-through estimator, g = 1: the zero-harmonic member of the family.
using ste = fourier_surrogate<0>;

}  // namespace stableqat
