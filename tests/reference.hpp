// tests/reference.hpp: independent long-double references and small test helpers.
//
// Nothing here calls into the library: these are the formulas of DESIGN.md §1
// written the obvious way (libm's cosl/sinl/nearbyint in long double), so the
// tests compare the library against something it could disagree with.
#pragma once

#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace reference {

inline constexpr long double pi = 3.141592653589793238462643383279502884L;
/// c = sqrt(2) * pi, the factor of the rotated series.
inline const long double c = std::sqrt(2.0L) * pi;

/// Paper coefficients a_k = A (-1)^k / (2k+1), exact in long double.
inline std::vector<long double> paper_coefficients(int harmonics, long double amplitude) {
  std::vector<long double> a;
  for (int k = 0; k < harmonics; ++k) {
    a.push_back(amplitude * (k % 2 == 0 ? 1.0L : -1.0L) / static_cast<long double>(2 * k + 1));
  }
  return a;
}

/// S = sum_k a_k cos((2k+1) pi (v + n)) straight from the paper's formula (n = round(v)).
inline long double rotated_series(std::vector<long double> const& a, long double v, long double n) {
  long double s = 0.0L;
  for (std::size_t k = 0; k < a.size(); ++k) {
    s += a[k] * std::cos(static_cast<long double>(2 * k + 1) * pi * (v + n));
  }
  return s;
}

/// g = (1 - c S) / (1 + c S), the rotated Fourier surrogate.
inline long double rotated_surrogate(std::vector<long double> const& a, long double v, long double n) {
  const long double cs = c * rotated_series(a, v, n);
  return (1.0L - cs) / (1.0L + cs);
}

/// The same surrogate as a function of the residual r alone (n = 0).
inline long double rotated_surrogate_of_residual(std::vector<long double> const& a, long double r) {
  return rotated_surrogate(a, r, 0.0L);
}

// --- The one ruler of every backend's tests: bit equality and ulp distance ---

/// What the ruler measures: float and double, and the 2-byte storage types of
/// the CUDA tests (__half, __nv_bfloat16), which convert to float.
template <class E>
concept measured_float = std::is_trivially_copyable_v<E> && (sizeof(E) == 2 || sizeof(E) == 4 || sizeof(E) == 8);

template <measured_float E>
bool is_nan(E x) {
  if constexpr (std::is_floating_point_v<E>) {
    return std::isnan(x);
  } else {
    return std::isnan(static_cast<float>(x));
  }
}

/// Position of x on the ordered line of its format's values: the IEEE
/// sign-magnitude bit pattern read as a signed integer (the magnitude bits,
/// negated when the sign bit is set). Adjacent representable values are 1
/// apart, also across zero; -0 and +0 both sit at 0; +-inf come right after
/// the largest finite magnitudes. Meaningless for NaN.
template <measured_float E>
std::int64_t ordered_representation(E x) {
  using bits_t = std::conditional_t<sizeof(E) == 2, std::uint16_t,
                                    std::conditional_t<sizeof(E) == 4, std::uint32_t, std::uint64_t>>;
  bits_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  constexpr bits_t sign = static_cast<bits_t>(bits_t(1) << (8 * sizeof(E) - 1));
  const auto magnitude = static_cast<std::int64_t>(bits & static_cast<bits_t>(~sign));  // < 2^63
  return (bits & sign) != 0 ? -magnitude : magnitude;
}

/// Distance in ulps: |ordered_representation(a) - ordered_representation(b)|,
/// the number of representable steps from a to b. So a == b (also -0 vs +0)
/// is 0, neighbours are 1 (-denorm_min to +denorm_min is 2), and "within 2
/// ulp" means the same on every backend and in every binade. Both NaN: 0;
/// exactly one NaN: +infinity. Returned as double (exact below 2^53).
template <measured_float E>
double ulp_distance(E a, E b) {
  const bool nan_a = is_nan(a);
  const bool nan_b = is_nan(b);
  if (nan_a || nan_b) {
    return nan_a && nan_b ? 0.0 : std::numeric_limits<double>::infinity();
  }
  const std::int64_t oa = ordered_representation(a);
  const std::int64_t ob = ordered_representation(b);
  // Opposite signs: the two magnitudes add up (at most 2^64 - 2, no overflow as unsigned).
  const std::uint64_t distance =
      (oa < 0) == (ob < 0) ? static_cast<std::uint64_t>(oa > ob ? oa - ob : ob - oa)
                           : static_cast<std::uint64_t>(oa < 0 ? -oa : oa) + static_cast<std::uint64_t>(ob < 0 ? -ob : ob);
  return static_cast<double>(distance);
}

/// Identical bit patterns (so -0 differs from +0), or both NaN (any payload).
template <measured_float E>
bool same_bits(E a, E b) {
  return (is_nan(a) && is_nan(b)) || std::memcmp(&a, &b, sizeof(E)) == 0;
}

/// True when the environment asks tests to print their measurements.
inline bool report_measurements() { return std::getenv("STABLEQAT_TEST_REPORT") != nullptr; }

/// Runs `call`, which must throw std::invalid_argument whose what() contains
/// every fragment (e.g. the argument name and "= value").
template <class F>
void check_invalid_argument(F&& call, std::initializer_list<std::string> fragments) {
  bool thrown = false;
  try {
    call();
  } catch (std::invalid_argument const& error) {
    thrown = true;
    const std::string message = error.what();
    for (std::string const& fragment : fragments) {
      CHECK_MESSAGE(message.find(fragment) != std::string::npos,
                    "message \"" << message << "\" lacks \"" << fragment << "\"");
    }
  } catch (std::exception const& error) {
    FAIL_CHECK("expected std::invalid_argument, got another exception: " << error.what());
    return;
  }
  CHECK_MESSAGE(thrown, "expected std::invalid_argument naming " << *fragments.begin());
}

}  // namespace reference
