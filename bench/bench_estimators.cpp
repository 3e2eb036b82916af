// Efficiency table of the estimators (issue 12): forward + backward time of
// every estimator against the STE's, the analogue of the StableQAT paper's
// efficiency figure (which times STE, StableQAT, ParetoQ and DSQ).
//
// Names: fwdbwd/<estimator>/<layout>/<policy>/<floats>, one iteration = one
// fake_quantize (x -> y) followed by one fake_quantize_backward (x, dy -> dx,
// dsteps, and d alpha for DSQ) on the same buffers, as a training step runs them.
//   estimator  ste, ste_again (the same STE kernel registered twice: its ratio to
//              ste is the run's noise gauge), fourier1 (StableQAT K=1, A = 0.21),
//              fourier3 (K=3, A = 0.21), dsq (alpha = 0.2, learnable: the
//              backward also returns d alpha), paretoq (stretched_elastic_grid(2)
//              with the STE, steps = max|x|), ewgs (delta = 0.2)
//   layout     per_tensor; per_channel (rows of 512: one step per row, as the LM
//              and a PyTorch [out, 512] weight use it)
//   policy     simd (one thread), par (OpenMP, all threads)
//   floats     4096 (in L1) and 16777216 (DRAM: 64 MiB per array)
// signed_grid(4) for every integer-grid estimator (x spread over [-10, 9] steps,
// as bench_fake_quantize); the SEQ grid has its own 2-bit levels and clip band.
// Counters: bytes_per_second over 20 bytes per float (forward reads x, writes y;
// backward reads x and dy, writes dx), items_per_second. Wall-clock time.
// `make bench` runs it with repetitions; bench/summarize.sh prints the table.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <new>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <stableqat/exec/par.hpp>
#include <stableqat/exec/simd.hpp>
#include <stableqat/stableqat.hpp>

#include "bench_context.hpp"


namespace sq = stableqat;

namespace {

constexpr std::size_t max_floats = std::size_t{1} << 24;
constexpr std::size_t row_length = 512;
constexpr std::size_t sizes[] = {std::size_t{1} << 12, max_floats};
constexpr float lsq_step = 0.05f;  // x spans [-10, 9] of these
constexpr float seq_alpha = 0.5f;  // max|x|: ParetoQ's initial alpha

/// 64-byte aligned floats, filled once and shared by every benchmark.
struct aligned_floats {
  explicit aligned_floats(std::size_t n)
      : data(static_cast<float*>(::operator new[](n * sizeof(float), std::align_val_t{64}))) {}
  ~aligned_floats() { ::operator delete[](data, std::align_val_t{64}); }
  aligned_floats(aligned_floats const&) = delete;
  aligned_floats& operator=(aligned_floats const&) = delete;
  float* data;
};

struct buffers {
  aligned_floats x{max_floats}, dy{max_floats}, y{max_floats}, dx{max_floats};

  buffers() {
    std::mt19937 rng(42);
    std::uniform_real_distribution<float> level(-10.0f, 9.0f), unit(-1.0f, 1.0f);
    for (std::size_t i = 0; i < max_floats; ++i) {
      x.data[i] = level(rng) * lsq_step;
      dy.data[i] = unit(rng);
      y.data[i] = 0.0f;
      dx.data[i] = 0.0f;
    }
  }
};

buffers& data() {
  static buffers b;
  return b;
}

/// One training step's quantizer work: forward, then backward.
template <class S, class Policy>
void run_step(benchmark::State& state, sq::grid g, S surrogate, float step, bool per_row, Policy policy,
              std::size_t n) {
  buffers& b = data();
  const sq::quantizer<float, S> q{g, surrogate, per_row ? sq::per_channel(row_length) : sq::per_tensor()};
  const std::span<const float> x(b.x.data, n), dy(b.dy.data, n);
  const std::span<float> y(b.y.data, n), dx(b.dx.data, n);
  const std::vector<float> steps(q.layout().step_count(n), step);
  std::vector<float> dsteps(steps.size());
  std::vector<float> dparameters(sq::surrogate_parameter_count<S>);
  for (auto _ : state) {
    sq::fake_quantize(policy, q, x, steps, y);
    if constexpr (sq::learnable_surrogate<S>) {
      sq::fake_quantize_backward(policy, q, x, steps, dy, dx, dsteps, dparameters);
    } else {
      sq::fake_quantize_backward(policy, q, x, steps, dy, dx, dsteps);
    }
    benchmark::DoNotOptimize(dsteps.data());
    benchmark::DoNotOptimize(dparameters.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(n * sizeof(float) * 5));
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(n));
}

template <class S>
void register_estimator(const char* name, sq::grid g, S surrogate, float step) {
  for (bool per_row : {false, true}) {
    for (std::size_t n : sizes) {
      const std::string prefix = std::string("fwdbwd/").append(name).append(per_row ? "/per_channel/" : "/per_tensor/");
      const std::string size = std::to_string(n);
      benchmark::RegisterBenchmark((prefix + "simd/" + size).c_str(), [=](benchmark::State& st) {
        run_step(st, g, surrogate, step, per_row, sq::exec::simd, n);
      })->UseRealTime();
      benchmark::RegisterBenchmark((prefix + "par/" + size).c_str(), [=](benchmark::State& st) {
        run_step(st, g, surrogate, step, per_row, sq::exec::par, n);
      })->UseRealTime();
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
    return 1;
  }
  stableqat_bench::add_machine_context();
  const sq::grid integer = sq::signed_grid(4);
  register_estimator("ste", integer, sq::ste{}, lsq_step);
  register_estimator("ste_again", integer, sq::ste{}, lsq_step);
  register_estimator("fourier1", integer, sq::fourier_surrogate<1>{0.21}, lsq_step);
  register_estimator("fourier3", integer, sq::fourier_surrogate<3>{0.21}, lsq_step);
  register_estimator("dsq", integer, sq::dsq_surrogate{0.2}, lsq_step);
  register_estimator("paretoq", sq::stretched_elastic_grid(2), sq::ste{}, seq_alpha);
  register_estimator("ewgs", integer, sq::ewgs_surrogate{0.2}, lsq_step);
  data();  // allocate and page in before the first measurement
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
