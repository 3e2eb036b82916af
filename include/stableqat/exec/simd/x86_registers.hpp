// stableqat/exec/simd/x86_registers.hpp: which x86 register family an xsimd architecture uses.
//
// xsimd 8.1 lacks a few operations stableqat needs (streaming stores, a fused
// multiply-add on AVX-512, float <-> double halves in registers), so three
// headers call x86 intrinsics on xsimd batches. They all ask this one question:
// for architecture A, which registers do its batches live in, as far as this
// build may call their intrinsics?
#pragma once

#include <type_traits>

#include <xsimd/xsimd.hpp>

namespace stableqat::exec::simd_detail {

/// The register family of an x86 xsimd architecture: 128-bit xmm (SSE2 ..
/// SSE4.2), 256-bit ymm (AVX, AVX2, FMA3) or 512-bit zmm (AVX-512); `none` for
/// any other architecture, or one whose instruction set this build did not enable.
enum class x86_registers { none, xmm, ymm, zmm };

/// x86_registers of architecture A on this build (the widest family A derives from).
template <class A>
inline constexpr x86_registers x86_registers_of =
#if defined(__AVX512F__)
    std::is_base_of_v<xsimd::avx512f, A> ? x86_registers::zmm :
#endif
#if defined(__AVX__)
    std::is_base_of_v<xsimd::avx, A> ? x86_registers::ymm :
#endif
#if defined(__SSE2__) || defined(_M_X64)
    std::is_base_of_v<xsimd::sse2, A> ? x86_registers::xmm :
#endif
    x86_registers::none;

/// True when batches of A can be handed to x86 intrinsics on this build.
template <class A>
inline constexpr bool has_x86_intrinsics = x86_registers_of<A> != x86_registers::none;

}  // namespace stableqat::exec::simd_detail
