// stableqat/core/power_series.hpp: short polynomials that every backend
// evaluates per element, and the constexpr work that chooses them.
//
// A series (Taylor, in long double) is economised once on the interval its
// argument lives in (Chebyshev economisation), each coefficient is rounded
// once to the working type, and Horner's rule with the fma shim evaluates it,
// so a scalar and a SIMD lane give the same bits. Used by the Fourier
// surrogate's cos(pi r) (surrogates/detail/fourier_series.hpp) and by the
// exponential of core/exp.hpp.
#pragma once

#include <array>
#include <cstddef>
#include <utility>

#include "config.hpp"
#include "math.hpp"

namespace stableqat::detail {

/// Coefficients of a polynomial c[0] + c[1] z + ... in the working type T; a C
/// array (not std::array) so that device code can index it.
template <class T, std::size_t N>
struct coefficients {
  T c[N];
};

/// The polynomial p(z) = sum_j p[j] z^j (long double) economised on
/// z in [lo, hi] to its first N Chebyshev terms: expand p in T_k(x) with
/// x = (z - mid) / half (mid = (lo + hi)/2, half = (hi - lo)/2), drop T_N and
/// above, convert back to monomials in z. On [lo, hi] the change is at most
/// the sum of the dropped Chebyshev coefficients' magnitudes, far less than
/// truncating p to N terms (Chebyshev's T_k is bounded by 1 there while
/// z^k is not small at the ends).
template <std::size_t N, std::size_t M>
constexpr std::array<long double, N> economized(std::array<long double, M> const& p, long double lo,
                                                long double hi) noexcept {
  const long double mid = (lo + hi) / 2.0L;
  const long double half = (hi - lo) / 2.0L;
  // p in monomials of x, with z = mid + half x.
  std::array<long double, M> px{};
  std::array<long double, M> power{};  // coefficients of (mid + half x)^j
  power[0] = 1.0L;
  for (std::size_t j = 0; j < M; ++j) {
    for (std::size_t i = 0; i < M; ++i) {
      px[i] += p[j] * power[i];
    }
    for (std::size_t i = M - 1; i > 0; --i) {  // power *= mid + half x
      power[i] = mid * power[i] + half * power[i - 1];
    }
    power[0] = mid * power[0];
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
  // x = (z - mid) / half: coefficients in z.
  std::array<long double, N> ez{};
  std::array<long double, N> xpow{};  // ((z - mid) / half)^n
  xpow[0] = 1.0L;
  for (std::size_t n = 0; n < N; ++n) {
    for (std::size_t i = 0; i < N; ++i) {
      ez[i] += bx[n] * xpow[i];
    }
    for (std::size_t i = N - 1; i > 0; --i) {
      xpow[i] = xpow[i - 1] / half - (mid / half) * xpow[i];
    }
    xpow[0] = -(mid / half) * xpow[0];
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

}  // namespace stableqat::detail
