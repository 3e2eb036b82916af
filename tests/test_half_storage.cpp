// bfloat16 / float16 storage on the host backends (core/half.hpp, exec/storage.hpp).
//
//  1. Widening: all 65536 bit patterns of each type against values built here
//     from sign, exponent and mantissa in long double (ldexp), independent of
//     the library's bit manipulation.
//  2. Rounding float -> 16 bits: against a reference that searches the sorted
//     table of those long double values for the two neighbours of |x| and
//     picks the nearer, ties to the even pattern, past the largest finite value
//     towards the next power of two (i.e. Inf). Inputs: every value, every
//     midpoint and the floats just beside it, both signs, subnormals, ±0,
//     ±Inf, NaN payloads, and a stride through all 2^32 float patterns.
//  3. The SIMD load/store hook (simd/storage_access.hpp) equals the scalar
//     conversions bit for bit on the same inputs, for every register family
//     this build enables (zmm, ymm, xmm).
//  4. exec::seq, exec::simd and exec::par with 16-bit x, dy, y, dx: the very
//     bits of the same backend run in float on the widened inputs followed by
//     one rounding of y and dx (the contract), and the same dsteps/doffsets
//     bits; odd lengths (scalar heads/tails), every layout once, offsets,
//     special values, > 1 chunk so exec::par runs threads.
#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <stableqat/exec/par.hpp>
#include <stableqat/exec/simd.hpp>
#include <stableqat/stableqat.hpp>

#include "reference.hpp"

namespace sq = stableqat;

namespace {

// ---------------------------------------------------------------------------
// The formats, described by their field widths only
// ---------------------------------------------------------------------------

struct format {
  int exponent_bits;
  int mantissa_bits;
  [[nodiscard]] std::uint32_t exponent_mask() const { return (1u << exponent_bits) - 1u; }
  [[nodiscard]] int bias() const { return (1 << (exponent_bits - 1)) - 1; }
  [[nodiscard]] std::uint16_t infinity() const { return static_cast<std::uint16_t>(exponent_mask() << mantissa_bits); }
  [[nodiscard]] std::uint16_t max_finite() const { return static_cast<std::uint16_t>(infinity() - 1u); }
};

constexpr format bf16_format{8, 7};
constexpr format fp16_format{5, 10};

template <class H>
constexpr format format_of = std::is_same_v<H, sq::bfloat16> ? bf16_format : fp16_format;

/// The value of the non-NaN pattern `bits`, from its fields, in long double.
long double reference_value(format f, std::uint16_t bits) {
  const bool negative = (bits >> 15) != 0;
  const std::uint32_t e = (bits >> f.mantissa_bits) & f.exponent_mask();
  const std::uint32_t m = bits & ((1u << f.mantissa_bits) - 1u);
  long double magnitude;
  if (e == f.exponent_mask()) {
    magnitude = std::numeric_limits<long double>::infinity();
  } else if (e == 0) {  // subnormal: m * 2^(1 - bias - mantissa_bits)
    magnitude = std::ldexp(static_cast<long double>(m), 1 - f.bias() - f.mantissa_bits);
  } else {
    magnitude = std::ldexp(static_cast<long double>(m + (1u << f.mantissa_bits)),
                           static_cast<int>(e) - f.bias() - f.mantissa_bits);
  }
  return negative ? -magnitude : magnitude;
}

bool is_nan_pattern(format f, std::uint16_t bits) {
  return ((bits >> f.mantissa_bits) & f.exponent_mask()) == f.exponent_mask() &&
         (bits & ((1u << f.mantissa_bits) - 1u)) != 0;
}

std::uint32_t bits_of(float v) { return std::bit_cast<std::uint32_t>(v); }

std::string hex(std::uint32_t v) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%X", v);
  return text;
}

/// reference_value of every positive finite pattern, computed once per format.
std::vector<long double> const& positive_values(format f) {
  static std::vector<long double> tables[2];
  std::vector<long double>& t = tables[f.exponent_bits == 8 ? 0 : 1];
  if (t.empty()) {
    for (std::uint32_t p = 0; p <= f.max_finite(); ++p) t.push_back(reference_value(f, static_cast<std::uint16_t>(p)));
  }
  return t;
}

