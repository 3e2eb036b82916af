// stableqat/exec/cuda.cuh: exec::cuda, the CUDA backend (include from .cu files).
//
//   sq::fake_quantize(sq::exec::cuda, q, x, steps, y);                  // default stream
//   sq::fake_quantize_backward(sq::exec::cuda_on(stream), q, x, steps, dy, dx, dsteps);
//
// Spans hold device (or managed / pinned) pointers. Calls are asynchronous on
// the policy's stream, except for argument validation: the step (and offset)
// values are copied to the host and checked there before any kernel runs, so
// a call waits for the work already queued on its stream (see docs/cuda.md).
//
// Storage types: float and double tensors compute in their own type; __half
// and __nv_bfloat16 tensors (x, y, dy, dx) compute in float with float steps,
// offsets and step gradients, and every output is rounded to storage once.
#pragma once

#if !defined(__CUDACC__)
#error "stableqat/exec/cuda.cuh is CUDA code: include it from a .cu file compiled by nvcc"
#endif
#if !defined(__CUDACC_RELAXED_CONSTEXPR__)
#error "stableqat's CUDA backend needs nvcc --expt-relaxed-constexpr (the CMake target stableqat::stableqat adds it)"
#endif

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <ranges>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "../core/errors.hpp"
#include "../core/lsq.hpp"
#include "../ops.hpp"
#include "../quantizer.hpp"
#include "arguments.hpp"
#include "cuda/error.hpp"
#include "cuda/kernels.cuh"
#include "cuda/storage.hpp"
#include "cuda/tile_work.hpp"
#include "cuda/tiling.hpp"
#include "policy.hpp"

namespace stableqat::exec {

namespace cuda_detail {

inline cudaStream_t stream_of(cuda_policy const& policy) noexcept { return policy.stream; }

/// Blocks of block_threads that fit on the current device at once: the grid
/// size cap of the grid-stride kernels (results do not depend on it).
inline std::size_t resident_blocks(const char* function) {
  int device = 0;
  int multiprocessors = 0;
  int threads = 0;
  check_cuda(cudaGetDevice(&device), function, "cudaGetDevice");
  check_cuda(cudaDeviceGetAttribute(&multiprocessors, cudaDevAttrMultiProcessorCount, device), function,
             "cudaDeviceGetAttribute(multiprocessor count)");
  check_cuda(cudaDeviceGetAttribute(&threads, cudaDevAttrMaxThreadsPerMultiProcessor, device), function,
             "cudaDeviceGetAttribute(threads per multiprocessor)");
  const auto per_multiprocessor = static_cast<std::size_t>(threads) / block_threads;
  return static_cast<std::size_t>(multiprocessors) * (per_multiprocessor > 0 ? per_multiprocessor : 1);
}

inline bool aligned_16(const void* p) noexcept { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; }

/// Device memory for the partial sums, freed in stream order.
class stream_buffer {
 public:
  stream_buffer(const char* function, std::size_t count, cudaStream_t stream) : stream_(stream) {
    if (count > 0) {
      check_cuda(cudaMallocAsync(reinterpret_cast<void**>(&data_), count * sizeof(double), stream), function,
                 "cudaMallocAsync(partial sums)");
    }
  }
  stream_buffer(stream_buffer const&) = delete;
  stream_buffer& operator=(stream_buffer const&) = delete;
  ~stream_buffer() {
    if (data_ != nullptr) {
      (void)cudaFreeAsync(data_, stream_);  // a failure here has no one to report to
    }
  }
  [[nodiscard]] double* data() const noexcept { return data_; }

