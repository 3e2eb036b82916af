// fourier_surrogate<K> against the paper's formula evaluated in long double.
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include <stableqat/surrogates/concepts.hpp>
#include <stableqat/surrogates/fourier.hpp>

#include "reference.hpp"

namespace sq = stableqat;

// --- constant evaluation ----------------------------------------------------
namespace constexpr_checks {
constexpr sq::fourier_surrogate<1> paper{};  // A = 0.21
static_assert(paper.derivative(0.5) > 0.999999 && paper.derivative(0.5) < 1.000001);
static_assert(paper.derivative(-0.5f) > 0.99999f && paper.derivative(-0.5f) < 1.00001f);
static_assert(paper.derivative(0.0) > 0.03465815 && paper.derivative(0.0) < 0.03465825);
static_assert(paper.derivative(0.25) > 0.2050115 && paper.derivative(0.25) < 0.2050125);
static_assert(paper.min_derivative() > 0.0346581 && paper.max_derivative() > 0.999999);
static_assert(sq::fourier_surrogate<1>::max_paper_amplitude() > 0.2250790 &&
              sq::fourier_surrogate<1>::max_paper_amplitude() < 0.2250791);
constexpr sq::fourier_surrogate<2> wide{0.23};  // valid for K = 2 although c * sum|a_k| > 1
static_assert(wide.min_derivative() > 0.0 && wide.derivative(0.5) > 0.999999 && wide.derivative(0.5) < 1.000001);
constexpr auto custom = sq::fourier_surrogate<3>::from_coefficients({0.2, -0.02, 0.005});
static_assert(custom.derivative(0.0) > 0.0 && custom.coefficients()[1] == -0.02);
constexpr sq::ste straight{};
static_assert(straight.derivative(0.3) == 1.0 && straight.derivative(-0.5f) == 1.0f);
static_assert(std::is_same_v<sq::ste, sq::fourier_surrogate<0>>);
static_assert(sq::surrogate<sq::fourier_surrogate<1>> && sq::surrogate<sq::ste> &&
              sq::surrogate<sq::fourier_surrogate<4>>);
}  // namespace constexpr_checks

