// exec::cuda with the paper's baselines (DSQ with its learnable alpha, EWGS,
// ParetoQ's stretched elastic grid) against exec::seq, on a GPU ("device"
// suite: skipped without one), plus the front-end's checks of DSQ's
// `dparameters` on the cuda policy ("frontend", runs without a GPU).
// Deliberately small (few instantiations): the same element code is tested
// lane by lane on the host in host_estimator_tests.cpp.
#include <stableqat/cuda.cuh>

#include <doctest/doctest.h>

#include <cuda_runtime_api.h>

#include <string>
#include <type_traits>
#include <vector>

#include "../golden/golden_cases.hpp"
#include "device_checks.cuh"

namespace sq = stableqat;
namespace golden = stableqat::test::golden;
using namespace stableqat::test;

// The CUDA backend runs every surrogate hook, one learnable parameter included.
static_assert(sq::exec::backend<sq::exec::cuda_policy>::supports_estimator_surrogates);

namespace {

/// Runs check_on_device for each (grid, layout case), offsets on and off.
template <class E, class S>
void check_grids_on_device(S const& surrogate, std::initializer_list<sq::grid> grids) {
  cudaStream_t stream = nullptr;
  sq::exec::cuda_detail::check_cuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "test", "cudaStreamCreate");
  std::vector<layout_case> cases = layout_cases();
  cases.push_back({sq::per_tensor(), (std::size_t{1} << 20) + 3});  // partial sums, second pass
  cases.push_back({sq::per_column(1000), 1000 * 700});              // many row blocks
  unsigned seed = 500;
  for (auto const& g : grids) {
    for (auto const& c : cases) {
      const sq::quantizer<compute_t<E>, S> q{g, surrogate, c.layout};
      for (bool has_offsets : {false, true}) {
        ++seed;
        check_on_device<E>(q, c.numel, has_offsets, seed % 3 == 0, seed, stream);
      }
    }
  }
  sq::exec::cuda_detail::check_cuda(cudaStreamDestroy(stream), "test", "cudaStreamDestroy");
}

}  // namespace

TEST_SUITE_BEGIN("frontend");

TEST_CASE("exec::cuda DSQ: dparameters checked like exec::seq (size, grid) before any CUDA call") {
  const sq::quantizer<float, sq::dsq_surrogate> q{sq::signed_grid(2), sq::dsq_surrogate{0.2}, sq::per_tensor()};
  const std::vector<float> x(4, 0.3f), steps{0.5f};
  std::vector<float> dx(4), dsteps(1), wrong(2);
  const auto bad_size = [&](auto policy) { sq::fake_quantize_backward(policy, q, x, steps, x, dx, dsteps, wrong); };
  const std::string expected = message_of([&] { bad_size(sq::exec::seq); });
  CHECK(expected.find("dparameters.size()") != std::string::npos);
  CHECK(message_of([&] { bad_size(sq::exec::cuda); }) == expected);
  const sq::quantizer<float, sq::dsq_surrogate> binary{sq::signed_grid(1), sq::dsq_surrogate{0.2}, sq::per_tensor()};
  std::vector<float> dparameters(1);
  const auto bad_grid = [&](auto policy) {
    sq::fake_quantize_backward(policy, binary, x, steps, x, dx, dsteps, dparameters);
  };
  const std::string grid_message = message_of([&] { bad_grid(sq::exec::seq); });
  CHECK(grid_message.find("grid.is_binary()") != std::string::npos);
  CHECK(message_of([&] { bad_grid(sq::exec::cuda); }) == grid_message);
}

TEST_SUITE_END();

TEST_SUITE_BEGIN("device");

TEST_CASE("exec::cuda DSQ float: forward, dx, dsteps and d alpha match exec::seq; bit-reproducible") {
  check_grids_on_device<float>(sq::dsq_surrogate{0.2}, {sq::signed_grid(4), sq::ternary_grid()});
}

TEST_CASE("exec::cuda DSQ __half (computed in float) and double") {
  check_grids_on_device<__half>(sq::dsq_surrogate{0.05}, {sq::signed_grid(3)});
  check_grids_on_device<double>(sq::dsq_surrogate{0.5}, {sq::unsigned_grid(2)});
}

TEST_CASE("exec::cuda EWGS and the stretched elastic grid match exec::seq") {
  check_grids_on_device<float>(sq::ewgs_surrogate{0.5}, {sq::signed_grid(4), sq::stretched_elastic_grid(2)});
  check_grids_on_device<__nv_bfloat16>(sq::ste{}, {sq::stretched_elastic_ternary_grid()});
}

TEST_CASE("exec::cuda golden vectors of DSQ, EWGS and the stretched elastic grid (tests/golden/estimators.golden)") {
  golden::check_estimator_cases(STABLEQAT_GOLDEN_FILE, "cuda", [](auto const& q, auto const& in) {
    using T = typename std::remove_cvref_t<decltype(in.x)>::value_type;
    using S = typename std::remove_cvref_t<decltype(q)>::surrogate_type;
    const std::size_t numel = in.x.size();
    device_array<T> x(in.x), steps(in.steps), offsets(in.offsets), dy(in.dy), y(numel), dx(numel),
        dsteps(in.steps.size()), doffsets(in.offsets.size()), dparameters(sq::surrogate_parameter_count<S>);
    const auto offsets_view = in.has_offsets ? offsets.span() : std::span<T>();
    if (in.has_offsets) {
      sq::fake_quantize(sq::exec::cuda, q, x.span(), steps.span(), y.span(), offsets.span());
    } else {
      sq::fake_quantize(sq::exec::cuda, q, x.span(), steps.span(), y.span());
    }
    if constexpr (sq::learnable_surrogate<S>) {
      if (in.has_offsets) {
        sq::fake_quantize_backward(sq::exec::cuda, q, x.span(), steps.span(), dy.span(), dx.span(), dsteps.span(),
                                   offsets_view, doffsets.span(), dparameters.span(), 1.0);
      } else {
        sq::fake_quantize_backward(sq::exec::cuda, q, x.span(), steps.span(), dy.span(), dx.span(), dsteps.span(),
                                   dparameters.span(), 1.0);
      }
    } else if (in.has_offsets) {
      sq::fake_quantize_backward(sq::exec::cuda, q, x.span(), steps.span(), dy.span(), dx.span(), dsteps.span(),
                                 offsets_view, doffsets.span(), 1.0);
    } else {
      sq::fake_quantize_backward(sq::exec::cuda, q, x.span(), steps.span(), dy.span(), dx.span(), dsteps.span(), 1.0);
    }
    return golden::golden_outputs<T>{y.download(), dx.download(), dsteps.download(), doffsets.download(),
                                     dparameters.download()};
  });
}

TEST_CASE("exec::cuda DSQ: an empty tensor zeroes d alpha") {
  const sq::quantizer<float, sq::dsq_surrogate> q{sq::signed_grid(4), sq::dsq_surrogate{0.2}, sq::per_column(3)};
  device_array<float> x(0), steps(std::vector<float>{0.5f, 0.5f, 0.5f}), dsteps(std::vector<float>(3, 7.0f)),
      dparameters(std::vector<float>{7.0f});
  sq::fake_quantize_backward(sq::exec::cuda, q, x.span(0, 0), steps.span(), x.span(0, 0), x.span(0, 0), dsteps.span(),
                             dparameters.span());
  CHECK(dsteps.download() == std::vector<float>(3, 0.0f));
  CHECK(dparameters.download() == std::vector<float>{0.0f});
}

TEST_SUITE_END();
