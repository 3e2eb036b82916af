// exec::cuda throughput against the memory roofline (Google Benchmark, manual
// time from cudaEvents on the benchmark's stream).
//
// Each kernel benchmark first times cudaMemcpyAsync (device to device) of the
// bytes the kernel moves: forward reads x and writes y (a copy of n elements),
// backward reads x and dy and writes dx (a copy of 1.5 n elements). Counters:
//   GB/s      bytes the kernel moves / its time
//   copy_GB/s the same for the copy
//   roofline  copy time / kernel time (1.0 = as fast as a copy)
// "kernels" calls the backend directly (arguments already validated);
// "frontend" is the full fake_quantize call including the host-side checks,
// which copy the steps to the host and wait for the stream.
#include <benchmark/benchmark.h>

#include <stableqat/cuda.cuh>

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <span>
#include <vector>

namespace sq = stableqat;
namespace cd = stableqat::exec::cuda_detail;

namespace {

void check(cudaError_t status, const char* what) { cd::check_cuda(status, "bench_cuda", what); }

/// Device buffers for n elements, filled once with data spread over the grid.
struct workspace {
  std::size_t n = 0;
  float* source = nullptr;  // x, then dy (2n)
  float* target = nullptr;  // y or dx, then room for the backward-sized copy (2n)
  float* steps = nullptr;   // up to n / 4096 steps
  float* dsteps = nullptr;
  cudaStream_t stream = nullptr;
  cudaEvent_t start = nullptr;
  cudaEvent_t stop = nullptr;

  explicit workspace(std::size_t count) : n(count) {
    check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
    check(cudaEventCreate(&start), "cudaEventCreate");
    check(cudaEventCreate(&stop), "cudaEventCreate");
    check(cudaMalloc(reinterpret_cast<void**>(&source), 2 * n * sizeof(float)), "cudaMalloc");
    check(cudaMalloc(reinterpret_cast<void**>(&target), 2 * n * sizeof(float)), "cudaMalloc");
    const std::size_t step_count = n / 4096 + 1;
    check(cudaMalloc(reinterpret_cast<void**>(&steps), step_count * sizeof(float)), "cudaMalloc");
    check(cudaMalloc(reinterpret_cast<void**>(&dsteps), step_count * sizeof(float)), "cudaMalloc");
    std::vector<float> host(1 << 20);
    std::mt19937 rng(1);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (float& v : host) {
      v = normal(rng);
    }
    for (std::size_t at = 0; at < 2 * n; at += host.size()) {
      const std::size_t count_here = std::min(host.size(), 2 * n - at);
      check(cudaMemcpy(source + at, host.data(), count_here * sizeof(float), cudaMemcpyHostToDevice), "cudaMemcpy");
    }
    const std::vector<float> host_steps(step_count, 0.3f);
    check(cudaMemcpy(steps, host_steps.data(), step_count * sizeof(float), cudaMemcpyHostToDevice), "cudaMemcpy");
  }
  workspace(workspace const&) = delete;
  workspace& operator=(workspace const&) = delete;
  ~workspace() {
    (void)cudaFree(source);
    (void)cudaFree(target);
    (void)cudaFree(steps);
    (void)cudaFree(dsteps);
    (void)cudaEventDestroy(start);
    (void)cudaEventDestroy(stop);
    (void)cudaStreamDestroy(stream);
  }

  /// Seconds `work` takes on the stream, by cudaEvents.
  template <class Work>
  double time(Work const& work) {
    check(cudaEventRecord(start, stream), "cudaEventRecord");
    work();
    check(cudaEventRecord(stop, stream), "cudaEventRecord");
    check(cudaEventSynchronize(stop), "cudaEventSynchronize");
    float milliseconds = 0;
    check(cudaEventElapsedTime(&milliseconds, start, stop), "cudaEventElapsedTime");
    return static_cast<double>(milliseconds) * 1e-3;
  }

