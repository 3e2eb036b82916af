// exec::simd and exec::par against exec::seq, the scalar reference.
//
// Contract (docs/math.md, DESIGN.md section 4), checked on every case:
//  - forward: the same bits as seq (NaN: NaN);
//  - dx: within 2 ulp of seq, the very same bits for STE;
//  - dsteps / doffsets: within 1e-6 * grad_scale * sum|terms| of the exact sum
//    of the element terms (accumulated here in long double, independently of
//    any backend), NaN when a term is NaN;
//  - par with 1, 2 and 4 threads: the same dsteps bits as each other (and as
//    simd, which runs the same chunk plan).
// Cases cover every tail length 0 .. 2*lanes+1, every grid kind, every layout,
// offsets, chunk boundaries, the per_column pattern paths, streaming stores,
// misaligned and aliased buffers, special values, > 10^6 random values and
// the 16M-float accumulation bound.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include <stableqat/exec/par.hpp>
#include <stableqat/exec/simd.hpp>
#include <stableqat/stableqat.hpp>

#include "reference.hpp"

namespace sq = stableqat;

namespace {

template <class T>
constexpr std::size_t lanes = sq::exec::simd_detail::batch<T>::size;

using f1 = sq::fourier_surrogate<1>;
using f3 = sq::fourier_surrogate<3>;

// ---------------------------------------------------------------------------
// Comparisons
// ---------------------------------------------------------------------------

using reference::same_bits;
using reference::ulp_distance;

// ---------------------------------------------------------------------------
// Problems
// ---------------------------------------------------------------------------

template <class T>
struct problem {
  std::string name;
  sq::grid grid;
  sq::step_layout layout;
  std::vector<T> x, dy, steps, offsets;
  bool with_offsets = false;
  std::size_t misalign = 0;  // buffers start this many elements past an allocation
};

template <class T>
std::string describe(problem<T> const& p) {
  return p.name + " [" + (sizeof(T) == 4 ? "float" : "double") + ", grid " + std::to_string(p.grid.qmin()) + ".." +
         std::to_string(p.grid.qmax()) + (p.grid.is_binary() ? " binary" : "") + ", " + p.layout.name() + "(" +
         std::to_string(p.layout.extent()) + "), numel " + std::to_string(p.x.size()) +
         (p.with_offsets ? ", offsets" : "") + "]";
}

/// Special inputs in units of the step (v = (x - b) / s): ties, one ulp either
/// side of ties, the grid edges, signed zeros, far outside, infinities.
template <class T>
std::vector<T> special_levels(sq::grid const& g) {
  const T lo = static_cast<T>(g.qmin()), hi = static_cast<T>(g.qmax());
  std::vector<T> v = {T(0), -T(0), lo, hi, lo - T(0.5), hi + T(0.5), T(0.5), -T(0.5), T(1.5), -T(1.5), T(2.5),
                      lo - T(1), hi + T(1), T(0.25), T(-0.75), std::numeric_limits<T>::infinity(),
                      -std::numeric_limits<T>::infinity(), T(1e30), T(-1e30)};
  for (T tie : {T(0.5), T(-0.5), T(1.5), T(-1.5), lo + T(0.5), hi - T(0.5), T(2.5)}) {
    v.push_back(std::nextafter(tie, T(10)));
    v.push_back(std::nextafter(tie, T(-10)));
  }
  v.push_back(std::nextafter(lo, T(-10)));
  v.push_back(std::nextafter(hi, T(10)));
  v.push_back(std::numeric_limits<T>::denorm_min());
  v.push_back(std::numeric_limits<T>::min());
  return v;
}

/// numel random elements: v uniform on [qmin - 2, qmax + 2] (so about a third
/// of them clamp on small grids), dy uniform on [-1, 1] with some exact zeros;
/// `special` > 0 mixes in that fraction of special_levels (no NaN here).
template <class T>
problem<T> random_problem(std::string name, std::mt19937_64& rng, sq::grid g, sq::step_layout layout,
                          std::size_t numel, bool with_offsets, double special = 0.0) {
  problem<T> p{std::move(name), g, layout, {}, {}, {}, {}, with_offsets, 0};
  const std::size_t count = numel == 0 ? 1 : layout.step_count(numel);
  std::uniform_real_distribution<double> step_dist(0.05, 2.0), unit(-1.0, 1.0), pick(0.0, 1.0);
  for (std::size_t k = 0; k < count; ++k) {
    p.steps.push_back(static_cast<T>(step_dist(rng)));
    if (with_offsets) p.offsets.push_back(static_cast<T>(unit(rng)));
  }
  const auto specials = special_levels<T>(g);
  std::uniform_real_distribution<double> level_dist(g.qmin() - 2.0, g.qmax() + 2.0);
  std::uniform_int_distribution<std::size_t> special_index(0, specials.size() - 1);
  for (std::size_t i = 0; i < numel; ++i) {
    const std::size_t k = layout.step_index(i);
    const T v = pick(rng) < special ? specials[special_index(rng)] : static_cast<T>(level_dist(rng));
    const T b = with_offsets ? p.offsets[k] : T(0);
    p.x.push_back(v * p.steps[k] + b);
    p.dy.push_back(pick(rng) < 0.05 ? T(0) : static_cast<T>(unit(rng)));
  }
  return p;
}

// ---------------------------------------------------------------------------
// Running a backend
// ---------------------------------------------------------------------------

template <class T>
struct outputs {
  std::vector<T> y, dx, dsteps, doffsets;
};

/// Forward and backward (grad_scale 1) of p on `policy`, on buffers offset by
/// p.misalign elements; `alias` writes y over a copy of x and dx over a copy of dy.
/// n elements starting p.misalign elements past a 64-byte boundary of `storage`.
template <class T>
std::span<T> placed(std::vector<T>& storage, std::size_t n, std::size_t misalign) {
  storage.assign(n + misalign + 64 / sizeof(T), T(0));
  const auto address = reinterpret_cast<std::uintptr_t>(storage.data());
  const std::size_t to_boundary = (64 - address % 64) % 64 / sizeof(T);
  return {storage.data() + to_boundary + misalign, n};
}

template <class T, class S, class Policy>
outputs<T> run(Policy const& policy, sq::quantizer<T, S> const& q, problem<T> const& p, bool alias = false) {
  const std::size_t n = p.x.size(), m = p.misalign;
  std::vector<T> x, dy, y, dx;
  const std::span<T> xs = placed(x, n, m), dys = placed(dy, n, m);
  std::copy(p.x.begin(), p.x.end(), xs.begin());
  std::copy(p.dy.begin(), p.dy.end(), dys.begin());
  const std::span<T> ys = alias ? xs : placed(y, n, m);
  const std::span<T> dxs = alias ? dys : placed(dx, n, m);
  outputs<T> out;
  out.dsteps.assign(p.steps.size(), T(-7));
  out.doffsets.assign(p.offsets.size(), T(-7));
  // Backward first: with aliasing, forward overwrites x.
  if (p.with_offsets) {
    sq::fake_quantize_backward(policy, q, xs, p.steps, dys, dxs, out.dsteps, p.offsets, out.doffsets, 1.0);
  } else {
    sq::fake_quantize_backward(policy, q, xs, p.steps, dys, dxs, out.dsteps, 1.0);
  }
  out.dx.assign(dxs.begin(), dxs.end());
  if (p.with_offsets) {
    sq::fake_quantize(policy, q, xs, p.steps, ys, p.offsets);
  } else {
    sq::fake_quantize(policy, q, xs, p.steps, ys);
  }
  out.y.assign(ys.begin(), ys.end());
  return out;
}

/// Exact sums (long double) of the step and offset terms of each step, and of
/// their magnitudes, from the scalar element formula.
struct reference_sums {
  std::vector<long double> step, step_abs, offset, offset_abs;
};

template <class T, class S>
reference_sums exact_sums(sq::quantizer<T, S> const& q, problem<T> const& p) {
  reference_sums r;
  const std::size_t count = p.steps.size();
  r.step.assign(count, 0.0L);
  r.step_abs.assign(count, 0.0L);
  r.offset.assign(count, 0.0L);
  r.offset_abs.assign(count, 0.0L);
  sq::visit_levels<T>(q.grid(), [&](auto const& levels) {
    for (std::size_t i = 0; i < p.x.size(); ++i) {
      const std::size_t k = q.layout().step_index(i);
      const T inv = T(1) / p.steps[k];
      const auto g = p.with_offsets
                         ? sq::fake_quantize_backward_element(p.x[i], p.dy[i], inv, p.offsets[k], levels, q.surrogate())
                         : sq::fake_quantize_backward_element(p.x[i], p.dy[i], inv, sq::no_offset{}, levels,
                                                              q.surrogate());
      r.step[k] += static_cast<long double>(g.dstep);
      r.step_abs[k] += std::fabs(static_cast<long double>(g.dstep));
      r.offset[k] += static_cast<long double>(g.doffset);
      r.offset_abs[k] += std::fabs(static_cast<long double>(g.doffset));
    }
  });
  return r;
}

template <class T>
void check_sums(std::vector<T> const& got, std::vector<long double> const& exact,
                std::vector<long double> const& magnitude, std::string const& what) {
  for (std::size_t k = 0; k < got.size(); ++k) {
    if (std::isnan(exact[k])) {
      INFO(what << "[" << k << "] = " << got[k] << ", expected NaN");
      CHECK(std::isnan(got[k]));
      continue;
    }
    const long double error = std::fabs(static_cast<long double>(got[k]) - exact[k]);
    INFO(what << "[" << k << "] = " << got[k] << ", exact " << static_cast<double>(exact[k]) << ", error "
              << static_cast<double>(error) << " > 1e-6 * sum|terms| = " << static_cast<double>(1e-6L * magnitude[k]));
    CHECK(error <= 1e-6L * magnitude[k] + static_cast<long double>(std::numeric_limits<T>::denorm_min()));
  }
}

struct tally {
  double max_dx_ulp = 0.0;
};

template <class T, class S>
void compare_to_seq(outputs<T> const& want, outputs<T> const& got, reference_sums const& exact, problem<T> const& p,
                    std::string const& backend, tally& t) {
  INFO(backend << " on " << describe(p));
  REQUIRE(got.y.size() == want.y.size());
  std::size_t forward_mismatches = 0, dx_mismatches = 0, first_forward = 0, first_dx = 0;
  for (std::size_t i = 0; i < want.y.size(); ++i) {
    if (!same_bits(got.y[i], want.y[i]) && forward_mismatches++ == 0) first_forward = i;
    const double ulps = ulp_distance(got.dx[i], want.dx[i]);
    t.max_dx_ulp = std::max(t.max_dx_ulp, ulps);
    const bool dx_ok = S::harmonics == 0 ? same_bits(got.dx[i], want.dx[i]) : ulps <= 2.0;
    if (!dx_ok && dx_mismatches++ == 0) first_dx = i;
  }
  INFO("first forward mismatch at " << first_forward << ": x = " << p.x[first_forward] << ", y = "
                                    << got.y[first_forward] << ", seq " << want.y[first_forward]);
  CHECK(forward_mismatches == 0);
  INFO("first dx mismatch at " << first_dx << ": x = " << p.x[first_dx] << ", dx = " << got.dx[first_dx] << ", seq "
                               << want.dx[first_dx]);
  CHECK(dx_mismatches == 0);
  check_sums(got.dsteps, exact.step, exact.step_abs, "dsteps");
  if (p.with_offsets) check_sums(got.doffsets, exact.offset, exact.offset_abs, "doffsets");
}

template <class T>
void check_same_sums(outputs<T> const& a, outputs<T> const& b, std::string const& what) {
  for (std::size_t k = 0; k < a.dsteps.size(); ++k) {
    INFO(what << ": dsteps[" << k << "] " << a.dsteps[k] << " vs " << b.dsteps[k]);
    CHECK(same_bits(a.dsteps[k], b.dsteps[k]));
  }
  for (std::size_t k = 0; k < a.doffsets.size(); ++k) {
    INFO(what << ": doffsets[" << k << "] " << a.doffsets[k] << " vs " << b.doffsets[k]);
    CHECK(same_bits(a.doffsets[k], b.doffsets[k]));
  }
}

/// The whole contract for one problem: simd and par(1, 2, 4) against seq and
/// the exact sums; par's sums identical for every thread count and to simd's.
template <class T, class S>
void check_problem(problem<T> const& p, S const& surrogate, tally& t, bool alias = false) {
  const sq::quantizer<T, S> q{p.grid, surrogate, p.layout};
  const reference_sums exact = exact_sums(q, p);
  const outputs<T> want = run(sq::exec::seq, q, p);
  check_sums(want.dsteps, exact.step, exact.step_abs, "seq dsteps (sanity)");
  const outputs<T> simd = run(sq::exec::simd, q, p, alias);
  compare_to_seq<T, S>(want, simd, exact, p, alias ? "simd (aliased)" : "simd", t);
  for (int threads : {1, 2, 4}) {
    const outputs<T> par = run(sq::exec::par.with_threads(threads), q, p, alias);
    const std::string name = "par(" + std::to_string(threads) + ")" + (alias ? " (aliased)" : "") + " on " + describe(p);
    compare_to_seq<T, S>(want, par, exact, p, name, t);
    check_same_sums(simd, par, name + " sums vs simd sums");
  }
}

template <class T>
std::vector<sq::grid> all_grids() {
  return {sq::signed_grid(1), sq::signed_grid(2), sq::signed_grid(4), sq::signed_grid(8), sq::signed_grid(16),
          sq::unsigned_grid(1), sq::unsigned_grid(4), sq::ternary_grid(), sq::integer_grid(-3, 5)};
}

/// Runs f(surrogate) for STE, the paper's one-harmonic surrogate and three
/// harmonics, with floats evaluated in float and (near the limit) in double.
template <class F>
void for_each_surrogate(F&& f) {
  f(sq::ste{});
  f(f1{0.21});
  f(f3::from_coefficients({0.2, -0.02, 0.005}));
  f(f3{0.235});
}

}  // namespace

