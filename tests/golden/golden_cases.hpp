// The golden-vector cases (fake_quantize.golden) and their checks, shared by
// every backend's runner: tests/test_golden.cpp (seq, simd, par), the CUDA
// launch emulated lane by lane on the host (tests/cuda/host_golden_tests.cpp)
// and exec::cuda on a GPU (tests/cuda/float_tests.cu).
//
// The expectations in the data file are derived by hand; this header only
// parses them and compares. A runner is a callable
//     golden_outputs<T> run(quantizer<T, S> const& q, golden_inputs<T> const& in)
// generic in T (float, double) and S (ste, fourier_surrogate<1>), computing
// the forward and backward pass of one case with grad_scale = 1.
#pragma once

#include <doctest/doctest.h>

#include <stableqat/core/grid.hpp>
#include <stableqat/core/layout.hpp>
#include <stableqat/quantizer.hpp>
#include <stableqat/surrogates/fourier.hpp>

#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "../reference.hpp"

namespace stableqat::test::golden {

/// One line of the data file, numbers as parsed (exact: every value is a float
/// or double literal of the case's type).
struct golden_case {
  std::string name, type, grid, surrogate, layout;
  std::vector<double> steps, offsets, x, dy, y, dx, dsteps, doffsets;
  bool has_offsets = false;
  int line = 0;
};

/// The inputs of a case in its element type.
template <class T>
struct golden_inputs {
  std::vector<T> x, steps, offsets, dy;
  bool has_offsets = false;
};

/// What a runner returns: y, dx, dsteps and (with offsets) doffsets.
template <class T>
struct golden_outputs {
  std::vector<T> y, dx, dsteps, doffsets;
};

inline std::vector<double> parse_list(std::string const& text) {
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

/// Every case of the file at `path` (format: the file's header comment).
inline std::vector<golden_case> load_cases(const char* path) {
  std::ifstream file(path);
  REQUIRE_MESSAGE(file.good(), "cannot open " << path);
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

inline grid grid_of(std::string const& name) {
  if (name == "t") return ternary_grid();
  const int bits = std::stoi(name.substr(1));
  return name[0] == 's' ? signed_grid(bits) : unsigned_grid(bits);
}

inline step_layout layout_of(std::string const& name) {
  if (name == "tensor") return per_tensor();
  const auto colon = name.find(':');
  const std::size_t extent = std::stoul(name.substr(colon + 1));
  const std::string kind = name.substr(0, colon);
  if (kind == "channel") return per_channel(extent);
  if (kind == "group") return per_group(extent);
  return per_column(extent);
}

template <class T>
std::vector<T> as(std::vector<double> const& values) {
  return std::vector<T>(values.begin(), values.end());
}

/// A sum of terms to 1e-6 relative (NaN exactly where NaN is expected).
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

/// y bit for bit (sign of zero included), dx exactly for STE and to 4 ulp for
/// the Fourier surrogate, step and offset gradients as check_close_sum.
template <class T>
void check_outputs(golden_case const& c, golden_outputs<T> const& got) {
  REQUIRE(got.y.size() == c.x.size());
  REQUIRE(got.dx.size() == c.x.size());
  for (std::size_t i = 0; i < c.x.size(); ++i) {
    const T want_y = static_cast<T>(c.y[i]);
    INFO("element " << i << ": y = " << got.y[i] << " expected " << want_y << "; dx = " << got.dx[i] << " expected "
                    << c.dx[i]);
    if (std::isnan(want_y)) {
      CHECK(std::isnan(got.y[i]));
    } else {
      CHECK(got.y[i] == want_y);
      CHECK(std::signbit(got.y[i]) == std::signbit(want_y));
    }
    const T want_dx = static_cast<T>(c.dx[i]);
    if (c.surrogate == "ste") {
      CHECK(got.dx[i] == want_dx);
    } else {
      CHECK(reference::ulp_distance(got.dx[i], want_dx) <= 4.0);
    }
  }
  check_close_sum(got.dsteps, c.dsteps, "dsteps");
  if (c.has_offsets) check_close_sum(got.doffsets, c.doffsets, "doffsets");
}

template <class T, class S, class Run>
void run_case(golden_case const& c, S const& surrogate, Run const& run) {
  const quantizer<T, S> q{grid_of(c.grid), surrogate, layout_of(c.layout)};
  const golden_inputs<T> in{as<T>(c.x), as<T>(c.steps), as<T>(c.offsets), as<T>(c.dy), c.has_offsets};
  check_outputs(c, run(q, in));
}

/// Runs every case of the file at `path` through `run` and checks it; `backend` names the runner in failures.
template <class Run>
void check_all_cases(const char* path, const char* backend, Run const& run) {
  const auto cases = load_cases(path);
  REQUIRE(cases.size() >= 30);
  for (auto const& c : cases) {
    INFO("case " << c.name << " (golden line " << c.line << ") on " << std::string(backend));
    const bool ste_case = c.surrogate == "ste";
    if (c.type == "f") {
      ste_case ? run_case<float>(c, ste{}, run) : run_case<float>(c, fourier_surrogate<1>{0.21}, run);
    } else {
      ste_case ? run_case<double>(c, ste{}, run) : run_case<double>(c, fourier_surrogate<1>{0.21}, run);
    }
  }
}

}  // namespace stableqat::test::golden
