// stableqat/exec/simd/storage_access.hpp: a float batch from / to 16-bit storage.
//
// The one place where exec::simd touches bfloat16 / float16 elements: the
// kernels load x and dy through load_storage (exact widening) and store y and
// dx through store_storage (one rounding to nearest even), so the element
// formulas run in float and the kernels exist once. Bits equal the scalar
// conversions of core/half.hpp for every input, NaN included (tested).
//  - bfloat16: the float's top half. Widening zero-extends each 16-bit lane to
//    32 bits and shifts it up; narrowing adds the rounding bias in 32-bit
//    integer lanes (xsimd), then packs the lanes to 16 bits. xsimd 8.1 has no
//    16 <-> 32-bit lane conversion, hence one intrinsic per register family.
//  - float16: vcvtph2ps / vcvtps2ph (F16C on xmm/ymm, AVX-512F on zmm), which
//    round to nearest even in hardware; without F16C, the scalar conversions
//    lane by lane through a stack buffer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "../../core/config.hpp"
#include "../../core/half.hpp"
#include "../storage.hpp"
#include "x86_registers.hpp"

#if defined(__SSE2__) || defined(_M_X64)
#include <immintrin.h>
#endif

namespace stableqat::exec::simd_detail {

/// True when float16 lanes of architecture A convert in registers on this build.
template <class A>
inline constexpr bool has_register_float16 =
#if defined(__AVX512F__)
    x86_registers_of<A> == x86_registers::zmm ||
#endif
#if defined(__F16C__)
    x86_registers_of<A> == x86_registers::ymm || x86_registers_of<A> == x86_registers::xmm ||
#endif
    false;

/// True when 16 <-> 32-bit integer lanes of A convert in registers (bfloat16).
/// ymm needs AVX2 (vpmovzxwd on 256 bits); plain AVX goes through memory.
template <class A>
inline constexpr bool has_register_u16_lanes =
#if defined(__AVX2__)
    x86_registers_of<A> == x86_registers::ymm ||
#endif
    x86_registers_of<A> == x86_registers::zmm || x86_registers_of<A> == x86_registers::xmm;

namespace storage_detail {

template <class A>
using float_batch = xsimd::batch<float, A>;
template <class A>
using u32_batch = xsimd::batch<std::uint32_t, A>;

/// Lane by lane through a stack buffer (architectures without the registers above).
template <class A, class E>
inline float_batch<A> load_by_lanes(E const* p) noexcept {
  alignas(float_batch<A>) float lanes[float_batch<A>::size];
  for (std::size_t j = 0; j < float_batch<A>::size; ++j) {
    lanes[j] = storage_traits<E>::to_compute(p[j]);
  }
  return float_batch<A>::load_aligned(lanes);
}

template <class A, class E>
inline void store_by_lanes(E* p, float_batch<A> const& v) noexcept {
  alignas(float_batch<A>) float lanes[float_batch<A>::size];
  v.store_aligned(lanes);
  for (std::size_t j = 0; j < float_batch<A>::size; ++j) {
    p[j] = storage_traits<E>::to_storage(lanes[j]);
  }
}

/// The 16-bit values at p, zero-extended to 32-bit lanes (has_register_u16_lanes<A>).
template <class A>
inline u32_batch<A> widen_u16(void const* p) noexcept {
#if defined(__AVX512F__)
  if constexpr (x86_registers_of<A> == x86_registers::zmm) {
    return u32_batch<A>(_mm512_cvtepu16_epi32(_mm256_loadu_si256(static_cast<__m256i const*>(p))));
  } else
#endif
#if defined(__AVX2__)
  if constexpr (x86_registers_of<A> == x86_registers::ymm) {
    return u32_batch<A>(_mm256_cvtepu16_epi32(_mm_loadu_si128(static_cast<__m128i const*>(p))));
  } else
#endif
#if defined(__SSE2__) || defined(_M_X64)
  if constexpr (x86_registers_of<A> == x86_registers::xmm) {
    return u32_batch<A>(_mm_unpacklo_epi16(_mm_loadl_epi64(static_cast<__m128i const*>(p)), _mm_setzero_si128()));
  } else
#endif
  {
    static_assert(std::is_void_v<A*>, "no register path: use load_by_lanes");
  }
}

/// Writes the low 16 bits of each lane of v (every lane < 2^16) to p.
template <class A>
inline void narrow_u16(void* p, u32_batch<A> const& v) noexcept {
#if defined(__AVX512F__)
  if constexpr (x86_registers_of<A> == x86_registers::zmm) {
    _mm256_storeu_si256(static_cast<__m256i*>(p), _mm512_cvtepi32_epi16(v));
  } else
#endif
#if defined(__AVX2__)
  if constexpr (x86_registers_of<A> == x86_registers::ymm) {
    const __m256i r = v;
    _mm_storeu_si128(static_cast<__m128i*>(p),
                     _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1)));
  } else
#endif
#if defined(__SSE2__) || defined(_M_X64)
  if constexpr (x86_registers_of<A> == x86_registers::xmm) {
    // SSE2 packs with signed saturation only: sign-extend the low halves first,
    // so every lane is in int16 range and keeps its 16 bits.
    const __m128i r = _mm_srai_epi32(_mm_slli_epi32(v, 16), 16);
    _mm_storel_epi64(static_cast<__m128i*>(p), _mm_packs_epi32(r, r));
  } else
#endif
  {
    static_assert(std::is_void_v<A*>, "no register path: use store_by_lanes");
  }
}

}  // namespace storage_detail

