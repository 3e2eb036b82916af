// The paper's baselines on exec::seq: DSQ (learnable alpha), ParetoQ's
// stretched elastic grid (SEQ) and EWGS, against independent long-double
// transcriptions of DESIGN.md §1 written here (tanhl/coshl/floorl/nearbyintl,
// not the library's evaluation), finite differences of DSQ's soft level, band
// edges at ±1 ulp, ties, invalid parameters, and the named step initialisers.
#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <stableqat/core/grid.hpp>
#include <stableqat/core/lsq.hpp>
#include <stableqat/core/step_init.hpp>
#include <stableqat/exec/seq.hpp>
#include <stableqat/ops.hpp>
#include <stableqat/quantizer.hpp>
#include <stableqat/surrogates/dsq.hpp>
#include <stableqat/surrogates/ewgs.hpp>
#include <stableqat/surrogates/fourier.hpp>

#include "reference.hpp"

namespace sq = stableqat;

namespace {

using ld = long double;

// ---------------------------------------------------------------------------
// Independent transcriptions (DESIGN.md §1, "The paper's baselines")
// ---------------------------------------------------------------------------

/// DSQ in long double, straight from the formulas.
struct dsq_reference {
  ld alpha;
  ld k() const { return std::log(2.0L / alpha - 1.0L); }
  ld scale() const { return 1.0L / (1.0L - alpha); }
  static ld d_of(ld v) { return v - (std::floor(v) + 0.5L); }
  ld phi(ld v) const { return scale() * std::tanh(k() * d_of(v)); }
  /// floor(v) + (phi > 0), clamped.
  ld level(ld v, ld qmin, ld qmax) const {
    const ld raw = std::floor(v) + (phi(v) > 0.0L ? 1.0L : 0.0L);
    return raw < qmin ? qmin : (raw > qmax ? qmax : raw);
  }
  static bool inside(ld v, ld qmin, ld qmax) { return qmin - 0.5L < v && v <= qmax + 0.5L; }
  ld g(ld v) const {
    const ld ch = std::cosh(k() * d_of(v));
    return 0.5L * scale() * k() / (ch * ch);
  }
  ld dphi_dalpha(ld v) const {
    const ld d = d_of(v);
    const ld ch = std::cosh(k() * d);
    return std::tanh(k() * d) / ((1.0L - alpha) * (1.0L - alpha)) -
           scale() / (ch * ch) * d * 2.0L / (alpha * (2.0L - alpha));
  }
  /// |each term| of (1/2) dphi/dalpha, the scale its rounding error is measured against.
  ld dphi_dalpha_magnitude(ld v) const {
    const ld d = d_of(v);
    const ld ch = std::cosh(k() * d);
    return 0.5L * (std::fabs(std::tanh(k() * d)) / ((1.0L - alpha) * (1.0L - alpha)) +
                   scale() / (ch * ch) * std::fabs(d) * 2.0L / (alpha * (2.0L - alpha)));
  }
  /// The soft level floor(v) + (1 + phi)/2 for another alpha (finite differences).
  static ld soft_level(ld v, ld a) {
    const ld k = std::log(2.0L / a - 1.0L);
    return std::floor(v) + 0.5L * (1.0L + std::tanh(k * d_of(v)) / (1.0L - a));
  }
};

/// ParetoQ's stretched elastic quantizer in long double.
struct seq_reference {
  ld m, shift;
  static constexpr ld clip = 0.99L;
  static seq_reference two_bit() { return {2.0L, 0.5L}; }
  static seq_reference ternary() { return {1.5L, 0.0L}; }
  ld w(ld v, ld clip_t) const { return std::fmax(-clip_t, std::fmin(clip_t, v)) * m - shift; }
  ld level(ld v, ld clip_t) const { return (std::nearbyint(w(v, clip_t)) + shift) / m; }
  ld outside(ld v) const { return (v > 0 ? 1.0L : -1.0L) * (m - shift) / m; }
};

template <class T>
T ulps_apart_tolerance(ld reference, ld ulps) {
  return static_cast<T>(ulps * std::numeric_limits<T>::epsilon() * std::fabs(reference));
}

/// Inputs v: random over the grid and beyond, plus every half-integer and
/// integer of [qmin - 2, qmax + 2] and their neighbours.
template <class T>
std::vector<T> sample_inputs(int qmin, int qmax, std::size_t random_count, unsigned seed) {
  std::vector<T> v;
  for (int i = 2 * (qmin - 2); i <= 2 * (qmax + 2); ++i) {
    const T center = static_cast<T>(i) / T(2);
    v.push_back(center);
    v.push_back(std::nextafter(center, T(-100)));
    v.push_back(std::nextafter(center, T(100)));
  }
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> dist(qmin - 2.0, qmax + 2.0);
  for (std::size_t i = 0; i < random_count; ++i) {
    v.push_back(static_cast<T>(dist(rng)));
  }
  return v;
}

/// One step per element (per_channel(1)) and grad_scale 1, so dsteps[i] is element i's step term.
struct per_element_run {
  template <class T, class S>
  static void backward(sq::quantizer<T, S> const& q, std::vector<T> const& x, std::vector<T> const& steps,
                       std::vector<T> const& dy, std::vector<T>& dx, std::vector<T>& dsteps, std::vector<T>& dparams) {
    dx.assign(x.size(), T(-77));
    dsteps.assign(x.size(), T(-77));
    if constexpr (sq::learnable_surrogate<S>) {
      dparams.assign(S::parameter_count, T(-77));
      sq::fake_quantize_backward(sq::exec::seq, q, x, steps, dy, dx, dsteps, dparams, 1.0);
    } else {
      sq::fake_quantize_backward(sq::exec::seq, q, x, steps, dy, dx, dsteps, 1.0);
    }
  }
};

}  // namespace

