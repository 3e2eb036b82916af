// stableqat/exec/cuda/storage.hpp: element storage types of the CUDA backend.
//
// Tensors may be stored in a narrower type than the one the math runs in:
// __half and __nv_bfloat16 tensors are widened to float, computed with the
// float formulas of core/, and each output is rounded back to storage once
// (round to nearest, ties to even). float and double are stored as computed.
// Usable from host code too (cuda_fp16.h and cuda_bf16.h compile with g++),
// which is how the conversions are tested without a GPU.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <concepts>
#include <cstddef>
#include <ranges>

#include "../../core/config.hpp"
#include "../storage.hpp"

namespace stableqat::exec {

// The 16-bit float storage types; storage_traits, storage_for and the
// float/double traits are in exec/storage.hpp.

template <>
struct storage_traits<__half> {
  using compute_type = float;
  STABLEQAT_HD static float to_compute(__half value) noexcept { return __half2float(value); }
  STABLEQAT_HD static __half to_storage(float value) noexcept { return __float2half_rn(value); }
};

template <>
struct storage_traits<__nv_bfloat16> {
  using compute_type = float;
  STABLEQAT_HD static float to_compute(__nv_bfloat16 value) noexcept { return __bfloat162float(value); }
  STABLEQAT_HD static __nv_bfloat16 to_storage(float value) noexcept { return __float2bfloat16_rn(value); }
};

/// A 16-bit float storage type (__half, __nv_bfloat16): computed in float,
/// with float steps, offsets and step gradients.
template <class E>
concept half_precision_storage = storage_for<E, float> && !std::same_as<E, float>;

/// A writable contiguous range of 16-bit floats (an element_output):
/// std::span<__half>, std::vector<__nv_bfloat16>&, ...
template <class R>
concept half_precision_output = element_output<R> && half_precision_storage<std::ranges::range_value_t<R>>;

/// Elements per 16-byte vector access: 4 float, 2 double, 8 half / bfloat16.
/// The kernels hand each lane chunks of this many consecutive elements.
template <class E>
inline constexpr std::size_t chunk_elements = 16 / sizeof(E);

}  // namespace stableqat::exec
