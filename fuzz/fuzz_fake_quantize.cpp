// libFuzzer target: arbitrary grids (integer, binary, ParetoQ's stretched
// elastic), surrogates (STE, Fourier K = 1 and 3, DSQ with its alpha, EWGS
// with its delta), layouts, steps and inputs through the public front-end,
// checking the library's contract.
//
// Invariants checked (any violation aborts, which libFuzzer reports):
//  - the only exception ever thrown is std::invalid_argument (bad grids,
//    layouts, alpha, delta, DSQ on a binary or stretched elastic grid, ...);
//  - a throwing call writes nothing;
//  - forward outputs are on the grid: y = s*L (+ b) for an integer level L in
//    [qmin, qmax] (sign on the binary grid, (n + shift)/m on a stretched
//    elastic grid), NaN exactly for NaN input;
//  - dx is finite for finite x and dy, and |dx| <= max g * |dy|;
//  - with one element per step and grad_scale 1, dx + db == dy elementwise
//    (to the rounding of one subtraction);
//  - simd and par agree with seq: forward bit for bit, dx within a few ulp,
//    DSQ's d alpha to the rounding of its double sums.
#include <fuzzer/FuzzedDataProvider.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>
#include <stdexcept>
#include <vector>

#include <stableqat/stableqat.hpp>
#if __has_include(<stableqat/exec/simd.hpp>) && __has_include(<xsimd/xsimd.hpp>)
#include <stableqat/exec/simd.hpp>
#define FUZZ_HAS_SIMD 1
#else
#define FUZZ_HAS_SIMD 0
#endif

namespace sq = stableqat;

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "invariant violated: %s\n", what);
  std::abort();
}

void require(bool condition, const char* what) {
  if (!condition) fail(what);
}

// Runs f; returns false if it threw std::invalid_argument, aborts on any other exception.
template <class F>
bool accepted(F&& f) {
  try {
    f();
    return true;
  } catch (std::invalid_argument const&) {
    return false;
  } catch (...) {
    fail("an exception other than std::invalid_argument escaped");
  }
}

template <class T>
T value_from(FuzzedDataProvider& data) {
  // Mix raw bit patterns (NaN, Inf, subnormals) with tame values.
  switch (data.ConsumeIntegralInRange<int>(0, 3)) {
    case 0: {
      using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
      const Bits bits = data.ConsumeIntegral<Bits>();
      T value;
      std::memcpy(&value, &bits, sizeof value);
      return value;
    }
    case 1:
      return static_cast<T>(data.ConsumeIntegralInRange<int>(-40, 40)) / T(4);  // ties and edges
    default:
      return static_cast<T>(data.ConsumeFloatingPointInRange<double>(-100.0, 100.0));
  }
}

sq::grid grid_from(FuzzedDataProvider& data, bool& valid) {
  valid = true;
  const int bits = data.ConsumeIntegralInRange<int>(-1, 18);
  switch (data.ConsumeIntegralInRange<int>(0, 4)) {
    case 0:
      if (!accepted([&] { (void)sq::signed_grid(bits); })) break;
      return sq::signed_grid(bits);
    case 1:
      if (!accepted([&] { (void)sq::unsigned_grid(bits); })) break;
      return sq::unsigned_grid(bits);
    case 2:  // ParetoQ's stretched elastic grid: 2 bits only
      if (!accepted([&] { (void)sq::stretched_elastic_grid(bits); })) break;
      return sq::stretched_elastic_grid(bits);
    case 3:
      return sq::stretched_elastic_ternary_grid();
    default:
      return sq::ternary_grid();
  }
  valid = false;
  return sq::ternary_grid();
}

std::optional<sq::step_layout> layout_from(FuzzedDataProvider& data, std::size_t numel) {
  const auto extent = data.ConsumeIntegralInRange<std::size_t>(0, numel + 2);
  std::optional<sq::step_layout> layout;
  switch (data.ConsumeIntegralInRange<int>(0, 3)) {
    case 0:
      return sq::per_tensor();
    case 1:
      accepted([&] { layout = sq::per_channel(extent); });
      return layout;
    case 2:
      accepted([&] { layout = sq::per_group(extent); });
      return layout;
    default:
      accepted([&] { layout = sq::per_column(extent); });
      return layout;
  }
}

bool same_bits_or_both_nan(double a, double b) {
  return (std::isnan(a) && std::isnan(b)) || (a == b && std::signbit(a) == std::signbit(b));
}