// ---------------------------------------------------------------------------
// DSQ
// ---------------------------------------------------------------------------

TEST_CASE_TEMPLATE("DSQ forward: floor(v) + (phi > 0), ties down, clamped; NaN/Inf", T, float, double) {
  for (const double alpha : {0.05, 0.2, 0.6}) {
    const sq::dsq_surrogate dsq{alpha};
    const dsq_reference ref{static_cast<ld>(alpha)};
    for (const sq::grid g : {sq::signed_grid(2), sq::signed_grid(3), sq::unsigned_grid(4)}) {
      CAPTURE(alpha);
      CAPTURE(g.qmin());
      const sq::quantizer<T, sq::dsq_surrogate> q{g, dsq, sq::per_tensor()};
      const std::vector<T> v = sample_inputs<T>(g.qmin(), g.qmax(), 500, 7);
      // step 1: x = v exactly.
      std::vector<T> y(v.size());
      sq::fake_quantize(sq::exec::seq, q, v, std::vector<T>{T(1)}, y);
      for (std::size_t i = 0; i < v.size(); ++i) {
        CAPTURE(v[i]);
        CHECK(static_cast<ld>(y[i]) == ref.level(v[i], g.qmin(), g.qmax()));
      }
      // step 0.375 (not a power of two): v = x * (1/s) in T, the documented convention.
      const T s = T(0.375);
      std::vector<T> x(v.size());
      for (std::size_t i = 0; i < v.size(); ++i) x[i] = v[i] * s;
      sq::fake_quantize(sq::exec::seq, q, x, std::vector<T>{s}, y);
      for (std::size_t i = 0; i < x.size(); ++i) {
        const T vt = x[i] * (T(1) / s);
        CHECK(static_cast<ld>(y[i]) == static_cast<ld>(s) * ref.level(vt, g.qmin(), g.qmax()));
      }
    }
  }
  // Ties go down, unlike round-half-even.
  const sq::quantizer<T, sq::dsq_surrogate> q{sq::signed_grid(3), sq::dsq_surrogate{}, sq::per_tensor()};
  const std::vector<T> ties{T(-2.5), T(-1.5), T(-0.5), T(0.5), T(1.5), T(2.5)};
  const std::vector<T> down{T(-3), T(-2), T(-1), T(0), T(1), T(2)};
  std::vector<T> y(ties.size());
  sq::fake_quantize(sq::exec::seq, q, ties, std::vector<T>{T(1)}, y);
  for (std::size_t i = 0; i < ties.size(); ++i) {
    CHECK(y[i] == down[i]);
  }
  // NaN stays NaN, ±Inf clamp to the grid edges.
  const T inf = std::numeric_limits<T>::infinity();
  const std::vector<T> special{std::numeric_limits<T>::quiet_NaN(), inf, -inf};
  std::vector<T> ys(3);
  sq::fake_quantize(sq::exec::seq, q, special, std::vector<T>{T(0.5)}, ys);
  CHECK(std::isnan(ys[0]));
  CHECK(ys[1] == T(1.5));
  CHECK(ys[2] == T(-2));
}

TEST_CASE_TEMPLATE("DSQ backward: band, g, consistent step term and d alpha against long double", T, float,
                   double) {
  for (const double alpha : {0.02, 0.2, 0.5, 0.9}) {
    CAPTURE(alpha);
    const sq::dsq_surrogate dsq{alpha};
    const dsq_reference ref{static_cast<ld>(alpha)};
    const sq::grid g = sq::signed_grid(3);
    const ld qmin = g.qmin(), qmax = g.qmax();
    const sq::quantizer<T, sq::dsq_surrogate> q{g, dsq, sq::per_channel(1)};
    const std::vector<T> v = sample_inputs<T>(g.qmin(), g.qmax(), 1000, 11);
    std::vector<T> dy(v.size());
    std::mt19937 rng(3);
    std::uniform_real_distribution<double> dy_dist(-2.0, 2.0);
    for (T& d : dy) d = static_cast<T>(dy_dist(rng));
    const T s = T(0.75);
    std::vector<T> x(v.size());
    std::vector<T> vt(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) {
      x[i] = v[i] * s;
      vt[i] = x[i] * (T(1) / s);  // the v the library sees
    }
    std::vector<T> dx, dsteps, dparams;
    per_element_run::backward(q, x, std::vector<T>(x.size(), s), dy, dx, dsteps, dparams);
    ld dalpha = 0.0L, dalpha_scale = 0.0L;
    int inside_count = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
      const ld vi = vt[i];
      CAPTURE(vi);
      const bool inside = dsq_reference::inside(vi, qmin, qmax);
      const ld level = ref.level(vi, qmin, qmax);
      if (inside) {
        ++inside_count;
        const ld gi = ref.g(vi);
        CHECK(std::fabs(dx[i] / static_cast<ld>(dy[i]) - gi) <= ulps_apart_tolerance<T>(gi, 16));
        const ld term = dy[i] * (level - vi * gi);
        CHECK(std::fabs(dsteps[i] - term) <=
              16 * std::numeric_limits<T>::epsilon() * std::fabs(dy[i]) * (std::fabs(level) + std::fabs(vi * gi)) +
                  4 * std::numeric_limits<T>::denorm_min());
        dalpha += dy[i] * static_cast<ld>(s) * 0.5L * ref.dphi_dalpha(vi);
        dalpha_scale += std::fabs(dy[i] * static_cast<ld>(s)) * ref.dphi_dalpha_magnitude(vi);
      } else {
        CHECK(dx[i] == T(0));
        CHECK(dsteps[i] == static_cast<T>(static_cast<ld>(dy[i]) * level));  // one rounding
      }
    }
    CHECK(inside_count > 100);
    CHECK(inside_count < static_cast<int>(x.size()));
    // Cancellation between d alpha's two terms grows like 1/(1 - alpha).
    const ld tolerance = 64 * std::numeric_limits<T>::epsilon() * dalpha_scale / (1.0L - alpha);
    CHECK(std::fabs(dparams[0] - dalpha) <= tolerance);
  }
}

