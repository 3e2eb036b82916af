// Host tests (g++) of the paper's baselines on the CUDA tile path: DSQ (with
// its learnable alpha), EWGS and ParetoQ's stretched elastic grid (SEQ) through
// the launch emulated lane by lane (emulated_launch.hpp), against exec::seq
// (forward and dx bit for bit: the same element templates; step sums and
// d alpha to the sum tolerance) and, for DSQ, against an independent
// long-double transcription of DESIGN.md §1 (tanhl/coshl, not the library's
// exp-based evaluation). Few instantiations on purpose (compile time).
#include <doctest/doctest.h>

#include <stableqat/exec/cuda/storage.hpp>
#include <stableqat/exec/cuda/tile_work.hpp>
#include <stableqat/exec/cuda/tiling.hpp>
#include <stableqat/stableqat.hpp>

#include "emulated_launch.hpp"
#include "test_problems.hpp"

#include <cmath>
#include <cstddef>
#include <limits>
#include <type_traits>
#include <vector>

namespace sq = stableqat;
namespace cd = stableqat::exec::cuda_detail;
using namespace stableqat::test;

namespace {

using ld = long double;

/// DSQ straight from DESIGN.md §1, in long double, as a function of v.
struct dsq_truth {
  ld alpha;
  [[nodiscard]] ld k() const { return std::log(2.0L / alpha - 1.0L); }
  [[nodiscard]] ld scale() const { return 1.0L / (1.0L - alpha); }
  static ld d_of(ld v) { return v - (std::floor(v) + 0.5L); }
  static bool inside(ld v, ld qmin, ld qmax) { return qmin - 0.5L < v && v <= qmax + 0.5L; }
  [[nodiscard]] ld g(ld v) const {
    const ld c = std::cosh(k() * d_of(v));
    return 0.5L * scale() * k() / (c * c);
  }
  /// (1/2) dphi/dalpha and the sum of its two terms' magnitudes.
  [[nodiscard]] ld half_dphi_dalpha(ld v, ld* magnitude) const {
    const ld d = d_of(v);
    const ld c = std::cosh(k() * d);
    const ld first = std::tanh(k() * d) / ((1.0L - alpha) * (1.0L - alpha));
    const ld second = scale() / (c * c) * d * 2.0L / (alpha * (2.0L - alpha));
    *magnitude = 0.5L * (std::fabs(first) + std::fabs(second));
    return 0.5L * (first - second);
  }
};

/// The emulated launch's outputs for one problem (aligned: vector access; else dx aliases dy).
template <class E>
struct emulated_results {
  using T = compute_t<E>;
  std::vector<E> y, dx;
  std::vector<T> dsteps, doffsets;
  T dparameter = std::numeric_limits<T>::quiet_NaN();
};

template <class E, class S>
emulated_results<E> run_emulated(sq::quantizer<compute_t<E>, S> const& q, problem<E> const& p, bool has_offsets,
                                 double grad_scale, bool aligned) {
  using T = compute_t<E>;
  const std::size_t numel = p.x.size();
  const T* offsets = has_offsets ? p.offsets.data() : nullptr;
  emulated_results<E> r;
  r.y.assign(numel, E{});
  emulate_launch<false>(q, numel, cd::element_buffers<E, T>{p.x.data(), nullptr, r.y.data(), p.steps.data(), offsets},
                        cd::gradient_buffers<T>{}, has_offsets, true);
  r.dx = aligned ? std::vector<E>(numel) : p.dy;
  const E* dy = aligned ? p.dy.data() : r.dx.data();
  r.dsteps.assign(p.steps.size(), T(-7));
  r.doffsets.assign(p.steps.size(), T(-7));
  cd::gradient_buffers<T> g;
  g.dsteps = r.dsteps.data();
  g.doffsets = has_offsets ? r.doffsets.data() : nullptr;
  g.grad_scale = grad_scale;
  g.dparameter = &r.dparameter;
  emulate_launch<true>(q, numel, cd::element_buffers<E, T>{p.x.data(), dy, r.dx.data(), p.steps.data(), offsets}, g,
                       has_offsets, aligned);
  return r;
}

/// One problem on the emulated CUDA path against exec::seq, with vector and
/// with scalar access (dx then aliasing dy).
template <class E, class S>
void check_against_seq(sq::quantizer<compute_t<E>, S> const& q, std::size_t numel, bool has_offsets, bool nan,
                       unsigned seed) {
  using T = compute_t<E>;
  using traits = sq::exec::storage_traits<E>;
  INFO(describe(q, numel, has_offsets));
  const problem<E> p = make_problem<E>(q.grid(), q.layout(), numel, nan, seed);
  const seq_reference<T> seq = run_seq(q, p, has_offsets);
  for (bool aligned : {true, false}) {
    CAPTURE(aligned);
    const emulated_results<E> r = run_emulated(q, p, has_offsets, seq.grad_scale, aligned);
    for (std::size_t i = 0; i < numel; ++i) {
      INFO("i = " << i << ", x = " << seq.x[i] << ", dy = " << seq.dy[i]);
      REQUIRE(reference::same_bits(r.y[i], traits::to_storage(seq.y[i])));
      REQUIRE(reference::same_bits(r.dx[i], traits::to_storage(seq.dx[i])));
    }
    check_step_gradients(r.dsteps, seq.dsteps, seq.step_scale, seq.grad_scale, "dsteps");
    if (has_offsets) {
      check_step_gradients(r.doffsets, seq.doffsets, seq.offset_scale, seq.grad_scale, "doffsets");
    }
    if constexpr (sq::learnable_surrogate<S>) {
      check_parameter_gradient(r.dparameter, seq.dparameters[0], seq.parameter_scale);
    }
  }
}

template <class E, class S>
void check_grids(S const& surrogate, std::initializer_list<sq::grid> grids, unsigned seed) {
  for (auto const& g : grids) {
    for (auto const& c : layout_cases()) {
      const sq::quantizer<compute_t<E>, S> q{g, surrogate, c.layout};
      for (bool has_offsets : {false, true}) {
        ++seed;
        check_against_seq<E>(q, c.numel, has_offsets, seed % 4 == 0, seed);
      }
    }
  }
}

/// DSQ through the emulated launch against dsq_truth: every forward level,
/// dx = g dy (float/double storage), the consistent step term of a single
/// element per step, and d alpha = sum s dy (1/2) dphi/dalpha over the band.
template <class T>
void check_dsq_against_long_double(double alpha, sq::grid const& g, sq::step_layout const& layout, std::size_t numel,
                                   bool has_offsets, unsigned seed) {
  const sq::quantizer<T, sq::dsq_surrogate> q{g, sq::dsq_surrogate{alpha}, layout};
  INFO(describe(q, numel, has_offsets) << ", alpha " << alpha);
  const dsq_truth truth{static_cast<ld>(alpha)};
  const problem<T> p = make_problem<T>(g, layout, numel, false, seed);
  const emulated_results<T> r = run_emulated(q, p, has_offsets, 1.0, true);
  const ld qmin = g.qmin(), qmax = g.qmax();
  const ld eps = std::numeric_limits<T>::epsilon();
  ld dalpha = 0.0L, dalpha_scale = 0.0L;
  std::vector<ld> step_sums(p.steps.size(), 0.0L), step_scales(p.steps.size(), 0.0L);
  std::size_t inside_count = 0;
  for (std::size_t i = 0; i < numel; ++i) {
    const std::size_t k = layout.step_index(i);
    const T s = p.steps[k];
    const T b = has_offsets ? p.offsets[k] : T(0);
    const T v = (has_offsets ? p.x[i] - b : p.x[i]) * (T(1) / s);  // the contract's v, in T
    INFO("i = " << i << ", v = " << v);
    const ld vl = v;
    // floor(v) + (phi > 0), ties down; floor(-0) = -0 keeps y = -0 for x = -0.
    ld level = dsq_truth::d_of(vl) > 0.0L ? std::floor(vl) + 1.0L : std::floor(vl);
    level = level < qmin ? qmin : (qmax < level ? qmax : level);  // keeps NaN and -0 (fmax may not)
    // s * level + b is one fused multiply-add where the build has FMA and two
    // roundings without it (the portable SSE2 build): either is the contract.
    const T y = has_offsets ? static_cast<T>(static_cast<ld>(s) * level + static_cast<ld>(b))
                            : static_cast<T>(static_cast<ld>(s) * level);
    const T y_unfused = has_offsets ? static_cast<T>(static_cast<T>(static_cast<ld>(s) * level) + b) : y;
    CHECK((reference::same_bits(r.y[i], y) || reference::same_bits(r.y[i], y_unfused)));
    const ld dy = p.dy[i];
    if (std::isfinite(vl) && dsq_truth::inside(vl, qmin, qmax)) {
      ++inside_count;
      const ld gi = truth.g(vl);
      CHECK(std::fabs(r.dx[i] - gi * dy) <= 16 * eps * std::fabs(gi * dy) + std::numeric_limits<T>::denorm_min());
      step_sums[k] += dy * (level - vl * gi);
      step_scales[k] += std::fabs(dy) * (std::fabs(level) + std::fabs(vl * gi));
      ld magnitude = 0.0L;
      dalpha += dy * static_cast<ld>(s) * truth.half_dphi_dalpha(vl, &magnitude);
      dalpha_scale += std::fabs(dy * static_cast<ld>(s)) * magnitude;
    } else {
      CHECK(r.dx[i] == T(0));
      step_sums[k] += dy * level;  // ±Inf: the clamped level
      step_scales[k] += std::fabs(dy * level);
    }
  }
  CHECK(inside_count > numel / 2);
  for (std::size_t k = 0; k < p.steps.size(); ++k) {
    INFO("dsteps[" << k << "] = " << r.dsteps[k] << ", long double " << static_cast<double>(step_sums[k]));
    CHECK(std::fabs(r.dsteps[k] - step_sums[k]) <= 64 * eps * step_scales[k] + std::numeric_limits<T>::denorm_min());
  }
  // d alpha's two terms cancel increasingly as alpha -> 1 (k -> 0).
  INFO("d alpha = " << r.dparameter << ", long double " << static_cast<double>(dalpha));
  CHECK(std::fabs(r.dparameter - dalpha) <= 64 * eps * dalpha_scale / (1.0L - alpha));
}

}  // namespace

