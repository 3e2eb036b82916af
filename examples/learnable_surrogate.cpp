// A user-written estimator with a learnable parameter, through the optional
// hooks of <stableqat/surrogates/concepts.hpp>, next to the built-in baselines
// (DSQ's learnable alpha, EWGS, ParetoQ's stretched elastic grid).
//
// The estimator: a soft level L(v) = v - (a / 2 pi) sin(2 pi v) between the
// grid points (it passes through every integer and every half-integer), so
//
//     g(r)     = dL/dv = 1 - a cos(2 pi r)     (mean 1 over a period, positive for 0 <= a < 1)
//     dL/da    = -sin(2 pi r) / (2 pi)          (the learnable parameter's gradient term)
//
// Declaring `parameter_count` and `derivative_with_parameters(r)` is all it
// takes: the backward pass then returns d a = sum_i dy_i * s * dL/da through
// fake_quantize_backward's `dparameters` argument, summed deterministically.
#include <cmath>
#include <cstdio>
#include <numbers>
#include <stdexcept>
#include <vector>

#include <stableqat/stableqat.hpp>

namespace sq = stableqat;

struct learnable_cosine {
  static constexpr std::size_t parameter_count = 1;
  double depth = 0.3;  // a, learnable

  template <class V>
  V derivative(V r) const {
    return derivative_with_parameters(r).derivative;
  }

  /// g and dL/da in one go (so the two share sin/cos); V is float, double or a batch.
  template <class V>
  sq::derivative_and_parameters<V, 1> derivative_with_parameters(V r) const {
    using std::cos;
    using std::sin;
    using T = sq::scalar_of_t<V>;
    const V angle = V(static_cast<T>(2.0 * std::numbers::pi)) * r;
    sq::derivative_and_parameters<V, 1> out;
    out.derivative = V(T(1)) - V(static_cast<T>(depth)) * cos(angle);
    out.parameters[0] = -sin(angle) * V(static_cast<T>(0.5 / std::numbers::pi));
    return out;
  }
};
static_assert(sq::learnable_surrogate<learnable_cosine>, "learnable_cosine must model learnable_surrogate");

int main() {
  try {
    const std::vector<float> w{-0.61f, -0.2f, 0.05f, 0.33f, 0.48f, 0.9f};
    const std::vector<float> dy(w.size(), 1.0f);
    std::vector<float> y(w.size()), dx(w.size()), dsteps(2), dparameter(1);

    // 1. The user-written estimator on a 2-bit grid, one step per row of 3.
    const sq::quantizer<float, learnable_cosine> mine{sq::signed_grid(2), learnable_cosine{0.3}, sq::per_channel(3)};
    std::vector<float> steps(2);
    sq::lsq_init_steps(w, mine.grid(), mine.layout(), steps);
    sq::fake_quantize(sq::exec::seq, mine, w, steps, y);
    sq::fake_quantize_backward(sq::exec::seq, mine, w, steps, dy, dx, dsteps, dparameter);
    std::printf("learnable cosine: d depth = %+.6f, dsteps = %+.6f %+.6f\n", dparameter[0], dsteps[0], dsteps[1]);

    // 2. DSQ, the paper's baseline with a learnable alpha (same call shape).
    const sq::quantizer<float, sq::dsq_surrogate> dsq{sq::signed_grid(2), sq::dsq_surrogate{0.2}, sq::per_channel(3)};
    sq::fake_quantize_backward(sq::exec::seq, dsq, w, steps, dy, dx, dsteps, dparameter);
    std::printf("DSQ alpha = 0.2:  d alpha = %+.6f, dx = ", dparameter[0]);
    for (float d : dx) std::printf("%.4f ", d);
    std::printf("\n");

    // 3. EWGS (g sees dy) and ParetoQ's stretched elastic 2-bit grid with its max|w_row| init.
    const sq::quantizer<float, sq::ewgs_surrogate> ewgs{sq::stretched_elastic_grid(2), sq::ewgs_surrogate{0.1},
                                                        sq::per_channel(3)};
    sq::paretoq_init_steps(w, ewgs.grid(), ewgs.layout(), steps);
    sq::fake_quantize(sq::exec::seq, ewgs, w, steps, y);
    std::printf("SEQ + EWGS: alpha = %.2f %.2f, y = ", steps[0], steps[1]);
    for (float v : y) std::printf("%+.4f ", v);
    std::printf("\n");
    // Levels are ±1/4, ±3/4 of each row's alpha = max|w_row|.
    for (std::size_t i = 0; i < w.size(); ++i) {
      const float q = y[i] / steps[i / 3];
      if (std::fabs(std::fabs(q) - 0.25f) > 1e-6f && std::fabs(std::fabs(q) - 0.75f) > 1e-6f) {
        throw std::runtime_error("a stretched elastic level is off the grid");
      }
    }
  } catch (std::exception const& e) {
    std::fprintf(stderr, "learnable_surrogate: %s\n", e.what());
    return 1;
  }
}
