// stableqat/exec/simd/plan.hpp: how exec::simd and exec::par cut a tensor into chunks.
//
// Both backends execute the same plan: a list of fixed-size chunks that
// depends only on the tensor's size and layout, never on the thread count.
// Each chunk's step-gradient partial sums are formed inside the chunk and the
// partials are combined in chunk order, so dsteps has the same bits for simd
// and for par with any number of threads.
//
// The kernels that run over a plan (row_kernels.hpp, column_kernels.hpp) and
// the runners that run them (runner.hpp, par.hpp) meet through the two
// concepts at the end of this header: chunk_loop and chunk_reduction.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <numeric>

namespace stableqat::exec::simd_detail {

/// Elements per chunk (256 KiB of floats): large enough that per-chunk work
/// (a reduction, an sfence) is noise, small enough to balance 2..64 threads on
/// large tensors. Tensors of at most one chunk never start a parallel region.
inline constexpr std::size_t chunk_elements = std::size_t{1} << 16;

/// Float lanes accumulate at most this many batches of step terms before the
/// block is added to double lanes. The block is summed by two interleaved
/// accumulators of at most 4 terms each (a step term enters through the fma
/// dy * factor + sum), then added: every exact term dy * factor passes through
/// at most 5 float roundings, so the error stays below
/// 5 * 2^-24 * sum|terms| = 3e-7 * sum|terms| (the contract asks 1e-6), at
/// the cost of about one addition per batch.
inline constexpr std::size_t block_batches = 8;
static_assert(block_batches % 2 == 0, "blocks hold whole pairs of batches (transform.hpp's slots)");

/// Pattern positions per column block (per_column layout); bounds the stack
/// arrays of steps, reciprocals and per-column partial sums.
inline constexpr std::size_t column_block = 512;

/// The elements [begin, end) of row `row` inside one chunk; `complete` when
/// the whole row lies in that chunk.
struct row_piece {
  std::size_t row;
  std::size_t begin;
  std::size_t end;
  bool complete;
};

/// Layouts whose rows share one step (per_tensor, per_channel, per_group):
/// element i lies in row i / row_length; chunk c covers elements
/// [c * chunk_elements, (c + 1) * chunk_elements). A row may span chunks; the
/// pieces of chunk c are piece(c, row) for rows first_row(c) .. end_row(c) - 1,
/// in memory order.
struct row_plan {
  std::size_t numel;
  std::size_t row_length;

  [[nodiscard]] std::size_t chunk_count() const noexcept {
    return (numel + chunk_elements - 1) / chunk_elements;
  }
  [[nodiscard]] std::size_t chunk_begin(std::size_t chunk) const noexcept { return chunk * chunk_elements; }
  [[nodiscard]] std::size_t chunk_end(std::size_t chunk) const noexcept {
    return std::min(numel, chunk_begin(chunk) + chunk_elements);
  }
  [[nodiscard]] std::size_t first_row(std::size_t chunk) const noexcept { return chunk_begin(chunk) / row_length; }
  [[nodiscard]] std::size_t end_row(std::size_t chunk) const noexcept {
    return (chunk_end(chunk) + row_length - 1) / row_length;
  }

  [[nodiscard]] row_piece piece(std::size_t chunk, std::size_t row) const noexcept {
    const std::size_t row_begin = row * row_length;
    const std::size_t row_end = row_begin + row_length;
    const std::size_t begin = chunk_begin(chunk);
    const std::size_t end = chunk_end(chunk);
    return {row, std::max(row_begin, begin), std::min(row_end, end), row_begin >= begin && row_end <= end};
  }
};

/// Elements [offset, offset + n) of the tensor: one super row's part of a
/// column block, holding pattern positions block_begin(b) .. block_begin(b) + n - 1
/// (n = 0 when a short last super row ends before the block).
struct column_segment {
  std::size_t offset;
  std::size_t n;
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

  /// The super rows of `chunk`'s range: first_super_row .. end_super_row - 1.
  [[nodiscard]] std::size_t first_super_row(std::size_t chunk) const noexcept { return range(chunk) * rows_per_range; }
  [[nodiscard]] std::size_t end_super_row(std::size_t chunk) const noexcept {
    return std::min(super_rows, first_super_row(chunk) + rows_per_range);
  }

  /// Super row s intersected with block b.
  [[nodiscard]] column_segment segment(std::size_t s, std::size_t b) const noexcept {
    const std::size_t base = s * period;
    const std::size_t length = std::min(period, numel - base);
    const std::size_t p0 = block_begin(b);
    return {base + p0, length > p0 ? std::min(block_end(b), length) - p0 : 0};
  }
};

/// A kernel whose chunks are independent (the forward pass): run(c) does all
/// of chunk c's work, for c < chunk_count(), in any order and on any thread.
template <class K>
concept chunk_loop = requires(K const& kernel, std::size_t chunk) {
  { kernel.chunk_count() } -> std::convertible_to<std::size_t>;
  kernel.run(chunk);
};

/// A kernel that reduces over chunks (the backward pass), in three steps that
/// make its results independent of the thread count:
///  - produce(c, r): chunk c's element work (any order, any thread); its
///    partial sums go to *r, or, when direct() (every chunk owns whole steps),
///    r is nullptr and the chunk writes its step gradients itself;
///  - consume(c, r): r from produce(c), called on one thread for c = 0, 1, ...
///    in order (never when direct()); adds the partials and writes finished steps;
///  - finish(): after the last consume, writes what is still open.
/// result_type is a fixed-size struct: runners keep one on the stack
/// (sequential) or one per chunk (parallel).
template <class K>
concept chunk_reduction =
    std::default_initializable<typename K::result_type> &&
    requires(K& kernel, K const& const_kernel, std::size_t chunk, typename K::result_type& result) {
      { const_kernel.chunk_count() } -> std::convertible_to<std::size_t>;
      { const_kernel.direct() } -> std::convertible_to<bool>;
      const_kernel.produce(chunk, &result);
      kernel.consume(chunk, static_cast<typename K::result_type const&>(result));
      kernel.finish();
    };

}  // namespace stableqat::exec::simd_detail