TEST_CASE("cuda tile work: DSQ matches exec::seq (forward, dx bits; dsteps, doffsets, d alpha sums)") {
  check_grids<float>(sq::dsq_surrogate{0.2}, {sq::signed_grid(4), sq::unsigned_grid(2), sq::ternary_grid()}, 10);
  check_grids<double>(sq::dsq_surrogate{0.6}, {sq::signed_grid(3)}, 20);
  check_grids<__half>(sq::dsq_surrogate{0.05}, {sq::signed_grid(2)}, 30);
}

TEST_CASE("cuda tile work: DSQ against long double (levels, ties down, band, g, step term, d alpha)") {
  for (const double alpha : {0.05, 0.2, 0.7}) {
    // Whole rows per tile, rows split into tiles (partial sums), columns split into row blocks.
    check_dsq_against_long_double<float>(alpha, sq::signed_grid(4), sq::per_channel(37), 37 * 11, false, 41);
    check_dsq_against_long_double<float>(alpha, sq::signed_grid(2), sq::per_tensor(), 3001, true, 42);
    check_dsq_against_long_double<float>(alpha, sq::unsigned_grid(3), sq::per_column(130), 130 * 40, false, 43);
    check_dsq_against_long_double<double>(alpha, sq::signed_grid(4), sq::per_channel(300), 300 * 5, true, 44);
  }
}

