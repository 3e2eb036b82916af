// stableqat/stableqat.hpp: everything for host code (CUDA: stableqat/cuda.cuh).
#pragma once

#include "core/config.hpp"
#include "core/errors.hpp"
#include "core/grid.hpp"
#include "core/layout.hpp"
#include "core/lsq.hpp"
#include "core/math.hpp"
#include "core/rounding.hpp"
#include "core/stretched_grid.hpp"
#include "core/step_init.hpp"
#include "exec/policy.hpp"
#include "exec/seq.hpp"
#include "export.hpp"
#include "ops.hpp"
#include "quantizer.hpp"
#include "surrogates/concepts.hpp"
#include "surrogates/dsq.hpp"
#include "surrogates/ewgs.hpp"
#include "surrogates/fourier.hpp"
#include "surrogates/fourier_round.hpp"

// exec::simd and exec::par need xsimd (host code only; nvcc never sees it).
#if __has_include(<xsimd/xsimd.hpp>) && !defined(__CUDACC__)
#include "exec/par.hpp"
#include "exec/simd.hpp"
#endif
