// exec::cuda with float tensors. Two doctest suites in one file, so the
// kernels are compiled once for both:
//   "frontend": argument validation on the host before any CUDA call, with the
//               CPU front-end's exact messages, and CUDA failures as
//               stableqat::cuda_error. Runs without a GPU.
//   "device":   every layout, grid kind, offsets on and off, special value and
//               buffer arrangement against exec::seq, and the checks that need
//               device memory. Skipped (exit code 77) without a GPU.
// <stableqat/cuda.cuh> comes first: it must compile on its own.
#include <stableqat/cuda.cuh>

#include <doctest/doctest.h>

#include <cuda_runtime_api.h>

#include <cmath>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "../golden/golden_cases.hpp"
#include "device_checks.cuh"

namespace sq = stableqat;
namespace golden = stableqat::test::golden;
using namespace stableqat::test;

// The public names, as the documentation spells them.
static_assert(std::is_same_v<decltype(sq::exec::cuda), const sq::exec::cuda_policy>);
static_assert(std::is_same_v<decltype(sq::exec::cuda_on(cudaStream_t{})), sq::exec::cuda_policy>);
static_assert(std::is_base_of_v<std::runtime_error, sq::cuda_error>);
static_assert(sq::exec::storage_for<__half, float> && sq::exec::storage_for<__nv_bfloat16, float> &&
              sq::exec::storage_for<float, float> && sq::exec::storage_for<double, double>);

namespace {

/// The same bad call through exec::seq and exec::cuda must fail identically.
void check_same_message(std::function<void(sq::exec::sequenced_policy)> const& on_seq,
                        std::function<void(sq::exec::cuda_policy)> const& on_cuda) {
  const std::string expected = message_of([&] { on_seq(sq::exec::seq); });
  REQUIRE(expected.rfind("stableqat::fake_quantize", 0) == 0);  // an invalid_argument from the front-end
  CHECK(message_of([&] { on_cuda(sq::exec::cuda); }) == expected);
}

bool have_device() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

using quantizer_f = sq::quantizer<float, sq::fourier_surrogate<1>>;

}  // namespace

// ---------------------------------------------------------------- frontend
// Buffers in this suite are host vectors: every call fails before a kernel
// could touch them (a shape error, or the memory-kind / device check).
TEST_SUITE_BEGIN("frontend");

TEST_CASE("exec::cuda rejects bad forward shapes with the CPU front-end's messages") {
  const quantizer_f per_tensor{sq::signed_grid(4)};
  const quantizer_f per_channel{sq::signed_grid(4), {}, sq::per_channel(4)};
  std::vector<float> x(12, 1.0f), y(12), short_y(11), steps(3, 0.5f), one_step(1, 0.5f), offsets(2, 0.0f);
  std::vector<float> buffer(24, 1.0f);

  // y.size() differs from x.size()
  check_same_message([&](auto p) { sq::fake_quantize(p, per_tensor, x, one_step, short_y); },
                     [&](auto p) { sq::fake_quantize(p, per_tensor, x, one_step, short_y); });
  // wrong step count for the layout, and x not a multiple of the row length
  check_same_message([&](auto p) { sq::fake_quantize(p, per_channel, x, one_step, y); },
                     [&](auto p) { sq::fake_quantize(p, per_channel, x, one_step, y); });
  check_same_message([&](auto p) { sq::fake_quantize(p, per_channel, std::span<const float>(x).first(10), steps, std::span<float>(y).first(10)); },
                     [&](auto p) { sq::fake_quantize(p, per_channel, std::span<const float>(x).first(10), steps, std::span<float>(y).first(10)); });
  // offsets.size() differs from steps.size()
  check_same_message([&](auto p) { sq::fake_quantize(p, per_channel, x, steps, y, offsets); },
                     [&](auto p) { sq::fake_quantize(p, per_channel, x, steps, y, offsets); });
  // y partially overlaps x; y overlaps steps
  const std::span<float> all(buffer);
  check_same_message([&](auto p) { sq::fake_quantize(p, per_tensor, all.first(12), one_step, all.subspan(6, 12)); },
                     [&](auto p) { sq::fake_quantize(p, per_tensor, all.first(12), one_step, all.subspan(6, 12)); });
  check_same_message([&](auto p) { sq::fake_quantize(p, per_tensor, x, all.subspan(12, 1), all.subspan(12, 12)); },
                     [&](auto p) { sq::fake_quantize(p, per_tensor, x, all.subspan(12, 1), all.subspan(12, 12)); });
}

