// stableqat/exec/simd.hpp: exec::simd, one core at full SIMD width (xsimd).
//
// The element math is core/lsq.hpp's templates instantiated with
// xsimd::batch<T, xsimd::default_arch> (the widest instruction set the
// compiler flags enable: AVX-512 with -march=native on Zen 4/5, SSE2 with no
// flags); the elements that do not fill a batch use the same templates with the
// scalar T. The backend itself is only loops, tails and reductions:
//  - one pass over memory: backward reads x and dy once and writes dx while
//    accumulating the step (and offset) terms;
//  - no heap: every partial sum lives in registers or in fixed-size stack arrays;
//  - step terms are summed in float lanes over blocks of `block_batches`
//    batches, blocks in double lanes, lanes and chunks in double
//    (error <= 2.4e-7 * sum|terms| + the final rounding to T, see plan.hpp);
//  - batches start at multiples of the batch width in element index, so the
//    bits of every result depend on the tensor and its layout only, never on
//    buffer addresses or thread counts;
//  - outputs of >= 8 MiB whose pointer is aligned to the register width are
//    written with streaming stores (streaming.hpp);
//  - the work is cut into the chunks of plan.hpp and chunk partials are
//    combined in chunk order, exactly as exec::par does, so simd and par agree
//    bit for bit.
// per_column partial sums: a chunk keeps one double per pattern position on
// the stack (at most `column_block` positions at a time), see column_plan.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "../core/lsq.hpp"
#include "../core/math.hpp"
#include "../quantizer.hpp"
#include "arguments.hpp"
#include "policy.hpp"
#include "simd/fused_multiply_add.hpp"
#include "simd/plan.hpp"
#include "simd/streaming.hpp"
#include "simd/widen.hpp"

// GCC 12 reports -Wuninitialized inside its own AVX-512 intrinsic headers (the
// _mm512_undefined_* operand of e.g. vrndscaleps behind xsimd::nearbyint) when
// they are inlined into these kernels at -O1; a known false positive (GCC PR
// 105593, fixed in GCC 13), silenced for this header's code only.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace stableqat::exec {

namespace simd_detail {

/// The instruction set of exec::simd: the best one the compiler flags enable.
using arch = xsimd::default_arch;
template <class T>
using batch = xsimd::batch<T, arch>;

/// The offset as a batch, or no_offset unchanged.
template <class B, class Offset>
inline auto broadcast_offset(Offset offset) noexcept {
  if constexpr (std::is_same_v<Offset, no_offset>) {
    return offset;
  } else {
    return B(offset);
  }
}

template <bool Stream, class T>
inline void store_batch(T* p, batch<T> const& v) noexcept {
  if constexpr (Stream) {
    stream_store(p, v);
  } else {
    v.store_unaligned(p);
  }
}

/// Elements to run as scalars at the start of the range [begin, begin + n) of
/// the tensor, so that every batch starts at a multiple of the batch width in
/// *element index*. Which elements share a batch (and hence the bits of the
/// step sums) then depends on the tensor alone, never on buffer addresses; with
/// a batch-aligned output pointer every batch store is aligned, as streaming
/// stores require.
template <class T>
inline std::size_t batch_head(std::size_t begin, std::size_t n) noexcept {
  constexpr std::size_t width = batch<T>::size;
  return std::min(n, (width - begin % width) % width);
}

/// Sum of the lanes of v, lane 0 first: a fixed order on every architecture
/// (xsimd::hadd's tree differs per instruction set, and GCC 12 warns inside its
/// AVX-512 version). Runs once per row piece, so its speed does not matter.
inline double sum_lanes(batch<double> const& v) noexcept {
  alignas(64) double lanes[batch<double>::size];
  v.store_aligned(lanes);
  double sum = 0.0;
  for (double lane : lanes) {
    sum += lane;
  }
  return sum;
}

/// Sums batches of T in double lanes (float batches are widened in registers).
template <class T>
class lane_sums;

template <>
class lane_sums<float> {
 public:
  void add(batch<float> const& v) noexcept {
    const auto halves = to_double_halves(v);
    lo_ += halves.lo;
    hi_ += halves.hi;
  }
  [[nodiscard]] double total() const noexcept { return sum_lanes(lo_ + hi_); }
  /// Adds v lane by lane to sums[0 .. lanes-1] (per_column partials).
  static void add_to(double* sums, batch<float> const& v) noexcept {
    using D = batch<double>;
    const auto halves = to_double_halves(v);
    (D::load_unaligned(sums) + halves.lo).store_unaligned(sums);
    (D::load_unaligned(sums + D::size) + halves.hi).store_unaligned(sums + D::size);
  }