namespace {

using long_coefficients = std::vector<long double>;

// Dense sweep of v over [-8, 8]: every 1/1024 (ties and integers included),
// +-1 ulp around every tie and integer, and random points.
template <class T>
std::vector<T> const& sweep() {
  static const std::vector<T> values = [] {
    constexpr T inf = std::numeric_limits<T>::infinity();
    std::vector<T> v;
    for (int i = -8 * 1024; i <= 8 * 1024; ++i) {
      v.push_back(static_cast<T>(i) / T(1024));
    }
    for (int k = -9; k <= 8; ++k) {
      for (T center : {static_cast<T>(k) + T(0.5), static_cast<T>(k)}) {
        v.push_back(std::nextafter(center, -inf));
        v.push_back(std::nextafter(center, inf));
      }
    }
    std::mt19937_64 rng(7);
    std::uniform_real_distribution<double> uniform(-8.0, 8.0);
    for (int i = 0; i < 20000; ++i) {
      v.push_back(static_cast<T>(uniform(rng)));
    }
    return v;
  }();
  return values;
}

struct sweep_result {
  double max_relative_error = 0.0;
  double worst_v = 0.0;
};

// Max relative error of f.derivative(r), r = v - round(v) in T, against
// g = (1 - cS)/(1 + cS), S = sum a_k cos((2k+1) pi (v + n)) in long double;
// also checks g against the sum|a_k| bounds and the reported extremes.
template <class T, int K>
sweep_result sweep_errors(sq::fourier_surrogate<K> const& f, long_coefficients const& a, double accuracy) {
  sweep_result result;
  long double sum_abs = 0.0L;
  for (long double ak : a) sum_abs += std::fabs(ak);
  const long double ca = reference::c * sum_abs;
  const long double slack = accuracy;  // g may miss an attained bound by its own rounding error
  std::size_t bound_failures = 0;
  for (T v : sweep<T>()) {
    const T n = std::nearbyint(v);
    const T r = v - n;  // exact
    const T g = f.derivative(r);
    const long double expected =
        reference::rotated_surrogate(a, static_cast<long double>(v), static_cast<long double>(n));
    const double error = static_cast<double>(std::fabs((static_cast<long double>(g) - expected) / expected));
    if (!(error <= result.max_relative_error)) {  // also catches NaN
      result.max_relative_error = std::isnan(error) ? std::numeric_limits<double>::infinity() : error;
      result.worst_v = static_cast<double>(v);
    }
    const auto gl = static_cast<long double>(g);
    bool bounded = gl > 0.0L && gl >= static_cast<long double>(f.min_derivative()) * (1.0L - slack) &&
                   gl <= static_cast<long double>(f.max_derivative()) * (1.0L + slack);
    if (ca < 1.0L) {  // the simple bound is only meaningful while c * sum|a_k| < 1
      bounded = bounded && gl >= (1.0L - ca) / (1.0L + ca) * (1.0L - slack) &&
                gl <= (1.0L + ca) / (1.0L - ca) * (1.0L + slack);
    }
    if (!bounded && ++bound_failures <= 5) {
      FAIL_CHECK("g(" << r << ") = " << g << " outside its bounds [" << f.min_derivative() << ", "
                      << f.max_derivative() << "], c*sum|a_k| = " << static_cast<double>(ca));
    }
  }
  CHECK(bound_failures == 0);
  return result;
}

long double golden_section(long_coefficients const& a, long double lo, long double hi, bool maximise) {
  const long double ratio = (std::sqrt(5.0L) - 1.0L) / 2.0L;
  auto value = [&](long double r) {
    const long double g = reference::rotated_surrogate_of_residual(a, r);
    return maximise ? -g : g;
  };
  for (int i = 0; i < 200 && hi - lo > 1e-18L; ++i) {
    const long double m1 = hi - ratio * (hi - lo);
    const long double m2 = lo + ratio * (hi - lo);
    if (value(m1) < value(m2)) {
      hi = m2;
    } else {
      lo = m1;
    }
  }
  return reference::rotated_surrogate_of_residual(a, (lo + hi) / 2.0L);
}

// Smallest and largest g over r in [0, 1/2] (g is even), by a grid search
// refined with golden sections, all in long double.
std::array<long double, 2> brute_force_extremes(long_coefficients const& a) {
  constexpr int points = 20000;
  const long double h = 0.5L / points;
  long double lo = std::numeric_limits<long double>::max();
  long double hi = -lo;
  int at_lo = 0;
  int at_hi = 0;
  for (int i = 0; i <= points; ++i) {
    const long double g = reference::rotated_surrogate_of_residual(a, i * h);
    if (g < lo) {
      lo = g;
      at_lo = i;
    }
    if (g > hi) {
      hi = g;
      at_hi = i;
    }
  }
  auto bracket = [&](int i) { return std::array<long double, 2>{std::fmax(0.0L, (i - 1) * h), std::fmin(0.5L, (i + 1) * h)}; };
  const auto bl = bracket(at_lo);
  const auto bh = bracket(at_hi);
  return {std::fmin(lo, golden_section(a, bl[0], bl[1], false)), std::fmax(hi, golden_section(a, bh[0], bh[1], true))};
}

// Largest relative error seen per (type, K), for the report.
struct error_table {
  double worst[2][5] = {};
  ~error_table() {
    if (!reference::report_measurements()) return;
    for (int k = 0; k < 5; ++k) {
      std::printf("fourier_surrogate<%d>: max relative error float %.3g, double %.3g\n", k, worst[0][k], worst[1][k]);
    }
  }
};
error_table table;

// max|cS| from the extremes of g over r (g = (1 - x)/(1 + x) gives x = cS back).
long double max_cs_of(std::array<long double, 2> const& g_extremes) {
  return std::fmax(std::fabs((1.0L - g_extremes[0]) / (1.0L + g_extremes[0])),
                   std::fabs((1.0L - g_extremes[1]) / (1.0L + g_extremes[1])));
}

// The float path of K >= 2 (docs/math.md): kappa = (1 + sum_k |c a_k| (2k+1)^2)
// / (1 - max|cS|), from the coefficients and the brute-force extremes of g;
// floats are evaluated in float when K <= 4 and kappa <= 128, with relative
// error within 2 eps_float kappa.
long double float_condition(long_coefficients const& a, std::array<long double, 2> const& g_extremes) {
  long double markov = 1.0L;
  for (std::size_t k = 0; k < a.size(); ++k) {
    const auto n = static_cast<long double>(2 * k + 1);
    markov += reference::c * n * n * std::fabs(a[k]);
  }
  return markov / (1.0L - max_cs_of(g_extremes));
}

// The documented float bound of f: 4e-7 for K = 1 and for K >= 2 evaluated in
// double (rounded once), 2 eps_float kappa on the float path of K >= 2; checks
// the path choice and float_condition() against the independent kappa.
template <int K>
double documented_float_bound(sq::fourier_surrogate<K> const& f, long_coefficients const& a,
                              std::array<long double, 2> const& g_extremes) {
  if constexpr (K <= 1) {
    CHECK(f.evaluates_float_in_float());
    return 4e-7;
  } else {
    const long double kappa = float_condition(a, g_extremes);
    CHECK(f.float_condition() == doctest::Approx(static_cast<double>(kappa)).epsilon(1e-9));
    const bool in_float = K <= 4 && kappa <= 128.0L;
    CHECK(f.evaluates_float_in_float() == in_float);
    return in_float ? static_cast<double>(2.0L * std::numeric_limits<float>::epsilon() * kappa) : 4e-7;
  }
}

template <int K>
void check_surrogate(sq::fourier_surrogate<K> const& f, long_coefficients const& a, std::string const& label,
                     double double_bound = 1e-14) {
  CAPTURE(label);
  const auto extremes = brute_force_extremes(a);
  const double float_bound = documented_float_bound<K>(f, a, extremes);
  const sweep_result in_float = sweep_errors<float>(f, a, float_bound);
  const sweep_result in_double = sweep_errors<double>(f, a, double_bound);
  if (reference::report_measurements()) {
    std::printf("  K=%d %-28s float %.3g (v=%.9g)  double %.3g (v=%.17g)\n", K, label.c_str(),
                in_float.max_relative_error, in_float.worst_v, in_double.max_relative_error, in_double.worst_v);
  }
  if (double_bound == 1e-14) {  // the table covers the amplitudes held to the 1e-14 contract
    table.worst[0][K] = std::fmax(table.worst[0][K], in_float.max_relative_error);
    table.worst[1][K] = std::fmax(table.worst[1][K], in_double.max_relative_error);
  }
  CHECK_MESSAGE(in_float.max_relative_error <= float_bound, "worst float v = " << in_float.worst_v);
  CHECK_MESSAGE(in_double.max_relative_error <= double_bound, "worst double v = " << in_double.worst_v);

  CHECK(f.min_derivative() == doctest::Approx(static_cast<double>(extremes[0])).epsilon(1e-13));
  CHECK(f.max_derivative() == doctest::Approx(static_cast<double>(extremes[1])).epsilon(1e-13));
  CHECK(f.min_derivative() > 0.0);
}

template <int K>
void check_paper_family(std::initializer_list<double> amplitudes) {
  for (double amplitude : amplitudes) {
    const sq::fourier_surrogate<K> f{amplitude};
    check_surrogate<K>(f, reference::paper_coefficients(K, amplitude), "A = " + std::to_string(amplitude));
    // The stored coefficients are the paper's, to double rounding.
    const auto stored = f.coefficients();
    const auto exact = reference::paper_coefficients(K, amplitude);
    for (std::size_t k = 0; k < stored.size(); ++k) {
      CHECK(stored[k] == doctest::Approx(static_cast<double>(exact[k])).epsilon(1e-16));
    }
  }
}

template <int K>
void check_custom(std::array<double, static_cast<std::size_t>(K)> const& a) {
  const auto f = sq::fourier_surrogate<K>::from_coefficients(a);
  long_coefficients exact(a.begin(), a.end());
  check_surrogate<K>(f, exact, "from_coefficients");
}

// Largest valid A of the paper family: 1 / max_r |c * sum_k (-1)^k cos((2k+1) pi r)/(2k+1)|.
long double paper_limit(int harmonics) {
  const long_coefficients unit = reference::paper_coefficients(harmonics, 1.0L);
  auto cs = [&](long double r) { return reference::c * reference::rotated_series(unit, r, 0.0L); };
  constexpr int points = 20000;
  const long double h = 0.5L / points;
  long double best = 0.0L;
  int at = 0;
  for (int i = 0; i <= points; ++i) {
    const long double value = std::fabs(cs(i * h));
    if (value > best) {
      best = value;
      at = i;
    }
  }
  // Refine |cS| around the best grid point (golden section, maximising).
  long double lo = std::fmax(0.0L, (at - 1) * h);
  long double hi = std::fmin(0.5L, (at + 1) * h);
  const long double ratio = (std::sqrt(5.0L) - 1.0L) / 2.0L;
  for (int i = 0; i < 200 && hi - lo > 1e-18L; ++i) {
    const long double m1 = hi - ratio * (hi - lo);
    const long double m2 = lo + ratio * (hi - lo);
    if (std::fabs(cs(m1)) > std::fabs(cs(m2))) {
      hi = m2;
    } else {
      lo = m1;
    }
  }
  return 1.0L / std::fmax(best, std::fabs(cs((lo + hi) / 2.0L)));
}

}  // namespace