/// The backward call of any surrogate: a learnable one (DSQ) also returns its
/// parameter gradients into `dparameters` (resized here).
template <class Policy, class T, class S>
void backward(Policy const& policy, sq::quantizer<T, S> const& q, std::vector<T> const& x,
              std::vector<T> const& steps, std::vector<T> const& dy, std::vector<T>& dx, std::vector<T>& dsteps,
              bool with_offsets, std::vector<T> const& offsets, std::vector<T>& doffsets,
              std::vector<T>& dparameters, std::optional<double> grad_scale = std::nullopt) {
  if constexpr (sq::learnable_surrogate<S>) {
    dparameters.resize(S::parameter_count);
    if (with_offsets) {
      sq::fake_quantize_backward(policy, q, x, steps, dy, dx, dsteps, offsets, doffsets, dparameters, grad_scale);
    } else {
      sq::fake_quantize_backward(policy, q, x, steps, dy, dx, dsteps, dparameters, grad_scale);
    }
  } else if (with_offsets) {
    sq::fake_quantize_backward(policy, q, x, steps, dy, dx, dsteps, offsets, doffsets, grad_scale);
  } else {
    sq::fake_quantize_backward(policy, q, x, steps, dy, dx, dsteps, grad_scale);
  }
}

/// Bound on |dL/dp| of a learnable surrogate's parameter (DSQ: |(1/2) dphi/dalpha|
/// <= 1/(2 (1-alpha)^2) + scale/(2 alpha (2 - alpha)), from |tanh| <= 1, sech^2 <= 1, |d| <= 1/2).
template <class S>
double parameter_term_bound(S const& surrogate) {
  if constexpr (sq::learnable_surrogate<S>) {
    const double a = surrogate.alpha();
    return 0.5 / ((1 - a) * (1 - a)) + 0.5 / ((1 - a) * a * (2 - a));
  } else {
    (void)surrogate;
    return 0.0;
  }
}

/// The size of a learnable surrogate's parameter sums, and whether they stay
/// well inside T's range. The library sums the unscaled terms dy * dL/dp per
/// step (the product in T, the sum in double) and multiplies each step's sum
/// by its step afterwards (surrogates/concepts.hpp, hook (a)), so both
/// sum |dy| max|dL/dp| (every unscaled partial sum and product) and
/// `scale` = sum |s dy| max|dL/dp| (every scaled partial sum) must be
/// representable; with tiny steps the first can overflow where the second
/// does not (d alpha is then +-inf or NaN: documented in docs/reliability.md).
/// DSQ with float and alpha below ~6e-39 has constants that overflow float
/// and is rejected.
struct parameter_sum_size {
  double scale = 0.0;    ///< sum |s dy| * max |dL/dp| over finite x
  bool bounded = false;  ///< scaled and unscaled sums well inside T's range
};

template <class T, class S>
parameter_sum_size parameter_sums(S const& surrogate, std::vector<T> const& x, std::vector<T> const& steps,
                                  std::vector<T> const& dy, sq::step_layout const& layout) {
  double scaled = 0.0, unscaled = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (std::isfinite(x[i])) {  // outside the band (NaN, +-Inf x) the term is 0
      scaled += std::fabs(static_cast<double>(steps[layout.step_index(i)]) * static_cast<double>(dy[i]));
      unscaled += std::fabs(static_cast<double>(dy[i]));
    }
  }
  const double bound = parameter_term_bound(surrogate);
  const double limit = 1e-3 * static_cast<double>(std::numeric_limits<T>::max());
  parameter_sum_size size;
  size.scale = scaled * bound;
  size.bounded = std::isfinite(size.scale) && size.scale < limit && bound < limit && unscaled * bound < limit;
  return size;
}

/// The learnable parameter, for messages (DSQ's alpha).
template <class S>
double parameter_of(S const& surrogate) {
  if constexpr (sq::learnable_surrogate<S>) {
    return surrogate.alpha();
  } else {
    (void)surrogate;
    return 0.0;
  }
}

/// y rebuilt from a level as the forward pass writes it: s * L, or fma(s, L, b).
template <class T>
T rebuilt_output(double s, double level, double b, bool with_offsets) {
  return with_offsets ? static_cast<T>(std::fma(static_cast<T>(s), static_cast<T>(level), static_cast<T>(b)))
                      : static_cast<T>(static_cast<T>(s) * static_cast<T>(level));
}

