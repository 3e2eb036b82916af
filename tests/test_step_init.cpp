// Initial steps from data: LSQ's 2*mean|x|/sqrt(qmax) and max|x|/qmax.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <span>
#include <type_traits>
#include <vector>

#include <stableqat/core/grid.hpp>
#include <stableqat/core/layout.hpp>
#include <stableqat/core/step_init.hpp>

#include "reference.hpp"

namespace sq = stableqat;

namespace {

template <class T>
constexpr double tolerance() {
  return std::is_same_v<T, float> ? 1e-7 : 1e-15;
}

}  // namespace

TEST_CASE_TEMPLATE("lsq_init_step and max_abs_init_step: closed forms", T, float, double) {
  const std::vector<T> x{T(1), T(-2), T(3), T(-4)};  // mean|x| = 2.5, max|x| = 4
  const double sqrt7 = std::sqrt(7.0);
  CHECK(sq::lsq_init_step(std::span<const T>(x), sq::signed_grid(4)) ==
        doctest::Approx(5.0 / sqrt7).epsilon(tolerance<T>()));
  CHECK(sq::max_abs_init_step(std::span<const T>(x), sq::signed_grid(4)) ==
        doctest::Approx(4.0 / 7.0).epsilon(tolerance<T>()));
  // qmax = 1 grids divide by 1.
  CHECK(sq::lsq_init_step(std::span<const T>(x), sq::signed_grid(1)) == doctest::Approx(5.0).epsilon(tolerance<T>()));
  CHECK(sq::lsq_init_step(std::span<const T>(x), sq::ternary_grid()) == doctest::Approx(5.0).epsilon(tolerance<T>()));
  CHECK(sq::max_abs_init_step(std::span<const T>(x), sq::signed_grid(1)) == 4.0);
  CHECK(sq::lsq_init_step(std::span<const T>(x), sq::unsigned_grid(2)) ==
        doctest::Approx(5.0 / std::sqrt(3.0)).epsilon(tolerance<T>()));
  CHECK(sq::max_abs_init_step(std::span<const T>(x), sq::unsigned_grid(8)) ==
        doctest::Approx(4.0 / 255.0).epsilon(tolerance<T>()));
  CHECK(sq::max_abs_init_step(std::span<const T>(x), sq::signed_grid(8)) ==
        doctest::Approx(4.0 / 127.0).epsilon(tolerance<T>()));
}

TEST_CASE_TEMPLATE("lsq_init_steps and max_abs_init_steps: one closed form per step of each layout", T, float,
                   double) {
  const std::vector<T> x{T(1), T(-2), T(3), T(-4), T(0.5), T(-6)};
  const sq::grid g = sq::signed_grid(4);  // qmax = 7
  const double r7 = std::sqrt(7.0);
  struct expectation {
    sq::step_layout layout;
    std::vector<double> lsq, max_abs;
  };
  const expectation cases[] = {
      {sq::per_tensor(), {2 * (16.5 / 6) / r7}, {6.0 / 7}},
      {sq::per_channel(2), {2 * 1.5 / r7, 2 * 3.5 / r7, 2 * 3.25 / r7}, {2.0 / 7, 4.0 / 7, 6.0 / 7}},
      {sq::per_channel(3), {2 * 2.0 / r7, 2 * 3.5 / r7}, {3.0 / 7, 6.0 / 7}},
      {sq::per_group(6), {2 * (16.5 / 6) / r7}, {6.0 / 7}},
      // columns of per_column(2): {1, 3, 0.5} and {-2, -4, -6}
      {sq::per_column(2), {2 * (4.5 / 3) / r7, 2 * 4.0 / r7}, {3.0 / 7, 6.0 / 7}},
      // columns of per_column(3): {1, -4}, {-2, 0.5}, {3, -6}
      {sq::per_column(3), {2 * 2.5 / r7, 2 * 1.25 / r7, 2 * 4.5 / r7}, {4.0 / 7, 2.0 / 7, 6.0 / 7}},
  };
  for (expectation const& c : cases) {
    CAPTURE(c.layout.name());
    CAPTURE(c.layout.extent());
    std::vector<T> steps(c.lsq.size(), T(-1));
    sq::lsq_init_steps(std::span<const T>(x), g, c.layout, std::span<T>(steps));
    for (std::size_t k = 0; k < steps.size(); ++k) {
      CHECK(static_cast<double>(steps[k]) == doctest::Approx(c.lsq[k]).epsilon(tolerance<T>()));
    }
    std::fill(steps.begin(), steps.end(), T(-1));
    sq::max_abs_init_steps(std::span<const T>(x), g, c.layout, std::span<T>(steps));
    for (std::size_t k = 0; k < steps.size(); ++k) {
      CHECK(static_cast<double>(steps[k]) == doctest::Approx(c.max_abs[k]).epsilon(tolerance<T>()));
    }
  }
}