TEST_CASE("fourier_surrogate<0> is the STE, bit for bit") {
  const sq::fourier_surrogate<0> zero{};
  const sq::ste straight{};
  for (float v : sweep<float>()) {
    const float r = v - std::nearbyint(v);
    REQUIRE(reference::same_bits(zero.derivative(r), 1.0f));
    REQUIRE(reference::same_bits(straight.derivative(r), 1.0f));
  }
  for (double v : sweep<double>()) {
    const double r = v - std::nearbyint(v);
    REQUIRE(reference::same_bits(zero.derivative(r), 1.0));
  }
  CHECK(zero.min_derivative() == 1.0);
  CHECK(zero.max_derivative() == 1.0);
  CHECK(std::isinf(sq::ste::max_paper_amplitude()));
}

TEST_CASE("fourier_surrogate<1>: paper reference values for A = 0.21") {
  const sq::fourier_surrogate<1> f{};  // default is the paper's A = 0.21
  const long_coefficients a = reference::paper_coefficients(1, 0.21L);
  CHECK(f.coefficients()[0] == 0.21);
  CHECK(static_cast<double>(reference::c * 0.21L) == doctest::Approx(0.933005).epsilon(1e-6));
  // DESIGN.md §1 values (6 significant digits), for the library and the reference alike.
  for (double r : {0.0, -0.0}) {
    CHECK(f.derivative(r) == doctest::Approx(0.0346582).epsilon(2e-6));
    CHECK(f.derivative(static_cast<float>(r)) == doctest::Approx(0.0346582).epsilon(2e-6));
  }
  CHECK(static_cast<double>(reference::rotated_surrogate_of_residual(a, 0.0L)) ==
        doctest::Approx(0.0346582).epsilon(2e-6));
  for (double r : {0.25, -0.25}) {
    CHECK(f.derivative(r) == doctest::Approx(0.205012).epsilon(3e-6));
    CHECK(f.derivative(static_cast<float>(r)) == doctest::Approx(0.205012).epsilon(3e-6));
  }
  CHECK(static_cast<double>(reference::rotated_surrogate_of_residual(a, 0.25L)) ==
        doctest::Approx(0.205012).epsilon(3e-6));
  for (double r : {0.5, -0.5}) {
    CHECK(f.derivative(r) == doctest::Approx(1.0).epsilon(1e-15));
    CHECK(f.derivative(static_cast<float>(r)) == doctest::Approx(1.0).epsilon(3e-7));
  }

  // Mean over one period by composite Simpson, in double and float.
  constexpr int intervals = 4000;
  const double h = 1.0 / intervals;
  double mean_double = 0.0;
  double mean_float = 0.0;
  for (int i = 0; i <= intervals; ++i) {
    const double r = -0.5 + i * h;
    const double weight = (i == 0 || i == intervals) ? 1.0 : (i % 2 == 1 ? 4.0 : 2.0);
    mean_double += weight * f.derivative(r);
    mean_float += weight * static_cast<double>(f.derivative(static_cast<float>(r)));
  }
  mean_double *= h / 3.0;
  mean_float *= h / 3.0;
  // Closed form: mean = 4/(pi sqrt(1-a^2)) * 2 atan(sqrt((1-a)/(1+a))) - 1, a = c A.
  const long double ca = reference::c * 0.21L;
  const long double closed =
      8.0L / (reference::pi * std::sqrt(1.0L - ca * ca)) * std::atan(std::sqrt((1.0L - ca) / (1.0L + ca))) - 1.0L;
  CHECK(static_cast<double>(closed) == doctest::Approx(0.302457).epsilon(2e-6));
  CHECK(mean_double == doctest::Approx(0.302457).epsilon(2e-6));
  CHECK(mean_double == doctest::Approx(static_cast<double>(closed)).epsilon(1e-10));
  CHECK(mean_float == doctest::Approx(static_cast<double>(closed)).epsilon(1e-6));
}

