// stableqat/exec/simd/lane_sums.hpp: how exec::simd sums step and offset terms.
//
// Float terms are summed in float lanes over blocks of `block_batches` batches
// (plan.hpp), blocks in double lanes, lanes in double, lane 0 first: error
// <= 3e-7 * sum|terms| (of the exact products dy * factor) plus the final
// rounding to T, with no heap and no dependence on addresses or thread counts.
#pragma once

#include <cstddef>
#include <type_traits>

#include "../../core/lsq.hpp"
#include "../term_sums.hpp"
#include "batch.hpp"
#include "plan.hpp"
#include "transform.hpp"
#include "widen.hpp"

namespace stableqat::exec::simd_detail {

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

/// sums[j] += v[j] for the lanes of v (V = batch<T>) or the one value v (V = T), in double.
template <class T, class V>
inline void add_lanes_to(double* sums, V const& v) noexcept {
  if constexpr (std::is_same_v<V, T>) {
    *sums += static_cast<double>(v);
  } else {
    lane_sums<T>::add_to(sums, v);
  }
}

/// v, pinned as the rounded value it is: the compiler may not fuse it into the
/// addition that follows. Until 2026-12-01 the step term was the element's
/// product `dy * term`, and GCC contracted `sum += dy * term` into one FMA in
/// some instantiations of a kernel and not in others (with -mavx2 -mfma, no
/// F16C, the float and the float16-storage step sums differed in their last
/// bits). The step and parameter terms are now explicit fmas (piece_sums); the
/// offset term keeps the pin so that it stays the value exec::seq adds whatever
/// the compiler does with it. An empty asm with the register as in-out
/// operand: no instruction is emitted.
template <class B>
inline B pinned(B v) noexcept {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#if defined(__AVX512F__)
  __asm__("" : "+v"(v.data));
#else
  __asm__("" : "+x"(v.data));
#endif
#endif
  return v;
}

/// The step (and, WithOffsets, offset; WithParameter, the learnable
/// parameter's) terms of one row piece, fed by a transform() op: scalar terms
/// straight into double, rounded as exec::seq rounds them (multiply_out);
/// batch terms into two interleaved T accumulators per slot, whose sum moves
/// to double lanes after every block of block_batches batches. A batch's step
/// and parameter terms enter through one explicit fma each, dy times the
/// element's factor (one rounding fewer than the product and the addition, and
/// one instruction fewer in loops bound by the multiply/FMA pipes: Fourier
/// K >= 2, DSQ); the offset term, dy (1 - g), is already one fma and is added.
template <class T, bool WithOffsets, bool WithParameter = false>
class piece_sums {
 public:
  template <class V, class Mask, int K, std::size_t P>
  void add(slot<K>, lsq_element_factors<V, Mask, P> const& f, V dy) noexcept {
    static_assert(P == (WithParameter ? 1 : 0));
    if constexpr (std::is_same_v<V, T>) {
      const auto g = multiply_out(f, dy);
      edges_.step += static_cast<double>(g.dstep);
      if constexpr (WithOffsets) {
        edges_.offset += static_cast<double>(g.doffset);
      }
      if constexpr (WithParameter) {
        edges_.parameter += static_cast<double>(g.dparameters[0]);
      }
    } else {
      B& step = step_.template get<K>();
      step = stableqat::fma(dy, f.step_factor, step);
      if constexpr (WithOffsets) {
        offset_.template get<K>() += pinned(f.doffset);
      }
      if constexpr (WithParameter) {
        B& parameter = parameter_.template get<K>();
        parameter = select(f.inside, stableqat::fma(dy, f.parameter_factors[0], parameter), parameter);
      }
      ++pending_;
      if (K == 1 && pending_ == block_batches) {  // blocks hold whole pairs
        end_block();
      }
    }
  }

  /// The sums of every term added so far.
  [[nodiscard]] term_sums total() noexcept {
    if (pending_ != 0) {
      end_block();
    }
    term_sums sums{step_lanes_.total() + edges_.step, 0.0, 0.0};
    if constexpr (WithOffsets) {
      sums.offset = offset_lanes_.total() + edges_.offset;
    }
    if constexpr (WithParameter) {
      sums.parameter = parameter_lanes_.total() + edges_.parameter;
    }
    return sums;
  }

 private:
  using B = batch<T>;

  void end_block() noexcept {
    step_lanes_.add(step_.take());
    if constexpr (WithOffsets) {
      offset_lanes_.add(offset_.take());
    }
    if constexpr (WithParameter) {
      parameter_lanes_.add(parameter_.take());
    }
    pending_ = 0;
  }

  // Two named accumulators rather than an array B[2]: with the array, GCC 12
  // keeps slot 0 in memory across the loop (a store and a reload per pair of
  // batches, in the dependency chain of the sum) when AVX2's 16 registers run short.
  struct pair {
    B first = B(T(0));
    B second = B(T(0));
    template <int K>
    B& get() noexcept {
      if constexpr (K == 0) {
        return first;
      } else {
        return second;
      }
    }
    /// first + second, and both back to zero.
    B take() noexcept {
      const B sum = first + second;
      first = B(T(0));
      second = B(T(0));
      return sum;
    }
  };

  pair step_;
  pair offset_;
  pair parameter_;
  std::size_t pending_ = 0;  // batches in the current block
  lane_sums<T> step_lanes_;
  lane_sums<T> offset_lanes_;
  lane_sums<T> parameter_lanes_;
  term_sums edges_;  // the scalar head and tail elements
};

}  // namespace stableqat::exec::simd_detail
