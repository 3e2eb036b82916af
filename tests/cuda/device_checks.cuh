// Device tests' tools: device arrays and the comparison of one problem run by
// exec::cuda with exec::seq (outputs rounded to storage once).
#pragma once

#include <doctest/doctest.h>

#include <stableqat/cuda.cuh>

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "test_problems.hpp"

namespace stableqat::test {

/// The message of the std::invalid_argument that call() throws, or a text
/// saying what happened instead (so a CHECK against a message shows it).
inline std::string message_of(auto const& call) {
  try {
    call();
  } catch (std::invalid_argument const& e) {
    return e.what();
  } catch (std::exception const& e) {
    return std::string("unexpected exception: ") + e.what();
  }
  return "no exception";
}

/// cudaMalloc'd array of n elements; throws cuda_error on failure.
template <class U>
class device_array {
 public:
  explicit device_array(std::size_t n) : size_(n) {
    exec::cuda_detail::check_cuda(cudaMalloc(reinterpret_cast<void**>(&data_), (n > 0 ? n : 1) * sizeof(U)), "test",
                                  "cudaMalloc");
  }
  explicit device_array(std::vector<U> const& host) : device_array(host.size()) { upload(host); }
  device_array(device_array const&) = delete;
  device_array& operator=(device_array const&) = delete;
  ~device_array() { (void)cudaFree(data_); }

  void upload(std::vector<U> const& host, std::size_t at = 0) {
    REQUIRE(at + host.size() <= size_);
    exec::cuda_detail::check_cuda(cudaMemcpy(data_ + at, host.data(), host.size() * sizeof(U), cudaMemcpyHostToDevice),
                                  "test", "cudaMemcpy to device");
    // From pageable memory cudaMemcpy may return before the data lands; the
    // tests' non-blocking streams do not wait for the legacy stream.
    exec::cuda_detail::check_cuda(cudaDeviceSynchronize(), "test", "cudaDeviceSynchronize");
  }
  [[nodiscard]] std::vector<U> download(std::size_t at = 0, std::size_t n = static_cast<std::size_t>(-1)) const {
    if (n == static_cast<std::size_t>(-1)) {
      n = size_ - at;
    }
    std::vector<U> host(n);
    exec::cuda_detail::check_cuda(cudaDeviceSynchronize(), "test", "cudaDeviceSynchronize");
    exec::cuda_detail::check_cuda(cudaMemcpy(host.data(), data_ + at, n * sizeof(U), cudaMemcpyDeviceToHost), "test",
                                  "cudaMemcpy to host");
    return host;
  }
  [[nodiscard]] std::span<U> span(std::size_t at = 0, std::size_t n = static_cast<std::size_t>(-1)) const {
    return {data_ + at, n == static_cast<std::size_t>(-1) ? size_ - at : n};
  }

