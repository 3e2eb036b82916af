// round_half_even against std::nearbyint, and the integer grids.
#include <doctest/doctest.h>

#include <bit>
#include <cfenv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <stableqat/core/grid.hpp>
#include <stableqat/core/rounding.hpp>

#include "reference.hpp"

namespace sq = stableqat;

// --- constant evaluation ----------------------------------------------------
static_assert(sq::round_half_even(0.5f) == 0.0f);
static_assert(sq::round_half_even(1.5f) == 2.0f);
static_assert(sq::round_half_even(2.5f) == 2.0f);
static_assert(sq::round_half_even(-2.5) == -2.0);
static_assert(sq::round_half_even(-3.5) == -4.0);
static_assert(sq::round_half_even(0.49999997f) == 0.0f);  // largest float below 1/2
static_assert(sq::round_half_even(2.6) == 3.0);
static_assert(std::bit_cast<std::uint32_t>(sq::round_half_even(-0.25f)) == 0x80000000u);        // -0
static_assert(std::bit_cast<std::uint64_t>(sq::round_half_even(-0.0)) == 0x8000000000000000u);  // -0 kept
static_assert(sq::round_half_even(8388609.0f) == 8388609.0f);                // 2^23 + 1
static_assert(sq::round_half_even(4503599627370497.0) == 4503599627370497.0);  // 2^52 + 1
static_assert(sq::round_half_even(4194304.5f) == 4194304.0f);                // 2^22 + 1/2: tie to even
static_assert(sq::round_half_even(std::numeric_limits<double>::infinity()) == std::numeric_limits<double>::infinity());
static_assert(sq::round_half_even(std::numeric_limits<float>::quiet_NaN()) !=
              sq::round_half_even(std::numeric_limits<float>::quiet_NaN()));

constexpr sq::grid two_bit = sq::signed_grid(2);
static_assert(two_bit.qmin() == -2 && two_bit.qmax() == 1 && !two_bit.is_binary());
static_assert(sq::signed_grid(1).is_binary());
static_assert(sq::unsigned_grid(4).qmax() == 15);

namespace {

// Values that matter for round-half-even in type T.
template <class T>
std::vector<T> rounding_cases() {
  using limits = std::numeric_limits<T>;
  constexpr T inf = limits::infinity();
  const T two_to_p = T(1) / limits::epsilon();  // 2^23 or 2^52
  std::vector<T> values;
  auto add_with_neighbours = [&](T x) {
    for (T s : {x, -x}) {
      values.push_back(s);
      values.push_back(std::nextafter(s, inf));
      values.push_back(std::nextafter(s, -inf));
    }
  };
  // Ties k + 1/2 and integers, small k.
  for (int k = 0; k <= 4096; ++k) {
    add_with_neighbours(static_cast<T>(k) + T(0.5));
    add_with_neighbours(static_cast<T>(k));
  }
  // Ties just below 2^p, where k + 1/2 is still representable (p - 1 bits of integer).
  for (int j = 1; j <= 2048; ++j) {
    const T k = two_to_p / 2 - static_cast<T>(j);
    add_with_neighbours(k + T(0.5));
  }
  // At and above 2^p every value is an integer.
  for (T x : {two_to_p, two_to_p + 1, two_to_p * 2 - 1, two_to_p * 2, two_to_p - T(0.5), two_to_p - 1,
              T(1e30), limits::max(), limits::min(), limits::denorm_min(), T(0.25), T(0.75)}) {
    add_with_neighbours(x);
  }
  values.push_back(inf);
  values.push_back(-inf);
  values.push_back(limits::quiet_NaN());
  values.push_back(-limits::quiet_NaN());
  return values;
}

template <class T>
void check_against_nearbyint(std::vector<T> const& values) {
  REQUIRE(std::fegetround() == FE_TONEAREST);
  std::size_t mismatches = 0;
  for (T x : values) {
    const T expected = std::nearbyint(x);
    const T got = sq::round_half_even(x);
    if (!reference::same_bits(got, expected)) {
      if (++mismatches <= 10) {
        FAIL_CHECK("round_half_even(" << x << ") = " << got << ", std::nearbyint gives " << expected
                                      << " (signbit " << std::signbit(got) << " vs " << std::signbit(expected) << ")");
      }
    }
  }
  CHECK(mismatches == 0);
}

}  // namespace

TEST_CASE_TEMPLATE("round_half_even: bit-exact with std::nearbyint on ties, ulp neighbours, +-0, huge, NaN, Inf", T,
                   float, double) {
  const auto values = rounding_cases<T>();
  CHECK(values.size() > 40000);
  check_against_nearbyint(values);

  // Spot checks written out by hand.
  CHECK(sq::round_half_even(T(0.5)) == T(0));
  CHECK(sq::round_half_even(T(-0.5)) == T(0));
  CHECK(std::signbit(sq::round_half_even(T(-0.5))));
  CHECK_FALSE(std::signbit(sq::round_half_even(T(0.0))));
  CHECK(std::signbit(sq::round_half_even(T(-0.0))));
  CHECK(std::signbit(sq::round_half_even(-std::numeric_limits<T>::denorm_min())));
  CHECK(sq::round_half_even(T(3.5)) == T(4));
  CHECK(sq::round_half_even(T(-4.5)) == T(-4));
  CHECK(sq::round_half_even(std::nextafter(T(2.5), T(3))) == T(3));
  CHECK(sq::round_half_even(std::nextafter(T(2.5), T(2))) == T(2));
  CHECK(std::isnan(sq::round_half_even(std::numeric_limits<T>::quiet_NaN())));
  CHECK(sq::round_half_even(-std::numeric_limits<T>::infinity()) == -std::numeric_limits<T>::infinity());
}

