// stableqat/surrogates/detail/fourier_series.hpp: the approximation toolbox
// behind fourier_surrogate<K> (surrogates/fourier.hpp).
//
// Everything here is either constexpr long-double work done once at
// construction (Taylor series, Chebyshev economisation, the exact extremes used
// for validation) or the one Horner evaluation every backend runs per element.
#pragma once

#include <array>
#include <cstddef>
#include <limits>
#include <utility>

#include "../../core/config.hpp"
#include "../../core/math.hpp"
#include "../../core/polynomial.hpp"

namespace stableqat::fourier_detail {

/// sqrt(2) * pi, the factor of the rotated series (c in the docs).
inline constexpr long double sqrt2_pi = 4.44288293815836624701588099006069370L;
inline constexpr long double pi_squared = 9.86960440108935861883449099987615114L;

/// Largest harmonic count supported; validation works in the power basis of
/// Chebyshev polynomials, which long double represents well up to this order.
inline constexpr int max_harmonics = 16;

/// Coefficients of a polynomial c[0] + c[1] z + ... in the working type T; a C
/// array (not std::array) so that device code can index it.
template <class T, std::size_t N>
struct coefficients {
  T c[N];
};

/// The first M Taylor coefficients of (1 - cos(pi r)) / z in z = r^2,
///   q_j = (-1)^j pi^(2j+2) / (2j+2)!.
/// On |r| <= 1/2 the terms alternate and shrink, so the first omitted one bounds
/// the error: 10 terms leave 1.8e-17 (0.16 ulp of double).
template <std::size_t M>
constexpr std::array<long double, M> one_minus_cos_over_z_taylor() noexcept {
  std::array<long double, M> q{};
  long double term = pi_squared / 2.0L;  // pi^(2j+2) / (2j+2)! for j = 0
  for (std::size_t j = 0; j < M; ++j) {
    q[j] = j % 2 == 0 ? term : -term;
    const auto n = static_cast<long double>(2 * j + 3);
    term = term * pi_squared / (n * (n + 1.0L));
  }
  return q;
}

/// A polynomial in z (coefficients p, all in long double) economised on
/// z in [0, 1/4] to its first N Chebyshev terms: expand in T_k(8 z - 1), drop
/// T_N and above, convert back to monomials in z. The error is the sum of the
/// dropped Chebyshev coefficients, far below that of truncating the Taylor
/// series to N terms: for t = 1 - cos(pi r) = z E(z), 5 economised terms leave
/// 3e-9 on t (below float's 6e-8 rounding) where Taylor needs 6 for 6.4e-9.
template <std::size_t N, std::size_t M>
constexpr std::array<long double, N> economized(std::array<long double, M> const& p) noexcept {
  // p in monomials of x, with z = (1 + x) / 8.
  std::array<long double, M> px{};
  std::array<long double, M> power{};  // coefficients of ((1 + x) / 8)^j
  power[0] = 1.0L;
  for (std::size_t j = 0; j < M; ++j) {
    for (std::size_t i = 0; i < M; ++i) {
      px[i] += p[j] * power[i];
    }
    for (std::size_t i = M - 1; i > 0; --i) {  // power *= (1 + x) / 8
      power[i] = (power[i] + power[i - 1]) / 8.0L;
    }
    power[0] = power[0] / 8.0L;
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

/// scale * p, each coefficient rounded once to T.
template <class T, std::size_t N>
constexpr coefficients<T, N> scaled_coefficients(long double scale, std::array<long double, N> const& p) noexcept {
  coefficients<T, N> out{};
  for (std::size_t j = 0; j < N; ++j) {
    out.c[j] = static_cast<T>(scale * p[j]);
  }
  return out;
}

template <class V, class T, std::size_t N, std::size_t... J>
STABLEQAT_HD constexpr V horner(V z, T const (&c)[N], std::index_sequence<J...>) noexcept {
  V acc = V(c[N - 1]);
  ((acc = stableqat::fma(acc, z, V(c[N - 2 - J]))), ...);
  return acc;
}

/// c[0] + c[1] z + ... + c[N-1] z^(N-1) by Horner's rule, one fma per step
/// (unrolled by the fold), in V: a scalar or a SIMD batch of T.
template <class V, class T, std::size_t N>
STABLEQAT_HD constexpr V horner(V z, coefficients<T, N> const& p) noexcept {
  static_assert(N >= 1);
  return horner(z, p.c, std::make_index_sequence<N - 1>{});
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

/// max |sqrt(2)*pi*S(r)| over r, the quantity that must stay below 1.
template <int K>
constexpr long double rotated_series_reach(detail::unit_interval_extremes<2 * K> const& e) noexcept {
  return e.max_value > -e.min_value ? e.max_value : -e.min_value;
}

constexpr bool is_finite(double x) noexcept {
  return x == x && x <= std::numeric_limits<double>::max() && x >= -std::numeric_limits<double>::max();
}

}  // namespace stableqat::fourier_detail