TEST_CASE_TEMPLATE("step initialisation: bad input throws, naming the argument, and writes nothing", T, float,
                   double) {
  const sq::grid g = sq::signed_grid(4);
  const T nan = std::numeric_limits<T>::quiet_NaN();
  const T inf = std::numeric_limits<T>::infinity();
  const std::vector<T> empty;
  reference::check_invalid_argument([&] { (void)sq::lsq_init_step(std::span<const T>(empty), g); },
                                    {"lsq_init_step", "x.size() = 0"});
  reference::check_invalid_argument([&] { (void)sq::max_abs_init_step(std::span<const T>(empty), g); },
                                    {"max_abs_init_step", "x.size() = 0"});
  const std::vector<T> with_nan{T(1), nan, T(2)};
  reference::check_invalid_argument([&] { (void)sq::lsq_init_step(std::span<const T>(with_nan), g); },
                                    {"x[1] = nan"});
  const std::vector<T> with_inf{T(1), T(2), -inf};
  reference::check_invalid_argument([&] { (void)sq::max_abs_init_step(std::span<const T>(with_inf), g); },
                                    {"x[2] = -inf"});
  const std::vector<T> zeros{T(0), T(-0.0), T(0)};
  reference::check_invalid_argument([&] { (void)sq::lsq_init_step(std::span<const T>(zeros), g); }, {"step[0] = 0"});
  reference::check_invalid_argument([&] { (void)sq::max_abs_init_step(std::span<const T>(zeros), g); },
                                    {"step[0] = 0"});

  // Per-step variants: the sentinel survives every failed call.
  const T sentinel = T(-7);
  auto untouched = [&](std::vector<T> const& steps) {
    for (T s : steps) CHECK(s == sentinel);
  };
  const std::vector<T> x{T(1), T(2), T(0), T(-0.0), T(3), T(4)};  // second row of per_channel(2) is all zero
  {
    std::vector<T> steps(3, sentinel);
    reference::check_invalid_argument(
        [&] { sq::lsq_init_steps(std::span<const T>(x), g, sq::per_channel(2), std::span<T>(steps)); },
        {"lsq_init_steps", "step[1] = 0"});
    untouched(steps);
    reference::check_invalid_argument(
        [&] { sq::max_abs_init_steps(std::span<const T>(x), g, sq::per_group(2), std::span<T>(steps)); },
        {"max_abs_init_steps", "step[1] = 0"});
    untouched(steps);
  }
  {
    const std::vector<T> late_nan{T(1), T(2), T(3), T(4), T(5), nan};  // the bad value is in the last step
    std::vector<T> steps(3, sentinel);
    reference::check_invalid_argument(
        [&] { sq::lsq_init_steps(std::span<const T>(late_nan), g, sq::per_channel(2), std::span<T>(steps)); },
        {"x[5] = nan"});
    untouched(steps);
    std::vector<T> column_steps(2, sentinel);
    reference::check_invalid_argument(
        [&] { sq::max_abs_init_steps(std::span<const T>(late_nan), g, sq::per_column(2), std::span<T>(column_steps)); },
        {"x[5] = nan"});
    untouched(column_steps);
  }
  {
    std::vector<T> steps(2, sentinel);  // per_channel(2) on 6 elements needs 3
    reference::check_invalid_argument(
        [&] { sq::lsq_init_steps(std::span<const T>(x), g, sq::per_channel(2), std::span<T>(steps)); },
        {"steps.size() = 2"});
    untouched(steps);
    std::vector<T> too_many(3, sentinel);  // per_tensor needs 1
    reference::check_invalid_argument(
        [&] { sq::max_abs_init_steps(std::span<const T>(x), g, sq::per_tensor(), std::span<T>(too_many)); },
        {"steps.size() = 3"});
    untouched(too_many);
    reference::check_invalid_argument(
        [&] { sq::lsq_init_steps(std::span<const T>(x), g, sq::per_group(4), std::span<T>(too_many)); },
        {"x.size() = 6", "4"});
    untouched(too_many);
    std::vector<T> none;
    reference::check_invalid_argument(
        [&] { sq::lsq_init_steps(std::span<const T>(empty), g, sq::per_channel(2), std::span<T>(none)); },
        {"x.size() = 0"});
  }
}

TEST_CASE("step initialisation: a float step whose reciprocal overflows is refused") {
  // 2 * mean|x| / sqrt(7) for the smallest subnormal is a subnormal float (or 0): 1/step = inf.
  const std::vector<float> tiny(4, std::numeric_limits<float>::denorm_min());
  reference::check_invalid_argument([&] { (void)sq::lsq_init_step(std::span<const float>(tiny), sq::signed_grid(4)); },
                                    {"step[0]"});
  // The same data is fine in double.
  const std::vector<double> tiny_double(4, static_cast<double>(std::numeric_limits<float>::denorm_min()));
  CHECK(sq::lsq_init_step(std::span<const double>(tiny_double), sq::signed_grid(4)) ==
        doctest::Approx(2.0 * static_cast<double>(std::numeric_limits<float>::denorm_min()) / std::sqrt(7.0)));
}