TEST_CASE("fourier_surrogate<1> against the long-double formula") {
  check_paper_family<1>({0.05, 0.15, 0.21, -0.15, 0.225});
  check_custom<1>({-0.2});
}

TEST_CASE("fourier_surrogate<2> against the long-double formula") {
  check_paper_family<2>({0.05, 0.15, 0.21, -0.15, 0.23});
  check_custom<2>({0.1, 0.05});
}

TEST_CASE("fourier_surrogate<3> against the long-double formula") {
  check_paper_family<3>({0.05, 0.15, 0.21, 0.23});
  check_custom<3>({0.2, -0.02, 0.005});
}

TEST_CASE("fourier_surrogate<4> against the long-double formula") {
  check_paper_family<4>({0.05, 0.15, 0.21, 0.23});
  check_custom<4>({0.15, -0.03, 0.01, -0.002});
}

// Close to the validity limit, g = (1 - cS)/(1 + cS) is ill-conditioned in cS:
// its relative condition number is 2|cS|/(1 - (cS)^2) ~ 1/(1 - max|cS|). K = 1
// evaluates 1 - cS without cancellation and keeps full accuracy; K >= 2 forms
// 1 - cS in double, so its error grows like eps/(1 - max|cS|) (measured about
// 0.5 to 1.2 eps/(1 - max|cS|)). Float stays within 4e-7 throughout (there
// kappa > 128: evaluated in double).
template <int K>
void check_near_limit(double amplitude) {
  const double fraction = amplitude / sq::fourier_surrogate<K>::max_paper_amplitude();  // = max|cS|
  const double conditioned = 4.0 * std::numeric_limits<double>::epsilon() / (1.0 - fraction);
  const double bound = K == 1 ? 1e-14 : std::fmax(1e-14, conditioned);
  check_surrogate<K>(sq::fourier_surrogate<K>{amplitude}, reference::paper_coefficients(K, amplitude),
                     "A = " + std::to_string(amplitude) + " (" + std::to_string(fraction) + " x limit)", bound);
}

