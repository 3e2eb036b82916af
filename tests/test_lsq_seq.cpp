// LSQ fake quantization through the front-end with exec::seq: hand-computed
// cases for every grid kind and layout, offsets, NaN/Inf, aliasing, empty
// input, and a randomized comparison with a straightforward reimplementation.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <stableqat/core/grid.hpp>
#include <stableqat/core/layout.hpp>
#include <stableqat/core/lsq.hpp>
#include <stableqat/exec/seq.hpp>
#include <stableqat/ops.hpp>
#include <stableqat/quantizer.hpp>
#include <stableqat/surrogates/fourier.hpp>

#include "reference.hpp"

namespace sq = stableqat;

namespace {

// dy of element i in the hand cases: dyadic, so every product and sum is exact.
constexpr double dy_pattern[] = {1.0, -2.0, 0.5, 4.0, -1.0, 2.0, 3.0, -0.25, 1.5, -3.0};

// A hand-computed case: v = x/s (exact), the expected y, whether v lies in
// [qmin, qmax], and the step term for dy = 1:
//   uniform grid: inside ? n - v : clamp(n);  binary: inside ? sign(v) - v : clamp(v, -1, 1).
struct hand_case {
  const char* name;
  sq::grid grid;
  sq::step_layout layout;
  std::vector<double> steps;
  std::vector<std::size_t> step_of;  // step of each element, by hand
  std::vector<double> x, v, y;
  std::vector<int> inside;
  std::vector<double> unit_term;
};

std::vector<hand_case> hand_cases() {
  const std::vector<std::size_t> all0(10, 0);
  return {
      {"signed 2-bit [-2,1]", sq::signed_grid(2), sq::per_tensor(), {0.5}, all0,
       {-1.5, -1.25, -1.0, -0.375, 0.25, 0.5, 0.625, 0.75, -0.125, 0.0},
       {-3, -2.5, -2, -0.75, 0.5, 1, 1.25, 1.5, -0.25, 0},
       {-1, -1, -1, -0.5, 0, 0.5, 0.5, 0.5, -0.0, 0},
       {0, 0, 1, 1, 1, 1, 0, 0, 1, 1},
       {-2, -2, 0, -0.25, -0.5, 0, 1, 1, 0.25, 0}},
      {"unsigned 4-bit [0,15]", sq::unsigned_grid(4), sq::per_tensor(), {0.25}, all0,
       {-0.5, 0.0, 0.625, 0.875, 1.3125, 3.75, 3.875, 5.0},
       {-2, 0, 2.5, 3.5, 5.25, 15, 15.5, 20},
       {0, 0, 0.5, 1.0, 1.25, 3.75, 3.75, 3.75},
       {0, 1, 1, 1, 1, 1, 0, 0},
       {0, 0, -0.5, 0.5, -0.25, 0, 15, 15}},
      {"signed 4-bit [-8,7]", sq::signed_grid(4), sq::per_tensor(), {2.0}, all0,
       {-17, -16, -15, -3, 5, 14, 15, 100},
       {-8.5, -8, -7.5, -1.5, 2.5, 7, 7.5, 50},
       {-16, -16, -16, -4, 4, 14, 14, 14},
       {0, 1, 1, 1, 1, 1, 0, 0},
       {-8, 0, -0.5, -0.5, -0.5, 0, 7, 7}},
      {"signed 8-bit [-128,127]", sq::signed_grid(8), sq::per_tensor(), {0.125}, all0,
       {-16.0625, -16, 15.875, 15.9375, 0.0625, -0.1875, 1.28125},
       {-128.5, -128, 127, 127.5, 0.5, -1.5, 10.25},
       {-16, -16, 15.875, 15.875, 0, -0.25, 1.25},
       {0, 1, 1, 0, 1, 1, 1},
       {-128, 0, 0, 127, -0.5, -0.5, -0.25}},
      {"ternary [-1,1]", sq::ternary_grid(), sq::per_tensor(), {0.5}, all0,
       {-0.75, -0.5, -0.25, 0.25, 0.375, 0.5, 0.625},
       {-1.5, -1, -0.5, 0.5, 0.75, 1, 1.25},
       {-0.5, -0.5, -0.0, 0, 0.5, 0.5, 0.5},
       {0, 1, 1, 1, 1, 1, 0},
       {-1, 0, 0.5, -0.5, 0.25, 0, 1}},
      {"binary sign grid", sq::signed_grid(1), sq::per_tensor(), {0.5}, all0,
       {-2, -0.5, -0.375, 0, 0.0625, 0.25, 0.5, 0.75},
       {-4, -1, -0.75, 0, 0.125, 0.5, 1, 1.5},
       {-0.5, -0.5, -0.5, 0, 0.5, 0.5, 0.5, 0.5},
       {0, 1, 1, 1, 1, 1, 1, 0},
       {-1, 0, -0.25, 0, 0.875, 0.5, 0, 1}},
      // Layouts, signed 4-bit, x = {1, -4.5, 3.75, 0.3125, -2, 1.875}.
      {"per_tensor", sq::signed_grid(4), sq::per_tensor(), {0.5}, {0, 0, 0, 0, 0, 0},
       {1.0, -4.5, 3.75, 0.3125, -2.0, 1.875},
       {2, -9, 7.5, 0.625, -4, 3.75},
       {1, -4, 3.5, 0.5, -2, 2},
       {1, 0, 0, 1, 1, 1},
       {0, -8, 7, 0.375, 0, 0.25}},
      {"per_channel(3)", sq::signed_grid(4), sq::per_channel(3), {0.5, 0.25}, {0, 0, 0, 1, 1, 1},
       {1.0, -4.5, 3.75, 0.3125, -2.0, 1.875},
       {2, -9, 7.5, 1.25, -8, 7.5},
       {1, -4, 3.5, 0.25, -2, 1.75},
       {1, 0, 0, 1, 1, 0},
       {0, -8, 7, -0.25, 0, 7}},
      {"per_group(2)", sq::signed_grid(4), sq::per_group(2), {0.5, 0.25, 1.0}, {0, 0, 1, 1, 2, 2},
       {1.0, -4.5, 3.75, 0.3125, -2.0, 1.875},
       {2, -9, 15, 1.25, -2, 1.875},
       {1, -4, 1.75, 0.25, -2, 2},
       {1, 0, 0, 1, 1, 1},
       {0, -8, 7, -0.25, 0, 0.125}},
      {"per_column(2)", sq::signed_grid(4), sq::per_column(2), {0.5, 0.25}, {0, 1, 0, 1, 0, 1},
       {1.0, -4.5, 3.75, 0.3125, -2.0, 1.875},
       {2, -18, 7.5, 1.25, -4, 7.5},
       {1, -2, 3.5, 0.25, -2, 1.75},
       {1, 0, 0, 1, 1, 0},
       {0, -8, 7, -0.25, 0, 7}},
      {"per_column(3)", sq::signed_grid(4), sq::per_column(3), {0.5, 0.25, 1.0}, {0, 1, 2, 0, 1, 2},
       {1.0, -4.5, 3.75, 0.3125, -2.0, 1.875},
       {2, -18, 3.75, 0.625, -8, 1.875},
       {1, -2, 4, 0.5, -2, 2},
       {1, 0, 1, 1, 1, 1},
       {0, -8, 0.25, 0.375, 0, 0.125}},
  };
}

template <class T>
std::vector<T> as(std::vector<double> const& values) {
  return std::vector<T>(values.begin(), values.end());
}

template <class T>
std::vector<T> dy_for(std::size_t n) {
  std::vector<T> dy(n);
  for (std::size_t i = 0; i < n; ++i) dy[i] = static_cast<T>(dy_pattern[i % std::size(dy_pattern)]);
  return dy;
}

template <class T>
constexpr double tolerance_of_surrogate() {
  return std::is_same_v<T, float> ? 4e-7 : 1e-14;
}

// The paper surrogate (A = 0.21, K = 1) at residual r, in long double.
long double paper_g(long double r) {
  static const auto a = reference::paper_coefficients(1, 0.21L);
  return reference::rotated_surrogate_of_residual(a, r);
}

template <class T, class S>
void run_hand_case(hand_case const& c, S const& surrogate, bool fourier) {
  CAPTURE(c.name);
  const std::size_t n = c.x.size();
  REQUIRE(c.v.size() == n);
  REQUIRE(c.y.size() == n);
  REQUIRE(c.inside.size() == n);
  REQUIRE(c.unit_term.size() == n);
  REQUIRE(c.step_of.size() >= n);
  const sq::quantizer<T, S> q{c.grid, surrogate, c.layout};
  const auto x = as<T>(c.x);
  const auto steps = as<T>(c.steps);
  const auto dy = dy_for<T>(n);

  // Forward.
  std::vector<T> y(n, T(-7));
  sq::fake_quantize(sq::exec::seq, q, x, steps, y);
  for (std::size_t i = 0; i < n; ++i) {
    CAPTURE(i);
    CHECK(y[i] == static_cast<T>(c.y[i]));
    CHECK(std::signbit(y[i]) == std::signbit(c.y[i]));
  }

  // Backward with grad_scale = 1: dsteps are the exact sums of the hand terms.
  std::vector<double> sums(steps.size(), 0.0);
  for (std::size_t i = 0; i < n; ++i) sums[c.step_of[i]] += static_cast<double>(dy[i]) * c.unit_term[i];
  std::vector<T> expected_dx(n);
  for (std::size_t i = 0; i < n; ++i) {
    const long double g = fourier ? paper_g(c.v[i] - std::nearbyint(c.v[i])) : 1.0L;
    expected_dx[i] = c.inside[i] ? static_cast<T>(g * static_cast<long double>(dy[i])) : T(0);
  }
  auto check_backward = [&](std::vector<T> const& dx, std::vector<T> const& dsteps, double scale) {
    for (std::size_t i = 0; i < n; ++i) {
      CAPTURE(i);
      if (fourier) {
        CHECK(static_cast<double>(dx[i]) ==
              doctest::Approx(static_cast<double>(expected_dx[i])).epsilon(2 * tolerance_of_surrogate<T>()));
        CHECK((dx[i] == T(0)) == (c.inside[i] == 0));
      } else {
        CHECK(dx[i] == expected_dx[i]);
      }
    }
    for (std::size_t k = 0; k < steps.size(); ++k) {
      CAPTURE(k);
      CHECK(static_cast<double>(dsteps[k]) ==
            doctest::Approx(scale * sums[k]).epsilon(std::numeric_limits<T>::epsilon()));
    }
  };
  {
    std::vector<T> dx(n, T(-7));
    std::vector<T> dsteps(steps.size(), T(-7));
    sq::fake_quantize_backward(sq::exec::seq, q, x, steps, dy, dx, dsteps, 1.0);
    check_backward(dx, dsteps, 1.0);
    for (std::size_t k = 0; k < steps.size(); ++k) CHECK(dsteps[k] == static_cast<T>(sums[k]));  // exact
  }
  {  // default grad_scale = 1/sqrt(numel * max(qmax, 1))
    std::vector<T> dx(n, T(-7));
    std::vector<T> dsteps(steps.size(), T(-7));
    sq::fake_quantize_backward(sq::exec::seq, q, x, steps, dy, dx, dsteps);
    const double positive_levels = c.grid.qmax() > 1 ? c.grid.qmax() : 1.0;
    check_backward(dx, dsteps, 1.0 / std::sqrt(static_cast<double>(n) * positive_levels));
  }
  {  // explicit grad_scale
    std::vector<T> dx(n, T(-7));
    std::vector<T> dsteps(steps.size(), T(-7));
    sq::fake_quantize_backward(sq::exec::seq, q, x, steps, dy, dx, dsteps, 0.375);
    check_backward(dx, dsteps, 0.375);
  }

  // Aliasing: y == x, dx == dy, dx == x give the same results.
  {
    std::vector<T> buffer = x;
    sq::fake_quantize(sq::exec::seq, q, buffer, steps, buffer);
    for (std::size_t i = 0; i < n; ++i) CHECK(reference::same_bits(buffer[i], y[i]));
  }
  {
    std::vector<T> buffer = dy;
    std::vector<T> dsteps(steps.size(), T(-7));
    sq::fake_quantize_backward(sq::exec::seq, q, x, steps, buffer, buffer, dsteps, 1.0);
    check_backward(buffer, dsteps, 1.0);
  }
  {
    std::vector<T> buffer = x;
    std::vector<T> dsteps(steps.size(), T(-7));
    sq::fake_quantize_backward(sq::exec::seq, q, buffer, steps, dy, buffer, dsteps, 1.0);
    check_backward(buffer, dsteps, 1.0);
  }
}

}  // namespace

