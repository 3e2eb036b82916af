// stableqat/exec/simd/column_kernels.hpp: exec::simd / exec::par kernels for
// per_column, where element i uses step i % channels.
//
// A chunk of column_plan is a set of column blocks x a range of super rows
// (plan.hpp). Per block the steps, reciprocals and offsets of its pattern
// positions sit in stack arrays (column_parameters); each super row's segment
// of the block runs one transform() (transform.hpp) reading them position by
// position. Backward sums one double per pattern position, so batching never
// changes which terms share a sum.
#pragma once

#include <algorithm>
#include <cstddef>
#include <span>
#include <type_traits>

#include "../../core/lsq.hpp"
#include "../arguments.hpp"
#include "../term_sums.hpp"
#include "batch.hpp"
#include "lane_sums.hpp"
#include "plan.hpp"
#include "streaming.hpp"
#include "transform.hpp"

namespace stableqat::exec::simd_detail {

/// Steps, reciprocals and offsets of one block of pattern positions, on the stack.
template <class T, bool WithOffsets>
struct column_parameters {
  T step[column_block];
  T inv_step[column_block];
  T offset[WithOffsets ? column_block : 1];

  void load(column_plan const& plan, std::size_t b, std::span<const T> steps, std::span<const T> offsets) noexcept {
    const std::size_t p0 = plan.block_begin(b);
    for (std::size_t p = p0; p < plan.block_end(b); ++p) {
      const std::size_t column = p % plan.channels;
      step[p - p0] = steps[column];
      inv_step[p - p0] = T(1) / steps[column];
      if constexpr (WithOffsets) {
        offset[p - p0] = offsets[column];
      }
    }
  }

  /// The offsets of positions i .. i + lanes(V) - 1 as a V, or no_offset.
  template <class V>
  [[nodiscard]] auto offset_at(std::size_t i) const noexcept {
    if constexpr (!WithOffsets) {
      return no_offset{};
    } else {
      return simd_detail::load<V>(offset + i);
    }
  }
};

/// y over one segment of a super row: the n elements at x/y hold pattern
/// positions 0 .. n-1 of the block and start at tensor element `begin`.
template <bool Stream, bool WithOffsets, class T, class E, class Levels, class S>
void forward_column_segment(E const* x, E* y, std::size_t begin, std::size_t n,
                            column_parameters<T, WithOffsets> const& c, Levels const& levels,
                            S const& surrogate) noexcept {
  transform<T>(begin, n, [&]<class V>(std::size_t i, auto) {
    store<Stream>(y + i, fake_quantize_element(load<V>(x + i), load<V>(c.step + i), load<V>(c.inv_step + i),
                                               c.template offset_at<V>(i), levels, surrogate));
  });
}

/// dx over one segment; adds each element's terms to step_sums[j] /
/// offset_sums[j] (one sum per pattern position, so batching does not change the bits).
template <bool Stream, bool WithOffsets, class T, class E, class Levels, class S>
void backward_column_segment(E const* x, E const* dy, E* dx, std::size_t begin, std::size_t n,
                             column_parameters<T, WithOffsets> const& c, Levels const& levels, S const& surrogate,
                             double* step_sums, double* offset_sums, double* parameter_sums) noexcept {
  with_branch_free_surrogate<T>(surrogate, [&](auto const& variant) {
    transform<T>(begin, n, [&]<class V>(std::size_t i, auto) {
      const auto g = fake_quantize_backward_element(load<V>(x + i), load<V>(dy + i), load<V>(c.inv_step + i),
                                                    c.template offset_at<V>(i), levels, variant);
      store<Stream>(dx + i, g.dx);
      add_lanes_to<T>(step_sums + i, g.dstep);
      if constexpr (WithOffsets) {
        add_lanes_to<T>(offset_sums + i, g.doffset);
      }
      if constexpr (surrogate_parameter_count<S> > 0) {
        add_lanes_to<T>(parameter_sums + i, g.dparameters[0]);
      } else {
        (void)parameter_sums;
      }
    });
  });
}

/// Forward for per_column (a chunk_loop).
template <bool Stream, bool WithOffsets, class T, class E, class Levels, class S>
class column_forward {
 public:
  column_forward(forward_arguments<T, E> const& a, Levels const& levels, S const& surrogate,
                 std::size_t channels) noexcept
      : a_(a), levels_(levels), surrogate_(surrogate),
        plan_(column_plan::make(a.x.size(), channels, batch<T>::size)) {}

  [[nodiscard]] std::size_t chunk_count() const noexcept { return plan_.chunk_count(); }

  void run(std::size_t chunk) const noexcept {
    column_parameters<T, WithOffsets> parameters;
    for (std::size_t b = plan_.first_block(chunk); b < plan_.end_block(chunk); ++b) {
      parameters.load(plan_, b, a_.steps, a_.offsets);
      for (std::size_t s = plan_.first_super_row(chunk); s < plan_.end_super_row(chunk); ++s) {
        const column_segment seg = plan_.segment(s, b);
        if (seg.n == 0) {
          continue;
        }
        forward_column_segment<Stream>(a_.x.data() + seg.offset, a_.y.data() + seg.offset, seg.offset, seg.n,
                                       parameters, levels_, surrogate_);
      }
    }
    if constexpr (Stream) {
      stream_fence();
    }
  }

