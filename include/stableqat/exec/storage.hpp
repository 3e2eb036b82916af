// stableqat/exec/storage.hpp: the type tensors are stored in vs the type they are computed in.
//
// Elements (x, y, dy, dx) are stored as E and computed in T. On every backend
// E may be T itself; a backend may admit narrower storage and says so through
// backend<P>::stores (exec/policy.hpp): exec::seq, exec::simd and exec::par
// store stableqat::bfloat16 and stableqat::float16 (core/half.hpp) computed in
// float (traits below); exec::cuda stores __half and __nv_bfloat16 computed in
// float (exec/cuda/storage.hpp adds their traits). Steps, offsets and their
// gradients are always T.
//
// Contract of 16-bit storage, the same on every backend: each element is
// widened exactly to float, the float formulas of core/ run unchanged, and each
// output (y, dx) is rounded to storage once, to nearest even. The result bits
// are therefore those of the float computation followed by that rounding
// (NaN: a NaN, whose bits may differ between host and device).
#pragma once

#include <concepts>
#include <ranges>
#include <span>

#include "../core/config.hpp"
#include "../core/half.hpp"
#include "../core/math.hpp"

namespace stableqat::exec {

/// How elements of storage type E are computed on: `compute_type` is the type
/// the formulas run in, `to_compute(e)` widens exactly, `to_storage(c)` rounds
/// to nearest even (overflow gives ±inf, NaN stays NaN). Defined here for
/// float and double (stored as computed) and the host 16-bit types, by
/// exec/cuda/storage.hpp for CUDA's 16-bit types.
template <class E>
struct storage_traits;

template <real_scalar T>
struct storage_traits<T> {
  using compute_type = T;
  STABLEQAT_HD static constexpr T to_compute(T value) noexcept { return value; }
  STABLEQAT_HD static constexpr T to_storage(T value) noexcept { return value; }
};

/// bfloat16 and float16 are computed in float: widened exactly, rounded back
/// once to nearest even (core/half.hpp). Host only.
template <>
struct storage_traits<bfloat16> {
  using compute_type = float;
  static constexpr float to_compute(bfloat16 value) noexcept { return value.to_float(); }
  static constexpr bfloat16 to_storage(float value) noexcept { return bfloat16::from_float(value); }
};

template <>
struct storage_traits<float16> {
  using compute_type = float;
  static constexpr float to_compute(float16 value) noexcept { return value.to_float(); }
  static constexpr float16 to_storage(float value) noexcept { return float16::from_float(value); }
};

/// The host 16-bit storage types of exec::seq / simd / par (computed in float).
template <class E>
concept host_half_storage = std::same_as<E, bfloat16> || std::same_as<E, float16>;

/// E is a storage type whose elements are computed in T: E == T, or a
/// narrower type whose storage_traits compute in T (__half with T = float).
template <class E, class T>
concept storage_for = real_scalar<T> && requires { typename storage_traits<E>::compute_type; } &&
                      std::same_as<typename storage_traits<E>::compute_type, T>;

/// A writable contiguous range of elements, the output (y, dx) of the
/// front-end: std::span<E>, std::vector<E>&, std::array<E, N>&, E[N]. Its
/// element type picks the storage type E of the call's tensors.
template <class R>
concept element_output = std::ranges::contiguous_range<R> && std::ranges::sized_range<R> &&
                         std::same_as<std::ranges::range_reference_t<R>, std::ranges::range_value_t<R>&> &&
                         std::constructible_from<std::span<std::ranges::range_value_t<R>>, R>;

}  // namespace stableqat::exec
