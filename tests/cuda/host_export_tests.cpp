// Host tests (g++) of exec::cuda's integer export: the per-element functions
// of exec/cuda/export_work.hpp (what the kernels run per thread) run over every
// index on the host, bit for bit against exec::seq's quantize_to_codes /
// dequantize, for float and the 16-bit storage types.
#include <doctest/doctest.h>

#include <stableqat/exec/cuda/export_work.hpp>
#include <stableqat/exec/cuda/storage.hpp>
#include <stableqat/stableqat.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace sq = stableqat;
namespace cd = stableqat::exec::cuda_detail;

namespace {

template <class E>
auto bits_of(E v) {
  if constexpr (sizeof(E) == 2) {
    return std::bit_cast<std::uint16_t>(v);
  } else {
    return std::bit_cast<std::uint32_t>(v);
  }
}

/// x with the special values the forward defines (±0, ±Inf, NaN) and values
/// on and around the grid's rounding boundaries.
std::vector<float> inputs(std::size_t n, float step) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-6.0f, 6.0f);
  std::vector<float> x(n);
  for (std::size_t i = 0; i < n; ++i) x[i] = u(rng) * step;
  const float specials[] = {0.0f, -0.0f, std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                            std::numeric_limits<float>::quiet_NaN(), 0.5f * step, -1.5f * step};
  for (std::size_t i = 0; i < std::size(specials) && i < n; ++i) x[3 * i % n] = specials[i];
  return x;
}

template <class E, sq::code_type C>
void check_case(sq::grid g, sq::step_layout layout, std::size_t rows, std::size_t cols, bool with_offsets) {
  using T = float;
  const std::size_t n = rows * cols;
  const sq::quantizer<T, sq::ste> q{g, sq::ste{}, layout};
  const std::size_t steps_count = layout.step_count(n);
  std::vector<T> steps(steps_count), offsets(steps_count);
  for (std::size_t k = 0; k < steps_count; ++k) {
    steps[k] = 0.05f + 0.01f * static_cast<float>(k % 7);
    offsets[k] = with_offsets ? 0.003f * static_cast<float>(k % 5) - 0.006f : 0.0f;
  }
  std::vector<E> x(n);
  std::vector<T> widened(n);
  const std::vector<float> raw = inputs(n, 0.06f);
  for (std::size_t i = 0; i < n; ++i) {
    x[i] = sq::exec::storage_traits<E>::to_storage(raw[i]);
    widened[i] = sq::exec::storage_traits<E>::to_compute(x[i]);
  }
  // exec::seq on the widened tensor: the reference codes and floats.
  std::vector<C> reference(n), codes(n);
  std::vector<T> y_seq(n);
  const auto field = sq::code_field_of(g);
  std::vector<std::uint8_t> packed(sq::packed_bytes(rows, cols, field.bits));
  if (with_offsets) {
    sq::quantize_to_codes(sq::exec::seq, q, widened, steps, std::span<C>(reference), offsets);
  } else {
    sq::quantize_to_codes(sq::exec::seq, q, widened, steps, std::span<C>(reference));
  }
  sq::pack_codes(field.bits, cols, std::span<const C>(reference), std::span<std::uint8_t>(packed));
  if (with_offsets) {
    sq::dequantize(sq::exec::seq, q, cols, packed, steps, y_seq, offsets);
  } else {
    sq::dequantize(sq::exec::seq, q, cols, packed, steps, y_seq);
  }
  // The device's per-element functions, index by index.
  std::vector<E> y(n);
  const cd::code_buffers<E, T, C> cb{x.data(), steps.data(), with_offsets ? offsets.data() : nullptr, codes.data(), n,
                                     layout, static_cast<T>(sq::nan_code(g))};
  const cd::dequantize_buffers<E, T> db{packed.data(), cols, sq::packed_row_bytes(cols, field.bits), field.bits,
                                        field.is_signed, steps.data(), with_offsets ? offsets.data() : nullptr,
                                        y.data(), n, layout};
  sq::exec::visit_kernel<T>(g, with_offsets, [&](auto const& levels, auto offsets_constant) {
    constexpr bool o = decltype(offsets_constant)::value;
    for (std::size_t i = 0; i < n; ++i) cd::code_element<o>(cb, i, levels);
    for (std::size_t i = 0; i < n; ++i) cd::dequantize_element<o>(db, i, levels);
  });
  for (std::size_t i = 0; i < n; ++i) {
    CAPTURE(i);
    CHECK(codes[i] == reference[i]);
    CHECK(bits_of(y[i]) == bits_of(sq::exec::storage_traits<E>::to_storage(y_seq[i])));
  }
}

template <class E>
void check_storage() {
  for (std::size_t cols : {1u, 3u, 5u, 7u, 13u}) {
    for (bool offsets : {false, true}) {
      CAPTURE(cols);
      CAPTURE(offsets);
      check_case<E, std::int8_t>(sq::signed_grid(2), sq::per_channel(cols), 6, cols, offsets);
      check_case<E, std::int8_t>(sq::ternary_grid(), sq::per_tensor(), 4, cols, offsets);
      check_case<E, std::int8_t>(sq::signed_grid(1), sq::per_column(cols), 5, cols, offsets);
      check_case<E, std::uint8_t>(sq::unsigned_grid(4), sq::per_channel(cols), 3, cols, offsets);
      check_case<E, std::int8_t>(sq::signed_grid(8), sq::per_tensor(), 9, cols, offsets);
      check_case<E, std::int16_t>(sq::signed_grid(12), sq::per_column(cols), 2, cols, offsets);
    }
  }
}

}  // namespace

TEST_CASE("exec::cuda export per-element functions on the host: float matches exec::seq bit for bit") {
  check_storage<float>();
}

TEST_CASE("exec::cuda export per-element functions on the host: __half matches exec::seq, rounded once") {
  check_storage<__half>();
}

TEST_CASE("exec::cuda export per-element functions on the host: __nv_bfloat16 matches exec::seq, rounded once") {
  check_storage<__nv_bfloat16>();
}
