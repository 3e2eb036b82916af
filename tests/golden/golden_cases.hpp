// The golden-vector cases and their checks, shared by every backend's runner:
// tests/test_golden.cpp (seq, simd, par), the CUDA launch emulated lane by
// lane on the host (tests/cuda/host_golden_tests.cpp) and exec::cuda on a GPU
// (tests/cuda/float_tests.cu, tests/cuda/estimator_tests.cu).
//
// Two data files: fake_quantize.golden (STE and the Fourier surrogate,
// expectations derived by hand) and estimators.golden (the paper's baselines
// DSQ, EWGS and the stretched elastic grid; written by the independent
// long-double generator generate_estimators.cpp). This header only parses them
// and compares. A runner is a callable
//     golden_outputs<T> run(quantizer<T, S> const& q, golden_inputs<T> const& in)
// generic in T (float, double) and S (ste, fourier_surrogate<1>, and for the
// estimator file dsq_surrogate, ewgs_surrogate), computing the forward and
// backward pass of one case with grad_scale = 1 (and, for a learnable S, the
// parameter gradients into golden_outputs::dparameters).
#pragma once

#include <doctest/doctest.h>

#include <stableqat/core/grid.hpp>
#include <stableqat/core/layout.hpp>
#include <stableqat/quantizer.hpp>
#include <stableqat/surrogates/concepts.hpp>
#include <stableqat/surrogates/dsq.hpp>
#include <stableqat/surrogates/ewgs.hpp>
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
  std::vector<double> dparameters;  ///< learnable surrogates (DSQ): d alpha
  double dparameter_scale = 0.0;    ///< the sum of d alpha's terms' magnitudes
  bool has_offsets = false;
  int line = 0;
};

/// The inputs of a case in its element type.
template <class T>
struct golden_inputs {
  std::vector<T> x, steps, offsets, dy;
  bool has_offsets = false;
};

/// What a runner returns: y, dx, dsteps, (with offsets) doffsets and (a
/// learnable surrogate) dparameters.
template <class T>
struct golden_outputs {
  std::vector<T> y, dx, dsteps, doffsets, dparameters;
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
    std::string dparameters, dparameter_scale;
    if (stream >> dparameters >> dparameter_scale) {  // DSQ lines: d alpha and its scale
      c.dparameters = parse_list(dparameters);
      c.dparameter_scale = parse_list(dparameter_scale).at(0);
    }
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
  if (name == "e2") return stretched_elastic_grid(2);
  if (name == "et") return stretched_elastic_ternary_grid();
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

/// A sum of terms to `relative` (1e-6 unless told) of its value (NaN exactly where NaN is expected).
template <class T>
void check_close_sum(std::vector<T> const& got, std::vector<double> const& want, const char* what,
                     double relative = 1e-6) {
  REQUIRE(got.size() == want.size());
  for (std::size_t k = 0; k < want.size(); ++k) {
    INFO(what << "[" << k << "] = " << got[k] << ", expected " << want[k]);
    if (std::isnan(want[k])) {
      CHECK(std::isnan(got[k]));
    } else {
      CHECK(std::fabs(static_cast<double>(got[k]) - static_cast<T>(want[k])) <=
            relative * std::fabs(want[k]) + std::numeric_limits<double>::min());
    }
  }
}

/// y bit for bit (sign of zero included), dx exactly for STE, to 16 ulp for
/// DSQ (exp-based sech^2 against coshl) and 4 ulp for the others, step and
/// offset gradients as check_close_sum (DSQ: 256 eps, its consistent step
/// term carries g's error), d alpha to 1024 eps of its terms' magnitudes.
template <class T>
void check_outputs(golden_case const& c, golden_outputs<T> const& got) {
  const bool dsq = c.surrogate.rfind("dsq:", 0) == 0;
  const double eps = std::numeric_limits<T>::epsilon();
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
      CHECK(reference::ulp_distance(got.dx[i], want_dx) <= (dsq ? 16.0 : 4.0));
    }
  }
  const double relative = dsq ? std::fmax(1e-6, 256 * eps) : 1e-6;
  check_close_sum(got.dsteps, c.dsteps, "dsteps", relative);
  if (c.has_offsets) check_close_sum(got.doffsets, c.doffsets, "doffsets", relative);
  REQUIRE(got.dparameters.size() == c.dparameters.size());
  for (std::size_t j = 0; j < c.dparameters.size(); ++j) {
    INFO("dparameters[" << j << "] = " << got.dparameters[j] << ", expected " << c.dparameters[j]);
    CHECK(std::fabs(static_cast<double>(got.dparameters[j]) - c.dparameters[j]) <= 1024 * eps * c.dparameter_scale);
  }
}

