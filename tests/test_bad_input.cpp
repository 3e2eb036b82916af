// Bad input to fake_quantize / fake_quantize_backward: every case throws
// std::invalid_argument naming the argument and its value, and leaves every
// buffer exactly as it was.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstddef>
#include <initializer_list>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include <stableqat/core/grid.hpp>
#include <stableqat/core/layout.hpp>
#include <stableqat/exec/seq.hpp>
#include <stableqat/ops.hpp>
#include <stableqat/quantizer.hpp>

#include "reference.hpp"

namespace sq = stableqat;

namespace {

// A valid call (6 elements, per_channel(3), 2 steps) whose pieces the cases
// break one at a time. Spans point into the stores, or into `shared` for the
// overlap cases; outputs start as a sentinel.
template <class T>
struct problem {
  static constexpr T sentinel = T(-7.25);
  std::vector<T> x_store{T(0.3), T(-1.2), T(2.5), T(0.0), T(-0.4), T(9.0)};
  std::vector<T> steps_store{T(0.5), T(0.25)};
  std::vector<T> offsets_store{T(0.125), T(-0.25)};
  std::vector<T> dy_store{T(1), T(-2), T(0.5), T(4), T(-1), T(2)};
  std::vector<T> y_store = std::vector<T>(6, sentinel);
  std::vector<T> dx_store = std::vector<T>(6, sentinel);
  std::vector<T> dsteps_store = std::vector<T>(2, sentinel);
  std::vector<T> doffsets_store = std::vector<T>(2, sentinel);
  std::vector<T> shared = std::vector<T>(16, sentinel);
  std::span<const T> x{x_store}, steps{steps_store}, offsets{offsets_store}, dy{dy_store};
  std::span<T> y{y_store}, dx{dx_store}, dsteps{dsteps_store}, doffsets{doffsets_store};
  sq::step_layout layout = sq::per_channel(3);
  std::optional<double> grad_scale;

  problem() = default;
  problem(problem const&) = delete;
  problem& operator=(problem const&) = delete;

  [[nodiscard]] std::vector<std::vector<T>> snapshot() const {
    return {x_store, steps_store, offsets_store, dy_store, y_store, dx_store, dsteps_store, doffsets_store, shared};
  }
  [[nodiscard]] sq::quantizer<T> quantizer() const { return sq::quantizer<T>{sq::signed_grid(4), sq::ste{}, layout}; }

  void forward() const { sq::fake_quantize(sq::exec::seq, quantizer(), x, steps, y); }
  void forward_with_offsets() const { sq::fake_quantize(sq::exec::seq, quantizer(), x, steps, y, offsets); }
  void backward() const { sq::fake_quantize_backward(sq::exec::seq, quantizer(), x, steps, dy, dx, dsteps, grad_scale); }
  void backward_with_offsets() const {
    sq::fake_quantize_backward(sq::exec::seq, quantizer(), x, steps, dy, dx, dsteps, offsets, doffsets, grad_scale);
  }
};

template <class T>
using call = void (problem<T>::*)() const;

// Runs one call on p and checks the exception text and that nothing changed.
template <class T>
void expect_rejected(problem<T> const& p, call<T> what, std::initializer_list<std::string> fragments) {
  const auto before = p.snapshot();
  reference::check_invalid_argument([&] { (p.*what)(); }, fragments);
  const auto after = p.snapshot();
  REQUIRE(before.size() == after.size());
  for (std::size_t b = 0; b < before.size(); ++b) {
    REQUIRE(before[b].size() == after[b].size());
    for (std::size_t i = 0; i < before[b].size(); ++i) {
      CHECK_MESSAGE(reference::same_bits(before[b][i], after[b][i]), "buffer " << b << " element " << i << " was written");
    }
  }
}

// The case applies to all four entry points.
template <class T>
void expect_rejected_everywhere(problem<T> const& p, std::initializer_list<std::string> fragments) {
  for (call<T> what : {&problem<T>::forward, &problem<T>::forward_with_offsets, &problem<T>::backward,
                       &problem<T>::backward_with_offsets}) {
    expect_rejected(p, what, fragments);
  }
}

template <class T>
void expect_backward_rejected(problem<T> const& p, std::initializer_list<std::string> fragments) {
  expect_rejected(p, &problem<T>::backward, fragments);
  expect_rejected(p, &problem<T>::backward_with_offsets, fragments);
}

}  // namespace

TEST_CASE_TEMPLATE("bad input: the valid baseline really runs (so the cases below test one defect each)", T, float,
                   double) {
  problem<T> p;
  p.forward();
  p.forward_with_offsets();
  p.backward();
  p.backward_with_offsets();
  CHECK(p.y_store[0] == T(0.125));  // offset 0.125, step 0.5: (0.3 - 0.125)/0.5 = 0.35 -> 0, y = b
  CHECK(p.dsteps_store[0] != problem<T>::sentinel);
  CHECK(p.doffsets_store[1] != problem<T>::sentinel);
}