 private:
  forward_arguments<T, E> const& a_;
  Levels levels_;
  S const& surrogate_;
  column_plan plan_;
};

/// Backward for per_column (a chunk_reduction). Each chunk sums the terms of
/// its super rows per pattern position (double, on the stack). With few rows
/// (plan.direct()) a chunk owns whole columns and writes their gradients;
/// otherwise the per-position partials of the row ranges are added in range
/// order by consume(). Positions j * channels + c (j < m) are folded into
/// column c last.
template <bool Stream, bool WithOffsets, class T, class E, class Levels, class S>
class column_backward {
  static constexpr bool WithParameter = surrogate_parameter_count<S> > 0;

 public:
  /// Partial sums of one chunk (one block of positions).
  struct result_type {
    double step[column_block];
    double offset[WithOffsets ? column_block : 1];
    double parameter[WithParameter ? column_block : 1];
  };

  /// parameter_sums: one per column, for a surrogate with a learnable parameter.
  column_backward(backward_arguments<T, E> const& a, Levels const& levels, S const& surrogate,
                  std::size_t channels, double* parameter_sums = nullptr) noexcept
      : a_(a), levels_(levels), surrogate_(surrogate), plan_(column_plan::make(a.x.size(), channels, batch<T>::size)),
        parameter_sums_(parameter_sums) {}

  [[nodiscard]] std::size_t chunk_count() const noexcept { return plan_.chunk_count(); }
  [[nodiscard]] bool direct() const noexcept { return plan_.direct(); }

  /// Direct chunks (r == nullptr) write their columns' gradients; others fill *r.
  void produce(std::size_t chunk, result_type* r) const noexcept {
    column_parameters<T, WithOffsets> parameters;
    result_type local;
    result_type& sums = r != nullptr ? *r : local;
    for (std::size_t b = plan_.first_block(chunk); b < plan_.end_block(chunk); ++b) {
      parameters.load(plan_, b, a_.steps, a_.offsets);
      clear(sums, plan_.block_end(b) - plan_.block_begin(b));
      for (std::size_t s = plan_.first_super_row(chunk); s < plan_.end_super_row(chunk); ++s) {
        const column_segment seg = plan_.segment(s, b);
        if (seg.n == 0) {
          continue;
        }
        backward_column_segment<Stream>(a_.x.data() + seg.offset, a_.dy.data() + seg.offset,
                                        a_.dx.data() + seg.offset, seg.offset, seg.n, parameters, levels_,
                                        surrogate_, sums.step, sums.offset, sums.parameter);
      }
      if (r == nullptr) {
        write_block(b, sums);
      }
    }
    if constexpr (Stream) {
      stream_fence();
    }
  }

  /// Called for every chunk in order (never for direct plans): adds the
  /// range's partials and writes the block after its last range.
  void consume(std::size_t chunk, result_type const& r) noexcept {
    const std::size_t b = plan_.first_block(chunk);
    const std::size_t length = plan_.block_end(b) - plan_.block_begin(b);
    if (plan_.range(chunk) == 0) {
      clear(totals_, length);
    }
    for (std::size_t i = 0; i < length; ++i) {
      totals_.step[i] += r.step[i];
      if constexpr (WithOffsets) {
        totals_.offset[i] += r.offset[i];
      }
      if constexpr (WithParameter) {
        totals_.parameter[i] += r.parameter[i];
      }
    }
    if (plan_.range(chunk) + 1 == plan_.ranges) {
      write_block(b, totals_);
    }
  }

  void finish() noexcept {}

 private:
  static void clear(result_type& sums, std::size_t length) noexcept {
    std::fill_n(sums.step, length, 0.0);
    if constexpr (WithOffsets) {
      std::fill_n(sums.offset, length, 0.0);
    }
    if constexpr (WithParameter) {
      std::fill_n(sums.parameter, length, 0.0);
    }
  }

  // Column gradients of block b from its per-position sums. With m > 1 rows per
  // period there is a single block and column c sums positions c, c + channels, ...
  void write_block(std::size_t b, result_type const& sums) const noexcept {
    const std::size_t p0 = plan_.block_begin(b);
    const std::size_t length = plan_.block_end(b) - p0;
    if (plan_.rows_per_period() == 1) {
      for (std::size_t i = 0; i < length; ++i) {
        write(p0 + i, {sums.step[i], WithOffsets ? sums.offset[i] : 0.0, WithParameter ? sums.parameter[i] : 0.0});
      }
      return;
    }
    for (std::size_t c = 0; c < plan_.channels; ++c) {
      term_sums column;
      for (std::size_t p = c; p < length; p += plan_.channels) {
        column.step += sums.step[p];
        if constexpr (WithOffsets) {
          column.offset += sums.offset[p];
        }
        if constexpr (WithParameter) {
          column.parameter += sums.parameter[p];
        }
      }
      write(c, column);
    }
  }

  void write(std::size_t column, term_sums const& sums) const noexcept {
    a_.dsteps[column] = static_cast<T>(a_.grad_scale * sums.step);
    if constexpr (WithOffsets) {
      a_.doffsets[column] = static_cast<T>(a_.grad_scale * sums.offset);
    }
    if constexpr (WithParameter) {
      parameter_sums_[column] = sums.parameter;
    }
  }

  backward_arguments<T, E> const& a_;
  Levels levels_;
  S const& surrogate_;
  column_plan plan_;
  double* parameter_sums_;
  result_type totals_;
};

}  // namespace stableqat::exec::simd_detail
