// stableqat/surrogates/fourier.hpp: the StableQAT rotated Fourier surrogate.
#pragma once

#include <array>
#include <cstddef>
#include <initializer_list>
#include <limits>
#include <string>
#include <utility>

#include "../core/config.hpp"
#include "../core/errors.hpp"
#include "../core/math.hpp"
#include "../core/polynomial.hpp"

namespace stableqat {

namespace fourier_detail {

/// sqrt(2) * pi, the factor of the rotated series (c in the docs).
inline constexpr long double sqrt2_pi = 4.44288293815836624701588099006069370L;
inline constexpr long double pi_squared = 9.86960440108935861883449099987615114L;

/// Largest harmonic count supported; validation works in the power basis of
/// Chebyshev polynomials, which long double represents well up to this order.
inline constexpr int max_harmonics = 16;

/// Coefficients q_j of 1 - cos(pi r) = z * sum_j q_j z^j, z = r^2: the Taylor
/// series, q_j = (-1)^j pi^(2j+2) / (2j+2)!. On |r| <= 1/2 the terms alternate
/// and shrink, so the first omitted one bounds the error: 6 terms leave 6.4e-9
/// (0.1 ulp of float), 10 terms leave 1.8e-17 (0.16 ulp of double).
template <class T>
struct one_minus_cos_table {
  static constexpr std::size_t size = std::is_same_v<T, float> ? 6 : 10;
  T q[size];
};

template <class T>
constexpr one_minus_cos_table<T> make_one_minus_cos_table() noexcept {
  one_minus_cos_table<T> table{};
  long double term = pi_squared / 2.0L;
  for (std::size_t j = 0; j < table.size; ++j) {
    table.q[j] = static_cast<T>(j % 2 == 0 ? term : -term);
    const auto n = static_cast<long double>(2 * j + 3);
    term = term * pi_squared / (n * (n + 1.0L));
  }
  return table;
}

template <class V, class Table, std::size_t... J>
STABLEQAT_HD constexpr V horner(V z, Table const& table, std::index_sequence<J...>) noexcept {
  using T = scalar_of_t<V>;
  constexpr std::size_t last = sizeof...(J);
  V acc = V(table.q[last]);
  // Unrolled by the fold: acc = acc * z + q[last - 1 - J] for J = 0, 1, ...
  ((acc = stableqat::fma(acc, z, V(static_cast<T>(table.q[last - 1 - J])))), ...);
  return acc;
}

/// (1 - cos(pi r)) / z as a polynomial in z = r^2 in [0, 1/4] (Taylor table).
template <class V>
STABLEQAT_HD constexpr V one_minus_cos_pi_over_z(V z) noexcept {
  using T = scalar_of_t<V>;
  constexpr one_minus_cos_table<T> table = make_one_minus_cos_table<T>();
  return horner(z, table, std::make_index_sequence<table.size - 1>{});
}

/// t = 1 - cos(pi r) for r in [-1/2, 1/2], to within a few ulp relative to t
/// (no cancellation near r = 0, unlike forming 1 - cos).
template <class V>
STABLEQAT_HD constexpr V one_minus_cos_pi(V r) noexcept {
  const V z = r * r;
  return one_minus_cos_pi_over_z(z) * z;
}

/// Coefficients e_0 .. e_{N-1} of a polynomial E(z), z = r^2 in [0, 1/4], with
/// E(z) ~ (1 - cos(pi r)) / z: the Taylor series economised on [0, 1/4]
/// (Chebyshev expansion of 16 Taylor terms, truncated to N), all in long double.
/// Truncation error: the dropped Chebyshev terms, 3e-9 for N = 5 (on t, below
/// float's 6e-8 rounding), while Taylor needs 6 terms for 6.4e-9.
template <std::size_t N>
constexpr std::array<long double, N> economized_one_minus_cos() noexcept {
  constexpr std::size_t M = 16;
  // p(x) = sum_j q_j z^j with z = (1 + x) / 8: monomial coefficients in x.
  std::array<long double, M> px{};
  std::array<long double, M> power{};  // coefficients of ((1 + x) / 8)^j
  power[0] = 1.0L;
  long double term = pi_squared / 2.0L;
  for (std::size_t j = 0; j < M; ++j) {
    const long double qj = j % 2 == 0 ? term : -term;
    for (std::size_t i = 0; i < M; ++i) {
      px[i] += qj * power[i];
    }
    for (std::size_t i = M - 1; i > 0; --i) {  // power *= (1 + x) / 8
      power[i] = (power[i] + power[i - 1]) / 8.0L;
    }
    power[0] = power[0] / 8.0L;
    const auto n = static_cast<long double>(2 * j + 3);
    term = term * pi_squared / (n * (n + 1.0L));
  }
  // Monomials in x to Chebyshev: x T_k = (T_{k+1} + T_{|k-1|}) / 2.
  std::array<long double, M> cheb{};
  std::array<long double, M> xn{};  // x^n in the Chebyshev basis
  xn[0] = 1.0L;
  for (std::size_t n = 0; n < M; ++n) {
    for (std::size_t k = 0; k < M; ++k) {
      cheb[k] += px[n] * xn[k];
    }
    std::array<long double, M> next{};
    for (std::size_t k = 0; k < M; ++k) {
      if (k + 1 < M) {
        next[k + 1] += k == 0 ? xn[k] : xn[k] / 2.0L;
      }
      if (k > 0) {
        next[k - 1] += xn[k] / 2.0L;
      }
    }
    xn = next;
  }
  // Keep T_0 .. T_{N-1}, back to monomials in x (T_{k+1} = 2 x T_k - T_{k-1}).
  std::array<long double, N> bx{};
  std::array<long double, N> t_prev{}, t_cur{};
  t_prev[0] = 1.0L;  // T_0
  if constexpr (N > 1) {
    t_cur[1] = 1.0L;  // T_1
  }
  for (std::size_t k = 0; k < N; ++k) {
    std::array<long double, N> const& tk = k == 0 ? t_prev : t_cur;
    for (std::size_t i = 0; i < N; ++i) {
      bx[i] += cheb[k] * tk[i];
    }
    if (k >= 1) {
      std::array<long double, N> t_next{};
      for (std::size_t i = 0; i < N; ++i) {
        t_next[i] = (i > 0 ? 2.0L * t_cur[i - 1] : 0.0L) - t_prev[i];
      }
      t_prev = t_cur;
      t_cur = t_next;
    }
  }
  // x = 8 z - 1: coefficients in z.
  std::array<long double, N> ez{};
  std::array<long double, N> xpow{};  // (8 z - 1)^n
  xpow[0] = 1.0L;
  for (std::size_t n = 0; n < N; ++n) {
    for (std::size_t i = 0; i < N; ++i) {
      ez[i] += bx[n] * xpow[i];
    }
    for (std::size_t i = N - 1; i > 0; --i) {
      xpow[i] = 8.0L * xpow[i - 1] - xpow[i];
    }
    xpow[0] = -xpow[0];
  }
  return ez;
}

/// Horner's rule on N coefficients c[0] + c[1] z + ... (unrolled by the fold).
template <class V, class T, std::size_t N, std::size_t... J>
STABLEQAT_HD constexpr V horner_values(V z, T const (&c)[N], std::index_sequence<J...>) noexcept {
  V acc = V(c[N - 1]);
  ((acc = stableqat::fma(acc, z, V(c[N - 2 - J]))), ...);
  return acc;
}

/// Power-basis coefficients of sum_k w[k] T_{2k+1}(u) (Chebyshev T, degree 2K-1).
template <int K>
constexpr detail::power_polynomial<2 * K> odd_chebyshev_sum(std::array<long double, K> const& w) noexcept {
  constexpr std::size_t N = 2 * K;
  std::array<std::array<long double, N>, N> chebyshev{};  // chebyshev[n] = T_n
  chebyshev[0][0] = 1.0L;
  if constexpr (N > 1) {
    chebyshev[1][1] = 1.0L;
  }
  for (std::size_t n = 2; n < N; ++n) {
    for (std::size_t j = 0; j < N; ++j) {
      const long double shifted = j > 0 ? 2.0L * chebyshev[n - 1][j - 1] : 0.0L;
      chebyshev[n][j] = shifted - chebyshev[n - 2][j];
    }
  }
  detail::power_polynomial<N> p{};
  for (std::size_t k = 0; k < static_cast<std::size_t>(K); ++k) {
    for (std::size_t j = 0; j < N; ++j) {
      p.c[j] += w[k] * chebyshev[2 * k + 1][j];
    }
  }
  return p;
}

/// Extremes over r in [-1/2, 1/2] of sqrt(2)*pi*S(r), S = sum_k a_k cos((2k+1) pi r),
/// through its exact form as a polynomial in u = cos(pi r) on [0, 1].
template <int K>
constexpr detail::unit_interval_extremes<2 * K> rotated_series_extremes(std::array<double, K> const& a) noexcept {
  std::array<long double, K> scaled{};
  for (std::size_t k = 0; k < static_cast<std::size_t>(K); ++k) {
    scaled[k] = sqrt2_pi * static_cast<long double>(a[k]);
  }
  return detail::extremes_on_unit_interval(odd_chebyshev_sum<K>(scaled));
}

constexpr bool is_finite(double x) noexcept {
  return x == x && x <= std::numeric_limits<double>::max() && x >= -std::numeric_limits<double>::max();
}

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
/// Evaluation never calls cos: t = 1 - cos(pi r) comes from a short even
/// polynomial. K = 1 uses g = ((1 - cA) + cA t) / ((1 + cA) - cA t), whose
/// terms never cancel, in the working precision, with cA t = z Q(z), z = r^2,
/// and cA folded into Q's coefficients at construction (float: 5 economised
/// terms, double: 10 Taylor terms): a multiply, 4 (9) fmas, 2 fmas and one
/// division per element. K >= 2 uses the Chebyshev
/// (Clenshaw) recurrence for the odd harmonics in double precision, because in
/// float the cancellation in 1 - c*S would cost up to ~50x the rounding error.
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
    std::array<double, static_cast<std::size_t>(K)> a{};
    // `!=`, not `<`, in these loops: for K = 0 nvcc warns "pointless comparison with zero".
    for (std::size_t k = 0; k != a.size(); ++k) {
      a[k] = amplitude * (k % 2 == 0 ? 1.0 : -1.0) / static_cast<double>(2 * k + 1);
    }
    assign(a, "amplitude", amplitude);
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
      const V q = fourier_detail::horner_values(z, folded_table<T>(), std::make_index_sequence<folded_terms<T> - 1>{});
      return stableqat::fma(z, q, V(static_cast<T>(numerator_at_zero_))) /
             stableqat::fma(-z, q, V(static_cast<T>(denominator_at_zero_)));
    } else {
      return evaluate_in_double(r, [this](auto r_double) { return this->rotated_ratio(r_double); });
    }
  }

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
      const auto e = fourier_detail::rotated_series_extremes<K>(a);
      const long double reach = e.max_value > -e.min_value ? e.max_value : -e.min_value;
      return static_cast<double>(1.0L / reach);
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
    assign(a, "max |sqrt(2)*pi*S(r)| of coefficients", 0.0);
  }

  // Validates and stores; `argument`/`value` name the user's input in errors.
  constexpr void assign(std::array<double, static_cast<std::size_t>(K)> const& a, const char* argument,
                        double value) {
    if constexpr (K > 0) {
      const auto e = fourier_detail::rotated_series_extremes<K>(a);
      const long double reach = e.max_value > -e.min_value ? e.max_value : -e.min_value;
      // 64 ulp of headroom keeps the double-precision g strictly positive and finite.
      constexpr long double margin = 64.0L * std::numeric_limits<double>::epsilon();
      if (!(reach < 1.0L - margin)) {
        const double shown = argument[0] == 'a' ? value : static_cast<double>(reach);
        detail::throw_invalid_argument(
            fourier_detail::surrogate_name(K), argument, shown,
            "makes |sqrt(2)*pi*S(r)| reach " + detail::format_number(static_cast<double>(reach)) +
                "; it must stay below 1 for a positive, finite gradient (paper family: |A| < " +
                detail::format_number(max_paper_amplitude()) + ")");
      }
      for (std::size_t k = 0; k < static_cast<std::size_t>(K); ++k) {
        coefficients_[k] = a[k];
        scaled_[k] = static_cast<double>(fourier_detail::sqrt2_pi * static_cast<long double>(a[k]));
      }
      const long double ca0 = fourier_detail::sqrt2_pi * static_cast<long double>(a[0]);
      constexpr auto economized = fourier_detail::economized_one_minus_cos<folded_terms<float>>();
      for (std::size_t j = 0; j < folded_terms<float>; ++j) {
        folded_float_[j] = static_cast<float>(ca0 * economized[j]);
      }
      long double term = fourier_detail::pi_squared / 2.0L;
      for (std::size_t j = 0; j < folded_terms<double>; ++j) {
        folded_double_[j] = static_cast<double>(ca0 * (j % 2 == 0 ? term : -term));
        const auto n = static_cast<long double>(2 * j + 3);
        term = term * fourier_detail::pi_squared / (n * (n + 1.0L));
      }
      numerator_at_zero_ = static_cast<double>(1.0L - ca0);
      denominator_at_zero_ = static_cast<double>(1.0L + ca0);
      min_derivative_ = static_cast<double>((1.0L - e.max_value) / (1.0L + e.max_value));
      max_derivative_ = static_cast<double>((1.0L - e.min_value) / (1.0L + e.min_value));
    } else {
      (void)a;
      (void)argument;
      (void)value;
    }
  }

  // g = (1 - c S) / (1 + c S) with S by Clenshaw on T_{2k+1}(u), u = cos(pi r):
  // odd Chebyshev polynomials obey T_{n+2} = 2 T_2(u) T_n - T_{n-2}, T_{-1} = T_1 = u.
  template <class W>
  STABLEQAT_HD constexpr W rotated_ratio(W r) const noexcept {
    // u = cos(pi r) = 1 - z h(z) through one explicit fma: written as 1 - t,
    // GCC fuses h * z into it or not depending on inlining and -O level, and
    // the cancellation in 1 - c S below turns that into several ulp.
    const W z = r * r;
    const W u = stableqat::fma(-fourier_detail::one_minus_cos_pi_over_z(z), z, W(1.0));
    const W two_t2 = stableqat::fma(W(4.0) * u, u, W(-2.0));  // 2 T_2(u) = 2 cos(2 pi r)
    W b1 = W(0.0);
    W b2 = W(0.0);
    for (int k = K - 1; k >= 0; --k) {
      const W b0 = stableqat::fma(two_t2, b1, W(scaled_[k]) - b2);
      b2 = b1;
      b1 = b0;
    }
    // c S = u (b1 - b2); 1 -/+ c S through the fma shim so compiler contraction
    // (GCC fuses `1 - u*d` under -march=native, clang does not) cannot change the bits.
    const W d = b1 - b2;
    return stableqat::fma(-u, d, W(1.0)) / stableqat::fma(u, d, W(1.0));
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
  // float economised to 5 terms, double Taylor to 10 (one_minus_cos_table).
  template <class T>
  static constexpr std::size_t folded_terms = std::is_same_v<T, float> ? 5 : 10;
  float folded_float_[folded_terms<float>] = {};
  double folded_double_[folded_terms<double>] = {};
  double coefficients_[storage] = {};
  double scaled_[storage] = {};  // c * a_k
  double numerator_at_zero_ = 1.0;    // 1 - c a_0 (K = 1 form)
  double denominator_at_zero_ = 1.0;  // 1 + c a_0
  double min_derivative_ = 1.0;
  double max_derivative_ = 1.0;
};

/// The straight-through estimator, g = 1: the zero-harmonic member of the family.
using ste = fourier_surrogate<0>;

}  // namespace stableqat