TEST_CASE_TEMPLATE("bad input: size mismatches of y, dy, dx, dsteps, offsets, doffsets", T, float, double) {
  SUBCASE("y shorter than x") {
    problem<T> p;
    p.y = p.y.first(5);
    expect_rejected(p, &problem<T>::forward, {"stableqat::fake_quantize:", "y.size() = 5", "x.size() = 6"});
    expect_rejected(p, &problem<T>::forward_with_offsets, {"y.size() = 5"});
  }
  SUBCASE("y longer than x") {
    problem<T> p;
    p.y = std::span<T>(p.shared).first(7);
    expect_rejected(p, &problem<T>::forward, {"y.size() = 7"});
  }
  SUBCASE("dy") {
    problem<T> p;
    p.dy = p.dy.first(5);
    expect_backward_rejected(p, {"stableqat::fake_quantize_backward:", "dy.size() = 5"});
  }
  SUBCASE("dx") {
    problem<T> p;
    p.dx = std::span<T>(p.shared).first(7);
    expect_backward_rejected(p, {"dx.size() = 7"});
  }
  SUBCASE("dsteps") {
    problem<T> p;
    p.dsteps = p.dsteps.first(1);
    expect_backward_rejected(p, {"dsteps.size() = 1", "steps.size() = 2"});
  }
  SUBCASE("offsets") {
    problem<T> p;
    p.offsets = p.offsets.first(1);
    expect_rejected(p, &problem<T>::forward_with_offsets, {"offsets.size() = 1"});
    expect_rejected(p, &problem<T>::backward_with_offsets, {"offsets.size() = 1"});
  }
  SUBCASE("doffsets") {
    problem<T> p;
    p.doffsets = std::span<T>(p.shared).first(3);
    expect_rejected(p, &problem<T>::backward_with_offsets, {"doffsets.size() = 3"});
  }
}

TEST_CASE_TEMPLATE("bad input: steps of the wrong length for each layout, and extents that do not divide", T, float,
                   double) {
  struct wrong_length {
    sq::step_layout layout;
    std::size_t given;
    const char* expected;  // text of the message saying how many are needed
  };
  // 6 elements: per_tensor needs 1, per_channel(3) 2, per_group(2) 3, per_column(3) 3.
  for (wrong_length const& c : {wrong_length{sq::per_tensor(), 2, "1 step(s) per_tensor"},
                                wrong_length{sq::per_tensor(), 0, "1 step(s) per_tensor"},
                                wrong_length{sq::per_channel(3), 3, "2 step(s) per_channel"},
                                wrong_length{sq::per_channel(3), 1, "2 step(s) per_channel"},
                                wrong_length{sq::per_group(2), 2, "3 step(s) per_group"},
                                wrong_length{sq::per_group(6), 2, "1 step(s) per_group"},
                                wrong_length{sq::per_column(3), 2, "3 step(s) per_column"},
                                wrong_length{sq::per_column(2), 3, "2 step(s) per_column"}}) {
    CAPTURE(c.layout.name());
    CAPTURE(c.layout.extent());
    problem<T> p;
    p.layout = c.layout;
    p.steps_store.assign(c.given, T(0.5));
    p.offsets_store.assign(c.given, T(0));
    p.dsteps_store.assign(c.given, problem<T>::sentinel);
    p.doffsets_store.assign(c.given, problem<T>::sentinel);
    p.steps = p.steps_store;
    p.offsets = p.offsets_store;
    p.dsteps = p.dsteps_store;
    p.doffsets = p.doffsets_store;
    expect_rejected_everywhere(p, {"steps.size() = " + std::to_string(c.given), c.expected});
  }
  for (sq::step_layout layout : {sq::per_channel(4), sq::per_group(5), sq::per_column(4)}) {
    CAPTURE(layout.name());
    problem<T> p;
    p.layout = layout;
    expect_rejected_everywhere(p, {"x.size() = 6", layout.extent_name(), std::to_string(layout.extent())});
  }
}

TEST_CASE("bad input: zero extents of the layouts") {
  reference::check_invalid_argument([] { (void)sq::per_channel(0); }, {"per_channel", "inner = 0"});
  reference::check_invalid_argument([] { (void)sq::per_group(0); }, {"per_group", "size = 0"});
  reference::check_invalid_argument([] { (void)sq::per_column(0); }, {"per_column", "channels = 0"});
}

TEST_CASE_TEMPLATE("bad input: zero, negative, NaN, infinite and too-small steps", T, float, double) {
  struct bad_step {
    T value;
    const char* shown;
  };
  const bad_step cases[] = {
      {T(0), "steps[1] = 0"},
      {T(-0.0), "steps[1] = -0"},
      {T(-0.5), "steps[1] = -0.5"},
      {std::numeric_limits<T>::quiet_NaN(), "steps[1] = nan"},
      {std::numeric_limits<T>::infinity(), "steps[1] = inf"},
      {-std::numeric_limits<T>::infinity(), "steps[1] = -inf"},
      // Subnormal: positive and finite, but 1/step overflows.
      {std::is_same_v<T, float> ? T(1e-39f) : T(1e-310), std::is_same_v<T, float> ? "steps[1] = 1e-39" : "steps[1] = 1e-310"},
  };
  for (bad_step const& c : cases) {
    CAPTURE(c.shown);
    problem<T> p;
    p.steps_store[1] = c.value;
    expect_rejected_everywhere(p, {c.shown});
  }
  {  // the first bad step is named
    problem<T> p;
    p.steps_store[0] = T(-1);
    p.steps_store[1] = T(0);
    expect_rejected_everywhere(p, {"steps[0] = -1"});
  }
  {  // the smallest normal float step is still usable: 1/step is finite
    problem<T> p;
    p.steps_store[1] = std::numeric_limits<T>::min();
    CHECK_NOTHROW(p.forward());
    CHECK_NOTHROW(p.backward());
  }
}

