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
//
// The calls go through the one front-end (ops.hpp) like every policy's; this
// header is only the backend: the kernel launches, and the hooks the
// front-end needs for device memory (exec/policy.hpp): memory-kind check,
// host copy of the steps for their value checks, zero fill on the device.
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
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "../quantizer.hpp"
#include "arguments.hpp"
#include "export_plan.hpp"
#include "cuda/error.hpp"
#include "cuda/export.cuh"
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
/// several tiles) the second pass, then (backward of a learnable surrogate,
/// g.dparameter set) the parameter pass. Arguments are validated; x is not empty.
template <bool Backward, class E, class T, class S>
void launch(const char* function, cuda_policy const& policy, quantizer<T, S> const& q, std::size_t numel,
            element_buffers<E, T> const& b, gradient_buffers<T> g, bool has_offsets) {
  const cudaStream_t stream = stream_of(policy);
  const bool aligned = aligned_16(b.x) && aligned_16(b.out) && (!Backward || aligned_16(b.dy));
  const launch_plan plan =
      plan_launch(q.layout(), numel, chunk_elements<E>, aligned, Backward, resident_blocks(function));
  constexpr bool with_parameter = Backward && carries_parameter<S>;
  stream_buffer partial_steps(function, plan.partial_count, stream);
  stream_buffer partial_offsets(function, has_offsets ? plan.partial_count : 0, stream);
  stream_buffer partial_parameters(function, with_parameter ? plan.partial_count : 0, stream);
  stream_buffer step_parameters(function, with_parameter ? plan.partials.steps : 0, stream);
  g.partial_steps = partial_steps.data();
  g.partial_offsets = partial_offsets.data();
  g.partial_parameters = partial_parameters.data();
  g.step_parameters = step_parameters.data();
  const auto blocks = static_cast<unsigned>(plan.blocks);

  // The forward kernels use the surrogate only for its own rounding rule
  // (e.g. DSQ's): without one, compile them once, with ste.
  using Surrogate = std::conditional_t<Backward || surrogate_with_rounding<S>, S, ste>;
  const Surrogate surrogate = [&] {
    if constexpr (std::is_same_v<Surrogate, S>) {
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
        finalize_kernel<offsets, with_parameter, T>
            <<<static_cast<unsigned>(plan.finalize_blocks), block_threads, 0, stream>>>(plan.partials, g);
        check_launch(function, "finalize_kernel");
      }
      if (with_parameter && g.dparameter != nullptr) {
        parameter_kernel<T><<<1, block_threads, 0, stream>>>(plan.partials.steps, b.steps, g);
        check_launch(function, "parameter_kernel");
      }
    }
  });
}