TEST_CASE_TEMPLATE("DSQ band edges at ±1 ulp around qmin - 1/2 and qmax + 1/2", T, float, double) {
  const sq::grid g = sq::signed_grid(2);  // [-2, 1]: band (-2.5, 1.5]
  const sq::quantizer<T, sq::dsq_surrogate> q{g, sq::dsq_surrogate{0.2}, sq::per_channel(1)};
  const T lo = T(-2.5), hi = T(1.5);
  const std::vector<T> x{std::nextafter(lo, T(-9)), lo, std::nextafter(lo, T(9)),
                         std::nextafter(hi, T(-9)), hi, std::nextafter(hi, T(9))};
  const std::vector<bool> inside{false, false, true, true, true, false};
  std::vector<T> dx, dsteps, dparams;
  per_element_run::backward(q, x, std::vector<T>(x.size(), T(1)), std::vector<T>(x.size(), T(1)), dx, dsteps,
                            dparams);
  const dsq_reference ref{0.2L};
  for (std::size_t i = 0; i < x.size(); ++i) {
    CAPTURE(x[i]);
    if (inside[i]) {
      CHECK(dx[i] > T(0));
      // At the thresholds g peaks at scale k / 2.
      CHECK(std::fabs(dx[i] - ref.g(x[i])) <= ulps_apart_tolerance<T>(ref.g(x[i]), 16));
    } else {
      CHECK(dx[i] == T(0));
      CHECK(dsteps[i] == (x[i] < 0 ? T(-2) : T(1)));
    }
  }
  // The unclamped level at v = qmin - 1/2 is qmin - 1 (tie down): outside; at qmax + 1/2 it is qmax: inside.
  CHECK(std::fabs(dx[4] - static_cast<T>(0.5L * ref.scale() * ref.k())) <= ulps_apart_tolerance<T>(ref.g(1.5L), 16));
}

TEST_CASE("DSQ d alpha: the formula equals central finite differences of the soft level") {
  for (const double alpha : {0.05, 0.2, 0.5, 0.8}) {
    CAPTURE(alpha);
    const dsq_reference ref{static_cast<ld>(alpha)};
    const sq::dsq_surrogate dsq{alpha};
    const ld h = 1e-5L * ref.alpha;
    for (const ld v : {-1.9L, -1.2L, -0.7L, -0.49L, -0.01L, 0.0L, 0.13L, 0.5L, 0.51L, 0.77L, 1.3L}) {
      CAPTURE(static_cast<double>(v));
      const ld fd = (dsq_reference::soft_level(v, ref.alpha + h) - dsq_reference::soft_level(v, ref.alpha - h)) /
                    (2.0L * h);
      const ld formula = 0.5L * ref.dphi_dalpha(v);
      CHECK(std::fabs(fd - formula) <= 1e-8L * (1.0L + std::fabs(formula)));
      // The library's parameter term for dy = 1, step 1, from the element template in double.
      const sq::uniform_levels<double> levels{-2.0, 1.0};
      const auto grads = sq::fake_quantize_backward_element(static_cast<double>(v), 1.0, 1.0, sq::no_offset{},
                                                            levels, dsq);
      CHECK(std::fabs(grads.dparameters[0] - formula) <= 1e-13L * (1.0L + ref.dphi_dalpha_magnitude(v)));
      CHECK(std::fabs(grads.dparameters[0] - fd) <= 1e-8L * (1.0L + std::fabs(formula)));
      // And g = dL/dv by finite differences in v (away from the integer kinks).
      if (std::fabs(v - std::nearbyint(v)) > 1e-3L) {
        const ld hv = 1e-6L;
        const ld dv = (dsq_reference::soft_level(v + hv, ref.alpha) - dsq_reference::soft_level(v - hv, ref.alpha)) /
                      (2.0L * hv);
        CHECK(std::fabs(grads.dx - dv) <= 1e-9L * dv);
      }
    }
  }
}

TEST_CASE("DSQ g: mean exactly 1 over a period for every alpha; extremes in closed form") {
  for (const double alpha : {0.01, 0.05, 0.2, 0.5, 0.9, 0.99}) {
    CAPTURE(alpha);
    const sq::dsq_surrogate dsq{alpha};
    // Simpson on [-1/2, 0] and [0, 1/2] (g has a kink at r = 0, the grid point).
    const int n = 2000;
    const double h = 0.5 / n;
    double integral = 0.0;
    for (const double start : {-0.5, 0.0}) {
      double sum = dsq.derivative(start) + dsq.derivative(start + 0.5);
      for (int i = 1; i < n; ++i) {
        sum += (i % 2 == 1 ? 4.0 : 2.0) * dsq.derivative(start + i * h);
      }
      integral += sum * h / 3.0;
    }
    CHECK(std::fabs(integral - 1.0) < 1e-9);
    const ld a = alpha, k = std::log(2.0L / a - 1.0L);
    const ld at_grid = k * a * (2.0L - a) / (2.0L * (1.0L - a));
    const ld at_threshold = 0.5L * k / (1.0L - a);
    CHECK(std::fabs(dsq.derivative(0.0) - at_grid) <= 1e-14L * at_grid);
    CHECK(std::fabs(dsq.derivative(0.5) - at_threshold) <= 1e-14L * at_threshold);
    CHECK(std::fabs(dsq.derivative(-0.5) - at_threshold) <= 1e-14L * at_threshold);
    CHECK(std::fabs(dsq.min_derivative() - at_grid) <= 1e-14L * at_grid);
    CHECK(std::fabs(dsq.max_derivative() - at_threshold) <= 1e-14L * at_threshold);
  }
}

