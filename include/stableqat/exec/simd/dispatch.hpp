// stableqat/exec/simd/dispatch.hpp: one call of exec::simd or exec::par, from
// the quantizer to a kernel.
//
// Picks the kernel (row or column layout), its compile-time options (grid
// kind, offsets, streaming stores) and hands it to a runner: runner.hpp's
// sequential_runner for exec::simd, par.hpp's OpenMP runner for exec::par.
// Both run the same chunks, so the two backends agree bit for bit.
#pragma once

#include <cstddef>
#include <span>
#include <vector>
#include <type_traits>

#include "../../core/grid.hpp"
#include "../../core/layout.hpp"
#include "../../quantizer.hpp"
#include "../arguments.hpp"
#include "batch.hpp"
#include "column_kernels.hpp"
#include "row_kernels.hpp"
#include "streaming.hpp"

namespace stableqat::exec::simd_detail {

/// The compile-time choices of one call besides the grid kind.
template <bool Stream, bool WithOffsets>
struct kernel_options {};

/// True when outputs stored as E (computed in T) may be streamed: E == T.
/// 16-bit outputs are written with plain stores (half a register per batch),
/// which also keeps their kernels compiled once rather than twice.
template <class T, class E>
inline constexpr bool can_stream = std::is_same_v<T, E>;

/// True when the call writes its output with streaming stores: large enough,
/// and aligned to the batch width (batches start at multiples of the width in
/// element index, see batch_head, so then every batch store is aligned).
template <class T, class E>
inline bool use_streaming_stores(E const* out, std::size_t numel) noexcept {
  if constexpr (can_stream<T, E>) {
    return has_streaming_store<arch> && numel * sizeof(T) >= streaming_store_min_bytes &&
           is_register_aligned<batch<T>>(out);
  } else {
    (void)out;
    (void)numel;
    return false;
  }
}

/// Calls f(levels, kernel_options<stream, has_offsets>{}) with the grid's level
/// map, so kernels are compiled per option and never branch on them per element
/// (the streaming variant only when CanStream). Grid kinds surrogate S is not
/// defined on (the front-end refuses them, e.g. DSQ on the binary grid) get no
/// kernels at all.
template <real_scalar T, class S, bool CanStream, class F>
void visit_options(grid const& g, bool has_offsets, bool stream, F&& f) {
  visit_kernel<T>(g, has_offsets, [&](auto const& levels, auto with_offsets) {
    constexpr bool offsets = decltype(with_offsets)::value;
    if constexpr (surrogate_needs_uniform_grid<S> &&
                  !std::is_same_v<std::remove_cvref_t<decltype(levels)>, uniform_levels<T>>) {
      return;
    } else if constexpr (CanStream) {
      if (stream) {
        f(levels, kernel_options<true, offsets>{});
        return;
      }
    } else {
      (void)stream;
    }
    f(levels, kernel_options<false, offsets>{});
  });
}

/// y = fake_quantize(x): a row_forward or column_forward kernel on `runner`.
/// Elements stored as E: T, or bfloat16 / float16 with T = float.
template <class Runner, real_scalar T, class E, class S>
void run_forward(Runner const& runner, quantizer<T, S> const& q, forward_arguments<T, E> const& a) {
  const step_layout layout = q.layout();
  const bool stream = use_streaming_stores<T>(a.y.data(), a.x.size());
  visit_options<T, S, can_stream<T, E>>(
      q.grid(), a.has_offsets, stream,
      [&]<class Levels, bool Stream, bool Offsets>(Levels const& levels, kernel_options<Stream, Offsets>) {
        if (layout.step_per_column()) {
          runner.run(column_forward<Stream, Offsets, T, E, Levels, S>(a, levels, q.surrogate(), layout.extent()));
        } else {
          runner.run(row_forward<Stream, Offsets, T, E, Levels, S>(a, levels, q.surrogate(),
                                                                   layout.row_length(a.x.size())));
        }
      });
}

/// dx, dsteps (and doffsets): a row_backward or column_backward kernel on `runner`.
/// A surrogate with a learnable parameter (DSQ) also gets
///   dparameters[0] = sum_k steps[k] * (the parameter terms of step k),
/// the per-step sums made by the kernels (in chunk order, whatever the thread
/// count) and multiplied and added here in step order, as exec::seq does.
template <class Runner, real_scalar T, class E, class S>
void run_backward(Runner const& runner, quantizer<T, S> const& q, backward_arguments<T, E> const& a,
                  std::span<T> dparameters = {}) {
  constexpr std::size_t P = surrogate_parameter_count<S>;
  static_assert(P <= 1, "exec::simd / exec::par carry one learnable surrogate parameter (DSQ's alpha); "
                        "use exec::seq for surrogates with more");
  std::vector<double> parameter_sums(P > 0 ? a.steps.size() : 0, 0.0);
  double* const parameters = P > 0 ? parameter_sums.data() : nullptr;
  const step_layout layout = q.layout();
  const bool stream = use_streaming_stores<T>(a.dx.data(), a.x.size());
  visit_options<T, S, can_stream<T, E>>(
      q.grid(), a.has_offsets, stream,
      [&]<class Levels, bool Stream, bool Offsets>(Levels const& levels, kernel_options<Stream, Offsets>) {
        if (layout.step_per_column()) {
          column_backward<Stream, Offsets, T, E, Levels, S> kernel(a, levels, q.surrogate(), layout.extent(),
                                                                   parameters);
          runner.reduce(kernel);
        } else {
          row_backward<Stream, Offsets, T, E, Levels, S> kernel(a, levels, q.surrogate(),
                                                                layout.row_length(a.x.size()), parameters);
          runner.reduce(kernel);
        }
      });
  if constexpr (P > 0) {
    double total = 0.0;
    for (std::size_t k = 0; k < parameter_sums.size(); ++k) {
      total += static_cast<double>(a.steps[k]) * parameter_sums[k];
    }
    dparameters[0] = static_cast<T>(total);
  } else {
    (void)dparameters;
  }
}

}  // namespace stableqat::exec::simd_detail