/// Throws std::invalid_argument when a buffer is ordinary (pageable) host
/// memory that the device cannot read; device, managed and pinned memory pass.
inline void check_device_accessible(const char* function, bool pageable_accessible, named_buffer const& b) {
  if (b.bytes.empty() || pageable_accessible) {
    return;
  }
  cudaPointerAttributes attributes{};
  check_cuda(cudaPointerGetAttributes(&attributes, b.bytes.data()), function,
             std::string("cudaPointerGetAttributes(") + b.name + ")");
  if (attributes.type == cudaMemoryTypeUnregistered) {
    char address[2 + 2 * sizeof(void*) + 1];
    std::snprintf(address, sizeof address, "%p", static_cast<const void*>(b.bytes.data()));
    throw std::invalid_argument(std::string(function) + ": " + b.name + ".data() = " + address +
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

}  // namespace cuda_detail

/// The CUDA backend: forward/backward launch on the policy's stream and return
/// before the kernels finish; the other members are the front-end's hooks for
/// device memory (exec/policy.hpp).
template <>
struct backend<cuda_policy> {
  /// Runs every surrogate hook of surrogates/concepts.hpp: own rounding, band,
  /// step term, dy-aware g and one learnable parameter (DSQ's alpha).
  static constexpr bool supports_estimator_surrogates = true;

  /// __half and __nv_bfloat16 tensors computed in float (exec/cuda/storage.hpp).
  template <class E, class T>
  static constexpr bool stores = storage_for<E, T>;

  template <class E, real_scalar T, class S>
    requires storage_for<E, T>
  static void forward(cuda_policy const& policy, quantizer<T, S> const& q, forward_arguments<T, E> const& a) {
    const cuda_detail::element_buffers<E, T> b{a.x.data(), nullptr, a.y.data(), a.steps.data(),
                                               a.has_offsets ? a.offsets.data() : nullptr};
    cuda_detail::launch<false>(forward_function, policy, q, a.x.size(), b, cuda_detail::gradient_buffers<T>{},
                               a.has_offsets);
  }

  template <class E, real_scalar T, class S>
    requires storage_for<E, T>
  static void backward(cuda_policy const& policy, quantizer<T, S> const& q, backward_arguments<T, E> const& a) {
    backward(policy, q, a, std::span<T>());
  }

  /// Backward that also writes the gradient of the surrogate's learnable
  /// parameter: dparameters[0] = sum_k steps[k] * (sum over step k of the
  /// element terms), every sum in double in a fixed order (per tile, per step,
  /// then over the steps in one block): the same bits on every run. An empty
  /// span (surrogates without parameters) writes none.
  template <class E, real_scalar T, class S>
    requires storage_for<E, T>
  static void backward(cuda_policy const& policy, quantizer<T, S> const& q, backward_arguments<T, E> const& a,
                       std::span<T> dparameters) {
    static_assert(surrogate_parameter_count<S> <= 1, "exec::cuda carries at most one learnable surrogate parameter");
    const cuda_detail::element_buffers<E, T> b{a.x.data(), a.dy.data(), a.dx.data(), a.steps.data(),
                                               a.has_offsets ? a.offsets.data() : nullptr};
    cuda_detail::gradient_buffers<T> g;
    g.dsteps = a.dsteps.data();
    g.doffsets = a.has_offsets ? a.doffsets.data() : nullptr;
    g.grad_scale = a.grad_scale;
    g.dparameter = dparameters.empty() ? nullptr : dparameters.data();
    cuda_detail::launch<true>(backward_function, policy, q, a.x.size(), b, g, a.has_offsets);
  }

  /// Refuses ordinary host memory (unless the device reads it: HMM/ATS).
  /// (Arrays, not braced arguments: nvcc's host pass turns a braced argument
  /// list inside these member templates into a GNU statement expression.)
  template <real_scalar T, class E>
  static void check_memory(cuda_policy const&, const char* function, forward_arguments<T, E> const& a) {
    const named_buffer buffers[] = {{"x", a.x}, {"steps", a.steps}, {"y", a.y},
                                    {"offsets", a.has_offsets ? a.offsets : std::span<const T>()}};
    check_buffers(function, buffers);
  }

  template <real_scalar T, class E>
  static void check_memory(cuda_policy const&, const char* function, backward_arguments<T, E> const& a) {
    const named_buffer buffers[] = {{"x", a.x},
                                    {"steps", a.steps},
                                    {"dy", a.dy},
                                    {"dx", a.dx},
                                    {"dsteps", a.dsteps},
                                    {"offsets", a.has_offsets ? a.offsets : std::span<const T>()},
                                    {"doffsets", a.has_offsets ? a.doffsets : std::span<T>()}};
    check_buffers(function, buffers);
  }

  /// A learnable surrogate's parameter gradients (dparameters) live on the device too.
  template <real_scalar T>
  static void check_memory(cuda_policy const&, const char* function, parameter_gradients<T> const& a) {
    const named_buffer buffers[] = {{"dparameters", a.dparameters}};
    check_buffers(function, buffers);
  }

  /// The integer export's buffers (export.hpp; packed bytes on the device too).
  template <real_scalar T, code_type C, class E>
  static void check_memory(cuda_policy const&, const char* function, code_arguments<T, C, E> const& a) {
    const named_buffer buffers[] = {{"x", a.x}, {"steps", a.steps}, {"codes", a.codes},
                                    {"offsets", a.has_offsets ? a.offsets : std::span<const T>()}};
    check_buffers(function, buffers);
  }

  template <real_scalar T, class E>
  static void check_memory(cuda_policy const&, const char* function, dequantize_arguments<T, E> const& a) {
    const named_buffer buffers[] = {{"packed", a.packed}, {"steps", a.steps}, {"y", a.y},
                                    {"offsets", a.has_offsets ? a.offsets : std::span<const T>()}};
    check_buffers(function, buffers);
  }

  /// Copies the steps and offsets to the host and waits for the stream (so a
  /// call synchronises its stream once, before its kernels are queued).
  template <real_scalar T>
  static host_values<T> read_on_host(cuda_policy const& policy, const char* function, std::span<const T> steps,
                                     std::span<const T> offsets) {
    const cudaStream_t stream = cuda_detail::stream_of(policy);
    host_values<T> host(steps.size(), offsets.size());
    if (!steps.empty()) {
      cuda_detail::check_cuda(cudaMemcpyAsync(host.copy().data(), steps.data(), steps.size_bytes(),
                                              cudaMemcpyDeviceToHost, stream),
                              function, "cudaMemcpyAsync(steps to host)");
    }
    if (!offsets.empty()) {
      cuda_detail::check_cuda(cudaMemcpyAsync(host.copy().data() + steps.size(), offsets.data(), offsets.size_bytes(),
                                              cudaMemcpyDeviceToHost, stream),
                              function, "cudaMemcpyAsync(offsets to host)");
    }
    cuda_detail::check_cuda(cudaStreamSynchronize(stream), function, "cudaStreamSynchronize(validation)");
    return host;
  }

  /// out = 0 on the device, in stream order.
  template <real_scalar T>
  static void fill_zero(cuda_policy const& policy, const char* function, const char* name, std::span<T> out) {
    if (!out.empty()) {
      cuda_detail::check_cuda(cudaMemsetAsync(out.data(), 0, out.size_bytes(), cuda_detail::stream_of(policy)),
                              function, std::string("cudaMemsetAsync(") + name + ")");
    }
  }

 private:
  /// The memory-kind check of each buffer, in order.
  static void check_buffers(const char* function, std::span<const named_buffer> buffers) {
    const bool pageable = cuda_detail::pageable_memory_accessible(function);
    for (named_buffer const& b : buffers) {
      cuda_detail::check_device_accessible(function, pageable, b);
    }
  }
};

// The hooks are optional members found by signature (exec/policy.hpp): a
// signature that drifted would silently fall back to the host defaults and
// read device memory on the host. Pin them.
static_assert(requires(cuda_policy p, forward_arguments<float> const& f, backward_arguments<float, __half> const& b,
                       std::span<const float> in, std::span<float> out) {
  backend<cuda_policy>::check_memory(p, "", f);
  backend<cuda_policy>::check_memory(p, "", b);
  backend<cuda_policy>::check_memory(p, "", code_arguments<float, std::int8_t, __half>{});
  backend<cuda_policy>::check_memory(p, "", dequantize_arguments<float, __nv_bfloat16>{});
  { backend<cuda_policy>::read_on_host(p, "", in, in) } -> std::same_as<host_values<float>>;
  backend<cuda_policy>::fill_zero(p, "", "", out);
} && stores<cuda_policy, __half, float> && stores<cuda_policy, __nv_bfloat16, float>);

}  // namespace stableqat::exec
