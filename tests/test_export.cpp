// Integer export (issue 13): codes, packed 2/4/8/16-bit fields, dequantize.
//
// References are independent of the library: packed bytes written by hand and
// a bit stream built with plain shifts on a uint64; codes from std::nearbyint
// on the grid; the round trip compared bit for bit against fake_quantize on
// every backend, grid kind, field width, layout, odd row length and special value.
#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include <stableqat/stableqat.hpp>

#include "reference.hpp"

namespace sq = stableqat;
using reference::check_invalid_argument;

namespace {

// ---------------------------------------------------------------------------
// Independent bit-order reference: the row as one little-endian bit stream.
// ---------------------------------------------------------------------------

/// Bytes of one row of codes (cols * bits <= 64): code j at bits [j*bits, (j+1)*bits).
template <class C>
std::vector<std::uint8_t> reference_pack_row(std::vector<C> const& codes, int bits) {
  std::uint64_t stream = 0;
  const std::uint64_t mask = (std::uint64_t{1} << bits) - 1;
  for (std::size_t j = 0; j < codes.size(); ++j) {
    stream |= (static_cast<std::uint64_t>(static_cast<std::int64_t>(codes[j])) & mask) << (j * static_cast<std::size_t>(bits));
  }
  std::vector<std::uint8_t> bytes((codes.size() * static_cast<std::size_t>(bits) + 7) / 8);
  for (std::size_t b = 0; b < bytes.size(); ++b) {
    bytes[b] = static_cast<std::uint8_t>(stream >> (8 * b));
  }
  return bytes;
}

/// Code j of a row's bytes, sign-extended by an arithmetic shift when is_signed.
inline std::int64_t reference_unpack(std::vector<std::uint8_t> const& bytes, std::size_t j, int bits, bool is_signed) {
  std::uint64_t stream = 0;
  for (std::size_t b = 0; b < bytes.size(); ++b) {
    stream |= static_cast<std::uint64_t>(bytes[b]) << (8 * b);
  }
  const std::uint64_t field = (stream >> (j * static_cast<std::size_t>(bits))) & ((std::uint64_t{1} << bits) - 1);
  if (!is_signed) {
    return static_cast<std::int64_t>(field);
  }
  return static_cast<std::int64_t>(field << (64 - bits)) >> (64 - bits);
}

template <class C>
std::vector<std::uint8_t> pack(int bits, std::size_t cols, std::vector<C> const& codes) {
  std::vector<std::uint8_t> packed(sq::packed_bytes(codes.size() / cols, cols, bits));
  sq::pack_codes(bits, cols, std::span<const C>(codes), std::span<std::uint8_t>(packed));
  return packed;
}

// ---------------------------------------------------------------------------
// Golden bytes, computed by hand (field values in binary in the comments).
// ---------------------------------------------------------------------------

TEST_CASE("export: golden packed bytes of small hand-written matrices") {
  // signed 2-bit, 2 rows of 5: -2=10 -1=11 0=00 1=01.
  // row 0: 01|00|11|10 = 0x4E, then 01 -> 0x01;  row 1: 10|11|00|01 = 0xB1, then 00 -> 0x00.
  const std::vector<std::int8_t> s2{-2, -1, 0, 1, 1, 1, 0, -1, -2, 0};
  CHECK(pack(2, 5, s2) == std::vector<std::uint8_t>{0x4E, 0x01, 0xB1, 0x00});
  // unsigned 2-bit, one row of 7: 3 2 1 0 | 3 3 1 -> 00011011 = 0x1B, 00011111 = 0x1F.
  const std::vector<std::uint8_t> u2{3, 2, 1, 0, 3, 3, 1};
  CHECK(pack(2, 7, u2) == std::vector<std::uint8_t>{0x1B, 0x1F});
  // unsigned 4-bit, 2 rows of 3: {1, 15, 7} -> F1 07; {0, 8, 10} -> 80 0A.
  const std::vector<std::uint8_t> u4{1, 15, 7, 0, 8, 10};
  CHECK(pack(4, 3, u4) == std::vector<std::uint8_t>{0xF1, 0x07, 0x80, 0x0A});
  // signed 4-bit, 2 rows of 2: {-8, 7} -> 0x78; {-1, 3} -> 0x3F.
  const std::vector<std::int8_t> s4{-8, 7, -1, 3};
  CHECK(pack(4, 2, s4) == std::vector<std::uint8_t>{0x78, 0x3F});
  // signed 8-bit: two's complement bytes.
  const std::vector<std::int8_t> s8{-128, 127, -1};
  CHECK(pack(8, 3, s8) == std::vector<std::uint8_t>{0x80, 0x7F, 0xFF});
  // signed 16-bit, low byte first: -2 = FFFE, 300 = 012C.
  const std::vector<std::int16_t> s16{-2, 300};
  CHECK(pack(16, 2, s16) == std::vector<std::uint8_t>{0xFE, 0xFF, 0x2C, 0x01});

  // And back.
  std::vector<std::int8_t> back(s2.size());
  const std::vector<std::uint8_t> bytes{0x4E, 0x01, 0xB1, 0x00};
  sq::unpack_codes(2, 5, std::span<const std::uint8_t>(bytes), std::span<std::int8_t>(back));
  CHECK(back == s2);
  // Padding bits are ignored on the way back: 0xFD in the last byte of a row of 5 2-bit codes.
  const std::vector<std::uint8_t> padded{0x4E, 0xFD, 0xB1, 0x00};
  sq::unpack_codes(2, 5, std::span<const std::uint8_t>(padded), std::span<std::int8_t>(back));
  CHECK(back == s2);

  CHECK(sq::packed_bytes(2, 5, 2) == 4);
  CHECK(sq::packed_bytes(3, 3, 4) == 6);
  CHECK(sq::packed_bytes(1, 9, 8) == 9);
  CHECK(sq::packed_bytes(7, 1, 16) == 14);
  CHECK(sq::packed_bytes(0, 5, 2) == 0);
}

TEST_CASE("export: worked example of docs/export.md") {
  // 2-bit signed grid, per_channel steps, one row of 5 weights.
  const sq::quantizer<float> q{sq::signed_grid(2), sq::ste{}, sq::per_channel(5)};
  const std::vector<float> w{0.30f, -0.05f, -0.26f, 0.11f, 0.74f};
  const std::vector<float> steps{0.25f};
  std::vector<std::int8_t> codes(5);
  sq::quantize_to_codes(sq::exec::seq, q, w, steps, std::span<std::int8_t>(codes));
  // 0.30/0.25 = 1.2 -> 1; -0.2 -> -0; -1.04 -> -1; 0.44 -> 0; 2.96 -> clamp 1.
  CHECK(codes == std::vector<std::int8_t>{1, 0, -1, 0, 1});
  const auto packed = pack(2, 5, codes);
  // 01 00 11 00 | 01: 0b00110001 = 0x31, 0x01
  CHECK(packed == std::vector<std::uint8_t>{0x31, 0x01});
  std::vector<float> y(5);
  sq::dequantize(sq::exec::seq, q, 5, packed, steps, y);
  CHECK(y == std::vector<float>{0.25f, 0.0f, -0.25f, 0.0f, 0.25f});
}

template <class C>
void check_bit_order(int bits, std::mt19937& rng) {
  const bool is_signed = std::numeric_limits<C>::is_signed;
  const long lo = sq::field_min(bits, is_signed);
  const long hi = sq::field_max(bits, is_signed);
  std::uniform_int_distribution<long> code(lo, hi);
  const std::size_t max_cols = static_cast<std::size_t>(64 / bits);
  for (std::size_t cols = 1; cols <= max_cols; ++cols) {
    for (int rows : {1, 3}) {
      std::vector<C> codes(cols * static_cast<std::size_t>(rows));
      for (C& c : codes) c = static_cast<C>(code(rng));
      const auto packed = pack(bits, cols, codes);
      const std::size_t row_bytes = (cols * static_cast<std::size_t>(bits) + 7) / 8;
      REQUIRE(packed.size() == row_bytes * static_cast<std::size_t>(rows));
      std::vector<C> back(codes.size());
      sq::unpack_codes(bits, cols, std::span<const std::uint8_t>(packed), std::span<C>(back));
      for (int r = 0; r < rows; ++r) {
        const std::vector<C> row(codes.begin() + static_cast<std::ptrdiff_t>(cols) * r,
                                 codes.begin() + static_cast<std::ptrdiff_t>(cols) * (r + 1));
        const std::vector<std::uint8_t> expected = reference_pack_row(row, bits);
        const std::vector<std::uint8_t> got(packed.begin() + static_cast<std::ptrdiff_t>(row_bytes) * r,
                                            packed.begin() + static_cast<std::ptrdiff_t>(row_bytes) * (r + 1));
        CHECK_MESSAGE(got == expected, "bits ", bits, " cols ", cols, " row ", r);
        for (std::size_t j = 0; j < cols; ++j) {
          CHECK(reference_unpack(got, j, bits, is_signed) == static_cast<std::int64_t>(row[j]));
          CHECK(back[cols * static_cast<std::size_t>(r) + j] == row[j]);
        }
      }
    }
  }
}

TEST_CASE("export: bit order against a uint64 bit-stream reference, every width and row length") {
  std::mt19937 rng(13);
  for (int bits : {2, 4, 8}) {
    check_bit_order<std::int8_t>(bits, rng);
    check_bit_order<std::uint8_t>(bits, rng);
  }
  for (int bits : {2, 4, 8, 16}) {
    check_bit_order<std::int16_t>(bits, rng);
    check_bit_order<std::uint16_t>(bits, rng);
  }
}

TEST_CASE("export: code fields of the grids, NaN code") {
  CHECK(sq::code_field_of(sq::signed_grid(1)) == sq::code_field{2, true});  // binary: -1, 0, +1
  CHECK(sq::code_field_of(sq::signed_grid(2)) == sq::code_field{2, true});
  CHECK(sq::code_field_of(sq::ternary_grid()) == sq::code_field{2, true});
  CHECK(sq::code_field_of(sq::signed_grid(3)) == sq::code_field{4, true});
  CHECK(sq::code_field_of(sq::signed_grid(8)) == sq::code_field{8, true});
  CHECK(sq::code_field_of(sq::signed_grid(9)) == sq::code_field{16, true});
  CHECK(sq::code_field_of(sq::unsigned_grid(1)) == sq::code_field{2, false});
  CHECK(sq::code_field_of(sq::unsigned_grid(4)) == sq::code_field{4, false});
  CHECK(sq::code_field_of(sq::unsigned_grid(8)) == sq::code_field{8, false});
  CHECK(sq::code_field_of(sq::unsigned_grid(16)) == sq::code_field{16, false});
  CHECK(sq::code_field_of(sq::integer_grid(-3, 5)) == sq::code_field{4, true});
  CHECK(sq::code_field_of(sq::integer_grid(3, 10)) == sq::code_field{4, false});
  CHECK(sq::code_bits(sq::signed_grid(4)) == 4);
  CHECK(sq::nan_code(sq::signed_grid(2)) == 0);
  CHECK(sq::nan_code(sq::unsigned_grid(4)) == 0);
  CHECK(sq::nan_code(sq::integer_grid(3, 10)) == 3);
  CHECK(sq::nan_code(sq::integer_grid(-10, -3)) == -3);
  check_invalid_argument([] { (void)sq::code_field_of(sq::integer_grid(-40000, 40000)); }, {"grid.qmax()", "16-bit"});
  check_invalid_argument([] { (void)sq::code_field_of(sq::integer_grid(0, 65536)); }, {"grid.qmax() = 65536"});
  static_assert(sq::code_bits(sq::signed_grid(2)) == 2);
}

// ---------------------------------------------------------------------------
// Round trip on every backend
// ---------------------------------------------------------------------------

/// Inputs covering the grid and beyond, ties, ±0, tiny negatives (-> -0), NaN, ±Inf.
template <class T>
std::vector<T> inputs(std::size_t n, sq::grid const& g, std::mt19937& rng) {
  const T lo = static_cast<T>(g.qmin()) - T(3);
  const T hi = static_cast<T>(g.qmax()) + T(3);
  std::uniform_real_distribution<T> value(lo, hi);
  std::uniform_int_distribution<int> level(g.qmin() - 2, g.qmax() + 2);
  std::uniform_int_distribution<int> kind(0, 15);
  std::vector<T> x(n);
  for (T& v : x) {
    switch (kind(rng)) {
      case 0:
        v = static_cast<T>(level(rng)) + T(0.5);  // tie (scaled by the step below)
        break;
      case 1:
        v = T(-0.0);
        break;
      case 2:
        v = T(-0.25);
        break;
      case 3:
        v = T(0.0);
        break;
      default:
        v = value(rng);
    }
  }
  const T specials[] = {std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity(),
                        -std::numeric_limits<T>::infinity(), T(-0.0), T(1e30), T(-1e30)};
  for (std::size_t i = 0; i < std::size(specials) && i < n; ++i) {
    x[(i * 7919) % n] = specials[i];
  }
  return x;
}

/// The code of x by the formula, written independently (std::nearbyint in T).
template <class T>
long reference_code(sq::grid const& g, T x, T step, T offset, bool with_offset) {
  const T v = (with_offset ? (x - offset) : x) * (T(1) / step);
  if (std::isnan(v)) return sq::nan_code(g);
  if (g.is_binary()) return v > T(0) ? 1 : (v < T(0) ? -1 : 0);
  const T n = std::nearbyint(v);
  if (n < static_cast<T>(g.qmin())) return g.qmin();
  if (n > static_cast<T>(g.qmax())) return g.qmax();
  return static_cast<long>(n);
}

struct problem {
  sq::step_layout layout;
  std::size_t cols;  // packing row length
  std::size_t rows;
};

template <class T, class C, class Policy>
void check_round_trip(Policy const& policy, const char* policy_name, sq::grid const& g, problem const& p,
                      bool with_offsets, std::mt19937& rng) {
  const std::size_t numel = p.cols * p.rows;
  const sq::quantizer<T> q{g, sq::ste{}, p.layout};
  const std::size_t nsteps = p.layout.step_count(numel);
  std::uniform_real_distribution<T> step_dist(T(0.01), T(2));
  std::uniform_real_distribution<T> offset_dist(T(-1), T(1));
  std::vector<T> steps(nsteps), offsets(nsteps);
  for (T& s : steps) s = step_dist(rng);
  for (T& b : offsets) b = offset_dist(rng);
  std::vector<T> x = inputs<T>(numel, g, rng);
  for (std::size_t i = 0; i < numel; ++i) {
    const std::size_t k = p.layout.step_index(i);
    x[i] = x[i] * steps[k];  // -0 stays -0 without offsets
    if (with_offsets) x[i] += offsets[k];
  }

  std::vector<T> y_fq(numel);
  std::vector<C> codes(numel);
  std::vector<T> y(numel);
  if (with_offsets) {
    sq::fake_quantize(sq::exec::seq, q, x, steps, y_fq, offsets);
    sq::quantize_to_codes(policy, q, x, steps, std::span<C>(codes), offsets);
  } else {
    sq::fake_quantize(sq::exec::seq, q, x, steps, y_fq);
    sq::quantize_to_codes(policy, q, x, steps, std::span<C>(codes));
  }
  const int bits = sq::code_bits(g);
  const auto packed = pack(bits, p.cols, codes);
  if (with_offsets) {
    sq::dequantize(policy, q, p.cols, packed, steps, y, offsets);
  } else {
    sq::dequantize(policy, q, p.cols, packed, steps, y);
  }

  std::size_t code_mismatch = 0, value_mismatch = 0, negative_zeros = 0, nans = 0;
  for (std::size_t i = 0; i < numel; ++i) {
    const std::size_t k = p.layout.step_index(i);
    const T b = with_offsets ? offsets[k] : T(0);
    if (codes[i] != reference_code(g, x[i], steps[k], b, with_offsets)) {
      if (code_mismatch++ < 3) {
        FAIL_CHECK(policy_name, " code of x = ", x[i], ": ", static_cast<long>(codes[i]), " expected ",
                   reference_code(g, x[i], steps[k], b, with_offsets));
      }
    }
    bool ok;
    if (std::isnan(x[i])) {
      ++nans;
      ok = reference::same_bits(y[i], with_offsets ? b : T(0));  // s * 0 + b: NaN does not survive
    } else if (y_fq[i] == T(0) && std::signbit(y_fq[i])) {
      ++negative_zeros;
      ok = y[i] == T(0) && !std::signbit(y[i]);  // integer codes carry no -0
    } else {
      ok = reference::same_bits(y[i], y_fq[i]);
    }
    if (!ok && value_mismatch++ < 3) {
      FAIL_CHECK(policy_name, " element ", i, " x = ", x[i], ": dequantize ", y[i], " fake_quantize ", y_fq[i]);
    }
  }
  CHECK_MESSAGE(code_mismatch == 0, policy_name, " ", p.layout.name(), " cols ", p.cols);
  CHECK_MESSAGE(value_mismatch == 0, policy_name, " ", p.layout.name(), " cols ", p.cols);
  if (numel >= 64) {
    CHECK(nans > 0);
    CHECK(negative_zeros + (with_offsets ? 1 : 0) > 0);  // the -0 rule was exercised (offsets shift it)
  }
}

template <class T, class C>
void check_all_backends(sq::grid const& g, problem const& p, bool with_offsets, std::mt19937& rng) {
  const auto seed = static_cast<std::uint32_t>(rng());
  // Same data for every backend (same seed).
  std::mt19937 r1(seed), r2(seed), r3(seed), r4(seed);
  check_round_trip<T, C>(sq::exec::seq, "seq", g, p, with_offsets, r1);
  check_round_trip<T, C>(sq::exec::simd, "simd", g, p, with_offsets, r2);
  check_round_trip<T, C>(sq::exec::par.with_threads(1), "par(1)", g, p, with_offsets, r3);
  check_round_trip<T, C>(sq::exec::par.with_threads(3), "par(3)", g, p, with_offsets, r4);
}

std::vector<problem> problems() {
  std::vector<problem> out;
  // Row lengths 1, 3, 5, 7 elements past a byte boundary of every width, and longer rows.
  for (std::size_t cols : {1u, 3u, 5u, 7u, 9u, 11u, 13u, 15u, 17u, 23u, 64u, 517u, 1029u}) {
    out.push_back({sq::per_tensor(), cols, 5});
    out.push_back({sq::per_channel(cols), cols, 5});
    out.push_back({sq::per_group(cols * 5 % 3 == 0 ? 3 : 1), cols, 5});
    out.push_back({sq::per_group(cols * 5 % 10 == 0 ? 10 : 5), cols, 5});
    out.push_back({sq::per_column(cols), cols, 5});
    out.push_back({sq::per_column(5 * cols), cols, 5});  // channels spanning several packed rows
  }
  return out;
}

template <class T, class C>
void check_grid(sq::grid const& g, std::mt19937& rng) {
  for (problem const& p : problems()) {
    for (bool with_offsets : {false, true}) {
      check_all_backends<T, C>(g, p, with_offsets, rng);
    }
  }
}

}  // namespace