 private:
  double* data_ = nullptr;
  cudaStream_t stream_;
};

inline void check_launch(const char* function, const char* kernel) {
  check_cuda(cudaGetLastError(), function, std::string("launching ") + kernel);
}

/// Launches the element kernel of the layout, then (backward, a step spanning
/// several tiles) the second pass. Arguments are validated; x is not empty.
template <bool Backward, class E, class T, class S>
void launch(const char* function, cuda_policy const& policy, quantizer<T, S> const& q, std::size_t numel,
            element_buffers<E, T> const& b, gradient_buffers<T> g, bool has_offsets) {
  const cudaStream_t stream = stream_of(policy);
  const bool aligned = aligned_16(b.x) && aligned_16(b.out) && (!Backward || aligned_16(b.dy));
  const launch_plan plan =
      plan_launch(q.layout(), numel, chunk_elements<E>, aligned, Backward, resident_blocks(function));
  stream_buffer partial_steps(function, plan.partial_count, stream);
  stream_buffer partial_offsets(function, has_offsets ? plan.partial_count : 0, stream);
  g.partial_steps = partial_steps.data();
  g.partial_offsets = partial_offsets.data();
  const auto blocks = static_cast<unsigned>(plan.blocks);

  // The forward kernels ignore the surrogate: compile them once, with ste.
  using Surrogate = std::conditional_t<Backward, S, ste>;
  const Surrogate surrogate = [&] {
    if constexpr (Backward) {
      return q.surrogate();
    } else {
      return ste{};
    }
  }();
  visit_kernel<T>(q.grid(), has_offsets, [&](auto const& levels, auto with_offsets) {
    constexpr bool offsets = decltype(with_offsets)::value;
    using Levels = std::remove_cvref_t<decltype(levels)>;
    if (plan.by_column) {
      column_steps_kernel<Backward, offsets, E, T, Levels, Surrogate>
          <<<blocks, block_threads, 0, stream>>>(plan.columns, b, g, levels, surrogate);
      check_launch(function, "column_steps_kernel");
    } else {
      row_steps_kernel<Backward, offsets, E, T, Levels, Surrogate>
          <<<blocks, block_threads, 0, stream>>>(plan.rows, b, g, levels, surrogate);
      check_launch(function, "row_steps_kernel");
    }
    if constexpr (Backward) {
      if (plan.finalize_blocks > 0) {
        finalize_kernel<offsets, T><<<static_cast<unsigned>(plan.finalize_blocks), block_threads, 0, stream>>>(
            plan.partials, g);
        check_launch(function, "finalize_kernel");
      }
    }
  });
}

}  // namespace cuda_detail

/// The CUDA backend. forward/backward take validated arguments (the front-end
/// functions below validate) with a non-empty x, and only launch: they return
/// before the kernels finish.
template <>
struct backend<cuda_policy> {
  template <class E, real_scalar T, class S>
    requires storage_for<E, T>
  static void forward(cuda_policy const& policy, quantizer<T, S> const& q, forward_arguments<T, E> const& a) {
    const cuda_detail::element_buffers<E, T> b{a.x.data(), nullptr, a.y.data(), a.steps.data(),
                                               a.has_offsets ? a.offsets.data() : nullptr};
    cuda_detail::launch<false>(ops_detail::forward_name, policy, q, a.x.size(), b, cuda_detail::gradient_buffers<T>{},
                               a.has_offsets);
  }

