// stableqat/exec/arguments.hpp: the buffers a backend receives, and their checks.
//
// The front-end (ops.hpp) packs the user's spans into these views after
// validating them, so a backend can trust sizes, step values and aliasing and
// be nothing but a loop, a tail and a reduction.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <type_traits>

#include "../core/errors.hpp"
#include "../core/grid.hpp"
#include "../core/layout.hpp"
#include "../core/lsq.hpp"
#include "../core/math.hpp"
#include "storage.hpp"

namespace stableqat::exec {

/// The front-end functions whose arguments these are: every error message,
/// the front-end's and a backend's (exec::cuda's cuda_error), names one of them.
inline constexpr const char* forward_function = "stableqat::fake_quantize";
inline constexpr const char* backward_function = "stableqat::fake_quantize_backward";

/// The span types the front-ends (ops.hpp, export.hpp) take: input<T> is read,
/// output<T> written. std::type_identity_t keeps T out of deduction, so T comes
/// from the quantizer and any contiguous range that converts to the span
/// (std::vector, std::array, a span of non-const T) is accepted.
template <class T>
using input = std::type_identity_t<std::span<const T>>;
template <class T>
using output = std::type_identity_t<std::span<T>>;

/// Forward pass buffers: y = fake_quantize(x). `offsets` is used only when
/// has_offsets. Elements (x, y) are stored as E (storage.hpp): T itself, or a
/// narrower type the backend admits (exec::cuda: 16-bit floats, T = float).
template <real_scalar T, class E = T>
struct forward_arguments {
  std::span<const E> x;
  std::span<const T> steps;
  std::span<const T> offsets;
  std::span<E> y;
  bool has_offsets = false;
};

/// Backward pass buffers. dsteps (and doffsets) receive grad_scale * sum of the
/// element terms of each step; `offsets`/`doffsets` are used only when has_offsets.
/// Elements (x, dy, dx) are stored as E, as in forward_arguments.
template <real_scalar T, class E = T>
struct backward_arguments {
  std::span<const E> x;
  std::span<const T> steps;
  std::span<const T> offsets;
  std::span<const E> dy;
  std::span<E> dx;
  std::span<T> dsteps;
  std::span<T> doffsets;
  double grad_scale = 1.0;
  bool has_offsets = false;
};

/// The gradients of a surrogate's learnable parameters (one per parameter,
/// e.g. DSQ's d alpha), as the memory hook (exec/policy.hpp) sees them.
template <real_scalar T>
struct parameter_gradients {
  std::span<T> dparameters;
};

/// The offset of step k as the element formulas take it: offsets[k], or
/// no_offset when the call has none (std::false_type, usually
/// std::bool_constant<WithOffsets>). `offsets` is a span or, in device code,
/// a pointer: every backend takes its offsets here.
template <class Offsets>
STABLEQAT_HD constexpr auto offset_of(Offsets const& offsets, std::size_t k, std::true_type) noexcept {
  return offsets[k];
}
template <class Offsets>
STABLEQAT_HD constexpr no_offset offset_of(Offsets const&, std::size_t, std::false_type) noexcept {
  return {};
}

/// Calls f(levels, with_offsets) with the grid's level map and
/// std::true_type/std::false_type, so element loops are compiled per grid kind
/// and with or without offsets, never branching per element.
template <real_scalar T, class F>
void visit_kernel(grid const& g, bool has_offsets, F&& f) {
  visit_levels<T>(g, [&](auto const& levels) {
    if (has_offsets) {
      f(levels, std::true_type{});
    } else {
      f(levels, std::false_type{});
    }
  });
}

/// One buffer of a call as the checks see it: its argument name, its bytes
/// and its element count (messages report sizes in elements).
struct named_buffer {
  const char* name;
  std::span<const std::byte> bytes;
  std::size_t size;