TEST_CASE("exec::cuda rejects bad backward shapes with the CPU front-end's messages") {
  const quantizer_f per_tensor{sq::signed_grid(4)};
  const quantizer_f per_column{sq::signed_grid(4), {}, sq::per_column(3)};
  std::vector<float> x(12, 1.0f), dy(12, 1.0f), dx(12), short_v(11), steps(3, 0.5f), one_step(1, 0.5f);
  std::vector<float> dsteps(3), one_dstep(1), offsets(3), doffsets(2);
  std::vector<float> buffer(30, 1.0f);
  const std::span<float> all(buffer);

  check_same_message([&](auto p) { sq::fake_quantize_backward(p, per_tensor, x, one_step, short_v, dx, one_dstep); },
                     [&](auto p) { sq::fake_quantize_backward(p, per_tensor, x, one_step, short_v, dx, one_dstep); });
  check_same_message([&](auto p) { sq::fake_quantize_backward(p, per_tensor, x, one_step, dy, short_v, one_dstep); },
                     [&](auto p) { sq::fake_quantize_backward(p, per_tensor, x, one_step, dy, short_v, one_dstep); });
  check_same_message([&](auto p) { sq::fake_quantize_backward(p, per_column, x, steps, dy, dx, one_dstep); },
                     [&](auto p) { sq::fake_quantize_backward(p, per_column, x, steps, dy, dx, one_dstep); });
  check_same_message(
      [&](auto p) { sq::fake_quantize_backward(p, per_column, x, steps, dy, dx, dsteps, offsets, doffsets); },
      [&](auto p) { sq::fake_quantize_backward(p, per_column, x, steps, dy, dx, dsteps, offsets, doffsets); });
  check_same_message(
      [&](auto p) { sq::fake_quantize_backward(p, per_tensor, x, one_step, dy, dx, one_dstep, std::nan("")); },
      [&](auto p) { sq::fake_quantize_backward(p, per_tensor, x, one_step, dy, dx, one_dstep, std::nan("")); });
  // dx partially overlaps dy; dsteps inside x
  check_same_message(
      [&](auto p) { sq::fake_quantize_backward(p, per_tensor, x, one_step, all.first(12), all.subspan(1, 12), one_dstep); },
      [&](auto p) { sq::fake_quantize_backward(p, per_tensor, x, one_step, all.first(12), all.subspan(1, 12), one_dstep); });
  check_same_message(
      [&](auto p) { sq::fake_quantize_backward(p, per_tensor, all.first(12), one_step, dy, dx, all.subspan(3, 1)); },
      [&](auto p) { sq::fake_quantize_backward(p, per_tensor, all.first(12), one_step, dy, dx, all.subspan(3, 1)); });
}

