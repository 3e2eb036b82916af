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
#include "streaming.hpp"

namespace stableqat::exec::simd_detail {

/// The instruction set of exec::simd: the best one the compiler flags enable.
using arch = xsimd::default_arch;
template <class T>
using batch = xsimd::batch<T, arch>;

/// V's worth of elements at p: *p for a scalar, an unaligned batch load otherwise.
template <class V, class T>
inline V load(T const* p) noexcept {
  if constexpr (std::is_same_v<V, T>) {
    return *p;
  } else {
    return V::load_unaligned(p);
  }
}

/// Writes v to p; whole batches with a streaming store when Stream (p is then
/// aligned to the register width, see use_streaming_stores in dispatch.hpp).
template <bool Stream, class T, class V>
inline void store(T* p, V const& v) noexcept {
  if constexpr (std::is_same_v<V, T>) {
    *p = v;
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
