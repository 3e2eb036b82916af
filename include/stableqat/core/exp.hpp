// stableqat/core/exp.hpp: one exp (and expm1) for every backend, so scalar and SIMD lanes agree.
//
// libm's exp (exec::seq) and xsimd's (exec::simd / exec::par) are both
// faithful but round differently, which left DSQ's dx up to 5 ulp apart
// between backends (and its d alpha, a sum that cancels, far more). The
// functions here spell the computation out with the library's fma shim, so a
// scalar and a batch give the same bits wherever the fma shim fuses alike
// (core/math.hpp).
#pragma once

#include <array>
#include <cmath>
#include <cstddef>

#include "config.hpp"
#include "math.hpp"
#include "power_series.hpp"
#include "rounding.hpp"

namespace stableqat {

namespace exp_detail {

/// 2^n for an integer-valued n whose power is a normal number (NaN n: see
/// the branches; the result is NaN wherever the caller below uses it).
template <class V>
STABLEQAT_HD inline V power_of_two(V n) noexcept {
  const V p = V(scalar_of_t<V>(1));
  if constexpr (real_scalar<V>) {
    if (!(n == n)) {
      return n;  // NaN x: converting NaN to int is undefined behaviour (found by the fuzzer)
    }
#if STABLEQAT_DEVICE_CODE
    return ::ldexp(p, static_cast<int>(n));
#else
    return std::ldexp(p, static_cast<int>(n));
#endif
  } else if constexpr (sizeof(scalar_of_t<V>) == 4) {
    // Float lanes convert with cvttps2dq on every x86 level (defined for NaN:
    // 0x80000000); a NaN lane's power is then garbage, but every caller
    // multiplies it by a polynomial of the same NaN, so the result is NaN.
    return ldexp(p, to_int(n));  // xsimd, by ADL
  } else {
    // NaN lanes: converted as 0 (xsimd's double -> int64 path converts lane by
    // lane in C++, where NaN is undefined behaviour), then put back.
    const auto is_number = n == n;
    return select(is_number, ldexp(p, to_int(select(is_number, n, V(0)))), n);  // xsimd, by ADL
  }
}

/// Below this x, exp returns 0 and expm1 returns -1 (the value there is < 2e-35).
template <class T>
inline constexpr T lower_limit = sizeof(T) == 4 ? T(-80) : T(-700);

/// x = n ln2 + r with n = round_half_even(x / ln2) (Cody-Waite, ln2 in two
/// parts, so n * ln2_hi is exact) and |r| <= ln2/2; x is clamped at lower_limit.
template <class V>
struct reduced_argument {
  V n;
  V r;
};

template <bool Clamped = true, class V>
STABLEQAT_HD inline reduced_argument<V> reduce(V x) noexcept {
  using T = scalar_of_t<V>;
  constexpr bool is_float = sizeof(T) == 4;
  V clamped = x;
  if constexpr (Clamped) {
    clamped = select(x < V(lower_limit<T>), V(lower_limit<T>), x);
  }
  const V n = round_half_even(clamped * V(T(1.4426950408889634074)));
  const T ln2_hi = is_float ? T(0.693145751953125) : T(0.693147180369123816490);
  const T ln2_lo = is_float ? T(1.428606765330187045e-06) : T(1.90821492927058770002e-10);
  V r = stableqat::fma(n, V(-ln2_hi), clamped);
  r = stableqat::fma(n, V(-ln2_lo), r);
  return {n, r};
}

/// Bound on |r| after reduce(): ln2/2 = 0.34657..., widened by the rounding
/// of x / ln2 (relative 1e-5 at most in float), rounded up.
inline constexpr long double reduced_bound = 0.35L;

/// The first M Taylor coefficients of h(r) = (e^r - 1 - r) / r^2 = sum_j r^j / (j + 2)!.
template <std::size_t M>
constexpr std::array<long double, M> expm1_minus_r_over_r2_taylor() noexcept {
  std::array<long double, M> h{};
  long double factorial = 1.0L;  // (j + 2)!
  for (std::size_t j = 0; j < M; ++j) {
    factorial *= static_cast<long double>(j + 2);
    h[j] = 1.0L / factorial;
  }
  return h;
}

/// Terms of h kept in T, economised on |r| <= reduced_bound: 5 in float and
/// 10 in double, which leave e^r - 1 within 2.7e-8 resp. 4.6e-17 relative
/// (0.2 ulp) before rounding. Taylor would need 6 and 12.
template <class T>
inline constexpr std::size_t expm1_terms = sizeof(T) == 4 ? 5 : 10;

/// e^r - 1 for |r| <= reduced_bound as r + r^2 h(r): the leading r is exact,
/// so the result carries one rounding plus the small ones of r^2 h (a fifth
/// of the result at most); fewer multiply-class operations than r P(r) with
/// P = 1 + r h, which matters in DSQ's FMA-bound loop.
template <class V>
STABLEQAT_HD inline V expm1_reduced(V r) noexcept {
  using T = scalar_of_t<V>;
  constexpr auto h = detail::scaled_coefficients<T>(
      1.0L, detail::economized<expm1_terms<T>>(expm1_minus_r_over_r2_taylor<16>(), -reduced_bound, reduced_bound));
  return stableqat::fma(r * r, detail::horner(r, h), r);
}

}  // namespace exp_detail

/// e^x and e^x - 1 of one argument, computed together.
template <class V>
struct exp_and_expm1 {
  V exp;    ///< e^x
  V expm1;  ///< e^x - 1, without cancellation near x = 0
};

STABLEQAT_GCC_PR105593_PUSH
namespace exp_detail {

/// exp_and_expm1_nonpositive(x) for Clamped; without, for callers that
/// guarantee lower_limit <= x <= 0 or NaN (dsq_surrogate's hook (d)): the
/// clamp and the two selects that would be no-ops go, the bits stay.
template <bool Clamped, class V>
STABLEQAT_HD inline exp_and_expm1<V> exp_pair(V x) noexcept {
  using T = scalar_of_t<V>;
  const auto [n, r] = reduce<Clamped>(x);
  const V q = expm1_reduced(r);
  const V two_to_n = power_of_two(n);
  const V power = stableqat::fma(two_to_n, q, two_to_n);
  const V power_minus_one = stableqat::fma(two_to_n, q, two_to_n - V(T(1)));
  if constexpr (Clamped) {
    const auto below = x < V(lower_limit<T>);
    return {select(below, V(T(0)), power), select(below, V(T(-1)), power_minus_one)};
  } else {
    return {power, power_minus_one};
  }
}

}  // namespace exp_detail

/// e^x and e^x - 1 for x <= 0 (and NaN), each within ~1 ulp, from one argument
/// reduction and one polynomial: x = n ln2 + r (exp_detail::reduce),
/// q = e^r - 1 = r + r^2 h(r) (exp_detail::expm1_reduced), then
///     e^x = 2^n q + 2^n,   e^x - 1 = 2^n q + (2^n - 1)
/// (for n = 0, i.e. |x| <= ln2/2, the second is q itself: no cancellation).
/// Below x = -80 (float) / -700 (double) they return 0 and -1 rather than a
/// subnormal, so that 2^n stays normal on every backend (DSQ reaches that only
/// for alpha < 1e-34). NaN gives NaN in both.
template <class V>
STABLEQAT_HD inline exp_and_expm1<V> exp_and_expm1_nonpositive(V x) noexcept {
  return exp_detail::exp_pair<true>(x);
}

STABLEQAT_GCC_PR105593_POP

}  // namespace stableqat