TEST_CASE("exec::cuda reads no step value on the host and reports CUDA failures as cuda_error") {
  // A negative step in host memory: the CPU front-end would name steps[0];
  // exec::cuda must not read it on the host. Without a GPU its first CUDA call
  // fails; with one, it refuses host memory. Either way it proves the
  // front-end used exec::cuda's hooks (memory kind, device copy of the steps)
  // instead of reading the steps on the host.
  const quantizer_f q{sq::signed_grid(4)};
  std::vector<float> x(8, 1.0f), y(8), steps(1, -1.0f);
  if (!have_device()) {
    int count = 0;
    const cudaError_t status = cudaGetDeviceCount(&count);
    MESSAGE("no CUDA device (" << std::string(cudaGetErrorString(status)) << "): checking the cuda_error path");
    try {
      sq::fake_quantize(sq::exec::cuda, q, x, steps, y);
      FAIL("expected stableqat::cuda_error");
    } catch (sq::cuda_error const& e) {
      const std::string what = e.what();
      CHECK(what.rfind("stableqat::fake_quantize: cudaGetDevice failed: ", 0) == 0);
      CHECK(what.find(cudaGetErrorString(e.code())) != std::string::npos);
      CHECK(what.find(cudaGetErrorName(e.code())) != std::string::npos);
    }
    std::vector<float> dx(8), dsteps(1);
    CHECK_THROWS_AS(sq::fake_quantize_backward(sq::exec::cuda, q, x, steps, x, dx, dsteps), sq::cuda_error);
  } else {
    int device = 0;
    int pageable = 0;
    REQUIRE(cudaGetDevice(&device) == cudaSuccess);
    REQUIRE(cudaDeviceGetAttribute(&pageable, cudaDevAttrPageableMemoryAccess, device) == cudaSuccess);
    if (pageable != 0) {
      MESSAGE("this GPU reads pageable host memory: host buffers are legal, checking the step value instead");
      CHECK(message_of([&] { sq::fake_quantize(sq::exec::cuda, q, x, steps, y); }) ==
            "stableqat::fake_quantize: steps[0] = -1 must be positive and finite");
    } else {
      const std::string what = message_of([&] { sq::fake_quantize(sq::exec::cuda, q, x, steps, y); });
      CHECK(what.rfind("stableqat::fake_quantize: x.data() = ", 0) == 0);
      CHECK(what.find("is host memory") != std::string::npos);
    }
  }
}

TEST_SUITE_END();

// ------------------------------------------------------------------ device
TEST_SUITE_BEGIN("device");

TEST_CASE("exec::cuda float, fourier_surrogate<1>: matches exec::seq") {
  check_matrix_on_device<float>(sq::fourier_surrogate<1>{}, true);
}

TEST_CASE("exec::cuda float, STE: matches exec::seq (dx exact)") {
  check_matrix_on_device<float>(sq::ste{}, false);
}

TEST_CASE("exec::cuda float, fourier_surrogate<2> (double-precision path): matches exec::seq") {
  check_matrix_on_device<float>(sq::fourier_surrogate<2>{0.23}, false);
}

TEST_CASE("exec::cuda checks step and offset values in device memory like exec::seq, writing nothing") {
  const sq::quantizer<float, sq::fourier_surrogate<1>> q{sq::signed_grid(4), {}, sq::per_channel(4)};
  const std::vector<float> x(12, 0.3f);
  for (float bad : {-1.0f, 0.0f, std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN(),
                    std::numeric_limits<float>::denorm_min()}) {
    CAPTURE(bad);
    const std::vector<float> steps = {0.5f, bad, 0.25f};
    std::vector<float> y_host(12);
    const std::string expected = message_of([&] { sq::fake_quantize(sq::exec::seq, q, x, steps, y_host); });
    device_array<float> xd(x), sd(steps), yd(std::vector<float>(12, 42.0f));
    CHECK(message_of([&] { sq::fake_quantize(sq::exec::cuda, q, xd.span(), sd.span(), yd.span()); }) == expected);
    CHECK(yd.download() == std::vector<float>(12, 42.0f));
    std::vector<float> dsteps_host(3);
    device_array<float> dxd(std::vector<float>(12, 42.0f)), dsd(std::vector<float>(3, 42.0f));
    const std::string expected_backward =
        message_of([&] { sq::fake_quantize_backward(sq::exec::seq, q, x, steps, x, y_host, dsteps_host); });
    CHECK(message_of([&] {
            sq::fake_quantize_backward(sq::exec::cuda, q, xd.span(), sd.span(), xd.span(), dxd.span(), dsd.span());
          }) == expected_backward);
    CHECK(dxd.download() == std::vector<float>(12, 42.0f));
    CHECK(dsd.download() == std::vector<float>(3, 42.0f));
  }
  // A non-finite offset.
  const std::vector<float> steps = {0.5f, 0.5f, 0.5f};
  const std::vector<float> offsets = {0.0f, std::numeric_limits<float>::infinity(), 0.0f};
  std::vector<float> y_host(12);
  const std::string expected = message_of([&] { sq::fake_quantize(sq::exec::seq, q, x, steps, y_host, offsets); });
  CHECK(expected.find("offsets[1]") != std::string::npos);
  device_array<float> xd(x), sd(steps), od(offsets), yd(12);
  CHECK(message_of([&] { sq::fake_quantize(sq::exec::cuda, q, xd.span(), sd.span(), yd.span(), od.span()); }) ==
        expected);
}