TEST_CASE_TEMPLATE("round_half_even: bit-exact with std::nearbyint on random values and random bit patterns", T,
                   float, double) {
  using bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  std::mt19937_64 rng(20260427);
  std::vector<T> values;
  std::uniform_real_distribution<double> moderate(-1000.0, 1000.0);
  for (int i = 0; i < 200000; ++i) {
    values.push_back(static_cast<T>(moderate(rng)));
  }
  // Quarter-step values: a quarter of them are exact ties.
  for (int i = 0; i < 100000; ++i) {
    values.push_back(static_cast<T>(static_cast<double>(static_cast<std::int64_t>(rng() % 200001) - 100000) / 4.0));
  }
  // Every kind of float: subnormals, huge, Inf, NaN payloads.
  for (int i = 0; i < 400000; ++i) {
    values.push_back(std::bit_cast<T>(static_cast<bits>(rng())));
  }
  check_against_nearbyint(values);
}

TEST_CASE("grids: signed_grid(1..16), unsigned_grid(1..16), ternary_grid, integer_grid ranges") {
  for (int bits = 2; bits <= 16; ++bits) {
    CAPTURE(bits);
    const sq::grid g = sq::signed_grid(bits);
    const long long half = 1LL << (bits - 1);
    CHECK(g.qmin() == -half);
    CHECK(g.qmax() == half - 1);
    CHECK_FALSE(g.is_binary());
  }
  const sq::grid binary = sq::signed_grid(1);
  CHECK(binary.is_binary());
  CHECK(binary.qmin() == -1);
  CHECK(binary.qmax() == 1);

  CHECK(sq::signed_grid(2).qmin() == -2);
  CHECK(sq::signed_grid(4).qmin() == -8);
  CHECK(sq::signed_grid(4).qmax() == 7);
  CHECK(sq::signed_grid(8).qmin() == -128);
  CHECK(sq::signed_grid(8).qmax() == 127);
  CHECK(sq::signed_grid(16).qmin() == -32768);
  CHECK(sq::signed_grid(16).qmax() == 32767);

  for (int bits = 1; bits <= 16; ++bits) {
    CAPTURE(bits);
    const sq::grid g = sq::unsigned_grid(bits);
    CHECK(g.qmin() == 0);
    CHECK(g.qmax() == (1LL << bits) - 1);
    CHECK_FALSE(g.is_binary());
  }
  CHECK(sq::unsigned_grid(1).qmax() == 1);
  CHECK(sq::unsigned_grid(8).qmax() == 255);

  const sq::grid ternary = sq::ternary_grid();
  CHECK(ternary.qmin() == -1);
  CHECK(ternary.qmax() == 1);
  CHECK_FALSE(ternary.is_binary());
  CHECK(ternary != binary);  // same range, different level map

  const sq::grid custom = sq::integer_grid(-3, 5);
  CHECK(custom.qmin() == -3);
  CHECK(custom.qmax() == 5);
  CHECK_FALSE(custom.is_binary());
  CHECK(sq::integer_grid(-8, 7) == sq::signed_grid(4));
}

TEST_CASE("grids: bits outside 1..16 and inverted integer grids throw, naming the argument and value") {
  for (int bits : {0, 17, -1}) {
    const std::string shown = "bits = " + std::to_string(bits);
    reference::check_invalid_argument([&] { (void)sq::signed_grid(bits); }, {"signed_grid", shown});
    reference::check_invalid_argument([&] { (void)sq::unsigned_grid(bits); }, {"unsigned_grid", shown});
  }
  reference::check_invalid_argument([] { (void)sq::integer_grid(2, 2); }, {"integer_grid", "qmax = 2"});
  reference::check_invalid_argument([] { (void)sq::integer_grid(3, -1); }, {"qmax = -1"});
  reference::check_invalid_argument([] { (void)sq::integer_grid(-70000, 0); }, {"qmin = -70000"});
  reference::check_invalid_argument([] { (void)sq::integer_grid(0, 70000); }, {"qmax = 70000"});
}

TEST_CASE_TEMPLATE("reference ruler: ulp_distance counts representable steps, same_bits compares patterns", T, float,
                   double) {
  constexpr T inf = std::numeric_limits<T>::infinity();
  constexpr T tiny = std::numeric_limits<T>::denorm_min();
  const T nan = std::numeric_limits<T>::quiet_NaN();
  CHECK(reference::ulp_distance(T(-0.0), T(0.0)) == 0.0);
  CHECK(reference::ulp_distance(T(1), std::nextafter(T(1), T(2))) == 1.0);
  CHECK(reference::ulp_distance(T(1), std::nextafter(T(1), T(0))) == 1.0);  // half the step size, still one step
  CHECK(reference::ulp_distance(-tiny, tiny) == 2.0);
  CHECK(reference::ulp_distance(T(-0.0), tiny) == 1.0);
  CHECK(reference::ulp_distance(std::numeric_limits<T>::max(), inf) == 1.0);
  CHECK(reference::ulp_distance(T(1), T(2)) == static_cast<double>(std::uint64_t{1} << (std::numeric_limits<T>::digits - 1)));
  CHECK(reference::ulp_distance(-inf, inf) == 2.0 * static_cast<double>(reference::ordered_representation(inf)));
  CHECK(reference::ulp_distance(nan, -nan) == 0.0);
  CHECK(std::isinf(reference::ulp_distance(nan, T(0))));
  CHECK(reference::same_bits(nan, -nan));
  CHECK_FALSE(reference::same_bits(T(-0.0), T(0.0)));
  CHECK(reference::same_bits(T(0.1), T(0.1)));
}