 private:
  batch<double> lo_ = batch<double>(0.0);
  batch<double> hi_ = batch<double>(0.0);
};

template <>
class lane_sums<double> {
 public:
  void add(batch<double> const& v) noexcept { sum_ += v; }
  [[nodiscard]] double total() const noexcept { return sum_lanes(sum_); }
  static void add_to(double* sums, batch<double> const& v) noexcept {
    (batch<double>::load_unaligned(sums) + v).store_unaligned(sums);
  }

 private:
  batch<double> sum_ = batch<double>(0.0);
};

/// Unscaled sums of the step and offset terms over some elements.
struct term_sums {
  double step = 0.0;
  double offset = 0.0;
};

// ---------------------------------------------------------------------------
// Rows sharing one step (per_tensor, per_channel, per_group)
// ---------------------------------------------------------------------------

/// y[i] = fake_quantize_element(x[i]) for i < n, all with one step and offset;
/// the first `head` elements run as scalars.
template <bool Stream, class T, class Offset, class Levels>
void forward_row_piece(T const* x, T* y, std::size_t n, std::size_t head, T step, Offset offset,
                       Levels const& levels) noexcept {
  using B = batch<T>;
  const T inv_step = T(1) / step;
  const B step_b(step);
  const B inv_step_b(inv_step);
  const auto offset_b = broadcast_offset<B>(offset);
  const auto scalar = [&](std::size_t j) { y[j] = fake_quantize_element(x[j], step, inv_step, offset, levels); };
  std::size_t i = 0;
  for (; i < head; ++i) {
    scalar(i);
  }
  for (; i + B::size <= n; i += B::size) {
    store_batch<Stream>(y + i, fake_quantize_element(B::load_unaligned(x + i), step_b, inv_step_b, offset_b, levels));
  }
  for (; i < n; ++i) {
    scalar(i);
  }
}

/// dx[i] for i < n (one step and offset) and the sums of their step/offset
/// terms; the first `head` elements run as scalars.
template <bool Stream, bool WithOffsets, class T, class Offset, class Levels, class S>
term_sums backward_row_piece(T const* x, T const* dy, T* dx, std::size_t n, std::size_t head, T step,
                             Offset offset, Levels const& levels_in, S const& surrogate_in) noexcept {
  using B = batch<T>;
  // Local copies: the compiler can then prove that the dx stores do not change
  // them and hoists the broadcasts of grid bounds and surrogate coefficients.
  const Levels levels = levels_in;
  const S surrogate = surrogate_in;
  const T inv_step = T(1) / step;
  const B inv_step_b(inv_step);
  const auto offset_b = broadcast_offset<B>(offset);
  term_sums edges;  // the scalar head and tail elements
  const auto scalar = [&](std::size_t j) {
    const auto g = fake_quantize_backward_element(x[j], dy[j], inv_step, offset, levels, surrogate);
    dx[j] = g.dx;
    edges.step += static_cast<double>(g.dstep);
    if constexpr (WithOffsets) {
      edges.offset += static_cast<double>(g.doffset);
    }
  };
  std::size_t i = 0;
  for (; i < head; ++i) {
    scalar(i);
  }
  // One batch: dx stored, step/offset terms added to the block accumulators.
  const auto element = [&](std::size_t j, B& step_block, B& offset_block) {
    const auto g = fake_quantize_backward_element(B::load_unaligned(x + j), B::load_unaligned(dy + j), inv_step_b,
                                                  offset_b, levels, surrogate);
    store_batch<Stream>(dx + j, g.dx);
    step_block += g.dstep;
    if constexpr (WithOffsets) {
      offset_block += g.doffset;
    }
  };
  lane_sums<T> step_lanes;
  lane_sums<T> offset_lanes;
  while (i + B::size <= n) {
    // A block of at most block_batches batches summed in T lanes (two
    // interleaved accumulators, so consecutive batches do not wait on each
    // other's addition), then widened to double lanes.
    const std::size_t block_end = i + std::min(n - i, block_batches * B::size);
    B step_even(T(0)), step_odd(T(0)), offset_even(T(0)), offset_odd(T(0));
    for (; i + 2 * B::size <= block_end; i += 2 * B::size) {
      element(i, step_even, offset_even);
      element(i + B::size, step_odd, offset_odd);
    }
    if (i + B::size <= block_end) {
      element(i, step_even, offset_even);
      i += B::size;
    }
    step_lanes.add(step_even + step_odd);
    if constexpr (WithOffsets) {
      offset_lanes.add(offset_even + offset_odd);
    }
  }
  for (; i < n; ++i) {
    scalar(i);
  }
  term_sums sums{step_lanes.total() + edges.step, 0.0};
  if constexpr (WithOffsets) {
    sums.offset = offset_lanes.total() + edges.offset;
  }
  return sums;
}

template <class T, bool WithOffsets>
inline auto offset_at(std::span<const T> offsets, std::size_t k) noexcept {
  return offset_of(offsets, k, std::bool_constant<WithOffsets>{});
}

/// Forward over a row_plan: chunk c runs independently of every other chunk.
template <bool Stream, bool WithOffsets, class T, class Levels>
class row_forward {
 public:
  row_forward(forward_arguments<T> const& a, Levels const& levels, std::size_t row_length) noexcept
      : a_(a), levels_(levels), plan_{a.x.size(), row_length} {}

