// stableqat/exec/term_sums.hpp: the partial sums every backend's backward pass reduces.
#pragma once

namespace stableqat::exec {

/// Unscaled sums of the step and offset terms (lsq_element_gradients::dstep /
/// ::doffset) over some elements of one step: a row piece of exec::simd, a lane
/// or a tile of exec::cuda. Always double, whatever the storage type, so that
/// float terms lose nothing once they leave their short float accumulators; the
/// backend multiplies by grad_scale and rounds to T once, at the end.
///
/// `parameter` carries the unscaled term of a surrogate's one learnable
/// parameter (lsq_element_gradients::dparameters[0], e.g. DSQ's dL/dalpha);
/// it stays 0 for surrogates without one, whose kernels never touch it.
struct term_sums {
  double step = 0.0;
  double offset = 0.0;
  double parameter = 0.0;
};

}  // namespace stableqat::exec