TEST_CASE("fourier_surrogate: accuracy close to the validity limit (A = 0.235, 99% and 99.9% of it)") {
  check_near_limit<3>(0.235);
  check_near_limit<4>(0.235);
  for (double fraction : {0.99, 0.999}) {
    check_near_limit<1>(fraction * sq::fourier_surrogate<1>::max_paper_amplitude());
    check_near_limit<2>(fraction * sq::fourier_surrogate<2>::max_paper_amplitude());
    check_near_limit<3>(fraction * sq::fourier_surrogate<3>::max_paper_amplitude());
    check_near_limit<4>(fraction * sq::fourier_surrogate<4>::max_paper_amplitude());
  }
}

TEST_CASE("fourier_surrogate: max_paper_amplitude against closed form and brute force") {
  const double k1 = sq::fourier_surrogate<1>::max_paper_amplitude();
  CHECK(k1 == doctest::Approx(0.225079079039276517).epsilon(1e-15));
  CHECK(k1 == doctest::Approx(static_cast<double>(1.0L / reference::c)).epsilon(1e-15));
  const double k2 = sq::fourier_surrogate<2>::max_paper_amplitude();
  const double k3 = sq::fourier_surrogate<3>::max_paper_amplitude();
  const double k4 = sq::fourier_surrogate<4>::max_paper_amplitude();
  CHECK(k2 == doctest::Approx(0.2387).epsilon(5e-4));
  CHECK(k3 == doctest::Approx(0.2412).epsilon(5e-4));
  CHECK(k2 == doctest::Approx(static_cast<double>(paper_limit(2))).epsilon(1e-12));
  CHECK(k3 == doctest::Approx(static_cast<double>(paper_limit(3))).epsilon(1e-12));
  CHECK(k4 == doctest::Approx(static_cast<double>(paper_limit(4))).epsilon(1e-12));
  CHECK(k1 < k2);
  CHECK(k2 < k3);
  CHECK(k4 < 0.2431);  // the K -> infinity limit (Gibbs overshoot of the square wave)
  if (reference::report_measurements()) {
    std::printf("max_paper_amplitude: K=1 %.17g  K=2 %.17g  K=3 %.17g  K=4 %.17g\n", k1, k2, k3, k4);
  }
  // Just inside the limit is accepted, at the limit rejected.
  CHECK_NOTHROW((void)sq::fourier_surrogate<2>{k2 * (1 - 1e-9)});
  CHECK_THROWS_AS((void)sq::fourier_surrogate<2>{k2}, std::invalid_argument);
  CHECK_THROWS_AS((void)sq::fourier_surrogate<3>{-k3 * (1 + 1e-9)}, std::invalid_argument);
}

