// Google Benchmark suite for the CPU backends (exec::seq, exec::simd, exec::par).
//
// Names: <direction>/<kernel>/<layout>/<policy>/<floats>
//   direction  fwd (read x, write y) or bwd (read x and dy, write dx; dsteps)
//   kernel     ste, fourier1 (fourier_surrogate<1>, A = 0.21), fourier3 (paper
//              family, K = 3, A = 0.21), and the baselines over the same bytes:
//              memcpy (libc, same total bytes) and stream_copy (the kernel's
//              own access pattern with streaming stores: fwd y = x, bwd dx = x + dy)
//   layout     per_tensor, per_channel (rows of 512, PyTorch [out, 512] weights);
//              "-" for baselines
//   policy     seq, simd, par (OpenMP, all threads); baselines run on 1t (one
//              thread) and par (all threads)
// Counters: bytes_per_second (the bytes the kernel must move: 8 per float
// forward, 12 backward) and items_per_second (floats). Wall-clock time
// (UseRealTime), so par is measured as the caller sees it.
// `make bench` runs it with repetitions and bench/summarize.sh turns the
// medians into the table of docs/benchmarks.md.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <memory>
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
constexpr std::size_t channel_inner = 512;
constexpr std::size_t sizes[] = {std::size_t{1} << 12, std::size_t{1} << 18, max_floats};

/// 64-byte aligned float buffer (streaming stores and full-width loads need
/// alignment; PyTorch allocates tensors the same way).
struct aligned_floats {
  explicit aligned_floats(std::size_t n)
      : data(static_cast<float*>(::operator new[](n * sizeof(float), std::align_val_t{64}))), size(n) {}
  ~aligned_floats() { ::operator delete[](data, std::align_val_t{64}); }
  aligned_floats(aligned_floats const&) = delete;
  aligned_floats& operator=(aligned_floats const&) = delete;
  float* data;
  std::size_t size;
};

/// The buffers every benchmark shares, filled (and paged in) once. Sized 1.5x
/// the largest tensor so the memcpy baseline can move the backward's bytes.
struct buffers {
  aligned_floats x{max_floats + max_floats / 2}, dy{max_floats + max_floats / 2}, out{max_floats + max_floats / 2};
  std::vector<float> steps;

  buffers() {
    std::mt19937 rng(42);
    std::uniform_real_distribution<float> level(-10.0f, 9.0f), unit(-1.0f, 1.0f);
    const float step = 0.05f;
    for (std::size_t i = 0; i < x.size; ++i) {
      x.data[i] = level(rng) * step;  // signed_grid(4) is [-8, 7]: some clamp
      dy.data[i] = unit(rng);
      out.data[i] = 0.0f;
    }
    steps.assign(max_floats / channel_inner, step);
  }
};

buffers& data() {
  static buffers b;
  return b;
}

/// Benchmark name from its parts, joined with '/' (appends only: GCC 12 gives a
/// false -Wrestrict on `"literal" + std::string`).
std::string name_of(std::initializer_list<std::string> parts) {
  std::string name;
  for (auto const& part : parts) {
    if (!name.empty()) name.append("/");
    name.append(part);
  }
  return name;
}

sq::step_layout layout_of(std::string const& name) {
  return name == "per_tensor" ? sq::per_tensor() : sq::per_channel(channel_inner);
}

template <class S, class Policy>
void run_kernel(benchmark::State& state, bool backward, S surrogate, std::string const& layout_name, Policy policy,
                std::size_t n) {
  buffers& b = data();
  const sq::quantizer<float, S> q{sq::signed_grid(4), surrogate, layout_of(layout_name)};
  const std::span<const float> x(b.x.data, n), dy(b.dy.data, n);
  const std::span<float> out(b.out.data, n);
  const std::span<const float> steps(b.steps.data(), q.layout().step_count(n));
  std::vector<float> dsteps(steps.size());
  for (auto _ : state) {
    if (backward) {
      sq::fake_quantize_backward(policy, q, x, steps, dy, out, dsteps);
      benchmark::DoNotOptimize(dsteps.data());
    } else {
      sq::fake_quantize(policy, q, x, steps, out);
    }
    benchmark::ClobberMemory();
  }
  const auto bytes_per_call = static_cast<std::int64_t>(n * sizeof(float) * (backward ? 3 : 2));
  state.SetBytesProcessed(state.iterations() * bytes_per_call);
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(n));
}