template <class T, class S, class Run>
void run_case(golden_case const& c, S const& surrogate, Run const& run) {
  const quantizer<T, S> q{grid_of(c.grid), surrogate, layout_of(c.layout)};
  const golden_inputs<T> in{as<T>(c.x), as<T>(c.steps), as<T>(c.offsets), as<T>(c.dy), c.has_offsets};
  check_outputs(c, run(q, in));
}

/// The parameter after the colon of a surrogate token ("dsq:0.2" -> 0.2).
inline double surrogate_parameter(std::string const& token) {
  return std::strtod(token.c_str() + token.find(':') + 1, nullptr);
}

template <class T, class Run>
void run_case_of_type(golden_case const& c, Run const& run) {
  if (c.surrogate == "ste") {
    run_case<T>(c, ste{}, run);
  } else if (c.surrogate == "f1") {
    run_case<T>(c, fourier_surrogate<1>{0.21}, run);
  } else if constexpr (Run::estimators) {
    if (c.surrogate.rfind("dsq:", 0) == 0) {
      run_case<T>(c, dsq_surrogate{surrogate_parameter(c.surrogate)}, run);
    } else {
      REQUIRE_MESSAGE(c.surrogate.rfind("ewgs:", 0) == 0, "unknown surrogate " << c.surrogate);
      run_case<T>(c, ewgs_surrogate{surrogate_parameter(c.surrogate)}, run);
    }
  } else {
    FAIL("surrogate " << c.surrogate << " needs check_estimator_cases");
  }
}

/// A runner and whether it is instantiated for the estimator surrogates too
/// (DSQ, EWGS): only the estimator file's runners pay for those instantiations.
template <class Run, bool Estimators>
struct runner {
  static constexpr bool estimators = Estimators;
  Run const& run;
  template <class Q, class In>
  auto operator()(Q const& q, In const& in) const {
    return run(q, in);
  }
};

template <class Run, bool Estimators>
void check_cases(const char* path, const char* backend, Run const& run, std::size_t minimum) {
  const auto cases = load_cases(path);
  REQUIRE(cases.size() >= minimum);
  const runner<Run, Estimators> r{run};
  for (auto const& c : cases) {
    INFO("case " << c.name << " (golden line " << c.line << ") on " << std::string(backend));
    if (c.type == "f") {
      run_case_of_type<float>(c, r);
    } else {
      run_case_of_type<double>(c, r);
    }
  }
}

/// Runs every case of fake_quantize.golden at `path` through `run` and checks it;
/// `backend` names the runner in failures.
template <class Run>
void check_all_cases(const char* path, const char* backend, Run const& run) {
  check_cases<Run, false>(path, backend, run, 30);
}

/// estimators.golden, the file next to fake_quantize.golden at `path`.
inline std::string estimators_file(const char* path) {
  const std::string p(path);
  return p.substr(0, p.find_last_of('/') + 1) + "estimators.golden";
}

/// Runs every case of estimators.golden (next to fake_quantize.golden at
/// `path`) through `run`: DSQ, EWGS and the stretched elastic grids. The
/// runner must handle learnable surrogates (write golden_outputs::dparameters).
template <class Run>
void check_estimator_cases(const char* path, const char* backend, Run const& run) {
  check_cases<Run, true>(estimators_file(path).c_str(), backend, run, 15);
}

}  // namespace stableqat::test::golden
