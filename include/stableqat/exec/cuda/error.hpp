// stableqat/exec/cuda/error.hpp: CUDA runtime failures as exceptions.
#pragma once

#include <cuda_runtime_api.h>

#include <stdexcept>
#include <string>
#include <string_view>

namespace stableqat {

/// A CUDA runtime call failed. what() reads
///   "<function>: <operation> failed: <cudaGetErrorString> (<cudaGetErrorName>)"
/// e.g. "stableqat::fake_quantize: cudaMemcpyAsync(steps to host) failed: out of
/// memory (cudaErrorMemoryAllocation)". Bad arguments are std::invalid_argument
/// instead and are reported before any CUDA call.
class cuda_error : public std::runtime_error {
 public:
  cuda_error(cudaError_t code, std::string_view function, std::string_view operation)
      : std::runtime_error(describe(code, function, operation)), code_(code) {}

  /// The CUDA error code.
  [[nodiscard]] cudaError_t code() const noexcept { return code_; }

 private:
  static std::string describe(cudaError_t code, std::string_view function, std::string_view operation) {
    std::string text(function);
    text.append(": ").append(operation).append(" failed: ");
    text.append(cudaGetErrorString(code)).append(" (").append(cudaGetErrorName(code)).append(")");
    return text;
  }

  cudaError_t code_;
};

namespace exec::cuda_detail {

/// Throws cuda_error unless `code` is cudaSuccess.
inline void check_cuda(cudaError_t code, std::string_view function, std::string_view operation) {
  if (code != cudaSuccess) {
    throw cuda_error(code, function, operation);
  }
}

}  // namespace exec::cuda_detail
}  // namespace stableqat