/// The nearest 16-bit pattern to the non-NaN float x, ties to even, found
/// by binary search over the positive finite patterns (whose values increase
/// with the pattern); above the largest finite value the next step would be
/// 2^(emax + 1), whose pattern is Inf.
std::uint16_t reference_round(format f, float x) {
  const auto sign = static_cast<std::uint16_t>(std::signbit(x) ? 0x8000u : 0u);
  const long double a = std::fabs(static_cast<long double>(x));
  if (std::isinf(a)) {
    return static_cast<std::uint16_t>(sign | f.infinity());
  }
  std::vector<long double> const& value = positive_values(f);
  std::uint32_t lo = 0;
  std::uint32_t hi = f.max_finite();
  if (a >= value[hi]) {
    lo = hi;
  } else {
    while (hi - lo > 1) {  // invariant: value[lo] <= a < value[hi]
      const std::uint32_t mid = (lo + hi) / 2;
      (value[mid] <= a ? lo : hi) = mid;
    }
  }
  const long double below = value[lo];
  const long double above = lo == f.max_finite() ? std::ldexp(1.0L, f.bias() + 1) : value[lo + 1];
  const long double down = a - below;
  const long double up = above - a;
  const std::uint32_t pick = down < up ? lo : up < down ? lo + 1 : (lo % 2 == 0 ? lo : lo + 1);
  return static_cast<std::uint16_t>(sign | pick);
}

/// The rounding of a NaN: quiet, sign and top payload bits kept (the hardware
/// rule of vcvtps2ph / vcvtneps2bf16, restated from the field widths).
std::uint16_t reference_nan(format f, float x) {
  const std::uint32_t u = bits_of(x);
  const std::uint32_t quiet = 1u << (f.mantissa_bits - 1);
  return static_cast<std::uint16_t>(((u >> 16) & 0x8000u) | f.infinity() | quiet |
                                    ((u & 0x007FFFFFu) >> (23 - f.mantissa_bits)));
}

/// Every 16-bit value, each midpoint of two neighbours and the floats just
/// beside both, with both signs; specials; and a stride through all floats.
template <class H>
std::vector<float> rounding_inputs() {
  constexpr format f = format_of<H>;
  std::vector<float> out;
  for (std::uint32_t p = 0; p <= f.max_finite(); ++p) {
    const long double v = reference_value(f, static_cast<std::uint16_t>(p));
    const long double next = p == f.max_finite() ? std::ldexp(1.0L, f.bias() + 1)
                                                  : reference_value(f, static_cast<std::uint16_t>(p + 1));
    const auto mid = static_cast<float>((v + next) / 2);  // exact: 1 + mantissa_bits + 1 <= 24 bits
    REQUIRE(static_cast<long double>(mid) == (v + next) / 2);
    for (float x : {static_cast<float>(v), mid, std::nextafter(mid, 0.0f),
                    std::nextafter(mid, std::numeric_limits<float>::infinity())}) {
      out.push_back(x);
      out.push_back(-x);
    }
  }
  const float inf = std::numeric_limits<float>::infinity();
  for (std::uint32_t u : {0x7F800001u, 0xFF800001u, 0x7FA00000u, 0x7FC00000u, 0x7FC00001u, 0xFFFFFFFFu, 0x7FFFE000u,
                          0x00000001u, 0x807FFFFFu, 0x7F7FFFFFu, 0x33000000u, 0x33000001u, 0x32FFFFFFu}) {
    out.push_back(std::bit_cast<float>(u));
  }
  out.push_back(inf);
  out.push_back(-inf);
  for (std::uint64_t u = 0; u < (std::uint64_t{1} << 32); u += 2039) {  // a prime stride: every exponent, many mantissas
    out.push_back(std::bit_cast<float>(static_cast<std::uint32_t>(u)));
  }
  return out;
}

template <class H>
std::uint16_t expected_rounding(float x) {
  return std::isnan(x) ? reference_nan(format_of<H>, x) : reference_round(format_of<H>, x);
}

// ---------------------------------------------------------------------------
// 1-2. Scalar conversions
// ---------------------------------------------------------------------------

