// stableqat/core/step_init.hpp: initial step sizes from the data.
#pragma once

#include <cmath>
#include <cstddef>
#include <span>

#include "errors.hpp"
#include "grid.hpp"
#include "layout.hpp"

namespace stableqat {

namespace step_init_detail {

// Sum and max of |x| over one group, in double; throws on a non-finite element.
struct magnitude_stats {
  double sum = 0.0;
  double max = 0.0;
};

template <real_scalar T>
magnitude_stats magnitudes(const char* function, std::span<const T> x, std::size_t first, std::size_t count,
                              std::size_t stride) {
  magnitude_stats stats;
  for (std::size_t j = 0; j < count; ++j) {
    const std::size_t i = first + j * stride;
    const double value = static_cast<double>(x[i]);
    if (!std::isfinite(value)) {
      detail::throw_invalid_argument(function, detail::indexed_name("x", i), value, "is not finite");
    }
    const double magnitude = std::fabs(value);
    stats.sum += magnitude;
    stats.max = magnitude > stats.max ? magnitude : stats.max;
  }
  return stats;
}

enum class rule { lsq, max_abs, mean_abs, paretoq };

// ParetoQ's per-grid choice (its reference code): mean|x| on the binary grid,
// max|x| on ternary, 2-bit and stretched elastic grids (qmax <= 1), max|x|/qmax from 3 bits.
inline rule paretoq_rule(grid const& g) { return g.is_binary() ? rule::mean_abs : rule::max_abs; }

template <real_scalar T>
double step_from(const char* function, rule which, magnitude_stats const& stats, std::size_t count,
                 grid const& g, std::size_t group) {
  if (which == rule::paretoq) {
    which = paretoq_rule(g);
  }
  const double mean = stats.sum / static_cast<double>(count);
  const double step = which == rule::lsq        ? 2.0 * mean / std::sqrt(positive_levels(g))
                      : which == rule::mean_abs ? mean
                                                : stats.max / positive_levels(g);
  const auto as_t = static_cast<T>(step);
  if (!(as_t > T(0)) || !std::isfinite(static_cast<double>(as_t)) || !std::isfinite(static_cast<double>(T(1) / as_t))) {
    detail::throw_invalid_argument(function, detail::indexed_name("step", group), step,
                                   "is not a usable step (the group is all zeros or too small); pass a step yourself");
  }
  return step;
}

template <real_scalar T>
void init_steps(const char* function, rule which, std::span<const T> x, grid const& g, step_layout const& layout,
                std::span<T> steps) {
  const std::size_t numel = x.size();
  if (numel == 0) {
    detail::throw_invalid_argument(function, "x.size()", numel, "must be positive");
  }
  detail::check_layout(function, layout, numel, steps.size());
  const std::size_t count = steps.size();
  const bool by_column = layout.step_per_column();
  const std::size_t per_step = numel / count;
  // Validate and compute everything first, write afterwards: nothing is
  // written when an argument is bad. Reuse steps only after all checks.
  for (std::size_t k = 0; k < count; ++k) {
    const auto stats = by_column ? magnitudes(function, x, k, per_step, count)
                                 : magnitudes(function, x, k * per_step, per_step, 1);
    (void)step_from<T>(function, which, stats, per_step, g, k);
  }
  for (std::size_t k = 0; k < count; ++k) {
    const auto stats = by_column ? magnitudes(function, x, k, per_step, count)
                                 : magnitudes(function, x, k * per_step, per_step, 1);
    steps[k] = static_cast<T>(step_from<T>(function, which, stats, per_step, g, k));
  }
}

/// One named initial step rule (lsq_init_step, ...), for the whole tensor.
/// A function object rather than a pair of float/double overloads per name:
/// one definition serves every rule, and the non-template call operators keep
/// the conversions of a function (std::vector<float> -> std::span<const float>).
template <rule Rule>
struct step_initializer {
  const char* function;  ///< the public name, for error messages

  double operator()(std::span<const float> x, grid const& g) const { return one_step(x, g); }
  double operator()(std::span<const double> x, grid const& g) const { return one_step(x, g); }

 private:
  template <real_scalar T>
  double one_step(std::span<const T> x, grid const& g) const {
    T step = 0;
    init_steps<T>(function, Rule, x, g, per_tensor(), std::span<T>(&step, 1));
    return static_cast<double>(step);
  }
};

/// The same rule for every step of a layout (lsq_init_steps, ...).
template <rule Rule>
struct steps_initializer {
  const char* function;  ///< the public name, for error messages

  void operator()(std::span<const float> x, grid const& g, step_layout const& layout, std::span<float> steps) const {
    init_steps<float>(function, Rule, x, g, layout, steps);
  }
  void operator()(std::span<const double> x, grid const& g, step_layout const& layout,
                  std::span<double> steps) const {
    init_steps<double>(function, Rule, x, g, layout, steps);
  }
};

}  // namespace step_init_detail

// Each initializer takes x as std::span<const float> or std::span<const double>
// (anything that converts: std::vector, std::array) and returns the step as a
// double, or writes one step per step of `layout` (steps.size() must equal
// layout.step_count(x.size())). Errors: std::invalid_argument naming the
// argument for an empty x, a non-finite element, or data whose step would not
// be usable (all zeros); nothing is written when an argument is bad.

/// LSQ's initial step 2 * mean|x| / sqrt(max(qmax, 1)) (Esser et al. 2019).
inline constexpr step_init_detail::step_initializer<step_init_detail::rule::lsq> lsq_init_step{
    "stableqat::lsq_init_step"};

/// Max-abs initial step max|x| / max(qmax, 1): the largest magnitude lands on
/// the top level (what the official StableQAT code uses).
inline constexpr step_init_detail::step_initializer<step_init_detail::rule::max_abs> max_abs_init_step{
    "stableqat::max_abs_init_step"};

/// Mean-abs initial step mean|x|: ParetoQ's 1-bit scale (y = mean|x| sign(x)
/// minimises |x - y|^2 over the scale).
inline constexpr step_init_detail::step_initializer<step_init_detail::rule::mean_abs> mean_abs_init_step{
    "stableqat::mean_abs_init_step"};

/// ParetoQ's / the official StableQAT code's initial step by grid: mean|x| on
/// the binary grid (1 bit), max|x| on ternary, 2-bit and stretched elastic
/// grids, max|x|/qmax from 3 bits (max_abs_init_step does the last two).
inline constexpr step_init_detail::step_initializer<step_init_detail::rule::paretoq> paretoq_init_step{
    "stableqat::paretoq_init_step"};

/// lsq_init_step for every step of `layout`.
inline constexpr step_init_detail::steps_initializer<step_init_detail::rule::lsq> lsq_init_steps{
    "stableqat::lsq_init_steps"};

/// max_abs_init_step for every step of `layout`.
inline constexpr step_init_detail::steps_initializer<step_init_detail::rule::max_abs> max_abs_init_steps{
    "stableqat::max_abs_init_steps"};

/// mean_abs_init_step for every step of `layout`.
inline constexpr step_init_detail::steps_initializer<step_init_detail::rule::mean_abs> mean_abs_init_steps{
    "stableqat::mean_abs_init_steps"};

/// paretoq_init_step for every step of `layout` (per_channel: ParetoQ's max|w_row|).
inline constexpr step_init_detail::steps_initializer<step_init_detail::rule::paretoq> paretoq_init_steps{
    "stableqat::paretoq_init_steps"};

}  // namespace stableqat
