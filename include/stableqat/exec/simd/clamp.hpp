// stableqat/exec/simd/clamp.hpp: batch_clamp for x86 xsimd batches, by min/max instructions.
//
// core/math.hpp's clamp_keep_nan is two selects, which xsimd 8.1 compiles to a
// compare and a blend per bound. x86's maxps/minps return their *second*
// operand when the comparison is false (NaN, equal zeros), so with the bound
// first they compute exactly those selects:
//   maxps(lo, v) = lo > v ? lo : v = select(v < lo, lo, v)
//   minps(hi, m) = hi < m ? hi : m = select(hi < m, hi, m)
// Same bits as the selects (and as exec::seq and CUDA) for every input, in
// one instruction per bound; on AVX2 this frees two slots of the two
// multiply/compare pipes per batch in the backward pass (Zen 3: blends and
// compares share FP0/FP1 with the FMAs).
#pragma once

#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "../../core/config.hpp"
#include "../../core/math.hpp"
#include "x86_registers.hpp"

#if defined(__SSE2__) || defined(_M_X64)
#include <immintrin.h>
#endif

STABLEQAT_GCC_PR105593_PUSH

namespace stableqat::exec::simd_detail {

/// select(v < lo, lo, select(hi < v, hi, v)) with min/max instructions of A's register width.
template <class T, class A>
inline xsimd::batch<T, A> clamp_by_min_max(xsimd::batch<T, A> const& v, xsimd::batch<T, A> const& lo,
                                           xsimd::batch<T, A> const& hi) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr bool is_float = std::is_same_v<T, float>;
  constexpr x86_registers regs = x86_registers_of<A>;
  if constexpr (regs == x86_registers::zmm) {
#if defined(__AVX512F__)
    if constexpr (is_float) {
      return B(_mm512_min_ps(hi, _mm512_max_ps(lo, v)));
    } else {
      return B(_mm512_min_pd(hi, _mm512_max_pd(lo, v)));
    }
#endif
  } else if constexpr (regs == x86_registers::ymm) {
#if defined(__AVX__)
    if constexpr (is_float) {
      return B(_mm256_min_ps(hi, _mm256_max_ps(lo, v)));
    } else {
      return B(_mm256_min_pd(hi, _mm256_max_pd(lo, v)));
    }
#endif
  } else if constexpr (regs == x86_registers::xmm) {
#if defined(__SSE2__) || defined(_M_X64)
    if constexpr (is_float) {
      return B(_mm_min_ps(hi, _mm_max_ps(lo, v)));
    } else {
      return B(_mm_min_pd(hi, _mm_max_pd(lo, v)));
    }
#endif
  }
  return xsimd::select(v < lo, lo, xsimd::select(hi < v, hi, v));
}

}  // namespace stableqat::exec::simd_detail

namespace stableqat {

/// batch_clamp for float and double xsimd batches of an x86 architecture this build enables.
template <class T, class A>
struct batch_clamp<xsimd::batch<T, A>,
                   std::enable_if_t<real_scalar<T> && exec::simd_detail::has_x86_intrinsics<A>>> {
  static xsimd::batch<T, A> apply(xsimd::batch<T, A> const& v, xsimd::batch<T, A> const& lo,
                                  xsimd::batch<T, A> const& hi) noexcept {
    return exec::simd_detail::clamp_by_min_max(v, lo, hi);
  }
};

}  // namespace stableqat

STABLEQAT_GCC_PR105593_POP