TEST_CASE("exec::cuda backward of an empty tensor sets the step gradients to zero") {
  const sq::quantizer<float, sq::ste> q{sq::signed_grid(4), {}, sq::per_column(3)};
  device_array<float> x(0), steps(std::vector<float>{0.5f, 0.5f, 0.5f}), dsteps(std::vector<float>(3, 7.0f));
  sq::fake_quantize_backward(sq::exec::cuda, q, x.span(0, 0), steps.span(), x.span(0, 0), x.span(0, 0),
                             dsteps.span());
  CHECK(dsteps.download() == std::vector<float>(3, 0.0f));
}

TEST_CASE("exec::cuda golden vectors (hand-derived expectations, tests/golden/)") {
  // Each case is uploaded, run by the front-end with grad_scale 1, and read back.
  golden::check_all_cases(STABLEQAT_GOLDEN_FILE, "cuda", [](auto const& q, auto const& in) {
    using T = typename std::remove_cvref_t<decltype(in.x)>::value_type;
    const std::size_t numel = in.x.size();
    device_array<T> x(in.x), steps(in.steps), offsets(in.offsets), dy(in.dy), y(numel), dx(numel),
        dsteps(in.steps.size()), doffsets(in.offsets.size());
    if (in.has_offsets) {
      sq::fake_quantize(sq::exec::cuda, q, x.span(), steps.span(), y.span(), offsets.span());
      sq::fake_quantize_backward(sq::exec::cuda, q, x.span(), steps.span(), dy.span(), dx.span(), dsteps.span(),
                                 offsets.span(), doffsets.span(), 1.0);
    } else {
      sq::fake_quantize(sq::exec::cuda, q, x.span(), steps.span(), y.span());
      sq::fake_quantize_backward(sq::exec::cuda, q, x.span(), steps.span(), dy.span(), dx.span(), dsteps.span(), 1.0);
    }
    return golden::golden_outputs<T>{y.download(), dx.download(), dsteps.download(), doffsets.download(), {}};
  });
}

TEST_CASE("exec::cuda takes an explicit grad_scale") {
  const sq::quantizer<float, sq::ste> q{sq::signed_grid(2), {}, sq::per_tensor()};
  // x = 0.3, step 0.5: v = 0.6 -> n = 1, inside; step term n - v = 0.4 per element, dy = 1.
  device_array<float> x(std::vector<float>(1000, 0.3f)), dy(std::vector<float>(1000, 1.0f)), dx(1000),
      steps(std::vector<float>{0.5f}), dsteps(1);
  sq::fake_quantize_backward(sq::exec::cuda, q, x.span(), steps.span(), dy.span(), dx.span(), dsteps.span(), 0.5);
  const double term = 1.0 - static_cast<double>(0.3f * 2.0f);
  CHECK(dsteps.download()[0] == doctest::Approx(0.5 * 1000 * term).epsilon(1e-6));
  CHECK(dx.download() == std::vector<float>(1000, 1.0f));
}

TEST_SUITE_END();
