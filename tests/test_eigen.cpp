// Eigen adapters (stableqat/eigen.hpp) against the span front-end and against
// element formulas written out independently here (long double sums).
#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <Eigen/Core>

#include <stableqat/eigen.hpp>

namespace sq = stableqat;
using sq::eigen::steps_per;

namespace {

using row_major_f = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using col_major_f = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
using surrogate_type = sq::fourier_surrogate<1>;
using quantizer_f = sq::quantizer<float, surrogate_type>;

const quantizer_f q2{sq::signed_grid(2), surrogate_type{0.21}};

template <class M>
M random_matrix(Eigen::Index rows, Eigen::Index cols, unsigned seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  M m(rows, cols);
  for (Eigen::Index i = 0; i < rows; ++i) {
    for (Eigen::Index j = 0; j < cols; ++j) {
      m(i, j) = dist(rng);
    }
  }
  return m;
}

Eigen::VectorXf positive_steps(Eigen::Index n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(0.2f, 0.6f);
  Eigen::VectorXf s(n);
  for (Eigen::Index k = 0; k < n; ++k) s(k) = dist(rng);
  return s;
}

// The contract's forward formula for one element, 2-bit signed grid [-2, 1].
float reference_forward(float x, float step) {
  const float v = x * (1.0f / step);
  const float n = std::nearbyint(v);
  return step * std::fmin(std::fmax(n, -2.0f), 1.0f);
}

// The contract's LSQ step term for one element, in long double.
long double reference_step_term(float x, float dy, float step) {
  const float v = x * (1.0f / step);
  const float n = std::nearbyint(v);
  const bool inside = -2.0f <= v && v <= 1.0f;
  const long double level = std::fmin(std::fmax(n, -2.0f), 1.0f);
  return static_cast<long double>(dy) * (inside ? level - static_cast<long double>(v) : level);
}

// Step of element (i, j) for an axis.
float step_of(steps_per axis, Eigen::VectorXf const& steps, Eigen::Index i, Eigen::Index j) {
  return axis == steps_per::row ? steps(i) : axis == steps_per::column ? steps(j) : steps(0);
}

Eigen::Index step_count(steps_per axis, Eigen::Index rows, Eigen::Index cols) {
  return axis == steps_per::row ? rows : axis == steps_per::column ? cols : 1;
}

// Forward and backward of an R x C matrix in storage order M, checked element by
// element against the formulas and against the span API on a row-major copy.
template <class M>
void check_axis(steps_per axis) {
  const Eigen::Index rows = 5;
  const Eigen::Index cols = 7;
  const M x = random_matrix<M>(rows, cols, 11, 1.2f);
  const M dy = random_matrix<M>(rows, cols, 12);
  const Eigen::VectorXf steps = positive_steps(step_count(axis, rows, cols), 13);

  M y(rows, cols);
  sq::fake_quantize(sq::exec::seq, q2, axis, x, steps, y);
  for (Eigen::Index i = 0; i < rows; ++i) {
    for (Eigen::Index j = 0; j < cols; ++j) {
      CHECK(y(i, j) == reference_forward(x(i, j), step_of(axis, steps, i, j)));
    }
  }

  M dx(rows, cols);
  Eigen::VectorXf dsteps(steps.size());
  sq::fake_quantize_backward(sq::exec::seq, q2, axis, x, steps, dy, dx, dsteps);

  // Span API on a row-major copy: per row = per_channel(cols), per column = per_column(cols).
  const row_major_f xr = x;
  const row_major_f dyr = dy;
  const sq::step_layout layout = axis == steps_per::row      ? sq::per_channel(static_cast<std::size_t>(cols))
                                 : axis == steps_per::column ? sq::per_column(static_cast<std::size_t>(cols))
                                                             : sq::per_tensor();
  const quantizer_f qr{q2.grid(), q2.surrogate(), layout};
  const auto n = static_cast<std::size_t>(rows * cols);
  std::vector<float> yr(n), dxr(n), dsr(static_cast<std::size_t>(steps.size()));
  const std::span<const float> xs(xr.data(), n), dys(dyr.data(), n), ss(steps.data(), dsr.size());
  sq::fake_quantize(sq::exec::seq, qr, xs, ss, yr);
  sq::fake_quantize_backward(sq::exec::seq, qr, xs, ss, dys, dxr, dsr);
  for (Eigen::Index i = 0; i < rows; ++i) {
    for (Eigen::Index j = 0; j < cols; ++j) {
      const auto flat = static_cast<std::size_t>(i * cols + j);
      CHECK(y(i, j) == yr[flat]);
      CHECK(dx(i, j) == dxr[flat]);
    }
  }
  for (Eigen::Index k = 0; k < steps.size(); ++k) {
    CHECK(dsteps(k) == dsr[static_cast<std::size_t>(k)]);
  }

  // dsteps against an independent long double sum with the LSQ grad scale.
  const long double grad_scale = 1.0L / std::sqrt(static_cast<long double>(rows * cols) * 1.0L);
  std::vector<long double> sums(static_cast<std::size_t>(steps.size()), 0.0L);
  std::vector<long double> magnitudes(sums.size(), 0.0L);
  for (Eigen::Index i = 0; i < rows; ++i) {
    for (Eigen::Index j = 0; j < cols; ++j) {
      const auto k = static_cast<std::size_t>(axis == steps_per::row ? i : axis == steps_per::column ? j : 0);
      const long double term = reference_step_term(x(i, j), dy(i, j), step_of(axis, steps, i, j));
      sums[k] += term;
      magnitudes[k] += std::fabs(term);
    }
  }
  for (std::size_t k = 0; k < sums.size(); ++k) {
    const auto reference = static_cast<double>(grad_scale * sums[k]);
    // Accumulation error bound of the contract plus the final rounding to float.
    const double tolerance = static_cast<double>(1e-6L * grad_scale * magnitudes[k]) + 1.2e-7 * std::fabs(reference);
    CHECK(std::fabs(static_cast<double>(dsteps(static_cast<Eigen::Index>(k))) - reference) <= tolerance);
  }
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (std::invalid_argument const& e) {
    return e.what();
  }
  return "no exception";
}

bool contains(std::string const& text, std::string const& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("layout_for maps the step axis and storage order onto a step_layout") {
  CHECK(sq::eigen::layout_for(steps_per::row, true, 4, 3) == sq::per_channel(3));
  CHECK(sq::eigen::layout_for(steps_per::row, false, 4, 3) == sq::per_column(4));
  CHECK(sq::eigen::layout_for(steps_per::column, true, 4, 3) == sq::per_column(3));
  CHECK(sq::eigen::layout_for(steps_per::column, false, 4, 3) == sq::per_channel(4));
  CHECK(sq::eigen::layout_for(steps_per::matrix, false, 4, 3) == sq::per_tensor());
  const col_major_f m(4, 3);
  CHECK(sq::eigen::layout_for(steps_per::row, m) == sq::per_column(4));
}

TEST_CASE("row-major matrices: per row, per column and per matrix steps") {
  check_axis<row_major_f>(steps_per::row);
  check_axis<row_major_f>(steps_per::column);
  check_axis<row_major_f>(steps_per::matrix);
}

TEST_CASE("column-major matrices: per row, per column and per matrix steps") {
  check_axis<col_major_f>(steps_per::row);
  check_axis<col_major_f>(steps_per::column);
  check_axis<col_major_f>(steps_per::matrix);
}

TEST_CASE("Map and Ref views, contiguous blocks and in-place use") {
  std::vector<float> storage(4 * 6);
  for (std::size_t i = 0; i < storage.size(); ++i) storage[i] = 0.37f * static_cast<float>(i) - 4.0f;
  const Eigen::Map<const col_major_f> x(storage.data(), 4, 6);
  const Eigen::VectorXf steps = positive_steps(6, 3);

  // Map output, steps per column (contiguous columns of a column-major matrix).
  std::vector<float> out(storage.size());
  sq::fake_quantize(sq::exec::seq, q2, steps_per::column, x, steps, Eigen::Map<col_major_f>(out.data(), 4, 6));
  for (Eigen::Index i = 0; i < 4; ++i) {
    for (Eigen::Index j = 0; j < 6; ++j) {
      CHECK(out[static_cast<std::size_t>(j * 4 + i)] == reference_forward(x(i, j), steps(j)));
    }
  }

  // A block of whole columns is contiguous: pass it through Eigen::Ref, written through a const Ref.
  col_major_f m = x;
  const Eigen::Ref<col_major_f> right = m.rightCols(3);
  const Eigen::VectorXf right_steps = steps.tail(3);
  sq::fake_quantize(sq::exec::seq, q2, steps_per::column, right, right_steps, right);  // y aliases x
  for (Eigen::Index i = 0; i < 4; ++i) {
    for (Eigen::Index j = 0; j < 6; ++j) {
      const float expected = j < 3 ? x(i, j) : reference_forward(x(i, j), steps(j));
      CHECK(m(i, j) == expected);
    }
  }
}

TEST_CASE("vectors use the quantizer's own layout, row or column vectors alike") {
  const Eigen::VectorXf x = random_matrix<col_major_f>(12, 1, 5, 1.5f);
  const Eigen::RowVectorXf dy = random_matrix<row_major_f>(1, 12, 6);
  const Eigen::VectorXf steps = positive_steps(3, 7);
  const quantizer_f grouped{sq::signed_grid(2), surrogate_type{0.21}, sq::per_group(4)};

  Eigen::RowVectorXf y(12);
  sq::fake_quantize(sq::exec::seq, grouped, x, steps, y);
  Eigen::VectorXf dx(12);
  Eigen::VectorXf dsteps(3);
  sq::fake_quantize_backward(sq::exec::seq, grouped, x, steps, dy, dx, dsteps);

  std::vector<float> ys(12), dxs(12), dss(3);
  sq::fake_quantize(sq::exec::seq, grouped, std::span<const float>(x.data(), 12), std::span<const float>(steps.data(), 3),
                    ys);
  sq::fake_quantize_backward(sq::exec::seq, grouped, std::span<const float>(x.data(), 12),
                             std::span<const float>(steps.data(), 3), std::span<const float>(dy.data(), 12), dxs, dss);
  for (Eigen::Index i = 0; i < 12; ++i) {
    CHECK(y(i) == reference_forward(x(i), steps(i / 4)));
    CHECK(y(i) == ys[static_cast<std::size_t>(i)]);
    CHECK(dx(i) == dxs[static_cast<std::size_t>(i)]);
  }
  for (Eigen::Index k = 0; k < 3; ++k) CHECK(dsteps(k) == dss[static_cast<std::size_t>(k)]);
}

TEST_CASE("offsets (LSQ+) on a double matrix: dx + doffset terms add up to dy") {
  using row_major_d = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const sq::quantizer<double, sq::ste> q4{sq::unsigned_grid(4)};
  row_major_d x(3, 8);
  for (Eigen::Index i = 0; i < 3; ++i) {
    for (Eigen::Index j = 0; j < 8; ++j) x(i, j) = 0.21 * static_cast<double>(j) - 0.1 * static_cast<double>(i);
  }
  const row_major_d dy = row_major_d::Ones(3, 8);
  const Eigen::Vector3d steps(0.1, 0.15, 0.2);
  const Eigen::Vector3d offsets(-0.05, 0.0, 0.1);
  row_major_d y(3, 8), dx(3, 8);
  Eigen::Vector3d dsteps, doffsets;
  sq::fake_quantize(sq::exec::seq, q4, steps_per::row, x, steps, y, offsets);
  sq::fake_quantize_backward(sq::exec::seq, q4, steps_per::row, x, steps, dy, dx, dsteps, offsets, doffsets, 1.0);
  for (Eigen::Index i = 0; i < 3; ++i) {
    double outside = 0.0;
    for (Eigen::Index j = 0; j < 8; ++j) {
      const double v = (x(i, j) - offsets(i)) * (1.0 / steps(i));
      const double level = std::fmin(std::fmax(std::nearbyint(v), 0.0), 15.0);
      CHECK(y(i, j) == doctest::Approx(steps(i) * level + offsets(i)).epsilon(1e-15));
      const bool inside = 0.0 <= v && v <= 15.0;
      CHECK(dx(i, j) == (inside ? 1.0 : 0.0));  // STE
      outside += inside ? 0.0 : 1.0;
    }
    // With STE, doffset = grad_scale * sum(dy - dx) = the count of clamped elements.
    CHECK(doffsets(i) == doctest::Approx(outside));
  }
}

TEST_CASE("empty matrices: nothing to write, dsteps set to zero") {
  const row_major_f x(0, 4);
  row_major_f dx(0, 4);
  Eigen::VectorXf steps = Eigen::VectorXf::Constant(4, 0.5f);
  Eigen::VectorXf dsteps = Eigen::VectorXf::Constant(4, 9.0f);
  sq::fake_quantize_backward(sq::exec::seq, q2, steps_per::column, x, steps, x, dx, dsteps);
  CHECK(dsteps.isZero());
  steps(2) = -1.0f;
  CHECK(contains(error_of([&] { sq::fake_quantize(sq::exec::seq, q2, steps_per::column, x, steps, dx); }),
                 "steps[2] = -1 must be positive"));

  // Rows of no elements: steps_per::row still has 3 steps, though no row length
  // (per_channel(0)) exists to map them to; offsets included.
  const row_major_f x3(3, 0);
  row_major_f dx3(3, 0);
  Eigen::VectorXf steps3 = Eigen::VectorXf::Constant(3, 0.5f);
  const Eigen::VectorXf offsets3 = Eigen::VectorXf::Zero(3);
  Eigen::VectorXf dsteps3 = Eigen::VectorXf::Constant(3, 9.0f);
  Eigen::VectorXf doffsets3 = Eigen::VectorXf::Constant(3, 9.0f);
  sq::fake_quantize_backward(sq::exec::seq, q2, steps_per::row, x3, steps3, x3, dx3, dsteps3, offsets3, doffsets3);
  CHECK(dsteps3.isZero());
  CHECK(doffsets3.isZero());
  steps3(1) = std::numeric_limits<float>::infinity();
  CHECK(error_of([&] { sq::fake_quantize(sq::exec::seq, q2, steps_per::row, x3, steps3, dx3, offsets3); }) ==
        "stableqat::fake_quantize: steps[1] = inf must be positive and finite");
  // And no rows at all: zero steps.
  const row_major_f none(0, 0);
  row_major_f none_out(0, 0);
  Eigen::VectorXf no_steps(0);
  CHECK_NOTHROW(sq::fake_quantize_backward(sq::exec::seq, q2, steps_per::row, none, no_steps, none, none_out,
                                           no_steps));
}

TEST_CASE("size, stride and layout errors name the argument like the span API") {
  const col_major_f x = random_matrix<col_major_f>(4, 5, 1);
  const Eigen::VectorXf row_steps = positive_steps(4, 2);
  col_major_f y(4, 5);
  col_major_f wrong(5, 4);
  Eigen::VectorXf dsteps(4);

  CHECK(error_of([&] { sq::fake_quantize(sq::exec::seq, q2, steps_per::row, x, row_steps, wrong); }) ==
        "stableqat::fake_quantize: y.rows() = 5 differs from x.rows() = 4");
  CHECK(contains(error_of([&] { sq::fake_quantize(sq::exec::seq, q2, steps_per::column, x, row_steps, y); }),
                 "stableqat::fake_quantize: steps.size() = 4 differs from the 5 step(s) steps_per::column"));
  CHECK(contains(error_of([&] {
                   sq::fake_quantize_backward(sq::exec::seq, q2, steps_per::row, x, row_steps, x, y,
                                              Eigen::VectorXf(3));
                 }),
                 "stableqat::fake_quantize_backward: dsteps.size() = 3 differs"));
  CHECK(contains(error_of([&] {
                   sq::fake_quantize_backward(sq::exec::seq, q2, steps_per::row, x, row_steps, col_major_f(4, 6), y,
                                              dsteps);
                 }),
                 "dy.cols() = 6 differs from x.cols() = 5"));

  // Rows of a column-major matrix are not contiguous, nor is a block of some rows.
  col_major_f big = random_matrix<col_major_f>(6, 5, 3);
  CHECK(contains(error_of([&] { sq::fake_quantize(sq::exec::seq, q2, steps_per::row, big.topRows(4), row_steps, y); }),
                 "x.outerStride() = 6 differs from x.innerSize() = 4"));
  Eigen::VectorXf vy(5);
  const Eigen::VectorXf one_step = Eigen::VectorXf::Constant(1, 0.5f);
  CHECK(contains(error_of([&] { sq::fake_quantize(sq::exec::seq, q2, big.row(0), one_step, vy); }),
                 "x.innerStride() = 6 must be 1"));

  // A quantizer whose layout disagrees with the axis mapping is refused.
  const quantizer_f per_rows_of_5{sq::signed_grid(2), surrogate_type{}, sq::per_channel(5)};
  CHECK(contains(error_of([&] { sq::fake_quantize(sq::exec::seq, per_rows_of_5, steps_per::row, x, row_steps, y); }),
                 "per_channel layout conflicts with steps_per::row"));
  // ...while the layout the mapping needs is accepted.
  const quantizer_f mapped{sq::signed_grid(2), surrogate_type{}, sq::per_column(4)};
  CHECK_NOTHROW(sq::fake_quantize(sq::exec::seq, mapped, steps_per::row, x, row_steps, y));

  // Value checks come from the span front-end.
  Eigen::VectorXf bad = row_steps;
  bad(1) = 0.0f;
  CHECK(contains(error_of([&] { sq::fake_quantize(sq::exec::seq, q2, steps_per::row, x, bad, y); }),
                 "steps[1] = 0 must be positive and finite"));
}

// ---------------------------------------------------------------------------
// Integer export through the Eigen API: fake_quantize == dequantize(pack(codes))
// ---------------------------------------------------------------------------

namespace {

template <class C>
using row_major_codes = Eigen::Matrix<C, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using col_major_codes = Eigen::Matrix<std::int8_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
// The export ignores the surrogate: one (ste) keeps the instantiations few.
using export_quantizer = sq::quantizer<float>;

// The contract's level on a uniform grid, as an integer: clamp(nearbyint(x * (1/s)), qmin, qmax).
long reference_code(float x, float step, sq::grid const& g) {
  const float n = std::nearbyint(x * (1.0f / step));
  return static_cast<long>(std::fmin(std::fmax(n, static_cast<float>(g.qmin())), static_cast<float>(g.qmax())));
}

// Field j of packed row r, read bit by bit from the row's little-endian bit
// stream (bit k of a row is bit k % 8 of its byte k / 8), sign-extended.
long reference_field(std::vector<std::uint8_t> const& packed, std::size_t row_bytes, std::size_t r, std::size_t j,
                     int bits, bool is_signed) {
  unsigned long field = 0;
  for (int b = 0; b < bits; ++b) {
    const std::size_t bit = j * static_cast<std::size_t>(bits) + static_cast<std::size_t>(b);
    field |= static_cast<unsigned long>((packed[r * row_bytes + bit / 8] >> (bit % 8)) & 1u) << b;
  }
  const bool negative = is_signed && ((field >> (bits - 1)) & 1u) != 0;
  return negative ? static_cast<long>(field) - (1L << bits) : static_cast<long>(field);
}

// The round trip on a row-major [rows, cols] matrix with steps along `axis`:
// codes against the contract's level, every packed field against the bit-stream
// reader, padding bits zero, unpack == codes, and dequantize == fake_quantize bit
// for bit, except that a -0 output comes back as +0 (export.hpp).
template <class C, class Policy>
void check_round_trip(Policy const& policy, sq::grid const& g, int bits, Eigen::Index cols, steps_per axis,
                      unsigned seed) {
  CAPTURE(bits);
  CAPTURE(cols);
  const Eigen::Index rows = 4;
  const export_quantizer q{g, sq::ste{}};
  REQUIRE(sq::code_bits(g) == bits);
  // |x| / s reaches past both grid edges; ±Inf clamp; a tiny negative value gives -0.
  row_major_f x = random_matrix<row_major_f>(rows, cols, seed, 0.6f * static_cast<float>(g.qmax() + 3));
  x(0, 0) = -1e-3f;
  x(rows - 1, 0) = std::numeric_limits<float>::infinity();
  x(rows - 2, cols - 1) = -std::numeric_limits<float>::infinity();
  const Eigen::VectorXf steps = positive_steps(step_count(axis, rows, cols), seed + 1);

  row_major_f y(rows, cols);
  sq::fake_quantize(policy, q, axis, x, steps, y);
  row_major_codes<C> codes(rows, cols);
  sq::quantize_to_codes(policy, q, axis, x, steps, codes);
  const auto rows_u = static_cast<std::size_t>(rows);
  const auto cols_u = static_cast<std::size_t>(cols);
  std::vector<std::uint8_t> packed(sq::packed_bytes(rows_u, cols_u, bits), 0xa5);
  sq::pack_codes(bits, codes, packed);
  row_major_codes<C> unpacked(rows, cols);
  sq::unpack_codes(bits, packed, unpacked);
  row_major_f back(rows, cols);
  sq::dequantize(policy, q, axis, packed, steps, back);

  const std::size_t row_bytes = (static_cast<std::size_t>(cols) * static_cast<std::size_t>(bits) + 7) / 8;
  const bool is_signed = g.qmin() < 0;
  for (Eigen::Index i = 0; i < rows; ++i) {
    for (Eigen::Index j = 0; j < cols; ++j) {
      const float step = step_of(axis, steps, i, j);
      const long code = reference_code(x(i, j), step, g);
      CHECK(static_cast<long>(codes(i, j)) == code);
      CHECK(reference_field(packed, row_bytes, static_cast<std::size_t>(i), static_cast<std::size_t>(j), bits,
                            is_signed) == code);
      CHECK(unpacked(i, j) == codes(i, j));
      CHECK(y(i, j) == step * static_cast<float>(code));
      if (y(i, j) == 0.0f) {
        CHECK(std::bit_cast<std::uint32_t>(back(i, j)) == 0u);  // +0, even where fake_quantize gave -0
      } else {
        CHECK(std::bit_cast<std::uint32_t>(back(i, j)) == std::bit_cast<std::uint32_t>(y(i, j)));
      }
    }
    // Padding bits past the last field of a row are zero.
    const std::size_t used_bits = static_cast<std::size_t>(cols) * static_cast<std::size_t>(bits);
    if (used_bits % 8 != 0) {
      CHECK((packed[static_cast<std::size_t>(i) * row_bytes + row_bytes - 1] >> (used_bits % 8)) == 0);
    }
  }
  if (g.qmin() < 0) {
    CHECK(std::signbit(y(0, 0)));  // the -0 case was really exercised
  }
}

}  // namespace

TEST_CASE("export: Eigen round trip == fake_quantize bit for bit, 2/4/8 bits, odd row lengths") {
  for (const Eigen::Index cols : {1, 3, 5, 7, 13}) {
    check_round_trip<std::int8_t>(sq::exec::seq, sq::signed_grid(2), 2, cols, steps_per::row, 11u);
    check_round_trip<std::int8_t>(sq::exec::seq, sq::signed_grid(3), 4, cols, steps_per::row, 12u);
    check_round_trip<std::int8_t>(sq::exec::seq, sq::signed_grid(8), 8, cols, steps_per::row, 13u);
    check_round_trip<std::uint8_t>(sq::exec::seq, sq::unsigned_grid(4), 4, cols, steps_per::row, 14u);
    check_round_trip<std::int8_t>(sq::exec::seq, sq::signed_grid(4), 4, cols, steps_per::row, 15u);
  }
  // Steps per column and per matrix map onto the packed rows as well.
  check_round_trip<std::int8_t>(sq::exec::seq, sq::signed_grid(2), 2, 7, steps_per::column, 16u);
  check_round_trip<std::int8_t>(sq::exec::seq, sq::signed_grid(4), 4, 5, steps_per::matrix, 17u);
}

TEST_CASE("export: Eigen round trip with offsets, Maps, and column-major codes") {
  const sq::grid g = sq::signed_grid(4);
  const export_quantizer q{g, sq::ste{}};
  const Eigen::Index rows = 3;
  const Eigen::Index cols = 5;
  std::vector<float> storage(static_cast<std::size_t>(rows * cols));
  for (std::size_t i = 0; i < storage.size(); ++i) storage[i] = 0.61f * static_cast<float>(i) - 4.3f;
  const Eigen::Map<const row_major_f> x(storage.data(), rows, cols);
  const Eigen::VectorXf steps = positive_steps(rows, 21);
  const Eigen::VectorXf offsets = Eigen::VectorXf::LinSpaced(rows, -0.3f, 0.2f);

  row_major_f y(rows, cols);
  sq::fake_quantize(sq::exec::seq, q, steps_per::row, x, steps, y, offsets);
  std::vector<std::int8_t> code_storage(storage.size());
  Eigen::Map<row_major_codes<std::int8_t>> codes(code_storage.data(), rows, cols);
  sq::quantize_to_codes(sq::exec::seq, q, steps_per::row, x, steps, codes, offsets);
  std::vector<std::uint8_t> packed(sq::packed_bytes(rows, cols, 4));
  sq::pack_codes(4, codes, packed);
  row_major_f back(rows, cols);
  sq::dequantize(sq::exec::seq, q, steps_per::row, packed, steps, back, offsets);
  for (Eigen::Index i = 0; i < rows; ++i) {
    for (Eigen::Index j = 0; j < cols; ++j) {
      const long code = reference_code(x(i, j) - offsets(i), steps(i), g);
      CHECK(static_cast<long>(codes(i, j)) == code);
      // s * code + b, rounded once (fma) or twice: the build decides (core/math.hpp's fma).
      const float level = static_cast<float>(code);
      CHECK((y(i, j) == std::fma(steps(i), level, offsets(i)) || y(i, j) == steps(i) * level + offsets(i)));
      CHECK(std::bit_cast<std::uint32_t>(back(i, j)) == std::bit_cast<std::uint32_t>(y(i, j)));
    }
  }

  // Codes are element-wise: a column-major x gives column-major codes, steps per row.
  const col_major_f xc = x;
  col_major_codes codes_c(rows, cols);
  sq::quantize_to_codes(sq::exec::seq, q, steps_per::row, xc, steps, codes_c);
  for (Eigen::Index i = 0; i < rows; ++i) {
    for (Eigen::Index j = 0; j < cols; ++j) {
      CHECK(static_cast<long>(codes_c(i, j)) == reference_code(xc(i, j), steps(i), g));
    }
  }
  // A column-major matrix of one column is in row order: one code per packed row.
  const col_major_codes column = codes_c.col(2);
  std::vector<std::uint8_t> column_packed(sq::packed_bytes(rows, 1, 4));
  sq::pack_codes(4, column, column_packed);
  for (Eigen::Index i = 0; i < rows; ++i) {
    CHECK(reference_field(column_packed, 1, static_cast<std::size_t>(i), 0, 4, true) == codes_c(i, 2));
  }
}

TEST_CASE("export: Eigen bad input names the argument and writes nothing") {
  const sq::grid g = sq::signed_grid(2);
  const export_quantizer q{g, sq::ste{}};
  const row_major_f x = random_matrix<row_major_f>(4, 7, 31);
  const Eigen::VectorXf steps = positive_steps(4, 32);
  row_major_codes<std::int8_t> codes = row_major_codes<std::int8_t>::Constant(4, 7, 1);
  std::vector<std::uint8_t> packed(sq::packed_bytes(4, 7, 2), 0xa5);
  row_major_f y = row_major_f::Constant(4, 7, 9.0f);

  // quantize_to_codes: shapes, step count, code type.
  row_major_codes<std::int8_t> short_codes = row_major_codes<std::int8_t>::Constant(3, 7, 1);
  CHECK(error_of([&] { sq::quantize_to_codes(sq::exec::seq, q, steps_per::row, x, steps, short_codes); }) ==
        "stableqat::quantize_to_codes: codes.rows() = 3 differs from x.rows() = 4");
  const Eigen::VectorXf three_steps = steps.head(3);
  CHECK(contains(error_of([&] { sq::quantize_to_codes(sq::exec::seq, q, steps_per::row, x, three_steps, codes); }),
                 "stableqat::quantize_to_codes: steps.size() = 3 differs from the 4 step(s) steps_per::row"));
  CHECK(contains(error_of([&] {
                   sq::quantize_to_codes(sq::exec::seq, q, steps_per::row, x, steps, codes, Eigen::VectorXf(2));
                 }),
                 "stableqat::quantize_to_codes: offsets.size() = 2 differs"));
  row_major_codes<std::uint8_t> unsigned_codes(4, 7);
  CHECK(contains(error_of([&] { sq::quantize_to_codes(sq::exec::seq, q, steps_per::row, x, steps, unsigned_codes); }),
                 "stableqat::quantize_to_codes: grid.qmin() = -2 needs signed"));
  CHECK((codes.array() == 1).all());
  CHECK((short_codes.array() == 1).all());

  // pack / unpack: packed size, codes outside the field, column-major matrices.
  std::vector<std::uint8_t> small(packed.size() - 1, 0xa5);
  CHECK(error_of([&] { sq::pack_codes(2, codes, small); }) ==
        "stableqat::pack_codes: packed.size() = 7 differs from packed_bytes(4, 7, 2) = 8");
  codes(1, 2) = 2;
  CHECK(error_of([&] { sq::pack_codes(2, codes, packed); }) ==
        "stableqat::pack_codes: codes[9] = 2 does not fit a 2-bit field [-2, 1]");
  CHECK(error_of([&] { sq::pack_codes(3, codes, packed); }) ==
        "stableqat::pack_codes: bits = 3 is not a packable field width (2, 4, 8 or 16)");
  const col_major_codes column_major = col_major_codes::Zero(4, 7);
  CHECK(contains(error_of([&] { sq::pack_codes(2, column_major, packed); }),
                 "stableqat::pack_codes: codes.cols() = 7 columns in a column-major matrix with 4 rows"));
  col_major_codes column_major_out(4, 7);
  CHECK(contains(error_of([&] { sq::unpack_codes(2, packed, column_major_out); }),
                 "stableqat::unpack_codes: codes.cols() = 7 columns in a column-major matrix"));
  CHECK(error_of([&] { sq::unpack_codes(2, small, codes); }) ==
        "stableqat::unpack_codes: packed.size() = 7 differs from packed_bytes(4, 7, 2) = 8");
  row_major_codes<std::int8_t> no_cols(4, 0);
  CHECK(error_of([&] { sq::pack_codes(2, no_cols, packed); }) ==
        "stableqat::pack_codes: codes.cols() = 0 must be positive: a packed row needs a length");
  CHECK(std::all_of(packed.begin(), packed.end(), [](std::uint8_t b) { return b == 0xa5; }));

  // dequantize: packed size, step and offset counts, column-major y.
  std::vector<std::uint8_t> valid(packed.size(), 0);
  CHECK(error_of([&] { sq::dequantize(sq::exec::seq, q, steps_per::row, small, steps, y); }) ==
        "stableqat::dequantize: packed.size() = 7 differs from packed_bytes(4, 7, 2) = 8");
  CHECK(contains(error_of([&] { sq::dequantize(sq::exec::seq, q, steps_per::column, valid, steps, y); }),
                 "stableqat::dequantize: steps.size() = 4 differs from the 7 step(s) steps_per::column"));
  const Eigen::VectorXf two_offsets = steps.head(2);
  CHECK(contains(error_of([&] { sq::dequantize(sq::exec::seq, q, steps_per::row, valid, steps, y, two_offsets); }),
                 "stableqat::dequantize: offsets.size() = 2 differs"));
  col_major_f y_column_major(4, 7);
  CHECK(contains(error_of([&] { sq::dequantize(sq::exec::seq, q, steps_per::row, valid, steps, y_column_major); }),
                 "stableqat::dequantize: y.cols() = 7 columns in a column-major matrix"));
  CHECK((y.array() == 9.0f).all());
}

TEST_CASE("export: worked Eigen example of docs/export.md") {
  using matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using code_matrix = Eigen::Matrix<std::int8_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const auto per_row = sq::eigen::steps_per::row;
  sq::quantizer<float> q{sq::signed_grid(2), sq::ste{}};
  const auto policy = sq::exec::seq;
  matrix W(2, 3), Wq(2, 3), fq(2, 3);
  W << 0.30f, -0.05f, -0.26f, 0.11f, 0.74f, -0.90f;
  Eigen::VectorXf steps(2);
  steps << 0.25f, 0.5f;
  code_matrix codes(2, 3);
  sq::quantize_to_codes(policy, q, per_row, W, steps, codes);
  code_matrix expected_codes(2, 3);
  expected_codes << 1, 0, -1, 0, 1, -2;
  CHECK(codes == expected_codes);
  std::vector<std::uint8_t> packed(sq::packed_bytes(2, 3, sq::code_bits(q.grid())));
  REQUIRE(packed.size() == 2);
  sq::pack_codes(2, codes, packed);
  CHECK(packed[0] == 0x31);  // fields 01 | 00 | 11, element 0 in the low bits
  CHECK(packed[1] == 0x24);  // fields 00 | 01 | 10
  sq::dequantize(policy, q, per_row, packed, steps, Wq);
  matrix expected(2, 3);
  expected << 0.25f, 0.0f, -0.25f, 0.0f, 0.5f, -1.0f;
  CHECK(Wq == expected);
  CHECK(!std::signbit(Wq(0, 1)));
  sq::fake_quantize(policy, q, per_row, W, steps, fq);
  CHECK(fq == Wq);
  CHECK(std::signbit(fq(0, 1)));  // -0 from fake_quantize, +0 after export
}