  template <class U>
  named_buffer(const char* buffer_name, std::span<U> s) noexcept
      : name(buffer_name), bytes(std::as_bytes(s)), size(s.size()) {}
};

namespace validation {

/// True when the bytes of a and b intersect (empty buffers intersect nothing).
inline bool overlap(named_buffer const& a, named_buffer const& b) noexcept {
  if (a.bytes.empty() || b.bytes.empty()) {
    return false;
  }
  const auto a_begin = reinterpret_cast<std::uintptr_t>(a.bytes.data());
  const auto b_begin = reinterpret_cast<std::uintptr_t>(b.bytes.data());
  return a_begin < b_begin + b.bytes.size() && b_begin < a_begin + a.bytes.size();
}

/// True when a and b intersect without being the very same bytes.
inline bool partially_overlap(named_buffer const& a, named_buffer const& b) noexcept {
  const bool identical = a.bytes.data() == b.bytes.data() && a.bytes.size() == b.bytes.size();
  return overlap(a, b) && !identical;
}

/// An output may be the very same buffer as an input (exact aliasing, read
/// before write) or disjoint from it; a partial overlap would read values the
/// call already overwrote, so it is refused.
inline void check_alias(const char* function, named_buffer const& out, std::initializer_list<named_buffer> inputs) {
  for (named_buffer const& in : inputs) {
    if (partially_overlap(out, in)) {
      detail::throw_invalid_argument(function, std::string(out.name) + ".size()", out.size,
                                     std::string("partially overlaps ") + in.name +
                                         " (outputs may alias inputs exactly or not at all)");
    }
  }
}

/// Step-sized outputs (and y, dx against the steps) must not share memory
/// with any of `others`.
inline void check_disjoint(const char* function, named_buffer const& out, std::initializer_list<named_buffer> others) {
  for (named_buffer const& other : others) {
    if (overlap(out, other)) {
      detail::throw_invalid_argument(function, std::string(out.name) + ".size()", out.size,
                                     std::string("overlaps ") + other.name + "; it must be a separate buffer");
    }
  }
}

inline void check_same_size(const char* function, const char* name, std::size_t size, std::size_t numel) {
  if (size != numel) {
    detail::throw_invalid_argument(function, std::string(name) + ".size()", size,
                                   "differs from x.size() = " + std::to_string(numel));
  }
}

/// A step-sized buffer (dsteps, offsets, doffsets) has one entry per step.
inline void check_step_sized(const char* function, const char* name, std::size_t size, std::size_t steps) {
  if (size != steps) {
    detail::throw_invalid_argument(function, std::string(name) + ".size()", size,
                                   "differs from steps.size() = " + std::to_string(steps));
  }
}

/// Steps must be positive and finite with a finite reciprocal (a subnormal
/// float step has 1/s = inf and would turn every x into ±inf or NaN).
template <real_scalar T>
void check_step_values(const char* function, std::span<const T> steps) {
  for (std::size_t k = 0; k < steps.size(); ++k) {
    const T s = steps[k];
    if (!(s > T(0)) || !std::isfinite(s)) {
      detail::throw_invalid_argument(function, detail::indexed_name("steps", k), s, "must be positive and finite");
    }
    if (!std::isfinite(T(1) / s)) {
      detail::throw_invalid_argument(function, detail::indexed_name("steps", k), s,
                                     "is too small: its reciprocal overflows");
    }
  }
}

template <real_scalar T>
void check_offset_values(const char* function, std::span<const T> offsets) {
  for (std::size_t k = 0; k < offsets.size(); ++k) {
    if (!std::isfinite(offsets[k])) {
      detail::throw_invalid_argument(function, detail::indexed_name("offsets", k), offsets[k], "is not finite");
    }
  }
}

/// Every check on sizes and aliasing of a forward call (no element values read).
template <real_scalar T, class E>
void check_forward_shapes(const char* function, step_layout const& layout, forward_arguments<T, E> const& a) {
  check_same_size(function, "y", a.y.size(), a.x.size());
  detail::check_layout(function, layout, a.x.size(), a.steps.size());
  if (a.has_offsets) {
    check_step_sized(function, "offsets", a.offsets.size(), a.steps.size());
  }
  check_alias(function, {"y", a.y}, {{"x", a.x}});
  check_disjoint(function, {"y", a.y}, {{"steps", a.steps}});
  if (a.has_offsets) {
    check_disjoint(function, {"y", a.y}, {{"offsets", a.offsets}});
  }
}

/// Every check on sizes, aliasing and grad_scale of a backward call.
template <real_scalar T, class E>
void check_backward_shapes(const char* function, step_layout const& layout, backward_arguments<T, E> const& a) {
  check_same_size(function, "dy", a.dy.size(), a.x.size());
  check_same_size(function, "dx", a.dx.size(), a.x.size());
  detail::check_layout(function, layout, a.x.size(), a.steps.size());
  check_step_sized(function, "dsteps", a.dsteps.size(), a.steps.size());
  if (a.has_offsets) {
    check_step_sized(function, "offsets", a.offsets.size(), a.steps.size());
    check_step_sized(function, "doffsets", a.doffsets.size(), a.steps.size());
  }
  if (!std::isfinite(a.grad_scale)) {
    detail::throw_invalid_argument(function, "grad_scale", a.grad_scale, "is not finite");
  }
  check_alias(function, {"dx", a.dx}, {{"x", a.x}, {"dy", a.dy}});
  check_disjoint(function, {"dx", a.dx}, {{"steps", a.steps}});
  check_disjoint(function, {"dsteps", a.dsteps}, {{"x", a.x}, {"dy", a.dy}, {"dx", a.dx}, {"steps", a.steps}});
  if (a.has_offsets) {
    check_disjoint(function, {"dx", a.dx}, {{"offsets", a.offsets}});
    check_disjoint(function, {"doffsets", a.doffsets},
                   {{"x", a.x}, {"dy", a.dy}, {"dx", a.dx}, {"steps", a.steps}, {"offsets", a.offsets},
                    {"dsteps", a.dsteps}});
    check_disjoint(function, {"dsteps", a.dsteps}, {{"offsets", a.offsets}});
  }
}

/// The gradients of a surrogate's learnable parameters share memory with no
/// other buffer of the call.
template <real_scalar T, class E>
void check_parameter_gradients_disjoint(const char* function, std::span<T> dparameters,
                                        backward_arguments<T, E> const& a) {
  check_disjoint(function, {"dparameters", dparameters},
                 {{"x", a.x}, {"steps", a.steps}, {"dy", a.dy}, {"dx", a.dx}, {"dsteps", a.dsteps}});
  if (a.has_offsets) {
    check_disjoint(function, {"dparameters", dparameters}, {{"offsets", a.offsets}, {"doffsets", a.doffsets}});
  }
}

}  // namespace validation
}  // namespace stableqat::exec
