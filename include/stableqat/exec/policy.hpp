// stableqat/exec/policy.hpp: execution policies, the tags that pick a backend.
//
// As in Thrust/CUB and the C++17 parallel algorithms, the first argument of
// every front-end function says where it runs. A policy is an empty (or small)
// tag; the backend for policy P is the specialisation backend<P>, defined by
// the header of that backend. The front-end (ops.hpp) reaches a backend only
// through backend<P> and the hooks at the end of this file.
#pragma once

#include <algorithm>
#include <cstddef>
#include <span>
#include <type_traits>
#include <vector>

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
/// backward(policy, q, backward_arguments) (exec/arguments.hpp): validated
/// arguments with a non-empty x; they compute and nothing else. Each backend
/// header specialises it; the primary template only explains which header is
/// missing.
///
/// A backend whose buffers the host cannot simply read and write (device
/// memory) also defines some of these optional static members; the front-end
/// finds them through exec::hooks below, whose defaults suit host memory:
///
///   template <class E, class T> static constexpr bool stores;
///       may tensors stored as E be computed in T (besides E == T)?   default: no
///   static void check_memory(P const&, const char* function, forward_arguments<T, E> const&);
///   static void check_memory(P const&, const char* function, backward_arguments<T, E> const&);
///       throws std::invalid_argument when the backend cannot reach a buffer;
///       called after the size checks, before any value is read.      default: no check
///   static host_values<T> read_on_host(P const&, const char* function,
///                                      std::span<const T> steps, std::span<const T> offsets);
///       the step and offset values where the host can check them.   default: the spans themselves
///   static void fill_zero(P const&, const char* function, const char* name, std::span<T> out);
///       out = 0 (the step gradients of an empty x).                  default: a host loop
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

/// Step and offset values the host can read: views of the caller's buffers
/// (host memory), or of one host copy of them (device memory). Movable, not
/// copyable: a moved std::vector keeps its buffer, so the views stay valid.
template <class T>
class host_values {
 public:
  /// The values where they are.
  host_values(std::span<const T> steps, std::span<const T> offsets) noexcept : steps_(steps), offsets_(offsets) {}
  /// Room for a copy of `steps` then `offsets` values, which the caller writes through copy().
  host_values(std::size_t steps, std::size_t offsets)
      : copy_(steps + offsets), steps_(copy_.data(), steps), offsets_(copy_.data() + steps, offsets) {}
  host_values(host_values&&) noexcept = default;
  host_values(host_values const&) = delete;
  host_values& operator=(host_values const&) = delete;
  host_values& operator=(host_values&&) = delete;
  ~host_values() = default;

  [[nodiscard]] std::span<const T> steps() const noexcept { return steps_; }
  [[nodiscard]] std::span<const T> offsets() const noexcept { return offsets_; }
  /// The copy's storage: steps().size() step values, then the offsets.
  [[nodiscard]] std::span<T> copy() noexcept { return copy_; }

 private:
  std::vector<T> copy_;
  std::span<const T> steps_;
  std::span<const T> offsets_;
};

/// Tensors stored as E can be computed in T by backend<P>: E == T always,
/// a narrower E when backend<P>::stores<E, T> says so.
template <class P, class E, class T>
concept stores = std::is_same_v<E, T> || requires { requires backend<P>::template stores<E, T>; };

/// The optional members of backend<P> listed above, with their defaults.
namespace hooks {

template <class P, class Arguments>
void check_memory(P const& policy, const char* function, Arguments const& a) {
  if constexpr (requires { backend<P>::check_memory(policy, function, a); }) {
    backend<P>::check_memory(policy, function, a);
  }
}

template <class P, class T>
host_values<T> read_on_host(P const& policy, const char* function, std::span<const T> steps,
                            std::span<const T> offsets) {
  if constexpr (requires { backend<P>::read_on_host(policy, function, steps, offsets); }) {
    return backend<P>::read_on_host(policy, function, steps, offsets);
  } else {
    return host_values<T>(steps, offsets);
  }
}

template <class P, class T>
void fill_zero(P const& policy, const char* function, const char* name, std::span<T> out) {
  if constexpr (requires { backend<P>::fill_zero(policy, function, name, out); }) {
    backend<P>::fill_zero(policy, function, name, out);
  } else {
    std::fill(out.begin(), out.end(), T(0));
  }
}

}  // namespace hooks

/// True for the policy types above.
template <class P>
concept execution_policy = std::is_same_v<std::remove_cvref_t<P>, sequenced_policy> ||
                           std::is_same_v<std::remove_cvref_t<P>, simd_policy> ||
                           std::is_same_v<std::remove_cvref_t<P>, parallel_policy> ||
                           std::is_same_v<std::remove_cvref_t<P>, cuda_policy>;

}  // namespace stableqat::exec
