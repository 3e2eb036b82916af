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
#include <initializer_list>
#include <limits>
#include <stdexcept>
#include <string>
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

/// Bit pattern equality, with every NaN equal to every NaN.
template <class T>
bool same_bits(T a, T b) {
  if (std::isnan(a) && std::isnan(b)) {
    return true;
  }
  if constexpr (sizeof(T) == 4) {
    return std::bit_cast<std::uint32_t>(a) == std::bit_cast<std::uint32_t>(b);
  } else {
    return std::bit_cast<std::uint64_t>(a) == std::bit_cast<std::uint64_t>(b);
  }
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
