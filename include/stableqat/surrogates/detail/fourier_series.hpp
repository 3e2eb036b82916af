// stableqat/surrogates/detail/fourier_series.hpp: the approximation toolbox
// behind fourier_surrogate<K> (surrogates/fourier.hpp).
//
// Everything here is constexpr long-double work done once at construction
// (the Taylor series of cos, the exact extremes used for validation); the
// economisation and the Horner evaluation every backend runs per element are
// core/power_series.hpp's.
#pragma once

#include <array>
#include <cstddef>
#include <limits>

#include "../../core/config.hpp"
#include "../../core/math.hpp"
#include "../../core/polynomial.hpp"
#include "../../core/power_series.hpp"

namespace stableqat::fourier_detail {

/// sqrt(2) * pi, the factor of the rotated series (c in the docs).
inline constexpr long double sqrt2_pi = 4.44288293815836624701588099006069370L;
inline constexpr long double pi_squared = 9.86960440108935861883449099987615114L;

/// Largest harmonic count supported; validation works in the power basis of
/// Chebyshev polynomials, which long double represents well up to this order.
inline constexpr int max_harmonics = 16;

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

/// one_minus_cos_over_z_taylor economised on z = r^2 in [0, 1/4] (|r| <= 1/2)
/// to N terms (detail::economized): for t = 1 - cos(pi r) = z E(z), 5 terms
/// leave 3e-9 on t (below float's 6e-8 rounding) where Taylor needs 6 for 6.4e-9.
template <std::size_t N>
constexpr std::array<long double, N> one_minus_cos_over_z_economized() noexcept {
  return detail::economized<N>(one_minus_cos_over_z_taylor<16>(), 0.0L, 0.25L);
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
