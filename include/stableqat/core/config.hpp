// stableqat/core/config.hpp: version, host/device annotation and build checks.
#pragma once

// The one place the version is written: CMakeLists.txt reads these three lines
// (file(STRINGS ... REGEX), as {fmt} does) and the string below is built from them.
#define STABLEQAT_VERSION_MAJOR 0
#define STABLEQAT_VERSION_MINOR 1
#define STABLEQAT_VERSION_PATCH 0

#define STABLEQAT_DETAIL_STRINGIFY(x) #x
#define STABLEQAT_DETAIL_VERSION_STRING(major, minor, patch) \
  STABLEQAT_DETAIL_STRINGIFY(major) "." STABLEQAT_DETAIL_STRINGIFY(minor) "." STABLEQAT_DETAIL_STRINGIFY(patch)
/// "major.minor.patch", e.g. "0.1.0".
#define STABLEQAT_VERSION_STRING \
  STABLEQAT_DETAIL_VERSION_STRING(STABLEQAT_VERSION_MAJOR, STABLEQAT_VERSION_MINOR, STABLEQAT_VERSION_PATCH)

/// STABLEQAT_HD marks a function usable from host and device code, like Eigen's
/// EIGEN_DEVICE_FUNC: every per-element formula carries it so the CUDA kernels
/// and the CPU backends compile the very same source.
#if defined(__CUDACC__)
#define STABLEQAT_HD __host__ __device__
#else
#define STABLEQAT_HD
#endif

/// True while compiling device code (nvcc's device pass); host code sees false.
#if defined(__CUDA_ARCH__)
#define STABLEQAT_DEVICE_CODE 1
#else
#define STABLEQAT_DEVICE_CODE 0
#endif

/// 1 when the host target has a fused multiply-add instruction. `stableqat::fma`
/// fuses exactly when the SIMD batches of the same build do (xsimd falls back
/// to `a*b+c` without FMA3), so scalar and SIMD paths agree bit for bit.
#if defined(__FMA__) || defined(__AVX512F__) || defined(__aarch64__)
#define STABLEQAT_HOST_HAS_FMA 1
#else
#define STABLEQAT_HOST_HAS_FMA 0
#endif

/// STABLEQAT_GCC_PR105593_PUSH / _POP bracket the functions that call AVX-512
/// intrinsics (the batch round_half_even, the float <-> double widening of
/// exec::simd): GCC 12 reports -Wuninitialized inside its own intrinsic headers
/// (their _mm512_undefined_* operands, e.g. behind vrndscaleps) once they are
/// inlined, at -O1 and above. A known false positive (GCC PR 105593, fixed in
/// GCC 13), silenced for the bracketed code only; the kernels that inline these
/// functions need no bracket of their own.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#define STABLEQAT_GCC_PR105593_PUSH \
  _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wuninitialized\"")
#define STABLEQAT_GCC_PR105593_POP _Pragma("GCC diagnostic pop")
#else
#define STABLEQAT_GCC_PR105593_PUSH
#define STABLEQAT_GCC_PR105593_POP
#endif

// The rounding, NaN and infinity contract rests on IEEE-754 semantics, which
// -ffast-math gives up (it lets the compiler drop the round-to-integer trick
// and assume no NaN). Refuse loudly rather than return wrong numbers quietly.
#if defined(__FAST_MATH__) && !defined(STABLEQAT_ALLOW_FAST_MATH)
#error "stableqat needs IEEE-754 semantics: compile without -ffast-math (or define STABLEQAT_ALLOW_FAST_MATH to accept wrong NaN/rounding behaviour)"
#endif

namespace stableqat {

/// Library version as {major, minor, patch}.
struct version_info {
  int major, minor, patch;
};
inline constexpr version_info version{STABLEQAT_VERSION_MAJOR, STABLEQAT_VERSION_MINOR,
                                      STABLEQAT_VERSION_PATCH};

}  // namespace stableqat