TEST_CASE("fourier_surrogate: validation of amplitudes and coefficients") {
  reference::check_invalid_argument([] { (void)sq::fourier_surrogate<1>{0.23}; },
                                    {"fourier_surrogate<1>", "amplitude", "0.23"});
  reference::check_invalid_argument([] { (void)sq::fourier_surrogate<1>{-0.23}; }, {"amplitude = -0.23"});
  CHECK_NOTHROW((void)sq::fourier_surrogate<2>{0.23});
  CHECK(sq::fourier_surrogate<2>{0.23}.min_derivative() > 0.0);
  CHECK(sq::fourier_surrogate<1>{0.225}.min_derivative() > 0.0);

  constexpr double nan = std::numeric_limits<double>::quiet_NaN();
  constexpr double inf = std::numeric_limits<double>::infinity();
  reference::check_invalid_argument([] { (void)sq::fourier_surrogate<1>{nan}; }, {"amplitude = nan"});
  reference::check_invalid_argument([] { (void)sq::fourier_surrogate<3>{inf}; }, {"amplitude = inf"});
  reference::check_invalid_argument([] { (void)sq::fourier_surrogate<2>{-inf}; }, {"amplitude = -inf"});
  reference::check_invalid_argument([] { (void)sq::fourier_surrogate<0>{nan}; }, {"amplitude = nan"});
  reference::check_invalid_argument([] { (void)sq::fourier_surrogate<2>::from_coefficients({0.1, nan}); },
                                    {"coefficients[1] = nan"});
  reference::check_invalid_argument(
      [] { (void)sq::fourier_surrogate<2>::from_coefficients(std::array<double, 2>{inf, 0.0}); },
      {"coefficients[0] = inf"});
  reference::check_invalid_argument([] { (void)sq::fourier_surrogate<3>::from_coefficients({0.1, 0.01}); },
                                    {"coefficients.size() = 2"});
  reference::check_invalid_argument([] { (void)sq::fourier_surrogate<1>::from_coefficients({0.1, 0.01}); },
                                    {"coefficients.size() = 2"});
  // Too large a custom series: c * 0.3 = 1.33 at r = 0.
  reference::check_invalid_argument([] { (void)sq::fourier_surrogate<1>::from_coefficients({0.3}); },
                                    {"coefficients", "1.33"});
  // sum|a_k| is not the criterion: c*(0.2 + 0.05) = 1.11 > 1, yet |c S| < 1 everywhere.
  CHECK_NOTHROW((void)sq::fourier_surrogate<2>::from_coefficients({0.2, -0.05}));
}