 private:
  U* data_ = nullptr;
  std::size_t size_;
};

struct run_options {
  bool in_place = false;   ///< y == x, dx == dy
  bool misaligned = false;  ///< every element buffer starts one element past a 16-byte boundary
  bool default_stream = false;
};

/// Outputs of one exec::cuda forward + backward run.
template <class E>
struct device_results {
  using T = compute_t<E>;
  std::vector<E> y, dx;
  std::vector<T> dsteps, doffsets, dparameters;  ///< dparameters: learnable surrogates only
};

template <class E, class S>
device_results<E> run_on_device(sq::quantizer<compute_t<E>, S> const& q, problem<E> const& p, bool has_offsets,
                                 run_options const& o, cudaStream_t stream) {
  using T = compute_t<E>;
  const std::size_t n = p.x.size();
  const std::size_t at = o.misaligned ? 1 : 0;
  device_array<E> x(n + 1), dy(n + 1), y(n + 1), dx(n + 1);
  device_array<T> steps(p.steps), offsets(p.offsets), dsteps(p.steps.size()), doffsets(p.steps.size());
  x.upload(p.x, at);
  dy.upload(p.dy, at);
  const sq::exec::cuda_policy policy = o.default_stream ? sq::exec::cuda : sq::exec::cuda_on(stream);
  const std::span<const T> steps_view = steps.span();
  const std::span<const T> offsets_view = offsets.span();
  // In place: y is x's buffer (forward), dx is dy's buffer (backward).
  const std::span<E> y_view = o.in_place ? x.span(at, n) : y.span(at, n);
  if (has_offsets) {
    sq::fake_quantize(policy, q, std::span<const E>(x.span(at, n)), steps_view, y_view, offsets_view);
  } else {
    sq::fake_quantize(policy, q, std::span<const E>(x.span(at, n)), steps_view, y_view);
  }
  device_results<E> r;
  r.y = (o.in_place ? x : y).download(at, n);
  if (o.in_place) {
    x.upload(p.x, at);  // restore x for the backward pass
  }
  const std::span<E> dx_view = o.in_place ? dy.span(at, n) : dx.span(at, n);
  device_array<T> dparameters(sq::surrogate_parameter_count<S>);
  if constexpr (sq::learnable_surrogate<S>) {
    if (has_offsets) {
      sq::fake_quantize_backward(policy, q, std::span<const E>(x.span(at, n)), steps_view,
                                 std::span<const E>(dy.span(at, n)), dx_view, dsteps.span(), offsets_view,
                                 doffsets.span(), dparameters.span());
    } else {
      sq::fake_quantize_backward(policy, q, std::span<const E>(x.span(at, n)), steps_view,
                                 std::span<const E>(dy.span(at, n)), dx_view, dsteps.span(), dparameters.span());
    }
  } else if (has_offsets) {
    sq::fake_quantize_backward(policy, q, std::span<const E>(x.span(at, n)), steps_view,
                               std::span<const E>(dy.span(at, n)), dx_view, dsteps.span(), offsets_view,
                               doffsets.span());
  } else {
    sq::fake_quantize_backward(policy, q, std::span<const E>(x.span(at, n)), steps_view,
                               std::span<const E>(dy.span(at, n)), dx_view, dsteps.span());
  }
  r.dx = (o.in_place ? dy : dx).download(at, n);
  r.dsteps = dsteps.download();
  r.doffsets = has_offsets ? doffsets.download() : std::vector<T>{};
  r.dparameters = dparameters.download();
  return r;
}

template <class E>
bool same_results(device_results<E> const& a, device_results<E> const& b) {
  auto same = [](auto const& u, auto const& v) {
    return u.size() == v.size() && (u.empty() || std::memcmp(u.data(), v.data(), u.size() * sizeof(u[0])) == 0);
  };
  return same(a.y, b.y) && same(a.dx, b.dx) && same(a.dsteps, b.dsteps) && same(a.doffsets, b.doffsets) &&
         same(a.dparameters, b.dparameters);
}

/// One problem through exec::cuda in every buffer arrangement against exec::seq:
/// forward bit-identical (1 ulp with offsets when the host lacks FMA), dx within
/// 2 ulp (1 in 16-bit storage), step gradients within 1e-6 (float) / 1e-12
/// (double) of sum |terms|; and every arrangement gives the same bits.
template <class E, class S>
void check_on_device(sq::quantizer<compute_t<E>, S> const& q, std::size_t numel, bool has_offsets, bool nan,
                     unsigned seed, cudaStream_t stream) {
  using T = compute_t<E>;
  using traits = sq::exec::storage_traits<E>;
  INFO(describe(q, numel, has_offsets));
  const problem<E> p = make_problem<E>(q.grid(), q.layout(), numel, nan, seed);
  const seq_reference<T> seq = run_seq(q, p, has_offsets);

  const device_results<E> r = run_on_device(q, p, has_offsets, run_options{}, stream);
  const double forward_ulps = (has_offsets && STABLEQAT_HOST_HAS_FMA == 0) ? 1 : 0;
  const double dx_ulps = dx_ulps_for<S>(sizeof(E) == 2 ? 1 : 2);
  for (std::size_t i = 0; i < numel; ++i) {
    INFO("i = " << i << ", x = " << seq.x[i] << ", dy = " << seq.dy[i] << ", seq y = " << seq.y[i]
                << ", seq dx = " << seq.dx[i]);
    REQUIRE(reference::ulp_distance(r.y[i], traits::to_storage(seq.y[i])) <= forward_ulps);
    REQUIRE(reference::ulp_distance(r.dx[i], traits::to_storage(seq.dx[i])) <= dx_ulps);
  }
  check_step_gradients(r.dsteps, seq.dsteps, seq.step_scale, seq.grad_scale, "dsteps");
  if (has_offsets) {
    check_step_gradients(r.doffsets, seq.doffsets, seq.offset_scale, seq.grad_scale, "doffsets");
  }
  if constexpr (sq::learnable_surrogate<S>) {
    check_parameter_gradient(r.dparameters[0], seq.dparameters[0], seq.parameter_scale);
  }
  // Bit-reproducible: again, in place, misaligned (scalar loads) and on the default stream.
  CHECK(same_results(r, run_on_device(q, p, has_offsets, run_options{}, stream)));
  CHECK(same_results(r, run_on_device(q, p, has_offsets, run_options{true, false, false}, stream)));
  CHECK(same_results(r, run_on_device(q, p, has_offsets, run_options{false, true, false}, stream)));
  CHECK(same_results(r, run_on_device(q, p, has_offsets, run_options{true, true, true}, stream)));
}

/// Every layout case (plus large ones) for every grid kind, offsets on and off.
template <class E, class S>
void check_matrix_on_device(S const& surrogate, bool large) {
  cudaStream_t stream = nullptr;
  exec::cuda_detail::check_cuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "test", "cudaStreamCreate");
  std::vector<layout_case> cases = layout_cases();
  if (large) {
    cases.push_back({sq::per_tensor(), (std::size_t{3} << 20) + 3});   // many tiles, long second pass
    cases.push_back({sq::per_channel(20000), 20000 * 3});                 // rows split into tiles
    cases.push_back({sq::per_group(32), 32 * 40000});                     // many short rows, 4 per warp
    cases.push_back({sq::per_column(1000), 1000 * 700});                  // many row blocks
    cases.push_back({sq::per_column(3), 3 * 100000});                     // narrow columns
  }
  const sq::grid grids[] = {sq::signed_grid(4), sq::unsigned_grid(2), sq::ternary_grid(), sq::signed_grid(1),
                            sq::signed_grid(8)};
  unsigned seed = 100;
  for (auto const& g : grids) {
    for (auto const& c : cases) {
      const sq::quantizer<compute_t<E>, S> q{g, surrogate, c.layout};
      for (bool has_offsets : {false, true}) {
        ++seed;
        check_on_device<E>(q, c.numel, has_offsets, seed % 3 == 0, seed, stream);
      }
    }
  }
  exec::cuda_detail::check_cuda(cudaStreamDestroy(stream), "test", "cudaStreamDestroy");
}

}  // namespace stableqat::test
