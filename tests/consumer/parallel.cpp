// A downstream program linking stableqat::parallel: exec::par on several
// threads over a tensor of many chunks. Exits non-zero unless the forward
// pass matches exec::seq bit for bit, the step gradient matches an
// independent long double sum, and the step gradient has the same bits for
// 1 and 2 threads (the determinism exec::par promises). With
// STABLEQAT_CONSUMER_EXPECT_OPENMP (the consumer found OpenMP itself) the
// program must also have been compiled with OpenMP by the target.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include <stableqat/stableqat.hpp>

#if defined(STABLEQAT_CONSUMER_EXPECT_OPENMP) && !defined(_OPENMP)
#error "stableqat::parallel did not compile this program with OpenMP"
#endif

namespace sq = stableqat;

int main() {
  const sq::quantizer<float, sq::ste> q{sq::signed_grid(2), sq::ste{}, sq::per_tensor()};
  const std::size_t n = 300001;  // several chunks of 64 Ki elements, and a tail
  std::vector<float> x(n), dy(n), y_seq(n), y_par(n), dx(n);
  for (std::size_t i = 0; i < n; ++i) {
    x[i] = static_cast<float>(std::sin(0.001 * static_cast<double>(i)));  // in [-1, 1]: v in [-4, 4]
    dy[i] = static_cast<float>(std::cos(0.003 * static_cast<double>(i)));
  }
  const std::vector<float> steps{0.25f};
  sq::fake_quantize(sq::exec::seq, q, x, steps, y_seq);
  sq::fake_quantize(sq::exec::par.with_threads(2), q, x, steps, y_par);
  int failures = std::memcmp(y_seq.data(), y_par.data(), n * sizeof(float)) != 0 ? 1 : 0;

  std::vector<float> ds1(1), ds2(1);
  sq::fake_quantize_backward(sq::exec::par.with_threads(1), q, x, steps, dy, dx, ds1, 1.0);
  sq::fake_quantize_backward(sq::exec::par.with_threads(2), q, x, steps, dy, dx, ds2, 1.0);
  // Independent step terms (LSQ, 2-bit grid [-2, 1]): dy * (inside ? round(v) - v : clamp(v, -2, 1)).
  long double expected = 0.0L, magnitude = 0.0L;
  for (std::size_t i = 0; i < n; ++i) {
    const double v = static_cast<double>(x[i] * (1.0f / steps[0]));
    const bool inside = -2.0 <= v && v <= 1.0;
    const double term = inside ? std::nearbyint(v) - v : (v < -2.0 ? -2.0 : 1.0);
    expected += static_cast<long double>(dy[i]) * static_cast<long double>(term);
    magnitude += std::fabs(static_cast<long double>(dy[i]) * static_cast<long double>(term));
  }
  if (std::memcmp(ds1.data(), ds2.data(), sizeof(float)) != 0) {
    std::printf("dsteps differs between 1 and 2 threads: %.9g vs %.9g\n", ds1[0], ds2[0]);
    ++failures;
  }
  // The contract: error <= 1e-6 * sum|terms|, plus the final rounding to float.
  if (std::fabs(static_cast<long double>(ds2[0]) - expected) > 1e-6L * magnitude + 6e-8L * std::fabs(expected)) {
    std::printf("dsteps %.9g, expected %.9Lg\n", ds2[0], expected);
    ++failures;
  }
#if defined(_OPENMP)
  const char* threading = "OpenMP";
#else
  const char* threading = "no OpenMP (exec::par runs as exec::simd)";
#endif
  std::printf("consumer_parallel: stableqat %s, exec::par with %s, %d failures\n", STABLEQAT_VERSION_STRING, threading,
              failures);
  return failures == 0 ? 0 : 1;
}