TEST_CASE_TEMPLATE("simd/par: every tail length 0 .. 2*lanes+1, rows and columns", T, float, double) {
  std::mt19937_64 rng(1);
  tally t;
  for_each_surrogate([&](auto const& s) {
    for (sq::grid g : {sq::signed_grid(4), sq::signed_grid(1)}) {
      for (bool offsets : {false, true}) {
        for (std::size_t n = 1; n <= 2 * lanes<T> + 1; ++n) {
          check_problem(random_problem<T>("per_tensor tail", rng, g, sq::per_tensor(), n, offsets, 0.2), s, t);
          check_problem(random_problem<T>("per_channel row", rng, g, sq::per_channel(n), 3 * n, offsets, 0.2), s, t);
          check_problem(random_problem<T>("per_column", rng, g, sq::per_column(n), 5 * n, offsets, 0.2), s, t);
        }
      }
    }
  });
  // n = 0 never reaches a backend; the front-end zeroes the step gradients.
  const sq::quantizer<T> q{sq::signed_grid(4)};
  std::vector<T> none, steps{T(1)}, dsteps{T(5)};
  sq::fake_quantize(sq::exec::simd, q, none, steps, none);
  sq::fake_quantize_backward(sq::exec::par, q, none, steps, none, none, dsteps);
  CHECK(dsteps[0] == T(0));
  MESSAGE("largest dx difference from seq: " << t.max_dx_ulp << " ulp");
}

