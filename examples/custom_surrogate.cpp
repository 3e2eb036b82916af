// Choosing the surrogate gradient: the harmonic count K and the coefficients
// are template and constructor arguments, and any type that satisfies the
// `stableqat::surrogate` concept plugs into the same front-end.
#include <cmath>
#include <cstdio>
#include <numbers>
#include <stdexcept>
#include <vector>

#include <stableqat/stableqat.hpp>

namespace sq = stableqat;

/// A user-defined surrogate: a raised cosine around the STE,
///
///     g(r) = 1 - depth * cos(2 pi r),   0 <= depth < 1,
///
/// which is small at the grid points (r = 0) and large at the decision
/// boundaries (r = ±1/2) like StableQAT's, with mean 1 over a period like the
/// STE. It is the classic Fourier derivative of round() (depth = 2, see
/// fourier_round_derivative<1>) damped until it stays positive.
///
/// derivative() is a template over the value type so that the SIMD backends
/// can call it with batches: unqualified `cos` finds std::cos for scalars and
/// xsimd::cos for batches (argument-dependent lookup).
struct raised_cosine {
  double depth = 0.5;

  template <class V>
  V derivative(V r) const {
    using std::cos;
    using T = sq::scalar_of_t<V>;
    const V two_pi = V(static_cast<T>(2.0 * std::numbers::pi));
    return V(T(1)) - V(static_cast<T>(depth)) * cos(two_pi * r);
  }
};
static_assert(sq::surrogate<raised_cosine>, "raised_cosine must model stableqat::surrogate");

/// The same front-end for every surrogate type: 2-bit fake quantization of a
/// small weight row, backward with upstream gradient 1, print dx and dstep.
template <sq::surrogate S>
void quantize_with(const char* name, S const& surrogate) {
  const std::vector<float> w{-0.61f, -0.34f, -0.26f, -0.02f, 0.09f, 0.24f, 0.27f, 0.45f};
  const sq::quantizer<float, S> q{sq::signed_grid(2), surrogate};
  const std::vector<float> steps{0.3f};
  std::vector<float> y(w.size()), dy(w.size(), 1.0f), dx(w.size()), dsteps(1);
  sq::fake_quantize(sq::exec::seq, q, w, steps, y);
  sq::fake_quantize_backward(sq::exec::seq, q, w, steps, dy, dx, dsteps);
  std::printf("%-34s dx =", name);
  for (const float d : dx) std::printf(" %6.3f", static_cast<double>(d));
  std::printf("   dstep = %.4f\n", static_cast<double>(dsteps[0]));
}

/// g at a few residuals, for any surrogate type.
template <sq::surrogate S>
void tabulate(const char* name, S const& surrogate) {
  std::printf("%-34s", name);
  for (const double r : {0.0, 0.125, 0.25, 0.375, 0.5}) std::printf(" %8.5f", surrogate.derivative(r));
  std::printf("\n");
}

int main() {
  // K and the amplitude as template and constructor arguments (paper family
  // a_k = A (-1)^k / (2k+1)), validated at compile time in constant expressions.
  constexpr sq::fourier_surrogate<1> paper{0.21};
  constexpr sq::fourier_surrogate<2> two_harmonics{0.23};
  // Any coefficients a_0..a_{K-1}: here three harmonics that are not the paper's.
  const auto custom = sq::fourier_surrogate<3>::from_coefficients({0.2, -0.02, 0.005});
  const raised_cosine mine{0.6};

  std::printf("g(r) at r = %8.3f %8.3f %8.3f %8.3f %8.3f\n", 0.0, 0.125, 0.25, 0.375, 0.5);
  tabulate("ste (fourier_surrogate<0>)", sq::ste{});
  tabulate("fourier_surrogate<1>{0.21} (paper)", paper);
  tabulate("fourier_surrogate<2>{0.23}", two_harmonics);
  tabulate("fourier_surrogate<3> custom a_k", custom);
  tabulate("raised_cosine{0.6} (user type)", mine);
  std::printf("fourier_surrogate<3> custom: min g = %.5f, max g = %.5f (checked at construction)\n\n",
              custom.min_derivative(), custom.max_derivative());

  std::printf("2-bit fake quantization, step 0.3, w = -0.61 -0.34 -0.26 -0.02 0.09 0.24 0.27 0.45\n");
  quantize_with("ste", sq::ste{});
  quantize_with("fourier_surrogate<1>{0.21}", paper);
  quantize_with("fourier_surrogate<3> custom a_k", custom);
  quantize_with("raised_cosine{0.6} (user type)", mine);

  // Amplitudes past the validity limit are refused: g would turn negative or infinite.
  try {
    const sq::fourier_surrogate<1> too_strong{0.23};
    (void)too_strong;
    std::printf("unexpected: amplitude 0.23 accepted\n");
    return 1;
  } catch (std::invalid_argument const& e) {
    std::printf("\nrefused as expected: %s\n", e.what());
  }
  std::printf("largest valid paper amplitude: K=1 %.6f, K=2 %.6f, K=3 %.6f\n",
              sq::fourier_surrogate<1>::max_paper_amplitude(), sq::fourier_surrogate<2>::max_paper_amplitude(),
              sq::fourier_surrogate<3>::max_paper_amplitude());
}
