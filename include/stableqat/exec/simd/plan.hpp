// stableqat/exec/simd/plan.hpp: how exec::simd and exec::par cut a tensor into chunks.
//
// Both backends execute the same plan: a list of fixed-size chunks that
// depends only on the tensor's size and layout, never on the thread count.
// Each chunk's step-gradient partial sums are formed inside the chunk and the
// partials are combined in chunk order, so dsteps has the same bits for simd
// and for par with any number of threads.
#pragma once

#include <algorithm>
#include <cstddef>
#include <numeric>

namespace stableqat::exec::simd_detail {

/// Elements per chunk (256 KiB of floats): large enough that per-chunk work
/// (a reduction, an sfence) is noise, small enough to balance 2..64 threads on
/// large tensors. Tensors of at most one chunk never start a parallel region.
inline constexpr std::size_t chunk_elements = std::size_t{1} << 16;

/// Float lanes accumulate at most this many batches of step terms before the
/// block is added to double lanes. The block is summed by two interleaved
/// accumulators of at most 4 terms each, then added: every term passes through
/// at most 4 float roundings, so the error stays below
/// 4 * 2^-24 * sum|terms| = 2.4e-7 * sum|terms| (the contract asks 1e-6), at
/// the cost of about one addition per batch.
inline constexpr std::size_t block_batches = 8;

/// Pattern positions per column block (per_column layout); bounds the stack
/// arrays of steps, reciprocals and per-column partial sums.
inline constexpr std::size_t column_block = 512;

/// Layouts whose rows share one step (per_tensor, per_channel, per_group):
/// element i lies in row i / row_length; chunk c covers elements
/// [c * chunk_elements, (c + 1) * chunk_elements). A row may span chunks;
/// `for_each_piece` visits the part of each row inside one chunk.
struct row_plan {
  std::size_t numel;
  std::size_t row_length;

  [[nodiscard]] std::size_t chunk_count() const noexcept {
    return (numel + chunk_elements - 1) / chunk_elements;
  }

  /// f(row, begin, end, complete) for each row piece [begin, end) of chunk c,
  /// in memory order; complete is true when the whole row lies in this chunk.
  template <class F>
  void for_each_piece(std::size_t chunk, F&& f) const {
    const std::size_t begin = chunk * chunk_elements;
    const std::size_t end = std::min(numel, begin + chunk_elements);
    for (std::size_t row = begin / row_length; row * row_length < end; ++row) {
      const std::size_t row_begin = row * row_length;
      const std::size_t row_end = row_begin + row_length;
      f(row, std::max(row_begin, begin), std::min(row_end, end), row_begin >= begin && row_end <= end);
    }
  }
};

/// per_column(channels): element i uses step i % channels. The kernels run over
/// a "period" of m rows, P = m * channels pattern positions with m the smallest
/// count that makes P a multiple of the batch width (when P stays within one
/// column block; otherwise m = 1), so that even 3 channels fill whole batches.
/// Rows of the tensor group into "super rows" of P elements (the last may be
/// shorter). A chunk is a set of column blocks x a range of super rows:
///  - few super rows (ranges == 1): a chunk holds whole columns (`direct`) and
///    writes their step gradients itself;
///  - otherwise a chunk is (one block, one range of super rows) and returns a
///    partial sum per pattern position, combined in range order.
struct column_plan {
  std::size_t numel = 0;
  std::size_t channels = 1;
  std::size_t period = 1;            // P, a multiple of channels
  std::size_t block_length = 1;      // min(P, column_block)
  std::size_t blocks = 1;            // ceil(P / block_length)
  std::size_t super_rows = 0;        // ceil(numel / P)
  std::size_t rows_per_range = 1;    // super rows per chunk
  std::size_t ranges = 1;            // ceil(super_rows / rows_per_range)
  std::size_t blocks_per_chunk = 1;  // > 1 only when ranges == 1

  static column_plan make(std::size_t numel, std::size_t channels, std::size_t lanes) noexcept {
    column_plan p;
    p.numel = numel;
    p.channels = channels;
    const std::size_t rows_per_period = lanes / std::gcd(channels, lanes);
    p.period = channels * rows_per_period <= column_block ? channels * rows_per_period : channels;
    p.block_length = std::min(p.period, column_block);
    p.blocks = (p.period + p.block_length - 1) / p.block_length;
    p.super_rows = (numel + p.period - 1) / p.period;
    p.rows_per_range = std::max<std::size_t>(1, chunk_elements / p.block_length);
    if (p.super_rows <= p.rows_per_range) {
      p.ranges = 1;
      const std::size_t block_elements = std::max<std::size_t>(1, p.super_rows * p.block_length);
      p.blocks_per_chunk = std::max<std::size_t>(1, chunk_elements / block_elements);
    } else {
      p.ranges = (p.super_rows + p.rows_per_range - 1) / p.rows_per_range;
      p.blocks_per_chunk = 1;
    }
    return p;
  }

  /// Rows of the tensor per pattern period (m).
  [[nodiscard]] std::size_t rows_per_period() const noexcept { return period / channels; }
  /// True when every chunk covers whole columns (no cross-chunk reduction).
  [[nodiscard]] bool direct() const noexcept { return ranges == 1; }

  [[nodiscard]] std::size_t chunk_count() const noexcept {
    return (blocks + blocks_per_chunk - 1) / blocks_per_chunk * ranges;
  }
  [[nodiscard]] std::size_t first_block(std::size_t chunk) const noexcept { return chunk / ranges * blocks_per_chunk; }
  [[nodiscard]] std::size_t end_block(std::size_t chunk) const noexcept {
    return std::min(blocks, first_block(chunk) + blocks_per_chunk);
  }
  [[nodiscard]] std::size_t range(std::size_t chunk) const noexcept { return chunk % ranges; }

  /// Pattern positions [begin, end) of block b.
  [[nodiscard]] std::size_t block_begin(std::size_t b) const noexcept { return b * block_length; }
  [[nodiscard]] std::size_t block_end(std::size_t b) const noexcept { return std::min(period, (b + 1) * block_length); }

  /// f(offset, positions) for each super row of `chunk`'s range intersected with
  /// block b: elements [offset, offset + positions) of the tensor, which hold
  /// pattern positions block_begin(b) .. block_begin(b) + positions - 1.
  template <class F>
  void for_each_segment(std::size_t chunk, std::size_t b, F&& f) const {
    const std::size_t first = range(chunk) * rows_per_range;
    const std::size_t last = std::min(super_rows, first + rows_per_range);
    const std::size_t p0 = block_begin(b);
    const std::size_t p1 = block_end(b);
    for (std::size_t s = first; s < last; ++s) {
      const std::size_t base = s * period;
      const std::size_t length = std::min(period, numel - base);
      if (length > p0) {
        f(base + p0, std::min(p1, length) - p0);
      }
    }
  }
};

}  // namespace stableqat::exec::simd_detail