/// Splits [0, n) into contiguous per-thread ranges (all threads, or just one).
template <class F>
void split(bool parallel, std::size_t n, F const& f) {
#if defined(_OPENMP)
  if (parallel) {
#pragma omp parallel
    {
      const auto t = static_cast<std::size_t>(omp_get_thread_num());
      const auto count = static_cast<std::size_t>(omp_get_num_threads());
      // Range boundaries rounded to 64 bytes so streaming stores stay aligned.
      const std::size_t per = (n / count + 15) / 16 * 16;
      const std::size_t begin = std::min(n, t * per);
      f(begin, t + 1 == count ? n : std::min(n, begin + per));
    }
    return;
  }
#endif
  (void)parallel;
  f(std::size_t{0}, n);
}

/// out[i] = x[i] (forward) or x[i] + dy[i] (backward) with streaming stores.
void stream_copy(float const* x, float const* dy, float* out, std::size_t begin, std::size_t end) {
  using B = sq::exec::simd_detail::batch<float>;
  std::size_t i = begin;
  for (; i < end && !sq::exec::simd_detail::is_register_aligned<B>(out + i); ++i) {
    out[i] = dy != nullptr ? x[i] + dy[i] : x[i];
  }
  if (dy != nullptr) {
    for (; i + B::size <= end; i += B::size) {
      sq::exec::simd_detail::stream_store(out + i, B::load_unaligned(x + i) + B::load_unaligned(dy + i));
    }
  } else {
    for (; i + B::size <= end; i += B::size) {
      sq::exec::simd_detail::stream_store(out + i, B::load_unaligned(x + i));
    }
  }
  for (; i < end; ++i) {
    out[i] = dy != nullptr ? x[i] + dy[i] : x[i];
  }
  sq::exec::simd_detail::stream_fence();
}

void run_baseline(benchmark::State& state, bool backward, bool memcpy_kind, bool parallel, std::size_t n) {
  buffers& b = data();
  // memcpy moves the kernel's total bytes (fwd 2n floats, bwd 3n floats) as a copy.
  const std::size_t copy_floats = backward ? n + n / 2 : n;
  for (auto _ : state) {
    if (memcpy_kind) {
      split(parallel, copy_floats, [&](std::size_t begin, std::size_t end) {
        std::memcpy(b.out.data + begin, b.x.data + begin, (end - begin) * sizeof(float));
      });
    } else {
      split(parallel, n, [&](std::size_t begin, std::size_t end) {
        stream_copy(b.x.data, backward ? b.dy.data : nullptr, b.out.data, begin, end);
      });
    }
    benchmark::ClobberMemory();
  }
  const auto bytes_per_call = static_cast<std::int64_t>(n * sizeof(float) * (backward ? 3 : 2));
  state.SetBytesProcessed(state.iterations() * bytes_per_call);
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(n));
}

template <class S>
void register_kernels(const char* kernel, S surrogate) {
  for (bool backward : {false, true}) {
    for (const char* layout : {"per_tensor", "per_channel"}) {
      for (std::size_t n : sizes) {
        const std::string direction = backward ? "bwd" : "fwd", size = std::to_string(n);
        const std::string layout_name = layout;
        benchmark::RegisterBenchmark(name_of({direction, kernel, layout_name, "seq", size}).c_str(), [=](benchmark::State& st) {
          run_kernel(st, backward, surrogate, layout_name, sq::exec::seq, n);
        })->UseRealTime();
        benchmark::RegisterBenchmark(name_of({direction, kernel, layout_name, "simd", size}).c_str(), [=](benchmark::State& st) {
          run_kernel(st, backward, surrogate, layout_name, sq::exec::simd, n);
        })->UseRealTime();
        benchmark::RegisterBenchmark(name_of({direction, kernel, layout_name, "par", size}).c_str(), [=](benchmark::State& st) {
          run_kernel(st, backward, surrogate, layout_name, sq::exec::par, n);
        })->UseRealTime();
      }
    }
  }
}

void register_baselines() {
  for (bool backward : {false, true}) {
    for (bool memcpy_kind : {true, false}) {
      for (bool parallel : {false, true}) {
        for (std::size_t n : sizes) {
          const std::string name = name_of({backward ? "bwd" : "fwd", memcpy_kind ? "memcpy" : "stream_copy", "-",
                                            parallel ? "par" : "1t", std::to_string(n)});
          benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& st) {
            run_baseline(st, backward, memcpy_kind, parallel, n);
          })->UseRealTime();
        }
      }
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
  register_baselines();
  register_kernels("ste", sq::ste{});
  register_kernels("fourier1", sq::fourier_surrogate<1>{0.21});
  register_kernels("fourier3", sq::fourier_surrogate<3>{0.21});
  data();  // allocate and page in before the first measurement
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
