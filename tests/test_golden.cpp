// Golden vectors (tests/golden/fake_quantize.golden) on every CPU backend.
//
// The expectations in the data file are derived by hand; this runner only
// parses them and compares. Each case runs on seq, and on simd and par (1, 2
// and 4 threads) when those backends are compiled in.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <stableqat/stableqat.hpp>
#if __has_include(<stableqat/exec/simd.hpp>) && __has_include(<xsimd/xsimd.hpp>)
#include <stableqat/exec/par.hpp>
#include <stableqat/exec/simd.hpp>
#define GOLDEN_HAS_SIMD 1
#else
#define GOLDEN_HAS_SIMD 0
#endif

#ifndef STABLEQAT_GOLDEN_FILE
#error "STABLEQAT_GOLDEN_FILE must name tests/golden/fake_quantize.golden"
#endif

namespace sq = stableqat;

namespace {

struct golden_case {
  std::string name, type, grid, surrogate, layout;
  std::vector<double> steps, offsets, x, dy, y, dx, dsteps, doffsets;
  bool has_offsets = false;
  int line = 0;
};

std::vector<double> parse_list(std::string const& text) {
  std::vector<double> values;
  if (text == "-") return values;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) {
    char* end = nullptr;
    values.push_back(std::strtod(item.c_str(), &end));
    REQUIRE_MESSAGE(end != item.c_str(), "unparsable number '" << item << "'");
  }
  return values;
}

std::vector<golden_case> load_cases() {
  std::ifstream file(STABLEQAT_GOLDEN_FILE);
  REQUIRE_MESSAGE(file.good(), "cannot open " << STABLEQAT_GOLDEN_FILE);
  std::vector<golden_case> cases;
  std::string text;
  int line = 0;
  while (std::getline(file, text)) {
    ++line;
    if (text.empty() || text[0] == '#') continue;
    std::stringstream stream(text);
    golden_case c;
    std::string steps, offsets, x, dy, bar, y, dx, dsteps, doffsets;
    stream >> c.name >> c.type >> c.grid >> c.surrogate >> c.layout >> steps >> offsets >> x >> dy >> bar >> y >> dx >>
        dsteps >> doffsets;
    REQUIRE_MESSAGE(bar == "|", "line " << line << ": malformed case");
    c.steps = parse_list(steps);
    c.offsets = parse_list(offsets);
    c.has_offsets = offsets != "-";
    c.x = parse_list(x);
    c.dy = parse_list(dy);
    c.y = parse_list(y);
    c.dx = parse_list(dx);
    c.dsteps = parse_list(dsteps);
    c.doffsets = parse_list(doffsets);
    c.line = line;
    cases.push_back(c);
  }
  return cases;
}

sq::grid grid_of(std::string const& name) {
  if (name == "t") return sq::ternary_grid();
  const int bits = std::stoi(name.substr(1));
  return name[0] == 's' ? sq::signed_grid(bits) : sq::unsigned_grid(bits);
}

sq::step_layout layout_of(std::string const& name) {
  if (name == "tensor") return sq::per_tensor();
  const auto colon = name.find(':');
  const std::size_t extent = std::stoul(name.substr(colon + 1));
  const std::string kind = name.substr(0, colon);
  if (kind == "channel") return sq::per_channel(extent);
  if (kind == "group") return sq::per_group(extent);
  return sq::per_column(extent);
}

template <class T>
std::vector<T> as(std::vector<double> const& values) {
  return std::vector<T>(values.begin(), values.end());
}

template <class T>
double ulp_distance(T a, T b) {
  if (a == b) return 0;
  const T scale = std::fmax(std::fabs(a), std::fabs(b));
  return std::fabs(static_cast<double>(a) - static_cast<double>(b)) /
         static_cast<double>(std::numeric_limits<T>::epsilon() * std::fmax(scale, std::numeric_limits<T>::min()));
}

template <class T>
void check_close_sum(std::vector<T> const& got, std::vector<double> const& want, const char* what) {
  REQUIRE(got.size() == want.size());
  for (std::size_t k = 0; k < want.size(); ++k) {
    INFO(what << "[" << k << "] = " << got[k] << ", expected " << want[k]);
    if (std::isnan(want[k])) {
      CHECK(std::isnan(got[k]));
    } else {
      CHECK(std::fabs(static_cast<double>(got[k]) - static_cast<T>(want[k])) <=
            1e-6 * std::fabs(want[k]) + std::numeric_limits<double>::min());
    }
  }
}

template <class T, class S, class Policy>
void run_case(golden_case const& c, S const& surrogate, Policy const& policy, const char* backend) {
  INFO("case " << c.name << " (golden line " << c.line << ") on " << backend);
  const sq::quantizer<T, S> q{grid_of(c.grid), surrogate, layout_of(c.layout)};
  const auto x = as<T>(c.x), steps = as<T>(c.steps), offsets = as<T>(c.offsets), dy = as<T>(c.dy);
  std::vector<T> y(x.size()), dx(x.size()), dsteps(steps.size()), doffsets(offsets.size());
  if (c.has_offsets) {
    sq::fake_quantize(policy, q, x, steps, y, offsets);
    sq::fake_quantize_backward(policy, q, x, steps, dy, dx, dsteps, offsets, doffsets, 1.0);
  } else {
    sq::fake_quantize(policy, q, x, steps, y);
    sq::fake_quantize_backward(policy, q, x, steps, dy, dx, dsteps, 1.0);
  }
  for (std::size_t i = 0; i < x.size(); ++i) {
    const T want_y = static_cast<T>(c.y[i]);
    INFO("element " << i << ": y = " << y[i] << " expected " << want_y << "; dx = " << dx[i] << " expected "
                    << c.dx[i]);
    if (std::isnan(want_y)) {
      CHECK(std::isnan(y[i]));
    } else {
      CHECK(y[i] == want_y);
      CHECK(std::signbit(y[i]) == std::signbit(want_y));
    }
    const T want_dx = static_cast<T>(c.dx[i]);
    if (c.surrogate == "ste") {
      CHECK(dx[i] == want_dx);
    } else {
      CHECK(ulp_distance(dx[i], want_dx) <= 4.0);
    }
  }
  check_close_sum(dsteps, c.dsteps, "dsteps");
  if (c.has_offsets) check_close_sum(doffsets, c.doffsets, "doffsets");
}

template <class T, class Policy>
void run_typed(golden_case const& c, Policy const& policy, const char* backend) {
  if (c.surrogate == "ste") {
    run_case<T>(c, sq::ste{}, policy, backend);
  } else {
    run_case<T>(c, sq::fourier_surrogate<1>{0.21}, policy, backend);
  }
}

template <class Policy>
void run_all(Policy const& policy, const char* backend) {
  const auto cases = load_cases();
  REQUIRE(cases.size() >= 30);
  for (auto const& c : cases) {
    if (c.type == "f") {
      run_typed<float>(c, policy, backend);
    } else {
      run_typed<double>(c, policy, backend);
    }
  }
}

}  // namespace

TEST_CASE("golden vectors: exec::seq") { run_all(sq::exec::seq, "seq"); }

#if GOLDEN_HAS_SIMD
TEST_CASE("golden vectors: exec::simd") { run_all(sq::exec::simd, "simd"); }
TEST_CASE("golden vectors: exec::par with 1, 2 and 4 threads") {
  run_all(sq::exec::par.with_threads(1), "par(1)");
  run_all(sq::exec::par.with_threads(2), "par(2)");
  run_all(sq::exec::par.with_threads(4), "par(4)");
}
#endif
