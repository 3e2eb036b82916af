// stableqat/cuda.cuh: everything for CUDA translation units (.cu, nvcc).
//
// The public API of stableqat.hpp (grids, layouts, surrogates, quantizer,
// fake_quantize / fake_quantize_backward, exec::seq) plus exec::cuda and
// exec::cuda_on(stream). It deliberately leaves out the SIMD backends, whose
// xsimd headers are host-only: include <stableqat/stableqat.hpp> in a .cpp file
// for exec::simd / exec::par. Needs nvcc -std=c++20 --expt-relaxed-constexpr
// (both come with the CMake target stableqat::stableqat).
#pragma once

#include "core/config.hpp"
#include "core/errors.hpp"
#include "core/grid.hpp"
#include "core/layout.hpp"
#include "core/lsq.hpp"
#include "core/math.hpp"
#include "core/rounding.hpp"
#include "core/step_init.hpp"
#include "exec/cuda.cuh"
#include "exec/policy.hpp"
#include "exec/seq.hpp"
#include "ops.hpp"
#include "quantizer.hpp"
#include "surrogates/concepts.hpp"
#include "surrogates/dsq.hpp"
#include "surrogates/ewgs.hpp"
#include "surrogates/fourier.hpp"
#include "surrogates/fourier_round.hpp"
