// Generator of tests/golden/estimators.golden: the golden vectors of the
// paper's baselines (DSQ, EWGS, ParetoQ's stretched elastic grid with STE and
// with the Fourier surrogate K = 1), computed in long double straight from
// DESIGN.md §1. Independent of the code under test: it includes no stableqat
// header. Run `generate_estimators > tests/golden/estimators.golden`; the
// test `golden_estimators_generated` checks the committed file is its output.
//
// What is computed in the element type T, because the contract says so: the
// reciprocal 1/s and v = (x - b) * (1/s) (working precision, as PyTorch), the
// stretched elastic coordinate w = clamp(v)*m - shift (one rounding), its
// level (n + shift) * (1/m) and each output's single rounding to T. Everything
// else (tanh, cosh, cos, the sums) is long double.
//
// Every emitted step and offset sum is well conditioned: sum |terms| <= 16
// |sum| (checked here), so the runners' relative tolerances measure the
// library, not cancellation in the test data. d alpha's terms are odd in the
// distance to the threshold and cancel by nature: its line carries the sum of
// their magnitudes, the scale of its tolerance.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

namespace {

using ld = long double;

enum class surrogate_kind { ste, fourier1, dsq, ewgs };
enum class grid_kind { integer, stretched_two_bit, stretched_ternary };

struct estimator {
  std::string token;  ///< as written in the file: ste, f1, dsq:ALPHA, ewgs:DELTA
  surrogate_kind kind = surrogate_kind::ste;
  ld parameter = 0.0L;  ///< alpha (DSQ) or delta (EWGS)
};

struct grid_spec {
  std::string token;  ///< sN, uN, t, e2, et
  grid_kind kind = grid_kind::integer;
  ld qmin = 0.0L, qmax = 0.0L;
};

struct golden_case {
  std::string name, comment;
  char type = 'f';
  grid_spec grid;
  estimator surrogate;
  std::string layout;  ///< tensor, channel:N, group:N, column:N
  std::vector<double> steps, offsets, x, dy;
  bool has_offsets = false;
};

// (std::string(prefix).append(...), not prefix + string: GCC 12's -Wrestrict
// misfires on the latter at -O3.)
std::string token(const char* prefix, std::string const& rest) { return std::string(prefix).append(rest); }

grid_spec signed_grid(int bits) {
  return {token("s", std::to_string(bits)), grid_kind::integer, -std::ldexp(1.0L, bits - 1),
          std::ldexp(1.0L, bits - 1) - 1};
}
grid_spec unsigned_grid(int bits) {
  return {token("u", std::to_string(bits)), grid_kind::integer, 0, std::ldexp(1.0L, bits) - 1};
}
grid_spec stretched_two_bit() { return {"e2", grid_kind::stretched_two_bit, -2, 1}; }
grid_spec stretched_ternary() { return {"et", grid_kind::stretched_ternary, -1, 1}; }

std::string number_token(double value) {
  char text[64];
  std::snprintf(text, sizeof text, "%.17g", value);
  return text;
}
estimator ste() { return {"ste", surrogate_kind::ste, 0}; }
estimator fourier1() { return {"f1", surrogate_kind::fourier1, 0}; }
estimator dsq(double alpha) { return {token("dsq:", number_token(alpha)), surrogate_kind::dsq, alpha}; }
estimator ewgs(double delta) { return {token("ewgs:", number_token(delta)), surrogate_kind::ewgs, delta}; }

/// Step index of element i for the layout token.
std::size_t step_index(std::string const& layout, std::size_t i) {
  if (layout == "tensor") return 0;
  const auto colon = layout.find(':');
  const std::size_t extent = std::stoul(layout.substr(colon + 1));
  const std::string kind = layout.substr(0, colon);
  if (kind == "column") return i % extent;
  return i / extent;  // channel (rows of extent), group (groups of extent)
}

constexpr ld pi = 3.141592653589793238462643383279502884L;

/// clamp(v, lo, hi) keeping NaN and the sign of a zero v (fmin/fmax may
/// return either zero): the clamp of DESIGN.md §1.
ld clamp(ld v, ld lo, ld hi) { return v < lo ? lo : (hi < v ? hi : v); }

/// The rotated Fourier surrogate, one harmonic, A = 0.21 (DESIGN.md §1).
ld fourier1_g(ld r) {
  const ld c = std::sqrt(2.0L) * pi;
  const ld s = 0.21L * std::cos(pi * r);
  return (1.0L - c * s) / (1.0L + c * s);
}

/// What one element contributes (long double), and its output values in T.
struct element {
  ld y = 0, dx = 0, step_term = 0, offset_term = 0, parameter_term = 0;
};

template <class T>
element compute_element(golden_case const& c, T x, T dy, T s, T b) {
  element e;
  const T inv = T(1) / s;
  const T v = c.has_offsets ? static_cast<T>((x - b) * inv) : static_cast<T>(x * inv);
  const ld vl = v;
  const ld dyl = dy;
  ld level = 0, g = 1, step_level = 0;
  bool inside = false;
  ld r = 0;
  if (c.grid.kind == grid_kind::integer) {
    if (c.surrogate.kind == surrogate_kind::dsq) {
      const ld below = std::floor(vl);
      const ld d = vl - (below + 0.5L);
      const ld raw = d > 0.0L ? below + 1.0L : below;  // ties (d = 0) go down
      level = clamp(raw, c.grid.qmin, c.grid.qmax);
      inside = c.grid.qmin - 0.5L < vl && vl <= c.grid.qmax + 0.5L;
      if (inside) {
        const ld alpha = c.surrogate.parameter;
        const ld k = std::log(2.0L / alpha - 1.0L);
        const ld scale = 1.0L / (1.0L - alpha);
        const ld ch = std::cosh(k * d);
        g = 0.5L * scale * k / (ch * ch);
        const ld dphi = std::tanh(k * d) / ((1.0L - alpha) * (1.0L - alpha)) -
                        scale / (ch * ch) * d * 2.0L / (alpha * (2.0L - alpha));
        e.parameter_term = dyl * static_cast<ld>(s) * 0.5L * dphi;
      }
      step_level = level;
    } else {
      const ld n = std::nearbyint(vl);  // ties to even
      level = clamp(n, c.grid.qmin, c.grid.qmax);
      inside = c.grid.qmin <= vl && vl <= c.grid.qmax;
      r = vl - n;
      step_level = level;
    }
  } else {
    const bool two_bit = c.grid.kind == grid_kind::stretched_two_bit;
    const ld m = two_bit ? 2.0L : 1.5L;
    const ld shift = two_bit ? 0.5L : 0.0L;
    const T clip = static_cast<T>(0.99);
    const T inv_m = static_cast<T>(1.0L / m);
    const ld u = clamp(vl, -static_cast<ld>(clip), static_cast<ld>(clip));
    const T w = static_cast<T>(u * m - shift);  // one rounding, as the contract's fma
    const ld n = std::nearbyint(static_cast<ld>(w));
    level = static_cast<T>((n + shift) * static_cast<ld>(inv_m));
    inside = -static_cast<ld>(clip) <= vl && vl <= static_cast<ld>(clip);
    r = static_cast<ld>(w) - n;
    step_level = inside ? level : (std::isnan(vl) ? vl : (vl > 0 ? 1.0L : -1.0L) * (m - shift) / m);
  }
  if (inside) {
    switch (c.surrogate.kind) {
      case surrogate_kind::ste: g = 1; break;
      case surrogate_kind::fourier1: g = fourier1_g(r); break;
      case surrogate_kind::ewgs: g = 1.0L + c.surrogate.parameter * (dyl < 0 ? -1.0L : 1.0L) * r; break;
      case surrogate_kind::dsq: break;  // above
    }
  }
  e.y = c.has_offsets ? static_cast<T>(static_cast<ld>(s) * level + static_cast<ld>(b))
                      : static_cast<T>(static_cast<ld>(s) * level);
  e.dx = inside ? static_cast<T>(g * dyl) : T(0);
  const bool consistent = c.surrogate.kind == surrogate_kind::dsq;
  e.step_term = dyl * (inside ? (consistent ? step_level - vl * g : step_level - vl) : step_level);
  e.offset_term = dyl * (inside ? 1.0L - g : 1.0L);
  return e;
}

std::string hex(double value) {
  if (std::isnan(value)) return "nan";
  char text[64];
  std::snprintf(text, sizeof text, "%a", value);
  return text;
}

std::string list(std::vector<double> const& values) {
  if (values.empty()) return "-";
  std::string out;
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    out += hex(values[i]);
  }
  return out;
}

