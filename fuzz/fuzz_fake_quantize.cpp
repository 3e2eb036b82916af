// libFuzzer target: arbitrary grids, surrogates, layouts, steps and inputs
// through the public front-end, checking the library's contract.
//
// Invariants checked (any violation aborts, which libFuzzer reports):
//  - the only exception ever thrown is std::invalid_argument;
//  - a throwing call writes nothing;
//  - forward outputs are on the grid: y = s*L (+ b) for an integer level L in
//    [qmin, qmax] (sign on the binary grid), NaN exactly for NaN input;
//  - dx is finite for finite x and dy, and |dx| <= max g * |dy|;
//  - with one element per step and grad_scale 1, dx + db == dy elementwise
//    (to the rounding of one subtraction);
//  - simd agrees with seq: forward bit for bit, dx within a few ulp.
#include <fuzzer/FuzzedDataProvider.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
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
  switch (data.ConsumeIntegralInRange<int>(0, 2)) {
    case 0:
      if (!accepted([&] { (void)sq::signed_grid(bits); })) break;
      return sq::signed_grid(bits);
    case 1:
      if (!accepted([&] { (void)sq::unsigned_grid(bits); })) break;
      return sq::unsigned_grid(bits);
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

  std::vector<T> dx(numel, sentinel), dsteps(count, sentinel), doffsets(count, sentinel);
  const bool backward_ok = accepted([&] {
    if (with_offsets) sq::fake_quantize_backward(sq::exec::seq, q, x, steps, dy, dx, dsteps, offsets, doffsets);
    else sq::fake_quantize_backward(sq::exec::seq, q, x, steps, dy, dx, dsteps);
  });
  require(backward_ok, "backward rejected arguments the forward accepted");
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
    sq::fake_quantize_backward(sq::exec::seq, q1, x, s1, dy, dx1, ds1, b1, db1, 1.0);
    for (std::size_t i = 0; i < numel; ++i) {
      if (!std::isfinite(dy[i]) || !std::isfinite(dx1[i])) continue;
      const double sum = static_cast<double>(dx1[i]) + static_cast<double>(db1[i]);
      const double scale = std::fmax(std::fabs(static_cast<double>(dy[i])), std::fabs(static_cast<double>(dx1[i])));
      require(std::fabs(sum - static_cast<double>(dy[i])) <= 2 * std::numeric_limits<T>::epsilon() * scale,
              "dx + db != dy");
    }
  }

#if FUZZ_HAS_SIMD
  std::vector<T> y_simd(numel), dx_simd(numel), dsteps_simd(count), doffsets_simd(count);
  if (with_offsets) {
    sq::fake_quantize(sq::exec::simd, q, x, steps, y_simd, offsets);
    sq::fake_quantize_backward(sq::exec::simd, q, x, steps, dy, dx_simd, dsteps_simd, offsets, doffsets_simd);
  } else {
    sq::fake_quantize(sq::exec::simd, q, x, steps, y_simd);
    sq::fake_quantize_backward(sq::exec::simd, q, x, steps, dy, dx_simd, dsteps_simd);
  }
  for (std::size_t i = 0; i < numel; ++i) {
    require(same_bits_or_both_nan(y[i], y_simd[i]), "simd forward differs from seq");
    const double a = dx[i], b = dx_simd[i];
    const double tolerance = 4 * std::numeric_limits<T>::epsilon() * std::fmax(std::fabs(a), std::fabs(b)) +
                             4 * static_cast<double>(std::numeric_limits<T>::denorm_min());
    if (!((std::isnan(a) && std::isnan(b)) || a == b || std::fabs(a - b) <= tolerance)) {
      std::fprintf(stderr, "i=%zu x=%a step=%a dy=%a seq dx=%a simd dx=%a max g=%g\n", i, static_cast<double>(x[i]),
                   static_cast<double>(steps[layout->step_index(i)]), static_cast<double>(dy[i]), a, b,
                   surrogate.max_derivative());
      fail("simd dx differs from seq by more than 4 ulp");
    }
  }
#else
  (void)same_bits_or_both_nan;
#endif
}

template <class T>
void check_element_type(FuzzedDataProvider& data, sq::grid grid) {
  const int order = data.ConsumeIntegralInRange<int>(0, 3);
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
    default:
      if (accepted([&] { (void)sq::fourier_surrogate<3>{amplitude}; })) {
        check_case<T>(data, grid, sq::fourier_surrogate<3>{amplitude});
      }
      break;
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
