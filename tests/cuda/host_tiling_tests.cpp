// Host tests (g++) of how the CUDA kernels split tensors into tiles: every
// element belongs to exactly one tile and one lane chunk, tiles of a step are
// contiguous in the partial sums, and the split never depends on the device.
#include <doctest/doctest.h>

#include <stableqat/exec/cuda/tiling.hpp>

#include <cstddef>
#include <vector>

namespace cd = stableqat::exec::cuda_detail;

namespace {

bool is_power_of_two(std::size_t n) { return n != 0 && (n & (n - 1)) == 0; }

/// Marks the elements each lane chunk of a row tiling covers; every element
/// must be covered once, by a chunk inside its own row.
void check_row_cover(cd::row_tiling const& t) {
  std::vector<int> seen(t.rows * t.row_length, 0);
  for (std::size_t tile = 0; tile < t.tiles; ++tile) {
    const cd::row_tile_span s = cd::row_tile(t, tile);
    REQUIRE(s.row < t.rows);
    REQUIRE(s.first < s.last);
    REQUIRE(s.last <= t.row_length);
    for (unsigned lane = 0; lane < t.group_lanes; ++lane) {
      for (std::size_t j = s.first + lane * t.chunk; j < s.last; j += t.group_lanes * t.chunk) {
        const std::size_t n = cd::min_size(t.chunk, s.last - j);
        // A partial chunk only at the end of a row.
        REQUIRE((n == t.chunk || j + n == t.row_length));
        for (std::size_t e = 0; e < n; ++e) {
          ++seen[s.row * t.row_length + j + e];
        }
      }
    }
  }
  for (std::size_t i = 0; i < seen.size(); ++i) {
    INFO("element " << i);
    REQUIRE(seen[i] == 1);
  }
}

void check_column_cover(cd::column_tiling const& t) {
  std::vector<int> seen(t.rows * t.columns, 0);
  for (std::size_t tile = 0; tile < t.tiles; ++tile) {
    for (unsigned column_lane = 0; column_lane < t.column_lanes; ++column_lane) {
      const cd::column_tile_span s = cd::column_tile(t, tile, column_lane);
      REQUIRE(s.row_block < t.row_blocks);
      if (s.column >= t.columns) {
        continue;
      }
      REQUIRE(s.column % t.chunk == 0);
      const std::size_t n = cd::min_size(t.chunk, t.columns - s.column);
      for (unsigned row_lane = 0; row_lane < t.row_lanes; ++row_lane) {
        for (std::size_t r = s.first_row + row_lane; r < s.last_row; r += t.row_lanes) {
          for (std::size_t e = 0; e < n; ++e) {
            ++seen[r * t.columns + s.column + e];
          }
        }
      }
    }
  }
  for (std::size_t i = 0; i < seen.size(); ++i) {
    INFO("element " << i);
    REQUIRE(seen[i] == 1);
  }
}

}  // namespace

TEST_CASE("cuda tiling: tile length follows the element count, within [one warp sweep, 8192]") {
  CHECK(cd::tile_length_for(1, 4) == 128);               // 32 lanes x 4 floats
  CHECK(cd::tile_length_for(1, 8) == 256);               // 32 lanes x 8 halves
  CHECK(cd::tile_length_for(16u << 20, 4) == 1024);      // 16M floats: 16384 tiles of 1024
  CHECK(cd::tile_length_for(256u << 20, 4) == 8192);     // 256M floats: capped at 8192
  CHECK(cd::tile_length_for((16u << 20) + 5, 4) == 1024);
  CHECK(cd::floor_power_of_two(1) == 1);
  CHECK(cd::floor_power_of_two(1023) == 512);
  CHECK(cd::ceil_power_of_two(5) == 8);
  CHECK(cd::ceil_power_of_two(1) == 1);
}