/// A sum and the sum of its terms' magnitudes; refuses ill-conditioned sums.
struct checked_sum {
  ld sum = 0, magnitude = 0;
  void add(ld term) {
    sum += term;
    magnitude += std::fabs(term);
  }
  double value(golden_case const& c, const char* what) const {
    if (!std::isnan(sum) && magnitude > 16 * std::fabs(sum)) {
      std::fprintf(stderr, "case %s: %s is ill-conditioned (sum %Lg, sum of |terms| %Lg)\n", c.name.c_str(), what, sum,
                   magnitude);
      std::exit(1);
    }
    return static_cast<double>(sum);
  }
};

template <class T>
void emit(golden_case const& c) {
  const std::size_t steps = c.steps.size();
  std::vector<double> y, dx;
  std::vector<checked_sum> dsteps(steps), doffsets(steps);
  checked_sum dparameter;
  for (std::size_t i = 0; i < c.x.size(); ++i) {
    const std::size_t k = step_index(c.layout, i);
    const element e = compute_element<T>(c, static_cast<T>(c.x[i]), static_cast<T>(c.dy[i]),
                                         static_cast<T>(c.steps[k]), c.has_offsets ? static_cast<T>(c.offsets[k]) : T(0));
    y.push_back(static_cast<double>(e.y));
    dx.push_back(static_cast<double>(e.dx));
    dsteps[k].add(e.step_term);
    doffsets[k].add(e.offset_term);
    dparameter.add(e.parameter_term);
  }
  std::vector<double> ds, dofs;
  for (std::size_t k = 0; k < steps; ++k) {
    ds.push_back(dsteps[k].value(c, "dsteps"));
    if (c.has_offsets) dofs.push_back(doffsets[k].value(c, "doffsets"));
  }
  std::printf("# %s\n", c.comment.c_str());
  std::printf("%s %c %s %s %s %s %s %s %s | %s %s %s %s", c.name.c_str(), c.type, c.grid.token.c_str(),
              c.surrogate.token.c_str(), c.layout.c_str(), list(c.steps).c_str(),
              c.has_offsets ? list(c.offsets).c_str() : "-", list(c.x).c_str(), list(c.dy).c_str(), list(y).c_str(),
              list(dx).c_str(), list(ds).c_str(), c.has_offsets ? list(dofs).c_str() : "-");
  if (c.surrogate.kind == surrogate_kind::dsq) {  // d alpha's terms cancel by nature: its scale goes along
    std::printf(" %s %s", hex(static_cast<double>(dparameter.sum)).c_str(),
                hex(static_cast<double>(dparameter.magnitude)).c_str());
  }
  std::printf("\n");
}