TEST_CASE_TEMPLATE("widening every 16-bit pattern is exact", H, sq::bfloat16, sq::float16) {
  constexpr format f = format_of<H>;
  std::size_t checked = 0;
  for (std::uint32_t p = 0; p < 65536; ++p) {
    const auto bits = static_cast<std::uint16_t>(p);
    const float widened = H{bits}.to_float();
    if (is_nan_pattern(f, bits)) {
      // NaN: the payload moves up with the mantissa; float16 NaNs come back quiet (as F16C).
      const std::uint32_t payload = (bits & ((1u << f.mantissa_bits) - 1u)) << (23 - f.mantissa_bits);
      const std::uint32_t quiet = std::is_same_v<H, sq::float16> ? 0x00400000u : 0u;
      CHECK(bits_of(widened) == (((bits & 0x8000u) << 16) | 0x7F800000u | quiet | payload));
      continue;
    }
    const long double v = reference_value(f, bits);
    CHECK_MESSAGE(static_cast<long double>(widened) == v, "pattern ", p);
    CHECK(std::signbit(widened) == ((bits & 0x8000u) != 0));  // ±0 keep their sign
    ++checked;
  }
  CHECK(checked == 65536 - 2 * ((1u << f.mantissa_bits) - 1u));  // all but the NaN patterns
}

TEST_CASE_TEMPLATE("rounding to 16 bits is to nearest, ties to even, overflow to Inf", H, sq::bfloat16,
                   sq::float16) {
  const std::vector<float> inputs = rounding_inputs<H>();
  std::size_t mismatches = 0;
  for (float x : inputs) {
    const std::uint16_t got = H::from_float(x).bits;
    const std::uint16_t want = expected_rounding<H>(x);
    if (got != want && ++mismatches <= 10) {
      FAIL_CHECK("x bits ", hex(bits_of(x)), ": got ", hex(got), ", want ", hex(want));
    }
  }
  CHECK(mismatches == 0);
  MESSAGE(inputs.size(), " floats rounded");
}

TEST_CASE("rounding landmarks, written out") {
  // float16: 65504 is the largest finite value; 65519.99 rounds down, 65520 (the tie) up to Inf.
  CHECK(sq::float16::from_float(65504.0f).bits == 0x7BFF);
  CHECK(sq::float16::from_float(std::nextafter(65520.0f, 0.0f)).bits == 0x7BFF);
  CHECK(sq::float16::from_float(65520.0f).bits == 0x7C00);
  CHECK(sq::float16::from_float(-1e6f).bits == 0xFC00);
  // Smallest subnormal 2^-24; 2^-25 is the tie between 0 and it: to the even 0.
  CHECK(sq::float16::from_float(std::ldexp(1.0f, -24)).bits == 0x0001);
  CHECK(sq::float16::from_float(std::ldexp(1.0f, -25)).bits == 0x0000);
  CHECK(sq::float16::from_float(std::ldexp(3.0f, -25)).bits == 0x0002);  // 1.5 units: tie to even 2
  CHECK(sq::float16::from_float(-std::ldexp(1.0f, -26)).bits == 0x8000);
  // 1 + 2^-11 is the tie between 1 and 1 + 2^-10: to the even 1.
  CHECK(sq::float16::from_float(1.0f + std::ldexp(1.0f, -11)).bits == 0x3C00);
  CHECK(sq::float16::from_float(1.0f + 3 * std::ldexp(1.0f, -11)).bits == 0x3C02);
  // bfloat16: 1 + 2^-8 ties to 1; 1 + 3 * 2^-8 ties up to the even 1 + 2^-6.
  CHECK(sq::bfloat16::from_float(1.0f + std::ldexp(1.0f, -8)).bits == 0x3F80);
  CHECK(sq::bfloat16::from_float(1.0f + 3 * std::ldexp(1.0f, -8)).bits == 0x3F82);
  CHECK(sq::bfloat16::from_float(std::numeric_limits<float>::max()).bits == 0x7F80);
  CHECK(sq::bfloat16::from_float(std::bit_cast<float>(0x7F7F7FFFu)).bits == 0x7F7F);
  CHECK(sq::bfloat16::from_float(std::numeric_limits<float>::denorm_min()).bits == 0x0000);
  // NaN stays NaN and becomes quiet, sign kept.
  CHECK(sq::bfloat16::from_float(std::bit_cast<float>(0xFF800001u)).bits == 0xFFC0);
  CHECK(sq::float16::from_float(std::bit_cast<float>(0x7F800001u)).bits == 0x7E00);
  CHECK(std::isnan(sq::float16{0x7C01}.to_float()));
  CHECK(std::isinf(sq::float16{0xFC00}.to_float()));
}