  /// Mean time of a device-to-device copy of `elements` floats (after a warm-up).
  double copy_seconds(std::size_t elements) {
    auto copy = [&] {
      check(cudaMemcpyAsync(target, source, elements * sizeof(float), cudaMemcpyDeviceToDevice, stream),
            "cudaMemcpyAsync");
    };
    (void)time(copy);
    double total = 0;
    constexpr int repeats = 20;
    for (int r = 0; r < repeats; ++r) {
      total += time(copy);
    }
    return total / repeats;
  }
};

workspace& workspace_for(std::size_t n) {
  static std::unique_ptr<workspace> current;  // one size at a time: 256M floats need 4 GiB
  if (!current || current->n != n) {
    current.reset();
    current = std::make_unique<workspace>(n);
  }
  return *current;
}

enum class pass { forward, backward };
enum class entry { kernels, frontend };

template <class S>
void run(benchmark::State& state, pass which, entry how, sq::step_layout layout, S surrogate) {
  const auto n = static_cast<std::size_t>(state.range(0));
  workspace& w = workspace_for(n);
  const sq::quantizer<float, S> q{sq::signed_grid(4), surrogate, layout};
  const std::size_t step_count = layout.step_count(n);
  const sq::exec::cuda_policy policy = sq::exec::cuda_on(w.stream);
  const std::span<const float> x(w.source, n);
  const std::span<const float> dy(w.source + n, n);
  const std::span<float> out(w.target, n);
  const std::span<const float> steps(w.steps, step_count);
  const std::span<float> dsteps(w.dsteps, step_count);
  const double grad_scale = sq::lsq_grad_scale(n, q.grid());
  auto call = [&] {
    if (which == pass::forward) {
      if (how == entry::kernels) {
        sq::exec::backend<sq::exec::cuda_policy>::forward(policy, q, sq::exec::forward_arguments<float>{x, steps, {}, out, false});
      } else {
        sq::fake_quantize(policy, q, x, steps, out);
      }
    } else {
      if (how == entry::kernels) {
        sq::exec::backend<sq::exec::cuda_policy>::backward(
            policy, q, sq::exec::backward_arguments<float>{x, steps, {}, dy, out, dsteps, {}, grad_scale, false});
      } else {
        sq::fake_quantize_backward(policy, q, x, steps, dy, out, dsteps);
      }
    }
  };
  const std::size_t copied = which == pass::forward ? n : n + n / 2;  // elements; a copy moves them twice
  const double copy = w.copy_seconds(copied);
  (void)w.time(call);  // warm-up
  double total = 0;
  for (auto _ : state) {
    const double seconds = w.time(call);
    state.SetIterationTime(seconds);
    total += seconds;
  }
  const double bytes = 2.0 * static_cast<double>(copied) * sizeof(float);
  const double mean = total / static_cast<double>(state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes) * state.iterations());
  state.counters["copy_GB/s"] = bytes / copy * 1e-9;
  state.counters["roofline"] = copy / mean;
}

void forward_kernels(benchmark::State& s) { run(s, pass::forward, entry::kernels, sq::per_tensor(), sq::ste{}); }
void forward_frontend(benchmark::State& s) { run(s, pass::forward, entry::frontend, sq::per_tensor(), sq::ste{}); }
void backward_fourier1_kernels(benchmark::State& s) {
  run(s, pass::backward, entry::kernels, sq::per_tensor(), sq::fourier_surrogate<1>{});
}
void backward_fourier1_frontend(benchmark::State& s) {
  run(s, pass::backward, entry::frontend, sq::per_tensor(), sq::fourier_surrogate<1>{});
}
void backward_fourier1_per_channel4096_kernels(benchmark::State& s) {
  run(s, pass::backward, entry::kernels, sq::per_channel(4096), sq::fourier_surrogate<1>{});
}
void backward_ste_kernels(benchmark::State& s) {
  run(s, pass::backward, entry::kernels, sq::per_tensor(), sq::ste{});
}

constexpr std::int64_t sixteen_m = std::int64_t{16} << 20;
constexpr std::int64_t two_fifty_six_m = std::int64_t{256} << 20;

}  // namespace

BENCHMARK(forward_kernels)->Arg(sixteen_m)->Arg(two_fifty_six_m)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(forward_frontend)->Arg(sixteen_m)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(backward_fourier1_kernels)->Arg(sixteen_m)->Arg(two_fifty_six_m)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(backward_fourier1_frontend)->Arg(sixteen_m)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(backward_fourier1_per_channel4096_kernels)->Arg(sixteen_m)->Arg(two_fifty_six_m)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(backward_ste_kernels)->Arg(sixteen_m)->Arg(two_fifty_six_m)->UseManualTime()->Unit(benchmark::kMicrosecond);

int main(int argc, char** argv) {
  int devices = 0;
  const cudaError_t status = cudaGetDeviceCount(&devices);
  if (status != cudaSuccess || devices == 0) {
    std::printf("SKIPPED: no CUDA device (cudaGetDeviceCount: %s); nothing to benchmark.\n",
                status == cudaSuccess ? "0 devices" : cudaGetErrorString(status));
    return 0;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
    return 1;
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
