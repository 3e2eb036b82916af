// bench/bench_context.hpp: what every CPU benchmark records about the machine
// it ran on, so a results file says which SIMD path and how many threads it measured.
#pragma once

#include <benchmark/benchmark.h>

#include <string>

#include <stableqat/exec/simd.hpp>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace stableqat_bench {

/// Threads exec::par uses (OpenMP's maximum; 1 without OpenMP).
inline int parallel_threads() {
#if defined(_OPENMP)
  return omp_get_max_threads();
#else
  return 1;
#endif
}

/// Adds par_threads, simd_arch and simd_lanes_float to the benchmark context.
inline void add_machine_context() {
  namespace simd = stableqat::exec::simd_detail;
  benchmark::AddCustomContext("par_threads", std::to_string(parallel_threads()));
  benchmark::AddCustomContext("simd_arch", simd::arch::name());
  benchmark::AddCustomContext("simd_lanes_float", std::to_string(simd::batch<float>::size));
}

}  // namespace stableqat_bench
