// The estimator families side by side, one short function each, on the same
// 2-bit weights and upstream gradient: STE/LSQ(+), StableQAT's Fourier
// surrogate, DSQ, ParetoQ's stretched elastic grid (SEQ) and EWGS.
// Each prints dx and checks one property against its closed form (docs/math.md
// §2, §3 and §5), so ctest fails if the example stops saying what it shows.
#include <cmath>
#include <cstdio>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include <stableqat/stableqat.hpp>

namespace sq = stableqat;

namespace {

// One row of weights, in units of the step 0.1: on a level (0.0, 1.0), a
// quarter off (0.25, -0.75), at a rounding threshold (+-0.5 is a tie, so +-0.45),
// and outside the grid [-2, 1] (-2.6, 1.7).
const std::vector<float> w{0.0f, 0.1f, 0.025f, -0.075f, 0.045f, -0.045f, -0.26f, 0.17f};
const std::vector<float> dy{1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f};
constexpr float step = 0.1f;

void print_row(const char* name, std::span<const float> dx, double dstep) {
  std::printf("%-26s dx =", name);
  for (const float d : dx) std::printf(" %6.3f", static_cast<double>(d));
  std::printf("   dstep = %+.4f\n", dstep);
}

void expect(bool ok, std::string const& what) {
  if (!ok) throw std::runtime_error("check failed: " + what);
}

bool near(double a, double b, double tolerance = 1e-5) { return std::fabs(a - b) <= tolerance * (1.0 + std::fabs(b)); }

/// STE / LSQ+: g = 1 inside [qmin, qmax], 0 outside; with a learnable offset b, dx + db = dy.
void ste_lsq() {
  const sq::quantizer<float, sq::ste> q{sq::signed_grid(2), sq::ste{}};
  const std::vector<float> steps{step}, offsets{0.0f};
  std::vector<float> dx(w.size()), dsteps(1), doffsets(1);
  sq::fake_quantize_backward(sq::exec::seq, q, w, steps, dy, dx, dsteps, offsets, doffsets);
  print_row("STE / LSQ+ (offset b)", dx, dsteps[0]);
  for (std::size_t i = 0; i < 6; ++i) expect(dx[i] == 1.0f, "STE passes dy inside the grid");
  expect(dx[6] == 0.0f && dx[7] == 0.0f, "STE stops dy outside the grid");
  // sum(dy - dx) * grad_scale, grad_scale = 1/sqrt(8 * qmax) = 1/sqrt(8).
  expect(near(doffsets[0], 2.0 / std::sqrt(8.0)), "LSQ+ offset gradient = grad_scale * sum(dy - dx)");
}

/// StableQAT: g(r) = (1 - cS)/(1 + cS), small on a level, 1 at a threshold.
void stableqat_fourier() {
  const sq::quantizer<float, sq::fourier_surrogate<1>> q{sq::signed_grid(2), sq::fourier_surrogate<1>{0.21}};
  const std::vector<float> steps{step};
  std::vector<float> dx(w.size()), dsteps(1);
  sq::fake_quantize_backward(sq::exec::seq, q, w, steps, dy, dx, dsteps);
  print_row("StableQAT K=1, A=0.21", dx, dsteps[0]);
  expect(near(dx[0], 0.0346582), "g(r = 0) = 0.0346582");
  expect(near(dx[2], 0.205012, 1e-4), "g(r = 1/4) = 0.205012");
}

/// DSQ: g = (1/2) scale k sech^2(k d) and a gradient for the learnable alpha.
void dsq() {
  const double alpha = 0.2;
  const sq::quantizer<float, sq::dsq_surrogate> q{sq::signed_grid(2), sq::dsq_surrogate{alpha}};
  const std::vector<float> steps{step};
  std::vector<float> dx(w.size()), dsteps(1), dalpha(1);
  sq::fake_quantize_backward(sq::exec::seq, q, w, steps, dy, dx, dsteps, dalpha);
  print_row("DSQ alpha=0.2", dx, dsteps[0]);
  std::printf("%-26s d alpha = %+.5f\n", "", static_cast<double>(dalpha[0]));
  const double k = std::log(2.0 / alpha - 1.0), scale = 1.0 / (1.0 - alpha);
  expect(near(dx[0], k * alpha * (2.0 - alpha) / (2.0 * (1.0 - alpha))), "DSQ g on a level = k a (2-a) / (2 (1-a))");
  const double d = 0.45 - 0.5;  // w = 0.045 sits 0.05 steps below the threshold 0.5
  expect(near(dx[4], 0.5 * scale * k / (std::cosh(k * d) * std::cosh(k * d))), "DSQ g near a threshold");
  expect(std::isfinite(dalpha[0]), "d alpha is finite");
}

/// ParetoQ: the stretched elastic 2-bit grid (levels +-1/4, +-3/4 of alpha = max|w|) with the STE.
void paretoq_seq() {
  const sq::quantizer<float, sq::ste> q{sq::stretched_elastic_grid(2), sq::ste{}};
  std::vector<float> alpha(1), y(w.size()), dx(w.size()), dsteps(1);
  sq::paretoq_init_steps(w, q.grid(), q.layout(), alpha);
  sq::fake_quantize(sq::exec::seq, q, w, alpha, y);
  sq::fake_quantize_backward(sq::exec::seq, q, w, alpha, dy, dx, dsteps);
  print_row("ParetoQ SEQ 2-bit + STE", dx, dsteps[0]);
  std::printf("%-26s alpha = max|w| = %.2f, y/alpha =", "", static_cast<double>(alpha[0]));
  for (const float v : y) std::printf(" %+.2f", static_cast<double>(v / alpha[0]));
  std::printf("\n");
  expect(alpha[0] == 0.26f, "alpha starts at max|w|");
  for (const float v : y) {
    const double level = std::fabs(static_cast<double>(v / alpha[0]));
    expect(near(level, 0.25, 1e-6) || near(level, 0.75, 1e-6), "SEQ levels are +-1/4, +-3/4 of alpha");
  }
  expect(dx[6] == 0.0f, "SEQ: dx = 0 beyond the clip |x| <= 0.99 alpha (x = -alpha is outside)");
}

/// EWGS: g = 1 + delta sign(dy) r; delta = 0 is the STE bit for bit.
void ewgs() {
  const std::vector<float> steps{step};
  std::vector<float> dx(w.size()), dsteps(1), dx_ste(w.size()), dsteps_ste(1);
  const sq::quantizer<float, sq::ewgs_surrogate> q{sq::signed_grid(2), sq::ewgs_surrogate{0.2}};
  sq::fake_quantize_backward(sq::exec::seq, q, w, steps, dy, dx, dsteps);
  print_row("EWGS delta=0.2", dx, dsteps[0]);
  expect(near(dx[2], 1.0 + 0.2 * 0.25, 1e-6), "EWGS g(r = 1/4, dy > 0) = 1.05");
  const sq::quantizer<float, sq::ewgs_surrogate> zero{sq::signed_grid(2), sq::ewgs_surrogate{0.0}};
  const sq::quantizer<float, sq::ste> ste{sq::signed_grid(2), sq::ste{}};
  sq::fake_quantize_backward(sq::exec::seq, zero, w, steps, dy, dx, dsteps);
  sq::fake_quantize_backward(sq::exec::seq, ste, w, steps, dy, dx_ste, dsteps_ste);
  expect(dx == dx_ste && dsteps == dsteps_ste, "EWGS with delta = 0 is the STE");
}

}  // namespace

int main() {
  try {
    std::printf("2-bit grid {-2,-1,0,1} x step 0.1, dy = 1; w =");
    for (const float v : w) std::printf(" %+.3f", static_cast<double>(v));
    std::printf("\n");
    ste_lsq();
    stableqat_fourier();
    dsq();
    paretoq_seq();
    ewgs();
    std::printf("all closed-form checks passed\n");
  } catch (std::exception const& e) {
    std::fprintf(stderr, "estimator_families: %s\n", e.what());
    return 1;
  }
}
