// bench/bench_context.hpp: what every CPU benchmark records about the machine
// it ran on, so a results file says which SIMD path and how many threads it measured.
#pragma once

#include <benchmark/benchmark.h>

#include <fstream>
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

/// "vendor family F model M (model name)" of the first CPU in /proc/cpuinfo
/// (Linux; "unknown" elsewhere): a VM's model name alone ("AMD EPYC") does not
/// tell Zen 3, 4 and 5 apart (family 25 is Zen 3 or Zen 4 by model, e.g. 1 =
/// Milan, Zen 3, and 17 = Genoa, Zen 4; family 26 is Zen 5), and their AVX-512
/// and FMA throughputs differ (Zen 4 runs 512-bit operations in two halves).
inline std::string cpu_identity() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line, vendor, family, model, name;
  const auto value = [](std::string const& l) {
    const auto start = l.find_first_not_of(" \t", l.find(':') == std::string::npos ? l.size() : l.find(':') + 1);
    return start == std::string::npos ? std::string() : l.substr(start);
  };
  while (std::getline(cpuinfo, line) && !line.empty()) {
    if (line.rfind("vendor_id", 0) == 0) vendor = value(line);
    if (line.rfind("cpu family", 0) == 0) family = value(line);
    if (line.rfind("model name", 0) == 0) {
      name = value(line);
    } else if (line.rfind("model", 0) == 0) {
      model = value(line);
    }
  }
  if (family.empty()) return "unknown";
  return vendor + " family " + family + " model " + model + " (" + name + ")";
}

/// Adds cpu, par_threads, simd_arch and simd_lanes_float to the benchmark context.
inline void add_machine_context() {
  namespace simd = stableqat::exec::simd_detail;
  benchmark::AddCustomContext("cpu", cpu_identity());
  benchmark::AddCustomContext("par_threads", std::to_string(parallel_threads()));
  benchmark::AddCustomContext("simd_arch", simd::arch::name());
  benchmark::AddCustomContext("simd_lanes_float", std::to_string(simd::batch<float>::size));
}

}  // namespace stableqat_bench
