// torch/export_kernels.hpp: integer export of the op library (codes, packing,
// exact dequantization) on raw contiguous buffers; no torch headers.
//
// Each function is one call of the library's export front-end
// (include/stableqat/export.hpp): sq::quantize_to_codes, sq::pack_codes,
// sq::unpack_codes, sq::dequantize, so the format is docs/export.md's and
// dequantize(pack(codes(x))) equals fake_quantize(x) bit for bit (-0 -> +0).
#pragma once

#include <cstddef>
#include <cstdint>

#include "options.hpp"

namespace stableqat::torch_adapter {

/// How a grid's codes are stored in a torch tensor. torch 1.13 has no uint16,
/// so unsigned 16-bit codes travel as int32 (values 0..65535).
enum class code_storage {
  int8,    ///< signed field of 2, 4 or 8 bits
  uint8,   ///< unsigned field of 2, 4 or 8 bits
  int16,   ///< signed 16-bit field
  int32,   ///< unsigned 16-bit field, widened
};

/// The storage of grid g's codes (from sq::code_field_of(g)).
code_storage code_storage_of(stableqat::grid const& g);

/// Field width sq::code_bits(g) (2, 4, 8 or 16).
int code_field_bits(stableqat::grid const& g);

/// sq::packed_bytes(rows, cols, code_bits(g)).
std::size_t packed_size(stableqat::grid const& g, std::size_t rows, std::size_t cols);

/// codes[i] = the level fake_quantize rounds x[i] to (sq::quantize_to_codes with
/// exec::par on `threads` threads); codes has code_storage_of(o.grid)'s type.
/// offsets == nullptr: no LSQ+ offsets.
template <class T>
void run_quantize_to_codes(op_options const& o, const T* x, std::size_t numel, const T* steps, const T* offsets,
                           void* codes, int threads);

/// Packs numel codes (rows of `cols`) into packed (packed_size(g, numel/cols, cols) bytes).
void run_pack_codes(stableqat::grid const& g, std::size_t cols, const void* codes, std::size_t numel,
                    std::uint8_t* packed, std::size_t packed_bytes);

/// The inverse of run_pack_codes.
void run_unpack_codes(stableqat::grid const& g, std::size_t cols, const std::uint8_t* packed,
                      std::size_t packed_bytes, void* codes, std::size_t numel);

/// y = s * level + b from packed codes (sq::dequantize, exec::par): the floats
/// run_forward gave, bit for bit except -0 -> +0.
template <class T>
void run_dequantize(op_options const& o, std::size_t cols, const std::uint8_t* packed, std::size_t packed_bytes,
                    const T* steps, const T* offsets, T* y, std::size_t numel, int threads);

extern template void run_quantize_to_codes<float>(op_options const&, const float*, std::size_t, const float*,
                                                  const float*, void*, int);
extern template void run_quantize_to_codes<double>(op_options const&, const double*, std::size_t, const double*,
                                                   const double*, void*, int);
extern template void run_dequantize<float>(op_options const&, std::size_t, const std::uint8_t*, std::size_t,
                                           const float*, const float*, float*, std::size_t, int);
extern template void run_dequantize<double>(op_options const&, std::size_t, const std::uint8_t*, std::size_t,
                                            const double*, const double*, double*, std::size_t, int);

}  // namespace stableqat::torch_adapter