TEST_CASE("export: round trip == fake_quantize on every backend, grid, width, layout, row length (float)") {
  std::mt19937 rng(2024);
  SUBCASE("binary") { check_grid<float, std::int8_t>(sq::signed_grid(1), rng); }
  SUBCASE("ternary") { check_grid<float, std::int8_t>(sq::ternary_grid(), rng); }
  SUBCASE("signed 2") { check_grid<float, std::int8_t>(sq::signed_grid(2), rng); }
  SUBCASE("signed 4") { check_grid<float, std::int8_t>(sq::signed_grid(4), rng); }
  SUBCASE("signed 8") { check_grid<float, std::int8_t>(sq::signed_grid(8), rng); }
  SUBCASE("unsigned 2") { check_grid<float, std::uint8_t>(sq::unsigned_grid(2), rng); }
  SUBCASE("unsigned 4") { check_grid<float, std::uint8_t>(sq::unsigned_grid(4), rng); }
  SUBCASE("unsigned 8") { check_grid<float, std::uint8_t>(sq::unsigned_grid(8), rng); }
  SUBCASE("integer -3..5 (4-bit field, not filled)") { check_grid<float, std::int8_t>(sq::integer_grid(-3, 5), rng); }
  SUBCASE("signed 12 in int16") { check_grid<float, std::int16_t>(sq::signed_grid(12), rng); }
  SUBCASE("unsigned 16 in uint16") { check_grid<float, std::uint16_t>(sq::unsigned_grid(16), rng); }
}

