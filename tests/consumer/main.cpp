// A downstream program linking stableqat::stableqat: a user-chosen
// five-harmonic surrogate through the public API. Exits non-zero unless the
// numbers match independent values. That target must not bring -fopenmp
// (exec::par lives in stableqat::parallel, see parallel.cpp).
#include <cmath>
#include <cstdio>
#include <vector>

#include <stableqat/stableqat.hpp>

#if defined(_OPENMP)
#error "stableqat::stableqat compiled this program with OpenMP; only stableqat::parallel may"
#endif

namespace sq = stableqat;

int main() {
  // Paper family with five harmonics; A = 0.2 is inside the K = 5 limit (~0.242).
  constexpr sq::fourier_surrogate<5> surrogate{0.2};
  const sq::quantizer<double, sq::fourier_surrogate<5>> q{sq::signed_grid(4), surrogate, sq::per_tensor()};

  const std::vector<double> x{-9.0, -0.26, 0.0, 0.49, 7.6};
  const std::vector<double> steps{0.5};
  std::vector<double> y(x.size()), dx(x.size()), dsteps(1);
  const std::vector<double> dy(x.size(), 1.0);
  sq::fake_quantize(sq::exec::seq, q, x, steps, y);
  sq::fake_quantize_backward(sq::exec::seq, q, x, steps, dy, dx, dsteps, 1.0);

  // Independent check: g = (1 - cS)/(1 + cS) from the direct cosine sum.
  const double c = std::sqrt(2.0) * 3.14159265358979323846;
  int failures = 0;
  const double expected_y[] = {-4.0, -0.5, 0.0, 0.5, 3.5};  // 4-bit grid [-8, 7] times 0.5
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double v = x[i] / steps[0];
    const double r = v - std::nearbyint(v);
    double s = 0.0;
    for (int k = 0; k < 5; ++k) {
      s += 0.2 * (k % 2 == 0 ? 1.0 : -1.0) / (2 * k + 1) * std::cos((2 * k + 1) * 3.14159265358979323846 * r);
    }
    const bool inside = -8.0 <= v && v <= 7.0;
    const double g = inside ? (1 - c * s) / (1 + c * s) : 0.0;
    if (y[i] != expected_y[i] || std::fabs(dx[i] - g) > 1e-12) {
      std::printf("mismatch at %zu: y=%g (want %g) dx=%.17g (want %.17g)\n", i, y[i], expected_y[i], dx[i], g);
      ++failures;
    }
  }
  std::printf("consumer: stableqat %s, fourier_surrogate<5>, %d failures\n", STABLEQAT_VERSION_STRING, failures);
  return failures == 0 ? 0 : 1;
}