  [[nodiscard]] std::size_t chunk_count() const noexcept { return plan_.chunk_count(); }

  void run(std::size_t chunk) const noexcept {
    plan_.for_each_piece(chunk, [&](std::size_t row, std::size_t begin, std::size_t end, bool) {
      forward_row_piece<Stream>(a_.x.data() + begin, a_.y.data() + begin, end - begin,
                                batch_head<T>(begin, end - begin), a_.steps[row],
                                offset_at<T, WithOffsets>(a_.offsets, row), levels_);
    });
    if constexpr (Stream) {
      stream_fence();
    }
  }

 private:
  forward_arguments<T> const& a_;
  Levels levels_;
  row_plan plan_;
};

/// Backward over a row_plan. Rows inside one chunk are finished by that chunk;
/// the pieces of rows cut by chunk boundaries (at most two per chunk) are
/// returned and summed in chunk order by consume().
template <bool Stream, bool WithOffsets, class T, class Levels, class S>
class row_backward {
 public:
  struct piece {
    std::size_t row;
    term_sums sums;
  };
  /// What a chunk hands to the ordered reduction: its cut row pieces.
  struct result_type {
    std::size_t count = 0;
    piece pieces[2];
  };

  row_backward(backward_arguments<T> const& a, Levels const& levels, S const& surrogate,
               std::size_t row_length) noexcept
      : a_(a), levels_(levels), surrogate_(surrogate), plan_{a.x.size(), row_length} {}

  [[nodiscard]] std::size_t chunk_count() const noexcept { return plan_.chunk_count(); }
  [[nodiscard]] static constexpr bool direct() noexcept { return false; }

  /// Computes dx of the chunk, writes the gradients of its complete rows and
  /// stores the partial sums of its cut rows in *r (never null: direct() is false).
  void produce(std::size_t chunk, result_type* out) const noexcept {
    result_type& r = *out;
    r.count = 0;
    plan_.for_each_piece(chunk, [&](std::size_t row, std::size_t begin, std::size_t end, bool complete) {
      const term_sums sums = backward_row_piece<Stream, WithOffsets>(
          a_.x.data() + begin, a_.dy.data() + begin, a_.dx.data() + begin, end - begin,
          batch_head<T>(begin, end - begin), a_.steps[row],
          offset_at<T, WithOffsets>(a_.offsets, row), levels_, surrogate_);
      if (complete) {
        write(row, sums);
      } else {
        r.pieces[r.count++] = {row, sums};
      }
    });
    if constexpr (Stream) {
      stream_fence();
    }
  }

  /// Called for every chunk in order after produce(): adds the cut pieces.
  void consume(std::size_t, result_type const& r) noexcept {
    for (std::size_t j = 0; j < r.count; ++j) {
      piece const& p = r.pieces[j];
      if (open_ && open_row_ == p.row) {
        open_sums_.step += p.sums.step;
        open_sums_.offset += p.sums.offset;
      } else {
        finish();
        open_ = true;
        open_row_ = p.row;
        open_sums_ = p.sums;
      }
    }
  }

  /// Writes the last cut row.
  void finish() noexcept {
    if (open_) {
      write(open_row_, open_sums_);
      open_ = false;
    }
  }

