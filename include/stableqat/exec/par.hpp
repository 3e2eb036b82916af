// stableqat/exec/par.hpp: exec::par, all cores (OpenMP) over the chunks of exec::simd.
//
// exec::par runs exactly the chunk plan of exec::simd (simd/plan.hpp) with the
// chunks spread over OpenMP threads (static schedule: each thread gets one
// contiguous run of chunks, which keeps the hardware prefetchers streaming).
// Each chunk stores its partial step sums; one thread then combines them in
// chunk order. The chunks depend only on the tensor, never on the thread
// count, so dsteps has the same bits for 1, 2, 4, ... threads and equals
// exec::simd's. Tensors of one chunk (64 Ki elements) or a thread count of one
// run exec::simd directly, without a parallel region or any allocation.
//
// Without OpenMP (no -fopenmp: CMake target stableqat::stableqat rather than
// stableqat::parallel) exec::par is exec::simd.
#pragma once

#include <concepts>
#include <cstddef>
#include <span>
#include <vector>

#include "../core/errors.hpp"
#include "../quantizer.hpp"
#include "arguments.hpp"
#include "policy.hpp"
#include "simd/dispatch.hpp"
#include "simd/plan.hpp"
#include "simd/runner.hpp"
#include "storage.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace stableqat::exec {

namespace par_detail {

/// Threads for a policy: its explicit count, or OpenMP's default (OMP_NUM_THREADS, else the core count).
inline int resolve_threads(parallel_policy policy) {
  if (policy.threads < 0) {
    detail::throw_invalid_argument("stableqat::exec::par.with_threads", "threads", policy.threads,
                                   "must be >= 0 (0 = OpenMP's default)");
  }
#if defined(_OPENMP)
  return policy.threads > 0 ? policy.threads : omp_get_max_threads();
#else
  return 1;
#endif
}

#if defined(_OPENMP)
/// Runs chunks on `threads` OpenMP threads; reductions store one result per
/// chunk (the only allocation of exec::par) and combine them in chunk order.
struct openmp_runner {
  int threads;

  template <simd_detail::chunk_loop Kernel>
  void run(Kernel const& kernel) const {
    for_each(kernel.chunk_count(), [&](std::size_t c) { kernel.run(c); });
  }

  template <simd_detail::chunk_reduction Kernel>
  void reduce(Kernel& kernel) const {
    const std::size_t count = kernel.chunk_count();
    if (kernel.direct()) {
      for_each(count, [&](std::size_t c) { kernel.produce(c, nullptr); });
      return;
    }
    std::vector<typename Kernel::result_type> results(count);
    for_each(count, [&](std::size_t c) { kernel.produce(c, &results[c]); });
    for (std::size_t c = 0; c < count; ++c) {
      kernel.consume(c, results[c]);
    }
    kernel.finish();
  }

 private:
  /// f(c) for c < count; static schedule: one contiguous run of chunks per thread.
  template <class F>
  void for_each(std::size_t count, F const& f) const {
    const auto n = static_cast<std::ptrdiff_t>(count);
#pragma omp parallel for schedule(static) num_threads(threads)
    for (std::ptrdiff_t c = 0; c < n; ++c) {
      f(static_cast<std::size_t>(c));
    }
  }
};
#endif

/// True when the call is worth a parallel region: several chunks and threads.
inline bool runs_in_parallel(int threads, std::size_t numel) noexcept {
  return threads > 1 && numel > simd_detail::chunk_elements;
}

}  // namespace par_detail

/// exec::par: exec::simd's chunks on all cores (OpenMP); par.with_threads(n)
/// fixes the thread count. Same results as exec::simd bit for bit, whatever
/// the thread count. Throws std::invalid_argument for a negative thread count.
template <>
struct backend<parallel_policy> {
  /// As exec::simd: own rounding and band, one learnable parameter (DSQ).
  static constexpr bool supports_estimator_surrogates = true;

  /// As exec::simd: bfloat16 and float16 tensors computed in float.
  template <class E, class T>
  static constexpr bool stores = host_half_storage<E> && std::same_as<T, float>;

  template <real_scalar T, class E, class S>
  static void forward(parallel_policy policy, quantizer<T, S> const& q, forward_arguments<T, E> const& a) {
    const int threads = par_detail::resolve_threads(policy);
#if defined(_OPENMP)
    if (par_detail::runs_in_parallel(threads, a.x.size())) {
      simd_detail::run_forward(par_detail::openmp_runner{threads}, q, a);
      return;
    }
#endif
    (void)threads;
    simd_detail::run_forward(simd_detail::sequential_runner{}, q, a);
  }

  template <real_scalar T, class E, class S>
  static void backward(parallel_policy policy, quantizer<T, S> const& q, backward_arguments<T, E> const& a) {
    backward(policy, q, a, std::span<T>{});
  }

  /// Backward that also writes the learnable parameter's gradient (see
  /// simd/dispatch.hpp); an empty span for surrogates without one.
  template <real_scalar T, class E, class S>
  static void backward(parallel_policy policy, quantizer<T, S> const& q, backward_arguments<T, E> const& a,
                       std::span<T> dparameters) {
    const int threads = par_detail::resolve_threads(policy);
#if defined(_OPENMP)
    if (par_detail::runs_in_parallel(threads, a.x.size())) {
      simd_detail::run_backward(par_detail::openmp_runner{threads}, q, a, dparameters);
      return;
    }
#endif
    (void)threads;
    simd_detail::run_backward(simd_detail::sequential_runner{}, q, a, dparameters);
  }
};

}  // namespace stableqat::exec