TEST_CASE_TEMPLATE("seq: hand-computed cases for every grid kind and layout, STE and Fourier surrogate", T, float,
                   double) {
  for (hand_case const& c : hand_cases()) {
    run_hand_case<T>(c, sq::ste{}, false);
    run_hand_case<T>(c, sq::fourier_surrogate<1>{}, true);
  }
}

TEST_CASE("lsq_grad_scale: 1/sqrt(numel * max(qmax, 1))") {
  CHECK(sq::lsq_grad_scale(8, sq::signed_grid(2)) == doctest::Approx(1.0 / std::sqrt(8.0)).epsilon(1e-16));
  CHECK(sq::lsq_grad_scale(6, sq::signed_grid(4)) == doctest::Approx(1.0 / std::sqrt(42.0)).epsilon(1e-16));
  CHECK(sq::lsq_grad_scale(100, sq::unsigned_grid(4)) == doctest::Approx(1.0 / std::sqrt(1500.0)).epsilon(1e-16));
  CHECK(sq::lsq_grad_scale(1000, sq::signed_grid(8)) == doctest::Approx(1.0 / std::sqrt(127000.0)).epsilon(1e-16));
  CHECK(sq::lsq_grad_scale(9, sq::signed_grid(1)) == doctest::Approx(1.0 / 3.0).epsilon(1e-16));
  CHECK(sq::lsq_grad_scale(16, sq::ternary_grid()) == 0.25);
  CHECK(sq::lsq_grad_scale(4, sq::unsigned_grid(1)) == 0.5);
  reference::check_invalid_argument([] { (void)sq::lsq_grad_scale(0, sq::signed_grid(4)); }, {"numel = 0"});
}

