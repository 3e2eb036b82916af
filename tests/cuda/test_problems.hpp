// Test problems shared by the CUDA backend's host tests (g++) and device tests
// (nvcc): inputs with special values, and the tolerance checks against exec::seq.
#pragma once

#include <doctest/doctest.h>

#include <stableqat/exec/cuda/storage.hpp>
#include <stableqat/ops.hpp>
#include <stableqat/quantizer.hpp>

#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "../reference.hpp"

namespace stableqat::test {

namespace sq = stableqat;

template <class E>
using compute_t = typename sq::exec::storage_traits<E>::compute_type;

template <class E>
compute_t<E> widen(E e) {
  return sq::exec::storage_traits<E>::to_compute(e);
}

/// One test problem: inputs stored as E, steps/offsets as T.
template <class E>
struct problem {
  using T = compute_t<E>;
  std::vector<E> x, dy;
  std::vector<T> steps, offsets;
};

/// Random inputs spread over and beyond the grid, with exact ties, grid edges,
/// ±0, ±inf and (when `nan`) a NaN.
template <class E>
problem<E> make_problem(sq::grid const& g, sq::step_layout const& layout, std::size_t numel, bool nan,
                        unsigned seed) {
  using T = compute_t<E>;
  using traits = sq::exec::storage_traits<E>;
  problem<E> p;
  std::mt19937 rng(seed);
  const std::size_t count = layout.step_count(numel);
  std::uniform_real_distribution<double> step_dist(0.05, 0.4);
  for (std::size_t k = 0; k < count; ++k) {
    p.steps.push_back(static_cast<T>(step_dist(rng)));
    p.offsets.push_back(static_cast<T>(step_dist(rng) - 0.2));
  }
  std::normal_distribution<double> normal(0.0, 1.0);
  // v = x / step around the grid's middle, about 70 % of it inside the grid.
  const double middle = 0.5 * (g.qmin() + g.qmax());
  const double spread = 0.5 * (g.qmax() - g.qmin() + 2);
  for (std::size_t i = 0; i < numel; ++i) {
    const T step = p.steps[layout.step_index(i)];
    double value;
    switch (i % 11) {
      case 3:  // an exact tie (k + 1/2) * step
        value = (std::floor(normal(rng) * 3.0) + 0.5) * static_cast<double>(step);
        break;
      case 7:  // the grid edges
        value = static_cast<double>(i % 2 == 0 ? g.qmax() : g.qmin()) * static_cast<double>(step);
        break;
      default:
        value = (middle + normal(rng) * spread) * static_cast<double>(step);
    }
    p.x.push_back(traits::to_storage(static_cast<T>(value)));
    p.dy.push_back(traits::to_storage(static_cast<T>(normal(rng))));
  }
  const T specials[] = {T(0), -T(0), std::numeric_limits<T>::infinity(), -std::numeric_limits<T>::infinity()};
  for (std::size_t s = 0; s < 4 && 5 * s + 1 < numel; ++s) {
    p.x[5 * s + 1] = traits::to_storage(specials[s]);
  }
  if (nan && numel > 2) {
    p.x[numel - 2] = traits::to_storage(std::numeric_limits<T>::quiet_NaN());
  }
  return p;
}

template <class E>
std::vector<compute_t<E>> widened(std::vector<E> const& v) {
  std::vector<compute_t<E>> out;
  for (E e : v) {
    out.push_back(widen(e));
  }
  return out;
}

/// sum |dstep term| (and |doffset term|) per step: the scale of the step
/// gradient's rounding error.
template <class T, class S>
std::vector<double> absolute_term_sums(sq::quantizer<T, S> const& q, std::vector<T> const& x,
                                       std::vector<T> const& dy, std::vector<T> const& steps,
                                       std::vector<T> const& offsets, bool has_offsets, bool offset_terms) {
  std::vector<double> sums(steps.size(), 0.0);
  sq::visit_levels<T>(q.grid(), [&](auto const& levels) {
    for (std::size_t i = 0; i < x.size(); ++i) {
      const std::size_t k = q.layout().step_index(i);
      const T offset = has_offsets ? offsets[k] : T(0);
      const auto g = sq::fake_quantize_backward_element(x[i], dy[i], T(1) / steps[k], offset, levels, q.surrogate());
      sums[k] += std::fabs(static_cast<double>(offset_terms ? g.doffset : g.dstep));
    }
  });
  return sums;
}

/// sum_k steps[k] * sum over step k of |parameter term|: the scale of a
/// learnable surrogate's parameter gradient's rounding error (0 without one).
template <class T, class S>
double absolute_parameter_sum(sq::quantizer<T, S> const& q, std::vector<T> const& x, std::vector<T> const& dy,
                              std::vector<T> const& steps, std::vector<T> const& offsets, bool has_offsets) {
  double sum = 0.0;
  if constexpr (sq::learnable_surrogate<S>) {
    sq::visit_levels<T>(q.grid(), [&](auto const& levels) {
      for (std::size_t i = 0; i < x.size(); ++i) {
        const std::size_t k = q.layout().step_index(i);
        const T offset = has_offsets ? offsets[k] : T(0);
        const auto g = sq::fake_quantize_backward_element(x[i], dy[i], T(1) / steps[k], offset, levels, q.surrogate());
        sum += static_cast<double>(steps[k]) * std::fabs(static_cast<double>(g.dparameters[0]));
      }
    });
  }
  return sum;
}

/// exec::seq's answer to a problem, the reference of both CUDA checks: the
/// widened inputs, y, and the backward pass with the default LSQ grad scale
/// (and a learnable surrogate's parameter gradient), plus the magnitudes the
/// gradient tolerances scale with.
template <class T>
struct seq_reference {
  std::vector<T> x, dy, y, dx, dsteps, doffsets, dparameters;
  double grad_scale = 1.0;
  std::vector<double> step_scale, offset_scale;
  double parameter_scale = 0.0;
};

template <class E, class S>
seq_reference<compute_t<E>> run_seq(sq::quantizer<compute_t<E>, S> const& q, problem<E> const& p, bool has_offsets) {
  using T = compute_t<E>;
  const std::size_t numel = p.x.size();
  seq_reference<T> r;
  r.x = widened(p.x);
  r.dy = widened(p.dy);
  r.y.resize(numel);
  r.dx.resize(numel);
  r.dsteps.resize(p.steps.size());
  r.doffsets.resize(p.steps.size());
  if (has_offsets) {
    sq::fake_quantize(sq::exec::seq, q, r.x, p.steps, r.y, p.offsets);
  } else {
    sq::fake_quantize(sq::exec::seq, q, r.x, p.steps, r.y);
  }
  if constexpr (sq::learnable_surrogate<S>) {
    r.dparameters.assign(S::parameter_count, T(0));
    if (has_offsets) {
      sq::fake_quantize_backward(sq::exec::seq, q, r.x, p.steps, r.dy, r.dx, r.dsteps, p.offsets, r.doffsets,
                                 r.dparameters);
    } else {
      sq::fake_quantize_backward(sq::exec::seq, q, r.x, p.steps, r.dy, r.dx, r.dsteps, r.dparameters);
    }
  } else if (has_offsets) {
    sq::fake_quantize_backward(sq::exec::seq, q, r.x, p.steps, r.dy, r.dx, r.dsteps, p.offsets, r.doffsets);
  } else {
    sq::fake_quantize_backward(sq::exec::seq, q, r.x, p.steps, r.dy, r.dx, r.dsteps);
  }
  r.grad_scale = sq::lsq_grad_scale(numel, q.grid());
  r.step_scale = absolute_term_sums(q, r.x, r.dy, p.steps, p.offsets, has_offsets, false);
  r.offset_scale = absolute_term_sums(q, r.x, r.dy, p.steps, p.offsets, has_offsets, true);
  r.parameter_scale = absolute_parameter_sum(q, r.x, r.dy, p.steps, p.offsets, has_offsets);
  return r;
}

/// A learnable surrogate's parameter gradient against exec::seq's: the sums
/// differ in order only, so within 1e-6 (float) / 1e-12 (double) of the sum of
/// |s * term| (one rounding to T included).
template <class T>
void check_parameter_gradient(T got, T expected, double scale) {
  const double tolerance = std::is_same_v<T, float> ? 1e-6 : 1e-12;
  INFO("dparameters[0] = " << got << ", seq gives " << expected << ", sum |terms| = " << scale);
  REQUIRE(std::isfinite(got));
  REQUIRE(std::fabs(static_cast<double>(got) - static_cast<double>(expected)) <=
          tolerance * scale + std::numeric_limits<double>::denorm_min());
}

/// dx tolerance of a device against exec::seq in ulps: 0 for the STE (g = 1),
/// `otherwise` for every other surrogate (FMA contraction may differ).
template <class S>
constexpr double dx_ulps_for(double otherwise) {
  if constexpr (requires { S::harmonics; }) {
    return S::harmonics == 0 ? 0.0 : otherwise;
  } else {
    return otherwise;
  }
}

template <class T>
void check_step_gradients(std::vector<T> const& got, std::vector<T> const& expected, std::vector<double> const& scale,
                          double grad_scale, const char* what) {
  REQUIRE(got.size() == expected.size());
  const double tolerance = std::is_same_v<T, float> ? 1e-6 : 1e-12;
  for (std::size_t k = 0; k < got.size(); ++k) {
    INFO(what << "[" << k << "] = " << got[k] << ", seq gives " << expected[k]);
    if (std::isnan(expected[k])) {
      REQUIRE(std::isnan(got[k]));
    } else {
      REQUIRE(std::fabs(static_cast<double>(got[k]) - static_cast<double>(expected[k])) <=
              tolerance * grad_scale * scale[k] + std::numeric_limits<double>::denorm_min());
    }
  }
}

/// The problem a check runs, for INFO: layout, grid, size and offsets.
template <class T, class S>
std::string describe(sq::quantizer<T, S> const& q, std::size_t numel, bool has_offsets) {
  return std::string(q.layout().name()) + "(" + std::to_string(q.layout().extent()) + "), grid [" +
         std::to_string(q.grid().qmin()) + ", " + std::to_string(q.grid().qmax()) + "], numel " +
         std::to_string(numel) + (has_offsets ? ", with offsets" : ", no offsets");
}

/// Layouts with short rows, rows split into tiles, narrow and wide column sets.
struct layout_case {
  sq::step_layout layout;
  std::size_t numel;
};

inline std::vector<layout_case> layout_cases() {
  return {
      {sq::per_tensor(), 1},           {sq::per_tensor(), 13},           {sq::per_tensor(), 1001},
      {sq::per_channel(37), 37 * 11},  {sq::per_channel(300), 300 * 5},  {sq::per_channel(64), 64 * 9},
      {sq::per_group(8), 8 * 40},      {sq::per_group(3), 3 * 7},        {sq::per_column(5), 5 * 50},
      {sq::per_column(130), 130 * 40}, {sq::per_column(64), 64 * 3},     {sq::per_column(9), 9 * 300},
  };
}

}  // namespace stableqat::test
