// stableqat/surrogates/concepts.hpp: what a surrogate gradient must provide.
#pragma once

#include <concepts>

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

}  // namespace stableqat
