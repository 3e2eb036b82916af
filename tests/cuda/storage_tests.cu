// exec::cuda with double and 16-bit storage (__half, __nv_bfloat16 computed in
// float). Suites as in float_tests.cu: "frontend" runs without a GPU,
// "device" compares with exec::seq on a GPU.
#include <stableqat/cuda.cuh>

#include <doctest/doctest.h>

#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "device_checks.cuh"

namespace sq = stableqat;
using namespace stableqat::test;

namespace {

using quantizer_f = sq::quantizer<float, sq::fourier_surrogate<1>>;

/// The one front-end (ops.hpp) takes tensors stored as E on policy P.
template <class P, class E>
concept takes_storage = requires(P policy, quantizer_f q, std::span<const E> x, std::span<const float> steps,
                                 std::span<E> y, std::span<float> dsteps) {
  sq::fake_quantize(policy, q, x, steps, y);
  sq::fake_quantize_backward(policy, q, x, steps, x, y, dsteps);
};

// 16-bit storage only where backend<P>::stores admits it (exec::cuda), never
// on the host backends, whose loops are written for E == T.
static_assert(takes_storage<sq::exec::cuda_policy, __half> && takes_storage<sq::exec::cuda_policy, __nv_bfloat16>);
static_assert(takes_storage<sq::exec::cuda_policy, float> && takes_storage<sq::exec::sequenced_policy, float>);
static_assert(!takes_storage<sq::exec::sequenced_policy, __half> &&
              !takes_storage<sq::exec::sequenced_policy, __nv_bfloat16>);
static_assert(!takes_storage<sq::exec::cuda_policy, double>);  // a float quantizer takes float (or 16-bit) tensors

}  // namespace

TEST_SUITE_BEGIN("frontend");

TEST_CASE("exec::cuda with 16-bit storage reports shape errors like float tensors") {
  const quantizer_f q{sq::signed_grid(4), {}, sq::per_channel(4)};
  std::vector<float> xf(12), yf(11), steps(3, 0.5f), dsteps(3);
  std::vector<__half> xh(12), yh(11);
  std::vector<__nv_bfloat16> xb(12), yb(11);
  const std::string expected = message_of([&] { sq::fake_quantize(sq::exec::seq, q, xf, steps, yf); });
  CHECK(expected == "stableqat::fake_quantize: y.size() = 11 differs from x.size() = 12");
  CHECK(message_of([&] { sq::fake_quantize(sq::exec::cuda, q, xh, steps, yh); }) == expected);
  CHECK(message_of([&] { sq::fake_quantize(sq::exec::cuda, q, xb, steps, yb); }) == expected);
  const std::string backward =
      message_of([&] { sq::fake_quantize_backward(sq::exec::seq, q, xf, steps, xf, yf, dsteps); });
  CHECK(message_of([&] { sq::fake_quantize_backward(sq::exec::cuda, q, xh, steps, xh, yh, dsteps); }) == backward);
  CHECK(message_of([&] { sq::fake_quantize_backward(sq::exec::cuda, q, xb, steps, xb, yb, dsteps); }) == backward);
  // Partial overlap is judged on bytes: two __half tensors back to back in one buffer are disjoint.
  std::vector<__half> both(24);
  const std::span<__half> halves(both);
  const std::string disjoint = message_of([&] {
    sq::fake_quantize(sq::exec::cuda, q, halves.first(12), steps, halves.subspan(12, 12));
  });
  CHECK(disjoint.find("overlap") == std::string::npos);
}

TEST_SUITE_END();

TEST_SUITE_BEGIN("device");
TEST_CASE("exec::cuda double, fourier_surrogate<1>: matches exec::seq") {
  check_matrix_on_device<double>(sq::fourier_surrogate<1>{}, true);
}

TEST_CASE("exec::cuda __half storage: computed in float, rounded once, matches exec::seq") {
  check_matrix_on_device<__half>(sq::fourier_surrogate<1>{}, true);
}

TEST_CASE("exec::cuda __nv_bfloat16 storage: computed in float, rounded once, matches exec::seq") {
  check_matrix_on_device<__nv_bfloat16>(sq::fourier_surrogate<1>{}, true);
}

TEST_SUITE_END();
