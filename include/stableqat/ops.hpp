// stableqat/ops.hpp: the front-end, fake_quantize and fake_quantize_backward.
//
// Validate every argument, then hand the buffers to the policy's backend.
// Nothing is written to an output before all checks have passed.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <type_traits>

#include "core/errors.hpp"
#include "core/lsq.hpp"
#include "exec/arguments.hpp"
#include "exec/policy.hpp"
#include "exec/seq.hpp"
#include "quantizer.hpp"

namespace stableqat {

namespace ops_detail {

template <class T>
using input = std::type_identity_t<std::span<const T>>;
template <class T>
using output = std::type_identity_t<std::span<T>>;

inline constexpr const char* forward_name = "stableqat::fake_quantize";
inline constexpr const char* backward_name = "stableqat::fake_quantize_backward";

template <class Policy, real_scalar T, class S>
void run_forward(Policy const& policy, quantizer<T, S> const& q, exec::forward_arguments<T> const& a) {
  exec::validation::check_forward_shapes(forward_name, q.layout(), a);
  exec::validation::check_step_values(forward_name, a.steps);
  if (a.has_offsets) {
    exec::validation::check_offset_values(forward_name, a.offsets);
  }
  if (!a.x.empty()) {
    exec::backend<Policy>::forward(policy, q, a);
  }
}

template <class Policy, real_scalar T, class S>
void run_backward(Policy const& policy, quantizer<T, S> const& q, exec::backward_arguments<T> a,
                  std::optional<double> grad_scale) {
  a.grad_scale = grad_scale ? *grad_scale : 1.0;
  exec::validation::check_backward_shapes(backward_name, q.layout(), a);
  exec::validation::check_step_values(backward_name, a.steps);
  if (a.has_offsets) {
    exec::validation::check_offset_values(backward_name, a.offsets);
  }
  if (a.x.empty()) {
    for (T& d : a.dsteps) d = T(0);
    for (T& d : a.doffsets) d = T(0);
    return;
  }
  if (!grad_scale) {
    a.grad_scale = lsq_grad_scale(a.x.size(), q.grid());
  }
  exec::backend<Policy>::backward(policy, q, a);
}

}  // namespace ops_detail

/// Forward fake quantization, y[i] = s * clamp(round_half_even(x[i] * (1/s)), qmin, qmax)
/// with s = steps[layout.step_index(i)] (sign(v) on the binary grid).
///
/// x and y have the same size (y may be x itself); steps.size() must equal
/// q.layout().step_count(x.size()); every step positive and finite with a
/// finite reciprocal. NaN gives NaN; ±Inf clamp to the grid edge. Throws
/// std::invalid_argument naming the argument, before writing anything.
template <exec::execution_policy Policy, real_scalar T, class S>
void fake_quantize(Policy const& policy, quantizer<T, S> const& q, ops_detail::input<T> x,
                   ops_detail::input<T> steps, ops_detail::output<T> y) {
  ops_detail::run_forward(policy, q, exec::forward_arguments<T>{x, steps, {}, y, false});
}

/// Forward with a learnable offset per step (LSQ+): y = s * clamp(round((x - b)/s)) + b,
/// offsets.size() == steps.size(), offsets finite.
template <exec::execution_policy Policy, real_scalar T, class S>
void fake_quantize(Policy const& policy, quantizer<T, S> const& q, ops_detail::input<T> x,
                   ops_detail::input<T> steps, ops_detail::output<T> y, ops_detail::input<T> offsets) {
  ops_detail::run_forward(policy, q, exec::forward_arguments<T>{x, steps, offsets, y, true});
}

/// Backward pass for upstream gradient dy (see docs/math.md):
///   dx[i]    = inside ? g(r) * dy[i] : 0,   inside = qmin <= v <= qmax, r = v - round(v)
///   dsteps[k] = grad_scale * sum over step k of dy * (inside ? level - v : level)
/// grad_scale defaults to lsq_grad_scale(x.size(), q.grid()). dx may alias x or
/// dy; dsteps must not overlap any other buffer. Empty x sets dsteps to 0.
template <exec::execution_policy Policy, real_scalar T, class S>
void fake_quantize_backward(Policy const& policy, quantizer<T, S> const& q, ops_detail::input<T> x,
                            ops_detail::input<T> steps, ops_detail::input<T> dy, ops_detail::output<T> dx,
                            ops_detail::output<T> dsteps, std::optional<double> grad_scale = std::nullopt) {
  ops_detail::run_backward(policy, q, exec::backward_arguments<T>{x, steps, {}, dy, dx, dsteps, {}, 1.0, false},
                           grad_scale);
}

/// Backward with offsets: additionally doffsets[k] = grad_scale * sum over step k
/// of (dy - dx), so that dx + db = dy element by element.
template <exec::execution_policy Policy, real_scalar T, class S>
void fake_quantize_backward(Policy const& policy, quantizer<T, S> const& q, ops_detail::input<T> x,
                            ops_detail::input<T> steps, ops_detail::input<T> dy, ops_detail::output<T> dx,
                            ops_detail::output<T> dsteps, ops_detail::input<T> offsets,
                            ops_detail::output<T> doffsets, std::optional<double> grad_scale = std::nullopt) {
  ops_detail::run_backward(
      policy, q, exec::backward_arguments<T>{x, steps, offsets, dy, dx, dsteps, doffsets, 1.0, true}, grad_scale);
}

}  // namespace stableqat
