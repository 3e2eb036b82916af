// stableqat/cuda.cuh: everything for CUDA translation units (.cu, nvcc).
//
// The public API of stableqat.hpp (grids, layouts, surrogates, quantizer,
// fake_quantize / fake_quantize_backward, exec::seq) plus exec::cuda and
// exec::cuda_on(stream). stableqat.hpp leaves out the SIMD backends under nvcc
// (their xsimd headers are host-only): include <stableqat/stableqat.hpp> in a
// .cpp file for exec::simd / exec::par. Needs nvcc -std=c++20
// --expt-relaxed-constexpr (both come with the CMake target stableqat::stableqat).
#pragma once

#include "exec/cuda.cuh"
#include "stableqat.hpp"
