// Writes the surrogate gradients g of d round(x)/dx as CSV, for plotting.
//
//   surrogate_curves [DIR]   (default: the current folder)
//
// DIR/surrogate_derivatives.csv: x in [-1, 1] (two periods) and
//   - ste: the straight-through estimator, g = 1 (K = 0)
//   - k1_a*: StableQAT's rotated Fourier surrogate, one harmonic, amplitudes
//     0.10, 0.15, 0.21 (paper default) and 0.224 (just below the limit 0.2251)
//   - k2_a0.21, k3_a0.21, k3_a0.24: more harmonics (paper family)
//   - round_k1..round_k3: the derivative of the classic Fourier series of
//     round() (fourier_round_derivative<K>), for contrast: unbounded in K and negative
// DIR/baseline_derivatives.csv: the paper's baselines beside STE and StableQAT (K = 1, A = 0.21):
//   - dsq_a*: DSQ's g = (1/2) scale k sech^2(k d), alpha = 0.05, 0.2 (default), 0.5
//   - ewgs_pos / ewgs_neg: EWGS's g = 1 + delta sign(dy) r, delta = 0.2, for dy > 0 and dy < 0
// DIR/fourier_round.csv: round(x) and the classic series fourier_round<K>(x), K = 1, 3, 9.
// DIR/grid_levels.csv: x/alpha in [-1.25, 1.25] and the forward levels y/alpha of
//   - seq2: ParetoQ's stretched elastic 2-bit grid (step = alpha: levels ±1/4, ±3/4)
//   - seq3: its ternary grid (0, ±2/3)
//   - int2: the uniform signed 2-bit grid of LSQ with step alpha/2 (levels -1, -1/2, 0, 1/2)
//   - seq2_dx, int2_dx: dx for dy = 1 with the STE (1 inside the band, 0 outside),
//   all computed by fake_quantize / fake_quantize_backward (exec::seq).
// `make docs` renders both with gnuplot (examples/gnuplot/surrogates.gp) into docs/img/.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include <stableqat/stableqat.hpp>

namespace sq = stableqat;

