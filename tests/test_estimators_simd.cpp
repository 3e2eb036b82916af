// EWGS and the stretched elastic grid (SEQ) on exec::simd and exec::par
// against exec::seq: they need no new reduction, so the existing SIMD loops
// run them through the per-element templates. Forward bit-identical, dx within
// 2 ulp, step gradients within 1e-6 of sum|terms|, par identical for any
// thread count. DSQ (own rounding and band, learnable alpha) too: d alpha
// within 1e-6 of sum|terms| of seq, identical on simd and par for 1..4 threads.
#include <doctest/doctest.h>

#include <cmath>
#include <algorithm>
#include <cstddef>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include <stableqat/stableqat.hpp>

#include "reference.hpp"

namespace sq = stableqat;

namespace {

template <class T, class S>
void check_against_seq(sq::quantizer<T, S> const& q, std::size_t numel, std::string const& name) {
  CAPTURE(name);
  const std::size_t steps_count = q.layout().step_count(numel);
  std::mt19937 rng(17);
  std::uniform_real_distribution<double> xs(-1.4, 1.4), dys(-2.0, 2.0), ss(0.5, 1.5);
  std::vector<T> x(numel), dy(numel), steps(steps_count), offsets(steps_count);
  for (std::size_t i = 0; i < numel; ++i) {
    x[i] = static_cast<T>(xs(rng));
    dy[i] = static_cast<T>(dys(rng));
  }
  for (std::size_t k = 0; k < steps_count; ++k) {
    steps[k] = static_cast<T>(ss(rng));
    offsets[k] = static_cast<T>(0.1 * xs(rng));
  }
  x[0] = std::numeric_limits<T>::quiet_NaN();
  x[1] = std::numeric_limits<T>::infinity();
  x[2] = -std::numeric_limits<T>::infinity();
  // Forward: identical bits.
  std::vector<T> y_seq(numel), y_simd(numel), y_par(numel);
  sq::fake_quantize(sq::exec::seq, q, x, steps, y_seq, offsets);
  sq::fake_quantize(sq::exec::simd, q, x, steps, y_simd, offsets);
  sq::fake_quantize(sq::exec::par.with_threads(2), q, x, steps, y_par, offsets);
  std::size_t forward_mismatch = 0;
  for (std::size_t i = 0; i < numel; ++i) {
    forward_mismatch += !reference::same_bits(y_seq[i], y_simd[i]) + !reference::same_bits(y_seq[i], y_par[i]);
  }
  CHECK(forward_mismatch == 0);
  // Backward: dx within 2 ulp, sums within 1e-6 of sum|terms| (seq's terms bound them), par deterministic.
  std::vector<T> dx_seq(numel), dx_simd(numel), dx_par(numel), dx_par3(numel);
  std::vector<T> ds_seq(steps_count), ds_simd(steps_count), ds_par(steps_count), ds_par3(steps_count);
  std::vector<T> db_seq(steps_count), db_simd(steps_count), db_par(steps_count), db_par3(steps_count);
  std::vector<T> da_seq(1), da_simd(1), da_par(1), da_par3(1);
  const auto backward = [&](auto const& policy, std::vector<T>& dx, std::vector<T>& ds, std::vector<T>& db,
                            std::vector<T>& da) {
    if constexpr (sq::learnable_surrogate<S>) {
      sq::fake_quantize_backward(policy, q, x, steps, dy, dx, ds, offsets, db, std::span<T>(da), 1.0);
    } else {
      (void)da;
      sq::fake_quantize_backward(policy, q, x, steps, dy, dx, ds, offsets, db, 1.0);
    }
  };
  backward(sq::exec::seq, dx_seq, ds_seq, db_seq, da_seq);
  backward(sq::exec::simd, dx_simd, ds_simd, db_simd, da_simd);
  backward(sq::exec::par.with_threads(2), dx_par, ds_par, db_par, da_par);
  backward(sq::exec::par.with_threads(3), dx_par3, ds_par3, db_par3, da_par3);
  if constexpr (sq::learnable_surrogate<S>) {
    // d alpha: each term |dy| * s * |dL/dalpha| <= |dy| * 1.5 * 20 for alpha >= 0.05.
    long double bound = 0.0L;
    for (std::size_t i = 0; i < numel; ++i) bound += 30.0L * std::fabs(static_cast<long double>(dy[i]));
    CHECK(std::isfinite(da_seq[0]));
    CHECK(std::fabs(static_cast<long double>(da_seq[0]) - da_simd[0]) <= 1e-6L * bound);
    CHECK(reference::same_bits(da_simd[0], da_par[0]));
    CHECK(reference::same_bits(da_par[0], da_par3[0]));
    std::vector<T> dx4(numel), ds4(steps_count), db4(steps_count), da4(1);
    backward(sq::exec::par.with_threads(4), dx4, ds4, db4, da4);
    CHECK(reference::same_bits(da_par[0], da4[0]));
  }
  double worst = 0;
  for (std::size_t i = 0; i < numel; ++i) {
    worst = std::max({worst, reference::ulp_distance(dx_seq[i], dx_simd[i]),
                      reference::ulp_distance(dx_seq[i], dx_par[i])});
  }
  CHECK(worst <= 2);
  // Magnitudes of the step terms: |dy| * (|level| + |v|) <= |dy| * 3 bounds each.
  long double magnitude = 0.0L;
  for (std::size_t i = 0; i < numel; ++i) magnitude += 3.0L * std::fabs(static_cast<long double>(dy[i]));
  for (std::size_t k = 0; k < steps_count; ++k) {
    if (std::isnan(ds_seq[k])) {  // the NaN input's step, on every backend
      CHECK(std::isnan(ds_simd[k]));
      CHECK(std::isnan(ds_par[k]));
      continue;
    }
    CHECK(std::fabs(ds_seq[k] - ds_simd[k]) <= 1e-6L * magnitude);
    CHECK(std::fabs(db_seq[k] - db_simd[k]) <= 1e-6L * magnitude);
    CHECK(reference::same_bits(ds_simd[k], ds_par[k]));
    CHECK(reference::same_bits(ds_par[k], ds_par3[k]));
    CHECK(reference::same_bits(db_par[k], db_par3[k]));
  }
}

template <class T, class S>
void check_layouts(sq::grid g, S const& s, std::string const& name) {
  check_against_seq(sq::quantizer<T, S>{g, s, sq::per_tensor()}, 4099, name + " per_tensor");
  check_against_seq(sq::quantizer<T, S>{g, s, sq::per_channel(67)}, 67 * 41, name + " per_channel");
  check_against_seq(sq::quantizer<T, S>{g, s, sq::per_column(37)}, 37 * 45, name + " per_column");
}

}  // namespace

