// stableqat/ops.hpp: the front-end, fake_quantize and fake_quantize_backward.
//
// Validate every argument, then hand the buffers to the policy's backend.
// Nothing is written to an output before all checks have passed.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
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

/// True when the policy's backend runs every surrogate hook (own rounding,
/// learnable parameters); a backend opts in with
/// `static constexpr bool supports_estimator_surrogates = true`.
template <class Policy>
constexpr bool backend_supports_estimator_surrogates() {
  if constexpr (requires { exec::backend<Policy>::supports_estimator_surrogates; }) {
    return exec::backend<Policy>::supports_estimator_surrogates;
  } else {
    return false;
  }
}

/// Compile-time: a surrogate with its own rounding or learnable parameters
/// (dsq_surrogate) needs a backend that opted in (today exec::seq).
template <class Policy, class S>
constexpr void check_backend_runs_surrogate() {
  static_assert(!surrogate_needs_estimator_backend<S> || backend_supports_estimator_surrogates<Policy>(),
                "this surrogate (own rounding rule or learnable parameters, e.g. dsq_surrogate) is not yet "
                "supported on this backend: use exec::seq");
}

/// Run time: surrogates defined on the integer grid (own rounding or band,
/// e.g. dsq_surrogate) refuse the binary and stretched elastic grids.
template <class S>
void check_grid_fits_surrogate(const char* function, grid const& g) {
  if constexpr (surrogate_needs_uniform_grid<S>) {
    if (g.is_binary() || g.is_stretched_elastic()) {
      detail::throw_invalid_argument(function, g.is_binary() ? "grid.is_binary()" : "grid.is_stretched_elastic()", 1,
                                     "but this surrogate (own rounding or band, e.g. dsq_surrogate) is defined on "
                                     "uniform integer grids only");
    }
  } else {
    (void)function;
    (void)g;
  }
}

/// dparameters: one gradient per learnable parameter, a buffer of its own.
template <class S, real_scalar T>
void check_parameter_gradients(exec::backward_arguments<T> const& a, std::span<T> dparameters) {
  constexpr std::size_t count = surrogate_parameter_count<S>;
  if (dparameters.size() != count) {
    detail::throw_invalid_argument(backward_name, "dparameters.size()", dparameters.size(),
                                   "differs from the surrogate's parameter count " + std::to_string(count));
  }
  using exec::validation::check_disjoint;
  check_disjoint(backward_name, "dparameters", dparameters, "x", a.x);
  check_disjoint(backward_name, "dparameters", dparameters, "steps", a.steps);
  check_disjoint(backward_name, "dparameters", dparameters, "dy", a.dy);
  check_disjoint(backward_name, "dparameters", dparameters, "dx", a.dx);
  check_disjoint(backward_name, "dparameters", dparameters, "dsteps", a.dsteps);
  if (a.has_offsets) {
    check_disjoint(backward_name, "dparameters", dparameters, "offsets", a.offsets);
    check_disjoint(backward_name, "dparameters", dparameters, "doffsets", a.doffsets);
  }
}

template <class Policy, real_scalar T, class S>
void run_forward(Policy const& policy, quantizer<T, S> const& q, exec::forward_arguments<T> const& a) {
  check_backend_runs_surrogate<Policy, S>();
  check_grid_fits_surrogate<S>(forward_name, q.grid());
  exec::validation::check_forward_shapes(forward_name, q.layout(), a);
  exec::validation::check_step_values(forward_name, a.steps);
  if (a.has_offsets) {
    exec::validation::check_offset_values(forward_name, a.offsets);
  }
  if (!a.x.empty()) {
    exec::backend<Policy>::forward(policy, q, a);
  }
}

/// `WithParameters`: the caller passed `dparameters` (required exactly for
/// learnable surrogates, so a parameter gradient is never dropped silently).
template <bool WithParameters = false, class Policy, real_scalar T, class S>
void run_backward(Policy const& policy, quantizer<T, S> const& q, exec::backward_arguments<T> a,
                  std::optional<double> grad_scale, std::span<T> dparameters = {}) {
  static_assert(WithParameters == learnable_surrogate<S>,
                "a learnable surrogate (e.g. dsq_surrogate) needs the fake_quantize_backward overload with "
                "`dparameters`; other surrogates have no parameters to pass");
  check_backend_runs_surrogate<Policy, S>();
  check_grid_fits_surrogate<S>(backward_name, q.grid());
  a.grad_scale = grad_scale ? *grad_scale : 1.0;
  exec::validation::check_backward_shapes(backward_name, q.layout(), a);
  if constexpr (WithParameters) {
    check_parameter_gradients<S>(a, dparameters);
  }
  exec::validation::check_step_values(backward_name, a.steps);
  if (a.has_offsets) {
    exec::validation::check_offset_values(backward_name, a.offsets);
  }
  if (a.x.empty()) {
    for (T& d : a.dsteps) d = T(0);
    for (T& d : a.doffsets) d = T(0);
    for (T& d : dparameters) d = T(0);
    return;
  }
  if (!grad_scale) {
    a.grad_scale = lsq_grad_scale(a.x.size(), q.grid());
  }
  if constexpr (WithParameters) {
    exec::backend<Policy>::backward(policy, q, a, dparameters);
  } else {
    exec::backend<Policy>::backward(policy, q, a);
  }
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

/// Backward for a surrogate with learnable parameters (learnable_surrogate<S>,
/// e.g. dsq_surrogate): as above, and additionally
///   dparameters[j] = sum over every element of inside ? dy * s * dL/dp_j : 0
/// (s = the element's step, L the surrogate's soft level; no grad_scale),
/// summed deterministically. dparameters.size() must equal
/// surrogate_parameter_count<S> (1 for DSQ: d alpha) and it must not overlap
/// any other buffer. Runs on exec::seq (other backends: a compile-time error
/// for now).
template <exec::execution_policy Policy, real_scalar T, learnable_surrogate S>
void fake_quantize_backward(Policy const& policy, quantizer<T, S> const& q, ops_detail::input<T> x,
                            ops_detail::input<T> steps, ops_detail::input<T> dy, ops_detail::output<T> dx,
                            ops_detail::output<T> dsteps, ops_detail::output<T> dparameters,
                            std::optional<double> grad_scale = std::nullopt) {
  ops_detail::run_backward<true>(policy, q,
                                 exec::backward_arguments<T>{x, steps, {}, dy, dx, dsteps, {}, 1.0, false},
                                 grad_scale, dparameters);
}

/// Backward with offsets and learnable surrogate parameters (see the two overloads above).
template <exec::execution_policy Policy, real_scalar T, learnable_surrogate S>
void fake_quantize_backward(Policy const& policy, quantizer<T, S> const& q, ops_detail::input<T> x,
                            ops_detail::input<T> steps, ops_detail::input<T> dy, ops_detail::output<T> dx,
                            ops_detail::output<T> dsteps, ops_detail::input<T> offsets,
                            ops_detail::output<T> doffsets, ops_detail::output<T> dparameters,
                            std::optional<double> grad_scale = std::nullopt) {
  ops_detail::run_backward<true>(
      policy, q, exec::backward_arguments<T>{x, steps, offsets, dy, dx, dsteps, doffsets, 1.0, true}, grad_scale,
      dparameters);
}

}  // namespace stableqat
