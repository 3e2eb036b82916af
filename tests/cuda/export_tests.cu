// exec::cuda integer export: quantize_to_codes and dequantize kernels against
// exec::seq (suite "device", skipped without a GPU) and the front-end's checks
// through exec::cuda's hooks (suite "frontend", no GPU needed).
#include <stableqat/cuda.cuh>

#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "device_checks.cuh"

namespace sq = stableqat;
using namespace stableqat::test;

namespace {

template <class E>
auto bits_of(E v) {
  if constexpr (sizeof(E) == 2) {
    return std::bit_cast<std::uint16_t>(v);
  } else {
    return std::bit_cast<std::uint32_t>(v);
  }
}

/// codes and floats of exec::cuda equal exec::seq's on the widened tensor.
template <class E>
void check_export_on_device(sq::grid g, sq::step_layout layout, std::size_t rows, std::size_t cols) {
  using T = float;
  const std::size_t n = rows * cols;
  const sq::quantizer<T, sq::ste> q{g, sq::ste{}, layout};
  std::vector<T> steps(layout.step_count(n));
  for (std::size_t k = 0; k < steps.size(); ++k) steps[k] = 0.05f + 0.01f * static_cast<float>(k % 7);
  std::vector<E> x(n);
  std::vector<T> widened(n);
  for (std::size_t i = 0; i < n; ++i) {
    const float v = 0.37f * std::sin(0.7f * static_cast<float>(i)) * static_cast<float>(1 + i % 5);
    x[i] = sq::exec::storage_traits<E>::to_storage(i % 97 == 3 ? std::numeric_limits<float>::quiet_NaN() : v);
    widened[i] = sq::exec::storage_traits<E>::to_compute(x[i]);
  }
  std::vector<std::int8_t> reference(n);
  sq::quantize_to_codes(sq::exec::seq, q, widened, steps, std::span<std::int8_t>(reference));
  const int bits = sq::code_bits(g);
  std::vector<std::uint8_t> packed(sq::packed_bytes(rows, cols, bits));
  sq::pack_codes(bits, cols, std::span<const std::int8_t>(reference), std::span<std::uint8_t>(packed));
  std::vector<T> y_seq(n);
  sq::dequantize(sq::exec::seq, q, cols, packed, steps, y_seq);

  device_array<E> dx(x);
  device_array<T> dsteps(steps);
  device_array<std::int8_t> dcodes(n);
  device_array<std::uint8_t> dpacked(packed);
  device_array<E> dy(n);
  sq::quantize_to_codes(sq::exec::cuda, q, std::span<const E>(dx.span()), std::span<const T>(dsteps.span()),
                        dcodes.span());
  sq::dequantize(sq::exec::cuda, q, cols, std::span<const std::uint8_t>(dpacked.span()),
                 std::span<const T>(dsteps.span()), dy.span());
  const auto codes = dcodes.download();
  const auto y = dy.download();
  for (std::size_t i = 0; i < n; ++i) {
    CAPTURE(i);
    CHECK(codes[i] == reference[i]);
    CHECK(bits_of(y[i]) == bits_of(sq::exec::storage_traits<E>::to_storage(y_seq[i])));
  }
}

}  // namespace

TEST_SUITE_BEGIN("frontend");

TEST_CASE("exec::cuda export: shape errors before any CUDA call") {
  const sq::quantizer<float, sq::ste> q{sq::signed_grid(2), sq::ste{}, sq::per_tensor()};
  std::vector<float> steps{0.1f};
  std::vector<std::int8_t> codes(3);
  std::vector<float> y(4);
  std::vector<std::uint8_t> packed(1);
  CHECK(message_of([&] {
          sq::quantize_to_codes(sq::exec::cuda, q, std::span<const float>(y), steps, std::span<std::int8_t>(codes));
        }).find("codes.size()") != std::string::npos);
  CHECK(message_of([&] { sq::dequantize(sq::exec::cuda, q, 3, packed, steps, std::span<float>(y)); }).find("y.size()") !=
        std::string::npos);
}

TEST_SUITE_END();

TEST_SUITE_BEGIN("device");

TEST_CASE("exec::cuda export, float: codes and dequantize match exec::seq bit for bit") {
  for (std::size_t cols : {1u, 5u, 7u, 515u}) {
    check_export_on_device<float>(sq::signed_grid(2), sq::per_channel(cols), 9, cols);
    check_export_on_device<float>(sq::ternary_grid(), sq::per_column(cols), 4, cols);
    check_export_on_device<float>(sq::signed_grid(8), sq::per_tensor(), 3, cols);
  }
}

TEST_CASE("exec::cuda export, __half and __nv_bfloat16: computed in float, rounded once, match exec::seq") {
  check_export_on_device<__half>(sq::signed_grid(4), sq::per_channel(13), 7, 13);
  check_export_on_device<__nv_bfloat16>(sq::signed_grid(2), sq::per_column(6), 5, 6);
}

TEST_SUITE_END();
