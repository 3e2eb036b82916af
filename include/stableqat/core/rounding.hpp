// stableqat/core/rounding.hpp: round half to even, the rounding of the grid.
#pragma once

#include <bit>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "config.hpp"
#include "math.hpp"

namespace stableqat {

/// round_half_even(v): the nearest integer to v, ties to the even one, exactly
/// as std::nearbyint and torch.round in the default rounding mode: ±0 keep their
/// sign, values of magnitude >= 2^23 (float) or 2^52 (double) are already
/// integers and come back unchanged, NaN stays NaN and ±Inf stay ±Inf.
///
/// Adding and subtracting 2^p (p = mantissa bits) makes the FPU round at the
/// units place; that is constexpr, branch-light and needs no libm call.
template <real_scalar T>
STABLEQAT_HD constexpr T round_half_even(T v) noexcept {
#if STABLEQAT_DEVICE_CODE
  return ::rint(v);
#else
  constexpr T two_to_p = T(1) / std::numeric_limits<T>::epsilon();
  const T magnitude = v < T(0) ? -v : v;
  if (!(magnitude < two_to_p)) {
    return v;  // NaN, ±Inf or already an integer
  }
  const T rounded = (magnitude + two_to_p) - two_to_p;  // >= +0
  // v's sign on the rounded magnitude (-0 for v in (-1/2, -0], like nearbyint),
  // as a bit operation: a branch on the sign of random data mispredicts half the time.
  using bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  constexpr bits sign_mask = bits{1} << (8 * sizeof(T) - 1);
  return std::bit_cast<T>(std::bit_cast<bits>(rounded) | (std::bit_cast<bits>(v) & sign_mask));
#endif
}

/// Batch overload: xsimd's nearbyint rounds ties to even on every x86 level.
STABLEQAT_GCC_PR105593_PUSH
template <class V>
  requires(!real_scalar<V>)
inline V round_half_even(V const& v) noexcept {
  return nearbyint(v);
}
STABLEQAT_GCC_PR105593_POP

}  // namespace stableqat