TEST_CASE_TEMPLATE("DSQ d alpha: sum over steps times each step, NaN x ignored, offsets", T, float, double) {
  const sq::dsq_surrogate dsq{0.3};
  const dsq_reference ref{0.3L};
  const sq::quantizer<T, sq::dsq_surrogate> q{sq::signed_grid(2), dsq, sq::per_channel(3)};
  const std::vector<T> x{T(0.1), T(-0.7), T(0.35), T(2.0), std::numeric_limits<T>::quiet_NaN(), T(-0.05)};
  const std::vector<T> steps{T(0.5), T(0.25)};
  const std::vector<T> dy{T(1), T(-2), T(0.5), T(1), T(3), T(-1)};
  std::vector<T> dx(6), dsteps(2), dparams(1);
  sq::fake_quantize_backward(sq::exec::seq, q, x, steps, dy, dx, dsteps, dparams, 1.0);
  ld expected = 0.0L;
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (std::isnan(x[i])) continue;
    const T s = steps[i / 3];
    const ld v = x[i] * (T(1) / s);
    if (dsq_reference::inside(v, -2, 1)) expected += dy[i] * static_cast<ld>(s) * 0.5L * ref.dphi_dalpha(v);
  }
  CHECK(std::isfinite(dparams[0]));
  CHECK(std::fabs(dparams[0] - expected) <= 1e3L * std::numeric_limits<T>::epsilon() * (1.0L + std::fabs(expected)));
  CHECK(dx[4] == T(0));
  CHECK(std::isnan(dsteps[1]));  // the NaN reaches its step's gradient
  // With offsets: dx + db = dy per element, the parameter gradient unchanged by b = 0.
  std::vector<T> dx2(6), dsteps2(2), doffsets(2), dparams2(1);
  sq::fake_quantize_backward(sq::exec::seq, q, x, steps, dy, dx2, dsteps2, std::vector<T>{T(0), T(0)}, doffsets,
                             dparams2, 1.0);
  CHECK(reference::same_bits(dparams2[0], dparams[0]));
  CHECK(reference::same_bits(dx2[0], dx[0]));
  // Empty x: every gradient 0.
  std::vector<T> none;
  std::vector<T> ds{T(5)}, dp{T(5)};
  sq::fake_quantize_backward(sq::exec::seq, sq::quantizer<T, sq::dsq_surrogate>{sq::signed_grid(2), dsq}, none,
                             std::vector<T>{T(1)}, none, none, ds, dp);
  CHECK(ds[0] == T(0));
  CHECK(dp[0] == T(0));
}

// ---------------------------------------------------------------------------
// EWGS
// ---------------------------------------------------------------------------

TEST_CASE_TEMPLATE("EWGS: g = 1 + delta sign(dy) r against long double; LSQ step term", T, float, double) {
  const double delta = 0.15;
  const sq::grid g = sq::signed_grid(3);
  const sq::quantizer<T, sq::ewgs_surrogate> q{g, sq::ewgs_surrogate{delta}, sq::per_channel(1)};
  const std::vector<T> v = sample_inputs<T>(g.qmin(), g.qmax(), 800, 5);
  std::vector<T> dy(v.size());
  std::mt19937 rng(9);
  std::uniform_real_distribution<double> dist(-3.0, 3.0);
  for (T& d : dy) d = static_cast<T>(dist(rng));
  std::vector<T> dx, dsteps, unused;
  per_element_run::backward(q, v, std::vector<T>(v.size(), T(1)), dy, dx, dsteps, unused);
  for (std::size_t i = 0; i < v.size(); ++i) {
    const ld vi = v[i];
    CAPTURE(vi);
    const ld n = std::nearbyint(vi);
    const bool inside = g.qmin() <= vi && vi <= g.qmax();
    const ld sign = dy[i] < 0 ? -1.0L : 1.0L;
    const ld expected = inside ? dy[i] * (1.0L + static_cast<ld>(static_cast<T>(delta)) * sign * (vi - n)) : 0.0L;
    CHECK(std::fabs(dx[i] - expected) <= 4 * std::numeric_limits<T>::epsilon() * std::fabs(expected));
    const ld clamped = n < g.qmin() ? g.qmin() : (n > g.qmax() ? g.qmax() : n);
    const ld term = dy[i] * (inside ? n - vi : clamped);
    CHECK(std::fabs(dsteps[i] - term) <=
          2 * std::numeric_limits<T>::epsilon() * std::fabs(term) + 4 * std::numeric_limits<T>::denorm_min());
  }
  CHECK(sq::ewgs_surrogate{0.3}.derivative(0.5) == doctest::Approx(1.15).epsilon(1e-15));
  CHECK(sq::ewgs_surrogate{0.3}.derivative(0.5, -1.0) == doctest::Approx(0.85).epsilon(1e-15));
  CHECK(sq::ewgs_surrogate{0.3}.min_derivative() == doctest::Approx(0.85).epsilon(1e-15));
}