TEST_CASE_TEMPLATE("seq: offsets (LSQ+) shift the grid and dx + doffset == dy element by element", T, float, double) {
  const sq::grid g = sq::signed_grid(4);
  const auto steps = as<T>({0.5, 0.25, 1.0});
  const auto offsets = as<T>({0.25, -1.0, 0.5});
  const auto dy = as<T>({2.0, -1.0, 0.5});
  struct row {
    std::vector<double> x, y, v;
    std::vector<int> inside;
    std::vector<double> unit_term;
  };
  // One element per step (per_column(3) on 3 elements), so each dsteps/doffsets
  // entry is a single element's term and grad_scale = 1 keeps it unscaled.
  const row rows[] = {
      // v = (x - b)/s = {2.25, -8, 0}
      {{1.375, -3.0, 0.5}, {1.25, -3.0, 0.5}, {2.25, -8, 0}, {1, 1, 1}, {-0.25, 0, 0}},
      // v = {19.5, -36, 0.25}: the first two clamp to qmax / qmin
      {{10.0, -10.0, 0.75}, {3.75, -3.0, 0.5}, {19.5, -36, 0.25}, {0, 0, 1}, {7, -8, -0.25}},
  };
  for (row const& r : rows) {
    const auto x = as<T>(r.x);
    for (bool fourier : {false, true}) {
      CAPTURE(fourier);
      std::vector<T> y(3, T(-7));
      std::vector<T> dx(3, T(-7));
      std::vector<T> dsteps(3, T(-7));
      std::vector<T> doffsets(3, T(-7));
      if (fourier) {
        const sq::quantizer<T, sq::fourier_surrogate<1>> q{g, sq::fourier_surrogate<1>{}, sq::per_column(3)};
        sq::fake_quantize(sq::exec::seq, q, x, steps, y, offsets);
        sq::fake_quantize_backward(sq::exec::seq, q, x, steps, dy, dx, dsteps, offsets, doffsets, 1.0);
      } else {
        const sq::quantizer<T> q{g, sq::ste{}, sq::per_column(3)};
        sq::fake_quantize(sq::exec::seq, q, x, steps, y, offsets);
        sq::fake_quantize_backward(sq::exec::seq, q, x, steps, dy, dx, dsteps, offsets, doffsets, 1.0);
      }
      for (std::size_t i = 0; i < 3; ++i) {
        CAPTURE(i);
        CHECK(y[i] == static_cast<T>(r.y[i]));
        const long double gi = fourier ? paper_g(r.v[i] - std::nearbyint(r.v[i])) : 1.0L;
        const long double dyi = dy[i];
        if (r.inside[i]) {
          CHECK(static_cast<double>(dx[i]) ==
                doctest::Approx(static_cast<double>(gi * dyi)).epsilon(2 * tolerance_of_surrogate<T>()));
          CHECK(static_cast<double>(doffsets[i]) ==
                doctest::Approx(static_cast<double>(dyi * (1 - gi))).epsilon(4 * tolerance_of_surrogate<T>()));
        } else {
          CHECK(dx[i] == T(0));
          CHECK(doffsets[i] == dy[i]);
        }
        // dx + db = dy, to the rounding of dy - dx.
        const long double sum = static_cast<long double>(dx[i]) + static_cast<long double>(doffsets[i]);
        CHECK(std::fabs(sum - dyi) <= std::numeric_limits<T>::epsilon() * std::fabs(dyi));
        if (!fourier) CHECK(sum == dyi);
        CHECK(dsteps[i] == static_cast<T>(static_cast<double>(dy[i]) * r.unit_term[i]));
      }
    }
  }

  // Several elements per offset: doffsets = grad_scale * sum(dy - dx) (STE: the outside dy).
  const sq::quantizer<T> q{sq::unsigned_grid(2), sq::ste{}, sq::per_tensor()};  // [0, 3]
  const auto x = as<T>({0.125, 0.375, 1.125, 0.0, -0.5});  // b = 0.125, s = 0.25: v = {0, 1, 4, -0.5, -2.5}
  const auto dy5 = as<T>({1.0, -2.0, 0.5, 4.0, -1.0});
  const auto step = as<T>({0.25});
  const auto offset = as<T>({0.125});
  std::vector<T> y(5), dx(5), dsteps(1), doffsets(1);
  sq::fake_quantize(sq::exec::seq, q, x, step, y, offset);
  const auto expected_y = as<T>({0.125, 0.375, 0.875, 0.125, 0.125});
  for (std::size_t i = 0; i < 5; ++i) CHECK(y[i] == expected_y[i]);
  sq::fake_quantize_backward(sq::exec::seq, q, x, step, dy5, dx, dsteps, offset, doffsets);
  const double scale = 1.0 / std::sqrt(5.0 * 3.0);
  // inside: v = 0, 1 ; outside: 4 (level 3), -0.5 (level 0 ... round(-0.5) = -0), -2.5 (level 0)
  CHECK(static_cast<double>(doffsets[0]) == doctest::Approx(scale * (0.5 + 4.0 - 1.0)).epsilon(1e-7));
  CHECK(static_cast<double>(dsteps[0]) == doctest::Approx(scale * (0.5 * 3.0)).epsilon(1e-7));
  const auto expected_dx = as<T>({1.0, -2.0, 0.0, 0.0, 0.0});
  for (std::size_t i = 0; i < 5; ++i) CHECK(dx[i] == expected_dx[i]);
}