TEST_CASE("cuda tiling: row tiles cover every element exactly once") {
  struct shape {
    std::size_t numel, row_length, chunk;
  };
  const shape shapes[] = {
      {1, 1, 4},          {7, 7, 4},           {130, 130, 4},       {1000003, 1000003, 4},  // per tensor
      {96, 32, 4},        {96, 3, 4},          {45, 5, 2},          {9 * 1000, 1000, 8},    // short rows
      {3 * 20000, 20000, 4}, {2 * 8193, 8193, 4}, {5 * 777, 777, 8},                   // rows split into tiles
  };
  for (auto const& s : shapes) {
    CAPTURE(s.numel);
    CAPTURE(s.row_length);
    const cd::row_tiling t = cd::make_row_tiling(s.numel, s.row_length, s.chunk, true);
    CHECK(t.rows * t.row_length == s.numel);
    CHECK(is_power_of_two(t.group_lanes));
    CHECK(t.group_lanes <= cd::warp_lanes);
    CHECK(t.tiles == t.rows * t.tiles_per_row);
    if (t.tiles_per_row > 1) {
      CHECK(t.tile_length % (cd::warp_lanes * s.chunk) == 0);  // pieces start on vector boundaries
      CHECK(t.group_lanes == cd::warp_lanes);
    }
    // No more lanes than chunks in a tile (beyond rounding to a power of two).
    CHECK(t.group_lanes < 2 * cd::ceil_div(t.tile_length, s.chunk) + 1);
    check_row_cover(t);
  }
}

TEST_CASE("cuda tiling: column tiles cover every element exactly once") {
  struct shape {
    std::size_t numel, columns, chunk;
  };
  const shape shapes[] = {{5, 5, 4},         {7 * 5, 5, 4},      {64 * 3, 3, 8},    {1000 * 256, 256, 4},
                          {300 * 130, 130, 4}, {17 * 1000, 1000, 2}, {1, 1, 2},       {40000 * 3, 3, 4}};
  for (auto const& s : shapes) {
    CAPTURE(s.numel);
    CAPTURE(s.columns);
    const cd::column_tiling t = cd::make_column_tiling(s.numel, s.columns, s.chunk, true);
    CHECK(t.rows * t.columns == s.numel);
    CHECK(t.column_lanes * t.row_lanes == cd::warp_lanes);
    CHECK(is_power_of_two(t.column_lanes));
    CHECK(t.tile_rows % t.row_lanes == 0);
    CHECK(t.tiles == t.row_blocks * t.column_blocks);
    CHECK(t.row_blocks * t.columns <= s.numel / cd::min_tile_rows + t.columns);  // partial sums stay few
    check_column_cover(t);
  }
}

TEST_CASE("cuda tiling: 16-byte vectors only where every chunk starts aligned") {
  // Rows of 4k floats start on 16-byte boundaries; rows of 4k + 1 do not.
  CHECK(cd::make_row_tiling(12, 4, 4, true).vector_access);
  CHECK_FALSE(cd::make_row_tiling(15, 5, 4, true).vector_access);
  CHECK(cd::make_row_tiling(15, 15, 4, true).vector_access);  // one row: only its tail is partial
  CHECK_FALSE(cd::make_row_tiling(16, 16, 4, false).vector_access);
  CHECK(cd::make_column_tiling(64, 8, 4, true).vector_access);
  CHECK_FALSE(cd::make_column_tiling(60, 6, 4, true).vector_access);
  CHECK(cd::make_column_tiling(6, 6, 4, true).vector_access);
  CHECK_FALSE(cd::make_column_tiling(64, 8, 4, false).vector_access);
}