  template <class E, real_scalar T, class S>
    requires storage_for<E, T>
  static void backward(cuda_policy const& policy, quantizer<T, S> const& q, backward_arguments<T, E> const& a) {
    const cuda_detail::element_buffers<E, T> b{a.x.data(), a.dy.data(), a.dx.data(), a.steps.data(),
                                               a.has_offsets ? a.offsets.data() : nullptr};
    cuda_detail::gradient_buffers<T> g;
    g.dsteps = a.dsteps.data();
    g.doffsets = a.has_offsets ? a.doffsets.data() : nullptr;
    g.grad_scale = a.grad_scale;
    cuda_detail::launch<true>(ops_detail::backward_name, policy, q, a.x.size(), b, g, a.has_offsets);
  }
};

namespace cuda_detail {

/// Throws std::invalid_argument when `s` is ordinary (pageable) host memory
/// that the device cannot read; device, managed and pinned memory pass.
template <class U>
void check_device_accessible(const char* function, const char* name, std::span<U> s, bool pageable_accessible) {
  if (s.empty() || pageable_accessible) {
    return;
  }
  cudaPointerAttributes attributes{};
  check_cuda(cudaPointerGetAttributes(&attributes, s.data()), function,
             std::string("cudaPointerGetAttributes(") + name + ")");
  if (attributes.type == cudaMemoryTypeUnregistered) {
    char address[2 + 2 * sizeof(void*) + 1];
    std::snprintf(address, sizeof address, "%p", static_cast<const void*>(s.data()));
    throw std::invalid_argument(std::string(function) + ": " + name + ".data() = " + address +
                                " is host memory; exec::cuda needs device, managed or pinned memory");
  }
}

/// True when the current device reads pageable host memory directly (HMM/ATS).
inline bool pageable_memory_accessible(const char* function) {
  int device = 0;
  int value = 0;
  check_cuda(cudaGetDevice(&device), function, "cudaGetDevice");
  check_cuda(cudaDeviceGetAttribute(&value, cudaDevAttrPageableMemoryAccess, device), function,
             "cudaDeviceGetAttribute(pageable memory access)");
  return value != 0;
}

/// Copies the steps (and offsets) to the host, waits for the stream and runs
/// the CPU front-end's value checks on them.
template <class T>
void check_step_and_offset_values(const char* function, cudaStream_t stream, std::span<const T> steps,
                                  std::span<const T> offsets, bool has_offsets) {
  std::vector<T> host_steps(steps.size());
  std::vector<T> host_offsets(has_offsets ? offsets.size() : 0);
  if (!host_steps.empty()) {
    check_cuda(cudaMemcpyAsync(host_steps.data(), steps.data(), steps.size_bytes(), cudaMemcpyDeviceToHost, stream),
               function, "cudaMemcpyAsync(steps to host)");
  }
  if (!host_offsets.empty()) {
    check_cuda(
        cudaMemcpyAsync(host_offsets.data(), offsets.data(), offsets.size_bytes(), cudaMemcpyDeviceToHost, stream),
        function, "cudaMemcpyAsync(offsets to host)");
  }
  check_cuda(cudaStreamSynchronize(stream), function, "cudaStreamSynchronize(validation)");
  validation::check_step_values(function, std::span<const T>(host_steps));
  if (has_offsets) {
    validation::check_offset_values(function, std::span<const T>(host_offsets));
  }
}

/// The whole forward front-end: host-side checks in the CPU front-end's order
/// (shapes, then memory kind, then values), then the kernels.
template <class E, real_scalar T, class S>
void run_forward(cuda_policy const& policy, quantizer<T, S> const& q, forward_arguments<T, E> const& a) {
  const char* function = ops_detail::forward_name;
  ops_detail::check_backend_runs_surrogate<cuda_policy, S>();
  validation::check_forward_shapes(function, q.layout(), a);
  const bool pageable = pageable_memory_accessible(function);
  check_device_accessible(function, "x", a.x, pageable);
  check_device_accessible(function, "steps", a.steps, pageable);
  check_device_accessible(function, "y", a.y, pageable);
  if (a.has_offsets) {
    check_device_accessible(function, "offsets", a.offsets, pageable);
  }
  check_step_and_offset_values(function, stream_of(policy), a.steps, a.offsets, a.has_offsets);
  if (!a.x.empty()) {
    backend<cuda_policy>::forward(policy, q, a);
  }
}

/// The whole backward front-end (see run_forward); grad_scale defaults to
/// lsq_grad_scale(x.size(), grid), and an empty x sets the step gradients to 0.
template <class E, real_scalar T, class S>
void run_backward(cuda_policy const& policy, quantizer<T, S> const& q, backward_arguments<T, E> a,
                  std::optional<double> grad_scale) {
  const char* function = ops_detail::backward_name;
  ops_detail::check_backend_runs_surrogate<cuda_policy, S>();
  a.grad_scale = grad_scale ? *grad_scale : 1.0;
  validation::check_backward_shapes(function, q.layout(), a);
  const bool pageable = pageable_memory_accessible(function);
  check_device_accessible(function, "x", a.x, pageable);
  check_device_accessible(function, "steps", a.steps, pageable);
  check_device_accessible(function, "dy", a.dy, pageable);
  check_device_accessible(function, "dx", a.dx, pageable);
  check_device_accessible(function, "dsteps", a.dsteps, pageable);
  if (a.has_offsets) {
    check_device_accessible(function, "offsets", a.offsets, pageable);
    check_device_accessible(function, "doffsets", a.doffsets, pageable);
  }
  check_step_and_offset_values(function, stream_of(policy), a.steps, a.offsets, a.has_offsets);
  if (a.x.empty()) {
    const cudaStream_t stream = stream_of(policy);
    if (!a.dsteps.empty()) {
      check_cuda(cudaMemsetAsync(a.dsteps.data(), 0, a.dsteps.size_bytes(), stream), function,
                 "cudaMemsetAsync(dsteps)");
    }
    if (a.has_offsets && !a.doffsets.empty()) {
      check_cuda(cudaMemsetAsync(a.doffsets.data(), 0, a.doffsets.size_bytes(), stream), function,
                 "cudaMemsetAsync(doffsets)");
    }
    return;
  }
  if (!grad_scale) {
    a.grad_scale = lsq_grad_scale(a.x.size(), q.grid());
  }
  backend<cuda_policy>::backward(policy, q, a);
}

}  // namespace cuda_detail

}  // namespace stableqat::exec