TEST_CASE("export: round trip == fake_quantize (double)") {
  std::mt19937 rng(7);
  SUBCASE("signed 2") { check_grid<double, std::int8_t>(sq::signed_grid(2), rng); }
  SUBCASE("binary") { check_grid<double, std::int8_t>(sq::signed_grid(1), rng); }
  SUBCASE("unsigned 4") { check_grid<double, std::uint8_t>(sq::unsigned_grid(4), rng); }
  SUBCASE("signed 16 in int16") { check_grid<double, std::int16_t>(sq::signed_grid(16), rng); }
}

TEST_CASE("export: rows longer than a piece, many pieces on several threads") {
  std::mt19937 rng(99);
  const std::size_t long_row = (std::size_t{1} << 16) + 5;
  check_all_backends<float, std::int8_t>(sq::signed_grid(2), {sq::per_tensor(), long_row, 2}, false, rng);
  check_all_backends<float, std::uint8_t>(sq::unsigned_grid(4), {sq::per_channel(long_row), long_row, 2}, true, rng);
  check_all_backends<float, std::int8_t>(sq::signed_grid(8), {sq::per_group(48), 3, 70000}, false, rng);
  check_all_backends<float, std::int8_t>(sq::ternary_grid(), {sq::per_column(12), 7, 30000}, true, rng);
}

