// stableqat/export.hpp: integer export, the bridge from QAT to deployment.
//
//   quantize_to_codes(policy, q, x, steps, codes [, offsets])   x -> integer codes (the forward's levels)
//   pack_codes(bits, cols, codes, packed)                        codes -> packed bit fields, row by row
//   unpack_codes(bits, cols, packed, codes)                      the inverse
//   packed_bytes(rows, cols, bits)                               size of a packed tensor
//   dequantize(policy, q, cols, packed, steps, y [, offsets])    packed -> the floats fake_quantize gave
//
// Exactness: dequantize(pack(quantize_to_codes(x))) has the bits of
// fake_quantize(x) for every finite or infinite x, on every backend, with two
// exceptions that integer codes cannot carry: a -0 output comes back as +0
// (equal under ==), and NaN comes back as s * nan_code(grid) + b. The format
// (core/codes.hpp, docs/export.md): fields of code_bits(grid) bits, two's
// complement for grids with negative levels, element 0 in the low bits of a
// byte, rows of `cols` fields padded to a whole byte.
//
// Every function validates all arguments before writing anything and throws
// std::invalid_argument naming the argument.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <type_traits>

#include "core/codes.hpp"
#include "core/errors.hpp"
#include "core/grid.hpp"
#include "exec/arguments.hpp"
#include "exec/export_plan.hpp"
#include "exec/export_seq.hpp"
#include "exec/policy.hpp"
#include "quantizer.hpp"