TEST_CASE_TEMPLATE("simd/par: every grid and layout, with and without offsets", T, float, double) {
  std::mt19937_64 rng(2);
  tally t;
  constexpr std::size_t L = lanes<T>;
  const std::vector<std::pair<sq::step_layout, std::size_t>> layouts = {
      {sq::per_tensor(), 1000},          {sq::per_channel(37), 37 * 20},   {sq::per_group(L), L * 9},
      {sq::per_group(5), 5 * 13},        {sq::per_column(3), 3 * 50},      {sq::per_column(L + 1), (L + 1) * 9},
      {sq::per_column(600), 600 * 5},    {sq::per_column(100), 100 * 7},   {sq::per_column(1), 77}};
  for_each_surrogate([&](auto const& s) {
    for (sq::grid g : all_grids<T>()) {
      for (auto const& [layout, numel] : layouts) {
        for (bool offsets : {false, true}) {
          check_problem(random_problem<T>("grid x layout", rng, g, layout, numel, offsets, 0.1), s, t);
        }
      }
    }
  });
  MESSAGE("largest dx difference from seq: " << t.max_dx_ulp << " ulp");
}

TEST_CASE_TEMPLATE("simd/par: special values, huge and tiny steps, NaN reaches the step gradient", T, float,
                   double) {
  tally t;
  const T tiny = sizeof(T) == 4 ? T(1e-30) : T(1e-300);
  const T huge = sizeof(T) == 4 ? T(1e30) : T(1e300);
  for (sq::grid g : {sq::signed_grid(2), sq::signed_grid(1), sq::unsigned_grid(4), sq::signed_grid(8)}) {
    const auto specials = special_levels<T>(g);
    // One row per step; each row holds every special level, a NaN, and
    // repeats so that the specials land in batches and in tails.
    problem<T> p{"special values", g, sq::per_channel(3 * specials.size() + 1), {}, {}, {}, {}, false, 0};
    for (T step : {tiny, huge, T(0.1), T(3), T(1)}) {
      p.steps.push_back(step);
      for (int repeat = 0; repeat < 3; ++repeat) {
        for (std::size_t j = 0; j < specials.size(); ++j) {
          p.x.push_back(specials[j] * step);
          p.dy.push_back(T(0.25) + T(j % 5) * T(0.5));
        }
      }
      p.x.push_back(std::numeric_limits<T>::quiet_NaN());
      p.dy.push_back(T(1));
    }
    // A last row without NaN, where the sums must stay finite.
    p.steps.push_back(T(0.5));
    for (std::size_t j = 0; j < p.layout.extent(); ++j) {
      p.x.push_back(specials[j % specials.size()] * T(0.5));
      p.dy.push_back(T(-0.5));
    }
    for_each_surrogate([&](auto const& s) {
      check_problem(p, s, t);
      using S = std::remove_cvref_t<decltype(s)>;
      const sq::quantizer<T, S> q{g, s, p.layout};
      const outputs<T> out = run(sq::exec::simd, q, p);
      for (std::size_t k = 0; k + 1 < p.steps.size(); ++k) CHECK(std::isnan(out.dsteps[k]));
      CHECK(std::isfinite(out.dsteps.back()));
      const std::size_t nan_index = p.layout.extent() - 1;
      CHECK(std::isnan(out.y[nan_index]));
      CHECK(same_bits(out.dx[nan_index], T(0)));
    });
  }
  MESSAGE("largest dx difference from seq: " << t.max_dx_ulp << " ulp");
}