// ---------------------------------------------------------------------------
// Bad input: std::invalid_argument naming the argument, outputs untouched.
// ---------------------------------------------------------------------------

TEST_CASE("export: bad input throws before writing") {
  constexpr std::uint8_t sentinel = 0xA5;
  const std::vector<std::int8_t> codes{-2, -1, 0, 1, 1, 0};
  std::vector<std::uint8_t> packed(sq::packed_bytes(2, 3, 2), sentinel);
  const auto untouched = [&] {
    for (std::uint8_t b : packed) CHECK(b == sentinel);
  };

  SUBCASE("pack_codes") {
    auto small = std::span<std::uint8_t>(packed).first(packed.size() - 1);
    check_invalid_argument([&] { sq::pack_codes(2, 3, std::span<const std::int8_t>(codes), small); },
                           {"stableqat::pack_codes", "packed.size() = 1", "packed_bytes(2, 3, 2) = 2"});
    std::vector<std::uint8_t> big(packed.size() + 1, sentinel);
    check_invalid_argument([&] { sq::pack_codes(2, 3, std::span<const std::int8_t>(codes), std::span<std::uint8_t>(big)); },
                           {"packed.size() = 3"});
    const std::vector<std::int8_t> outside{-2, -1, 0, 2, 1, 0};
    check_invalid_argument([&] { sq::pack_codes(2, 3, std::span<const std::int8_t>(outside), std::span<std::uint8_t>(packed)); },
                           {"codes[3] = 2", "2-bit field [-2, 1]"});
    const std::vector<std::uint8_t> outside_u{0, 3, 4, 1, 1, 0};
    check_invalid_argument([&] { sq::pack_codes(2, 3, std::span<const std::uint8_t>(outside_u), std::span<std::uint8_t>(packed)); },
                           {"codes[2] = 4", "[0, 3]"});
    for (int bits : {0, 1, 3, 5, 32, -2}) {
      check_invalid_argument([&] { sq::pack_codes(bits, 3, std::span<const std::int8_t>(codes), std::span<std::uint8_t>(packed)); },
                             {"bits = " + std::to_string(bits), "2, 4, 8 or 16"});
    }
    std::vector<std::uint8_t> wide(sq::packed_bytes(2, 3, 16), sentinel);
    check_invalid_argument([&] { sq::pack_codes(16, 3, std::span<const std::int8_t>(codes), std::span<std::uint8_t>(wide)); },
                           {"bits = 16", "wider than the int8_t codes"});
    check_invalid_argument([&] { sq::pack_codes(2, 0, std::span<const std::int8_t>(codes), std::span<std::uint8_t>(packed)); },
                           {"cols = 0"});
    check_invalid_argument([&] { sq::pack_codes(2, 4, std::span<const std::int8_t>(codes), std::span<std::uint8_t>(packed)); },
                           {"codes.size() = 6", "multiple of cols = 4"});
    for (std::uint8_t b : big) CHECK(b == sentinel);
    untouched();
  }

  SUBCASE("unpack_codes") {
    std::vector<std::int8_t> out(6, 42);
    check_invalid_argument([&] { sq::unpack_codes(2, 3, std::span<const std::uint8_t>(packed).first(1), std::span<std::int8_t>(out)); },
                           {"stableqat::unpack_codes", "packed.size() = 1"});
    check_invalid_argument([&] { sq::unpack_codes(3, 3, std::span<const std::uint8_t>(packed), std::span<std::int8_t>(out)); },
                           {"bits = 3"});
    check_invalid_argument([&] { sq::unpack_codes(2, 5, std::span<const std::uint8_t>(packed), std::span<std::int8_t>(out)); },
                           {"codes.size() = 6"});
    for (std::int8_t c : out) CHECK(c == 42);
  }

  SUBCASE("packed_bytes") {
    check_invalid_argument([] { (void)sq::packed_bytes(2, 3, 6); }, {"stableqat::packed_bytes", "bits = 6"});
    check_invalid_argument([] { (void)sq::packed_bytes(std::numeric_limits<std::size_t>::max(), 3, 8); },
                           {"rows =", "overflows"});
    check_invalid_argument([] { (void)sq::packed_bytes(1, std::numeric_limits<std::size_t>::max(), 2); },
                           {"cols =", "overflows"});
  }

  SUBCASE("quantize_to_codes") {
    const sq::quantizer<float> q{sq::signed_grid(2), sq::ste{}, sq::per_channel(3)};
    const std::vector<float> x{0.1f, 0.2f, 0.3f, -0.1f, -0.2f, -0.3f};
    std::vector<std::int8_t> out(6, 42);
    const auto codes_untouched = [&] {
      for (std::int8_t c : out) CHECK(c == 42);
    };
    for (float bad : {0.0f, -1.0f, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(), 1e-40f}) {
      const std::vector<float> steps{0.1f, bad};
      check_invalid_argument([&] { sq::quantize_to_codes(sq::exec::simd, q, x, steps, std::span<std::int8_t>(out)); },
                             {"stableqat::quantize_to_codes", "steps[1]"});
    }
    const std::vector<float> steps{0.1f, 0.1f};
    check_invalid_argument([&] { sq::quantize_to_codes(sq::exec::seq, q, x, std::vector<float>{0.1f}, std::span<std::int8_t>(out)); },
                           {"steps.size() = 1"});
    check_invalid_argument([&] { sq::quantize_to_codes(sq::exec::seq, q, x, steps, std::span<std::int8_t>(out).first(5)); },
                           {"codes.size() = 5"});
    check_invalid_argument([&] {
      sq::quantize_to_codes(sq::exec::par, q, x, steps, std::span<std::int8_t>(out),
                            std::vector<float>{0.0f, std::numeric_limits<float>::infinity()});
    }, {"offsets[1] = inf"});
    check_invalid_argument([&] {
      sq::quantize_to_codes(sq::exec::par.with_threads(-1), q, x, steps, std::span<std::int8_t>(out));
    }, {"threads = -1"});
    std::vector<std::uint8_t> unsigned_codes(6, 42);
    check_invalid_argument([&] { sq::quantize_to_codes(sq::exec::seq, q, x, steps, std::span<std::uint8_t>(unsigned_codes)); },
                           {"needs signed (int8_t / int16_t) codes, not uint8_t"});
    const sq::quantizer<float> qu{sq::unsigned_grid(4), sq::ste{}, sq::per_channel(3)};
    check_invalid_argument([&] { sq::quantize_to_codes(sq::exec::seq, qu, x, steps, std::span<std::int8_t>(out)); },
                           {"needs unsigned (uint8_t / uint16_t) codes, not int8_t"});
    const sq::quantizer<float> q12{sq::signed_grid(12), sq::ste{}, sq::per_channel(3)};
    check_invalid_argument([&] { sq::quantize_to_codes(sq::exec::seq, q12, x, steps, std::span<std::int8_t>(out)); },
                           {"grid.qmax() = 2047", "does not fit int8_t"});
    codes_untouched();
    for (std::uint8_t c : unsigned_codes) CHECK(c == 42);
  }

  SUBCASE("dequantize") {
    const sq::quantizer<float> q{sq::signed_grid(2), sq::ste{}, sq::per_channel(3)};
    sq::pack_codes(2, 3, std::span<const std::int8_t>(codes), std::span<std::uint8_t>(packed));
    const std::vector<float> steps{0.1f, 0.2f};
    std::vector<float> y(6, 42.0f);
    const auto y_untouched = [&] {
      for (float v : y) CHECK(v == 42.0f);
    };
    check_invalid_argument([&] { sq::dequantize(sq::exec::simd, q, 3, std::span<const std::uint8_t>(packed).first(1), steps, y); },
                           {"stableqat::dequantize", "packed.size() = 1", "packed_bytes(2, 3, 2) = 2"});
    check_invalid_argument([&] { sq::dequantize(sq::exec::simd, q, 4, packed, steps, y); }, {"y.size() = 6", "cols = 4"});
    check_invalid_argument([&] { sq::dequantize(sq::exec::simd, q, 0, packed, steps, y); }, {"cols = 0"});
    check_invalid_argument([&] { sq::dequantize(sq::exec::seq, q, 3, packed, std::vector<float>{0.1f, -0.2f}, y); },
                           {"steps[1] = -0.2"});
    check_invalid_argument([&] { sq::dequantize(sq::exec::seq, q, 3, packed, std::vector<float>{0.1f}, y); },
                           {"steps.size() = 1"});
    check_invalid_argument([&] {
      sq::dequantize(sq::exec::par, q, 3, packed, steps, y, std::vector<float>{std::numeric_limits<float>::quiet_NaN(), 0.0f});
    }, {"offsets[0] = nan"});
    // A 4-bit packing handed to a 2-bit grid: the size tells.
    std::vector<std::uint8_t> four(sq::packed_bytes(2, 3, 4), 0);
    check_invalid_argument([&] { sq::dequantize(sq::exec::seq, q, 3, four, steps, y); }, {"packed.size() = 4"});
    // Field values that are not codes of the grid: -2 (10) on the ternary and binary grids.
    for (sq::grid g : {sq::ternary_grid(), sq::signed_grid(1)}) {
      const sq::quantizer<float> qt{g, sq::ste{}, sq::per_channel(3)};
      // row 1 = {0, 1, -2}: byte 2 = 00 | 01<<2 | 10<<4 = 0x24
      const std::vector<std::uint8_t> bad{0x00, 0x24};
      check_invalid_argument([&] { sq::dequantize(sq::exec::simd, qt, 3, bad, steps, y); },
                             {"packed[1] = 2", "field 2 of row 1", "[-1, 1]"});
    }
    const sq::quantizer<float> qi{sq::integer_grid(-3, 5), sq::ste{}, sq::per_channel(3)};
    const std::vector<std::uint8_t> seven{0x70, 0x00, 0x00, 0x00};  // field 1 of row 0 = 7
    check_invalid_argument([&] { sq::dequantize(sq::exec::seq, qi, 3, seven, steps, y); },
                           {"packed[0] = 7", "field 1 of row 0"});
    const sq::quantizer<float> qwide{sq::integer_grid(-40000, 40000), sq::ste{}, sq::per_channel(3)};
    check_invalid_argument([&] { sq::dequantize(sq::exec::seq, qwide, 3, packed, steps, y); }, {"16-bit field"});
    y_untouched();
  }
}

TEST_CASE("export: empty tensors are fine") {
  const sq::quantizer<float> q{sq::signed_grid(2)};
  const std::vector<float> steps{0.5f};
  std::vector<float> x, y;
  std::vector<std::int8_t> codes;
  std::vector<std::uint8_t> packed;
  sq::quantize_to_codes(sq::exec::simd, q, x, steps, std::span<std::int8_t>(codes));
  sq::pack_codes(2, 4, std::span<const std::int8_t>(codes), std::span<std::uint8_t>(packed));
  sq::dequantize(sq::exec::par, q, 4, packed, steps, y);
  CHECK(packed.empty());
}
