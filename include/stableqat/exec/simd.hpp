// stableqat/exec/simd.hpp: exec::simd, one core at full SIMD width (xsimd).
//
// The element math is core/lsq.hpp's templates instantiated with
// xsimd::batch<T, xsimd::default_arch> (the widest instruction set the
// compiler flags enable: AVX-512 with -march=native on Zen 4/5, SSE2 with no
// flags); the elements that do not fill a batch use the same templates with the
// scalar T. The backend itself is only loops, tails and reductions, in simd/:
//   dispatch.hpp        quantizer -> kernel and its compile-time options
//   runner.hpp          runs a kernel's chunks (exec::par swaps in OpenMP)
//   plan.hpp            the chunks, and the kernel protocol (chunk_loop, chunk_reduction)
//   row_kernels.hpp     per_tensor / per_channel / per_group
//   column_kernels.hpp  per_column
//   transform.hpp       the element loop: scalar head, full batches, scalar tail
//   lane_sums.hpp       step and offset sums (float blocks, double lanes)
// Properties every kernel keeps:
//  - one pass over memory: backward reads x and dy once and writes dx while
//    accumulating the step (and offset) terms;
//  - no heap: every partial sum lives in registers or in fixed-size stack arrays;
//  - step terms are summed in float lanes over blocks of `block_batches`
//    batches, blocks in double lanes, lanes and chunks in double
//    (error <= 3e-7 * sum|terms| + the final rounding to T, see plan.hpp);
//  - batches start at multiples of the batch width in element index, so the
//    bits of every result depend on the tensor and its layout only, never on
//    buffer addresses or thread counts;
//  - outputs of >= 8 MiB whose pointer is aligned to the register width are
//    written with streaming stores (simd/streaming.hpp);
//  - the work is cut into the chunks of plan.hpp and chunk partials are
//    combined in chunk order, exactly as exec::par does, so simd and par agree
//    bit for bit.
#pragma once

#include <concepts>

#include "../quantizer.hpp"
#include "arguments.hpp"
#include "policy.hpp"
#include "simd/dispatch.hpp"
#include "simd/runner.hpp"
#include "storage.hpp"

namespace stableqat::exec {

/// exec::simd: the per-element templates of core/lsq.hpp on xsimd batches of
/// the widest instruction set enabled at compile time, on the calling thread.
/// Forward bits equal exec::seq's; dx is within 2 ulp of exec::seq (FMA
/// contraction differences only; identical for STE); dsteps/doffsets are summed
/// with error <= 3e-7 * sum|terms| (float) and equal exec::par's bit for bit.
template <>
struct backend<simd_policy> {
  /// Runs the surrogate hooks of surrogates/concepts.hpp: own rounding and
  /// band, and one learnable parameter (DSQ), summed like dsteps.
  static constexpr bool supports_estimator_surrogates = true;

  /// Stores bfloat16 and float16 tensors computed in float: batches are
  /// widened on load and rounded once on store (simd/storage_access.hpp).
  template <class E, class T>
  static constexpr bool stores = host_half_storage<E> && std::same_as<T, float>;

  template <real_scalar T, class E, class S>
  static void forward(simd_policy, quantizer<T, S> const& q, forward_arguments<T, E> const& a) {
    simd_detail::run_forward(simd_detail::sequential_runner{}, q, a);
  }

  template <real_scalar T, class E, class S>
  static void backward(simd_policy, quantizer<T, S> const& q, backward_arguments<T, E> const& a) {
    simd_detail::run_backward(simd_detail::sequential_runner{}, q, a);
  }

  /// Backward that also writes the learnable parameter's gradient (see simd/dispatch.hpp).
  template <real_scalar T, class E, class S>
  static void backward(simd_policy, quantizer<T, S> const& q, backward_arguments<T, E> const& a,
                       std::span<T> dparameters) {
    simd_detail::run_backward(simd_detail::sequential_runner{}, q, a, dparameters);
  }
};

}  // namespace stableqat::exec
