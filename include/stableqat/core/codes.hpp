// stableqat/core/codes.hpp: integer codes of a grid and their packed bit fields.
//
// The exported form of a fake-quantized tensor is one integer code per element
// (the grid level fake_quantize rounded it to) plus the steps (and offsets).
// Codes are packed into fixed-width fields, row by row:
//
//   field width  bits in {2, 4, 8, 16}; 8 / bits fields per byte (16: 2 bytes, low byte first)
//   bit order    little-endian: element 0 of a byte in its lowest bits, i.e. element j of a
//                row occupies bits [j*bits, (j+1)*bits) of the row's bit stream, bit k of the
//                stream being bit k % 8 of byte k / 8
//   signedness   two's complement in the field when the grid has negative levels (qmin < 0),
//                plain binary otherwise
//   rows         rows of `cols` codes, each padded with zero bits to a whole byte
//
// This header holds the format's arithmetic only (host and device); the
// front-end is stableqat/export.hpp.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <string>
#include <type_traits>

#include "config.hpp"
#include "errors.hpp"
#include "grid.hpp"
#include "math.hpp"

namespace stableqat {

/// Integer types that hold codes. The type's signedness is the field's: signed
/// grids (qmin < 0) use int8_t / int16_t, unsigned grids uint8_t / uint16_t, so
/// that codes flow unchanged from quantize_to_codes through pack_codes and
/// unpack_codes and a field value has exactly one meaning.
template <class C>
concept code_type = std::same_as<C, std::int8_t> || std::same_as<C, std::uint8_t> ||
                    std::same_as<C, std::int16_t> || std::same_as<C, std::uint16_t>;

/// True for the field widths the packed format supports: 2, 4, 8 and 16 bits.
constexpr bool is_packable_bits(int bits) noexcept { return bits == 2 || bits == 4 || bits == 8 || bits == 16; }

/// Smallest and largest value of a `bits`-wide field (two's complement when is_signed).
constexpr long field_min(int bits, bool is_signed) noexcept { return is_signed ? -(1L << (bits - 1)) : 0L; }
constexpr long field_max(int bits, bool is_signed) noexcept {
  return is_signed ? (1L << (bits - 1)) - 1 : (1L << bits) - 1;
}

/// The packed field a grid's codes use: signed iff qmin < 0, and the narrowest
/// of 2, 4, 8, 16 bits that holds [qmin, qmax]. E.g. signed_grid(2) -> 2-bit
/// signed, ternary_grid() and the binary signed_grid(1) -> 2-bit signed (the
/// binary grid has three codes, -1, 0, +1, since sign(0) = 0), unsigned_grid(3)
/// -> 4-bit unsigned, signed_grid(12) -> 16-bit signed.
struct code_field {
  int bits;
  bool is_signed;

