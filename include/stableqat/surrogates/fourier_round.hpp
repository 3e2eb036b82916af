// stableqat/surrogates/fourier_round.hpp: the classic Fourier series of round().
//
// Kept for contrast and documentation: this is the surrogate the rotation in
// fourier.hpp replaces. Its derivative grows without bound in K and goes
// negative, which is why StableQAT rotates the staircase first.
#pragma once

#include <cmath>

#include "../core/config.hpp"
#include "../core/math.hpp"
#include "../core/rounding.hpp"

namespace stableqat {

namespace fourier_round_detail {
inline constexpr double two_pi = 6.28318530717958647692528676655900577;
inline constexpr double pi = 3.14159265358979323846264338327950288;

// sin/cos of 2*pi*r for the residual r in [-1/2, 1/2], computed in double so
// float callers get the series to within float rounding.
STABLEQAT_HD inline double sin_turns(double r) { return std::sin(two_pi * r); }
STABLEQAT_HD inline double cos_turns(double r) { return std::cos(two_pi * r); }
}  // namespace fourier_round_detail

/// The truncated Fourier series of round half to even (K >= 0 harmonics):
///
///     round_K(x) = x - sum_{k=1}^{K} (-1)^(k+1) sin(2 pi k x) / (pi k).
///
/// The sines are evaluated at the exact residual r = x - round_half_even(x)
/// (sin(2 pi k x) = sin(2 pi k r)), so large |x| loses no accuracy to range
/// reduction. K = 0 is the identity (the STE view of round). NaN stays NaN;
/// ±Inf give NaN (the series has no limit there).
template <int K, real_scalar T>
STABLEQAT_HD T fourier_round(T x) {
  static_assert(K >= 0, "fourier_round<K>: K must be >= 0");
  if constexpr (K == 0) {
    return x;
  } else {
    const double r = static_cast<double>(x - round_half_even(x));
    double sum = 0.0;
    for (int k = K; k >= 1; --k) {  // smallest terms first
      const double sign = k % 2 == 1 ? 1.0 : -1.0;
      sum += sign * fourier_round_detail::sin_turns(k * r) / (fourier_round_detail::pi * k);
    }
    return static_cast<T>(static_cast<double>(x) - sum);
  }
}

/// Derivative of fourier_round<K>:
///
///     d round_K / dx = 1 - 2 sum_{k=1}^{K} (-1)^(k+1) cos(2 pi k x).
///
/// It peaks at 1 + 2K at half-integers (unbounded in K) and dips below zero
/// for every K >= 1 (-1 at integers for odd K, e.g. K = 1): not a usable
/// gradient, which is the point of contrast with fourier_surrogate. K = 0
/// gives 1 (STE).
template <int K, real_scalar T>
STABLEQAT_HD T fourier_round_derivative(T x) {
  static_assert(K >= 0, "fourier_round_derivative<K>: K must be >= 0");
  if constexpr (K == 0) {
    (void)x;
    return T(1);
  } else {
    const double r = static_cast<double>(x - round_half_even(x));
    double sum = 0.0;
    for (int k = K; k >= 1; --k) {
      const double sign = k % 2 == 1 ? 1.0 : -1.0;
      sum += sign * fourier_round_detail::cos_turns(k * r);
    }
    return static_cast<T>(1.0 - 2.0 * sum);
  }
}

}  // namespace stableqat