TEST_CASE_TEMPLATE("simd/par: more than 10^6 random values per layout", T, float, double) {
  std::mt19937_64 rng(3);
  tally t;
  for_each_surrogate([&](auto const& s) {
    check_problem(random_problem<T>("1M per_tensor", rng, sq::signed_grid(4), sq::per_tensor(), (1u << 20) + 37,
                                    false, 0.01),
                  s, t);
    check_problem(random_problem<T>("1M per_channel", rng, sq::signed_grid(2), sq::per_channel(1000), 1000 * 1049,
                                    true, 0.01),
                  s, t);
    // 300 channels x 3500 rows: the per_column reduction over row ranges.
    check_problem(random_problem<T>("1M per_column", rng, sq::unsigned_grid(4), sq::per_column(300), 300 * 3500,
                                    false, 0.01),
                  s, t);
  });
  MESSAGE("largest dx difference from seq: " << t.max_dx_ulp << " ulp");
}

TEST_CASE_TEMPLATE("simd/par: chunk boundaries and the per_column pattern", T, float, double) {
  std::mt19937_64 rng(4);
  tally t;
  constexpr std::size_t C = sq::exec::simd_detail::chunk_elements;
  const auto s = f1{0.21};
  const sq::grid g = sq::signed_grid(3);
  for (std::size_t n : {C - 1, C, C + 1, 2 * C + 17}) {
    check_problem(random_problem<T>("per_tensor around chunks", rng, g, sq::per_tensor(), n, true), s, t);
  }
  // Rows cut by chunk boundaries (1000 does not divide 65536), rows longer than a chunk.
  check_problem(random_problem<T>("rows across chunks", rng, g, sq::per_channel(1000), 1000 * 200, true), s, t);
  check_problem(random_problem<T>("rows longer than chunks", rng, g, sq::per_group(C + 3), (C + 3) * 3, false), s, t);
  // per_column: 3 channels (16-row pattern) over many row ranges; 2 channels;
  // one row of many channels (several column blocks per chunk).
  check_problem(random_problem<T>("3 channels, many rows", rng, g, sq::per_column(3), 3 * 40001, true), s, t);
  check_problem(random_problem<T>("2 channels", rng, g, sq::per_column(2), 2 * 70001, false), s, t);
  check_problem(random_problem<T>("one wide row", rng, g, sq::per_column(3 * C + 5), 3 * C + 5, true), s, t);
  check_problem(random_problem<T>("wide rows", rng, g, sq::per_column(1000), 1000 * 300, false), s, t);
  MESSAGE("largest dx difference from seq: " << t.max_dx_ulp << " ulp");
}

