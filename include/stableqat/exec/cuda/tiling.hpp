// stableqat/exec/cuda/tiling.hpp: how the CUDA kernels split a tensor into tiles.
//
// Every layout is `rows` contiguous rows of `row_length` elements (see
// core/layout.hpp). The kernels give each tile to one group of warp lanes,
// which sums its tile's step (and offset) terms in a fixed order; a tile's
// total is written straight to dsteps when the tile covers a whole step, and
// otherwise to a buffer of partial sums that a second pass adds up, again in a
// fixed order. The split depends only on the element count, the layout and the
// storage type, never on the device or the launch size, so the gradients come
// out with the same bits on every run and every GPU (no floating-point atomics).
//
//   row steps (per_tensor, per_channel, per_group): a tile is a piece of at most
//     tile_length elements of one row, handled by a group of group_lanes lanes
//     (several groups share a warp when rows are short);
//   column steps (per_column): a tile is tile_rows rows by column_lanes chunks of
//     columns, handled by one warp of column_lanes x row_lanes lanes.
//
// Pure C++ (host and device), so the host tests check the split without a GPU.
#pragma once

#include <cstddef>

#include "../../core/config.hpp"
#include "../../core/layout.hpp"

namespace stableqat::exec::cuda_detail {

/// Lanes of a warp.
inline constexpr unsigned warp_lanes = 32;
/// Threads per block of every kernel.
inline constexpr unsigned block_threads = 256;
/// A tile holds at most this many elements...
inline constexpr std::size_t max_tile_length = 8192;
/// ...and tiles shrink (to one warp-wide sweep at least) until a tensor has
/// about this many, enough warps to keep every SM of a large GPU busy.
inline constexpr std::size_t target_tiles = 16384;
/// Column tiles span at least this many rows: each tile leaves one partial sum
/// per column, so this bounds the partial sums to 1/32 of the elements.
inline constexpr std::size_t min_tile_rows = 32;

STABLEQAT_HD constexpr std::size_t min_size(std::size_t a, std::size_t b) noexcept { return a < b ? a : b; }
STABLEQAT_HD constexpr std::size_t max_size(std::size_t a, std::size_t b) noexcept { return a < b ? b : a; }
STABLEQAT_HD constexpr std::size_t ceil_div(std::size_t a, std::size_t b) noexcept { return (a + b - 1) / b; }

/// Largest power of two <= n (n >= 1).
constexpr std::size_t floor_power_of_two(std::size_t n) noexcept {
  std::size_t p = 1;
  while (p <= n / 2) {
    p *= 2;
  }
  return p;
}

/// Smallest power of two >= n.
constexpr std::size_t ceil_power_of_two(std::size_t n) noexcept {
  std::size_t p = 1;
  while (p < n) {
    p *= 2;
  }
  return p;
}

/// Tile length for a tensor of numel elements stored in chunks of `chunk`:
/// floor_pow2(numel / target_tiles) clamped to [32 * chunk, max_tile_length].
constexpr std::size_t tile_length_for(std::size_t numel, std::size_t chunk) noexcept {
  const std::size_t sweep = warp_lanes * chunk;  // one chunk per lane of a warp
  const std::size_t wanted = floor_power_of_two(max_size(numel / target_tiles, 1));
  return min_size(max_size(wanted, sweep), max_tile_length);
}

/// Where a tile's sums go when the step spans several tiles: partial sums of
/// step k are partials[k * step_stride + p * piece_stride], p < pieces.
struct partial_sums_layout {
  std::size_t steps = 0;
  std::size_t pieces = 1;  ///< tiles per step; 1 means tiles write dsteps directly
  std::size_t step_stride = 1;
  std::size_t piece_stride = 1;