TEST_CASE_TEMPLATE("bad input: non-finite offsets and grad_scale", T, float, double) {
  {
    problem<T> p;
    p.offsets_store[0] = std::numeric_limits<T>::quiet_NaN();
    expect_rejected(p, &problem<T>::forward_with_offsets, {"offsets[0] = nan"});
    expect_rejected(p, &problem<T>::backward_with_offsets, {"offsets[0] = nan"});
  }
  {
    problem<T> p;
    p.offsets_store[1] = -std::numeric_limits<T>::infinity();
    expect_rejected(p, &problem<T>::forward_with_offsets, {"offsets[1] = -inf"});
    expect_rejected(p, &problem<T>::backward_with_offsets, {"offsets[1] = -inf"});
  }
  {
    problem<T> p;
    p.grad_scale = std::numeric_limits<double>::quiet_NaN();
    expect_backward_rejected(p, {"grad_scale = nan"});
    p.grad_scale = std::numeric_limits<double>::infinity();
    expect_backward_rejected(p, {"grad_scale = inf"});
  }
}

TEST_CASE_TEMPLATE("bad input: partial overlaps of outputs with inputs (exact aliasing is allowed)", T, float, double) {
  SUBCASE("y partially overlaps x") {
    problem<T> p;
    std::copy(p.x_store.begin(), p.x_store.end(), p.shared.begin());
    p.x = std::span<const T>(p.shared).subspan(0, 6);
    p.y = std::span<T>(p.shared).subspan(1, 6);
    expect_rejected(p, &problem<T>::forward, {"y.size() = 6", "partially overlaps x"});
    expect_rejected(p, &problem<T>::forward_with_offsets, {"y.size() = 6", "partially overlaps x"});
    // The exact alias is fine.
    p.y = std::span<T>(p.shared).subspan(0, 6);
    CHECK_NOTHROW(p.forward());
  }
  SUBCASE("dx partially overlaps dy, or x") {
    problem<T> p;
    std::copy(p.dy_store.begin(), p.dy_store.end(), p.shared.begin() + 2);
    p.dy = std::span<const T>(p.shared).subspan(2, 6);
    p.dx = std::span<T>(p.shared).subspan(0, 6);
    expect_backward_rejected(p, {"dx.size() = 6", "partially overlaps dy"});
    p.dx = std::span<T>(p.shared).subspan(2, 6);
    CHECK_NOTHROW(p.backward());
  }
  SUBCASE("dx partially overlaps x") {
    problem<T> p;
    std::copy(p.x_store.begin(), p.x_store.end(), p.shared.begin() + 3);
    p.x = std::span<const T>(p.shared).subspan(3, 6);
    p.dx = std::span<T>(p.shared).subspan(5, 6);
    expect_backward_rejected(p, {"dx.size() = 6", "partially overlaps x"});
  }
  SUBCASE("dsteps overlaps dx") {
    problem<T> p;
    p.dx = std::span<T>(p.shared).subspan(0, 6);
    p.dsteps = std::span<T>(p.shared).subspan(5, 2);
    expect_backward_rejected(p, {"dsteps.size() = 2", "overlaps dx"});
  }
  SUBCASE("dsteps overlaps steps, doffsets overlaps dsteps") {
    problem<T> p;
    std::copy(p.steps_store.begin(), p.steps_store.end(), p.shared.begin());
    p.steps = std::span<const T>(p.shared).subspan(0, 2);
    p.dsteps = std::span<T>(p.shared).subspan(0, 2);
    expect_backward_rejected(p, {"dsteps.size() = 2", "overlaps steps"});
    p.steps = p.steps_store;
    p.dsteps = std::span<T>(p.shared).subspan(4, 2);
    p.doffsets = std::span<T>(p.shared).subspan(5, 2);
    expect_rejected(p, &problem<T>::backward_with_offsets, {"doffsets.size() = 2", "overlaps dsteps"});
  }
  SUBCASE("y overlaps steps") {
    problem<T> p;
    std::copy(p.steps_store.begin(), p.steps_store.end(), p.shared.begin() + 4);
    p.steps = std::span<const T>(p.shared).subspan(4, 2);
    p.y = std::span<T>(p.shared).subspan(0, 6);
    expect_rejected(p, &problem<T>::forward, {"y.size() = 6", "overlaps steps"});
  }
}
