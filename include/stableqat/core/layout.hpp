// stableqat/core/layout.hpp: which step (and offset) each element uses.
#pragma once

#include <cstddef>
#include <string>

#include "config.hpp"
#include "errors.hpp"

namespace stableqat {

/// How a buffer of `numel` contiguous elements shares its steps.
///
/// Every layout is traversed as `rows` contiguous rows of `row_length`
/// elements; the step of an element depends either on its row (per tensor,
/// per channel, per group) or on its column (per column). Backends only ever
/// see that two-way split.
class step_layout {
 public:
  enum class kind { per_tensor, per_channel, per_group, per_column };

  /// The layout's kind.
  [[nodiscard]] constexpr kind type() const noexcept { return kind_; }
  /// Row length for per_channel / per_group, channel count for per_column, 0 per tensor.
  [[nodiscard]] constexpr std::size_t extent() const noexcept { return extent_; }

  /// Number of steps a buffer of `numel` elements needs (numel must be a
  /// multiple of extent(), which the front-end checks).
  [[nodiscard]] constexpr std::size_t step_count(std::size_t numel) const noexcept {
    switch (kind_) {
      case kind::per_tensor:
        return 1;
      case kind::per_column:
        return extent_;
      default:
        return numel / extent_;
    }
  }

  /// Index of the step element `i` uses.
  [[nodiscard]] STABLEQAT_HD constexpr std::size_t step_index(std::size_t i) const noexcept {
    switch (kind_) {
      case kind::per_tensor:
        return 0;
      case kind::per_column:
        return i % extent_;
      default:
        return i / extent_;
    }
  }

  /// Length of one contiguous row for a buffer of `numel` elements.
  [[nodiscard]] STABLEQAT_HD constexpr std::size_t row_length(std::size_t numel) const noexcept {
    return kind_ == kind::per_tensor ? numel : extent_;
  }

  /// True when the step changes along a row (per_column), false when a whole
  /// row shares one step.
  [[nodiscard]] STABLEQAT_HD constexpr bool step_per_column() const noexcept {
    return kind_ == kind::per_column;
  }

  /// "per_tensor", "per_channel", ...: for messages.
  [[nodiscard]] constexpr const char* name() const noexcept {
    switch (kind_) {
      case kind::per_tensor:
        return "per_tensor";
      case kind::per_channel:
        return "per_channel";
      case kind::per_group:
        return "per_group";
      default:
        return "per_column";
    }
  }

  /// Name of the extent in messages: "inner", "group size" or "channels".
  [[nodiscard]] constexpr const char* extent_name() const noexcept {
    switch (kind_) {
      case kind::per_channel:
        return "per_channel inner";
      case kind::per_group:
        return "per_group size";
      default:
        return "per_column channels";
    }
  }

  constexpr bool operator==(step_layout const&) const noexcept = default;

  friend constexpr step_layout per_tensor() noexcept;
  friend constexpr step_layout per_channel(std::size_t inner);
  friend constexpr step_layout per_group(std::size_t size);
  friend constexpr step_layout per_column(std::size_t channels);

 private:
  constexpr step_layout(kind k, std::size_t extent) noexcept : kind_(k), extent_(extent) {}

  kind kind_;
  std::size_t extent_;
};

/// One step for the whole tensor.
constexpr step_layout per_tensor() noexcept { return {step_layout::kind::per_tensor, 0}; }

/// One step per contiguous row of `inner` elements: PyTorch's per-output-channel
/// weight quantization of an [out, in] matrix is per_channel(in).
constexpr step_layout per_channel(std::size_t inner) {
  if (inner == 0) {
    detail::throw_invalid_argument("stableqat::per_channel", "inner", inner, "must be positive");
  }
  return {step_layout::kind::per_channel, inner};
}

/// One step per contiguous group of `size` elements (group-wise quantization).
constexpr step_layout per_group(std::size_t size) {
  if (size == 0) {
    detail::throw_invalid_argument("stableqat::per_group", "size", size, "must be positive");
  }
  return {step_layout::kind::per_group, size};
}

/// Element i uses step i % channels: channels-last data such as [batch, features]
/// activations with one step per feature.
constexpr step_layout per_column(std::size_t channels) {
  if (channels == 0) {
    detail::throw_invalid_argument("stableqat::per_column", "channels", channels, "must be positive");
  }
  return {step_layout::kind::per_column, channels};
}

namespace detail {

/// Throws std::invalid_argument unless x.size() = numel elements fit `layout`
/// with steps.size() = steps: numel a multiple of the row length or channel
/// count, and exactly layout.step_count(numel) steps. Every function that
/// takes elements and their steps (fake_quantize, lsq_init_steps, ...) checks
/// sizes here, so they all word the error alike.
inline void check_layout(const char* function, step_layout const& layout, std::size_t numel, std::size_t steps) {
  if (layout.type() != step_layout::kind::per_tensor && numel % layout.extent() != 0) {
    throw_invalid_argument(function, "x.size()", numel,
                           std::string("is not a multiple of the ") + layout.extent_name() + " " +
                               std::to_string(layout.extent()));
  }
  const std::size_t expected = layout.step_count(numel);
  if (steps != expected) {
    throw_invalid_argument(function, "steps.size()", steps,
                           std::string("differs from the ") + std::to_string(expected) + " step(s) " + layout.name() +
                               " needs for x.size() = " + std::to_string(numel));
  }
}

}  // namespace detail
}  // namespace stableqat
