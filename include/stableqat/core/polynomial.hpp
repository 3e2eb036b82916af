// stableqat/core/polynomial.hpp: exact extremes of a polynomial on [0, 1].
//
// Used at construction time (constexpr) to validate surrogates: a bound such as
// sum |a_k| is only sufficient, so the true extremes are located by isolating
// the roots of the derivative. Roots of p^(m) split [0, 1] into pieces on which
// p^(m-1) is monotone, hence has at most one root, found by bisection; starting
// from the linear derivative this finds every critical point of p.
#pragma once

#include <array>
#include <cstddef>

namespace stableqat::detail {

/// Polynomial sum_j c[j] u^j of degree < N in long double, constexpr throughout.
template <std::size_t N>
struct power_polynomial {
  std::array<long double, N> c{};

  [[nodiscard]] constexpr long double operator()(long double u) const noexcept {
    long double acc = 0.0L;
    for (std::size_t j = N; j-- > 0;) {
      acc = acc * u + c[j];
    }
    return acc;
  }

  [[nodiscard]] constexpr power_polynomial derivative() const noexcept {
    power_polynomial d{};
    for (std::size_t j = 1; j < N; ++j) {
      d.c[j - 1] = c[j] * static_cast<long double>(j);
    }
    return d;
  }

  /// Degree, or -1 for the zero polynomial.
  [[nodiscard]] constexpr int degree() const noexcept {
    for (std::size_t j = N; j-- > 0;) {
      if (c[j] != 0.0L) {
        return static_cast<int>(j);
      }
    }
    return -1;
  }
};

/// Smallest and largest value of p over [0, 1].
template <std::size_t N>
struct unit_interval_extremes {
  long double min_value;
  long double max_value;
};

namespace polynomial_detail {

template <std::size_t N>
struct root_list {
  std::array<long double, N + 2> at{};
  std::size_t count = 0;
  constexpr void push(long double x) noexcept { at[count++] = x; }
};

constexpr bool same_sign(long double a, long double b) noexcept {
  return (a > 0.0L && b > 0.0L) || (a < 0.0L && b < 0.0L);
}

/// Root of p in [lo, hi] where p(lo), p(hi) have opposite signs (p monotone there).
template <std::size_t N>
constexpr long double bisect(power_polynomial<N> const& p, long double lo, long double hi) noexcept {
  long double p_lo = p(lo);
  for (int iteration = 0; iteration < 200; ++iteration) {
    const long double mid = lo + (hi - lo) / 2.0L;
    if (!(lo < mid && mid < hi)) {
      break;  // interval is down to adjacent long doubles
    }
    const long double p_mid = p(mid);
    if (p_mid == 0.0L) {
      return mid;
    }
    if (same_sign(p_mid, p_lo)) {
      lo = mid;
      p_lo = p_mid;
    } else {
      hi = mid;
    }
  }
  return lo + (hi - lo) / 2.0L;
}

/// Roots in (0, 1) of p, given the sorted roots in (0, 1) of p' (between which p is monotone).
template <std::size_t N>
constexpr root_list<N> roots_between(power_polynomial<N> const& p, root_list<N> const& breaks) noexcept {
  root_list<N> roots;
  long double left = 0.0L;
  for (std::size_t i = 0; i <= breaks.count; ++i) {
    const long double right = i < breaks.count ? breaks.at[i] : 1.0L;
    const long double p_left = p(left);
    const long double p_right = p(right);
    if (p_right == 0.0L && right < 1.0L) {
      roots.push(right);
    } else if (p_left != 0.0L && p_right != 0.0L && !same_sign(p_left, p_right)) {
      roots.push(bisect(p, left, right));
    }
    left = right;
  }
  return roots;
}

}  // namespace polynomial_detail

/// Minimum and maximum of p over [0, 1], located through all critical points.
template <std::size_t N>
constexpr unit_interval_extremes<N> extremes_on_unit_interval(power_polynomial<N> const& p) noexcept {
  using namespace polynomial_detail;
  // derivatives[m] = p^(m); the highest non-constant one is linear, so its
  // root list is found directly, and each lower order is bracketed by the next.
  std::array<power_polynomial<N>, N + 1> derivatives{};
  derivatives[0] = p;
  for (std::size_t m = 1; m <= N; ++m) {
    derivatives[m] = derivatives[m - 1].derivative();
  }
  root_list<N> roots;  // roots of p^(m+1); empty for the order where p^(m+1) is constant
  const int deg = p.degree();
  for (int m = deg - 1; m >= 1; --m) {
    roots = roots_between(derivatives[static_cast<std::size_t>(m)], roots);
  }
  long double lo = p(0.0L);
  long double hi = lo;
  const auto consider = [&](long double u) {
    const long double value = p(u);
    lo = value < lo ? value : lo;
    hi = value > hi ? value : hi;
  };
  consider(1.0L);
  if (deg >= 2) {
    for (std::size_t i = 0; i < roots.count; ++i) {
      consider(roots.at[i]);
    }
  }
  return {lo, hi};
}

}  // namespace stableqat::detail