// _mm512_cvtph_ps / _mm512_cvtps_ph: GCC 12's false -Wuninitialized (core/config.hpp).
STABLEQAT_GCC_PR105593_PUSH

/// A float batch of the elements at p (exact widening, core/half.hpp).
template <class A, host_half_storage E>
inline xsimd::batch<float, A> load_storage(E const* p) noexcept {
  using F = storage_detail::float_batch<A>;
  if constexpr (std::is_same_v<E, bfloat16> && has_register_u16_lanes<A>) {
    return xsimd::bitwise_cast<F>(storage_detail::widen_u16<A>(p) << 16);
  } else if constexpr (std::is_same_v<E, float16> && has_register_float16<A>) {
#if defined(__AVX512F__)
    if constexpr (x86_registers_of<A> == x86_registers::zmm) {
      return F(_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<__m256i const*>(p))));
    } else
#endif
    {
#if defined(__F16C__)
      if constexpr (x86_registers_of<A> == x86_registers::ymm) {
        return F(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<__m128i const*>(p))));
      } else {
        return F(_mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<__m128i const*>(p))));
      }
#endif
    }
  } else {
    return storage_detail::load_by_lanes<A>(p);
  }
}

/// Writes each lane of v to p rounded to nearest even (core/half.hpp's rounding, bit for bit).
template <class A, host_half_storage E>
inline void store_storage(E* p, xsimd::batch<float, A> const& v) noexcept {
  using F = storage_detail::float_batch<A>;
  using U = storage_detail::u32_batch<A>;
  if constexpr (std::is_same_v<E, bfloat16> && has_register_u16_lanes<A>) {
    const U u = xsimd::bitwise_cast<U>(v);
    const U rounded = (u + U(0x7FFFu) + ((u >> 16) & U(1u))) >> 16;
    const U quiet = (u >> 16) | U(0x0040u);
    storage_detail::narrow_u16<A>(
        p, xsimd::bitwise_cast<U>(xsimd::select(xsimd::isnan(v), xsimd::bitwise_cast<F>(quiet),
                                                xsimd::bitwise_cast<F>(rounded))));
  } else if constexpr (std::is_same_v<E, float16> && has_register_float16<A>) {
#if defined(__AVX512F__)
    if constexpr (x86_registers_of<A> == x86_registers::zmm) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(p),
                          _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
      return;
    }
#endif
#if defined(__F16C__)
    if constexpr (x86_registers_of<A> == x86_registers::ymm) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    } else if constexpr (x86_registers_of<A> == x86_registers::xmm) {
      _mm_storel_epi64(reinterpret_cast<__m128i*>(p), _mm_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
#endif
  } else {
    storage_detail::store_by_lanes<A>(p, v);
  }
}

STABLEQAT_GCC_PR105593_POP

}  // namespace stableqat::exec::simd_detail