  /// Partial sums needed (0 when every tile covers a whole step).
  [[nodiscard]] STABLEQAT_HD constexpr std::size_t size() const noexcept { return pieces > 1 ? steps * pieces : 0; }
};

/// Split of a row-step layout (per_tensor, per_channel, per_group).
struct row_tiling {
  std::size_t rows = 0;
  std::size_t row_length = 0;
  std::size_t chunk = 1;          ///< consecutive elements a lane takes at a time
  std::size_t tile_length = 0;    ///< elements per tile (the last tile of a row may be shorter)
  std::size_t tiles_per_row = 0;  ///< pieces of one row
  std::size_t tiles = 0;          ///< rows * tiles_per_row; tile t is piece t % tiles_per_row of row t / tiles_per_row
  unsigned group_lanes = warp_lanes;  ///< lanes per tile: a power of two <= 32
  bool vector_access = false;     ///< whole chunks may be loaded and stored as 16-byte vectors

  [[nodiscard]] constexpr partial_sums_layout partials() const noexcept {
    return {rows, tiles_per_row, tiles_per_row, 1};
  }
};

/// Split of a column-step layout (per_column): column c uses step c.
struct column_tiling {
  std::size_t rows = 0;
  std::size_t columns = 0;
  std::size_t chunk = 1;             ///< consecutive columns a lane takes
  unsigned column_lanes = warp_lanes;  ///< lanes across the columns of a tile: a power of two <= 32
  unsigned row_lanes = 1;            ///< 32 / column_lanes lanes down the rows
  std::size_t column_blocks = 0;     ///< tiles across: ceil(columns / (column_lanes * chunk))
  std::size_t tile_rows = 0;         ///< rows per tile, a multiple of row_lanes
  std::size_t row_blocks = 0;        ///< tiles down: ceil(rows / tile_rows)
  std::size_t tiles = 0;             ///< row_blocks * column_blocks; tile t = (row block t / column_blocks, column block t % column_blocks)
  bool vector_access = false;