 private:
  void write(std::size_t row, term_sums const& sums) const noexcept {
    a_.dsteps[row] = static_cast<T>(a_.grad_scale * sums.step);
    if constexpr (WithOffsets) {
      a_.doffsets[row] = static_cast<T>(a_.grad_scale * sums.offset);
    }
  }

  backward_arguments<T> const& a_;
  Levels levels_;
  S const& surrogate_;
  row_plan plan_;
  bool open_ = false;
  std::size_t open_row_ = 0;
  term_sums open_sums_;
};

// ---------------------------------------------------------------------------
// One step per column (per_column)
// ---------------------------------------------------------------------------

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

  template <class V>
  [[nodiscard]] auto offset_at(std::size_t i) const noexcept {
    if constexpr (!WithOffsets) {
      return no_offset{};
    } else if constexpr (std::is_same_v<V, T>) {
      return offset[i];
    } else {
      return V::load_unaligned(offset + i);
    }
  }
};

/// y over one segment of a super row: n elements at pattern positions 0 .. n-1
/// of the block; the first `head` run as scalars.
template <bool Stream, bool WithOffsets, class T, class Levels>
void forward_column_segment(T const* x, T* y, std::size_t n, std::size_t head,
                            column_parameters<T, WithOffsets> const& c, Levels const& levels) noexcept {
  using B = batch<T>;
  const auto scalar = [&](std::size_t j) {
    y[j] = fake_quantize_element(x[j], c.step[j], c.inv_step[j], c.template offset_at<T>(j), levels);
  };
  std::size_t i = 0;
  for (; i < head; ++i) {
    scalar(i);
  }
  for (; i + B::size <= n; i += B::size) {
    store_batch<Stream>(y + i, fake_quantize_element(B::load_unaligned(x + i), B::load_unaligned(c.step + i),
                                                     B::load_unaligned(c.inv_step + i),
                                                     c.template offset_at<B>(i), levels));
  }
  for (; i < n; ++i) {
    scalar(i);
  }
}

/// dx over one segment; adds each element's terms to step_sums[j] /
/// offset_sums[j] (one sum per pattern position, so batching does not change
/// the bits); the first `head` elements run as scalars.
template <bool Stream, bool WithOffsets, class T, class Levels, class S>
void backward_column_segment(T const* x, T const* dy, T* dx, std::size_t n, std::size_t head,
                             column_parameters<T, WithOffsets> const& c, Levels const& levels, S const& surrogate,
                             double* step_sums, double* offset_sums) noexcept {
  using B = batch<T>;
  const auto scalar = [&](std::size_t j) {
    const auto g =
        fake_quantize_backward_element(x[j], dy[j], c.inv_step[j], c.template offset_at<T>(j), levels, surrogate);
    dx[j] = g.dx;
    step_sums[j] += static_cast<double>(g.dstep);
    if constexpr (WithOffsets) {
      offset_sums[j] += static_cast<double>(g.doffset);
    }
  };
  std::size_t i = 0;
  for (; i < head; ++i) {
    scalar(i);
  }
  for (; i + B::size <= n; i += B::size) {
    const auto g = fake_quantize_backward_element(B::load_unaligned(x + i), B::load_unaligned(dy + i),
                                                  B::load_unaligned(c.inv_step + i), c.template offset_at<B>(i),
                                                  levels, surrogate);
    store_batch<Stream>(dx + i, g.dx);
    lane_sums<T>::add_to(step_sums + i, g.dstep);
    if constexpr (WithOffsets) {
      lane_sums<T>::add_to(offset_sums + i, g.doffset);
    }
  }
  for (; i < n; ++i) {
    scalar(i);
  }
}

template <bool Stream, bool WithOffsets, class T, class Levels>
class column_forward {
 public:
  column_forward(forward_arguments<T> const& a, Levels const& levels, std::size_t channels) noexcept
      : a_(a), levels_(levels), plan_(column_plan::make(a.x.size(), channels, batch<T>::size)) {}

  [[nodiscard]] std::size_t chunk_count() const noexcept { return plan_.chunk_count(); }