namespace {

/// g(x) of a surrogate at any x: surrogates are functions of the residual r = x - round(x).
template <sq::surrogate S>
std::function<double(double)> along_x(S surrogate) {
  return [surrogate](double x) { return surrogate.derivative(x - sq::round_half_even(x)); };
}

struct column {
  std::string name;
  std::function<double(double)> f;
};

std::FILE* open_csv(std::filesystem::path const& path) {
  std::FILE* file = std::fopen(path.string().c_str(), "w");
  if (!file) {
    throw std::runtime_error(path.string() + ": cannot write");
  }
  return file;
}

void write_csv(std::filesystem::path const& path, std::vector<column> const& columns, int points) {
  std::FILE* file = open_csv(path);
  std::fprintf(file, "x");
  for (column const& c : columns) std::fprintf(file, ",%s", c.name.c_str());
  std::fprintf(file, "\n");
  for (int i = 0; i <= points; ++i) {
    const double x = -1.0 + 2.0 * i / points;
    std::fprintf(file, "%.5f", x);
    for (column const& c : columns) std::fprintf(file, ",%.6f", c.f(x));
    std::fprintf(file, "\n");
  }
  std::fclose(file);
}

/// Forward levels y/alpha and STE dx (dy = 1) of grid g with one step, over xs.
void levels_of(sq::grid g, double step, std::vector<double> const& xs, std::vector<double>& y,
               std::vector<double>& dx) {
  const sq::quantizer<double, sq::ste> q{g, sq::ste{}};
  const std::vector<double> steps{step}, dy(xs.size(), 1.0);
  std::vector<double> dsteps(1);
  y.resize(xs.size());
  dx.resize(xs.size());
  sq::fake_quantize(sq::exec::seq, q, xs, steps, y);
  sq::fake_quantize_backward(sq::exec::seq, q, xs, steps, dy, dx, dsteps);
}

/// Mean of g over one period by the midpoint rule (exact to ~1e-8 for these smooth g).
double period_mean(std::function<double(double)> const& g) {
  const int n = 20000;
  double sum = 0.0;
  for (int i = 0; i < n; ++i) sum += g(-0.5 + (i + 0.5) / n);
  return sum / n;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::filesystem::path dir = argc > 1 ? argv[1] : ".";
    std::filesystem::create_directories(dir);

    const std::vector<column> derivatives = {
        {"ste", along_x(sq::ste{})},
        {"k1_a0.10", along_x(sq::fourier_surrogate<1>{0.10})},
        {"k1_a0.15", along_x(sq::fourier_surrogate<1>{0.15})},
        {"k1_a0.21", along_x(sq::fourier_surrogate<1>{0.21})},
        {"k1_a0.224", along_x(sq::fourier_surrogate<1>{0.224})},
        {"k2_a0.21", along_x(sq::fourier_surrogate<2>{0.21})},
        {"k3_a0.21", along_x(sq::fourier_surrogate<3>{0.21})},
        {"k3_a0.24", along_x(sq::fourier_surrogate<3>{0.24})},
        {"round_k1", [](double x) { return sq::fourier_round_derivative<1>(x); }},
        {"round_k2", [](double x) { return sq::fourier_round_derivative<2>(x); }},
        {"round_k3", [](double x) { return sq::fourier_round_derivative<3>(x); }},
    };
    // 800 intervals put samples on every integer and half-integer.
    write_csv(dir / "surrogate_derivatives.csv", derivatives, 800);

    const sq::ewgs_surrogate ewgs{0.2};
    const std::vector<column> baselines = {
        {"ste", along_x(sq::ste{})},
        {"k1_a0.21", along_x(sq::fourier_surrogate<1>{0.21})},
        {"dsq_a0.05", along_x(sq::dsq_surrogate{0.05})},
        {"dsq_a0.2", along_x(sq::dsq_surrogate{0.2})},
        {"dsq_a0.5", along_x(sq::dsq_surrogate{0.5})},
        {"ewgs_pos", [ewgs](double x) { return ewgs.derivative(x - sq::round_half_even(x), 1.0); }},
        {"ewgs_neg", [ewgs](double x) { return ewgs.derivative(x - sq::round_half_even(x), -1.0); }},
    };
    write_csv(dir / "baseline_derivatives.csv", baselines, 800);

    const std::vector<column> functions = {
        {"round", [](double x) { return sq::round_half_even(x); }},
        {"fourier_round_k1", [](double x) { return sq::fourier_round<1>(x); }},
        {"fourier_round_k3", [](double x) { return sq::fourier_round<3>(x); }},
        {"fourier_round_k9", [](double x) { return sq::fourier_round<9>(x); }},
    };
    write_csv(dir / "fourier_round.csv", functions, 800);

    // Grids in units of alpha (the step of the SEQ grids); 1000 intervals over
    // [-1.25, 1.25] hit every level edge (multiples of 1/4 and 1/3 are not all
    // samples, so an edge is drawn as a steep segment one sample wide).
    std::vector<double> xs;
    for (int i = 0; i <= 1000; ++i) xs.push_back(-1.25 + 2.5 * i / 1000);
    std::vector<double> seq2, seq2_dx, seq3, seq3_dx, int2, int2_dx;
    levels_of(sq::stretched_elastic_grid(2), 1.0, xs, seq2, seq2_dx);
    levels_of(sq::stretched_elastic_ternary_grid(), 1.0, xs, seq3, seq3_dx);
    levels_of(sq::signed_grid(2), 0.5, xs, int2, int2_dx);
    {
      std::FILE* file = open_csv(dir / "grid_levels.csv");
      std::fprintf(file, "x,seq2,seq3,int2,seq2_dx,int2_dx\n");
      for (std::size_t i = 0; i < xs.size(); ++i) {
        std::fprintf(file, "%.5f,%.6f,%.6f,%.6f,%.1f,%.1f\n", xs[i], seq2[i], seq3[i], int2[i], seq2_dx[i], int2_dx[i]);
      }
      std::fclose(file);
    }
    // The SEQ 2-bit levels are exactly ±1/4, ±3/4: a check that makes this example a test too.
    for (double level : seq2) {
      if (std::fabs(std::fabs(level) - 0.25) > 1e-15 && std::fabs(std::fabs(level) - 0.75) > 1e-15) {
        throw std::runtime_error("a stretched elastic 2-bit level is not ±1/4 or ±3/4 of alpha");
      }
    }

    std::printf("%-10s %10s %10s %10s %10s\n", "curve", "g(r=0)", "g(r=1/4)", "g(r=1/2)", "mean g");
    for (auto const* table : {&derivatives, &baselines}) {
      for (column const& c : *table) {
        std::printf("%-10s %10.6f %10.6f %10.6f %10.6f\n", c.name.c_str(), c.f(0.0), c.f(0.25), c.f(0.5),
                    period_mean(c.f));
      }
    }
    std::printf("wrote %s, %s, %s and %s\n", (dir / "surrogate_derivatives.csv").string().c_str(),
                (dir / "baseline_derivatives.csv").string().c_str(), (dir / "fourier_round.csv").string().c_str(),
                (dir / "grid_levels.csv").string().c_str());
  } catch (std::exception const& e) {
    std::fprintf(stderr, "surrogate_curves: %s\n", e.what());
    return 1;
  }
}