TEST_CASE_TEMPLATE("seq: NaN input gives NaN y, dx = 0, NaN step gradient, doffset = dy; +-Inf clamp", T, float,
                   double) {
  const T tnan = std::numeric_limits<T>::quiet_NaN();
  const T tinf = std::numeric_limits<T>::infinity();
  const auto steps = as<T>({0.5, 0.25, 1.0});
  const auto offsets = as<T>({0.0, 0.5, -0.25});
  const auto dy = as<T>({2.0, -1.0, 0.5});
  const std::vector<T> x{tnan, tinf, -tinf};
  {  // signed 4-bit with offsets, one element per step
    const sq::quantizer<T, sq::fourier_surrogate<1>> q{sq::signed_grid(4), sq::fourier_surrogate<1>{},
                                                       sq::per_column(3)};
    std::vector<T> y(3), dx(3, T(-7)), dsteps(3), doffsets(3);
    sq::fake_quantize(sq::exec::seq, q, x, steps, y, offsets);
    CHECK(std::isnan(y[0]));
    CHECK(y[1] == T(0.25 * 7 + 0.5));
    CHECK(y[2] == T(1.0 * -8 - 0.25));
    sq::fake_quantize_backward(sq::exec::seq, q, x, steps, dy, dx, dsteps, offsets, doffsets, 1.0);
    for (std::size_t i = 0; i < 3; ++i) CHECK(reference::same_bits(dx[i], T(0)));
    CHECK(std::isnan(dsteps[0]));
    CHECK(dsteps[1] == T(-1.0 * 7));
    CHECK(dsteps[2] == T(0.5 * -8));
    for (std::size_t i = 0; i < 3; ++i) CHECK(doffsets[i] == dy[i]);
  }
  {  // per tensor, no offsets: one NaN poisons the single step gradient
    const sq::quantizer<T> q{sq::signed_grid(4)};
    const std::vector<T> x4{T(1.0), tnan, tinf, -tinf};
    const auto dy4 = as<T>({1.5, 2.0, 1.0, 1.0});
    const auto step = as<T>({0.5});
    std::vector<T> y(4), dx(4), dsteps(1);
    sq::fake_quantize(sq::exec::seq, q, x4, step, y);
    CHECK(y[0] == T(1.0));
    CHECK(std::isnan(y[1]));
    CHECK(y[2] == T(3.5));
    CHECK(y[3] == T(-4.0));
    sq::fake_quantize_backward(sq::exec::seq, q, x4, step, dy4, dx, dsteps);
    CHECK(dx[0] == T(1.5));
    CHECK(dx[1] == T(0));
    CHECK(dx[2] == T(0));
    CHECK(dx[3] == T(0));
    CHECK(std::isnan(dsteps[0]));
  }
  {  // binary grid: sign(+-Inf) = +-1, sign(NaN) = NaN
    const sq::quantizer<T> q{sq::signed_grid(1), sq::ste{}, sq::per_column(3)};
    std::vector<T> y(3), dx(3), dsteps(3);
    sq::fake_quantize(sq::exec::seq, q, x, steps, y);
    CHECK(std::isnan(y[0]));
    CHECK(y[1] == T(0.25));
    CHECK(y[2] == T(-1.0));
    sq::fake_quantize_backward(sq::exec::seq, q, x, steps, dy, dx, dsteps, 1.0);
    for (std::size_t i = 0; i < 3; ++i) CHECK(dx[i] == T(0));
    CHECK(std::isnan(dsteps[0]));
    CHECK(dsteps[1] == T(-1.0));
    CHECK(dsteps[2] == T(-0.5));
  }
}