/// The levels of a stretched elastic grid in T, (n + shift) * (1/m) for its codes n.
template <class T>
std::vector<double> stretched_levels(sq::grid const& grid) {
  const bool ternary = grid.qmin() == -grid.qmax();
  const double m = ternary ? 1.5 : -static_cast<double>(grid.qmin());
  const T shift = ternary ? T(0) : T(0.5);
  const T inv_m = static_cast<T>(1.0 / m);
  std::vector<double> levels;
  for (int n = grid.qmin(); n <= grid.qmax(); ++n) {
    levels.push_back(static_cast<double>(static_cast<T>((static_cast<T>(n) + shift) * inv_m)));
  }
  return levels;
}

/// Another backend's results against seq's: forward bit for bit, dx within 4
/// ulp, the parameter gradient within the summation bound of exec::simd.
template <class T, class S>
void check_backend_agrees(const char* backend, S const& surrogate, std::vector<T> const& x,
                          std::vector<T> const& steps, std::vector<T> const& dy, sq::step_layout const& layout,
                          std::vector<T> const& y, std::vector<T> const& dx, std::vector<T> const& dparameters,
                          std::vector<T> const& y_other, std::vector<T> const& dx_other,
                          std::vector<T> const& dparameters_other) {
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (!same_bits_or_both_nan(y[i], y_other[i])) {
      std::fprintf(stderr, "%s: i=%zu x=%a\n", backend, i, static_cast<double>(x[i]));
      fail("forward differs from seq");
    }
    const double a = dx[i], b = dx_other[i];
    const double tolerance = 4 * std::numeric_limits<T>::epsilon() * std::fmax(std::fabs(a), std::fabs(b)) +
                             4 * static_cast<double>(std::numeric_limits<T>::denorm_min());
    if (!((std::isnan(a) && std::isnan(b)) || a == b || std::fabs(a - b) <= tolerance)) {
      std::fprintf(stderr, "%s: i=%zu x=%a step=%a dy=%a seq dx=%a other dx=%a max g=%g\n", backend, i,
                   static_cast<double>(x[i]), static_cast<double>(steps[layout.step_index(i)]),
                   static_cast<double>(dy[i]), a, b, surrogate.max_derivative());
      fail("dx differs from seq by more than 4 ulp");
    }
  }
  if constexpr (sq::learnable_surrogate<S>) {
    // sum |s dy dL/dp| bounds every partial sum: below T's range nothing
    // overflows, and the two summation orders differ within simd's bound.
    const auto [scale, bounded] = parameter_sums(surrogate, x, steps, dy, layout);
    const double a = dparameters[0], b = dparameters_other[0];
    if (bounded) {
      // exec::simd sums float terms in float lanes over blocks of 8 batches
      // (exec/simd/plan.hpp: error <= 2.4e-7 sum|terms|); seq and double, in double.
      const double summation = sizeof(T) == 4 ? 2.4e-7 : 1e-9;
      const double tolerance = summation * scale + 2 * std::numeric_limits<T>::epsilon() * std::fabs(a) +
                               static_cast<double>(std::numeric_limits<T>::denorm_min());
      if (!(std::isfinite(a) && std::isfinite(b) && std::fabs(a - b) <= tolerance)) {
        std::fprintf(stderr, "%s: seq dparameters[0]=%a other=%a scale=%g\n", backend, a, b, scale);
        fail("the parameter gradient differs from seq");
      }
    } else {
      require(std::isnan(a) == std::isnan(b), "the parameter gradient is NaN on one backend only");
    }
  }
}