  [[nodiscard]] constexpr long min() const noexcept { return field_min(bits, is_signed); }
  [[nodiscard]] constexpr long max() const noexcept { return field_max(bits, is_signed); }
  constexpr bool operator==(code_field const&) const noexcept = default;
};

/// code_field of grid g; throws std::invalid_argument (naming "grid") for an
/// integer_grid wider than 16 bits.
constexpr code_field code_field_of(grid const& g) {
  const bool is_signed = g.qmin() < 0;
  for (int bits : {2, 4, 8, 16}) {
    if (field_min(bits, is_signed) <= g.qmin() && g.qmax() <= field_max(bits, is_signed)) {
      return {bits, is_signed};
    }
  }
  detail::throw_invalid_argument("stableqat::code_field_of", "grid.qmax()", g.qmax(),
                                 "with qmin = " + std::to_string(g.qmin()) + " does not fit a 16-bit field");
}

/// Field width of grid g's codes: the `bits` to pass to pack_codes / packed_bytes.
constexpr int code_bits(grid const& g) { return code_field_of(g).bits; }

/// The code quantize_to_codes writes for a NaN input: the grid level nearest
/// to 0, clamp(0, qmin, qmax) (0 on every signed, unsigned, ternary and binary
/// grid). fake_quantize gives NaN there; the export cannot, so NaN does not
/// survive the round trip (it comes back as s * nan_code + b).
constexpr int nan_code(grid const& g) noexcept {
  return g.qmin() > 0 ? g.qmin() : (g.qmax() < 0 ? g.qmax() : 0);
}

/// Bytes of one packed row of `cols` codes: ceil(cols * bits / 8). bits must be packable.
STABLEQAT_HD constexpr std::size_t packed_row_bytes(std::size_t cols, int bits) noexcept {
  return (cols * static_cast<std::size_t>(bits) + 7) / 8;
}

// ---------------------------------------------------------------------------
// Levels <-> codes
// ---------------------------------------------------------------------------

/// The code of a level and the level of a code, for a grid's level map (the
/// `Levels` of grid.hpp). On uniform and binary grids the level is the code
/// (an integer-valued float). A grid kind whose levels are not integers (the
/// stretched elastic grid: level (c + shift) / m for code c) adds the members
/// code_of_level and level_of_code to its level map (see level_hook in
/// grid.hpp); nothing else in the export changes.
template <class Levels, class V>
STABLEQAT_HD constexpr V code_of_level(Levels const& levels, V level) noexcept {
  return apply_level_hook<level_hook::code_of_level>(levels, level);
}
template <class Levels, class V>
STABLEQAT_HD constexpr V level_of_code(Levels const& levels, V code) noexcept {
  return apply_level_hook<level_hook::level_of_code>(levels, code);
}

/// The code of one element (or batch) as a V holding an integer: the level's
/// code, and `nan` (nan_code(grid)) where the level is NaN.
template <class Levels, class V>
STABLEQAT_HD constexpr V code_or_nan_code(Levels const& levels, V level, V nan) noexcept {
  const V code = code_of_level(levels, level);
  return select(code == code, code, nan);
}

// ---------------------------------------------------------------------------
// Bit fields
// ---------------------------------------------------------------------------

/// The low `bits` bits of code c (two's complement for negative codes).
template <code_type C>
STABLEQAT_HD constexpr std::uint32_t field_of_code(C c, int bits) noexcept {
  return static_cast<std::uint32_t>(c) & ((std::uint32_t{1} << bits) - 1u);
}

/// The code a `bits`-wide field value f stands for: sign-extended for signed C.
template <code_type C>
STABLEQAT_HD constexpr C code_of_field(std::uint32_t f, int bits) noexcept {
  if constexpr (std::numeric_limits<C>::is_signed) {
    const std::uint32_t sign = std::uint32_t{1} << (bits - 1);
    return static_cast<C>(static_cast<std::int32_t>(f ^ sign) - static_cast<std::int32_t>(sign));
  } else {
    return static_cast<C>(f);
  }
}

/// Field j of a packed row (bits in {2, 4, 8, 16}; fields never straddle bytes
/// except 16-bit ones, stored low byte first).
STABLEQAT_HD constexpr std::uint32_t read_field(std::uint8_t const* row, std::size_t j, int bits) noexcept {
  if (bits == 16) {
    return static_cast<std::uint32_t>(row[2 * j]) | (static_cast<std::uint32_t>(row[2 * j + 1]) << 8);
  }
  const std::size_t bit = j * static_cast<std::size_t>(bits);
  return (static_cast<std::uint32_t>(row[bit / 8]) >> (bit % 8)) & ((std::uint32_t{1} << bits) - 1u);
}

/// Calls f(std::integral_constant<int, B>{}) for the packable width B == bits
/// (bits must be packable), so row loops are compiled per field width.
template <class F>
constexpr decltype(auto) visit_bits(int bits, F&& f) {
  switch (bits) {
    case 2:
      return f(std::integral_constant<int, 2>{});
    case 4:
      return f(std::integral_constant<int, 4>{});
    case 8:
      return f(std::integral_constant<int, 8>{});
    default:
      return f(std::integral_constant<int, 16>{});
  }
}

/// Packs one row of `cols` codes into packed_row_bytes(cols, Bits) bytes at
/// `out`: code j into bits [j*Bits, (j+1)*Bits) of the row, padding bits 0.
/// Codes must fit the field (the front-end checks).
template <int Bits, code_type C>
constexpr void pack_row(C const* codes, std::size_t cols, std::uint8_t* out) noexcept {
  if constexpr (Bits == 16) {
    for (std::size_t j = 0; j < cols; ++j) {
      const std::uint32_t f = field_of_code(codes[j], 16);
      out[2 * j] = static_cast<std::uint8_t>(f & 0xffu);
      out[2 * j + 1] = static_cast<std::uint8_t>(f >> 8);
    }
  } else if constexpr (Bits == 8 && sizeof(C) == 1) {
    for (std::size_t j = 0; j < cols; ++j) {
      out[j] = static_cast<std::uint8_t>(codes[j]);
    }
  } else {
    constexpr std::size_t per_byte = 8 / Bits;
    const std::size_t full = cols / per_byte;
    std::size_t b = 0;
    if constexpr (sizeof(C) == 1) {
      // per_byte one-byte codes read as one little-endian word; the fields are
      // gathered with shifts (a loop the compiler vectorizes).
      using word = std::conditional_t<Bits == 2, std::uint32_t, std::uint16_t>;
      constexpr word mask = Bits == 2 ? word(0x03030303u) : word(0x0f0fu);
      for (; b < full; ++b) {
        word w = 0;
        for (std::size_t e = 0; e < per_byte; ++e) {
          w = static_cast<word>(w | (static_cast<word>(static_cast<std::uint8_t>(codes[b * per_byte + e])) << (8 * e)));
        }
        w = static_cast<word>(w & mask);
        std::uint32_t byte = 0;
        for (std::size_t e = 0; e < per_byte; ++e) {
          byte |= static_cast<std::uint32_t>(w) >> (e * (8 - Bits));
        }
        out[b] = static_cast<std::uint8_t>(byte);
      }
    }
    for (; b < full; ++b) {
      std::uint32_t byte = 0;
      for (std::size_t e = 0; e < per_byte; ++e) {
        byte |= field_of_code(codes[b * per_byte + e], Bits) << (e * Bits);
      }
      out[b] = static_cast<std::uint8_t>(byte);
    }
    const std::size_t rest = cols - full * per_byte;
    if (rest != 0) {
      std::uint32_t byte = 0;
      for (std::size_t e = 0; e < rest; ++e) {
        byte |= field_of_code(codes[full * per_byte + e], Bits) << (e * Bits);
      }
      out[full] = static_cast<std::uint8_t>(byte);
    }
  }
}

/// Unpacks one row of `cols` codes from `in` (the inverse of pack_row; padding
/// bits are ignored).
template <int Bits, code_type C>
constexpr void unpack_row(std::uint8_t const* in, std::size_t cols, C* codes) noexcept {
  if constexpr (Bits == 16) {
    for (std::size_t j = 0; j < cols; ++j) {
      codes[j] = code_of_field<C>(static_cast<std::uint32_t>(in[2 * j]) | (static_cast<std::uint32_t>(in[2 * j + 1]) << 8), 16);
    }
  } else {
    constexpr std::size_t per_byte = 8 / Bits;
    constexpr std::uint32_t mask = (std::uint32_t{1} << Bits) - 1u;
    const std::size_t full = cols / per_byte;
    for (std::size_t b = 0; b < full; ++b) {
      const std::uint32_t byte = in[b];
      for (std::size_t e = 0; e < per_byte; ++e) {
        codes[b * per_byte + e] = code_of_field<C>((byte >> (e * Bits)) & mask, Bits);
      }
    }
    for (std::size_t j = full * per_byte; j < cols; ++j) {
      codes[j] = code_of_field<C>(read_field(in, j, Bits), Bits);
    }
  }
}

}  // namespace stableqat
