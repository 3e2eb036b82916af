// stableqat/exec/policy.hpp: execution policies, the tags that pick a backend.
//
// As in Thrust/CUB and the C++17 parallel algorithms, the first argument of
// every front-end function says where it runs. A policy is an empty (or small)
// tag; the backend for policy P is the specialisation backend<P>, defined by
// the header of that backend.
#pragma once

#include <type_traits>

struct CUstream_st;  // cudaStream_t without including the CUDA runtime

namespace stableqat::exec {

/// Scalar loops: the reference every other backend is tested against.
struct sequenced_policy {};
/// One core, SIMD batches of the widest instruction set enabled at compile time (xsimd).
struct simd_policy {};
/// All cores (OpenMP) over SIMD chunks; threads = 0 uses OpenMP's default.
struct parallel_policy {
  int threads = 0;
  /// The same policy with an explicit thread count.
  [[nodiscard]] constexpr parallel_policy with_threads(int count) const noexcept { return {count}; }
};
/// A CUDA stream; spans hold device pointers. nullptr is the default stream.
struct cuda_policy {
  CUstream_st* stream = nullptr;
};

inline constexpr sequenced_policy seq{};
inline constexpr simd_policy simd{};
inline constexpr parallel_policy par{};
inline constexpr cuda_policy cuda{};

/// exec::cuda on the given stream (a cudaStream_t).
constexpr cuda_policy cuda_on(CUstream_st* stream) noexcept { return {stream}; }

template <class T>
inline constexpr bool always_false = false;

/// backend<Policy> provides static forward(policy, q, forward_arguments) and
/// backward(policy, q, backward_arguments). Each backend header specialises it;
/// the primary template only explains which header is missing.
template <class Policy>
struct backend {
  static_assert(!std::is_same_v<Policy, simd_policy>,
                "exec::simd needs #include <stableqat/exec/simd.hpp> (or <stableqat/stableqat.hpp>) and xsimd");
  static_assert(!std::is_same_v<Policy, parallel_policy>,
                "exec::par needs #include <stableqat/exec/par.hpp> (or <stableqat/stableqat.hpp>)");
  static_assert(!std::is_same_v<Policy, cuda_policy>,
                "exec::cuda needs #include <stableqat/cuda.cuh> in a .cu file compiled by nvcc");
  static_assert(std::is_same_v<Policy, sequenced_policy> || std::is_same_v<Policy, simd_policy> ||
                    std::is_same_v<Policy, parallel_policy> || std::is_same_v<Policy, cuda_policy>,
                "not a stableqat execution policy: use exec::seq, exec::simd, exec::par or exec::cuda");
};

/// True for the policy types above.
template <class P>
concept execution_policy = std::is_same_v<std::remove_cvref_t<P>, sequenced_policy> ||
                           std::is_same_v<std::remove_cvref_t<P>, simd_policy> ||
                           std::is_same_v<std::remove_cvref_t<P>, parallel_policy> ||
                           std::is_same_v<std::remove_cvref_t<P>, cuda_policy>;

}  // namespace stableqat::exec
