// stableqat/exec/simd/batch.hpp: the batch type of exec::simd, and element access
// written once for a single element (V = T) and a whole batch (V = batch<T>).
//
// The kernels call core/lsq.hpp's templates with V = batch<T> on full batches
// and V = T on the elements around them; load / store / broadcast_offset let
// one per-element functor serve both (see transform.hpp).
#pragma once

#include <cstddef>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "../../core/lsq.hpp"
#include "../storage.hpp"
#include "clamp.hpp"
#include "fused_multiply_add.hpp"
#include "storage_access.hpp"
#include "streaming.hpp"

namespace stableqat::exec::simd_detail {

/// The instruction set of exec::simd: the best one the compiler flags enable.
using arch = xsimd::default_arch;
template <class T>
using batch = xsimd::batch<T, arch>;

/// V's worth of elements at p: *p for a scalar, an unaligned batch load
/// otherwise; 16-bit storage (E = bfloat16, float16) is widened to float
/// (storage_access.hpp), the one load point of every kernel.
template <class V, class E>
inline V load(E const* p) noexcept {
  if constexpr (std::is_same_v<V, E>) {
    return *p;
  } else if constexpr (host_half_storage<E> && std::is_same_v<V, float>) {
    return storage_traits<E>::to_compute(*p);
  } else if constexpr (host_half_storage<E>) {
    return load_storage<typename V::arch_type>(p);
  } else {
    return V::load_unaligned(p);
  }
}

/// Writes v to p; whole batches with a streaming store when Stream (p is then
/// aligned to the register width, see use_streaming_stores in dispatch.hpp).
/// 16-bit storage is rounded to nearest even once here (never streamed).
template <bool Stream, class E, class V>
inline void store(E* p, V const& v) noexcept {
  if constexpr (std::is_same_v<V, E>) {
    *p = v;
  } else if constexpr (host_half_storage<E> && std::is_same_v<V, float>) {
    *p = storage_traits<E>::to_storage(v);
  } else if constexpr (host_half_storage<E>) {
    static_assert(!Stream, "16-bit outputs are written with plain stores (use_streaming_stores)");
    store_storage<typename V::arch_type>(p, v);
  } else if constexpr (Stream) {
    stream_store(p, v);
  } else {
    v.store_unaligned(p);
  }
}

/// The offset as a V (scalar or broadcast batch), or no_offset unchanged.
template <class V, class Offset>
inline auto broadcast_offset(Offset offset) noexcept {
  if constexpr (std::is_same_v<Offset, no_offset>) {
    return offset;
  } else {
    return V(offset);
  }
}

}  // namespace stableqat::exec::simd_detail