namespace stableqat {

namespace export_front {

inline constexpr const char* codes_name = "stableqat::quantize_to_codes";
inline constexpr const char* pack_name = "stableqat::pack_codes";
inline constexpr const char* unpack_name = "stableqat::unpack_codes";
inline constexpr const char* dequantize_name = "stableqat::dequantize";
inline constexpr const char* bytes_name = "stableqat::packed_bytes";

template <code_type C>
constexpr const char* code_type_name() noexcept {
  if constexpr (std::is_same_v<C, std::int8_t>) {
    return "int8_t";
  } else if constexpr (std::is_same_v<C, std::uint8_t>) {
    return "uint8_t";
  } else if constexpr (std::is_same_v<C, std::int16_t>) {
    return "int16_t";
  } else {
    return "uint16_t";
  }
}

inline void check_bits(const char* function, int bits) {
  if (!is_packable_bits(bits)) {
    detail::throw_invalid_argument(function, "bits", bits, "is not a packable field width (2, 4, 8 or 16)");
  }
}

/// The code type must hold the field: same signedness, at least `bits` wide.
template <code_type C>
void check_bits_fit(const char* function, int bits) {
  check_bits(function, bits);
  if (bits > 8 * static_cast<int>(sizeof(C))) {
    detail::throw_invalid_argument(function, "bits", bits,
                                   std::string("is wider than the ") + code_type_name<C>() + " codes");
  }
}

inline void check_cols(const char* function, std::size_t cols, const char* numel_name, std::size_t numel) {
  if (cols == 0) {
    detail::throw_invalid_argument(function, "cols", cols, "must be positive");
  }
  if (numel % cols != 0) {
    detail::throw_invalid_argument(function, std::string(numel_name) + ".size()", numel,
                                   "is not a multiple of cols = " + std::to_string(cols));
  }
}

/// rows * packed_row_bytes(cols, bits), throwing when it overflows size_t.
inline std::size_t checked_packed_bytes(const char* function, std::size_t rows, std::size_t cols, int bits) {
  check_bits(function, bits);
  constexpr std::size_t max = std::numeric_limits<std::size_t>::max();
  if (cols > (max - 7) / 16) {
    detail::throw_invalid_argument(function, "cols", cols, "is too large: the packed size overflows size_t");
  }
  const std::size_t row_bytes = packed_row_bytes(cols, bits);
  if (row_bytes != 0 && rows > max / row_bytes) {
    detail::throw_invalid_argument(function, "rows", rows, "is too large: the packed size overflows size_t");
  }
  return rows * row_bytes;
}

inline void check_packed_size(const char* function, std::size_t size, std::size_t rows, std::size_t cols, int bits) {
  const std::size_t expected = checked_packed_bytes(function, rows, cols, bits);
  if (size != expected) {
    detail::throw_invalid_argument(function, "packed.size()", size,
                                   "differs from packed_bytes(" + std::to_string(rows) + ", " + std::to_string(cols) +
                                       ", " + std::to_string(bits) + ") = " + std::to_string(expected));
  }
}

/// quantize_to_codes writes the grid's levels: C must have the grid's
/// signedness and hold [qmin, qmax].
template <code_type C>
void check_code_type(grid const& g) {
  constexpr bool is_signed = std::numeric_limits<C>::is_signed;
  if (is_signed != (g.qmin() < 0)) {
    detail::throw_invalid_argument(codes_name, "grid.qmin()", g.qmin(),
                                   std::string("needs ") + (g.qmin() < 0 ? "signed (int8_t / int16_t)" :
                                                                           "unsigned (uint8_t / uint16_t)") +
                                       " codes, not " + code_type_name<C>());
  }
  if (g.qmin() < std::numeric_limits<C>::min() || g.qmax() > std::numeric_limits<C>::max()) {
    detail::throw_invalid_argument(codes_name, "grid.qmax()", g.qmax(),
                                   std::string("does not fit ") + code_type_name<C>() +
                                       " codes (use the 16-bit code type)");
  }
}

/// Step and offset values must be positive and finite / finite; read where the
/// policy's backend lets the host read them (as ops.hpp does).
template <class Policy, real_scalar T>
void check_values(Policy const& policy, const char* function, std::span<const T> steps, std::span<const T> offsets,
                  bool has_offsets) {
  const auto host = exec::hooks::read_on_host(policy, function, steps, has_offsets ? offsets : std::span<const T>{});
  exec::validation::check_step_values(function, host.steps());
  if (has_offsets) {
    exec::validation::check_offset_values(function, host.offsets());
  }
}

template <class Policy, real_scalar T, class S, code_type C, class E>
void run_quantize_to_codes(Policy const& policy, quantizer<T, S> const& q, exec::code_arguments<T, C, E> const& a) {
  using namespace exec::validation;
  check_code_type<C>(q.grid());
  check_same_size(codes_name, "codes", a.codes.size(), a.x.size());
  detail::check_layout(codes_name, q.layout(), a.x.size(), a.steps.size());
  if (a.has_offsets) {
    check_step_sized(codes_name, "offsets", a.offsets.size(), a.steps.size());
  }
  check_disjoint(codes_name, {"codes", a.codes}, {{"x", a.x}, {"steps", a.steps}, {"offsets", a.offsets}});
  exec::hooks::check_memory(policy, codes_name, a);
  check_values(policy, codes_name, a.steps, a.offsets, a.has_offsets);
  if (!a.x.empty()) {
    exec::export_backend<Policy>::quantize_to_codes(policy, q, a);
  }
}

/// Codes in a packed buffer must be codes of the grid: grids that do not fill
/// their field (ternary, binary, integer_grid) leave field values that
/// fake_quantize never produces. One pass over the bytes with a table of the
/// valid byte values (fields past the row's end are padding and ignored).
inline void check_packed_codes(grid const& g, code_field field, std::size_t cols, std::span<const std::uint8_t> packed) {
  if (g.qmin() == field.min() && g.qmax() == field.max()) {
    return;  // every field value is a code of the grid
  }
  const auto valid = [&](std::uint32_t f) {
    const long code = field.is_signed ? static_cast<long>(code_of_field<std::int16_t>(f, field.bits)) : static_cast<long>(f);
    return g.qmin() <= code && code <= g.qmax();
  };
  const std::size_t row_bytes = packed_row_bytes(cols, field.bits);
  const auto fail = [&](std::size_t row, std::size_t j, std::uint32_t f) {
    detail::throw_invalid_argument(dequantize_name, detail::indexed_name("packed", row * row_bytes + j * field.bits / 8),
                                   f,
                                   "holds field " + std::to_string(j) + " of row " + std::to_string(row) +
                                       " outside the grid [" + std::to_string(g.qmin()) + ", " +
                                       std::to_string(g.qmax()) + "]");
  };
  if (field.bits == 16) {
    for (std::size_t row = 0; row * row_bytes < packed.size(); ++row) {
      for (std::size_t j = 0; j < cols; ++j) {
        const std::uint32_t f = read_field(packed.data() + row * row_bytes, j, 16);
        if (!valid(f)) fail(row, j, f);
      }
    }
    return;
  }
  // Byte b of a row is valid when all its fields inside the row are codes.
  const std::size_t per_byte = static_cast<std::size_t>(8 / field.bits);
  const std::uint32_t mask = (std::uint32_t{1} << field.bits) - 1u;
  bool byte_ok[256];
  for (std::uint32_t b = 0; b < 256; ++b) {
    byte_ok[b] = true;
    for (std::size_t e = 0; e < per_byte; ++e) {
      byte_ok[b] = byte_ok[b] && valid((b >> (e * static_cast<std::size_t>(field.bits))) & mask);
    }
  }
  const std::size_t full = cols / per_byte;  // bytes whose fields all lie in the row
  for (std::size_t row = 0; row * row_bytes < packed.size(); ++row) {
    std::uint8_t const* bytes = packed.data() + row * row_bytes;
    for (std::size_t b = 0; b < full; ++b) {
      if (!byte_ok[bytes[b]]) {
        for (std::size_t e = 0; e < per_byte; ++e) {
          const std::uint32_t f = read_field(bytes, b * per_byte + e, field.bits);
          if (!valid(f)) fail(row, b * per_byte + e, f);
        }
      }
    }
    for (std::size_t j = full * per_byte; j < cols; ++j) {
      const std::uint32_t f = read_field(bytes, j, field.bits);
      if (!valid(f)) fail(row, j, f);
    }
  }
}

template <class Policy, real_scalar T, class S, class E>
void run_dequantize(Policy const& policy, quantizer<T, S> const& q, std::size_t cols,
                    exec::dequantize_arguments<T, E> a) {
  using namespace exec::validation;
  a.cols = cols;
  a.field = code_field_of(q.grid());
  check_cols(dequantize_name, cols, "y", a.y.size());
  check_packed_size(dequantize_name, a.packed.size(), a.y.size() / cols, cols, a.field.bits);
  detail::check_layout(dequantize_name, q.layout(), a.y.size(), a.steps.size());
  if (a.has_offsets) {
    check_step_sized(dequantize_name, "offsets", a.offsets.size(), a.steps.size());
  }
  check_disjoint(dequantize_name, {"y", a.y}, {{"packed", a.packed}, {"steps", a.steps}, {"offsets", a.offsets}});
  exec::hooks::check_memory(policy, dequantize_name, a);
  check_values(policy, dequantize_name, a.steps, a.offsets, a.has_offsets);
  if constexpr (!std::is_same_v<Policy, exec::cuda_policy>) {
    // Host memory only: on exec::cuda the codes stay on the device unchecked
    // (a code outside the grid gives s * code + b there).
    check_packed_codes(q.grid(), a.field, cols, a.packed);
  }
  if (!a.y.empty()) {
    exec::export_backend<Policy>::dequantize(policy, q, a);
  }
}

}  // namespace export_front

/// Bytes of a packed tensor of `rows` rows of `cols` codes in `bits`-wide
/// fields: rows * ceil(cols * bits / 8). bits must be 2, 4, 8 or 16; throws
/// std::invalid_argument for another width or a size that overflows size_t.
inline std::size_t packed_bytes(std::size_t rows, std::size_t cols, int bits) {
  return export_front::checked_packed_bytes(export_front::bytes_name, rows, cols, bits);
}

/// codes[i] = the grid level fake_quantize(policy, q, x, steps, y) rounds x[i]
/// to, as an integer: clamp(round_half_even((x - b) / s), qmin, qmax), sign on
/// the binary grid (-1, 0 for ±0, +1); ±Inf give qmin / qmax; NaN gives
/// nan_code(q.grid()) (0 on the library's grids). The level comes from
/// quantize_level_element, the very function the forward pass uses.
///
/// C must have the grid's signedness and hold [qmin, qmax]: int8_t for signed
/// grids up to 8 bits (and ternary, binary), int16_t up to 16 bits, uint8_t /
/// uint16_t for unsigned grids. Sizes and step/offset checks as fake_quantize;
/// codes must not overlap x, steps or offsets.
template <exec::execution_policy Policy, real_scalar T, class S, code_type C>
void quantize_to_codes(Policy const& policy, quantizer<T, S> const& q, exec::input<T> x,
                       exec::input<T> steps, std::span<C> codes) {
  export_front::run_quantize_to_codes(policy, q, exec::code_arguments<T, C>{x, steps, {}, codes, false});
}

/// quantize_to_codes with LSQ+ offsets: codes of clamp(round((x - b) / s)).
template <exec::execution_policy Policy, real_scalar T, class S, code_type C>
void quantize_to_codes(Policy const& policy, quantizer<T, S> const& q, exec::input<T> x,
                       exec::input<T> steps, std::span<C> codes, exec::input<T> offsets) {
  export_front::run_quantize_to_codes(policy, q, exec::code_arguments<T, C>{x, steps, offsets, codes, true});
}

/// Packs codes, read as rows of `cols`, into bits-wide fields (bits = 2, 4, 8
/// or 16, at most the width of C): code j of a row goes to bits [j*bits,
/// (j+1)*bits) of the row's little-endian bit stream (element 0 in the low
/// bits of byte 0), two's complement for signed C; each row is padded with
/// zero bits to a whole byte. packed.size() must equal
/// packed_bytes(codes.size() / cols, cols, bits) and every code must fit the
/// field ([-2^(bits-1), 2^(bits-1) - 1] signed, [0, 2^bits - 1] unsigned);
/// otherwise std::invalid_argument naming the argument, before writing.
template <code_type C>
void pack_codes(int bits, std::size_t cols, std::span<const C> codes, std::span<std::uint8_t> packed) {
  using namespace export_front;
  check_bits_fit<C>(pack_name, bits);
  check_cols(pack_name, cols, "codes", codes.size());
  const std::size_t rows = codes.size() / cols;
  check_packed_size(pack_name, packed.size(), rows, cols, bits);
  exec::validation::check_disjoint(pack_name, {"packed", packed}, {{"codes", codes}});
  const long lo = field_min(bits, std::numeric_limits<C>::is_signed);
  const long hi = field_max(bits, std::numeric_limits<C>::is_signed);
  // A min/max pass (vectorized) first; the offending index is searched only on failure.
  C smallest = std::numeric_limits<C>::max();
  C largest = std::numeric_limits<C>::min();
  for (C c : codes) {
    smallest = c < smallest ? c : smallest;
    largest = c > largest ? c : largest;
  }
  for (std::size_t i = 0; !codes.empty() && (smallest < lo || largest > hi) && i < codes.size(); ++i) {
    if (codes[i] < lo || codes[i] > hi) {
      detail::throw_invalid_argument(pack_name, detail::indexed_name("codes", i), codes[i],
                                     "does not fit a " + std::to_string(bits) + "-bit field [" + std::to_string(lo) +
                                         ", " + std::to_string(hi) + "]");
    }
  }
  const std::size_t row_bytes = packed_row_bytes(cols, bits);
  visit_bits(bits, [&](auto bits_constant) {
    for (std::size_t r = 0; r < rows; ++r) {
      pack_row<decltype(bits_constant)::value>(codes.data() + r * cols, cols, packed.data() + r * row_bytes);
    }
  });
}

/// Overload for a non-const codes span.
template <code_type C>
void pack_codes(int bits, std::size_t cols, std::span<C> codes, std::span<std::uint8_t> packed) {
  pack_codes(bits, cols, std::span<const C>(codes), packed);
}

/// The inverse of pack_codes: codes.size() / cols rows, sign-extended for
/// signed C; padding bits are ignored. Throws std::invalid_argument (bits,
/// cols, sizes, overlap) before writing.
template <code_type C>
void unpack_codes(int bits, std::size_t cols, std::span<const std::uint8_t> packed, std::span<C> codes) {
  using namespace export_front;
  check_bits_fit<C>(unpack_name, bits);
  check_cols(unpack_name, cols, "codes", codes.size());
  const std::size_t rows = codes.size() / cols;
  check_packed_size(unpack_name, packed.size(), rows, cols, bits);
  exec::validation::check_disjoint(unpack_name, {"codes", codes}, {{"packed", packed}});
  const std::size_t row_bytes = packed_row_bytes(cols, bits);
  visit_bits(bits, [&](auto bits_constant) {
    for (std::size_t r = 0; r < rows; ++r) {
      unpack_row<decltype(bits_constant)::value>(packed.data() + r * row_bytes, cols, codes.data() + r * cols);
    }
  });
}

/// y[i] = s * level(code i) + b with s = steps[q.layout().step_index(i)]: the
/// floats fake_quantize gave (bit for bit, but -0 -> +0 and NaN -> nan_code;
/// see the top of this header). packed holds y.size() / cols rows of `cols`
/// codes in fields of code_bits(q.grid()) bits, as pack_codes wrote them, and
/// only codes of the grid (checked: e.g. -2 is not a ternary code). Any layout:
/// per_tensor, per_channel, per_group and per_column steps are independent of
/// the packing's rows. Throws std::invalid_argument naming the argument before writing.
template <exec::execution_policy Policy, real_scalar T, class S>
void dequantize(Policy const& policy, quantizer<T, S> const& q, std::size_t cols,
                std::span<const std::uint8_t> packed, exec::input<T> steps, exec::output<T> y) {
  export_front::run_dequantize(policy, q, cols, exec::dequantize_arguments<T>{packed, cols, {}, steps, {}, y, false});
}

/// dequantize with LSQ+ offsets: y = fma(s, level, b), as the forward.
template <exec::execution_policy Policy, real_scalar T, class S>
void dequantize(Policy const& policy, quantizer<T, S> const& q, std::size_t cols,
                std::span<const std::uint8_t> packed, exec::input<T> steps, exec::output<T> y,
                exec::input<T> offsets) {
  export_front::run_dequantize(policy, q, cols,
                               exec::dequantize_arguments<T>{packed, cols, {}, steps, offsets, y, true});
}

/// quantize_to_codes of a tensor stored as E, a 16-bit float the backend
/// computes in T = float (exec::cuda: __half, __nv_bfloat16): the codes of
/// fake_quantize(policy, q, x, steps, y) for the same E tensors.
template <exec::execution_policy Policy, real_scalar T, class S, class E, code_type C>
  requires(!std::is_same_v<E, T> && exec::stores<Policy, E, T>)
void quantize_to_codes(Policy const& policy, quantizer<T, S> const& q, std::span<const E> x,
                       exec::input<T> steps, std::span<C> codes) {
  export_front::run_quantize_to_codes(policy, q, exec::code_arguments<T, C, E>{x, steps, {}, codes, false});
}

/// The same with LSQ+ offsets.
template <exec::execution_policy Policy, real_scalar T, class S, class E, code_type C>
  requires(!std::is_same_v<E, T> && exec::stores<Policy, E, T>)
void quantize_to_codes(Policy const& policy, quantizer<T, S> const& q, std::span<const E> x,
                       exec::input<T> steps, std::span<C> codes, exec::input<T> offsets) {
  export_front::run_quantize_to_codes(policy, q, exec::code_arguments<T, C, E>{x, steps, offsets, codes, true});
}

/// dequantize into a tensor stored as E (exec::cuda: __half, __nv_bfloat16),
/// computed in T = float and rounded once: the bits of fake_quantize's E output.
template <exec::execution_policy Policy, real_scalar T, class S, class E>
  requires(!std::is_same_v<E, T> && exec::stores<Policy, E, T>)
void dequantize(Policy const& policy, quantizer<T, S> const& q, std::size_t cols,
                std::span<const std::uint8_t> packed, exec::input<T> steps, std::span<E> y) {
  export_front::run_dequantize(policy, q, cols,
                               exec::dequantize_arguments<T, E>{packed, cols, {}, steps, {}, y, false});
}

/// The same with LSQ+ offsets.
template <exec::execution_policy Policy, real_scalar T, class S, class E>
  requires(!std::is_same_v<E, T> && exec::stores<Policy, E, T>)
void dequantize(Policy const& policy, quantizer<T, S> const& q, std::size_t cols,
                std::span<const std::uint8_t> packed, exec::input<T> steps, std::span<E> y,
                exec::input<T> offsets) {
  export_front::run_dequantize(policy, q, cols,
                               exec::dequantize_arguments<T, E>{packed, cols, {}, steps, offsets, y, true});
}

}  // namespace stableqat

// exec::simd and exec::par need xsimd (host code only).
#if __has_include(<xsimd/xsimd.hpp>) && !defined(__CUDACC__)
#include "exec/export_simd.hpp"
#endif
