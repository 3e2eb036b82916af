// torch/kernels.hpp: the op library's compute, on raw contiguous buffers.
//
// No torch headers here: register.cpp hands over contiguous data pointers,
// these functions call the library's front-end (sq::fake_quantize,
// sq::fake_quantize_backward with exec::par) and nothing else touches the
// elements, except the optional ATen mask band (a read-only fix-up of the
// elements in the two half-step bands where ATen and LSQ disagree).
#pragma once

#include <cstddef>

#include <stableqat/core/half.hpp>

#include "options.hpp"

namespace stableqat::torch_adapter {

// Storage E of x, y, dy, dx: T itself (float, double), or stableqat::bfloat16 /
// stableqat::float16 with T = float (torch.bfloat16 / torch.float16 tensors,
// the same bits): computed in float, y and dx rounded once to nearest even.
// Steps, offsets and their gradients are always T.

/// Contiguous buffers of one forward call; offsets == nullptr means b = 0.
template <class T, class E = T>
struct forward_buffers {
  const E* x;
  E* y;
  std::size_t numel;
  const T* steps;
  const T* offsets;
  std::size_t step_count;
};

/// Contiguous buffers of one backward call; offsets/doffsets nullptr without LSQ+ offsets;
/// dalpha (one element) receives DSQ's d alpha and is nullptr for the other estimators.
template <class T, class E = T>
struct backward_buffers {
  const E* x;
  const E* dy;
  E* dx;
  std::size_t numel;
  const T* steps;
  const T* offsets;
  T* dsteps;
  T* doffsets;
  std::size_t step_count;
  T* dalpha;
};

/// y = fake_quantize(x) with exec::par on `threads` threads (bit-identical for any count).
/// Only DSQ changes the forward (its ties round down); float64 DSQ runs exec::seq
/// (same bits: every backend's forward is bit-identical).
template <class T, class E = T>
void run_forward(op_options const& options, forward_buffers<T, E> const& b, int threads);

/// dx, dsteps (and doffsets, DSQ's dalpha) in one fused exec::par pass; with mask_band::aten a
/// second, read-only pass moves the elements whose rounded value lies on the grid
/// but whose v does not into ATen's band. dsteps are deterministic for any thread count.
/// DSQ and EWGS in float64 run exec::seq instead (one thread, memory-order sums; float64
/// is the gradcheck/reference dtype), so their SIMD kernels are compiled for float only.
template <class T, class E = T>
void run_backward(op_options const& options, backward_buffers<T, E> const& b, int threads);

/// Initial steps (one per step of options.layout): rule "lsq" (2 mean|x|/sqrt(qmax)),
/// "max_abs" (max|x|/max(qmax, 1)), or "official" (what the official StableQAT /
/// ParetoQ code does per bit width: mean|x| on the 1-bit grid, max|x|/max(qmax, 1)
/// otherwise, i.e. max|x| for 2-bit signed, ternary and the stretched elastic grids (ParetoQ's
/// max|w_row| per row), max|x|/qmax for 3-4 bits; the library's paretoq_init_steps).
template <class T>
void run_init_steps(op_options const& options, const char* rule, const T* x, std::size_t numel, T* steps);

extern template void run_forward<float>(op_options const&, forward_buffers<float> const&, int);
extern template void run_forward<double>(op_options const&, forward_buffers<double> const&, int);
extern template void run_backward<float>(op_options const&, backward_buffers<float> const&, int);
extern template void run_backward<double>(op_options const&, backward_buffers<double> const&, int);
extern template void run_forward<float, bfloat16>(op_options const&, forward_buffers<float, bfloat16> const&, int);
extern template void run_forward<float, float16>(op_options const&, forward_buffers<float, float16> const&, int);
extern template void run_backward<float, bfloat16>(op_options const&, backward_buffers<float, bfloat16> const&, int);
extern template void run_backward<float, float16>(op_options const&, backward_buffers<float, float16> const&, int);
extern template void run_init_steps<float>(op_options const&, const char*, const float*, std::size_t, float*);
extern template void run_init_steps<double>(op_options const&, const char*, const double*, std::size_t, double*);

}  // namespace stableqat::torch_adapter