TEST_CASE_TEMPLATE("EWGS delta = 0 is the STE bit for bit (dx, dsteps, doffsets; NaN, Inf, ±0)", T, float, double) {
  const T inf = std::numeric_limits<T>::infinity();
  const T nan = std::numeric_limits<T>::quiet_NaN();
  std::vector<T> x{T(0.3), T(-1.7), T(0.5), T(-0.0), T(9), nan, inf, -inf, T(1.25), T(-2.5)};
  std::vector<T> dy{T(1), T(-0.0), T(0.0), nan, T(2), T(1), T(-1), inf, -inf, T(-3)};
  std::mt19937 rng(1);
  std::uniform_real_distribution<double> dist(-4.0, 4.0);
  for (int i = 0; i < 300; ++i) {
    x.push_back(static_cast<T>(dist(rng)));
    dy.push_back(static_cast<T>(dist(rng)));
  }
  const std::vector<T> steps{T(0.7)}, offsets{T(0.1)};
  for (const sq::grid g : {sq::signed_grid(2), sq::signed_grid(1), sq::stretched_elastic_grid(2)}) {
    std::vector<T> dx_e(x.size()), dx_s(x.size()), ds_e(1), ds_s(1), db_e(1), db_s(1);
    sq::fake_quantize_backward(sq::exec::seq, sq::quantizer<T, sq::ewgs_surrogate>{g, sq::ewgs_surrogate{0.0}}, x,
                               steps, dy, dx_e, ds_e, offsets, db_e);
    sq::fake_quantize_backward(sq::exec::seq, sq::quantizer<T, sq::ste>{g}, x, steps, dy, dx_s, ds_s, offsets, db_s);
    CHECK(std::memcmp(dx_e.data(), dx_s.data(), x.size() * sizeof(T)) == 0);
    CHECK(reference::same_bits(ds_e[0], ds_s[0]));
    CHECK(reference::same_bits(db_e[0], db_s[0]));
  }
}

// ---------------------------------------------------------------------------
// ParetoQ stretched elastic grid (SEQ)
// ---------------------------------------------------------------------------

TEST_CASE_TEMPLATE("SEQ forward: ParetoQ's levels for 2 bits and ternary", T, float, double) {
  struct kind {
    sq::grid grid;
    seq_reference ref;
    std::vector<ld> levels;
  };
  const std::vector<kind> kinds{
      {sq::stretched_elastic_grid(2), seq_reference::two_bit(), {-0.75L, -0.25L, 0.25L, 0.75L}},
      {sq::stretched_elastic_ternary_grid(), seq_reference::ternary(), {-2.0L / 3.0L, 0.0L, 2.0L / 3.0L}}};
  for (kind const& k : kinds) {
    CAPTURE(k.ref.m);
    const sq::quantizer<T, sq::ste> q{k.grid};
    std::vector<T> x;
    std::mt19937 rng(4);
    std::uniform_real_distribution<double> dist(-1.5, 1.5);
    for (int i = 0; i < 2000; ++i) x.push_back(static_cast<T>(dist(rng)));
    for (const T c : {T(0.99), T(-0.99), T(1), T(-1), T(0), T(-0.0), T(0.5), T(-0.5), T(1) / T(3), T(-1) / T(3)}) {
      x.push_back(c);
      x.push_back(std::nextafter(c, T(2)));
      x.push_back(std::nextafter(c, T(-2)));
    }
    const T alpha = T(1);  // v = x exactly
    std::vector<T> y(x.size());
    sq::fake_quantize(sq::exec::seq, q, x, std::vector<T>{alpha}, y);
    const ld clip_t = static_cast<T>(0.99);
    for (std::size_t i = 0; i < x.size(); ++i) {
      CAPTURE(x[i]);
      const ld w = k.ref.w(x[i], clip_t);
      // Skip inputs within rounding distance of a tie of w (there the library,
      // like ParetoQ's float code, rounds w = u m - shift in T first; exact ties are checked below).
      if (std::fabs(std::fabs(w - std::floor(w)) - 0.5L) < 1e-5L) continue;
      const ld expected = k.ref.level(x[i], clip_t);
      CHECK(std::fabs(y[i] - expected) <= std::numeric_limits<T>::epsilon() * std::fabs(expected));
      bool on_grid = false;
      for (const ld level : k.levels) on_grid = on_grid || std::fabs(y[i] - level) <= std::numeric_limits<T>::epsilon();
      CHECK(on_grid);
    }
    // A step that is not a power of two scales every level.
    std::vector<T> y2(x.size()), xs(x.size());
    const T s = T(0.3);
    for (std::size_t i = 0; i < x.size(); ++i) xs[i] = x[i] * s;
    sq::fake_quantize(sq::exec::seq, q, xs, std::vector<T>{s}, y2);
    for (std::size_t i = 0; i < x.size(); ++i) {
      const ld w = k.ref.w(xs[i] * (T(1) / s), clip_t);
      if (std::fabs(std::fabs(w - std::floor(w)) - 0.5L) < 1e-5L) continue;
      const ld expected = static_cast<ld>(s) * k.ref.level(xs[i] * (T(1) / s), clip_t);
      CHECK(std::fabs(y2[i] - expected) <= 2 * std::numeric_limits<T>::epsilon() * std::fabs(expected));
    }
    // Exact ties of w round half to even, as torch.round: 2 bits x = 0 -> w = -1/2 -> code 0 -> +1/4,
    // x = 1/2 -> w = 1/2 -> 0 -> +1/4, x = -1/2 -> w = -3/2 -> -2 -> -3/4; ternary x = ±1/3 is no exact tie.
    if (k.ref.m == 2.0L) {
      std::vector<T> yt(4);
      sq::fake_quantize(sq::exec::seq, q, std::vector<T>{T(0), T(-0.0), T(0.5), T(-0.5)}, std::vector<T>{T(1)}, yt);
      CHECK(yt[0] == T(0.25));
      CHECK(yt[1] == T(0.25));
      CHECK(yt[2] == T(0.25));
      CHECK(yt[3] == T(-0.75));
    }
    // NaN stays NaN, ±Inf give the outermost levels.
    const T inf = std::numeric_limits<T>::infinity();
    std::vector<T> ys(3);
    sq::fake_quantize(sq::exec::seq, q, std::vector<T>{std::numeric_limits<T>::quiet_NaN(), inf, -inf},
                      std::vector<T>{T(2)}, ys);
    CHECK(std::isnan(ys[0]));
    CHECK(std::fabs(ys[1] - 2.0L * k.levels.back()) <= 2 * std::numeric_limits<T>::epsilon());
    CHECK(std::fabs(ys[2] - 2.0L * k.levels.front()) <= 2 * std::numeric_limits<T>::epsilon());
  }
}

