// stableqat/exec/export_simd.hpp: integer export on exec::simd and exec::par.
//
// The kernels are simd/export_kernels.hpp's chunk_loops (transform.hpp's
// element loop over the per-element templates of exec::seq); this header only
// hands them to a runner: the calling thread for exec::simd, OpenMP threads
// for exec::par (par.hpp's runner, the same chunks), so simd, par and seq
// agree bit for bit.
#pragma once

#include "../quantizer.hpp"
#include "export_plan.hpp"
#include "par.hpp"
#include "policy.hpp"
#include "simd/export_kernels.hpp"
#include "simd/runner.hpp"

namespace stableqat::exec {

/// exec::simd: quantize_to_codes and dequantize in batches of the widest
/// instruction set enabled at compile time; same bits as exec::seq.
template <>
struct export_backend<simd_policy> {
  template <real_scalar T, class S, code_type C>
  static void quantize_to_codes(simd_policy, quantizer<T, S> const& q, code_arguments<T, C> const& a) {
    simd_detail::run_quantize_to_codes(simd_detail::sequential_runner{}, q, a);
  }
  template <real_scalar T, class S>
  static void dequantize(simd_policy, quantizer<T, S> const& q, dequantize_arguments<T> const& a) {
    simd_detail::run_dequantize(simd_detail::sequential_runner{}, q, a);
  }
};

/// exec::par: exec::simd's chunks on OpenMP threads (tensors of more than one
/// chunk); same bits as exec::seq for any thread count. Throws
/// std::invalid_argument for a negative thread count.
template <>
struct export_backend<parallel_policy> {
  template <real_scalar T, class S, code_type C>
  static void quantize_to_codes(parallel_policy policy, quantizer<T, S> const& q, code_arguments<T, C> const& a) {
    run(policy, a.x.size(), [&](auto const& runner) { simd_detail::run_quantize_to_codes(runner, q, a); });
  }
  template <real_scalar T, class S>
  static void dequantize(parallel_policy policy, quantizer<T, S> const& q, dequantize_arguments<T> const& a) {
    run(policy, a.y.size(), [&](auto const& runner) { simd_detail::run_dequantize(runner, q, a); });
  }

 private:
  /// f(runner) with the OpenMP runner when the call is worth a parallel region.
  template <class F>
  static void run(parallel_policy policy, std::size_t numel, F const& f) {
    const int threads = par_detail::resolve_threads(policy);
#if defined(_OPENMP)
    if (par_detail::runs_in_parallel(threads, numel)) {
      f(par_detail::openmp_runner{threads});
      return;
    }
#endif
    (void)threads;
    (void)numel;
    f(simd_detail::sequential_runner{});
  }
};

}  // namespace stableqat::exec