  void run(std::size_t chunk) const noexcept {
    column_parameters<T, WithOffsets> parameters;
    for (std::size_t b = plan_.first_block(chunk); b < plan_.end_block(chunk); ++b) {
      parameters.load(plan_, b, a_.steps, a_.offsets);
      plan_.for_each_segment(chunk, b, [&](std::size_t offset, std::size_t n) {
        forward_column_segment<Stream>(a_.x.data() + offset, a_.y.data() + offset, n, batch_head<T>(offset, n),
                                       parameters, levels_);
      });
    }
    if constexpr (Stream) {
      stream_fence();
    }
  }

 private:
  forward_arguments<T> const& a_;
  Levels levels_;
  column_plan plan_;
};

/// Backward for per_column. Each chunk sums the terms of its super rows per
/// pattern position (double, on the stack). With few rows (plan.direct()) a
/// chunk owns whole columns and writes their gradients; otherwise the
/// per-position partials of the row ranges are added in range order by
/// consume(). Positions j * channels + c (j < m) are folded into column c last.
template <bool Stream, bool WithOffsets, class T, class Levels, class S>
class column_backward {
 public:
  /// Partial sums of one chunk (one block of positions).
  struct result_type {
    double step[column_block];
    double offset[WithOffsets ? column_block : 1];
  };

  column_backward(backward_arguments<T> const& a, Levels const& levels, S const& surrogate,
                  std::size_t channels) noexcept
      : a_(a), levels_(levels), surrogate_(surrogate), plan_(column_plan::make(a.x.size(), channels, batch<T>::size)) {}

  [[nodiscard]] std::size_t chunk_count() const noexcept { return plan_.chunk_count(); }
  [[nodiscard]] bool direct() const noexcept { return plan_.direct(); }

  /// Direct chunks (r == nullptr) write their columns' gradients; others fill *r.
  void produce(std::size_t chunk, result_type* r) const noexcept {
    column_parameters<T, WithOffsets> parameters;
    result_type local;
    result_type& sums = r != nullptr ? *r : local;
    for (std::size_t b = plan_.first_block(chunk); b < plan_.end_block(chunk); ++b) {
      const std::size_t length = plan_.block_end(b) - plan_.block_begin(b);
      parameters.load(plan_, b, a_.steps, a_.offsets);
      std::fill_n(sums.step, length, 0.0);
      if constexpr (WithOffsets) {
        std::fill_n(sums.offset, length, 0.0);
      }
      plan_.for_each_segment(chunk, b, [&](std::size_t offset, std::size_t n) {
        backward_column_segment<Stream>(a_.x.data() + offset, a_.dy.data() + offset, a_.dx.data() + offset, n,
                                        batch_head<T>(offset, n), parameters, levels_, surrogate_, sums.step,
                                        sums.offset);
      });
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
      std::fill_n(totals_.step, length, 0.0);
      if constexpr (WithOffsets) {
        std::fill_n(totals_.offset, length, 0.0);
      }
    }
    for (std::size_t i = 0; i < length; ++i) {
      totals_.step[i] += r.step[i];
      if constexpr (WithOffsets) {
        totals_.offset[i] += r.offset[i];
      }
    }
    if (plan_.range(chunk) + 1 == plan_.ranges) {
      write_block(b, totals_);
    }
  }

  void finish() noexcept {}

 private:
  // Column gradients of block b from its per-position sums. With m > 1 rows per
  // period there is a single block and column c sums positions c, c + channels, ...
  void write_block(std::size_t b, result_type const& sums) const noexcept {
    const std::size_t p0 = plan_.block_begin(b);
    const std::size_t length = plan_.block_end(b) - p0;
    if (plan_.rows_per_period() == 1) {
      for (std::size_t i = 0; i < length; ++i) {
        write(p0 + i, sums.step[i], WithOffsets ? sums.offset[i] : 0.0);
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
      }
      write(c, column.step, column.offset);
    }
  }

  void write(std::size_t column, double step_sum, double offset_sum) const noexcept {
    a_.dsteps[column] = static_cast<T>(a_.grad_scale * step_sum);
    if constexpr (WithOffsets) {
      a_.doffsets[column] = static_cast<T>(a_.grad_scale * offset_sum);
    } else {
      (void)offset_sum;
    }
  }

  backward_arguments<T> const& a_;
  Levels levels_;
  S const& surrogate_;
  column_plan plan_;
  result_type totals_;
};

// ---------------------------------------------------------------------------
// Drivers shared by exec::simd and exec::par
// ---------------------------------------------------------------------------