TEST_CASE_TEMPLATE("SEQ backward: band ±clip*alpha at ±1 ulp, step term, residual of u*m - shift, grad_scale",
                   T, float, double) {
  const std::vector<T> fourier_args{T(0.21)};
  for (const bool ternary : {false, true}) {
    CAPTURE(ternary);
    const sq::grid g = ternary ? sq::stretched_elastic_ternary_grid() : sq::stretched_elastic_grid(2);
    const seq_reference ref = ternary ? seq_reference::ternary() : seq_reference::two_bit();
    const sq::fourier_surrogate<1> f{0.21};
    const sq::quantizer<T, sq::fourier_surrogate<1>> q{g, f, sq::per_channel(1)};
    const T clip = static_cast<T>(0.99);
    const T alpha = T(0.5);
    // Edges at ±clip * alpha (alpha a power of two: v = x / alpha exactly).
    std::vector<T> v{std::nextafter(-clip, T(-2)), -clip, std::nextafter(-clip, T(2)),
                     std::nextafter(clip, T(-2)),  clip,  std::nextafter(clip, T(2))};
    const std::vector<bool> edge_inside{false, true, true, true, true, false};
    std::mt19937 rng(2);
    std::uniform_real_distribution<double> dist(-1.3, 1.3);
    for (int i = 0; i < 600; ++i) v.push_back(static_cast<T>(dist(rng)));
    std::vector<T> x(v.size()), dy(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) {
      x[i] = v[i] * alpha;
      dy[i] = static_cast<T>(dist(rng));
    }
    std::vector<T> dx, dsteps, unused;
    per_element_run::backward(q, x, std::vector<T>(x.size(), alpha), dy, dx, dsteps, unused);
    const ld clip_t = clip;
    for (std::size_t i = 0; i < v.size(); ++i) {
      CAPTURE(v[i]);
      const ld vi = v[i];
      const bool inside = std::fabs(vi) <= clip_t;
      if (i < edge_inside.size()) CHECK(inside == edge_inside[i]);
      const ld w = ref.w(vi, clip_t);
      if (std::fabs(std::fabs(w - std::floor(w)) - 0.5L) < 1e-5L) continue;
      const ld level = ref.level(vi, clip_t);
      if (inside) {
        // The residual of w as the library holds it: w rounded once to T (exactly what
        // u * m - shift gives in T for m = 2 and 3/2), minus its nearest integer.
        const ld wt = static_cast<T>(w);
        const ld r = wt - std::nearbyint(wt);
        const ld gi = f.derivative(static_cast<double>(r));
        CHECK(std::fabs(dx[i] - dy[i] * gi) <= 8 * std::numeric_limits<T>::epsilon() * std::fabs(dy[i] * gi) +
                                                   std::numeric_limits<T>::denorm_min());
        const ld term = dy[i] * (level - vi);
        CHECK(std::fabs(dsteps[i] - term) <= 4 * std::numeric_limits<T>::epsilon() * std::fabs(dy[i]));
      } else {
        CHECK(dx[i] == T(0));
        // ±(m - shift)/m: ±3/4 for 2 bits, ±1 (not the clipped level ±2/3) for ternary.
        CHECK(std::fabs(dsteps[i] - dy[i] * ref.outside(vi)) <= std::numeric_limits<T>::epsilon() * std::fabs(dy[i]));
      }
    }
    // Default grad_scale 1/sqrt(numel * max(2^(bits-1) - 1, 1)) = 1/sqrt(numel) for both kinds.
    const sq::quantizer<T, sq::ste> qt{g};
    std::vector<T> dx1(x.size()), ds1(1);
    sq::fake_quantize_backward(sq::exec::seq, qt, x, std::vector<T>{alpha}, dy, dx1, ds1);
    ld sum = 0.0L, magnitude = 0.0L;
    for (std::size_t i = 0; i < v.size(); ++i) {
      const ld vi = v[i];
      const ld term = dy[i] * (std::fabs(vi) <= clip_t ? ref.level(vi, clip_t) - vi : ref.outside(vi));
      sum += term;
      magnitude += std::fabs(term);
    }
    const ld expected = sum / std::sqrt(static_cast<ld>(x.size()));
    CHECK(std::fabs(ds1[0] - expected) <= 1e-6L * magnitude / std::sqrt(static_cast<ld>(x.size())));
    CHECK(sq::lsq_grad_scale(x.size(), g) == 1.0 / std::sqrt(static_cast<double>(x.size())));
  }
}

TEST_CASE("SEQ grid kind: equality, code range, NaN backward") {
  CHECK(sq::stretched_elastic_grid(2).is_stretched_elastic());
  CHECK(sq::stretched_elastic_ternary_grid().is_stretched_elastic());
  CHECK_FALSE(sq::signed_grid(2).is_stretched_elastic());
  CHECK_FALSE(sq::stretched_elastic_grid(2) == sq::signed_grid(2));
  CHECK_FALSE(sq::stretched_elastic_ternary_grid() == sq::ternary_grid());
  CHECK(sq::stretched_elastic_grid(2).qmin() == -2);
  CHECK(sq::stretched_elastic_grid(2).qmax() == 1);
  static_assert(sq::stretched_elastic_ternary_grid().qmax() == 1);
  const sq::quantizer<float, sq::ste> q{sq::stretched_elastic_grid(2)};
  const std::vector<float> x{std::numeric_limits<float>::quiet_NaN(), 0.1f};
  std::vector<float> dx(2), ds(1);
  sq::fake_quantize_backward(sq::exec::seq, q, x, std::vector<float>{1.0f}, std::vector<float>{1.0f, 1.0f}, dx, ds);
  CHECK(dx[0] == 0.0f);
  CHECK(std::isnan(ds[0]));
}

