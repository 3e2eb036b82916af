// stableqat/core/half.hpp: portable 16-bit floating-point storage types for the host.
//
// bfloat16 (1 sign, 8 exponent, 7 mantissa bits: float's top half) and float16
// (IEEE 754 binary16: 1, 5, 10 bits, subnormals down to 2^-24) are bit
// containers, not arithmetic types: tensors are *stored* in them and computed
// in float (exec/storage.hpp). Both conversions are defined bit for bit, so
// every backend and the SIMD paths (F16C, AVX-512) give the same bits:
//  - widening to float is exact (every 16-bit value is a float); a float16
//    NaN is returned quiet with its payload (as F16C's vcvtph2ps does), a
//    bfloat16 NaN keeps its bits (bf16 -> float is a 16-bit shift);
//  - narrowing from float rounds to nearest, ties to even (RNE), at every
//    exponent, float16 subnormals included; finite values that round past the
//    largest finite value give ±Inf (float16: |x| >= 65520, bfloat16: |x| >=
//    0x1.FFp127); ±0 and ±Inf keep their sign; NaN gives a quiet NaN with the
//    sign and the top payload bits (as vcvtps2ph and AVX-512 BF16's
//    vcvtneps2bf16 do). This is what PyTorch's `.to(torch.bfloat16/float16)`
//    and CUDA's __float2bfloat16_rn / __float2half_rn compute for every
//    non-NaN float; for NaN they return a canonical NaN instead (so do not
//    compare NaN bits across libraries, only NaN-ness).
// Host code only (the CUDA backend stores __half / __nv_bfloat16 instead).
#pragma once

#include <bit>
#include <cstdint>
#include <type_traits>

namespace stableqat {

/// A bfloat16 value as its 16 bits (the top half of a float). Aggregate:
/// bfloat16{0x3F80} is 1.0; from_float / to_float convert (see the file comment).
struct bfloat16 {
  std::uint16_t bits = 0;

  /// The bfloat16 nearest to value, ties to even; overflow -> ±Inf; NaN -> quiet NaN
  /// (sign and top 7 payload bits kept, quiet bit set).
  [[nodiscard]] static constexpr bfloat16 from_float(float value) noexcept {
    const std::uint32_t u = std::bit_cast<std::uint32_t>(value);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) {
      return {static_cast<std::uint16_t>((u >> 16) | 0x0040u)};
    }
    // Adding 0x7FFF plus the kept half's lowest bit carries into bit 16 exactly
    // when the dropped half exceeds 0x8000, or equals it with an odd kept half.
    // A carry out of the mantissa bumps the exponent, up to Inf: the rounding
    // the format defines.
    return {static_cast<std::uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16)};
  }

  /// The exact float value (the bits shifted into a float's top half).
  [[nodiscard]] constexpr float to_float() const noexcept {
    return std::bit_cast<float>(static_cast<std::uint32_t>(bits) << 16);
  }
};

/// An IEEE 754 binary16 value as its 16 bits. Aggregate: float16{0x3C00} is 1.0.
struct float16 {
  std::uint16_t bits = 0;

  /// The float16 nearest to value, ties to even (subnormals included);
  /// |value| >= 65520 -> ±Inf; NaN -> quiet NaN (sign and top 9 payload bits kept).
  [[nodiscard]] static constexpr float16 from_float(float value) noexcept {
    const std::uint32_t u = std::bit_cast<std::uint32_t>(value);
    const auto sign = static_cast<std::uint16_t>((u >> 16) & 0x8000u);
    const std::uint32_t a = u & 0x7FFFFFFFu;
    if (a > 0x7F800000u) {
      return {static_cast<std::uint16_t>(sign | 0x7E00u | ((a >> 13) & 0x03FFu))};
    }
    if (a >= 0x477FF000u) {  // 65520 = 65504 + half an ulp: the tie rounds to the even 2^16
      return {static_cast<std::uint16_t>(sign | 0x7C00u)};
    }
    if (a >= 0x38800000u) {  // 2^-14 and up: normal float16. Rebias the exponent (127 -> 15)
      const std::uint32_t r = a - 0x38000000u;  // and round the 13 dropped bits as bfloat16 does its 16.
      return {static_cast<std::uint16_t>(sign | ((r + 0x0FFFu + ((r >> 13) & 1u)) >> 13))};
    }
    // Below 2^-14: a multiple of the float16 subnormal unit 2^-24. The float is
    // m * 2^(e - 150) with m = 1.f as a 24-bit integer, i.e. m / 2^(126 - e) units.
    const std::uint32_t e = a >> 23;
    if (e < 102) {  // |value| < 2^-25, half the smallest subnormal: rounds to ±0
      return {sign};
    }
    const std::uint32_t m = (a & 0x007FFFFFu) | 0x00800000u;
    const std::uint32_t shift = 126u - e;  // 14 .. 24
    std::uint32_t q = m >> shift;
    const std::uint32_t rest = m & ((1u << shift) - 1u);
    const std::uint32_t half = 1u << (shift - 1u);
    q += (rest > half || (rest == half && (q & 1u) != 0u)) ? 1u : 0u;  // q = 0x400 is 2^-14, the right encoding
    return {static_cast<std::uint16_t>(sign | q)};
  }

  /// The exact float value; a NaN is returned quiet (payload kept), as F16C does.
  [[nodiscard]] constexpr float to_float() const noexcept {
    const std::uint32_t sign = static_cast<std::uint32_t>(bits & 0x8000u) << 16;
    const std::uint32_t e = (bits >> 10) & 0x1Fu;
    const std::uint32_t m = bits & 0x03FFu;
    if (e == 0x1Fu) {
      return std::bit_cast<float>(sign | 0x7F800000u | (m != 0u ? 0x00400000u : 0u) | (m << 13));
    }
    if (e != 0u) {
      return std::bit_cast<float>(sign | ((e + 112u) << 23) | (m << 13));
    }
    if (m == 0u) {
      return std::bit_cast<float>(sign);
    }
    // Subnormal m * 2^-24: normalise so the leading bit becomes the implicit one.
    const int lead = std::bit_width(m) - 1;  // 0 .. 9
    const std::uint32_t exponent = static_cast<std::uint32_t>(lead + 103);  // 2^(lead - 24), biased by 127
    const std::uint32_t mantissa = (m << (23 - lead)) & 0x007FFFFFu;
    return std::bit_cast<float>(sign | (exponent << 23) | mantissa);
  }
};

static_assert(sizeof(bfloat16) == 2 && sizeof(float16) == 2, "16-bit storage: arrays alias torch's bf16/fp16 buffers");
static_assert(std::is_trivially_copyable_v<bfloat16> && std::is_standard_layout_v<bfloat16>);
static_assert(std::is_trivially_copyable_v<float16> && std::is_standard_layout_v<float16>);
static_assert(float16{0x3C00}.to_float() == 1.0f && bfloat16{0x3F80}.to_float() == 1.0f);

}  // namespace stableqat
