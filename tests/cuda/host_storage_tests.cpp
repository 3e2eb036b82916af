// Host tests (g++) of the CUDA backend's 16-bit storage conversions and errors.
// The references decode and round from the IEEE bit layouts directly.
#include <doctest/doctest.h>

#include <stableqat/exec/cuda/error.hpp>
#include <stableqat/exec/cuda/storage.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace sq = stableqat;

namespace {

template <class H>
std::uint16_t bits_of(H h) {
  return std::bit_cast<std::uint16_t>(h);
}

/// IEEE binary format with `mantissa_bits` fraction bits and `exponent_bits`
/// exponent bits in 16 bits: value of a bit pattern, by the textbook formula.
struct format16 {
  int exponent_bits;
  int mantissa_bits;

  [[nodiscard]] double decode(std::uint16_t bits) const {
    const int sign = bits >> 15;
    const int exponent = (bits >> mantissa_bits) & ((1 << exponent_bits) - 1);
    const int mantissa = bits & ((1 << mantissa_bits) - 1);
    const int bias = (1 << (exponent_bits - 1)) - 1;
    double magnitude;
    if (exponent == (1 << exponent_bits) - 1) {
      magnitude = mantissa == 0 ? std::numeric_limits<double>::infinity() : std::numeric_limits<double>::quiet_NaN();
    } else if (exponent == 0) {
      magnitude = std::ldexp(static_cast<double>(mantissa), 1 - bias - mantissa_bits);
    } else {
      magnitude = std::ldexp(static_cast<double>(mantissa + (1 << mantissa_bits)), exponent - bias - mantissa_bits);
    }
    return sign ? -magnitude : magnitude;
  }

  /// Nearest pattern to v, ties to the even pattern; past the largest finite
  /// value the next "value" is 2^(emax+1), which is +inf (an even pattern).
  [[nodiscard]] std::uint16_t round(double v) const {
    const std::uint16_t sign = std::signbit(v) ? 0x8000 : 0;
    const double a = std::fabs(v);
    const auto inf_bits = static_cast<std::uint16_t>(((1 << exponent_bits) - 1) << mantissa_bits);
    if (std::isnan(v)) {
      return 0x7fff;  // any NaN; compared by class below
    }
    // Finite non-negative patterns 0 .. inf_bits - 1 increase with their value.
    std::uint16_t lo = 0;
    std::uint16_t hi = inf_bits;  // decode(hi) treated as 2^(emax+1)
    const double beyond = std::ldexp(1.0, (1 << (exponent_bits - 1)));
    auto value = [&](std::uint16_t b) { return b == inf_bits ? beyond : decode(b); };
    if (a >= beyond) {
      return static_cast<std::uint16_t>(sign | inf_bits);
    }
    while (hi - lo > 1) {  // invariant: value(lo) <= a < value(hi)
      const auto mid = static_cast<std::uint16_t>((lo + hi) / 2);
      if (value(mid) <= a) {
        lo = mid;
      } else {
        hi = mid;
      }
    }
    const double below = a - value(lo);
    const double above = value(hi) - a;
    std::uint16_t pick = below < above ? lo : (above < below ? hi : (lo % 2 == 0 ? lo : hi));
    return static_cast<std::uint16_t>(sign | pick);
  }
};

constexpr format16 binary16{5, 10};
constexpr format16 bfloat16{8, 7};

template <class H>
H from_bits(std::uint16_t b) {
  return std::bit_cast<H>(b);
}

/// Test inputs for rounding: every midpoint between neighbouring 16-bit values
/// and its float neighbours, plus specials and random floats.
std::vector<float> rounding_inputs(format16 const& f) {
  std::vector<float> in = {0.0f, -0.0f, std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                           std::numeric_limits<float>::max(), std::numeric_limits<float>::denorm_min(),
                           std::numeric_limits<float>::min()};
  const auto inf_bits = static_cast<std::uint16_t>(((1 << f.exponent_bits) - 1) << f.mantissa_bits);
  for (std::uint32_t b = 0; b + 1 < inf_bits; ++b) {
    const double mid = (f.decode(static_cast<std::uint16_t>(b)) + f.decode(static_cast<std::uint16_t>(b + 1))) / 2;
    const auto m = static_cast<float>(mid);  // exact for both formats' midpoints in range
    for (float v : {m, std::nextafter(m, 0.0f), std::nextafter(m, 1e30f)}) {
      in.push_back(v);
      in.push_back(-v);
    }
  }
  const double top = f.decode(static_cast<std::uint16_t>(inf_bits - 1));
  const auto overflow_tie = static_cast<float>(top + (top - f.decode(static_cast<std::uint16_t>(inf_bits - 2))) / 2);
  in.push_back(overflow_tie);
  in.push_back(std::nextafter(overflow_tie, 0.0f));
  std::mt19937 rng(7);
  std::uniform_int_distribution<std::uint32_t> any;
  for (int i = 0; i < 20000; ++i) {
    std::uint32_t b = any(rng);
    float v;
    std::memcpy(&v, &b, sizeof v);
    if (!std::isnan(v)) {
      in.push_back(v);
    }
  }
  return in;
}

template <class H>
void check_storage(format16 const& f) {
  using traits = sq::exec::storage_traits<H>;
  static_assert(std::is_same_v<typename traits::compute_type, float>);
  for (std::uint32_t b = 0; b <= 0xffff; ++b) {
    const double expected = f.decode(static_cast<std::uint16_t>(b));
    const float widened = traits::to_compute(from_bits<H>(static_cast<std::uint16_t>(b)));
    if (std::isnan(expected)) {
      REQUIRE(std::isnan(widened));
    } else {
      REQUIRE(static_cast<double>(widened) == expected);
      REQUIRE(std::signbit(widened) == std::signbit(expected));
    }
  }
  for (float v : rounding_inputs(f)) {
    const std::uint16_t expected = f.round(static_cast<double>(v));
    const std::uint16_t got = bits_of(traits::to_storage(v));
    INFO("v = " << v);
    REQUIRE(got == expected);
  }
  REQUIRE(std::isnan(traits::to_compute(traits::to_storage(std::numeric_limits<float>::quiet_NaN()))));
}

}  // namespace

