// stableqat/quantizer.hpp: what to quantize onto and how to differentiate it.
#pragma once

#include "core/grid.hpp"
#include "core/layout.hpp"
#include "core/math.hpp"
#include "surrogates/concepts.hpp"
#include "surrogates/fourier.hpp"

namespace stableqat {

/// A fake quantizer's configuration: element type T (float or double), the
/// integer grid, the surrogate gradient of round(), and the step layout.
/// The steps (and offsets) themselves are learnable tensors the caller owns
/// and passes to fake_quantize / fake_quantize_backward.
///
///     quantizer<float, fourier_surrogate<1>> q{signed_grid(2), fourier_surrogate<1>{0.21}, per_channel(in)};
template <real_scalar T, surrogate Surrogate = ste>
class quantizer {
 public:
  using value_type = T;
  using surrogate_type = Surrogate;

  constexpr explicit quantizer(stableqat::grid g, Surrogate s = Surrogate{},
                               stableqat::step_layout layout = per_tensor())
      : grid_(g), surrogate_(s), layout_(layout) {}

  /// The integer grid [qmin, qmax] (or the binary sign grid).
  [[nodiscard]] constexpr stableqat::grid const& grid() const noexcept { return grid_; }
  /// The surrogate g(r) of d round(v)/dv used by the backward pass.
  [[nodiscard]] constexpr Surrogate const& surrogate() const noexcept { return surrogate_; }
  /// Which step each element uses.
  [[nodiscard]] constexpr stableqat::step_layout const& layout() const noexcept { return layout_; }

 private:
  stableqat::grid grid_;
  Surrogate surrogate_;
  stableqat::step_layout layout_;
};

}  // namespace stableqat
