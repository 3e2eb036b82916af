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

    std::printf("%-10s %10s %10s %10s %10s\n", "curve", "g(r=0)", "g(r=1/4)", "g(r=1/2)", "mean g");
    for (auto const* table : {&derivatives, &baselines}) {
      for (column const& c : *table) {
        std::printf("%-10s %10.6f %10.6f %10.6f %10.6f\n", c.name.c_str(), c.f(0.0), c.f(0.25), c.f(0.5),
                    period_mean(c.f));
      }
    }
    std::printf("wrote %s, %s and %s\n", (dir / "surrogate_derivatives.csv").string().c_str(),
                (dir / "baseline_derivatives.csv").string().c_str(), (dir / "fourier_round.csv").string().c_str());
  } catch (std::exception const& e) {
    std::fprintf(stderr, "surrogate_curves: %s\n", e.what());
    return 1;
  }
}
