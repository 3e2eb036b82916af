// stableqat/exec/simd/streaming.hpp: non-temporal (streaming) stores of whole batches.
//
// A plain store to a line that is not cached first reads the line (write
// allocate), so writing y costs a read and a write of y; a streaming store
// writes the line without reading it and without evicting useful data. For
// outputs much larger than the last-level cache that is the difference between
// ~2/3 and the full memory bandwidth; for outputs that fit in cache it is a
// loss (the next kernel reads y back from memory). xsimd 8.1 has no streaming
// store, hence these few intrinsics.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "x86_registers.hpp"

#if defined(__SSE2__) || defined(_M_X64)
#include <immintrin.h>
#endif

/// Outputs of at least this many bytes are written with streaming stores by
/// exec::simd and exec::par (8 MiB: together with the inputs, well past a
/// core's share of the last-level cache), when the output pointer is aligned to
/// the register width (64 bytes for AVX-512; PyTorch and aligned allocators
/// give that). Define it before including stableqat to tune; SIZE_MAX disables
/// streaming stores.
#ifndef STABLEQAT_STREAMING_STORE_MIN_BYTES
#define STABLEQAT_STREAMING_STORE_MIN_BYTES (std::size_t{8} << 20)
#endif

namespace stableqat::exec::simd_detail {

inline constexpr std::size_t streaming_store_min_bytes = STABLEQAT_STREAMING_STORE_MIN_BYTES;

/// True when batches of architecture A have a streaming store on this build.
template <class A>
inline constexpr bool has_streaming_store = has_x86_intrinsics<A>;

/// True when p may be the target of a streaming store of a B batch (aligned to the register width).
template <class B, class T>
inline bool is_register_aligned(T const* p) noexcept {
  return reinterpret_cast<std::uintptr_t>(p) % sizeof(B) == 0;
}

/// Writes v to p (aligned to sizeof(v)) bypassing the caches when the
/// architecture allows it; a plain aligned store otherwise.
template <class T, class A>
inline void stream_store(T* p, xsimd::batch<T, A> const& v) noexcept {
#if defined(__AVX512F__)
  if constexpr (std::is_base_of_v<xsimd::avx512f, A>) {
    if constexpr (std::is_same_v<T, float>) {
      _mm512_stream_ps(p, v);
    } else {
      _mm512_stream_pd(p, v);
    }
    return;
  }
#endif
#if defined(__AVX__)
  if constexpr (std::is_base_of_v<xsimd::avx, A>) {
    if constexpr (std::is_same_v<T, float>) {
      _mm256_stream_ps(p, v);
    } else {
      _mm256_stream_pd(p, v);
    }
    return;
  }
#endif
#if defined(__SSE2__) || defined(_M_X64)
  if constexpr (std::is_base_of_v<xsimd::sse2, A>) {
    if constexpr (std::is_same_v<T, float>) {
      _mm_stream_ps(p, v);
    } else {
      _mm_stream_pd(p, v);
    }
    return;
  }
#endif
  v.store_aligned(p);
}

/// Orders this thread's streaming stores before its later stores (they are
/// weakly ordered); called once at the end of every kernel that streamed.
inline void stream_fence() noexcept {
#if defined(__SSE2__) || defined(_M_X64)
  _mm_sfence();
#endif
}

}  // namespace stableqat::exec::simd_detail
