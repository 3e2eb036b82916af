// stableqat/exec/export_plan.hpp: what the integer-export backends receive and
// how they cut the work.
//
// quantize_to_codes and dequantize are element-wise (no reductions), so a
// backend is a loop over "pieces" (a column range of one row) and, inside a
// piece, over runs of elements sharing one step. The same pieces serve
// exec::simd (one after the other) and exec::par (spread over threads); since
// no element's result depends on its neighbours, every cut gives the same bits.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>

#include "../core/codes.hpp"
#include "../core/layout.hpp"
#include "../core/math.hpp"
#include "policy.hpp"

namespace stableqat::exec {

/// Buffers of quantize_to_codes: codes[i] = code of x[i]. `offsets` is used only when has_offsets.
template <real_scalar T, code_type C>
struct code_arguments {
  std::span<const T> x;
  std::span<const T> steps;
  std::span<const T> offsets;
  std::span<C> codes;
  bool has_offsets = false;
};

/// Buffers of dequantize: y[i] = s * level(code i) + b with the codes packed in
/// rows of `cols` fields of `field.bits` bits (packed.size() == rows * packed_row_bytes).
template <real_scalar T>
struct dequantize_arguments {
  std::span<const std::uint8_t> packed;
  std::size_t cols = 1;
  code_field field{2, true};
  std::span<const T> steps;
  std::span<const T> offsets;
  std::span<T> y;
  bool has_offsets = false;
};

/// export_backend<Policy> provides static quantize_to_codes(policy, q, code_arguments)
/// and dequantize(policy, q, dequantize_arguments). The backend headers
/// (export_seq.hpp, export_simd.hpp, ...) specialise it.
template <class Policy>
struct export_backend {
  static_assert(!std::is_same_v<Policy, simd_policy> && !std::is_same_v<Policy, parallel_policy>,
                "integer export on exec::simd / exec::par needs #include <stableqat/exec/export_simd.hpp> "
                "(or <stableqat/stableqat.hpp>) and xsimd");
  static_assert(!std::is_same_v<Policy, cuda_policy>,
                "integer export on exec::cuda is not implemented yet (issue 13): export on the host with "
                "exec::simd / exec::par after copying the weights and steps to host memory");
};

namespace export_detail {

/// Elements per piece: 64 Ki, a multiple of 8 so that a piece starting inside
/// a row starts on a byte boundary of the packed row for every field width.
inline constexpr std::size_t piece_elements = std::size_t{1} << 16;

/// A tensor of `rows` rows of `cols` elements cut into pieces: long rows into
/// column ranges of piece_elements, short rows grouped piece_elements / cols at
/// a time. f(row, col_begin, col_end) is called for every row part of piece p.
struct piece_plan {
  std::size_t rows = 0;
  std::size_t cols = 1;

  [[nodiscard]] std::size_t pieces_per_row() const noexcept { return (cols + piece_elements - 1) / piece_elements; }
  [[nodiscard]] std::size_t rows_per_piece() const noexcept {
    return cols >= piece_elements ? 1 : piece_elements / cols;
  }
  [[nodiscard]] std::size_t piece_count() const noexcept {
    if (cols >= piece_elements) {
      return rows * pieces_per_row();
    }
    return (rows + rows_per_piece() - 1) / rows_per_piece();
  }

  template <class F>
  void for_each_part(std::size_t piece, F&& f) const {
    if (cols >= piece_elements) {
      const std::size_t per_row = pieces_per_row();
      const std::size_t row = piece / per_row;
      const std::size_t begin = (piece % per_row) * piece_elements;
      f(row, begin, std::min(cols, begin + piece_elements));
      return;
    }
    const std::size_t first = piece * rows_per_piece();
    const std::size_t last = std::min(rows, first + rows_per_piece());
    for (std::size_t row = first; row < last; ++row) {
      f(row, std::size_t{0}, cols);
    }
  }
};

/// Splits elements [begin, end) of a tensor into runs sharing one step:
/// f(k, run_begin, run_end) with k = layout.step_index(i) for every i of the run.
/// per_column runs are single elements.
template <class F>
void for_each_step_run(step_layout const& layout, std::size_t begin, std::size_t end, F&& f) {
  switch (layout.type()) {
    case step_layout::kind::per_tensor:
      if (begin < end) {
        f(std::size_t{0}, begin, end);
      }
      return;
    case step_layout::kind::per_column:
      for (std::size_t i = begin; i < end; ++i) {
        f(layout.step_index(i), i, i + 1);
      }
      return;
    default: {
      const std::size_t extent = layout.extent();
      for (std::size_t i = begin; i < end;) {
        const std::size_t k = i / extent;
        const std::size_t stop = std::min(end, (k + 1) * extent);
        f(k, i, stop);
        i = stop;
      }
    }
  }
}

/// The per-element code loops see these rows: the layout's rows for
/// quantize_to_codes (any split works; this one keeps runs long).
inline piece_plan code_plan(step_layout const& layout, std::size_t numel) noexcept {
  const std::size_t row = layout.step_per_column() ? layout.extent() : layout.row_length(numel);
  return {numel / row, row};
}

}  // namespace export_detail
}  // namespace stableqat::exec
