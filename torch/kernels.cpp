// torch/kernels.cpp: the op library's compute on contiguous buffers (no torch headers).
#include "kernels.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include <stableqat/stableqat.hpp>

namespace stableqat::torch_adapter {

namespace {

template <int K>
fourier_surrogate<K> make_fourier(std::vector<double> const& params) {
  if (params.empty()) {
    return fourier_surrogate<K>{};
  }
  if (params.size() == 1) {
    return fourier_surrogate<K>{params[0]};
  }
  std::array<double, static_cast<std::size_t>(K)> a{};
  for (std::size_t k = 0; k < a.size(); ++k) a[k] = params[k];
  return fourier_surrogate<K>::from_coefficients(a);
}

// Calls f(surrogate) for the Fourier family and STE: one instantiation per
// compiled harmonic count, chosen once per call.
template <class F>
void with_fourier(op_options const& o, F&& f) {
  if (o.estimator == estimator_kind::ste) {
    f(ste{});
    return;
  }
  switch (o.harmonics) {
    case 1: f(make_fourier<1>(o.fourier_params)); return;
    case 2: f(make_fourier<2>(o.fourier_params)); return;
    default: f(make_fourier<3>(o.fourier_params)); return;
  }
}

// The policy of the baselines (DSQ, EWGS): exec::par for float, exec::seq for
// double. Each surrogate's SIMD kernels are instantiated per grid kind x offsets
// x streaming x layout (24 per direction and type); float64 is the reference and
// gradcheck dtype, where the scalar loop's speed does not matter, so only float
// pays for them (three kernel modules, CI's compile-time budget).
template <class T, class F>
void with_baseline_policy(int threads, F&& f) {
  if constexpr (std::is_same_v<T, float>) {
    f(exec::par.with_threads(threads));
  } else {
    (void)threads;
    f(exec::seq);
  }
}

// 16-bit storage (bfloat16 / float16 x) is compiled for STE and the paper's
// one-harmonic StableQAT surrogate only, which keeps the three kernel modules'
// compile time in budget; other estimators raise unsupported_feature (Python:
// NotImplementedError) in the forward call already, before anything is written.
// (Any estimator added later is refused here until it is added below.)
template <class E>
void check_16bit_estimator(op_options const& o) {
  static constexpr const char* dtype = std::is_same_v<E, bfloat16> ? "bfloat16" : "float16";
  std::string estimator;
  switch (o.estimator) {
    case estimator_kind::ste: return;
    case estimator_kind::fourier:
      if (o.harmonics == 1) return;
      estimator = "'stableqat' with harmonics = " + std::to_string(o.harmonics);
      break;
    case estimator_kind::dsq: estimator = "'dsq'"; break;
    case estimator_kind::ewgs: estimator = "'ewgs'"; break;
  }
  throw unsupported_feature(std::string(o.op) + ": estimator " + estimator + " is not compiled for " + dtype +
                            " x (supported there: estimator 'ste', 'stableqat' with harmonics=1); use float32 x");
}

// with_fourier for 16-bit storage: the estimators check_16bit_estimator admits.
template <class F>
void with_16bit_fourier(op_options const& o, F&& f) {
  if (o.estimator == estimator_kind::ste) {
    f(ste{});
  } else {
    f(make_fourier<1>(o.fourier_params));
  }
}

// Pieces of at most this many elements, each inside one step's run of
// elements: the ATen-band fix-up sums each piece in double and then the pieces
// of a step in order, so dsteps do not depend on the thread count.
constexpr std::size_t band_piece = std::size_t{1} << 16;

// ATen decides on the rounded value, qmin <= round_half_even(v) <= qmax, i.e.
// v in [lo, hi] with lo = qmin - 1/2 (kept only if that tie rounds up to an
// even qmin) and hi = qmax + 1/2 (kept only if that tie rounds down to an even qmax).
// The library's pass (band qmin <= v <= qmax) gave those elements dx = 0 and the
// step term dy * level (level = n, the grid edge); ATen's band gives them
// dx = g(r) dy, the step term dy * (n - v) and the offset term dy * (1 - g).
template <class T, class E, class Surrogate>
void aten_band_fixup(op_options const& o, backward_buffers<T, E> const& b, Surrogate const& surrogate,
                     double grad_scale, int threads) {
  using storage = exec::storage_traits<E>;  // 16-bit x, dy, dx: widened, dx rounded once
  const T qmin = static_cast<T>(o.grid.qmin());
  const T qmax = static_cast<T>(o.grid.qmax());
  T lo = qmin - T(0.5);
  if (o.grid.qmin() % 2 != 0) lo = std::nextafter(lo, qmax);
  T hi = qmax + T(0.5);
  if (o.grid.qmax() % 2 != 0) hi = std::nextafter(hi, qmin);

  const std::size_t numel = b.numel;
  const std::size_t row = o.layout.row_length(numel);
  const std::size_t piece = std::min(row, band_piece);
  const std::size_t pieces_per_row = (row + piece - 1) / piece;
  const std::size_t pieces = (numel / row) * pieces_per_row;
  const bool offsets = b.offsets != nullptr;
  std::vector<double> dstep_parts(pieces, 0.0);
  std::vector<double> doffset_parts(offsets ? pieces : 0, 0.0);

  const auto count = static_cast<std::ptrdiff_t>(pieces);
#pragma omp parallel for schedule(static) num_threads(threads)
  for (std::ptrdiff_t p = 0; p < count; ++p) {
    const auto up = static_cast<std::size_t>(p);
    const std::size_t r = up / pieces_per_row;
    const std::size_t begin = r * row + (up % pieces_per_row) * piece;
    const std::size_t end = std::min(begin + piece, (r + 1) * row);
    const std::size_t k = o.layout.step_index(begin);
    const T step = b.steps[k];
    const T inv = T(1) / step;  // the reciprocal the library multiplies by
    const T offset = offsets ? b.offsets[k] : T(0);
    double ds = 0.0;
    double db = 0.0;
    for (std::size_t i = begin; i < end; ++i) {
      const T xi = storage::to_compute(b.x[i]);
      const T v = offsets ? (xi - offset) * inv : xi * inv;
      const bool low = v >= lo && v < qmin;
      const bool high = v > qmax && v <= hi;
      if (low || high) {
        const T n = low ? qmin : qmax;
        const T g = surrogate.derivative(v - n);
        const T d = storage::to_compute(b.dy[i]);
        b.dx[i] = storage::to_storage(g * d);
        ds -= static_cast<double>(d) * static_cast<double>(v);
        if (offsets) db += static_cast<double>(std::fma(-g, d, d)) - static_cast<double>(d);
      }
    }
    dstep_parts[up] = ds;
    if (offsets) doffset_parts[up] = db;
  }
  // Pieces of one step are consecutive (row layouts: a step owns whole rows).
  const std::size_t pieces_per_step = pieces / b.step_count;
  for (std::size_t k = 0; k < b.step_count; ++k) {
    double ds = 0.0;
    double db = 0.0;
    for (std::size_t p = k * pieces_per_step; p < (k + 1) * pieces_per_step; ++p) {
      ds += dstep_parts[p];
      if (offsets) db += doffset_parts[p];
    }
    if (ds != 0.0) b.dsteps[k] = static_cast<T>(static_cast<double>(b.dsteps[k]) + grad_scale * ds);
    if (offsets && db != 0.0) b.doffsets[k] = static_cast<T>(static_cast<double>(b.doffsets[k]) + grad_scale * db);
  }
}

}  // namespace

template <class T, class E>
void run_forward(op_options const& o, forward_buffers<T, E> const& b, int threads) {
  if constexpr (!std::is_same_v<T, E>) {
    check_16bit_estimator<E>(o);
  }
  if (b.numel == 0) {
    return;
  }
  const std::span<const E> x(b.x, b.numel);
  const std::span<const T> steps(b.steps, b.step_count);
  const std::span<E> y(b.y, b.numel);
  const auto run = [&](auto const& policy, auto const& q) {
    if (b.offsets != nullptr) {
      fake_quantize(policy, q, x, steps, y, std::span<const T>(b.offsets, b.step_count));
    } else {
      fake_quantize(policy, q, x, steps, y);
    }
  };
  if constexpr (std::is_same_v<T, E>) {
    if (o.estimator == estimator_kind::dsq) {
      // DSQ's own level floor(v) + (d > 0): ties go down.
      const quantizer<T, dsq_surrogate> q{o.grid, dsq_surrogate{o.dsq_alpha}, o.layout};
      with_baseline_policy<T>(threads, [&](auto const& policy) { run(policy, q); });
      return;
    }
  }
  // Every other estimator rounds half to even: the surrogate only shapes the backward pass.
  run(exec::par.with_threads(threads), quantizer<T, ste>{o.grid, ste{}, o.layout});
}

namespace {

// One backward call of the library's front-end with surrogate `surrogate`:
// offsets and DSQ's parameter gradient passed when present.
template <class T, class E, class Policy, class S>
void backward_with(Policy const& policy, op_options const& o, backward_buffers<T, E> const& b,
                   S const& surrogate) {
  const quantizer<T, S> q{o.grid, surrogate, o.layout};
  const std::span<const E> x(b.x, b.numel);
  const std::span<const E> dy(b.dy, b.numel);
  const std::span<E> dx(b.dx, b.numel);
  const std::span<const T> steps(b.steps, b.step_count);
  const std::span<T> dsteps(b.dsteps, b.step_count);
  if constexpr (learnable_surrogate<S>) {
    const std::span<T> dalpha(b.dalpha, 1);
    if (b.offsets != nullptr) {
      fake_quantize_backward(policy, q, x, steps, dy, dx, dsteps, std::span<const T>(b.offsets, b.step_count),
                             std::span<T>(b.doffsets, b.step_count), dalpha, o.grad_scale);
    } else {
      fake_quantize_backward(policy, q, x, steps, dy, dx, dsteps, dalpha, o.grad_scale);
    }
  } else {
    if (b.offsets != nullptr) {
      fake_quantize_backward(policy, q, x, steps, dy, dx, dsteps, std::span<const T>(b.offsets, b.step_count),
                             std::span<T>(b.doffsets, b.step_count), o.grad_scale);
    } else {
      fake_quantize_backward(policy, q, x, steps, dy, dx, dsteps, o.grad_scale);
    }
  }
}

}  // namespace

template <class T, class E>
void run_backward(op_options const& o, backward_buffers<T, E> const& b, int threads) {
  if constexpr (!std::is_same_v<T, E>) {
    check_16bit_estimator<E>(o);
  }
  if (b.numel == 0) {
    std::fill_n(b.dsteps, b.step_count, T(0));
    if (b.doffsets != nullptr) std::fill_n(b.doffsets, b.step_count, T(0));
    if (b.dalpha != nullptr) *b.dalpha = T(0);
    return;
  }
  const auto policy = exec::par.with_threads(threads);
  const auto fourier_body = [&](auto const& surrogate) {
    backward_with(policy, o, b, surrogate);
    if (o.band == mask_band::aten) {
      const double scale = o.grad_scale ? *o.grad_scale : lsq_grad_scale(b.numel, o.grid);
      aten_band_fixup(o, b, surrogate, scale, threads);
    }
  };
  if constexpr (std::is_same_v<T, E>) {
    switch (o.estimator) {
      case estimator_kind::dsq:
        with_baseline_policy<T>(threads, [&](auto const& baseline) {
          backward_with(baseline, o, b, dsq_surrogate{o.dsq_alpha});
        });
        return;
      case estimator_kind::ewgs:
        with_baseline_policy<T>(threads, [&](auto const& baseline) {
          backward_with(baseline, o, b, ewgs_surrogate{o.ewgs_delta});
        });
        return;
      case estimator_kind::ste:
      case estimator_kind::fourier:
        break;
    }
    with_fourier(o, fourier_body);
  } else {
    with_16bit_fourier(o, fourier_body);
  }
}

template <class T>
void run_init_steps(op_options const& o, const char* rule, const T* x, std::size_t numel, T* steps) {
  const std::span<const T> xs(x, numel);
  const std::span<T> out(steps, o.step_count);
  const std::string name(rule);
  if (name == "lsq") {
    lsq_init_steps(xs, o.grid, o.layout, out);
  } else if (name == "max_abs") {
    max_abs_init_steps(xs, o.grid, o.layout, out);
  } else if (name == "official") {
    // mean|x| at 1 bit; max|x| at 2 bits, ternary and on the stretched elastic grids; max|x|/qmax above.
    paretoq_init_steps(xs, o.grid, o.layout, out);
  } else {
    throw_argument("stableqat::init_step", "rule", "'" + name + "'", "is not one of 'official', 'lsq', 'max_abs'");
  }
}

template void run_forward<float>(op_options const&, forward_buffers<float> const&, int);
template void run_forward<double>(op_options const&, forward_buffers<double> const&, int);
template void run_backward<float>(op_options const&, backward_buffers<float> const&, int);
template void run_backward<double>(op_options const&, backward_buffers<double> const&, int);
// 16-bit storage (torch.bfloat16 / torch.float16), computed in float.
template void run_forward<float, bfloat16>(op_options const&, forward_buffers<float, bfloat16> const&, int);
template void run_forward<float, float16>(op_options const&, forward_buffers<float, float16> const&, int);
template void run_backward<float, bfloat16>(op_options const&, backward_buffers<float, bfloat16> const&, int);
template void run_backward<float, float16>(op_options const&, backward_buffers<float, float16> const&, int);
template void run_init_steps<float>(op_options const&, const char*, const float*, std::size_t, float*);
template void run_init_steps<double>(op_options const&, const char*, const double*, std::size_t, double*);

}  // namespace stableqat::torch_adapter
