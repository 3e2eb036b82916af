// bench/hot_loops.cpp: out-of-line copies of exec::simd's per-row backward
// loop for each estimator, for the instruction-level model (`make bench-model`,
// bench/hot_loop_model.py). Compiled, never run: the object file is what the
// model reads. Each explicit instantiation is the loop per_tensor and
// per_channel run (float, no offsets, plain stores), the same template the
// benchmarks inline.
#include <stableqat/exec/simd.hpp>
#include <stableqat/stableqat.hpp>

namespace stableqat::exec::simd_detail {

#define STABLEQAT_HOT_LOOP(LEVELS, SURROGATE)                                                                  \
  template term_sums backward_row_piece<false, false, float, float, no_offset, LEVELS, SURROGATE>(           \
      float const*, float const*, float*, std::size_t, std::size_t, float, no_offset, LEVELS const&,        \
      SURROGATE const&) noexcept;

STABLEQAT_HOT_LOOP(uniform_levels<float>, ste)
STABLEQAT_HOT_LOOP(uniform_levels<float>, fourier_surrogate<1>)
STABLEQAT_HOT_LOOP(uniform_levels<float>, fourier_surrogate<3>)
STABLEQAT_HOT_LOOP(uniform_levels<float>, dsq_surrogate)
STABLEQAT_HOT_LOOP(uniform_levels<float>, ewgs_surrogate)
STABLEQAT_HOT_LOOP(stretched_elastic_levels<float>, ste)

#undef STABLEQAT_HOT_LOOP

}  // namespace stableqat::exec::simd_detail
