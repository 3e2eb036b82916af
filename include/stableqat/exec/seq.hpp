// stableqat/exec/seq.hpp: exec::seq, the scalar reference backend.
//
// Plain loops over the per-element templates of core/lsq.hpp with V = T. The
// other backends are tested against this one; it favours obviousness over speed.
// Elements stored as bfloat16/float16 (exec/storage.hpp) are widened to float
// when read and rounded to storage once when written.
#pragma once

#include <concepts>
#include <cstddef>
#include <span>
#include <vector>

#include "../core/lsq.hpp"
#include "../quantizer.hpp"
#include "arguments.hpp"
#include "policy.hpp"
#include "storage.hpp"

namespace stableqat::exec {

/// Calls f(i, k) for every element i in memory order with the index k of its
/// step: the layout's rows share one step, or (per_column) each column has its own.
template <class F>
void for_each_element_step(step_layout const& layout, std::size_t numel, F&& f) {
  if (numel == 0) {
    return;
  }
  const std::size_t row = layout.row_length(numel);
  const bool by_column = layout.step_per_column();
  for (std::size_t start = 0, r = 0; start < numel; start += row, ++r) {
    for (std::size_t j = 0; j < row; ++j) {
      f(start + j, by_column ? j : r);
    }
  }
}

template <>
struct backend<sequenced_policy> {
  /// Runs every surrogate hook of surrogates/concepts.hpp, including learnable parameters.
  static constexpr bool supports_estimator_surrogates = true;

  /// Stores bfloat16 and float16 tensors computed in float (exec/storage.hpp).
  template <class E, class T>
  static constexpr bool stores = host_half_storage<E> && std::same_as<T, float>;

  template <real_scalar T, class E, class S>
  static void forward(sequenced_policy, quantizer<T, S> const& q, forward_arguments<T, E> const& a) {
    using traits = storage_traits<E>;
    visit_kernel<T>(q.grid(), a.has_offsets, [&](auto const& levels, auto with_offsets) {
      for_each_element_step(q.layout(), a.x.size(), [&](std::size_t i, std::size_t k) {
        const T step = a.steps[k];
        a.y[i] = traits::to_storage(fake_quantize_element(traits::to_compute(a.x[i]), step, T(1) / step,
                                                          offset_of(a.offsets, k, with_offsets), levels,
                                                          q.surrogate()));
      });
    });
  }

  template <real_scalar T, class E, class S>
  static void backward(sequenced_policy policy, quantizer<T, S> const& q, backward_arguments<T, E> const& a) {
    backward(policy, q, a, std::span<T>{});
  }

  /// Backward that also writes the gradients of the surrogate's learnable
  /// parameters: dparameters[j] = sum_k steps[k] * (sum over step k, in
  /// memory order and in double, of the element's parameter term j), the
  /// products added in step order (no grad_scale). dparameters.size() ==
  /// surrogate_parameter_count<S> (checked by the front-end).
  template <real_scalar T, class E, class S>
  static void backward(sequenced_policy, quantizer<T, S> const& q, backward_arguments<T, E> const& a,
                       std::span<T> dparameters) {
    using traits = storage_traits<E>;
    constexpr std::size_t P = surrogate_parameter_count<S>;
    // Element terms are formed in T and summed in double, in memory order.
    std::vector<double> step_sums(a.steps.size(), 0.0);
    std::vector<double> offset_sums(a.has_offsets ? a.steps.size() : 0, 0.0);
    std::vector<double> parameter_sums(P * a.steps.size(), 0.0);
    visit_kernel<T>(q.grid(), a.has_offsets, [&](auto const& levels, auto with_offsets) {
      for_each_element_step(q.layout(), a.x.size(), [&](std::size_t i, std::size_t k) {
        const auto g = fake_quantize_backward_element(traits::to_compute(a.x[i]), traits::to_compute(a.dy[i]),
                                                      T(1) / a.steps[k], offset_of(a.offsets, k, with_offsets),
                                                      levels, q.surrogate());
        a.dx[i] = traits::to_storage(g.dx);
        step_sums[k] += static_cast<double>(g.dstep);
        if constexpr (decltype(with_offsets)::value) {
          offset_sums[k] += static_cast<double>(g.doffset);
        }
        if constexpr (P > 0) {
          for (std::size_t j = 0; j < P; ++j) {
            parameter_sums[k * P + j] += static_cast<double>(g.dparameters[j]);
          }
        }
      });
    });
    for (std::size_t k = 0; k < step_sums.size(); ++k) {
      a.dsteps[k] = static_cast<T>(a.grad_scale * step_sums[k]);
    }
    for (std::size_t k = 0; k < offset_sums.size(); ++k) {
      a.doffsets[k] = static_cast<T>(a.grad_scale * offset_sums[k]);
    }
    if constexpr (P > 0) {
      for (std::size_t j = 0; j < P && j < dparameters.size(); ++j) {
        double total = 0.0;
        for (std::size_t k = 0; k < a.steps.size(); ++k) {
          total += static_cast<double>(a.steps[k]) * parameter_sums[k * P + j];
        }
        dparameters[j] = static_cast<T>(total);
      }
    }
  }
};

}  // namespace stableqat::exec