TEST_CASE("cuda tiling: partial sums of one step are laid out for the second pass") {
  // Row steps split into tiles: partials of row k are tiles k*P .. k*P + P-1.
  const cd::row_tiling rows = cd::make_row_tiling(3 * 20000, 20000, 4, true);
  const cd::partial_sums_layout p = rows.partials();
  CHECK(p.steps == 3);
  CHECK(p.pieces == rows.tiles_per_row);
  CHECK(p.pieces > 1);
  CHECK(p.size() == rows.tiles);
  CHECK(cd::row_tile(rows, 2 * p.step_stride + (p.pieces - 1) * p.piece_stride).row == 2);
  // Short rows: one tile per step, written straight to dsteps.
  CHECK(cd::make_row_tiling(96, 32, 4, true).partials().size() == 0);
  // Columns: partial (row block b, column c) at b * columns + c.
  const cd::column_tiling columns = cd::make_column_tiling(4096 * 300, 300, 4, true);
  const cd::partial_sums_layout q = columns.partials();
  CHECK(q.steps == 300);
  CHECK(q.pieces == columns.row_blocks);
  CHECK(q.pieces > 1);
  CHECK(q.piece_stride == 300);
  CHECK(q.size() == 300 * columns.row_blocks);

  // The second pass: thread i of n adds pieces i, i + n, ... of its step.
  std::vector<double> partials(q.size());
  for (std::size_t i = 0; i < partials.size(); ++i) {
    partials[i] = static_cast<double>(i % 300) + 1000.0 * static_cast<double>(i / 300);  // column + 1000 * block
  }
  const std::size_t k = 7;
  double total = 0.0;
  for (unsigned thread = 0; thread < 256; ++thread) {
    total += cd::strided_partial_sum(partials.data(), q, k, thread, 256);
  }
  const auto blocks = static_cast<double>(q.pieces);
  CHECK(total == 7.0 * blocks + 1000.0 * blocks * (blocks - 1) / 2);
}

TEST_CASE("cuda tiling: indices are 64-bit (tensors beyond 2^32 elements)") {
  const std::size_t numel = (std::size_t{1} << 33) + 12;  // one row, 8 Gi + 12 floats
  const cd::row_tiling t = cd::make_row_tiling(numel, numel, 4, true);
  CHECK(t.tile_length == 8192);
  CHECK(t.tiles == cd::ceil_div(numel, 8192));
  const cd::row_tile_span last = cd::row_tile(t, t.tiles - 1);
  CHECK(last.last == numel);
  CHECK(last.first == (t.tiles - 1) * 8192);
  CHECK(last.first > (std::size_t{1} << 32));

  const std::size_t columns = 3000;
  const std::size_t rows = (std::size_t{1} << 31) / 1000;  // 6.4e9 elements
  const cd::column_tiling c = cd::make_column_tiling(rows * columns, columns, 4, true);
  const cd::column_tile_span s = cd::column_tile(c, c.tiles - 1, c.column_lanes - 1);
  CHECK(s.last_row == rows);
  CHECK(s.first_row * columns > (std::size_t{1} << 32));
}

TEST_CASE("cuda launch plan: grids within the resident blocks, a second pass only when a step spans tiles") {
  namespace sq = stableqat;
  // 3M floats per tensor: 16384+ tiles of 128..8192, far more warps than fit.
  const cd::launch_plan big = cd::plan_launch(sq::per_tensor(), std::size_t{3} << 20, 4, true, true, 528);
  CHECK_FALSE(big.by_column);
  CHECK(big.blocks == 528);
  CHECK(big.partial_count == big.rows.tiles);
  CHECK(big.finalize_blocks == 1);  // one step
  // The forward pass never needs partial sums.
  const cd::launch_plan forward = cd::plan_launch(sq::per_tensor(), std::size_t{3} << 20, 4, true, false, 528);
  CHECK(forward.partial_count == 0);
  CHECK(forward.finalize_blocks == 0);
  // Short rows: four rows of 32 floats per warp, dsteps written directly.
  const cd::launch_plan groups = cd::plan_launch(sq::per_group(32), 32 * 1000, 4, true, true, 528);
  CHECK(groups.rows.group_lanes == 8);
  CHECK(groups.blocks == cd::ceil_div(cd::ceil_div(1000, 4), 8));
  CHECK(groups.partial_count == 0);
  CHECK(groups.finalize_blocks == 0);
  // Columns: a warp per tile; 700 rows of 1000 columns need several row blocks.
  const cd::launch_plan columns = cd::plan_launch(sq::per_column(1000), 1000 * 700, 4, true, true, 4);
  CHECK(columns.by_column);
  CHECK(columns.columns.row_blocks > 1);
  CHECK(columns.partial_count == 1000 * columns.columns.row_blocks);
  CHECK(columns.blocks == 4);
  CHECK(columns.finalize_blocks == 4);
  // A tiny tensor still launches one block.
  const cd::launch_plan one = cd::plan_launch(sq::per_tensor(), 1, 4, true, true, 528);
  CHECK(one.blocks == 1);
  CHECK(one.finalize_blocks == 0);
}
