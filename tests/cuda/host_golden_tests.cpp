// Golden vectors (tests/golden/fake_quantize.golden, estimators.golden) through the CUDA
// backend's launch, emulated lane by lane on the host (emulated_launch.hpp):
// the hand-derived expectations, not exec::seq, are the reference here. The
// same cases run on a GPU through exec::cuda in cuda_device_tests.
#include <doctest/doctest.h>

#include <stableqat/stableqat.hpp>

#include "../golden/golden_cases.hpp"
#include "emulated_launch.hpp"

#include <type_traits>
#include <vector>

#ifndef STABLEQAT_GOLDEN_FILE
#error "STABLEQAT_GOLDEN_FILE must name tests/golden/fake_quantize.golden"
#endif

namespace golden = stableqat::test::golden;
using namespace stableqat::test;

namespace {

/// The golden runner of the emulated launch (float/double storage, grad_scale 1).
/// The front-end's job (validation, an empty tensor) is not the launch's: every case has elements.
auto emulated(bool aligned) {
  return [aligned](auto const& q, auto const& in) {
    using T = typename std::remove_cvref_t<decltype(in.x)>::value_type;
    const std::size_t numel = in.x.size();
    REQUIRE(numel > 0);
    using S = typename std::remove_cvref_t<decltype(q)>::surrogate_type;
    golden::golden_outputs<T> out{std::vector<T>(numel), std::vector<T>(numel), std::vector<T>(in.steps.size()),
                                  std::vector<T>(in.offsets.size()),
                                  std::vector<T>(stableqat::surrogate_parameter_count<S>)};
    const T* offsets = in.has_offsets ? in.offsets.data() : nullptr;
    emulate_launch<false>(q, numel, cd::element_buffers<T, T>{in.x.data(), nullptr, out.y.data(), in.steps.data(), offsets},
                          cd::gradient_buffers<T>{}, in.has_offsets, aligned);
    cd::gradient_buffers<T> g;
    g.dsteps = out.dsteps.data();
    g.doffsets = in.has_offsets ? out.doffsets.data() : nullptr;
    g.grad_scale = 1.0;
    g.dparameter = out.dparameters.empty() ? nullptr : out.dparameters.data();
    emulate_launch<true>(q, numel,
                         cd::element_buffers<T, T>{in.x.data(), in.dy.data(), out.dx.data(), in.steps.data(), offsets},
                         g, in.has_offsets, aligned);
    return out;
  };
}

}  // namespace

TEST_CASE("golden vectors: the CUDA launch emulated on the host, vector and scalar access") {
  golden::check_all_cases(STABLEQAT_GOLDEN_FILE, "emulated cuda (aligned)", emulated(true));
  golden::check_all_cases(STABLEQAT_GOLDEN_FILE, "emulated cuda (unaligned)", emulated(false));
}

TEST_CASE("golden vectors of DSQ, EWGS and the stretched elastic grid: the CUDA launch emulated on the host") {
  golden::check_estimator_cases(STABLEQAT_GOLDEN_FILE, "emulated cuda (aligned)", emulated(true));
  golden::check_estimator_cases(STABLEQAT_GOLDEN_FILE, "emulated cuda (unaligned)", emulated(false));
}