  [[nodiscard]] constexpr partial_sums_layout partials() const noexcept { return {columns, row_blocks, 1, columns}; }
};

/// Row split for numel = rows * row_length elements in chunks of `chunk`
/// (elements per 16 bytes); `aligned` says every element buffer starts on a
/// 16-byte boundary, which with row starts on chunk boundaries allows vectors.
constexpr row_tiling make_row_tiling(std::size_t numel, std::size_t row_length, std::size_t chunk,
                                     bool aligned) noexcept {
  row_tiling t;
  t.row_length = row_length;
  t.rows = row_length == 0 ? 0 : numel / row_length;
  t.chunk = chunk;
  const std::size_t length = tile_length_for(numel, chunk);
  t.tile_length = min_size(length, max_size(row_length, 1));
  t.tiles_per_row = row_length <= length ? 1 : ceil_div(row_length, length);
  t.tiles = t.rows * t.tiles_per_row;
  t.group_lanes = static_cast<unsigned>(min_size(warp_lanes, ceil_power_of_two(ceil_div(t.tile_length, chunk))));
  t.vector_access = aligned && (t.rows <= 1 || row_length % chunk == 0);
  return t;
}

/// Column split for numel = rows * columns elements (see make_row_tiling).
constexpr column_tiling make_column_tiling(std::size_t numel, std::size_t columns, std::size_t chunk,
                                           bool aligned) noexcept {
  column_tiling t;
  t.columns = columns;
  t.rows = columns == 0 ? 0 : numel / columns;
  t.chunk = chunk;
  t.column_lanes = static_cast<unsigned>(min_size(warp_lanes, ceil_power_of_two(ceil_div(columns, chunk))));
  t.row_lanes = warp_lanes / t.column_lanes;
  const std::size_t tile_columns = t.column_lanes * chunk;
  t.column_blocks = ceil_div(columns, tile_columns);
  t.tile_rows = max_size(min_tile_rows, tile_length_for(numel, chunk) / tile_columns);  // a multiple of row_lanes
  t.row_blocks = ceil_div(t.rows, t.tile_rows);
  t.tiles = t.row_blocks * t.column_blocks;
  t.vector_access = aligned && (t.rows <= 1 || columns % chunk == 0);
  return t;
}

/// Elements [first, last) of row `row` that row tile `tile` covers.
struct row_tile_span {
  std::size_t row;
  std::size_t first;
  std::size_t last;
};

STABLEQAT_HD constexpr row_tile_span row_tile(row_tiling const& t, std::size_t tile) noexcept {
  const std::size_t row = tile / t.tiles_per_row;
  const std::size_t first = (tile - row * t.tiles_per_row) * t.tile_length;
  return {row, first, min_size(first + t.tile_length, t.row_length)};
}

/// Rows [first_row, last_row) and the first column of lane `column_lane`'s
/// chunk in column tile `tile` (column >= columns: the lane has no columns).
struct column_tile_span {
  std::size_t row_block;
  std::size_t first_row;
  std::size_t last_row;
  std::size_t column;
};

STABLEQAT_HD constexpr column_tile_span column_tile(column_tiling const& t, std::size_t tile,
                                                    unsigned column_lane) noexcept {
  const std::size_t row_block = tile / t.column_blocks;
  const std::size_t column_block = tile - row_block * t.column_blocks;
  const std::size_t first_row = row_block * t.tile_rows;
  return {row_block, first_row, min_size(first_row + t.tile_rows, t.rows),
          (column_block * t.column_lanes + column_lane) * t.chunk};
}

/// What a launch decides on the host: the split, the partial sums and the
/// grid sizes (at most `resident_blocks` blocks: the kernels stride over the
/// rest, and no result depends on the grid size).
struct launch_plan {
  bool by_column = false;
  row_tiling rows;
  column_tiling columns;
  partial_sums_layout partials;
  std::size_t partial_count = 0;    ///< doubles per partial-sum buffer (0: none needed)
  std::size_t blocks = 0;           ///< grid of the element kernel
  std::size_t finalize_blocks = 0;  ///< grid of the second pass (0: no second pass)
};

/// The plan for numel > 0 elements of `layout` stored in chunks of `chunk`.
constexpr launch_plan plan_launch(step_layout const& layout, std::size_t numel, std::size_t chunk, bool aligned,
                                  bool backward, std::size_t resident_blocks) noexcept {
  const auto grid = [&](std::size_t wanted) { return min_size(max_size(wanted, 1), max_size(resident_blocks, 1)); };
  constexpr std::size_t warps_per_block = block_threads / warp_lanes;
  launch_plan p;
  p.by_column = layout.step_per_column();
  const std::size_t row_length = layout.row_length(numel);
  if (p.by_column) {
    p.columns = make_column_tiling(numel, row_length, chunk, aligned);
    p.partials = p.columns.partials();
    p.blocks = grid(ceil_div(p.columns.tiles, warps_per_block));  // a warp per tile
  } else {
    p.rows = make_row_tiling(numel, row_length, chunk, aligned);
    p.partials = p.rows.partials();
    const std::size_t warp_tiles = ceil_div(p.rows.tiles, warp_lanes / p.rows.group_lanes);
    p.blocks = grid(ceil_div(warp_tiles, warps_per_block));
  }
  p.partial_count = backward ? p.partials.size() : 0;
  p.finalize_blocks = p.partial_count > 0 ? grid(p.partials.steps) : 0;  // a block per step
  return p;
}

/// Lane `thread` of `threads` in the second pass: the sum, in increasing p, of
/// partial sums p = thread, thread + threads, ... of step k.
STABLEQAT_HD constexpr double strided_partial_sum(const double* partials, partial_sums_layout const& layout,
                                                  std::size_t k, unsigned thread, unsigned threads) noexcept {
  double sum = 0.0;
  for (std::size_t p = thread; p < layout.pieces; p += threads) {
    sum += partials[k * layout.step_stride + p * layout.piece_stride];
  }
  return sum;
}

}  // namespace stableqat::exec::cuda_detail
