// fourier_round<K> and its derivative against the series summed in long double.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <vector>

#include <stableqat/surrogates/fourier_round.hpp>

#include "reference.hpp"

namespace sq = stableqat;

namespace {

// round_K(x) = x - sum_{k=1}^{K} (-1)^(k+1) sin(2 pi k x) / (pi k), directly in x.
long double series(int harmonics, long double x) {
  long double sum = 0.0L;
  for (int k = 1; k <= harmonics; ++k) {
    sum += (k % 2 == 1 ? 1.0L : -1.0L) * std::sin(2.0L * reference::pi * k * x) / (reference::pi * k);
  }
  return x - sum;
}

// d round_K / dx = 1 - 2 sum_{k=1}^{K} (-1)^(k+1) cos(2 pi k x).
long double series_derivative(int harmonics, long double x) {
  long double sum = 0.0L;
  for (int k = 1; k <= harmonics; ++k) {
    sum += (k % 2 == 1 ? 1.0L : -1.0L) * std::cos(2.0L * reference::pi * k * x);
  }
  return 1.0L - 2.0L * sum;
}

template <class T>
std::vector<T> points() {
  std::vector<T> x;
  for (int i = -4 * 256; i <= 4 * 256; ++i) {
    x.push_back(static_cast<T>(i) / T(256));  // integers and half-integers included
  }
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> uniform(-4.0, 4.0);
  for (int i = 0; i < 5000; ++i) {
    x.push_back(static_cast<T>(uniform(rng)));
  }
  return x;
}

template <int K, class T>
void check_series() {
  CAPTURE(K);
  constexpr long double eps = std::numeric_limits<T>::epsilon();
  // Central difference of the long-double series: h^2/6 * |f'''| <= 3e-12 for K <= 5.
  constexpr long double h = 1e-7L;
  double worst_value = 0.0;
  double worst_derivative = 0.0;
  double worst_difference = 0.0;
  for (T x : points<T>()) {
    const auto xl = static_cast<long double>(x);
    const long double expected = series(K, xl);
    const auto got = static_cast<long double>(sq::fourier_round<K>(x));
    // Each of the K sines carries about one ulp of |x|-sized argument error: (K + 2) ulp in all.
    const long double value_tolerance = (K + 2) * eps * std::fmax(1.0L, std::fabs(xl));
    const double value_error = static_cast<double>(std::fabs(got - expected) / value_tolerance);
    worst_value = std::fmax(worst_value, value_error);
    if (!(value_error <= 1.0)) {
      FAIL_CHECK("fourier_round<" << K << ">(" << x << ") = " << static_cast<double>(got) << ", series "
                                   << static_cast<double>(expected));
    }

    const auto slope = static_cast<long double>(sq::fourier_round_derivative<K>(x));
    const long double exact_slope = series_derivative(K, xl);
    const long double slope_tolerance = 4.0L * eps * (2 * K + 1);
    const double slope_error = static_cast<double>(std::fabs(slope - exact_slope) / slope_tolerance);
    worst_derivative = std::fmax(worst_derivative, slope_error);
    if (!(slope_error <= 1.0)) {
      FAIL_CHECK("fourier_round_derivative<" << K << ">(" << x << ") = " << static_cast<double>(slope)
                                              << ", series " << static_cast<double>(exact_slope));
    }
    const long double difference = (series(K, xl + h) - series(K, xl - h)) / (2.0L * h);
    const double difference_error = static_cast<double>(std::fabs(slope - difference));
    worst_difference = std::fmax(worst_difference, difference_error);
    if (!(difference_error <= 1e-8 + static_cast<double>(slope_tolerance))) {
      FAIL_CHECK("fourier_round_derivative<" << K << ">(" << x << ") = " << static_cast<double>(slope)
                                              << ", central difference " << static_cast<double>(difference));
    }
  }
  if (reference::report_measurements()) {
    std::printf("fourier_round<%d> %-6s: value error %.3g x tolerance, derivative %.3g x tolerance, |d - FD| %.3g\n",
                K, sizeof(T) == 4 ? "float" : "double", worst_value, worst_derivative, worst_difference);
  }
}

template <int K, class T>
void check_special_points() {
  CAPTURE(K);
  // Integers are fixed points; the derivative is 1 + 2K at half-integers and
  // 1 - 2 sum (-1)^(k+1) at integers (-1 for odd K, +1 for even K).
  for (int n = -4; n <= 4; ++n) {
    CHECK(sq::fourier_round<K>(static_cast<T>(n)) == static_cast<T>(n));
    CHECK(sq::fourier_round_derivative<K>(static_cast<T>(n) + T(0.5)) == doctest::Approx(1.0 + 2.0 * K).epsilon(1e-6));
    CHECK(sq::fourier_round_derivative<K>(static_cast<T>(n)) == doctest::Approx(K % 2 == 1 ? -1.0 : 1.0).epsilon(1e-6));
  }
  CHECK(std::isnan(sq::fourier_round<K>(std::numeric_limits<T>::quiet_NaN())));
  CHECK(std::isnan(sq::fourier_round_derivative<K>(std::numeric_limits<T>::quiet_NaN())));
  CHECK(std::isnan(sq::fourier_round<K>(std::numeric_limits<T>::infinity())));
}

}  // namespace

TEST_CASE_TEMPLATE("fourier_round<0> is the identity and its derivative 1", T, float, double) {
  for (T x : points<T>()) {
    REQUIRE(reference::same_bits(sq::fourier_round<0>(x), x));
    REQUIRE(sq::fourier_round_derivative<0>(x) == T(1));
  }
  CHECK(sq::fourier_round<0>(std::numeric_limits<T>::infinity()) == std::numeric_limits<T>::infinity());
  CHECK(reference::same_bits(sq::fourier_round<0>(T(-0.0)), T(-0.0)));
}

TEST_CASE_TEMPLATE("fourier_round<K> and its derivative against the long-double series, K = 1..5", T, float, double) {
  check_series<1, T>();
  check_series<2, T>();
  check_series<3, T>();
  check_series<4, T>();
  check_series<5, T>();
  check_special_points<1, T>();
  check_special_points<2, T>();
  check_special_points<5, T>();
}
