// stableqat/exec/cuda/export_work.hpp: one element of the integer export on
// exec::cuda, host and device code.
//
// The kernels of export.cuh call these STABLEQAT_HD functions once per element
// (grid-stride loop); they are the per-element templates of exec::seq
// (quantize_level_element, code_or_nan_code of core/lsq.hpp / core/codes.hpp;
// read_field, code_of_field, level_of_code, dequantize) with T = float or
// double, x / y stored as E (exec/storage.hpp: 16-bit floats widened to float,
// each output rounded to storage once). Compiled by the host compiler too, so
// tests/cuda/host_export_tests.cpp checks them against exec::seq without a GPU.
#pragma once

#include <cstddef>
#include <cstdint>

#include "../../core/codes.hpp"
#include "../../core/config.hpp"
#include "../../core/layout.hpp"
#include "../../core/lsq.hpp"
#include "../arguments.hpp"
#include "../storage.hpp"

namespace stableqat::exec::cuda_detail {

/// Raw pointers of a quantize_to_codes call (device memory on exec::cuda).
template <class E, class T, code_type C>
struct code_buffers {
  E const* x;
  T const* steps;
  T const* offsets;  // nullptr without offsets
  C* codes;
  std::size_t numel;
  step_layout layout;
  T nan;  // nan_code(grid)
};

/// Raw pointers of a dequantize call.
template <class E, class T>
struct dequantize_buffers {
  std::uint8_t const* packed;
  std::size_t cols;
  std::size_t row_bytes;  // packed_row_bytes(cols, bits)
  int bits;
  bool is_signed;
  T const* steps;
  T const* offsets;  // nullptr without offsets
  E* y;
  std::size_t numel;
  step_layout layout;
};

/// codes[i] = the code of x[i]: exec::seq's formula with x widened from E.
template <bool WithOffsets, class E, class T, code_type C, class Levels>
STABLEQAT_HD inline void code_element(code_buffers<E, T, C> const& b, std::size_t i, Levels const& levels) noexcept {
  const std::size_t k = b.layout.step_index(i);
  const T x = storage_traits<E>::to_compute(b.x[i]);
  const T level = quantize_level_element(x, T(1) / b.steps[k], offset_of(b.offsets, k, std::bool_constant<WithOffsets>{}),
                                         levels);
  b.codes[i] = static_cast<C>(code_or_nan_code(levels, level, b.nan));
}

/// The code of field j of a packed row, sign-extended for signed fields.
STABLEQAT_HD inline long code_at(std::uint8_t const* row, std::size_t j, int bits, bool is_signed) noexcept {
  const std::uint32_t f = read_field(row, j, bits);
  return is_signed ? static_cast<long>(code_of_field<std::int16_t>(f, bits)) : static_cast<long>(f);
}

/// y[i] = dequantize(step, level of code i, offset), computed in T and rounded to E once.
template <bool WithOffsets, class E, class T, class Levels>
STABLEQAT_HD inline void dequantize_element(dequantize_buffers<E, T> const& b, std::size_t i,
                                            Levels const& levels) noexcept {
  const std::size_t row = i / b.cols;
  const long code = code_at(b.packed + row * b.row_bytes, i - row * b.cols, b.bits, b.is_signed);
  const std::size_t k = b.layout.step_index(i);
  const T y = stableqat::dequantize(b.steps[k], level_of_code(levels, static_cast<T>(code)),
                                    offset_of(b.offsets, k, std::bool_constant<WithOffsets>{}));
  b.y[i] = storage_traits<E>::to_storage(y);
}

}  // namespace stableqat::exec::cuda_detail