TEST_CASE_TEMPLATE("simd/par: streaming stores, misaligned and aliased buffers", T, float, double) {
  std::mt19937_64 rng(5);
  tally t;
  // Outputs above STABLEQAT_STREAMING_STORE_MIN_BYTES take the streaming path.
  const std::size_t big = sq::exec::simd_detail::streaming_store_min_bytes / sizeof(T) + 3000;
  const std::size_t rows = big / 1000 + 1;
  auto p = random_problem<T>("streaming per_channel", rng, sq::signed_grid(4), sq::per_channel(1000), 1000 * rows,
                             true);
  const sq::quantizer<T, f1> q{p.grid, f1{0.21}, p.layout};
  const outputs<T> aligned = run(sq::exec::simd, q, p);
  for (std::size_t misalign : {0u, 1u, 3u}) {
    p.misalign = misalign;
    check_problem(p, f1{0.21}, t);
    // Which elements share a batch depends on element indices only: the sums
    // have the same bits whether or not the buffers allow streaming stores.
    check_same_sums(aligned, run(sq::exec::par, q, p), "misaligned by " + std::to_string(misalign));
  }
  auto wide = random_problem<T>("streaming per_column", rng, sq::signed_grid(4), sq::per_column(129), 129 * (big / 129 + 1),
                                true);
  wide.misalign = 1;
  check_problem(wide, sq::ste{}, t);
  // y == x and dx == dy, small (tails) and large (streaming).
  for (std::size_t n : {std::size_t{1}, 2 * lanes<T> + 1, std::size_t{1000}, big}) {
    auto p = random_problem<T>("aliased", rng, sq::signed_grid(2), sq::per_tensor(), n, false, 0.1);
    check_problem(p, f1{0.21}, t, true);
    p.misalign = 1;
    check_problem(p, sq::ste{}, t, true);
  }
  MESSAGE("largest dx difference from seq: " << t.max_dx_ulp << " ulp");
}