// ---------------------------------------------------------------------------
// 3. The SIMD load/store hook
// ---------------------------------------------------------------------------

template <class A, class H>
void check_hook(std::vector<float> const& inputs) {
  using F = xsimd::batch<float, A>;
  constexpr std::size_t n = F::size;
  std::size_t mismatches = 0;
  std::vector<H> stored(n);
  for (std::size_t i = 0; i + n <= inputs.size(); i += n) {
    sq::exec::simd_detail::store_storage<A>(stored.data(), F::load_unaligned(inputs.data() + i));
    for (std::size_t j = 0; j < n; ++j) {
      mismatches += stored[j].bits != H::from_float(inputs[i + j]).bits ? 1 : 0;
    }
  }
  CHECK_MESSAGE(mismatches == 0, A::name(), ": store");
  std::vector<H> all(65536);
  for (std::uint32_t p = 0; p < 65536; ++p) {
    all[p] = H{static_cast<std::uint16_t>(p)};
  }
  alignas(64) float lanes[64];
  mismatches = 0;
  for (std::size_t i = 0; i < all.size(); i += n) {
    sq::exec::simd_detail::load_storage<A>(all.data() + i).store_aligned(lanes);
    for (std::size_t j = 0; j < n; ++j) {
      mismatches += bits_of(lanes[j]) != bits_of(all[i + j].to_float()) ? 1 : 0;
    }
  }
  CHECK_MESSAGE(mismatches == 0, A::name(), ": load");
}

TEST_CASE_TEMPLATE("the SIMD load/store hook equals the scalar conversions", H, sq::bfloat16, sq::float16) {
  const std::vector<float> inputs = rounding_inputs<H>();
  check_hook<sq::exec::simd_detail::arch, H>(inputs);
#if defined(__AVX512F__) && defined(__AVX2__)
  check_hook<xsimd::fma3<xsimd::avx2>, H>(inputs);
#endif
#if defined(__AVX__) && defined(__SSE2__)
  check_hook<xsimd::sse2, H>(inputs);
#endif
  MESSAGE("register float16: ", sq::exec::simd_detail::has_register_float16<sq::exec::simd_detail::arch>);
}

// ---------------------------------------------------------------------------
// 4. The backends with 16-bit storage
// ---------------------------------------------------------------------------

using f1 = sq::fourier_surrogate<1>;

static_assert(sq::exec::stores<sq::exec::sequenced_policy, sq::bfloat16, float>);
static_assert(sq::exec::stores<sq::exec::parallel_policy, sq::float16, float>);
static_assert(!sq::exec::stores<sq::exec::simd_policy, sq::float16, double>);  // 16-bit is computed in float only

struct storage_case {
  std::string name;
  sq::grid grid;
  sq::step_layout layout;
  std::size_t numel;
  std::size_t steps;
  bool with_offsets;
};

template <class H>
std::vector<H> to_storage_vector(std::vector<float> const& v) {
  std::vector<H> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = H::from_float(v[i]);
  return out;
}

template <class H>
std::vector<float> widened(std::vector<H> const& v) {
  std::vector<float> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = v[i].to_float();
  return out;
}