/// The input values rounded to the case's type, so the file holds exact T values.
golden_case typed(golden_case c) {
  auto round_all = [&](std::vector<double>& values) {
    for (double& v : values) v = c.type == 'f' ? static_cast<double>(static_cast<float>(v)) : v;
  };
  round_all(c.steps);
  round_all(c.offsets);
  round_all(c.x);
  round_all(c.dy);
  c.has_offsets = !c.offsets.empty();
  return c;
}

golden_case make(std::string name, char type, grid_spec g, estimator s, std::string layout, std::vector<double> steps,
                 std::vector<double> offsets, std::vector<double> x, std::vector<double> dy, std::string comment) {
  golden_case c;
  c.name = std::move(name);
  c.type = type;
  c.grid = std::move(g);
  c.surrogate = std::move(s);
  c.layout = std::move(layout);
  c.steps = std::move(steps);
  c.offsets = std::move(offsets);
  c.x = std::move(x);
  c.dy = std::move(dy);
  c.comment = std::move(comment);
  return typed(c);
}

std::vector<golden_case> cases() {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  const double f_up = static_cast<double>(std::nextafter(-2.5f, 0.0f));    // one float ulp inside qmin - 1/2
  const double f_top = static_cast<double>(std::nextafter(1.5f, 2.0f));    // one float ulp past qmax + 1/2
  const double d_up = std::nextafter(-2.5, 0.0);
  const double d_top = std::nextafter(1.5, 2.0);
  const double clip_f = static_cast<double>(static_cast<float>(0.99));
  const double clip_d = 0.99;
  std::vector<golden_case> c;
  // --- DSQ ---------------------------------------------------------------------------------
  c.push_back(make("dsq_levels", 'f', signed_grid(2), dsq(0.2), "tensor", {1}, {},
                   {0.2, 0.5, 0.7, -0.5, -0.3, 1.2, 1.5, 3.0}, {1, 1, 1, 1, 1, 1, 1, 1},
                   "DSQ, s = 1: levels floor(v) + (d > 0), ties (0.5, -0.5, 1.5) go down, clamped to [-2, 1]"));
  c.push_back(make("dsq_band_edges_f", 'f', signed_grid(2), dsq(0.2), "tensor", {1}, {},
                   {-2.5, f_up, 1.5, f_top}, {1, 1, 1, 1},
                   "DSQ band qmin - 1/2 < v <= qmax + 1/2 at ±1 float ulp: -2.5 out, next up in; 1.5 in, next up out"));
  c.push_back(make("dsq_band_edges_d", 'd', signed_grid(2), dsq(0.2), "tensor", {1}, {},
                   {-2.5, d_up, 1.5, d_top}, {1, 1, 1, 1}, "the same at ±1 double ulp"));
  c.push_back(make("dsq_channels_f", 'f', signed_grid(3), dsq(0.05), "channel:3", {0.5, 0.25},
                   {}, {0.3, -0.9, 1.1, 0.2, -0.45, 0.61}, {1, -0.5, 2, 1.5, 1, -1},
                   "DSQ alpha 0.05 (sharp), two rows: g, step term level - v g, d alpha = sum s dy (1/2) dphi/dalpha"));
  c.push_back(make("dsq_columns_d", 'd', unsigned_grid(2), dsq(0.6), "column:2", {0.5, 0.75}, {},
                   {0.6, 0.4, 1.3, 2.0, 2.2, -0.3}, {1, 0.5, -1, 1, 2, 1},
                   "DSQ alpha 0.6 (soft), per column, unsigned grid [0, 3]"));
  c.push_back(make("dsq_offsets_f", 'f', signed_grid(4), dsq(0.2), "group:2", {0.5, 0.25}, {0.125, -0.0625},
                   {0.9, -1.3, 0.7, 1.6}, {1, 1, 0.5, -2},
                   "DSQ with offsets: v = (x - b) * (1/s), y = s level + b, doffsets = sum dy (1 - g)"));
  c.push_back(make("dsq_nan_inf", 'f', signed_grid(2), dsq(0.3), "tensor", {0.5}, {}, {0.3, nan, inf, -inf},
                   {1, 1, 1, 1},
                   "NaN: y NaN, dx 0, dsteps NaN, d alpha unaffected; ±Inf: the edge level, outside the band"));
  // --- EWGS --------------------------------------------------------------------------------
  c.push_back(make("ewgs_f", 'f', signed_grid(3), ewgs(0.5), "tensor", {0.5}, {},
                   {0.3, 0.3, -0.7, 1.1, 2.6, 2.8}, {1, -1, 2, -0.5, 1, 1},
                   "EWGS g = 1 + delta sign(dy) r: x = 0.3 (r = -0.4) with dy = +1 and -1; LSQ step term"));
  c.push_back(make("ewgs_d_offsets", 'd', signed_grid(4), ewgs(1.25), "channel:2", {0.25, 0.5}, {0.5, -0.25},
                   {0.8, 1.1, -0.45, 0.9}, {-1, 1, 2, 0.5}, "EWGS delta 1.25, double, with offsets"));
  c.push_back(make("ewgs_zero_is_ste", 'f', signed_grid(2), ewgs(0), "tensor", {1}, {}, {0.3, -0.7, 0.5, 4.0},
                   {1, -2, 1, 1}, "delta = 0: dx = dy exactly inside, as the STE"));
  // --- stretched elastic grid (ParetoQ) ---------------------------------------------------------
  c.push_back(make("seq2_levels_ste", 'f', stretched_two_bit(), ste(), "tensor", {1}, {},
                   {0.1, -0.1, 0.6, -0.6, 0.49, 0.51, 2.0, -2.0}, {1, -1, 1, -1, 1, 1, 1, -1},
                   "SEQ 2-bit, s = 1: w = 2 clamp(v) - 1/2, levels ±1/4, ±3/4; outside step term ±3/4"));
  c.push_back(make("seq2_clip_f", 'f', stretched_two_bit(), ste(), "tensor", {1}, {},
                   {clip_f, static_cast<double>(std::nextafter(static_cast<float>(clip_f), 2.0f)), -clip_f,
                    static_cast<double>(std::nextafter(-static_cast<float>(clip_f), -2.0f))},
                   {1, 1, -1, 1}, "the band |v| <= clip = 0.99 at ±1 float ulp"));
  c.push_back(make("seq2_clip_d", 'd', stretched_two_bit(), ste(), "tensor", {1}, {},
                   {clip_d, std::nextafter(clip_d, 2.0), -clip_d, std::nextafter(-clip_d, -2.0)}, {1, 1, -1, 1},
                   "the band at ±1 double ulp"));
  c.push_back(make("seq2_fourier_channels", 'f', stretched_two_bit(), fourier1(), "channel:3", {0.5, 2.0}, {},
                   {0.1, -0.35, 0.2, 1.2, -0.8, 3.0}, {1, 1, -1, 0.5, 1, 1},
                   "SEQ 2-bit with the Fourier surrogate (A = 0.21) of r = w - round(w)"));
  c.push_back(make("seqt_levels_ste", 'd', stretched_ternary(), ste(), "tensor", {0.75}, {},
                   {0.1, 0.3, -0.4, 0.6, 1.0, -1.0}, {1, 1, 1, 1, 1, -1},
                   "SEQ ternary, s = 3/4: w = 1.5 clamp(v), levels 0, ±2/3; outside step term ±1"));
  c.push_back(make("seqt_fourier_offsets", 'f', stretched_ternary(), fourier1(), "group:2", {1.25, 0.5},
                   {0.25, -0.125}, {0.55, -0.1, 0.3, -0.7}, {1, -1, 2, 1},
                   "SEQ ternary with the Fourier surrogate and offsets"));
  c.push_back(make("seqt_fourier_d", 'd', stretched_ternary(), fourier1(), "column:2", {1, 0.5}, {},
                   {0.2, 0.3, -0.45, 0.1, 0.8, -0.2}, {1, 2, 1, -1, 1, 1}, "SEQ ternary, Fourier, per column, double"));
  return c;
}

}  // namespace

int main() {
  std::printf(
      "# Golden vectors of the paper's baselines (DSQ, EWGS, ParetoQ's stretched elastic grid).\n"
      "# GENERATED by tests/golden/generate_estimators.cpp (long double, independent of the library): do not edit.\n"
      "# Format as fake_quantize.golden, plus: surrogate dsq:ALPHA | ewgs:DELTA; grid e2 =\n"
      "# stretched_elastic_grid(2), et = stretched_elastic_ternary_grid(); DSQ lines end with d alpha\n"
      "# and the sum of its terms' magnitudes.\n"
      "# grad_scale 1. Tolerances (golden_cases.hpp): y bit for bit; dx exact (ste), 16 ulp (dsq), 4 ulp\n"
      "# (others); sums 1e-6 relative (256 eps for dsq; every sum has\n"
      "# sum |terms| <= 16 |sum|), d alpha 1024 eps of its terms' magnitudes.\n");
  for (golden_case const& c : cases()) {
    if (c.type == 'f') {
      emit<float>(c);
    } else {
      emit<double>(c);
    }
  }
  return 0;
}
