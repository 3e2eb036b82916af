// stableqat/exec/simd/widen.hpp: float batches to double halves and back, in registers.
//
// Two users: the step-gradient accumulation of exec::simd (float terms are
// summed in double lanes), and `widen_traits` (core/math.hpp), through which
// surrogates evaluate a float batch in double precision (fourier_surrogate<K>
// for K >= 2). The generic `widen_traits` goes through memory lane by lane;
// the specialisation below converts with one instruction per half on SSE2,
// AVX and AVX-512 (vcvtps2pd / vcvtpd2ps, round to nearest like static_cast).
#pragma once

#include <cstddef>
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

/// A float batch of N lanes as two double batches of N/2 lanes: lo holds lanes
/// 0 .. N/2-1, hi lanes N/2 .. N-1 (same architecture, same register width).
template <class A>
struct double_halves {
  xsimd::batch<double, A> lo;
  xsimd::batch<double, A> hi;
};

/// True when `to_double_halves` / `from_double_halves` use register conversions
/// for architecture A (otherwise they go through a small stack buffer).
template <class A>
inline constexpr bool has_register_widening = has_x86_intrinsics<A>;

/// Exact conversion of every lane of v to double (float -> double never rounds).
template <class A>
inline double_halves<A> to_double_halves(xsimd::batch<float, A> const& v) noexcept {
  using D = xsimd::batch<double, A>;
  static_assert(2 * D::size == xsimd::batch<float, A>::size, "a float batch must hold two double batches");
#if defined(__AVX512F__)
  if constexpr (std::is_base_of_v<xsimd::avx512f, A>) {
    const __m512 r = v;
    // Lanes 8..15 to the bottom; a shuffle rather than _mm512_extractf32x8_ps
    // (AVX512DQ) or _mm512_extractf64x4_pd (GCC 12 warns on its undefined operand).
    const __m256 upper = _mm512_castps512_ps256(_mm512_shuffle_f32x4(r, r, 0xEE));
    return {D(_mm512_cvtps_pd(_mm512_castps512_ps256(r))), D(_mm512_cvtps_pd(upper))};
  } else
#endif
#if defined(__AVX__)
  if constexpr (std::is_base_of_v<xsimd::avx, A>) {
    const __m256 r = v;
    return {D(_mm256_cvtps_pd(_mm256_castps256_ps128(r))), D(_mm256_cvtps_pd(_mm256_extractf128_ps(r, 1)))};
  } else
#endif
#if defined(__SSE2__) || defined(_M_X64)
  if constexpr (std::is_base_of_v<xsimd::sse2, A>) {
    const __m128 r = v;
    return {D(_mm_cvtps_pd(r)), D(_mm_cvtps_pd(_mm_movehl_ps(r, r)))};
  } else
#endif
  {
    alignas(64) float lanes[xsimd::batch<float, A>::size];
    v.store_aligned(lanes);
    return {D::load_unaligned(lanes), D::load_unaligned(lanes + D::size)};
  }
}

/// Rounds both halves to float (to nearest, as static_cast<float>) and joins them.
template <class A>
inline xsimd::batch<float, A> from_double_halves(xsimd::batch<double, A> const& lo,
                                                 xsimd::batch<double, A> const& hi) noexcept {
  using F = xsimd::batch<float, A>;
#if defined(__AVX512F__)
  if constexpr (std::is_base_of_v<xsimd::avx512f, A>) {
    const __m512 low = _mm512_castps256_ps512(_mm512_cvtpd_ps(lo));
    const __m256 high = _mm512_cvtpd_ps(hi);
    return F(_mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(low), _mm256_castps_pd(high), 1)));
  } else
#endif
#if defined(__AVX__)
  if constexpr (std::is_base_of_v<xsimd::avx, A>) {
    return F(_mm256_insertf128_ps(_mm256_castps128_ps256(_mm256_cvtpd_ps(lo)), _mm256_cvtpd_ps(hi), 1));
  } else
#endif
#if defined(__SSE2__) || defined(_M_X64)
  if constexpr (std::is_base_of_v<xsimd::sse2, A>) {
    return F(_mm_movelh_ps(_mm_cvtpd_ps(lo), _mm_cvtpd_ps(hi)));
  } else
#endif
  {
    constexpr std::size_t half = xsimd::batch<double, A>::size;
    alignas(64) double wide[2 * half];
    alignas(64) float lanes[2 * half];
    lo.store_aligned(wide);
    hi.store_aligned(wide + half);
    for (std::size_t i = 0; i < 2 * half; ++i) {
      lanes[i] = static_cast<float>(wide[i]);
    }
    return F::load_aligned(lanes);
  }
}

}  // namespace stableqat::exec::simd_detail

STABLEQAT_GCC_PR105593_POP

namespace stableqat {

/// widen_traits for xsimd float batches: f runs on the two double halves and
/// the results are rounded back to float, all in registers. Lane for lane the
/// same value as the generic (memory) version: f(double(r_i)) rounded to float.
template <class A>
struct widen_traits<xsimd::batch<float, A>, std::enable_if_t<exec::simd_detail::has_register_widening<A>>> {
  template <class F>
  static xsimd::batch<float, A> apply(xsimd::batch<float, A> const& r, F const& f) {
    const auto halves = exec::simd_detail::to_double_halves(r);
    return exec::simd_detail::from_double_halves<A>(f(halves.lo), f(halves.hi));
  }
};

}  // namespace stableqat