TEST_CASE_TEMPLATE("seq: empty input writes nothing to y/dx and sets dsteps and doffsets to 0", T, float, double) {
  const std::vector<T> none;
  std::vector<T> no_output;
  for (sq::step_layout layout : {sq::per_tensor(), sq::per_column(3), sq::per_channel(4), sq::per_group(2)}) {
    CAPTURE(layout.name());
    const sq::quantizer<T, sq::fourier_surrogate<1>> q{sq::signed_grid(4), sq::fourier_surrogate<1>{}, layout};
    const std::size_t count = layout.type() == sq::step_layout::kind::per_tensor   ? 1
                              : layout.type() == sq::step_layout::kind::per_column ? 3
                                                                                   : 0;
    const std::vector<T> steps(count, T(0.5));
    const std::vector<T> offsets(count, T(0.125));
    sq::fake_quantize(sq::exec::seq, q, none, steps, no_output);
    sq::fake_quantize(sq::exec::seq, q, none, steps, no_output, offsets);
    std::vector<T> dsteps(count, T(-7));
    std::vector<T> doffsets(count, T(-7));
    sq::fake_quantize_backward(sq::exec::seq, q, none, steps, none, no_output, dsteps);
    for (T d : dsteps) CHECK(reference::same_bits(d, T(0)));
    std::fill(dsteps.begin(), dsteps.end(), T(-7));
    sq::fake_quantize_backward(sq::exec::seq, q, none, steps, none, no_output, dsteps, offsets, doffsets, 2.0);
    for (T d : dsteps) CHECK(reference::same_bits(d, T(0)));
    for (T d : doffsets) CHECK(reference::same_bits(d, T(0)));
  }
}