TEST_CASE_TEMPLATE("EWGS and SEQ on exec::simd and exec::par equal exec::seq", T, float, double) {
  check_layouts<T>(sq::signed_grid(3), sq::ewgs_surrogate{0.2}, "ewgs signed 3-bit");
  check_layouts<T>(sq::stretched_elastic_grid(2), sq::ste{}, "seq 2-bit ste");
  check_layouts<T>(sq::stretched_elastic_ternary_grid(), sq::fourier_surrogate<1>{0.21}, "seq ternary fourier");
  check_layouts<T>(sq::stretched_elastic_grid(2), sq::ewgs_surrogate{0.1}, "seq 2-bit ewgs");
}

TEST_CASE_TEMPLATE("DSQ on exec::simd and exec::par equals exec::seq (forward bits, dx 2 ulp, d alpha)", T, float,
                   double) {
  check_layouts<T>(sq::signed_grid(4), sq::dsq_surrogate{0.2}, "dsq signed 4-bit");
  check_layouts<T>(sq::unsigned_grid(2), sq::dsq_surrogate{0.05}, "dsq unsigned 2-bit");
  // Big enough for several chunks on several threads (thread-count determinism).
  check_against_seq(sq::quantizer<T, sq::dsq_surrogate>{sq::signed_grid(3), sq::dsq_surrogate{0.3}, sq::per_tensor()},
                    (std::size_t{1} << 20) + 3, "dsq per_tensor 1M");
  check_against_seq(sq::quantizer<T, sq::dsq_surrogate>{sq::signed_grid(3), sq::dsq_surrogate{0.3}, sq::per_column(96)},
                    96 * 4001, "dsq per_column 384k");
}