// docs/math.md "Accuracy of g": the largest relative error of g over a dense
// sweep of all of r in [-1/2, 1/2] (2^18 + 1 evenly spaced points, both signs,
// and the float neighbours of 0, +-1/4 and +-1/2), against the closed form
// (1 - cS)/(1 + cS) with cosl in long double. The bounds asserted here are the
// ones the document states.
namespace {

template <class T, int K>
double dense_residual_error(sq::fourier_surrogate<K> const& f, long_coefficients const& a, int points = 1 << 18) {
  std::vector<T> residuals;
  residuals.reserve(2 * points + 16);
  for (int i = 0; i <= points; ++i) {
    const T r = static_cast<T>(static_cast<double>(i) / (2.0 * points));
    residuals.push_back(r);
    residuals.push_back(-r);
  }
  for (T center : {T(0), T(0.25), T(0.5)}) {
    T below = center, above = center;
    for (int step = 0; step < 4; ++step) {
      below = std::nextafter(below, T(-1));
      above = std::nextafter(above, T(1));
      if (above <= T(0.5)) residuals.push_back(above);
      residuals.push_back(below);
      residuals.push_back(-below);
    }
  }
  double worst = 0.0;
  for (T r : residuals) {
    const long double expected = reference::rotated_surrogate_of_residual(a, static_cast<long double>(r));
    const long double got = static_cast<long double>(f.derivative(r));
    const double error = static_cast<double>(std::fabs((got - expected) / expected));
    worst = std::isnan(error) ? std::numeric_limits<double>::infinity() : std::fmax(worst, error);
  }
  return worst;
}

template <int K>
void check_dense_bound(double amplitude, double float_bound, double double_bound) {
  const sq::fourier_surrogate<K> f{amplitude};
  const long_coefficients a = reference::paper_coefficients(K, amplitude);
  const double in_float = dense_residual_error<float>(f, a);
  const double in_double = dense_residual_error<double>(f, a);
  if (reference::report_measurements()) {
    std::printf("dense r sweep K=%d A=%.6g: float %.3g (%.2f ulp of 1), double %.3g (%.2f ulp of 1)\n", K, amplitude,
                in_float, in_float / std::numeric_limits<float>::epsilon(), in_double,
                in_double / std::numeric_limits<double>::epsilon());
  }
  CAPTURE(K);
  CAPTURE(amplitude);
  CHECK(in_float <= float_bound);
  CHECK(in_double <= double_bound);
}

}  // namespace

TEST_CASE("fourier_surrogate: documented accuracy of g over all of r in [-1/2, 1/2]") {
  // K = 1 in float: N and D each carry about one rounding near r = +-1/2 (both
  // near 1), hence ~3 ulp of 1. K >= 2 at A = 0.21 is on the float path
  // (kappa = 39, 73, 120): the cancellation in 1 - cS (max cS = 0.87..0.88)
  // amplifies float's rounding to 13..23 ulp. Close to the limit (kappa > 128)
  // float is evaluated in double and rounded once: half an ulp. Double K >= 2
  // loses a few ulp to 1 - cS.
  check_dense_bound<1>(0.21, 4e-7, 1e-15);
  check_dense_bound<1>(0.1, 4e-7, 1e-15);
  // (Measured 0.75e-6, 1.07e-6, 1.23e-6 with FMA; 1.12e-6, 1.28e-6, 1.70e-6
  // in the portable build, whose fma shim multiplies and adds.)
  check_dense_bound<2>(0.21, 1.5e-6, 4e-15);
  check_dense_bound<3>(0.21, 1.8e-6, 4e-15);
  check_dense_bound<4>(0.21, 2.4e-6, 4e-15);
  check_dense_bound<3>(0.235, 1.2e-7, 4e-14);
  CHECK(sq::fourier_surrogate<3>{0.21}.evaluates_float_in_float());
  CHECK(sq::fourier_surrogate<4>{0.21}.evaluates_float_in_float());
  CHECK_FALSE(sq::fourier_surrogate<3>{0.235}.evaluates_float_in_float());
  CHECK_FALSE(sq::fourier_surrogate<5>{0.1}.evaluates_float_in_float());
}

TEST_CASE("fourier_surrogate: the float path of K >= 2 keeps 2 eps_float kappa on random series") {
  // Random coefficients (normal, fixed seed) scaled to max|cS| between 0.3 and
  // 0.99: both paths occur; every float result is checked against its bound.
  std::mt19937 rng(2026);
  std::normal_distribution<double> normal;
  std::uniform_real_distribution<double> reach_of(0.3, 0.99);
  int on_float_path = 0;
  auto trial = [&]<int K>(std::integral_constant<int, K>) {
    std::array<double, K> a{};
    for (double& v : a) v = normal(rng);
    // reach of the unit-scaled series, from the extremes of g at a small scale
    long_coefficients small(a.begin(), a.end());
    long double l1 = 0.0L;
    for (long double v : small) l1 += std::fabs(v);
    for (long double& v : small) v *= 0.1L / (reference::c * l1);
    const long double reach = max_cs_of(brute_force_extremes(small));
    const long double scale = 0.1L / (reference::c * l1) * static_cast<long double>(reach_of(rng)) / reach;
    for (double& v : a) v = static_cast<double>(static_cast<long double>(v) * scale);
    const auto f = sq::fourier_surrogate<K>::from_coefficients(a);
    const long_coefficients exact(a.begin(), a.end());
    const double bound = documented_float_bound<K>(f, exact, brute_force_extremes(exact));
    on_float_path += f.evaluates_float_in_float() ? 1 : 0;
    const double error = dense_residual_error<float>(f, exact, 1 << 14);
    CAPTURE(K);
    CAPTURE(f.float_condition());
    CHECK(error <= bound);
  };
  for (int i = 0; i < 8; ++i) {
    trial(std::integral_constant<int, 2>{});
    trial(std::integral_constant<int, 3>{});
    trial(std::integral_constant<int, 4>{});
  }
  CHECK(on_float_path >= 8);
  CHECK(on_float_path <= 23);
}

