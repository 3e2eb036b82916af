// Golden vectors (tests/golden/fake_quantize.golden, and estimators.golden for
// DSQ, EWGS and the stretched elastic grid) on every CPU backend.
//
// Each case runs on seq, and on simd and par (1, 2 and 4 threads) when those
// backends are compiled in; the parsing and the checks are in
// golden/golden_cases.hpp, shared with the CUDA runners.
#include <doctest/doctest.h>

#include <string>
#include <type_traits>
#include <vector>

#include <stableqat/stableqat.hpp>
#if __has_include(<stableqat/exec/simd.hpp>) && __has_include(<xsimd/xsimd.hpp>)
#include <stableqat/exec/par.hpp>
#include <stableqat/exec/simd.hpp>
#define GOLDEN_HAS_SIMD 1
#else
#define GOLDEN_HAS_SIMD 0
#endif

#include "golden/golden_cases.hpp"

#ifndef STABLEQAT_GOLDEN_FILE
#error "STABLEQAT_GOLDEN_FILE must name tests/golden/fake_quantize.golden"
#endif

namespace sq = stableqat;
namespace golden = stableqat::test::golden;

namespace {

/// The golden runner of a CPU policy: the span front-end, grad_scale = 1.
template <class Policy>
auto on(Policy const& policy) {
  return [policy](auto const& q, auto const& in) {
    using T = typename std::remove_cvref_t<decltype(in.x)>::value_type;
    using S = typename std::remove_cvref_t<decltype(q)>::surrogate_type;
    golden::golden_outputs<T> out{std::vector<T>(in.x.size()), std::vector<T>(in.x.size()),
                                  std::vector<T>(in.steps.size()), std::vector<T>(in.offsets.size()),
                                  std::vector<T>(sq::surrogate_parameter_count<S>)};
    if constexpr (sq::learnable_surrogate<S>) {
      if (in.has_offsets) {
        sq::fake_quantize(policy, q, in.x, in.steps, out.y, in.offsets);
        sq::fake_quantize_backward(policy, q, in.x, in.steps, in.dy, out.dx, out.dsteps, in.offsets, out.doffsets,
                                   out.dparameters, 1.0);
      } else {
        sq::fake_quantize(policy, q, in.x, in.steps, out.y);
        sq::fake_quantize_backward(policy, q, in.x, in.steps, in.dy, out.dx, out.dsteps, out.dparameters, 1.0);
      }
    } else if (in.has_offsets) {
      sq::fake_quantize(policy, q, in.x, in.steps, out.y, in.offsets);
      sq::fake_quantize_backward(policy, q, in.x, in.steps, in.dy, out.dx, out.dsteps, in.offsets, out.doffsets, 1.0);
    } else {
      sq::fake_quantize(policy, q, in.x, in.steps, out.y);
      sq::fake_quantize_backward(policy, q, in.x, in.steps, in.dy, out.dx, out.dsteps, 1.0);
    }
    return out;
  };
}

}  // namespace

TEST_CASE("golden vectors: exec::seq") {
  golden::check_all_cases(STABLEQAT_GOLDEN_FILE, "seq", on(sq::exec::seq));
  golden::check_estimator_cases(STABLEQAT_GOLDEN_FILE, "seq", on(sq::exec::seq));
}

#if GOLDEN_HAS_SIMD
TEST_CASE("golden vectors: exec::simd") {
  golden::check_all_cases(STABLEQAT_GOLDEN_FILE, "simd", on(sq::exec::simd));
  golden::check_estimator_cases(STABLEQAT_GOLDEN_FILE, "simd", on(sq::exec::simd));
}
TEST_CASE("golden vectors: exec::par with 1, 2 and 4 threads") {
  // One policy type: the threads are a run-time count, so one instantiation serves all three.
  for (const int threads : {1, 2, 4}) {
    const std::string name = "par(" + std::to_string(threads) + ")";
    golden::check_all_cases(STABLEQAT_GOLDEN_FILE, name.c_str(), on(sq::exec::par.with_threads(threads)));
    golden::check_estimator_cases(STABLEQAT_GOLDEN_FILE, name.c_str(), on(sq::exec::par.with_threads(threads)));
  }
}
#endif