TEST_CASE("simd/par: dsteps over 16M floats within 1e-6 of sum|terms|, identical for 1, 2 and 4 threads") {
  std::mt19937_64 rng(6);
  const std::size_t n = std::size_t{1} << 24;
  const f1 s{0.21};
  for (sq::step_layout layout : {sq::per_tensor(), sq::per_channel(n / 4)}) {
    auto p = random_problem<float>("16M", rng, sq::signed_grid(4), layout, n, true);
    const sq::quantizer<float, f1> q{p.grid, s, p.layout};
    const reference_sums exact = exact_sums(q, p);
    const outputs<float> simd = run(sq::exec::simd, q, p);
    INFO(describe(p));
    check_sums(simd.dsteps, exact.step, exact.step_abs, "simd dsteps");
    check_sums(simd.doffsets, exact.offset, exact.offset_abs, "simd doffsets");
    for (int threads : {1, 2, 4}) {
      const outputs<float> par = run(sq::exec::par.with_threads(threads), q, p);
      check_same_sums(simd, par, "par(" + std::to_string(threads) + ")");
      CHECK(par.dx == simd.dx);
    }
    // The bound is not vacuous: the terms really cancel, and float summation
    // in memory order would miss it by far.
    float naive = 0.0f;
    for (std::size_t i = 0; i < n; ++i) {
      const auto g = sq::fake_quantize_backward_element(p.x[i], p.dy[i], 1.0f / p.steps[layout.step_index(i)],
                                                        p.offsets[layout.step_index(i)], sq::uniform_levels<float>{-8, 7},
                                                        s);
      if (layout.step_index(i) == 0) naive += g.dstep;
    }
    MESSAGE(describe(p) << ": simd error " << static_cast<double>(std::fabs(simd.dsteps[0] - exact.step[0]) / exact.step_abs[0])
                        << " * sum|terms|, naive float sum error "
                        << static_cast<double>(std::fabs(naive - exact.step[0]) / exact.step_abs[0]) << " * sum|terms|");
  }
}

