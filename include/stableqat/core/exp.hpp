// stableqat/core/exp.hpp: one exp for every backend, so scalar and SIMD lanes agree.
//
// libm's exp (exec::seq) and xsimd's (exec::simd / exec::par) are both
// faithful but round differently, which left DSQ's dx up to 5 ulp apart
// between backends. exp_nonpositive spells the computation out with the
// library's fma shim, so a scalar and a batch give the same bits wherever the
// fma shim fuses alike (core/math.hpp).
#pragma once

#include <cmath>

#include "config.hpp"
#include "math.hpp"
#include "rounding.hpp"

namespace stableqat {

namespace exp_detail {

/// 2^n for an integer-valued n whose power is a normal number.
template <class V>
STABLEQAT_HD inline V ldexp_integer(V p, V n) noexcept {
  if constexpr (real_scalar<V>) {
    if (!(n == n)) {
      return n;  // NaN x: converting NaN to int is undefined behaviour (found by the fuzzer)
    }
#if STABLEQAT_DEVICE_CODE
    return ::ldexp(p, static_cast<int>(n));
#else
    return std::ldexp(p, static_cast<int>(n));
#endif
  } else {
    // NaN lanes: converted as 0 (xsimd's double -> int64 path converts lane by
    // lane in C++, where NaN is undefined behaviour), then put back.
    const auto is_number = n == n;
    return select(is_number, ldexp(p, to_int(select(is_number, n, V(0)))), n);  // xsimd, by ADL
  }
}

}  // namespace exp_detail

/// exp(x) for x <= 0 (and NaN), within 1 ulp of e^x: x = n ln2 + r with
/// n = round_half_even(x / ln2) (Cody-Waite, ln2 in two parts), e^r by its
/// Taylor polynomial (degree 7 in float, 13 in double: truncation below half an
/// ulp for |r| <= ln2/2) in Horner form with fma, times 2^n. Below
/// x = -80 (float) / -700 (double) it returns 0 rather than a subnormal, so
/// that 2^n stays normal on every backend: the value there is < 2e-35
/// (DSQ reaches it only for alpha < 1e-34). NaN stays NaN.
STABLEQAT_GCC_PR105593_PUSH
template <class V>
STABLEQAT_HD inline V exp_nonpositive(V x) noexcept {
  using T = scalar_of_t<V>;
  constexpr bool is_float = sizeof(T) == 4;
  const T limit = is_float ? T(-80) : T(-700);
  const V clamped = select(x < V(limit), V(limit), x);
  const V n = round_half_even(clamped * V(T(1.4426950408889634074)));
  // ln2 = ln2_hi + ln2_lo; ln2_hi has trailing zeros, so n * ln2_hi is exact.
  const T ln2_hi = is_float ? T(0.693145751953125) : T(0.693147180369123816490);
  const T ln2_lo = is_float ? T(1.428606765330187045e-06) : T(1.90821492927058770002e-10);
  V r = stableqat::fma(n, V(-ln2_hi), clamped);
  r = stableqat::fma(n, V(-ln2_lo), r);
  constexpr int degree = is_float ? 7 : 13;
  // Horner from 1/degree! up: p = 1 + r(1 + r/2(1 + r/3(...))) as coefficients.
  T coefficient[14] = {};
  T factorial = 1;
  for (int j = 0; j <= degree; ++j) {
    if (j > 0) factorial *= T(j);
    coefficient[j] = T(1) / factorial;
  }
  V p = V(coefficient[degree]);
  for (int j = degree - 1; j >= 0; --j) {
    p = stableqat::fma(p, r, V(coefficient[j]));
  }
  const V result = exp_detail::ldexp_integer(p, n);
  return select(x < V(limit), V(T(0)), result);
}
STABLEQAT_GCC_PR105593_POP

}  // namespace stableqat