// Hook (d) of dsq_surrogate: exec::simd's loops get the exponential without
// its lower-limit clamp exactly when -2 k |d| >= -k cannot reach the limit
// (k <= 80 in float, 700 in double), and there it must give the clamped
// evaluation's bits, scalar and batch, over all of r in (-1/2, 1/2].
TEST_CASE_TEMPLATE("dsq_surrogate hook (d): the unclamped exponential where chosen, with the clamped one's bits", T,
                   float, double) {
  using batch = xsimd::batch<T>;
  constexpr std::size_t lanes = batch::size;
  const long double limit = sizeof(T) == 4 ? 80.0L : 700.0L;
  // alpha = 2 / (e^k + 1) for k just inside and just outside the limit, and usual alphas.
  const auto alpha_of_k = [](long double k) { return static_cast<double>(2.0L / (std::exp(k) + 1.0L)); };
  const double alphas[] = {0.9, 0.2, 0.05, alpha_of_k(limit - 0.5L), alpha_of_k(limit + 0.5L)};
  std::vector<T> rs;
  for (int i = -2000; i <= 2000; ++i) rs.push_back(static_cast<T>(i) / T(4000));  // (-1/2, 1/2] and 0
  rs.front() = std::nextafter(T(-0.5), T(0));
  rs.insert(rs.end(), {T(-0.0), std::numeric_limits<T>::min(), -std::numeric_limits<T>::min(),
                       std::nextafter(T(0.5), T(0)), std::numeric_limits<T>::quiet_NaN()});
  while (rs.size() % lanes != 0) rs.push_back(T(0.25));
  for (const double alpha : alphas) {
    CAPTURE(alpha);
    const sq::dsq_surrogate s{alpha};
    const bool expect_unclamped = static_cast<long double>(s.sharpness()) <= limit;
    std::size_t mismatch = 0;
    bool unclamped = false;
    s.template visit_branch_free<T>([&](auto const& variant) {
      unclamped = std::is_same_v<std::decay_t<decltype(variant)>, sq::dsq_detail::unclamped_exponential>;
      for (std::size_t i = 0; i < rs.size(); i += lanes) {
        const auto packed = variant.derivative_with_parameters(batch::load_unaligned(rs.data() + i));
        alignas(64) T g[lanes], p[lanes];
        packed.derivative.store_aligned(g);
        packed.parameters[0].store_aligned(p);
        for (std::size_t l = 0; l < lanes; ++l) {
          const auto clamped = s.derivative_with_parameters(rs[i + l]);
          const auto scalar = variant.derivative_with_parameters(rs[i + l]);
          mismatch += !reference::same_bits(clamped.derivative, g[l]) + !reference::same_bits(clamped.parameters[0], p[l]) +
                      !reference::same_bits(clamped.derivative, scalar.derivative) +
                      !reference::same_bits(clamped.parameters[0], scalar.parameters[0]);
        }
      }
      return 0;
    });
    CHECK(unclamped == expect_unclamped);
    CHECK(mismatch == 0);
  }
}

// DSQ's e^(-2y) and e^(-2y) - 1 (core/exp.hpp) against long double over the
// whole range DSQ uses, and a batch against the scalar lane by lane: the
// shared bits are what make d alpha (a sum that cancels) agree across backends.
TEST_CASE_TEMPLATE("exp_and_expm1_nonpositive: within 1 ulp of long double, a batch gives the scalar's bits", T,
                   float, double) {
  using batch = xsimd::batch<T>;
  constexpr std::size_t lanes = batch::size;
  const T limit = sizeof(T) == 4 ? T(-80) : T(-700);
  std::vector<T> xs = {T(0), T(-0.0), -std::numeric_limits<T>::denorm_min(), -std::numeric_limits<T>::min(),
                       T(-1e-30), T(-0.5) * T(0.693147180559945309), limit, std::nextafter(limit, T(0)),
                       std::nextafter(limit, T(-1000)), T(-1000), -std::numeric_limits<T>::infinity(),
                       std::numeric_limits<T>::quiet_NaN()};
  // Dense over [limit, 0], logarithmically near 0 where expm1 matters.
  for (int i = 0; i <= 20000; ++i) xs.push_back(limit * static_cast<T>(i) / T(20000));
  for (int i = 0; i <= 2000; ++i) xs.push_back(-std::pow(T(10), T(-12) + T(12.5) * static_cast<T>(i) / T(2000)));
  while (xs.size() % lanes != 0) xs.push_back(T(-0.25));
  double worst_exp = 0, worst_expm1 = 0;
  std::size_t batch_mismatch = 0;
  for (std::size_t i = 0; i < xs.size(); i += lanes) {
    const auto packed = sq::exp_and_expm1_nonpositive(batch::load_unaligned(xs.data() + i));
    alignas(64) T exp_lanes[lanes], expm1_lanes[lanes];
    packed.exp.store_aligned(exp_lanes);
    packed.expm1.store_aligned(expm1_lanes);
    for (std::size_t l = 0; l < lanes; ++l) {
      const T x = xs[i + l];
      CAPTURE(x);
      const auto scalar = sq::exp_and_expm1_nonpositive(x);
      batch_mismatch += !reference::same_bits(scalar.exp, exp_lanes[l]) +
                        !reference::same_bits(scalar.expm1, expm1_lanes[l]);
      if (std::isnan(x)) {
        CHECK(std::isnan(scalar.exp));
        CHECK(std::isnan(scalar.expm1));
      } else if (x < limit) {  // documented: 0 and -1 rather than subnormals
        CHECK(scalar.exp == T(0));
        CHECK(scalar.expm1 == T(-1));
      } else {
        const long double lx = x;
        worst_exp = std::max(worst_exp, reference::ulp_distance(scalar.exp, static_cast<T>(std::exp(lx))));
        worst_expm1 = std::max(worst_expm1, reference::ulp_distance(scalar.expm1, static_cast<T>(std::expm1(lx))));
      }
    }
  }
  if (reference::report_measurements()) {
    MESSAGE("worst ulp: exp " << worst_exp << ", expm1 " << worst_expm1);
  }
  CHECK(batch_mismatch == 0);
  CHECK(worst_exp <= 1);
  CHECK(worst_expm1 <= 1);
}

