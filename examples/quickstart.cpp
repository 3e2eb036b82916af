// Quantize a vector to 2 bits, run the backward pass, print both.
#include <cstdio>
#include <vector>

#include <stableqat/stableqat.hpp>

namespace sq = stableqat;

int main() {
  std::vector<float> x{-1.3f, -0.42f, -0.05f, 0.0f, 0.18f, 0.31f, 0.77f, 2.5f};
  const sq::grid grid = sq::signed_grid(2);  // levels -2, -1, 0, 1
  const sq::quantizer<float, sq::fourier_surrogate<1>> q{grid, sq::fourier_surrogate<1>{0.21}};

  std::vector<float> steps{static_cast<float>(sq::lsq_init_step(x, grid))};
  std::vector<float> y(x.size());
  sq::fake_quantize(sq::exec::seq, q, x, steps, y);

  std::vector<float> dy(x.size(), 1.0f), dx(x.size()), dsteps(1);
  sq::fake_quantize_backward(sq::exec::seq, q, x, steps, dy, dx, dsteps);

  std::printf("step = %.6f   (LSQ init 2*mean|x|/sqrt(qmax))\n", steps[0]);
  std::printf("%10s %10s %10s\n", "x", "y", "dL/dx");
  for (std::size_t i = 0; i < x.size(); ++i) {
    std::printf("%10.4f %10.4f %10.6f\n", x[i], y[i], dx[i]);
  }
  std::printf("dL/dstep = %.6f   (LSQ grad scale 1/sqrt(numel*qmax) included)\n", dsteps[0]);
}