template <class T, class S>
void check_case(FuzzedDataProvider& data, sq::grid grid, S const& surrogate) {
  const std::size_t numel = data.ConsumeIntegralInRange<std::size_t>(0, 70);
  const auto layout = layout_from(data, numel);
  if (!layout) return;
  const sq::quantizer<T, S> q{grid, surrogate, *layout};

  // Usually the right step count, sometimes not (must then be rejected).
  std::size_t count = layout->type() == sq::step_layout::kind::per_tensor ? 1 : layout->step_count(numel);
  if (data.ConsumeIntegralInRange<int>(0, 7) == 0) count = data.ConsumeIntegralInRange<std::size_t>(0, 8);
  std::vector<T> steps(count), offsets(count), x(numel), dy(numel);
  const bool tame_steps = data.ConsumeBool();
  for (auto& s : steps) s = tame_steps ? T(data.ConsumeIntegralInRange<int>(1, 64)) / T(16) : value_from<T>(data);
  for (auto& b : offsets) b = data.ConsumeBool() ? T(0) : value_from<T>(data);
  for (auto& v : x) v = value_from<T>(data);
  for (auto& v : dy) v = data.ConsumeBool() ? T(1) : value_from<T>(data);
  const bool with_offsets = data.ConsumeBool();

  constexpr T sentinel = T(-12345.0);
  std::vector<T> y(numel, sentinel);
  const bool forward_ok = accepted([&] {
    if (with_offsets) sq::fake_quantize(sq::exec::seq, q, x, steps, y, offsets);
    else sq::fake_quantize(sq::exec::seq, q, x, steps, y);
  });
  if (!forward_ok) {
    for (T v : y) require(v == sentinel, "a rejected forward call wrote to y");
    return;
  }
  const double qmin = grid.qmin(), qmax = grid.qmax();
  for (std::size_t i = 0; i < numel; ++i) {
    const std::size_t k = layout->step_index(i);
    const double s = steps[k], b = with_offsets ? offsets[k] : 0.0;
    if (std::isnan(x[i])) {
      require(std::isnan(y[i]), "NaN input must give NaN output");
      continue;
    }
    require(!std::isnan(y[i]), "finite or infinite input gave NaN output");
    if (!std::isfinite(y[i])) continue;  // s * level (+ b) overflowed the type
    if (grid.is_stretched_elastic()) {  // one of its few levels, rebuilt exactly as the forward pass does
      bool found = false;
      for (double level : stretched_levels<T>(grid)) found = found || rebuilt_output<T>(s, level, b, with_offsets) == y[i];
      require(found, "forward output is not step * (n + shift)/m (+ offset) on the stretched elastic grid");
      continue;
    }
    double level = std::nearbyint((static_cast<double>(y[i]) - b) / s);
    if (with_offsets) {
      // y - b loses the low bits of s*L when |b| dwarfs s; search near the clamped level.
      level = std::fmin(std::fmax(level, qmin), qmax);
    }
    require(qmin <= level && level <= qmax, "forward output outside the grid");
    const T rebuilt = with_offsets ? static_cast<T>(std::fma(static_cast<T>(s), static_cast<T>(level), static_cast<T>(b)))
                                   : static_cast<T>(static_cast<T>(s) * static_cast<T>(level));
    // With an offset, (y - b)/s may land a level off when b dwarfs s; accept
    // a neighbour level that rebuilds y exactly.
    bool on_grid = rebuilt == y[i];
    for (double neighbour : {level - 1, level + 1}) {
      if (on_grid || neighbour < qmin || neighbour > qmax) continue;
      const T other = with_offsets ? static_cast<T>(std::fma(static_cast<T>(s), static_cast<T>(neighbour), static_cast<T>(b)))
                                   : static_cast<T>(static_cast<T>(s) * static_cast<T>(neighbour));
      on_grid = other == y[i];
    }
    require(on_grid, "forward output is not step * level (+ offset)");
  }

  std::vector<T> dx(numel, sentinel), dsteps(count, sentinel), doffsets(count, sentinel), dparameters;
  const bool backward_ok = accepted([&] {
    backward(sq::exec::seq, q, x, steps, dy, dx, dsteps, with_offsets, offsets, doffsets, dparameters);
  });
  require(backward_ok, "backward rejected arguments the forward accepted");
  if constexpr (sq::learnable_surrogate<S>) {
    // Terms outside the band (NaN, ±Inf x) are 0, so with finite dy the
    // parameter gradient is not NaN, unless the sums may overflow (inf - inf):
    // the scaled and the unscaled sums must stay well inside T's range (parameter_sums).
    const auto [scale, bounded] = parameter_sums(surrogate, x, steps, dy, *layout);
    if (bounded && std::isnan(dparameters[0])) {
      std::fprintf(stderr, "alpha=%a scale=%g numel=%zu\n", parameter_of(surrogate), scale, numel);
      fail("the parameter gradient is NaN for finite dy and a bounded sum");
    }
  }
  for (std::size_t i = 0; i < numel; ++i) {
    if (std::isfinite(x[i]) && std::isfinite(dy[i])) {
      const double bound = surrogate.max_derivative() * std::fabs(static_cast<double>(dy[i]));
      const double headroom = 1e-6 * bound + std::numeric_limits<T>::denorm_min();
      // g * dy may legitimately overflow T when the bound itself does.
      if (bound < static_cast<double>(std::numeric_limits<T>::max())) {
        require(std::isfinite(dx[i]), "dx not finite for finite x and dy");
        require(std::fabs(static_cast<double>(dx[i])) <= bound + headroom, "|dx| exceeds max g * |dy|");
      }
    }
    if (std::isnan(x[i])) require(dx[i] == T(0), "NaN input must give dx = 0");
  }

  // One element per step and grad_scale 1 expose each db_i: dx + db == dy.
  if (numel > 0) {
    const sq::quantizer<T, S> q1{grid, surrogate, sq::per_group(1)};
    std::vector<T> s1(numel), b1(numel), dx1(numel), ds1(numel), db1(numel);
    for (std::size_t i = 0; i < numel; ++i) {
      s1[i] = steps[layout->step_index(i)];
      b1[i] = with_offsets ? offsets[layout->step_index(i)] : T(0);
    }
    std::vector<T> dp1;
    backward(sq::exec::seq, q1, x, s1, dy, dx1, ds1, true, b1, db1, dp1, 1.0);
    for (std::size_t i = 0; i < numel; ++i) {
      if (!std::isfinite(dy[i]) || !std::isfinite(dx1[i])) continue;
      const double sum = static_cast<double>(dx1[i]) + static_cast<double>(db1[i]);
      const double scale = std::fmax(std::fabs(static_cast<double>(dy[i])), std::fabs(static_cast<double>(dx1[i])));
      require(std::fabs(sum - static_cast<double>(dy[i])) <= 2 * std::numeric_limits<T>::epsilon() * scale,
              "dx + db != dy");
    }
  }

#if FUZZ_HAS_SIMD
  const auto other = [&](const char* name, auto const& policy) {
    std::vector<T> y_other(numel), dx_other(numel), dsteps_other(count), doffsets_other(count), dparameters_other;
    if (with_offsets) {
      sq::fake_quantize(policy, q, x, steps, y_other, offsets);
    } else {
      sq::fake_quantize(policy, q, x, steps, y_other);
    }
    backward(policy, q, x, steps, dy, dx_other, dsteps_other, with_offsets, offsets, doffsets_other,
             dparameters_other);
    check_backend_agrees(name, surrogate, x, steps, dy, *layout, y, dx, dparameters, y_other, dx_other,
                         dparameters_other);
  };
  other("simd", sq::exec::simd);
  other("par(2)", sq::exec::par.with_threads(2));
#else
  (void)same_bits_or_both_nan;
  (void)check_backend_agrees<T, S>;
#endif
}