template <class P, class H>
void check_backend(P const& policy, storage_case const& c) {
  CAPTURE(c.name);
  std::mt19937 rng(static_cast<unsigned>(c.numel));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> xf(c.numel), dyf(c.numel), steps(c.steps), offsets(c.with_offsets ? c.steps : 0);
  for (float& s : steps) s = 0.05f + 0.2f * std::fabs(normal(rng));
  for (float& b : offsets) b = 0.1f * normal(rng);
  for (std::size_t i = 0; i < c.numel; ++i) {
    xf[i] = 0.3f * normal(rng);
    dyf[i] = normal(rng) * (i % 7 == 0 ? 1e-6f : 1.0f);  // small dy: subnormal float16 dx
  }
  const float inf = std::numeric_limits<float>::infinity();
  const float specials[] = {std::numeric_limits<float>::quiet_NaN(), inf, -inf, 0.0f, -0.0f, 1e-7f, 100.0f};
  for (std::size_t j = 0; j < std::size(specials) && 3 * j < c.numel; ++j) xf[3 * j] = specials[j];

  // Inputs live in 16-bit storage; the float run sees exactly their values.
  const std::vector<H> x = to_storage_vector<H>(xf);
  const std::vector<H> dy = to_storage_vector<H>(dyf);
  const std::vector<float> xw = widened(x);
  const std::vector<float> dyw = widened(dy);
  const sq::quantizer<float, f1> q{c.grid, f1{}, c.layout};

  std::vector<float> y_float(c.numel), dx_float(c.numel), ds_float(c.steps), db_float(offsets.size());
  std::vector<H> y(c.numel), dx(c.numel);
  std::vector<float> ds(c.steps), db(offsets.size());
  if (c.with_offsets) {
    sq::fake_quantize(policy, q, xw, steps, y_float, offsets);
    sq::fake_quantize(policy, q, x, steps, y, offsets);
    sq::fake_quantize_backward(policy, q, xw, steps, dyw, dx_float, ds_float, offsets, db_float);
    sq::fake_quantize_backward(policy, q, x, steps, dy, dx, ds, offsets, db);
  } else {
    sq::fake_quantize(policy, q, xw, steps, y_float);
    sq::fake_quantize(policy, q, x, steps, y);
    sq::fake_quantize_backward(policy, q, xw, steps, dyw, dx_float, ds_float);
    sq::fake_quantize_backward(policy, q, x, steps, dy, dx, ds);
  }
  std::size_t y_bad = 0, dx_bad = 0, nan_y = 0;
  for (std::size_t i = 0; i < c.numel; ++i) {
    y_bad += y[i].bits != H::from_float(y_float[i]).bits ? 1 : 0;
    dx_bad += dx[i].bits != H::from_float(dx_float[i]).bits ? 1 : 0;
    nan_y += std::isnan(y[i].to_float()) ? 1 : 0;
  }
  CHECK(y_bad == 0);
  CHECK(dx_bad == 0);
  CHECK(nan_y == 1);  // the one NaN input, and nothing else
  for (std::size_t k = 0; k < c.steps; ++k) {
    CHECK(reference::same_bits(ds[k], ds_float[k]));
  }
  for (std::size_t k = 0; k < db.size(); ++k) {
    CHECK(reference::same_bits(db[k], db_float[k]));
  }
}

std::vector<storage_case> storage_cases() {
  return {
      {"per_tensor, 37 elements (heads and tails)", sq::signed_grid(4), sq::per_tensor(), 37, 1, false},
      {"per_channel 5 x 203, offsets", sq::signed_grid(2), sq::per_channel(203), 5 * 203, 5, true},
      {"per_group 67, binary grid", sq::signed_grid(1), sq::per_group(67), 67 * 15, 15, false},
      {"per_column 7 channels x 29 rows, ternary", sq::ternary_grid(), sq::per_column(7), 7 * 29, 7, false},
      {"per_tensor, 3 chunks + 5", sq::unsigned_grid(3), sq::per_tensor(), 3 * 65536 + 5, 1, false},
  };
}

TEST_CASE_TEMPLATE("16-bit storage: each backend gives its float results rounded once", H, sq::bfloat16,
                   sq::float16) {
  for (storage_case const& c : storage_cases()) {
    check_backend<sq::exec::sequenced_policy, H>(sq::exec::seq, c);
    check_backend<sq::exec::simd_policy, H>(sq::exec::simd, c);
    check_backend<sq::exec::parallel_policy, H>(sq::exec::par.with_threads(2), c);
  }
}

}  // namespace