// ---------------------------------------------------------------------------
// Invalid parameters: std::invalid_argument naming the parameter, nothing written
// ---------------------------------------------------------------------------

TEST_CASE("Invalid DSQ alpha, EWGS delta, SEQ bits") {
  for (const double alpha : {0.0, 1.0, -0.1, 1.5, std::numeric_limits<double>::quiet_NaN(),
                             std::numeric_limits<double>::infinity(), 4.9e-324}) {
    reference::check_invalid_argument([&] { (void)sq::dsq_surrogate{alpha}; }, {"dsq_surrogate", "alpha = "});
  }
  for (const double delta : {-0.1, -0.0 - 1e-300, 2.0, 7.0, std::numeric_limits<double>::quiet_NaN(),
                             std::numeric_limits<double>::infinity()}) {
    reference::check_invalid_argument([&] { (void)sq::ewgs_surrogate{delta}; }, {"ewgs_surrogate", "delta = "});
  }
  CHECK_NOTHROW((void)sq::ewgs_surrogate{0.0});
  CHECK_NOTHROW((void)sq::dsq_surrogate{1e-300});
  for (const int bits : {0, 1, 3, 4, 8, -2}) {
    reference::check_invalid_argument([&] { (void)sq::stretched_elastic_grid(bits); },
                                      {"stretched_elastic_grid", "bits = " + std::to_string(bits)});
  }
}

TEST_CASE("DSQ refuses binary and stretched elastic grids; dparameters checked; nothing written") {
  const std::vector<float> x{0.1f, 0.7f}, steps{1.0f}, dy{1.0f, 1.0f};
  for (const sq::grid g : {sq::signed_grid(1), sq::stretched_elastic_grid(2)}) {
    const sq::quantizer<float, sq::dsq_surrogate> q{g, sq::dsq_surrogate{}};
    std::vector<float> y{-7.0f, -7.0f}, dx{-7.0f, -7.0f}, ds{-7.0f}, dp{-7.0f};
    reference::check_invalid_argument([&] { sq::fake_quantize(sq::exec::seq, q, x, steps, y); },
                                      {"fake_quantize", "grid."});
    reference::check_invalid_argument(
        [&] { sq::fake_quantize_backward(sq::exec::seq, q, x, steps, dy, dx, ds, dp); },
        {"fake_quantize_backward", "grid."});
    CHECK(y[0] == -7.0f);
    CHECK(dx[0] == -7.0f);
    CHECK(ds[0] == -7.0f);
    CHECK(dp[0] == -7.0f);
  }
  const sq::quantizer<float, sq::dsq_surrogate> q{sq::signed_grid(2), sq::dsq_surrogate{}};
  std::vector<float> dx{-7.0f, -7.0f}, ds{-7.0f}, dp2{-7.0f, -7.0f};
  reference::check_invalid_argument(
      [&] { sq::fake_quantize_backward(sq::exec::seq, q, x, steps, dy, dx, ds, dp2); },
      {"dparameters.size() = 2", "parameter count 1"});
  CHECK(dx[0] == -7.0f);
  CHECK(ds[0] == -7.0f);
  std::vector<float> shared{-7.0f, -7.0f};
  reference::check_invalid_argument(
      [&] {
        sq::fake_quantize_backward(sq::exec::seq, q, x, steps, dy, dx, std::span<float>(shared.data(), 1),
                                   std::span<float>(shared.data(), 1));
      },
      {"dparameters", "dsteps"});
  CHECK(shared[0] == -7.0f);
  // alpha = 1e-300 is a valid double alpha, but 1/(alpha (2 - alpha)) overflows
  // float: refused by the float backward before writing (found by the fuzzer:
  // d alpha came back NaN), accepted in double with finite results.
  const sq::quantizer<float, sq::dsq_surrogate> tiny{sq::signed_grid(2), sq::dsq_surrogate{1e-300}};
  std::vector<float> dp{-7.0f}, y_tiny{-7.0f, -7.0f};
  reference::check_invalid_argument([&] { sq::fake_quantize(sq::exec::seq, tiny, x, steps, y_tiny); },
                                    {"fake_quantize", "alpha = ", "too small for float"});
  CHECK(y_tiny[0] == -7.0f);
  reference::check_invalid_argument(
      [&] { sq::fake_quantize_backward(sq::exec::seq, tiny, x, steps, dy, dx, ds, dp); },
      {"fake_quantize_backward", "alpha = ", "too small for float"});
  CHECK(dx[0] == -7.0f);
  CHECK(dp[0] == -7.0f);
  const std::vector<double> xd{0.1, 0.7}, stepsd{1.0}, dyd{1.0, 1.0};
  std::vector<double> dxd(2), dsd(1), dpd(1);
  const sq::quantizer<double, sq::dsq_surrogate> tiny_double{sq::signed_grid(2), sq::dsq_surrogate{1e-300}};
  sq::fake_quantize_backward(sq::exec::seq, tiny_double, xd, stepsd, dyd, dxd, dsd, dpd);
  CHECK(std::isfinite(dpd[0]));
  CHECK(std::isfinite(dsd[0]));
}

// ---------------------------------------------------------------------------
// Step initialisers by name
// ---------------------------------------------------------------------------