TEST_CASE("fourier_surrogate: visit_branch_free hands loops the path chosen at construction") {
  // Hook (d) of surrogates/concepts.hpp: the variant's g equals g, bit for bit,
  // on both paths; double (and K <= 1) get the surrogate itself.
  for (double amplitude : {0.21, 0.235}) {
    const sq::fourier_surrogate<3> f{amplitude};
    CAPTURE(amplitude);
    CHECK(f.evaluates_float_in_float() == (amplitude == 0.21));
    const std::size_t mismatches = sq::with_branch_free_surrogate<float>(f, [&](auto const& variant) {
      CHECK_FALSE(std::is_same_v<std::remove_cvref_t<decltype(variant)>, sq::fourier_surrogate<3>>);
      std::size_t count = 0;
      for (float v : sweep<float>()) {
        const float r = v - std::nearbyint(v);
        count += reference::same_bits(variant.derivative(r), f.derivative(r)) ? 0 : 1;
      }
      return count;
    });
    CHECK(mismatches == 0);
    sq::with_branch_free_surrogate<double>(f, [](auto const& variant) {
      CHECK(std::is_same_v<std::remove_cvref_t<decltype(variant)>, sq::fourier_surrogate<3>>);
    });
  }
  sq::with_branch_free_surrogate<float>(sq::fourier_surrogate<1>{}, [](auto const& variant) {
    CHECK(std::is_same_v<std::remove_cvref_t<decltype(variant)>, sq::fourier_surrogate<1>>);
  });
}

// core/power_series.hpp's economisation on an interval other than the Fourier
// surrogate's [0, 1/4]: e^z on [-1, 2] from 20 Taylor terms kept to 6,
// against long double exp. The bound is that of interpolation at the
// Chebyshev nodes, half^6 max|f^(6)| / (6! 2^5) with half = 3/2 (3.7e-3; the
// economised polynomial measures 1e-3); truncating Taylor to 6 terms misses
// by 0.12.
TEST_CASE("economized: e^z on [-1, 2] within Chebyshev's bound, far below Taylor's truncation") {
  std::array<long double, 20> taylor{};
  long double factorial = 1.0L;
  for (std::size_t j = 0; j < taylor.size(); ++j) {
    factorial *= j == 0 ? 1.0L : static_cast<long double>(j);
    taylor[j] = 1.0L / factorial;
  }
  const auto economized = sq::detail::economized<6>(taylor, -1.0L, 2.0L);
  const auto evaluate = [](auto const& p, long double z) {
    long double acc = 0.0L;
    for (std::size_t j = p.size(); j-- > 0;) acc = acc * z + p[j];
    return acc;
  };
  std::array<long double, 6> truncated{};
  for (std::size_t j = 0; j < truncated.size(); ++j) truncated[j] = taylor[j];
  long double worst = 0.0L, worst_truncated = 0.0L;
  for (int i = 0; i <= 3000; ++i) {
    const long double z = -1.0L + 3.0L * static_cast<long double>(i) / 3000.0L;
    worst = std::max(worst, std::fabs(evaluate(economized, z) - std::exp(z)));
    worst_truncated = std::max(worst_truncated, std::fabs(evaluate(truncated, z) - std::exp(z)));
  }
  const long double bound = std::pow(1.5L, 6.0L) * std::exp(2.0L) / (720.0L * 32.0L);
  CAPTURE(static_cast<double>(worst));
  CAPTURE(static_cast<double>(worst_truncated));
  CHECK(worst <= bound);
  CHECK(worst * 50.0L < worst_truncated);
  // The interval's ends are where a shifted map goes wrong first.
  CHECK(std::fabs(evaluate(economized, -1.0L) - std::exp(-1.0L)) <= bound);
  CHECK(std::fabs(evaluate(economized, 2.0L) - std::exp(2.0L)) <= bound);
}
