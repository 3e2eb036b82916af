// stableqat/exec/cuda/tile_work.hpp: what one lane does for one tile.
//
// The kernels (kernels.cuh) are thin: they hand tiles to lanes, add the lanes'
// sums across the warp and store them. Everything per element lives here, as
// host/device functions over the element formulas of core/lsq.hpp, so the host
// tests can run a whole launch lane by lane without a GPU.
//
// A lane walks its tile in chunks of chunk_elements<E> consecutive elements
// (one 16-byte vector). Its sums add the chunk's terms in element order, chunk
// after chunk, in double; whether a chunk travels as one vector (aligned) or
// element by element changes no bit of the result.
#pragma once

#include <cstddef>
#include <type_traits>

#include "../../core/config.hpp"
#include "../../core/lsq.hpp"
#include "../arguments.hpp"
#include "../term_sums.hpp"
#include "storage.hpp"
#include "tiling.hpp"

/// Unrolls the next loop in device code (host compilers would warn about the pragma).
#if STABLEQAT_DEVICE_CODE
#define STABLEQAT_CUDA_UNROLL _Pragma("unroll")
#else
#define STABLEQAT_CUDA_UNROLL
#endif

namespace stableqat::exec::cuda_detail {

/// The element buffers of one launch (device pointers). `dy` is read by the
/// backward pass only; `out` is y (forward) or dx (backward) and may equal x or dy.
template <class E, class T>
struct element_buffers {
  const E* x = nullptr;
  const E* dy = nullptr;
  E* out = nullptr;
  const T* steps = nullptr;
  const T* offsets = nullptr;  ///< read only by the WithOffsets kernels
};

/// Where the backward pass puts its step (and offset) sums, and, for a
/// surrogate with a learnable parameter (surrogates/concepts.hpp, e.g. DSQ's
/// alpha), that parameter's sums.
template <class T>
struct gradient_buffers {
  T* dsteps = nullptr;
  T* doffsets = nullptr;
  double* partial_steps = nullptr;    ///< partial_sums_layout::size() sums, when a step spans several tiles
  double* partial_offsets = nullptr;  ///< likewise, with offsets
  double grad_scale = 1.0;
  // Learnable parameter only (left null otherwise, and never touched):
  T* dparameter = nullptr;               ///< the parameter's gradient, one value
  double* step_parameters = nullptr;     ///< per step: the unscaled sum of its elements' parameter terms
  double* partial_parameters = nullptr;  ///< like partial_steps, for the parameter terms
};

/// Number of learnable parameters the CUDA kernels carry for surrogate S:
/// 0 or 1 (term_sums has room for one; a surrogate with more is refused).
template <class S>
inline constexpr bool carries_parameter = surrogate_parameter_count<S> > 0;

/// 16 bytes of consecutive elements, for one vector load or store.
template <class E, std::size_t N>
struct alignas(sizeof(E) * N) element_vector {
  E lane[N];
};

/// Loads the n <= N elements at p: one 16-byte access on the device when
/// `whole` (n == N and p aligned), element by element otherwise.
template <std::size_t N, class E>
STABLEQAT_HD inline void load_chunk(const E* p, std::size_t n, bool whole, E (&out)[N]) noexcept {
#if STABLEQAT_DEVICE_CODE
  if (whole) {
    const element_vector<E, N> v = *reinterpret_cast<const element_vector<E, N>*>(p);
STABLEQAT_CUDA_UNROLL
    for (std::size_t e = 0; e < N; ++e) {
      out[e] = v.lane[e];
    }
    return;
  }
#else
  (void)whole;
#endif
STABLEQAT_CUDA_UNROLL
  for (std::size_t e = 0; e < N; ++e) {
    if (e < n) {
      out[e] = p[e];
    }
  }
}

/// Stores the first n <= N elements of `in` at p (see load_chunk).
template <std::size_t N, class E>
STABLEQAT_HD inline void store_chunk(E* p, std::size_t n, bool whole, E const (&in)[N]) noexcept {
#if STABLEQAT_DEVICE_CODE
  if (whole) {
    element_vector<E, N> v;
STABLEQAT_CUDA_UNROLL
    for (std::size_t e = 0; e < N; ++e) {
      v.lane[e] = in[e];
    }
    *reinterpret_cast<element_vector<E, N>*>(p) = v;
    return;
  }
#else
  (void)whole;
#endif
STABLEQAT_CUDA_UNROLL
  for (std::size_t e = 0; e < N; ++e) {
    if (e < n) {
      p[e] = in[e];
    }
  }
}

/// One chunk of a lane: where it is and its inputs once loaded.
template <bool Backward, class E>
struct chunk {
  static constexpr std::size_t N = chunk_elements<E>;
  std::size_t at = 0;  ///< index of its first element
  std::size_t n = 0;   ///< its element count, <= N (0: no chunk)
  bool whole = false;  ///< n == N and 16-byte aligned: one vector access
  E x[N];
  E dy[Backward ? N : 1];
};

/// Loads a chunk's inputs (x, and dy for the backward pass).
template <bool Backward, class E, class T>
STABLEQAT_HD inline void load_inputs(element_buffers<E, T> const& b, chunk<Backward, E>& c) noexcept {
  load_chunk<chunk<Backward, E>::N>(b.x + c.at, c.n, c.whole, c.x);
  if constexpr (Backward) {
    load_chunk<chunk<Backward, E>::N>(b.dy + c.at, c.n, c.whole, c.dy);
  }
}

/// Forward (y = fake_quantize(x)) or backward (dx, and the step and offset
/// terms added to `sums`) of a loaded chunk. With one_step every element uses
/// step[0], inv_step[0], offset[0] and sums[0]; otherwise element e uses entry e.
///
/// The forward pass takes the surrogate for its rounding rule only (a surrogate
/// without one, e.g. ste, gives the plain level); the backward pass adds a
/// learnable surrogate's parameter term to sums[s].parameter.
template <bool Backward, bool WithOffsets, class E, class T, class Offset, class Levels, class Surrogate>
STABLEQAT_HD inline void finish_chunk(element_buffers<E, T> const& b, chunk<Backward, E> const& c, T const* step,
                                      T const* inv_step, Offset const* offset, Levels const& levels,
                                      Surrogate const& surrogate, term_sums* sums, bool one_step) noexcept {
  using traits = storage_traits<E>;
  constexpr std::size_t N = chunk<Backward, E>::N;
  E out[N];
STABLEQAT_CUDA_UNROLL
  for (std::size_t e = 0; e < N; ++e) {
    if (e < c.n) {
      const std::size_t s = one_step ? 0 : e;
      if constexpr (Backward) {
        const auto g = fake_quantize_backward_element(traits::to_compute(c.x[e]), traits::to_compute(c.dy[e]),
                                                      inv_step[s], offset[s], levels, surrogate);
        out[e] = traits::to_storage(g.dx);
        sums[s].step += static_cast<double>(g.dstep);
        if constexpr (WithOffsets) {
          sums[s].offset += static_cast<double>(g.doffset);
        }
        if constexpr (carries_parameter<Surrogate>) {
          static_assert(surrogate_parameter_count<Surrogate> == 1,
                        "exec::cuda carries one learnable surrogate parameter (term_sums::parameter)");
          sums[s].parameter += static_cast<double>(g.dparameters[0]);
        }
      } else {
        (void)sums;
        out[e] = traits::to_storage(
            fake_quantize_element(traits::to_compute(c.x[e]), step[s], inv_step[s], offset[s], levels, surrogate));
      }
    }
  }
  store_chunk<N>(b.out + c.at, c.n, c.whole, out);
}

/// Runs a lane's chunks at positions first, first + stride, ... < last (each
/// of `length(position)` elements at `index(position)`), two at a time: both
/// loads are issued before either chunk is finished, so twice the bytes are in
/// flight, while each chunk still adds to the sums in position order. (Loading
/// the second chunk before storing the first is safe: an output is either the
/// very same buffer as an input or disjoint from it, and the two chunks differ.)
template <bool Backward, class E, class T, class Index, class Length, class Finish>
STABLEQAT_HD inline void for_each_chunk_pair(element_buffers<E, T> const& b, std::size_t first, std::size_t last,
                                             std::size_t stride, bool vector_access, Index const& index,
                                             Length const& length, Finish const& finish) noexcept {
  constexpr std::size_t N = chunk<Backward, E>::N;
  for (std::size_t p = first; p < last; p += 2 * stride) {
    chunk<Backward, E> c[2];
STABLEQAT_CUDA_UNROLL
    for (int u = 0; u < 2; ++u) {
      const std::size_t position = p + static_cast<std::size_t>(u) * stride;
      if (position < last) {
        c[u].at = index(position);
        c[u].n = length(position);
        c[u].whole = vector_access && c[u].n == N;
        load_inputs(b, c[u]);
      }
    }
STABLEQAT_CUDA_UNROLL
    for (int u = 0; u < 2; ++u) {
      if (c[u].n > 0) {
        finish(c[u]);
      }
    }
  }
}

/// Lane `lane` (of t.group_lanes) of row tile `tile`: processes chunks
/// first + lane * chunk, then every group_lanes * chunk elements, and returns
/// its sums (zero for the forward pass).
template <bool Backward, bool WithOffsets, class E, class T, class Levels, class Surrogate>
STABLEQAT_HD inline term_sums row_tile_lane(row_tiling const& t, element_buffers<E, T> const& b,
                                                std::size_t tile, unsigned lane, Levels const& levels,
                                                Surrogate const& surrogate) noexcept {
  const row_tile_span span = row_tile(t, tile);
  const T step = b.steps[span.row];
  const T inv_step = T(1) / step;
  const auto offset = offset_of(b.offsets, span.row, std::bool_constant<WithOffsets>{});
  const std::size_t row_start = span.row * t.row_length;
  term_sums sums;
  for_each_chunk_pair<Backward>(
      b, span.first + lane * t.chunk, span.last, t.group_lanes * t.chunk, t.vector_access,
      [&](std::size_t j) { return row_start + j; }, [&](std::size_t j) { return min_size(t.chunk, span.last - j); },
      [&](chunk<Backward, E> const& c) {
        finish_chunk<Backward, WithOffsets>(b, c, &step, &inv_step, &offset, levels, surrogate, &sums, true);
      });
  return sums;
}

/// Per-column sums of one lane of a column tile (one entry per column of its chunk).
template <class E>
struct column_sums {
  term_sums column[chunk_elements<E>];
};

/// Lane (row_lane, column_lane) of column tile `tile`: its chunk of columns
/// in rows first_row + row_lane, then every row_lanes rows; returns the sums
/// per column (all zero when the lane's columns lie past the last column).
template <bool Backward, bool WithOffsets, class E, class T, class Levels, class Surrogate>
STABLEQAT_HD inline column_sums<E> column_tile_lane(column_tiling const& t, element_buffers<E, T> const& b,
                                                    std::size_t tile, unsigned row_lane, unsigned column_lane,
                                                    Levels const& levels, Surrogate const& surrogate) noexcept {
  constexpr std::size_t N = chunk_elements<E>;
  column_sums<E> sums{};
  const column_tile_span span = column_tile(t, tile, column_lane);
  if (span.column >= t.columns) {
    return sums;
  }
  const std::size_t n = min_size(N, t.columns - span.column);
  using Offset = decltype(offset_of(b.offsets, 0, std::bool_constant<WithOffsets>{}));
  T step[N] = {};
  T inv_step[N] = {};
  Offset offset[N] = {};
  for (std::size_t e = 0; e < n; ++e) {
    step[e] = b.steps[span.column + e];
    inv_step[e] = T(1) / step[e];
    offset[e] = offset_of(b.offsets, span.column + e, std::bool_constant<WithOffsets>{});
  }
  for_each_chunk_pair<Backward>(
      b, span.first_row + row_lane, span.last_row, t.row_lanes, t.vector_access,
      [&](std::size_t r) { return r * t.columns + span.column; }, [&](std::size_t) { return n; },
      [&](chunk<Backward, E> const& c) {
        finish_chunk<Backward, WithOffsets>(b, c, step, inv_step, offset, levels, surrogate, sums.column, false);
      });
  return sums;
}

/// Stores a row tile's total (the sum over its lanes): grad_scale * total into
/// dsteps[row] when the tile is the whole row, else into the partial sums.
/// With a learnable parameter, its total goes unscaled to step_parameters[row]
/// or to the partial sums likewise.
template <bool WithOffsets, bool WithParameter, class T>
STABLEQAT_HD inline void store_row_tile_sums(row_tiling const& t, gradient_buffers<T> const& g, std::size_t tile,
                                             term_sums total) noexcept {
  if (t.tiles_per_row == 1) {
    g.dsteps[tile] = static_cast<T>(g.grad_scale * total.step);
    if constexpr (WithOffsets) {
      g.doffsets[tile] = static_cast<T>(g.grad_scale * total.offset);
    }
    if constexpr (WithParameter) {
      g.step_parameters[tile] = total.parameter;
    }
  } else {
    g.partial_steps[tile] = total.step;
    if constexpr (WithOffsets) {
      g.partial_offsets[tile] = total.offset;
    }
    if constexpr (WithParameter) {
      g.partial_parameters[tile] = total.parameter;
    }
  }
}

/// Stores a column tile's per-column totals (the sums over its row lanes).
template <bool WithOffsets, bool WithParameter, class E, class T>
STABLEQAT_HD inline void store_column_tile_sums(column_tiling const& t, gradient_buffers<T> const& g,
                                                std::size_t tile, unsigned column_lane,
                                                column_sums<E> const& total) noexcept {
  const column_tile_span span = column_tile(t, tile, column_lane);
  for (std::size_t e = 0; e < chunk_elements<E> && span.column + e < t.columns; ++e) {
    const std::size_t k = span.column + e;
    if (t.row_blocks == 1) {
      g.dsteps[k] = static_cast<T>(g.grad_scale * total.column[e].step);
      if constexpr (WithOffsets) {
        g.doffsets[k] = static_cast<T>(g.grad_scale * total.column[e].offset);
      }
      if constexpr (WithParameter) {
        g.step_parameters[k] = total.column[e].parameter;
      }
    } else {
      g.partial_steps[span.row_block * t.columns + k] = total.column[e].step;
      if constexpr (WithOffsets) {
        g.partial_offsets[span.row_block * t.columns + k] = total.column[e].offset;
      }
      if constexpr (WithParameter) {
        g.partial_parameters[span.row_block * t.columns + k] = total.column[e].parameter;
      }
    }
  }
}

/// Thread `thread` of `threads` in the parameter pass: the sum, in increasing
/// k, of steps[k] * step_parameters[k] for k = thread, thread + threads, ...
/// (the block then adds the threads' sums in a fixed tree). The parameter's
/// gradient is sum_k steps[k] * (sum of step k's terms): dy/dp = s * dL/dp.
template <class T>
STABLEQAT_HD inline double strided_parameter_sum(const double* step_parameters, const T* steps, std::size_t count,
                                                 unsigned thread, unsigned threads) noexcept {
  double sum = 0.0;
  for (std::size_t k = thread; k < count; k += threads) {
    sum += static_cast<double>(steps[k]) * step_parameters[k];
  }
  return sum;
}

}  // namespace stableqat::exec::cuda_detail
