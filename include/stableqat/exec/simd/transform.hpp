// stableqat/exec/simd/transform.hpp: the one element loop of exec::simd.
//
// In the spirit of Google Highway's Transform: every kernel hands one
// per-element functor to `transform`, which calls it on a scalar head (up to
// the first multiple of the batch width in *tensor* index), on full batches,
// then on a scalar tail. The functor is written once, as a template over V,
// and runs with V = T or V = batch<T>.
#pragma once

#include <algorithm>
#include <cstddef>
#include <type_traits>

#include "batch.hpp"

namespace stableqat::exec::simd_detail {

/// Elements to run as scalars at the start of the range [begin, begin + n) of
/// the tensor, so that every batch starts at a multiple of the batch width in
/// *element index*. Which elements share a batch (and hence the bits of the
/// step sums) then depends on the tensor alone, never on buffer addresses; with
/// a batch-aligned output pointer every batch store is aligned, as streaming
/// stores require.
template <class T>
inline std::size_t batch_head(std::size_t begin, std::size_t n) noexcept {
  constexpr std::size_t width = batch<T>::size;
  return std::min(n, (width - begin % width) % width);
}

/// Which of two interleaved accumulators a call may add to: full batches come
/// in pairs (slot<0>, slot<1>) so that consecutive batches of a reduction do
/// not wait on each other's addition; scalars always get slot<0>.
template <int K>
using slot = std::integral_constant<int, K>;

/// Calls op.template operator()<V>(i, slot<k>{}) for every element index i of
/// [0, n), the piece of the tensor that starts at element `begin`:
///  - V = T for the batch_head<T>(begin, n) head elements and the tail,
///  - V = batch<T> for each full batch in between, i its first element.
/// The calls come in index order; a lambda `[&]<class V>(std::size_t i, auto slot)`
/// written once for both V is the usual op.
template <class T, class Op>
inline void transform(std::size_t begin, std::size_t n, Op&& op) {
  using B = batch<T>;
  std::size_t i = 0;
  for (const std::size_t head = batch_head<T>(begin, n); i < head; ++i) {
    op.template operator()<T>(i, slot<0>{});
  }
  for (; i + 2 * B::size <= n; i += 2 * B::size) {
    op.template operator()<B>(i, slot<0>{});
    op.template operator()<B>(i + B::size, slot<1>{});
  }
  if (i + B::size <= n) {
    op.template operator()<B>(i, slot<0>{});
    i += B::size;
  }
  for (; i < n; ++i) {
    op.template operator()<T>(i, slot<0>{});
  }
}

}  // namespace stableqat::exec::simd_detail
