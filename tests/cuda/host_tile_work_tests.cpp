// Host tests (g++) of the CUDA kernels' per-lane work (exec/cuda/tile_work.hpp).
//
// emulate_launch() (emulated_launch.hpp) runs a launch on the host exactly as
// the kernels split it. Its results are compared with exec::seq, the reference
// backend, for every layout, grid kind, offsets on and off, all four storage
// types and special values.
// What only a GPU can check (vector loads, shuffles, cub::BlockReduce, launch
// configuration) is in cuda_device_tests.
#include <doctest/doctest.h>

#include <stableqat/exec/cuda/storage.hpp>
#include <stableqat/exec/cuda/tile_work.hpp>
#include <stableqat/exec/cuda/tiling.hpp>
#include <stableqat/stableqat.hpp>

#include "emulated_launch.hpp"
#include "test_problems.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

namespace sq = stableqat;
namespace cd = stableqat::exec::cuda_detail;
using namespace stableqat::test;

namespace {

/// Forward and backward of one problem through the emulated launch and through
/// exec::seq (on the widened inputs, outputs rounded to storage once).
template <class E, class S>
void check_against_seq(sq::quantizer<compute_t<E>, S> const& q, std::size_t numel, bool has_offsets, bool nan,
                       unsigned seed) {
  using T = compute_t<E>;
  using traits = sq::exec::storage_traits<E>;
  INFO(describe(q, numel, has_offsets));
  const problem<E> p = make_problem<E>(q.grid(), q.layout(), numel, nan, seed);
  const seq_reference<T> seq = run_seq(q, p, has_offsets);
  const T* offsets = has_offsets ? p.offsets.data() : nullptr;

  // Forward, out of place and in place (y == x).
  for (bool in_place : {false, true}) {
    std::vector<E> y = in_place ? p.x : std::vector<E>(numel);
    const E* xs = in_place ? y.data() : p.x.data();
    emulate_launch<false>(q, numel, cd::element_buffers<E, T>{xs, nullptr, y.data(), p.steps.data(), offsets},
                          cd::gradient_buffers<T>{}, has_offsets, true);
    for (std::size_t i = 0; i < numel; ++i) {
      INFO("y[" << i << "], x = " << seq.x[i] << ", in place " << in_place);
      REQUIRE(reference::same_bits(y[i], traits::to_storage(seq.y[i])));
    }
  }

  // Backward, dx out of place and in place over dy; default LSQ grad scale.
  for (bool aligned : {true, false}) {
    std::vector<E> dx = aligned ? std::vector<E>(numel) : p.dy;  // unaligned run: dx aliases dy
    const E* dys = aligned ? p.dy.data() : dx.data();
    std::vector<T> dsteps(p.steps.size(), T(-7));
    std::vector<T> doffsets(p.steps.size(), T(-7));
    cd::gradient_buffers<T> g;
    g.dsteps = dsteps.data();
    g.doffsets = has_offsets ? doffsets.data() : nullptr;
    g.grad_scale = seq.grad_scale;
    emulate_launch<true>(q, numel, cd::element_buffers<E, T>{p.x.data(), dys, dx.data(), p.steps.data(), offsets}, g,
                         has_offsets, aligned);
    for (std::size_t i = 0; i < numel; ++i) {
      INFO("dx[" << i << "], x = " << seq.x[i] << ", dy = " << seq.dy[i]);
      REQUIRE(reference::same_bits(dx[i], traits::to_storage(seq.dx[i])));
    }
    check_step_gradients(dsteps, seq.dsteps, seq.step_scale, seq.grad_scale, "dsteps");
    if (has_offsets) {
      check_step_gradients(doffsets, seq.doffsets, seq.offset_scale, seq.grad_scale, "doffsets");
    }
  }
}

template <class E, class S>
void check_all_layouts(S const& surrogate) {
  const sq::grid grids[] = {sq::signed_grid(4), sq::unsigned_grid(2), sq::ternary_grid(), sq::signed_grid(1)};
  unsigned seed = 1;
  for (auto const& g : grids) {
    for (auto const& c : layout_cases()) {
      const sq::quantizer<compute_t<E>, S> q{g, surrogate, c.layout};
      for (bool has_offsets : {false, true}) {
        check_against_seq<E>(q, c.numel, has_offsets, false, ++seed);
      }
    }
  }
}

}  // namespace