namespace stableqat {

// Front-end overloads for exec::cuda. They take precedence over the generic
// ones in ops.hpp (which read step values on the host) and validate with the
// same checks and messages, reading the step values back from the device.

/// fake_quantize on the GPU (see ops.hpp): x, steps, y are device memory.
template <real_scalar T, class S>
void fake_quantize(exec::cuda_policy const& policy, quantizer<T, S> const& q, ops_detail::input<T> x,
                   ops_detail::input<T> steps, ops_detail::output<T> y) {
  exec::cuda_detail::run_forward(policy, q, exec::forward_arguments<T, T>{x, steps, {}, y, false});
}

/// fake_quantize with offsets (LSQ+) on the GPU.
template <real_scalar T, class S>
void fake_quantize(exec::cuda_policy const& policy, quantizer<T, S> const& q, ops_detail::input<T> x,
                   ops_detail::input<T> steps, ops_detail::output<T> y, ops_detail::input<T> offsets) {
  exec::cuda_detail::run_forward(policy, q, exec::forward_arguments<T, T>{x, steps, offsets, y, true});
}

/// fake_quantize_backward on the GPU (see ops.hpp).
template <real_scalar T, class S>
void fake_quantize_backward(exec::cuda_policy const& policy, quantizer<T, S> const& q, ops_detail::input<T> x,
                            ops_detail::input<T> steps, ops_detail::input<T> dy, ops_detail::output<T> dx,
                            ops_detail::output<T> dsteps, std::optional<double> grad_scale = std::nullopt) {
  exec::cuda_detail::run_backward(
      policy, q, exec::backward_arguments<T, T>{x, steps, {}, dy, dx, dsteps, {}, 1.0, false}, grad_scale);
}

/// fake_quantize_backward with offsets on the GPU.
template <real_scalar T, class S>
void fake_quantize_backward(exec::cuda_policy const& policy, quantizer<T, S> const& q, ops_detail::input<T> x,
                            ops_detail::input<T> steps, ops_detail::input<T> dy, ops_detail::output<T> dx,
                            ops_detail::output<T> dsteps, ops_detail::input<T> offsets,
                            ops_detail::output<T> doffsets, std::optional<double> grad_scale = std::nullopt) {
  exec::cuda_detail::run_backward(
      policy, q, exec::backward_arguments<T, T>{x, steps, offsets, dy, dx, dsteps, doffsets, 1.0, true},
      grad_scale);
}

// 16-bit storage: x, y, dy, dx are __half or __nv_bfloat16 (E, the element
// type of the output y or dx: a std::span or any writable contiguous range of
// them); the quantizer, steps, offsets and their gradients are float; each
// element is computed in float by the same formulas and its output rounded to
// storage once.

/// fake_quantize of __half / __nv_bfloat16 tensors (float steps).
template <class S, exec::half_precision_output Y, class E = std::ranges::range_value_t<Y>>
void fake_quantize(exec::cuda_policy const& policy, quantizer<float, S> const& q,
                   std::span<const std::type_identity_t<E>> x, std::span<const float> steps, Y&& y) {
  exec::cuda_detail::run_forward(policy, q, exec::forward_arguments<float, E>{x, steps, {}, std::span<E>(y), false});
}

/// fake_quantize of __half / __nv_bfloat16 tensors with float offsets.
template <class S, exec::half_precision_output Y, class E = std::ranges::range_value_t<Y>>
void fake_quantize(exec::cuda_policy const& policy, quantizer<float, S> const& q,
                   std::span<const std::type_identity_t<E>> x, std::span<const float> steps, Y&& y,
                   std::span<const float> offsets) {
  exec::cuda_detail::run_forward(policy, q,
                                 exec::forward_arguments<float, E>{x, steps, offsets, std::span<E>(y), true});
}

/// fake_quantize_backward of __half / __nv_bfloat16 tensors (float steps and step gradients).
template <class S, exec::half_precision_output DX, class E = std::ranges::range_value_t<DX>>
void fake_quantize_backward(exec::cuda_policy const& policy, quantizer<float, S> const& q,
                            std::span<const std::type_identity_t<E>> x, std::span<const float> steps,
                            std::span<const std::type_identity_t<E>> dy, DX&& dx, std::span<float> dsteps,
                            std::optional<double> grad_scale = std::nullopt) {
  exec::cuda_detail::run_backward(
      policy, q, exec::backward_arguments<float, E>{x, steps, {}, dy, std::span<E>(dx), dsteps, {}, 1.0, false},
      grad_scale);
}

/// fake_quantize_backward of __half / __nv_bfloat16 tensors with float offsets.
template <class S, exec::half_precision_output DX, class E = std::ranges::range_value_t<DX>>
void fake_quantize_backward(exec::cuda_policy const& policy, quantizer<float, S> const& q,
                            std::span<const std::type_identity_t<E>> x, std::span<const float> steps,
                            std::span<const std::type_identity_t<E>> dy, DX&& dx, std::span<float> dsteps,
                            std::span<const float> offsets, std::span<float> doffsets,
                            std::optional<double> grad_scale = std::nullopt) {
  exec::cuda_detail::run_backward(
      policy, q,
      exec::backward_arguments<float, E>{x, steps, offsets, dy, std::span<E>(dx), dsteps, doffsets, 1.0, true},
      grad_scale);
}

}  // namespace stableqat