// d alpha sums only the elements inside DSQ's band: a non-finite dy outside
// it (where dx = 0) must not reach d alpha on any backend (exec::simd's row
// kernels add the term through a masked fma, exec::seq through a select), and
// a NaN dy inside it must. Reference: the same call with those dy set to 0.
TEST_CASE_TEMPLATE("DSQ: d alpha ignores non-finite dy outside the band and propagates NaN inside it", T, float,
                   double) {
  const sq::quantizer<T, sq::dsq_surrogate> q{sq::signed_grid(2), sq::dsq_surrogate{0.2}, sq::per_tensor()};
  const std::size_t numel = 4099;  // whole batches and a tail
  std::mt19937 rng(29);
  std::uniform_real_distribution<double> xs(-1.0, 1.0), dys(-2.0, 2.0);
  std::vector<T> x(numel), dy(numel), steps{T(0.25)};
  for (std::size_t i = 0; i < numel; ++i) {
    x[i] = static_cast<T>(xs(rng));
    dy[i] = static_cast<T>(dys(rng));
  }
  // v = x / 0.25: the band of signed 2-bit DSQ is -2.5 < v <= 1.5, so x = 0.5 (v = 2) is outside.
  const std::size_t outside[] = {0, 5, 17, 1000, 4096, 4098};
  const T poison[] = {std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity(),
                      -std::numeric_limits<T>::infinity()};
  std::vector<T> dy_zero = dy, dy_poison = dy;
  for (std::size_t j = 0; j < std::size(outside); ++j) {
    x[outside[j]] = T(0.5);
    dy_zero[outside[j]] = T(0);
    dy_poison[outside[j]] = poison[j % 3];
  }
  const std::size_t inside[] = {3, numel - 2};  // in the body of the row and in its tail
  x[inside[0]] = T(0.1);
  x[inside[1]] = T(-0.2);
  const auto d_alpha = [&](auto const& policy, std::vector<T> const& upstream) {
    std::vector<T> dx(numel), ds(1), da(1);
    sq::fake_quantize_backward(policy, q, x, steps, upstream, dx, ds, std::span<T>(da), 1.0);
    for (std::size_t i : outside) CHECK(dx[i] == T(0));
    return da[0];
  };
  const T seq_zero = d_alpha(sq::exec::seq, dy_zero);
  const T simd_zero = d_alpha(sq::exec::simd, dy_zero);
  REQUIRE(std::isfinite(seq_zero));
  CHECK(reference::same_bits(d_alpha(sq::exec::seq, dy_poison), seq_zero));
  CHECK(reference::same_bits(d_alpha(sq::exec::simd, dy_poison), simd_zero));
  CHECK(reference::same_bits(d_alpha(sq::exec::par.with_threads(2), dy_poison), simd_zero));
  // Inside the band a NaN dy makes d alpha NaN.
  for (std::size_t i : inside) {
    CAPTURE(i);
    std::vector<T> dy_nan = dy_zero;
    dy_nan[i] = std::numeric_limits<T>::quiet_NaN();
    CHECK(std::isnan(d_alpha(sq::exec::seq, dy_nan)));
    CHECK(std::isnan(d_alpha(sq::exec::simd, dy_nan)));
    CHECK(std::isnan(d_alpha(sq::exec::par.with_threads(2), dy_nan)));
  }
}
