// stableqat/exec/simd/fused_multiply_add.hpp: batch_fma for xsimd batches, fused exactly when the scalar shim is.
//
// core/math.hpp's scalar `stableqat::fma` rounds once on builds with an FMA
// unit (STABLEQAT_HOST_HAS_FMA) and twice otherwise. xsimd 8.1 fuses only on
// its fma3<...> architectures: its AVX-512 kernels fall back to x * y + z,
// which GCC then contracts or not depending on the surrounding code. This
// specialisation makes every batch multiply-add a single vfmadd on FMA
// builds, so the SIMD body, its scalar tail and exec::seq round alike (near a
// surrogate's validity limit the ratio (1 - cS)/(1 + cS) would otherwise
// magnify a last-bit difference into many ulp). Without FMA the generic
// x * y + z is already what the scalar shim does.
#pragma once

#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "../../core/config.hpp"
#include "../../core/math.hpp"
#include "x86_registers.hpp"

#if STABLEQAT_HOST_HAS_FMA && (defined(__SSE2__) || defined(_M_X64))
#include <immintrin.h>
#endif

namespace stableqat::exec::simd_detail {

/// True when batches of architecture A get a fused multiply-add from fused_fma
/// below: FMA builds, on AVX-512 (which has it) or with FMA3 enabled.
template <class A>
inline constexpr bool has_fused_batch_fma =
    STABLEQAT_HOST_HAS_FMA && (x86_registers_of<A> == x86_registers::zmm ||
#if defined(__FMA__)
                               has_x86_intrinsics<A> ||
#endif
                               false);

/// a * b + c rounded once, with the instruction of A's register width.
template <class T, class A>
inline xsimd::batch<T, A> fused_fma(xsimd::batch<T, A> const& a, xsimd::batch<T, A> const& b,
                                    xsimd::batch<T, A> const& c) noexcept {
  using B [[maybe_unused]] = xsimd::batch<T, A>;
  [[maybe_unused]] constexpr bool is_float = std::is_same_v<T, float>;
#if STABLEQAT_HOST_HAS_FMA && defined(__AVX512F__)
  if constexpr (std::is_base_of_v<xsimd::avx512f, A>) {
    if constexpr (is_float) {
      return B(_mm512_fmadd_ps(a, b, c));
    } else {
      return B(_mm512_fmadd_pd(a, b, c));
    }
  } else
#endif
#if STABLEQAT_HOST_HAS_FMA && defined(__FMA__) && defined(__AVX__)
  if constexpr (std::is_base_of_v<xsimd::avx, A>) {
    if constexpr (is_float) {
      return B(_mm256_fmadd_ps(a, b, c));
    } else {
      return B(_mm256_fmadd_pd(a, b, c));
    }
  } else
#endif
#if STABLEQAT_HOST_HAS_FMA && defined(__FMA__) && (defined(__SSE2__) || defined(_M_X64))
  if constexpr (std::is_base_of_v<xsimd::sse2, A>) {
    if constexpr (is_float) {
      return B(_mm_fmadd_ps(a, b, c));
    } else {
      return B(_mm_fmadd_pd(a, b, c));
    }
  } else
#endif
  {
    return xsimd::fma(a, b, c);
  }
}

}  // namespace stableqat::exec::simd_detail

namespace stableqat {

/// batch_fma for float and double xsimd batches on FMA builds: one vfmadd.
template <class T, class A>
struct batch_fma<xsimd::batch<T, A>,
                 std::enable_if_t<real_scalar<T> && exec::simd_detail::has_fused_batch_fma<A>>> {
  static xsimd::batch<T, A> apply(xsimd::batch<T, A> const& a, xsimd::batch<T, A> const& b,
                                  xsimd::batch<T, A> const& c) noexcept {
    return exec::simd_detail::fused_fma(a, b, c);
  }
};

}  // namespace stableqat