TEST_CASE("cuda tile work: float matches exec::seq over layouts, grids and offsets") {
  check_all_layouts<float>(sq::fourier_surrogate<1>{});
  check_all_layouts<float>(sq::ste{});
  check_all_layouts<float>(sq::fourier_surrogate<2>{0.23});
}

TEST_CASE("cuda tile work: double matches exec::seq") {
  check_all_layouts<double>(sq::fourier_surrogate<1>{});
}

TEST_CASE("cuda tile work: __half and __nv_bfloat16 compute in float and round once") {
  check_all_layouts<__half>(sq::fourier_surrogate<1>{});
  check_all_layouts<__nv_bfloat16>(sq::fourier_surrogate<1>{});
}

TEST_CASE("cuda tile work: NaN reaches the step gradient, not dx") {
  const sq::quantizer<float, sq::fourier_surrogate<1>> q{sq::signed_grid(4), {}, sq::per_channel(100)};
  check_against_seq<float>(q, 100 * 3, false, true, 99);
  const sq::quantizer<float, sq::ste> qc{sq::signed_grid(3), {}, sq::per_column(100)};
  check_against_seq<float>(qc, 100 * 3, true, true, 98);
  check_against_seq<__half>(q, 100 * 3, true, true, 97);
}

TEST_CASE("cuda tile work: a hand-computed per-channel example") {
  // Independent of exec::seq: 2 rows of 3 floats, signed_grid(2) = [-2, 1], STE.
  // Row 0, step 0.5: x = 0.3 -> v = 0.6 -> n = 1 -> y = 0.5;  x = -2 -> v = -4 -> y = -1 (clamped);
  //                  x = 0.25 -> v = 0.5 -> n = 0 (tie to even) -> y = 0.
  // Row 1, step 2:   x = 3 -> v = 1.5 -> n = 2 -> clamped to 1 -> y = 2;  x = -1 -> v = -0.5 -> n = -0 -> y = -0;
  //                  x = 5 -> v = 2.5 -> y = 2.
  const sq::quantizer<float, sq::ste> q{sq::signed_grid(2), {}, sq::per_channel(3)};
  const std::vector<float> x = {0.3f, -2.0f, 0.25f, 3.0f, -1.0f, 5.0f};
  const std::vector<float> steps = {0.5f, 2.0f};
  std::vector<float> y(6, 99.0f);
  emulate_launch<false>(q, 6, cd::element_buffers<float, float>{x.data(), nullptr, y.data(), steps.data(), nullptr},
                        cd::gradient_buffers<float>{}, false, true);
  CHECK(y[0] == 0.5f);
  CHECK(y[1] == -1.0f);
  CHECK(y[2] == 0.0f);
  CHECK(y[3] == 2.0f);
  CHECK(y[4] == 0.0f);
  CHECK(std::signbit(y[4]));
  CHECK(y[5] == 2.0f);
  // Backward with dy = 1, grad_scale 1: step terms (inside ? n - v : level):
  // row 0: (1 - 0.6) + (-2) + (0 - 0.5) = -2.1;  row 1: 1 (clamped) + (-0 + 0.5) + 1 (clamped) = 2.5.
  const std::vector<float> dy(6, 1.0f);
  std::vector<float> dx(6, 99.0f);
  std::vector<float> dsteps(2, 99.0f);
  cd::gradient_buffers<float> g;
  g.dsteps = dsteps.data();
  emulate_launch<true>(q, 6, cd::element_buffers<float, float>{x.data(), dy.data(), dx.data(), steps.data(), nullptr},
                       g, false, true);
  // Outside [-2, 1], dx = 0: x = -2 (v = -4), x = 3 (v = 1.5), x = 5 (v = 2.5).
  CHECK(dx == std::vector<float>{1, 0, 1, 0, 1, 0});
  CHECK(dsteps[0] == doctest::Approx(-2.1).epsilon(1e-6));
  CHECK(dsteps[1] == doctest::Approx(2.5).epsilon(1e-6));
}
