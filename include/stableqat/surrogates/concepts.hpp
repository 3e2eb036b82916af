// stableqat/surrogates/concepts.hpp: what a surrogate gradient must provide,
// and the optional hooks an estimator may add to it.
//
// The required part is one function, g(r). Everything else is opt-in and
// detected at compile time: a surrogate that does not declare a hook compiles
// to exactly the element code of the plain LSQ/STE path (same bits, same
// speed), so STE and the Fourier family are untouched by the extensions.
//
// The hooks, each with the default the element uses when it is absent
// (core/lsq.hpp's fake_quantize_element / fake_quantize_backward_element):
//
//   hook (member of S)                         default                      example
//   s.derivative(r)                 REQUIRED   -                            every surrogate
//   s.derivative(r, dy)             (c)        s.derivative(r)              ewgs_surrogate
//   S::parameter_count,             (a)        no learnable parameters      dsq_surrogate (alpha)
//     s.derivative_with_parameters(r)
//   s.round(v)                      (b)        round_half_even(v)           dsq_surrogate (ties down)
//   s.inside(v, qmin, qmax)         (b)        qmin <= v && v <= qmax       dsq_surrogate
//   S::consistent_step_term = true  (b)        LSQ's  level - v             dsq_surrogate: level - v*g
//   s.visit_branch_free<T>(f)       (d)        f(s)                         fourier_surrogate<K >= 2>,
//                                                                           dsq_surrogate
//
// (a) Learnable parameters. The element returns, per parameter j,
//     dy * dL/dp_j (zero outside the band), where L(v) is the soft level in step
//     units; the output is y = s * L((x - b)/s) + b, so dy/dp_j = s * dL/dp_j.
//     A backend sums these terms per step in double (exactly like the step
//     terms), multiplies each step's sum by that step, and adds the products in
//     step order: d p_j = sum_k steps[k] * sum_{i in step k} term_ij, written to
//     the caller's `dparameters[j]` without grad_scale. The result is therefore
//     deterministic for any thread count whenever the per-step sums are.
// (b) Rounding, band and step term. A surrogate with its own tie rule or band
//     is defined on the integer grid [qmin, qmax]; the front-end rejects it on
//     the binary and the stretched elastic grids (std::invalid_argument, "grid").
// (c) A derivative that sees the upstream gradient dy (one element's dy, same
//     value type as r).
// (d) A surrogate whose g for element type T branches on something fixed at
//     construction (fourier_surrogate<K>: float evaluated in float or in
//     double; dsq_surrogate: whether its exponential can reach the clamp at
//     its lower limit) may call f with an equal surrogate, possibly of another type,
//     whose g has that choice built in. exec::simd calls it once per row piece
//     or column segment, so its vector loop holds one path: GCC keeps a
//     loop-invariant branch inside a long loop, and both paths' registers
//     and constants then share it.
//
// Every hook is a template over the value type V (float, double or a SIMD
// batch) written with the shims of core/math.hpp, so one source serves every
// backend. A learnable surrogate's hooks must not also depend on dy.
#pragma once

#include <concepts>
#include <cstddef>
#include <utility>

namespace stableqat {

/// A surrogate for d round(v)/dv. Rounding is 1-periodic, so a surrogate is a
/// function of the residual r = v - round_half_even(v) in [-1/2, 1/2] alone:
/// `s.derivative(r)` returns g(r), for float and double (and, to run on the
/// SIMD backends at full speed, for SIMD batches: write it as a template over
/// the value type). g must be finite and positive for every r in [-1/2, 1/2].
template <class S>
concept surrogate = std::copy_constructible<S> && requires(S const& s, float f, double d) {
  { s.derivative(f) } -> std::same_as<float>;
  { s.derivative(d) } -> std::same_as<double>;
};

/// What derivative_with_parameters(r) returns: g(r) and, for each of the P
/// learnable parameters p_j, dL/dp_j at the same element (L = the soft level in
/// step units whose derivative in v is g).
template <class V, std::size_t P>
struct derivative_and_parameters {
  V derivative;     ///< g(r), exactly what the element uses for dx
  V parameters[P];  ///< dL/dp_j, j < P
};

/// Hook (a): a surrogate with P = S::parameter_count > 0 learnable parameters.
/// The backward pass then returns their gradients (see the header comment).
template <class S>
concept learnable_surrogate =
    surrogate<S> && requires {
      { S::parameter_count } -> std::convertible_to<std::size_t>;
    } && (S::parameter_count > 0) && requires(S const& s, float f, double d) {
      { s.derivative_with_parameters(f) } -> std::same_as<derivative_and_parameters<float, S::parameter_count>>;
      { s.derivative_with_parameters(d) } -> std::same_as<derivative_and_parameters<double, S::parameter_count>>;
    };

/// Number of learnable parameters of S: S::parameter_count for a
/// learnable_surrogate, else 0.
template <class S>
inline constexpr std::size_t surrogate_parameter_count = 0;
template <learnable_surrogate S>
inline constexpr std::size_t surrogate_parameter_count<S> = static_cast<std::size_t>(S::parameter_count);

/// Hook (b): the estimator's own rounding of v onto the integer grid (its tie
/// rule); used by the forward pass and, for the residual r = v - round(v),
/// by the backward pass. Must return an integer (or NaN/±Inf for NaN/±Inf).
template <class S>
concept surrogate_with_rounding = surrogate<S> && requires(S const& s, float f, double d) {
  { s.round(f) } -> std::same_as<float>;
  { s.round(d) } -> std::same_as<double>;
};

/// Hook (b): the estimator's own band `inside(v, qmin, qmax)` (where dx may be
/// nonzero and the step term is the inside one), for the integer grid bounds.
template <class S>
concept surrogate_with_band = surrogate<S> && requires(S const& s, float f, double d) {
  { s.inside(f, f, f) } -> std::convertible_to<bool>;
  { s.inside(d, d, d) } -> std::convertible_to<bool>;
};

/// Hook (b): the inside step term is the consistent derivative of s * L(x/s),
/// `level - v * g`, instead of LSQ's `level - v`.
template <class S>
concept surrogate_with_consistent_step_term = surrogate<S> && requires {
  { S::consistent_step_term } -> std::convertible_to<bool>;
} && static_cast<bool>(S::consistent_step_term);

/// Hook (c): g depends on the upstream gradient too, `s.derivative(r, dy)`.
template <class S>
concept dy_aware_surrogate = surrogate<S> && requires(S const& s, float f, double d) {
  { s.derivative(f, f) } -> std::same_as<float>;
  { s.derivative(d, d) } -> std::same_as<double>;
};

/// Hook (d): f(v) with v = the branch-free variant of s for element type T
/// (s.visit_branch_free<T>(f)), or f(s) when S has no such hook.
template <class T, class S, class F>
constexpr decltype(auto) with_branch_free_surrogate(S const& s, F&& f) {
  if constexpr (requires { s.template visit_branch_free<T>(f); }) {
    return s.template visit_branch_free<T>(std::forward<F>(f));
  } else {
    return std::forward<F>(f)(s);
  }
}

/// True when S needs more from a backend than g(r) in the existing element
/// loops: its own forward rounding, or parameter gradients to sum.
template <class S>
inline constexpr bool surrogate_needs_estimator_backend = learnable_surrogate<S> || surrogate_with_rounding<S>;

/// True when S is defined relative to the integer grid [qmin, qmax] and so is
/// valid on uniform grids only (not the binary or stretched elastic grids).
template <class S>
inline constexpr bool surrogate_needs_uniform_grid = surrogate_with_rounding<S> || surrogate_with_band<S>;

}  // namespace stableqat
