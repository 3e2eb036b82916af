// stableqat/ops.hpp: the front-end, fake_quantize and fake_quantize_backward.
//
// The one place that validates arguments, handles an empty x, picks the
// default grad_scale and zeroes the step gradients of an empty x, for every
// policy. A backend (backend<P>, exec/policy.hpp) only computes; one whose
// buffers live on a device lends the front-end the hooks to reach them
// (memory-kind check, host copy of the steps, zero fill). Nothing is written
// to an output before all checks have passed.
#pragma once

#include <cstddef>
#include <optional>
#include <ranges>
#include <span>
#include <string>
#include <type_traits>

#include "core/errors.hpp"
#include "core/lsq.hpp"
#include "exec/arguments.hpp"
#include "exec/policy.hpp"
#include "exec/seq.hpp"
#include "exec/storage.hpp"
#include "quantizer.hpp"
#include "surrogates/concepts.hpp"

namespace stableqat {

namespace ops_detail {

/// Input tensor (x, dy) of the elements of the output tensor R (y, dx): the
/// element type comes from the output, so that inputs convert to the span.
template <class R>
using element_of = std::ranges::range_value_t<R>;
template <class R>
using elements_of = std::span<const element_of<R>>;

/// The output tensor as a span of its elements.
template <class R>
auto span_of(R&& out) {
  return std::span<element_of<R>>(out);
}

/// The buffers of a backward call without offsets (with_offsets adds them).
template <real_scalar T, class E>
exec::backward_arguments<T, E> backward_buffers(std::span<const E> x, std::span<const T> steps, std::span<const E> dy,
                                                std::span<E> dx, std::span<T> dsteps) {
  return {x, steps, /*offsets*/ {}, dy, dx, dsteps, /*doffsets*/ {}, /*grad_scale*/ 1.0, /*has_offsets*/ false};
}

/// Backward buffers `a` with LSQ+ offsets and their gradients.
template <real_scalar T, class E>
exec::backward_arguments<T, E> with_offsets(exec::backward_arguments<T, E> a, std::span<const T> offsets,
                                            std::span<T> doffsets) {
  a.offsets = offsets;
  a.doffsets = doffsets;
  a.has_offsets = true;
  return a;
}

/// The output tensor (y, dx) of a call on Policy with a quantizer of type T:
/// a writable contiguous range of a storage type that backend computes in T.
template <class R, class Policy, class T>
concept output_for = exec::element_output<R> && exec::stores<Policy, std::ranges::range_value_t<R>, T>;

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
/// (dsq_surrogate) needs a backend that opted in.
template <class Policy, class S>
constexpr void check_backend_runs_surrogate() {
  static_assert(!surrogate_needs_estimator_backend<S> || backend_supports_estimator_surrogates<Policy>(),
                "this surrogate (own rounding rule or learnable parameters, e.g. dsq_surrogate) is not "
                "supported on this backend");
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
template <class S, real_scalar T, class E>
void check_parameter_gradients(const char* function, exec::backward_arguments<T, E> const& a,
                               std::span<T> dparameters) {
  constexpr std::size_t count = surrogate_parameter_count<S>;
  if (dparameters.size() != count) {
    detail::throw_invalid_argument(function, "dparameters.size()", dparameters.size(),
                                   "differs from the surrogate's parameter count " + std::to_string(count));
  }
  exec::validation::check_parameter_gradients_disjoint(function, dparameters, a);
}

/// Step and offset values must be positive and finite / finite; read where the
/// policy's backend lets the host read them.
template <class Policy, class Arguments>
void check_values(Policy const& policy, const char* function, Arguments const& a) {
  using T = typename decltype(a.steps)::value_type;
  const auto host = exec::hooks::read_on_host(policy, function, a.steps,
                                              a.has_offsets ? a.offsets : std::span<const T>{});
  exec::validation::check_step_values(function, host.steps());
  if (a.has_offsets) {
    exec::validation::check_offset_values(function, host.offsets());
  }
}

template <class Policy, real_scalar T, class E, class S>
void run_forward(Policy const& policy, quantizer<T, S> const& q, exec::forward_arguments<T, E> const& a) {
  const char* function = exec::forward_function;
  check_backend_runs_surrogate<Policy, S>();
  check_grid_fits_surrogate<S>(function, q.grid());
  if constexpr (requires { q.surrogate().template check_compute_type<T>(function); }) {
    q.surrogate().template check_compute_type<T>(function);
  }
  exec::validation::check_forward_shapes(function, q.layout(), a);
  exec::hooks::check_memory(policy, function, a);
  check_values(policy, function, a);
  if (!a.x.empty()) {
    exec::backend<Policy>::forward(policy, q, a);
  }
}

/// `WithParameters`: the caller passed `dparameters` (required exactly for
/// learnable surrogates, so a parameter gradient is never dropped silently).
template <bool WithParameters = false, class Policy, real_scalar T, class E, class S>
void run_backward(Policy const& policy, quantizer<T, S> const& q, exec::backward_arguments<T, E> a,
                  std::optional<double> grad_scale, std::span<T> dparameters = {}) {
  static_assert(WithParameters == learnable_surrogate<S>,
                "a learnable surrogate (e.g. dsq_surrogate) needs the fake_quantize_backward overload with "
                "`dparameters`; other surrogates have no parameters to pass");
  const char* function = exec::backward_function;
  check_backend_runs_surrogate<Policy, S>();
  check_grid_fits_surrogate<S>(function, q.grid());
  a.grad_scale = grad_scale ? *grad_scale : 1.0;
  exec::validation::check_backward_shapes(function, q.layout(), a);
  if constexpr (WithParameters) {
    check_parameter_gradients<S>(function, a, dparameters);
  }
  if constexpr (requires { q.surrogate().template check_compute_type<T>(function); }) {
    q.surrogate().template check_compute_type<T>(function);
  }
  exec::hooks::check_memory(policy, function, a);
  if constexpr (WithParameters) {
    exec::hooks::check_memory(policy, function, exec::parameter_gradients<T>{dparameters});
  }
  check_values(policy, function, a);
  if (a.x.empty()) {
    exec::hooks::fill_zero(policy, function, "dsteps", a.dsteps);
    if (a.has_offsets) {
      exec::hooks::fill_zero(policy, function, "doffsets", a.doffsets);
    }
    if constexpr (WithParameters) {
      exec::hooks::fill_zero(policy, function, "dparameters", dparameters);
    }
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

// Storage: the tensors x, y (dy, dx) hold elements of type E, the element type
// of the output y (dx): T, the quantizer's type, on every policy; with a float
// quantizer exec::seq/simd/par also take stableqat::bfloat16 and
// stableqat::float16 tensors (core/half.hpp), exec::cuda __half and
// __nv_bfloat16 (computed in float, each output rounded to storage once). Steps, offsets and their
// gradients are always T. The output is a std::span<E> or any writable
// contiguous range of E (exec::element_output); the inputs are anything that
// converts to std::span<const E> / std::span<const T>.

/// Forward fake quantization, y[i] = s * clamp(round_half_even(x[i] * (1/s)), qmin, qmax)
/// with s = steps[layout.step_index(i)] (sign(v) on the binary grid).
///
/// x and y have the same size (y may be x itself); steps.size() must equal
/// q.layout().step_count(x.size()); every step positive and finite with a
/// finite reciprocal. NaN gives NaN; ±Inf clamp to the grid edge. Throws
/// std::invalid_argument naming the argument, before writing anything.
template <exec::execution_policy Policy, real_scalar T, class S, ops_detail::output_for<Policy, T> Y>
void fake_quantize(Policy const& policy, quantizer<T, S> const& q, ops_detail::elements_of<Y> x,
                   exec::input<T> steps, Y&& y) {
  using E = ops_detail::element_of<Y>;
  ops_detail::run_forward(policy, q, exec::forward_arguments<T, E>{x, steps, {}, ops_detail::span_of(y), false});
}

/// Forward with a learnable offset per step (LSQ+): y = s * clamp(round((x - b)/s)) + b,
/// offsets.size() == steps.size(), offsets finite.
template <exec::execution_policy Policy, real_scalar T, class S, ops_detail::output_for<Policy, T> Y>
void fake_quantize(Policy const& policy, quantizer<T, S> const& q, ops_detail::elements_of<Y> x,
                   exec::input<T> steps, Y&& y, exec::input<T> offsets) {
  using E = ops_detail::element_of<Y>;
  ops_detail::run_forward(policy, q, exec::forward_arguments<T, E>{x, steps, offsets, ops_detail::span_of(y), true});
}

/// Backward pass for upstream gradient dy (see docs/math.md):
///   dx[i]    = inside ? g(r) * dy[i] : 0,   inside = qmin <= v <= qmax, r = v - round(v)
///   dsteps[k] = grad_scale * sum over step k of dy * (inside ? level - v : level)
/// grad_scale defaults to lsq_grad_scale(x.size(), q.grid()). dx may alias x or
/// dy; dsteps must not overlap any other buffer. Empty x sets dsteps to 0.
template <exec::execution_policy Policy, real_scalar T, class S, ops_detail::output_for<Policy, T> DX>
void fake_quantize_backward(Policy const& policy, quantizer<T, S> const& q,
                            ops_detail::elements_of<DX> x, exec::input<T> steps,
                            ops_detail::elements_of<DX> dy, DX&& dx, exec::output<T> dsteps,
                            std::optional<double> grad_scale = std::nullopt) {
  ops_detail::run_backward(policy, q, ops_detail::backward_buffers(x, steps, dy, ops_detail::span_of(dx), dsteps),
                           grad_scale);
}

/// Backward with offsets: additionally doffsets[k] = grad_scale * sum over step k
/// of (dy - dx), so that dx + db = dy element by element.
template <exec::execution_policy Policy, real_scalar T, class S, ops_detail::output_for<Policy, T> DX>
void fake_quantize_backward(Policy const& policy, quantizer<T, S> const& q,
                            ops_detail::elements_of<DX> x, exec::input<T> steps,
                            ops_detail::elements_of<DX> dy, DX&& dx, exec::output<T> dsteps,
                            exec::input<T> offsets, exec::output<T> doffsets,
                            std::optional<double> grad_scale = std::nullopt) {
  const auto buffers = ops_detail::backward_buffers(x, steps, dy, ops_detail::span_of(dx), dsteps);
  ops_detail::run_backward(policy, q, ops_detail::with_offsets(buffers, offsets, doffsets), grad_scale);
}

/// Backward for a surrogate with learnable parameters (learnable_surrogate<S>,
/// e.g. dsq_surrogate): as above, and additionally
///   dparameters[j] = sum over every element of inside ? dy * s * dL/dp_j : 0
/// (s = the element's step, L the surrogate's soft level; no grad_scale),
/// summed in double per step, then over the steps in order, so the result
/// does not depend on the backend's thread count. dparameters.size() must
/// equal surrogate_parameter_count<S> (1 for DSQ: d alpha) and it must not
/// overlap any other buffer.
template <exec::execution_policy Policy, real_scalar T, learnable_surrogate S,
          ops_detail::output_for<Policy, T> DX>
void fake_quantize_backward(Policy const& policy, quantizer<T, S> const& q,
                            ops_detail::elements_of<DX> x, exec::input<T> steps,
                            ops_detail::elements_of<DX> dy, DX&& dx, exec::output<T> dsteps,
                            exec::output<T> dparameters, std::optional<double> grad_scale = std::nullopt) {
  const auto buffers = ops_detail::backward_buffers(x, steps, dy, ops_detail::span_of(dx), dsteps);
  ops_detail::run_backward<true>(policy, q, buffers, grad_scale, dparameters);
}

/// Backward with offsets and learnable surrogate parameters (see the two overloads above).
template <exec::execution_policy Policy, real_scalar T, learnable_surrogate S,
          ops_detail::output_for<Policy, T> DX>
void fake_quantize_backward(Policy const& policy, quantizer<T, S> const& q,
                            ops_detail::elements_of<DX> x, exec::input<T> steps,
                            ops_detail::elements_of<DX> dy, DX&& dx, exec::output<T> dsteps,
                            exec::input<T> offsets, exec::output<T> doffsets,
                            exec::output<T> dparameters, std::optional<double> grad_scale = std::nullopt) {
  const auto buffers = ops_detail::backward_buffers(x, steps, dy, ops_detail::span_of(dx), dsteps);
  ops_detail::run_backward<true>(policy, q, ops_detail::with_offsets(buffers, offsets, doffsets), grad_scale,
                                 dparameters);
}

}  // namespace stableqat