/// Runs chunks one after the other on the calling thread.
struct sequential_runner {
  template <class F>
  void for_each(std::size_t count, F const& f) const {
    for (std::size_t c = 0; c < count; ++c) {
      f(c);
    }
  }

  /// produce(c) then consume(c) for each chunk in order; one result on the stack.
  template <class Kernel>
  void reduce(Kernel& kernel) const {
    if (kernel.direct()) {
      for_each(kernel.chunk_count(), [&](std::size_t c) { kernel.produce(c, nullptr); });
      return;
    }
    typename Kernel::result_type result;
    for (std::size_t c = 0; c < kernel.chunk_count(); ++c) {
      kernel.produce(c, &result);
      kernel.consume(c, result);
    }
    kernel.finish();
  }
};

/// Calls f(std::true_type) or f(std::false_type).
template <class F>
inline void with_flag(bool flag, F&& f) {
  if (flag) {
    f(std::true_type{});
  } else {
    f(std::false_type{});
  }
}

/// True when the call writes its output with streaming stores: large enough,
/// and aligned to the batch width (batches start at multiples of the width in
/// element index, see batch_head, so then every batch store is aligned).
template <class T>
inline bool use_streaming_stores(T const* out, std::size_t numel) noexcept {
  return has_streaming_store<arch> && numel * sizeof(T) >= streaming_store_min_bytes &&
         is_register_aligned<batch<T>>(out);
}

template <class Runner, real_scalar T, class S>
void run_forward(Runner const& runner, quantizer<T, S> const& q, forward_arguments<T> const& a) {
  const step_layout layout = q.layout();
  const std::size_t numel = a.x.size();
  visit_kernel<T>(q.grid(), a.has_offsets, [&](auto const& levels, auto with_offsets) {
    with_flag(use_streaming_stores(a.y.data(), numel), [&](auto streaming) {
      constexpr bool stream = decltype(streaming)::value;
      constexpr bool offsets = decltype(with_offsets)::value;
      using Levels = std::remove_cvref_t<decltype(levels)>;
      if (layout.step_per_column()) {
        const column_forward<stream, offsets, T, Levels> kernel(a, levels, layout.extent());
        runner.for_each(kernel.chunk_count(), [&](std::size_t c) { kernel.run(c); });
      } else {
        const row_forward<stream, offsets, T, Levels> kernel(a, levels, layout.row_length(numel));
        runner.for_each(kernel.chunk_count(), [&](std::size_t c) { kernel.run(c); });
      }
    });
  });
}

template <class Runner, real_scalar T, class S>
void run_backward(Runner const& runner, quantizer<T, S> const& q, backward_arguments<T> const& a) {
  const step_layout layout = q.layout();
  const std::size_t numel = a.x.size();
  visit_kernel<T>(q.grid(), a.has_offsets, [&](auto const& levels, auto with_offsets) {
    with_flag(use_streaming_stores(a.dx.data(), numel), [&](auto streaming) {
      constexpr bool stream = decltype(streaming)::value;
      constexpr bool offsets = decltype(with_offsets)::value;
      using Levels = std::remove_cvref_t<decltype(levels)>;
      if (layout.step_per_column()) {
        column_backward<stream, offsets, T, Levels, S> kernel(a, levels, q.surrogate(), layout.extent());
        runner.reduce(kernel);
      } else {
        row_backward<stream, offsets, T, Levels, S> kernel(a, levels, q.surrogate(), layout.row_length(numel));
        runner.reduce(kernel);
      }
    });
  });
}

}  // namespace simd_detail

/// exec::simd: the per-element templates of core/lsq.hpp on xsimd batches of
/// the widest instruction set enabled at compile time, on the calling thread.
/// Forward bits equal exec::seq's; dx is within 2 ulp of exec::seq (FMA
/// contraction differences only; identical for STE); dsteps/doffsets are summed
/// with error <= 3e-7 * sum|terms| (float) and equal exec::par's bit for bit.
template <>
struct backend<simd_policy> {
  template <real_scalar T, class S>
  static void forward(simd_policy, quantizer<T, S> const& q, forward_arguments<T> const& a) {
    simd_detail::run_forward(simd_detail::sequential_runner{}, q, a);
  }

  template <real_scalar T, class S>
  static void backward(simd_policy, quantizer<T, S> const& q, backward_arguments<T> const& a) {
    simd_detail::run_backward(simd_detail::sequential_runner{}, q, a);
  }
};

}  // namespace stableqat::exec

#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic pop
#endif
