// stableqat/exec/cuda/kernels.cuh: the CUDA kernels (nvcc only).
//
// Each kernel is a grid-stride loop over tiles (tiling.hpp) with 64-bit
// indices; the per-element work is tile_work.hpp over core/lsq.hpp. Sums leave
// a lane only through fixed shuffle trees (lanes at xor distance 16, 8, ... are
// added) and cub::BlockReduce in the second pass: no atomics, so every run
// gives the same bits, whatever the grid size.
#pragma once

#if !defined(__CUDACC__)
#error "stableqat/exec/cuda/kernels.cuh is CUDA code: compile it with nvcc"
#endif

#include <cub/block/block_reduce.cuh>

#include <cstddef>

#include "tile_work.hpp"
#include "tiling.hpp"

namespace stableqat::exec::cuda_detail {

/// At least two blocks (512 threads) per multiprocessor: caps registers at 128
/// per thread, which only the widest kernel (16-bit columns with offsets) needs.
inline constexpr int min_resident_blocks = 2;

/// Lane index within the warp, global warp index and warp count of the grid.
struct warp_position {
  unsigned lane;
  std::size_t warp;
  std::size_t warps;
};

__device__ inline warp_position this_warp() {
  const std::size_t thread = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  return {threadIdx.x % warp_lanes, thread / warp_lanes,
          static_cast<std::size_t>(gridDim.x) * blockDim.x / warp_lanes};
}

/// Adds v over the lanes whose ids differ only in the bits from `low` up to 16
/// (low a power of two): butterfly over xor distances 16, 8, ..., low. Every
/// lane of the warp must call it; all lanes of a set get identical bits.
__device__ inline double butterfly_sum(double v, unsigned low) {
  for (unsigned distance = warp_lanes / 2; distance >= low; distance /= 2) {
    v += __shfl_xor_sync(0xffffffffu, v, static_cast<int>(distance));
  }
  return v;
}

/// Adds v over the `lanes` lanes of a group (ids differing in the bits below lanes).
__device__ inline double group_sum(double v, unsigned lanes) {
  for (unsigned distance = lanes / 2; distance >= 1; distance /= 2) {
    v += __shfl_xor_sync(0xffffffffu, v, static_cast<int>(distance));
  }
  return v;
}

/// Row-step layouts: groups of t.group_lanes lanes take tiles; 32 / group_lanes
/// groups of a warp take consecutive tiles. The backward pass adds each tile's
/// lane sums and stores them (store_row_tile_sums).
template <bool Backward, bool WithOffsets, class E, class T, class Levels, class Surrogate>
__global__ void __launch_bounds__(block_threads, min_resident_blocks)
    row_steps_kernel(row_tiling t, element_buffers<E, T> b, gradient_buffers<T> g, Levels levels,
                     Surrogate surrogate) {
  const warp_position w = this_warp();
  const unsigned groups = warp_lanes / t.group_lanes;
  const unsigned group = w.lane / t.group_lanes;
  const unsigned lane = w.lane % t.group_lanes;
  const std::size_t warp_tiles = ceil_div(t.tiles, groups);
  // The loop bounds are the same for every lane of a warp, as the shuffles need.
  for (std::size_t warp_tile = w.warp; warp_tile < warp_tiles; warp_tile += w.warps) {
    const std::size_t tile = warp_tile * groups + group;
    term_sums sums;
    if (tile < t.tiles) {
      sums = row_tile_lane<Backward, WithOffsets>(t, b, tile, lane, levels, surrogate);
    }
    if constexpr (Backward) {
      term_sums total;
      total.step = group_sum(sums.step, t.group_lanes);
      if constexpr (WithOffsets) {
        total.offset = group_sum(sums.offset, t.group_lanes);
      }
      if constexpr (carries_parameter<Surrogate>) {
        total.parameter = group_sum(sums.parameter, t.group_lanes);
      }
      if (lane == 0 && tile < t.tiles) {
        store_row_tile_sums<WithOffsets, carries_parameter<Surrogate>>(t, g, tile, total);
      }
    }
  }
}

/// Column-step layout: one warp per tile; lanes with the same column lane add
/// their per-column sums, and row lane 0 stores them (store_column_tile_sums).
template <bool Backward, bool WithOffsets, class E, class T, class Levels, class Surrogate>
__global__ void __launch_bounds__(block_threads, min_resident_blocks)
    column_steps_kernel(column_tiling t, element_buffers<E, T> b, gradient_buffers<T> g, Levels levels,
                        Surrogate surrogate) {
  const warp_position w = this_warp();
  const unsigned column_lane = w.lane % t.column_lanes;
  const unsigned row_lane = w.lane / t.column_lanes;
  for (std::size_t tile = w.warp; tile < t.tiles; tile += w.warps) {
    column_sums<E> sums = column_tile_lane<Backward, WithOffsets>(t, b, tile, row_lane, column_lane, levels, surrogate);
    if constexpr (Backward) {
#pragma unroll
      for (std::size_t e = 0; e < chunk_elements<E>; ++e) {
        sums.column[e].step = butterfly_sum(sums.column[e].step, t.column_lanes);
        if constexpr (WithOffsets) {
          sums.column[e].offset = butterfly_sum(sums.column[e].offset, t.column_lanes);
        }
        if constexpr (carries_parameter<Surrogate>) {
          sums.column[e].parameter = butterfly_sum(sums.column[e].parameter, t.column_lanes);
        }
      }
      if (row_lane == 0) {
        store_column_tile_sums<WithOffsets, carries_parameter<Surrogate>>(t, g, tile, column_lane, sums);
      }
    }
  }
}

/// Second pass: one block per step adds that step's partial sums (each thread
/// a fixed stride of them, then cub::BlockReduce) and stores grad_scale * sum
/// (the parameter's sum unscaled, into step_parameters).
template <bool WithOffsets, bool WithParameter, class T>
__global__ void __launch_bounds__(block_threads)
    finalize_kernel(partial_sums_layout layout, gradient_buffers<T> g) {
  using reduce = cub::BlockReduce<double, block_threads>;
  __shared__ typename reduce::TempStorage storage[WithParameter ? 3 : 2];
  for (std::size_t k = blockIdx.x; k < layout.steps; k += gridDim.x) {
    const double step = reduce(storage[0]).Sum(strided_partial_sum(g.partial_steps, layout, k, threadIdx.x,
                                                                   block_threads));
    double offset = 0.0;
    if constexpr (WithOffsets) {
      offset = reduce(storage[1]).Sum(strided_partial_sum(g.partial_offsets, layout, k, threadIdx.x,
                                                          block_threads));
    }
    double parameter = 0.0;
    if constexpr (WithParameter) {
      parameter = reduce(storage[2]).Sum(strided_partial_sum(g.partial_parameters, layout, k, threadIdx.x,
                                                             block_threads));
    }
    if (threadIdx.x == 0) {
      g.dsteps[k] = static_cast<T>(g.grad_scale * step);
      if constexpr (WithOffsets) {
        g.doffsets[k] = static_cast<T>(g.grad_scale * offset);
      }
      if constexpr (WithParameter) {
        g.step_parameters[k] = parameter;
      }
    }
    __syncthreads();  // the temporary storage is reused by the next step
  }
}

/// Last pass of a learnable surrogate: one block adds steps[k] * step_parameters[k]
/// over the steps (each thread a fixed stride, then cub::BlockReduce) and
/// stores the parameter's gradient (no grad_scale).
template <class T>
__global__ void __launch_bounds__(block_threads)
    parameter_kernel(std::size_t steps, const T* step_values, gradient_buffers<T> g) {
  using reduce = cub::BlockReduce<double, block_threads>;
  __shared__ typename reduce::TempStorage storage;
  const double total =
      reduce(storage).Sum(strided_parameter_sum(g.step_parameters, step_values, steps, threadIdx.x, block_threads));
  if (threadIdx.x == 0) {
    *g.dparameter = static_cast<T>(total);
  }
}

}  // namespace stableqat::exec::cuda_detail