// --- randomized comparison with a straightforward reimplementation ------------

namespace {

enum class layout_kind { per_tensor, per_channel, per_group, per_column };

struct random_setup {
  sq::grid grid;
  layout_kind kind;
  std::size_t extent;
  bool with_offsets;
};

sq::step_layout make_layout(layout_kind kind, std::size_t extent) {
  switch (kind) {
    case layout_kind::per_tensor:
      return sq::per_tensor();
    case layout_kind::per_channel:
      return sq::per_channel(extent);
    case layout_kind::per_group:
      return sq::per_group(extent);
    default:
      return sq::per_column(extent);
  }
}

// DESIGN.md §1, element by element, written independently of core/lsq.hpp.
template <class T>
struct element_reference {
  T y;
  bool inside;
  long double g, dx, step_term, offset_term;
};

template <class T>
element_reference<T> reference_element(sq::grid const& g, T x, T s, T b, bool with_offsets, T dy, bool fourier) {
  const T inv = T(1) / s;
  const T v = with_offsets ? (x - b) * inv : x * inv;
  const T n = std::nearbyint(v);
  const T qmin = static_cast<T>(g.qmin());
  const T qmax = static_cast<T>(g.qmax());
  T level;
  if (g.is_binary()) {
    level = v > 0 ? T(1) : (v < 0 ? T(-1) : v);
  } else {
    level = n < qmin ? qmin : (n > qmax ? qmax : n);
  }
  element_reference<T> e{};
#if STABLEQAT_HOST_HAS_FMA
  e.y = with_offsets ? std::fma(s, level, b) : s * level;  // one rounding where the target fuses
#else
  e.y = with_offsets ? s * level + b : s * level;
#endif
  e.inside = qmin <= v && v <= qmax;
  const long double gl = fourier ? paper_g(static_cast<long double>(v - n)) : 1.0L;
  const long double dyl = dy;
  e.g = gl;
  e.dx = e.inside ? gl * dyl : 0.0L;
  e.step_term = dyl * (e.inside ? static_cast<long double>(level) - v : static_cast<long double>(level));
  e.offset_term = dyl * (e.inside ? 1.0L - gl : 1.0L);
  return e;
}

template <class T, class S>
void random_check(random_setup const& setup, S const& surrogate, bool fourier, std::mt19937_64& rng) {
  constexpr std::size_t numel = 3000;
  const sq::step_layout layout = make_layout(setup.kind, setup.extent);
  const sq::quantizer<T, S> q{setup.grid, surrogate, layout};
  const std::size_t count = setup.kind == layout_kind::per_tensor   ? 1
                            : setup.kind == layout_kind::per_column ? setup.extent
                                                                    : numel / setup.extent;
  auto step_of = [&](std::size_t i) -> std::size_t {
    switch (setup.kind) {
      case layout_kind::per_tensor:
        return 0;
      case layout_kind::per_column:
        return i % setup.extent;
      default:
        return i / setup.extent;
    }
  };
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<T> steps(count), offsets(count, T(0));
  for (T& s : steps) s = static_cast<T>(0.05 + 1.5 * unit(rng));
  if (setup.with_offsets) {
    for (T& b : offsets) b = static_cast<T>(unit(rng) - 0.5);
  }
  const double qmin = setup.grid.qmin();
  const double qmax = setup.grid.qmax();
  std::vector<T> x(numel), dy(numel);
  for (std::size_t i = 0; i < numel; ++i) {
    const double s = steps[step_of(i)];
    const double b = offsets[step_of(i)];
    const double u = unit(rng);
    double level;
    switch (i % 4) {
      case 0:  // a tie (up to the rounding of x)
        level = std::floor(qmin - 2 + (qmax - qmin + 4) * u) + 0.5;
        break;
      case 1:  // at a grid edge
        level = (u < 0.5 ? qmin : qmax) + (u < 0.25 || u > 0.75 ? 0.0 : (u - 0.5) * 1e-3);
        break;
      default:
        level = qmin - 3 + (qmax - qmin + 6) * u;
    }
    x[i] = static_cast<T>(level * s + b);
    dy[i] = static_cast<T>(4.0 * unit(rng) - 2.0);
  }

  const std::size_t per_step = numel / count;
  std::vector<T> y(numel), dx(numel), dsteps(count), doffsets(count);
  const double scale = 1.0 / std::sqrt(static_cast<double>(numel) * std::max(qmax, 1.0));
  if (setup.with_offsets) {
    sq::fake_quantize(sq::exec::seq, q, x, steps, y, offsets);
    sq::fake_quantize_backward(sq::exec::seq, q, x, steps, dy, dx, dsteps, offsets, doffsets);
  } else {
    sq::fake_quantize(sq::exec::seq, q, x, steps, y);
    sq::fake_quantize_backward(sq::exec::seq, q, x, steps, dy, dx, dsteps);
  }

  constexpr long double eps = std::numeric_limits<T>::epsilon();
  const long double g_tolerance = fourier ? tolerance_of_surrogate<T>() + eps : 0.0L;
  std::vector<long double> step_sum(count), step_abs(count), offset_sum(count), offset_abs(count);
  std::size_t failures = 0;
  std::size_t inside_count = 0;
  for (std::size_t i = 0; i < numel; ++i) {
    const std::size_t k = step_of(i);
    const auto e = reference_element<T>(setup.grid, x[i], steps[k], offsets[k], setup.with_offsets, dy[i], fourier);
    inside_count += e.inside;
    const bool y_ok = reference::same_bits(y[i], e.y);
    const bool dx_ok = std::fabs(static_cast<long double>(dx[i]) - e.dx) <= g_tolerance * std::fabs(e.dx);
    if ((!y_ok || !dx_ok) && ++failures <= 5) {
      FAIL_CHECK("element " << i << ": x = " << x[i] << " step = " << steps[k] << " offset = " << offsets[k]
                            << ": y = " << y[i] << " (reference " << e.y << "), dx = " << dx[i] << " (reference "
                            << static_cast<double>(e.dx) << ")");
    }
    step_sum[k] += e.step_term;
    step_abs[k] += std::fabs(e.step_term);
    offset_sum[k] += e.offset_term;
    offset_abs[k] += std::fabs(static_cast<long double>(dy[i])) * (1.0L + e.g);
  }
  CHECK(failures == 0);
  CHECK(inside_count > numel / 4);
  CHECK(inside_count < numel);
  for (std::size_t k = 0; k < count; ++k) {
    CAPTURE(k);
    // Terms rounded to T (eps/2 each), summed in double (at most per_step double
    // roundings relative to sum|terms|), scaled and rounded to T (eps/2).
    const long double summation = eps + static_cast<long double>(per_step) * std::numeric_limits<double>::epsilon();
    const long double expected = scale * step_sum[k];
    CHECK(std::fabs(dsteps[k] - expected) <= summation * scale * step_abs[k] + eps * std::fabs(expected));
    // DESIGN.md §4: within 1e-6 of sum|terms|.
    CHECK(std::fabs(dsteps[k] - expected) <= 1e-6L * scale * step_abs[k]);
    if (setup.with_offsets) {
      const long double expected_offset = scale * offset_sum[k];
      CHECK(std::fabs(doffsets[k] - expected_offset) <=
            (g_tolerance + summation) * scale * offset_abs[k] + eps * std::fabs(expected_offset));
    }
  }
}

}  // namespace

