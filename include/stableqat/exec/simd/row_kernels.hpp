// stableqat/exec/simd/row_kernels.hpp: exec::simd / exec::par kernels for the
// layouts whose rows share one step (per_tensor, per_channel, per_group).
//
// A chunk of row_plan is cut into row pieces; each piece runs one transform()
// (transform.hpp) of the element formulas of core/lsq.hpp with that row's step.
#pragma once

#include <cstddef>
#include <span>

#include "../../core/lsq.hpp"
#include "../arguments.hpp"
#include "../term_sums.hpp"
#include "batch.hpp"
#include "lane_sums.hpp"
#include "plan.hpp"
#include "streaming.hpp"
#include "transform.hpp"

namespace stableqat::exec::simd_detail {

/// Elements are stored as E (T, or 16-bit storage computed in T = float:
/// load/store in batch.hpp widen and round), steps and sums are T / double.
///
/// y[i] = fake_quantize_element(x[i]) for the n elements of a piece that starts
/// at tensor element `begin`, all with one step and offset.
/// (The 6-argument fake_quantize_element: the surrogate's own rounding where it
/// has one, e.g. DSQ; the plain grid rounding, same code, for the others.)
template <bool Stream, class T, class E, class Offset, class Levels, class S>
void forward_row_piece(E const* x, E* y, std::size_t begin, std::size_t n, T step, Offset offset,
                       Levels const& levels, S const& surrogate) noexcept {
  const T inv_step = T(1) / step;
  transform<T>(begin, n, [&]<class V>(std::size_t i, auto) {
    store<Stream>(y + i, fake_quantize_element(load<V>(x + i), V(step), V(inv_step),
                                               broadcast_offset<V>(offset), levels, surrogate));
  });
}

/// dx[i] for the n elements of a piece that starts at tensor element `begin`
/// (one step and offset), and the sums of their step/offset terms.
/// Flattened (GCC, Clang): GCC 12 -O3 -march=native otherwise leaves the batch
/// element, the surrogate or the block sum out of line in the pair loop once
/// its inline budget runs out (a call per batch, clobbering every vector register).
template <bool Stream, bool WithOffsets, class T, class E, class Offset, class Levels, class S>
#if defined(__GNUC__)
[[gnu::flatten]]
#endif
term_sums backward_row_piece(E const* x, E const* dy, E* dx, std::size_t begin, std::size_t n, T step,
                             Offset offset, Levels const& levels_in, S const& surrogate_in) noexcept {
  // Local copies: the compiler can then prove that the dx stores do not change
  // them and hoists the broadcasts of grid bounds and surrogate coefficients.
  // One loop per branch-free variant of the surrogate (hook (d)).
  const Levels levels = levels_in;
  const T inv_step = T(1) / step;
  return with_branch_free_surrogate<T>(surrogate_in, [&](auto const& variant) {
    const auto surrogate = variant;
    piece_sums<T, WithOffsets, (surrogate_parameter_count<S> > 0)> sums;
    transform<T>(begin, n, [&]<class V>(std::size_t i, auto slot) {
      const V upstream = load<V>(dy + i);
      const auto f = fake_quantize_backward_factors(load<V>(x + i), upstream, V(inv_step),
                                                    broadcast_offset<V>(offset), levels, surrogate);
      store<Stream>(dx + i, f.dx);
      sums.add(slot, f, upstream);
    });
    return sums.total();
  });
}

/// Forward over a row_plan (a chunk_loop): chunk c runs independently of every other chunk.
template <bool Stream, bool WithOffsets, class T, class E, class Levels, class S>
class row_forward {
 public:
  row_forward(forward_arguments<T, E> const& a, Levels const& levels, S const& surrogate,
              std::size_t row_length) noexcept
      : a_(a), levels_(levels), surrogate_(surrogate), plan_{a.x.size(), row_length} {}

  [[nodiscard]] std::size_t chunk_count() const noexcept { return plan_.chunk_count(); }

  void run(std::size_t chunk) const noexcept {
    for (std::size_t row = plan_.first_row(chunk); row < plan_.end_row(chunk); ++row) {
      const row_piece p = plan_.piece(chunk, row);
      forward_row_piece<Stream>(a_.x.data() + p.begin, a_.y.data() + p.begin, p.begin, p.end - p.begin,
                                a_.steps[row], offset_of(a_.offsets, row, std::bool_constant<WithOffsets>{}),
                                levels_, surrogate_);
    }
    if constexpr (Stream) {
      stream_fence();
    }
  }

 private:
  forward_arguments<T, E> const& a_;
  Levels levels_;
  S const& surrogate_;
  row_plan plan_;
};

/// Backward over a row_plan (a chunk_reduction). Rows inside one chunk are
/// finished by that chunk; the pieces of rows cut by chunk boundaries (at most
/// two per chunk) are returned and summed in chunk order by consume().
/// A surrogate with a learnable parameter also gets each row's parameter
/// sum, written to parameter_sums[row] (the caller multiplies by the steps
/// and adds them in row order).
template <bool Stream, bool WithOffsets, class T, class E, class Levels, class S>
class row_backward {
 public:
  struct piece_result {
    std::size_t row;
    term_sums sums;
  };
  /// What a chunk hands to the ordered reduction: its cut row pieces.
  struct result_type {
    std::size_t count = 0;
    piece_result pieces[2];
  };

  row_backward(backward_arguments<T, E> const& a, Levels const& levels, S const& surrogate,
               std::size_t row_length, double* parameter_sums = nullptr) noexcept
      : a_(a), levels_(levels), surrogate_(surrogate), plan_{a.x.size(), row_length},
        parameter_sums_(parameter_sums) {}

  [[nodiscard]] std::size_t chunk_count() const noexcept { return plan_.chunk_count(); }
  [[nodiscard]] static constexpr bool direct() noexcept { return false; }

  /// Computes dx of the chunk, writes the gradients of its complete rows and
  /// stores the partial sums of its cut rows in *out (never null: direct() is false).
  void produce(std::size_t chunk, result_type* out) const noexcept {
    out->count = 0;
    for (std::size_t row = plan_.first_row(chunk); row < plan_.end_row(chunk); ++row) {
      const row_piece p = plan_.piece(chunk, row);
      const term_sums sums = backward_row_piece<Stream, WithOffsets>(
          a_.x.data() + p.begin, a_.dy.data() + p.begin, a_.dx.data() + p.begin, p.begin, p.end - p.begin,
          a_.steps[row], offset_of(a_.offsets, row, std::bool_constant<WithOffsets>{}), levels_, surrogate_);
      if (p.complete) {
        write(row, sums);
      } else {
        out->pieces[out->count++] = {row, sums};
      }
    }
    if constexpr (Stream) {
      stream_fence();
    }
  }

  /// Called for every chunk in order after produce(): adds the cut pieces.
  void consume(std::size_t, result_type const& r) noexcept {
    for (std::size_t j = 0; j < r.count; ++j) {
      piece_result const& p = r.pieces[j];
      if (open_ && open_row_ == p.row) {
        open_sums_.step += p.sums.step;
        open_sums_.offset += p.sums.offset;
        open_sums_.parameter += p.sums.parameter;
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
    if constexpr (surrogate_parameter_count<S> > 0) {
      parameter_sums_[row] = sums.parameter;
    }
  }

  backward_arguments<T, E> const& a_;
  Levels levels_;
  S const& surrogate_;
  row_plan plan_;
  double* parameter_sums_;
  bool open_ = false;
  std::size_t open_row_ = 0;
  term_sums open_sums_;
};

}  // namespace stableqat::exec::simd_detail