TEST_CASE("ParetoQ step initialisers: mean|x| (1 bit), max|x| (ternary, 2 bits, SEQ), max|x|/qmax (3-4 bits)") {
  const std::vector<double> x{0.5, -2.0, 1.0, 0.25, -0.75, 1.5};
  const double mean = (0.5 + 2.0 + 1.0 + 0.25 + 0.75 + 1.5) / 6.0, max = 2.0;
  CHECK(sq::mean_abs_init_step(x, sq::signed_grid(4)) == doctest::Approx(mean).epsilon(1e-15));
  CHECK(sq::paretoq_init_step(x, sq::signed_grid(1)) == doctest::Approx(mean).epsilon(1e-15));
  CHECK(sq::paretoq_init_step(x, sq::ternary_grid()) == max);
  CHECK(sq::paretoq_init_step(x, sq::signed_grid(2)) == max);
  CHECK(sq::paretoq_init_step(x, sq::stretched_elastic_grid(2)) == max);
  CHECK(sq::paretoq_init_step(x, sq::stretched_elastic_ternary_grid()) == max);
  CHECK(sq::paretoq_init_step(x, sq::signed_grid(3)) == max / 3.0);
  CHECK(sq::paretoq_init_step(x, sq::signed_grid(4)) == max / 7.0);
  // Per row (ParetoQ's max|w_row|), float.
  const std::vector<float> w{0.5f, -2.0f, 1.0f, 0.25f, -0.75f, 1.5f};
  std::vector<float> steps(2);
  sq::paretoq_init_steps(w, sq::stretched_elastic_grid(2), sq::per_channel(3), steps);
  CHECK(steps[0] == 2.0f);
  CHECK(steps[1] == 1.5f);
  sq::mean_abs_init_steps(w, sq::signed_grid(1), sq::per_channel(3), steps);
  CHECK(steps[0] == doctest::Approx(3.5 / 3.0));
  CHECK(steps[1] == doctest::Approx(2.5 / 3.0));
  std::vector<float> bad(3, -7.0f);
  reference::check_invalid_argument([&] { sq::paretoq_init_steps(w, sq::signed_grid(2), sq::per_channel(3), bad); },
                                    {"paretoq_init_steps", "steps.size() = 3"});
  CHECK(bad[0] == -7.0f);
  reference::check_invalid_argument(
      [&] { (void)sq::mean_abs_init_step(std::vector<double>(4, 0.0), sq::signed_grid(1)); },
      {"mean_abs_init_step", "step[0]"});
}

// ---------------------------------------------------------------------------
// Integer export of the stretched elastic grid (core/codes.hpp hooks)
// ---------------------------------------------------------------------------

#include <stableqat/export.hpp>

namespace {

/// SEQ's code n = round_half_even(w), w = clamp(x/s, -clip, clip) m - shift
/// formed exactly in long double and rounded to T once (as the forward pass's
/// one fma does: a float x = 1/3 gives w = 0.5 in float, a tie, code 0).
template <class T>
long seq_reference_code(bool ternary, ld v) {
  const ld m = ternary ? 1.5L : 2.0L;
  const ld shift = ternary ? 0.0L : 0.5L;
  const ld clip = static_cast<ld>(static_cast<T>(0.99));
  const ld u = std::fmin(std::fmax(v, -clip), clip);
  return std::lrint(static_cast<ld>(static_cast<T>(u * m - shift)));  // ties to even
}

template <class T>
void check_seq_export(bool ternary) {
  const sq::grid g = ternary ? sq::stretched_elastic_ternary_grid() : sq::stretched_elastic_grid(2);
  const sq::quantizer<T> q{g, sq::ste{}, sq::per_channel(64)};
  const std::size_t cols = 64;
  std::mt19937 rng(7);
  std::uniform_real_distribution<T> value(T(-1.5), T(1.5));
  std::vector<T> x(4 * cols);
  for (T& v : x) v = value(rng);
  // Exact code thresholds: v = (n + 1/2 + shift)/m ties.
  x[0] = T(0.5);   // 2-bit: w = 0.5 -> tie to 0; ternary: 0.75 -> 1
  x[1] = T(-0.25); // 2-bit: w = -1 -> code -1
  x[2] = T(0.99);
  x[3] = T(-0.99);
  x[4] = T(1) / T(3);  // ternary threshold neighbourhood (w = 0.5 rounded)
  const std::vector<T> steps = {T(1), T(0.5), T(2), T(0.75)};
  std::vector<std::int8_t> codes(x.size());
  sq::quantize_to_codes(sq::exec::seq, q, x, steps, std::span<std::int8_t>(codes));
  for (std::size_t i = 0; i < x.size(); ++i) {
    const ld v = static_cast<ld>(x[i] * (T(1) / steps[i / cols]));
    CHECK_MESSAGE(codes[i] == seq_reference_code<T>(ternary, v), "i = " << i << " x = " << x[i]);
  }
  std::vector<std::uint8_t> packed(sq::packed_bytes(4, cols, 2));
  sq::pack_codes<std::int8_t>(2, cols, codes, packed);
  std::vector<T> y(x.size()), y_fq(x.size());
  sq::dequantize(sq::exec::seq, q, cols, packed, steps, y);
  sq::fake_quantize(sq::exec::seq, q, x, steps, y_fq);
  for (std::size_t i = 0; i < x.size(); ++i) {
    CHECK_MESSAGE(reference::same_bits(y[i], y_fq[i]), "i = " << i);
  }
}

}  // namespace

TEST_CASE("SEQ export: codes against long double, dequantize == fake_quantize bit for bit") {
  check_seq_export<float>(false);
  check_seq_export<float>(true);
  check_seq_export<double>(false);
  check_seq_export<double>(true);
}