TEST_CASE_TEMPLATE("seq: randomized comparison with a straightforward long-double reimplementation", T, float,
                   double) {
  std::mt19937_64 rng(2026);
  const sq::grid grids[] = {sq::signed_grid(2), sq::signed_grid(4), sq::signed_grid(8),
                            sq::unsigned_grid(4), sq::ternary_grid(), sq::signed_grid(1)};
  const std::pair<layout_kind, std::size_t> layouts[] = {{layout_kind::per_tensor, 0},
                                                         {layout_kind::per_channel, 100},
                                                         {layout_kind::per_group, 60},
                                                         {layout_kind::per_column, 12}};
  for (sq::grid const& g : grids) {
    for (auto const& layout : layouts) {
      const layout_kind kind = layout.first;  // not a structured binding: CAPTURE takes it into a lambda
      const std::size_t extent = layout.second;
      for (bool with_offsets : {false, true}) {
        CAPTURE(g.qmin());
        CAPTURE(g.qmax());
        CAPTURE(g.is_binary());
        CAPTURE(static_cast<int>(kind));
        CAPTURE(with_offsets);
        const random_setup setup{g, kind, extent, with_offsets};
        random_check<T>(setup, sq::ste{}, false, rng);
        random_check<T>(setup, sq::fourier_surrogate<1>{}, true, rng);
      }
    }
  }
}