template <class T>
void check_element_type(FuzzedDataProvider& data, sq::grid grid) {
  const int order = data.ConsumeIntegralInRange<int>(0, 5);
  const double amplitude = data.ConsumeBool() ? data.ConsumeFloatingPointInRange<double>(-0.3, 0.3)
                                              : value_from<double>(data);
  switch (order) {
    case 0:
      check_case<T>(data, grid, sq::ste{});
      break;
    case 1:
      if (accepted([&] { (void)sq::fourier_surrogate<1>{amplitude}; })) {
        check_case<T>(data, grid, sq::fourier_surrogate<1>{amplitude});
      }
      break;
    case 2:
      if (accepted([&] { (void)sq::fourier_surrogate<3>{amplitude}; })) {
        check_case<T>(data, grid, sq::fourier_surrogate<3>{amplitude});
      }
      break;
    case 3:
      check_case<T>(data, grid, sq::ste{});
      break;
    case 4: {  // DSQ: alpha in (0, 1) accepted, anything else refused
      const double alpha = data.ConsumeBool() ? data.ConsumeFloatingPointInRange<double>(-0.2, 1.2)
                                              : value_from<double>(data);
      if (accepted([&] { (void)sq::dsq_surrogate{alpha}; })) {
        check_case<T>(data, grid, sq::dsq_surrogate{alpha});
      }
      break;
    }
    default: {  // EWGS: delta in [0, 2)
      const double delta = data.ConsumeBool() ? data.ConsumeFloatingPointInRange<double>(-0.5, 2.5)
                                              : value_from<double>(data);
      if (accepted([&] { (void)sq::ewgs_surrogate{delta}; })) {
        check_case<T>(data, grid, sq::ewgs_surrogate{delta});
      }
      break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  FuzzedDataProvider data(bytes, size);
  bool valid = false;
  const sq::grid grid = grid_from(data, valid);
  if (!valid) return 0;
  if (data.ConsumeBool()) {
    check_element_type<float>(data, grid);
  } else {
    check_element_type<double>(data, grid);
  }
  return 0;
}