TEST_CASE("exec::par rejects a negative thread count; 0 means OpenMP's default") {
  const sq::quantizer<float> q{sq::signed_grid(4)};
  std::vector<float> x(10, 1.0f), y(10), steps{1.0f};
  CHECK_THROWS_AS(sq::fake_quantize(sq::exec::par.with_threads(-1), q, x, steps, y), std::invalid_argument);
  CHECK_NOTHROW(sq::fake_quantize(sq::exec::par.with_threads(0), q, x, steps, y));
  CHECK(y[0] == 1.0f);
}

TEST_CASE("widen_traits: float batches evaluate fourier_surrogate<3> lane by lane like the scalar path") {
  using B = sq::exec::simd_detail::batch<float>;
#if defined(__SSE2__) || defined(_M_X64)
  CHECK(sq::exec::simd_detail::has_register_widening<sq::exec::simd_detail::arch>);
#endif
  const f3 s{0.235};  // close to the validity limit: floats are evaluated in double (widened)
  CHECK_FALSE(s.evaluates_float_in_float());
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<float> r_dist(-0.5f, 0.5f);
  alignas(64) float r[B::size], g[B::size];
  double worst = 0.0;
  for (int trial = 0; trial < 20000; ++trial) {
    for (auto& v : r) v = r_dist(rng);
    if (trial == 0) {
      r[0] = 0.5f;
      r[1] = -0.5f;
      r[2] = 0.0f;
      r[3] = -0.0f;
    }
    s.derivative(B::load_aligned(r)).store_aligned(g);
    for (std::size_t i = 0; i < B::size; ++i) worst = std::max(worst, ulp_distance(g[i], s.derivative(r[i])));
  }
  CHECK(worst <= 1.0);
  // The register halves and the generic (memory) version agree on lane order.
  const auto halves = sq::exec::simd_detail::to_double_halves(B::load_aligned(r));
  alignas(64) double lo[B::size / 2], hi[B::size / 2];
  halves.lo.store_aligned(lo);
  halves.hi.store_aligned(hi);
  for (std::size_t i = 0; i < B::size / 2; ++i) {
    CHECK(lo[i] == static_cast<double>(r[i]));
    CHECK(hi[i] == static_cast<double>(r[i + B::size / 2]));
  }
  alignas(64) float back[B::size];
  sq::exec::simd_detail::from_double_halves(halves.lo, halves.hi).store_aligned(back);
  for (std::size_t i = 0; i < B::size; ++i) CHECK(same_bits(back[i], r[i]));
}