TEST_CASE("cuda tile work: DSQ d alpha is the same for every storage path and alignment") {
  // A hand-checkable case: one step s = 0.5, alpha = 0.2, x = 0.1 -> v = 0.2,
  // d = -0.3; dy = 1. d alpha = s * (1/2) dphi/dalpha(d) from dsq_truth.
  const sq::quantizer<float, sq::dsq_surrogate> q{sq::signed_grid(2), sq::dsq_surrogate{0.2}, sq::per_tensor()};
  problem<float> p;
  p.x = {0.1f};
  p.dy = {1.0f};
  p.steps = {0.5f};
  p.offsets = {0.0f};
  ld magnitude = 0.0L;
  const ld expected = 0.5L * dsq_truth{0.2L}.half_dphi_dalpha(static_cast<ld>(0.1f * (1.0f / 0.5f)), &magnitude);
  for (bool aligned : {true, false}) {
    const auto r = run_emulated(q, p, false, 1.0, aligned);
    CHECK(r.dparameter == doctest::Approx(static_cast<double>(expected)).epsilon(1e-6));
    CHECK(r.y[0] == 0.0f);  // floor(0.2) + (d > 0) = 0
  }
}

TEST_CASE("cuda tile work: EWGS matches exec::seq; delta = 0 is the STE bit for bit") {
  check_grids<float>(sq::ewgs_surrogate{0.5}, {sq::signed_grid(4), sq::signed_grid(1), sq::stretched_elastic_grid(2)},
                     50);
  check_grids<__nv_bfloat16>(sq::ewgs_surrogate{1.25}, {sq::unsigned_grid(3)}, 60);
  const sq::quantizer<float, sq::ewgs_surrogate> zero{sq::signed_grid(3), sq::ewgs_surrogate{0.0}, sq::per_column(9)};
  const sq::quantizer<float, sq::ste> ste{sq::signed_grid(3), sq::ste{}, sq::per_column(9)};
  const problem<float> p = make_problem<float>(zero.grid(), zero.layout(), 9 * 300, true, 70);
  const auto a = run_emulated(zero, p, true, 0.01, true);
  const auto b = run_emulated(ste, p, true, 0.01, true);
  for (std::size_t i = 0; i < p.x.size(); ++i) {
    REQUIRE(reference::same_bits(a.dx[i], b.dx[i]));
  }
  for (std::size_t k = 0; k < p.steps.size(); ++k) {
    REQUIRE(reference::same_bits(a.dsteps[k], b.dsteps[k]));
    REQUIRE(reference::same_bits(a.doffsets[k], b.doffsets[k]));
  }
}

TEST_CASE("cuda tile work: stretched elastic grids (2-bit, ternary) with STE and the Fourier surrogate") {
  check_grids<float>(sq::ste{}, {sq::stretched_elastic_grid(2), sq::stretched_elastic_ternary_grid()}, 80);
  check_grids<double>(sq::fourier_surrogate<1>{}, {sq::stretched_elastic_grid(2), sq::stretched_elastic_ternary_grid()},
                      90);
  check_grids<__half>(sq::fourier_surrogate<1>{}, {sq::stretched_elastic_ternary_grid()}, 100);
}