TEST_CASE("cuda storage: __half widens exactly and rounds to nearest even once") {
  check_storage<__half>(binary16);
  // Spot values from the IEEE binary16 definition.
  using traits = sq::exec::storage_traits<__half>;
  CHECK(bits_of(traits::to_storage(65504.0f)) == 0x7bff);
  CHECK(bits_of(traits::to_storage(65520.0f)) == 0x7c00);         // tie with 2^16 rounds to inf
  CHECK(bits_of(traits::to_storage(65519.996f)) == 0x7bff);
  CHECK(bits_of(traits::to_storage(1.0f + 0x1p-11f)) == 0x3c00);   // tie to even (down)
  CHECK(bits_of(traits::to_storage(1.0f + 3 * 0x1p-11f)) == 0x3c02);  // tie to even (up)
  CHECK(bits_of(traits::to_storage(0x1p-25f)) == 0x0000);         // half the smallest subnormal: to even 0
}

TEST_CASE("cuda storage: __nv_bfloat16 widens exactly and rounds to nearest even once") {
  check_storage<__nv_bfloat16>(bfloat16);
  using traits = sq::exec::storage_traits<__nv_bfloat16>;
  CHECK(bits_of(traits::to_storage(1.0f + 0x1p-8f)) == 0x3f80);
  CHECK(bits_of(traits::to_storage(1.0f + 3 * 0x1p-8f)) == 0x3f82);
}

TEST_CASE("cuda storage: float and double are stored as computed") {
  static_assert(std::is_same_v<sq::exec::storage_traits<float>::compute_type, float>);
  static_assert(std::is_same_v<sq::exec::storage_traits<double>::compute_type, double>);
  static_assert(sq::exec::storage_for<__half, float> && sq::exec::storage_for<__nv_bfloat16, float>);
  static_assert(!sq::exec::storage_for<__half, double> && !sq::exec::storage_for<double, float>);
  static_assert(sq::exec::chunk_elements<float> == 4 && sq::exec::chunk_elements<double> == 2 &&
                sq::exec::chunk_elements<__half> == 8 && sq::exec::chunk_elements<__nv_bfloat16> == 8);
  CHECK(sq::exec::storage_traits<float>::to_storage(0.1f) == 0.1f);
  CHECK(sq::exec::storage_traits<double>::to_compute(0.1) == 0.1);
}

TEST_CASE("cuda_error names the operation, the CUDA message and the error name") {
  const sq::cuda_error e(cudaErrorMemoryAllocation, "stableqat::fake_quantize", "cudaMallocAsync(partial sums)");
  CHECK(e.code() == cudaErrorMemoryAllocation);
  CHECK(std::string(e.what()) == std::string("stableqat::fake_quantize: cudaMallocAsync(partial sums) failed: ") +
                                     cudaGetErrorString(cudaErrorMemoryAllocation) + " (cudaErrorMemoryAllocation)");
  CHECK_NOTHROW(sq::exec::cuda_detail::check_cuda(cudaSuccess, "f", "op"));
  CHECK_THROWS_AS(sq::exec::cuda_detail::check_cuda(cudaErrorInvalidValue, "f", "op"), sq::cuda_error);
}
