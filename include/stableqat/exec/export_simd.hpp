// stableqat/exec/export_simd.hpp: integer export on exec::simd and exec::par.
//
// Element-wise loops, batch body + scalar tail, over the same per-element
// templates as exec::seq (quantize_level_element, dequantize of core/lsq.hpp;
// code_of_level / level_of_code of core/codes.hpp) with V = xsimd batches, so
// the results have exec::seq's bits. exec::par runs the pieces of
// export_plan.hpp on OpenMP threads; without OpenMP it is exec::simd.
//
// dequantize decodes a block of packed fields into their levels through a
// table of the levels of all 256 byte values (4, 2 or 1 fields per byte, built
// once per call with level_of_code), then scales the block in batches.
// quantize_to_codes forms each batch's codes in T lanes and narrows them to the
// code type lane by lane (export is an offline step; its speed matters little).
//
// The loops are written as "transform" helpers (a batch body and a scalar tail
// over one run of elements sharing a step) so they can move onto a shared
// element-wise loop helper of exec::simd later without changing their bodies.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "../core/codes.hpp"
#include "../core/lsq.hpp"
#include "../quantizer.hpp"
#include "arguments.hpp"
#include "export_plan.hpp"
#include "par.hpp"
#include "policy.hpp"
#include "simd.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"  // GCC PR 105593, as in simd.hpp
#endif

namespace stableqat::exec {

namespace export_simd_detail {

using arch = xsimd::default_arch;
template <class T>
using batch = xsimd::batch<T, arch>;

/// Elements decoded per block of dequantize (a multiple of 8: blocks start on byte boundaries).
inline constexpr std::size_t decode_block = 512;

template <class B, class Offset>
inline auto broadcast(Offset offset) noexcept {
  if constexpr (std::is_same_v<Offset, no_offset>) {
    return offset;
  } else {
    return B(offset);
  }
}

/// codes[j] = code of x[j] for j < n, one step and offset.
template <class T, code_type C, class Offset, class Levels>
void quantize_run(T const* x, C* codes, std::size_t n, T step, Offset offset, Levels const& levels, T nan) noexcept {
  using B = batch<T>;
  const T inv_step = T(1) / step;
  const B inv_step_b(inv_step);
  const auto offset_b = broadcast<B>(offset);
  const B nan_b(nan);
  alignas(64) T lanes[B::size];
  std::size_t i = 0;
  for (; i + B::size <= n; i += B::size) {
    const B level = quantize_level_element(B::load_unaligned(x + i), inv_step_b, offset_b, levels);
    code_or_nan_code(levels, level, nan_b).store_aligned(lanes);
    for (std::size_t e = 0; e < B::size; ++e) {
      codes[i + e] = static_cast<C>(lanes[e]);
    }
  }
  for (; i < n; ++i) {
    codes[i] = static_cast<C>(code_or_nan_code(levels, quantize_level_element(x[i], inv_step, offset, levels), nan));
  }
}

/// y[j] = dequantize(step, level[j], offset) for j < n.
template <class T, class Offset>
void scale_run(T const* level, T* y, std::size_t n, T step, Offset offset) noexcept {
  using B = batch<T>;
  const B step_b(step);
  const auto offset_b = broadcast<B>(offset);
  std::size_t i = 0;
  for (; i + B::size <= n; i += B::size) {
    stableqat::dequantize(step_b, B::load_unaligned(level + i), offset_b).store_unaligned(y + i);
  }
  for (; i < n; ++i) {
    y[i] = stableqat::dequantize(step, level[i], offset);
  }
}

/// Levels of the fields of every byte value: v[byte * per_byte + e] is the
/// level of field e of `byte` (unused for 16-bit fields).
template <class T, int Bits>
struct level_table {
  static constexpr std::size_t per_byte = Bits < 8 ? 8 / Bits : 1;
  alignas(64) T v[Bits <= 8 ? 256 * per_byte : 1];

  template <class Levels>
  level_table(Levels const& levels, bool is_signed) noexcept {
    if constexpr (Bits <= 8) {
      for (std::uint32_t byte = 0; byte < 256; ++byte) {
        for (std::size_t e = 0; e < per_byte; ++e) {
          const std::uint32_t f = (byte >> (e * Bits)) & ((std::uint32_t{1} << Bits) - 1u);
          const int code = is_signed ? static_cast<int>(code_of_field<std::int8_t>(f, Bits)) : static_cast<int>(f);
          v[byte * per_byte + e] = level_of_code(levels, static_cast<T>(code));
        }
      }
    } else {
      (void)levels;
      (void)is_signed;
      v[0] = T(0);
    }
  }
};

/// True when the level map has its own code -> level mapping (levels are not the codes).
template <class Levels, class T>
inline constexpr bool has_level_of_code = requires(Levels const& l, T c) { l.level_of_code(c); };

/// levels[e] = level of field j0 + e of a packed row, e < n (j0 a multiple of 8).
template <int Bits, class T, class Levels>
void decode_levels(std::uint8_t const* row, std::size_t j0, std::size_t n, level_table<T, Bits> const& table,
                   bool is_signed, Levels const& levels_map, T* levels) noexcept {
  if constexpr (Bits == 16) {
    for (std::size_t e = 0; e < n; ++e) {
      const std::uint32_t f = read_field(row, j0 + e, 16);
      const int code = is_signed ? static_cast<int>(code_of_field<std::int16_t>(f, 16)) : static_cast<int>(f);
      levels[e] = level_of_code(levels_map, static_cast<T>(code));
    }
  } else if constexpr (Bits == 8 && !has_level_of_code<Levels, T>) {
    // The level is the code: convert bytes directly (vectorized), the same
    // values as the table holds.
    (void)table;
    (void)levels_map;
    std::uint8_t const* bytes = row + j0;
    if (is_signed) {
      for (std::size_t e = 0; e < n; ++e) {
        levels[e] = static_cast<T>(static_cast<std::int8_t>(bytes[e]));
      }
    } else {
      for (std::size_t e = 0; e < n; ++e) {
        levels[e] = static_cast<T>(bytes[e]);
      }
    }
  } else {
    (void)is_signed;
    (void)levels_map;
    constexpr std::size_t per_byte = level_table<T, Bits>::per_byte;
    std::uint8_t const* bytes = row + j0 * Bits / 8;
    const std::size_t count = (n * Bits + 7) / 8;
    for (std::size_t b = 0; b < count; ++b) {
      std::memcpy(levels + b * per_byte, table.v + bytes[b] * per_byte, per_byte * sizeof(T));
    }
  }
}

/// Runs f(piece) for every piece of `plan`, on `threads` OpenMP threads when
/// that is worth it (several pieces), else on the calling thread.
template <class F>
void for_each_piece(export_detail::piece_plan const& plan, int threads, F const& f) {
  const std::size_t count = plan.piece_count();
#if defined(_OPENMP)
  if (threads > 1 && count > 1) {
    const auto n = static_cast<std::ptrdiff_t>(count);
#pragma omp parallel for schedule(static) num_threads(threads)
    for (std::ptrdiff_t p = 0; p < n; ++p) {
      f(static_cast<std::size_t>(p));
    }
    return;
  }
#endif
  (void)threads;
  for (std::size_t p = 0; p < count; ++p) {
    f(p);
  }
}

template <real_scalar T, class S, code_type C>
void run_quantize_to_codes(int threads, quantizer<T, S> const& q, code_arguments<T, C> const& a) {
  const T nan = static_cast<T>(nan_code(q.grid()));
  const step_layout layout = q.layout();
  const export_detail::piece_plan plan = export_detail::code_plan(layout, a.x.size());
  visit_kernel<T>(q.grid(), a.has_offsets, [&](auto const& levels, auto with_offsets) {
    for_each_piece(plan, threads, [&](std::size_t piece) {
      plan.for_each_part(piece, [&](std::size_t row, std::size_t c0, std::size_t c1) {
        const std::size_t base = row * plan.cols;
        export_detail::for_each_step_run(layout, base + c0, base + c1, [&](std::size_t k, std::size_t i0, std::size_t i1) {
          quantize_run(a.x.data() + i0, a.codes.data() + i0, i1 - i0, a.steps[k], offset_of(a.offsets, k, with_offsets),
                       levels, nan);
        });
      });
    });
  });
}

template <real_scalar T, class S>
void run_dequantize(int threads, quantizer<T, S> const& q, dequantize_arguments<T> const& a) {
  const step_layout layout = q.layout();
  const export_detail::piece_plan plan{a.y.size() / a.cols, a.cols};
  const std::size_t row_bytes = packed_row_bytes(a.cols, a.field.bits);
  visit_kernel<T>(q.grid(), a.has_offsets, [&](auto const& levels, auto with_offsets) {
    visit_bits(a.field.bits, [&](auto bits_constant) {
      constexpr int Bits = decltype(bits_constant)::value;
      const level_table<T, Bits> table(levels, a.field.is_signed);
      for_each_piece(plan, threads, [&](std::size_t piece) {
        alignas(64) T decoded[decode_block + 8];
        plan.for_each_part(piece, [&](std::size_t row, std::size_t c0, std::size_t c1) {
          std::uint8_t const* packed_row = a.packed.data() + row * row_bytes;
          for (std::size_t j0 = c0; j0 < c1; j0 += decode_block) {
            const std::size_t n = std::min(decode_block, c1 - j0);
            decode_levels<Bits>(packed_row, j0, n, table, a.field.is_signed, levels, decoded);
            const std::size_t base = row * a.cols + j0;
            export_detail::for_each_step_run(layout, base, base + n, [&](std::size_t k, std::size_t i0, std::size_t i1) {
              scale_run(decoded + (i0 - base), a.y.data() + i0, i1 - i0, a.steps[k],
                        offset_of(a.offsets, k, with_offsets));
            });
          }
        });
      });
    });
  });
}

}  // namespace export_simd_detail

/// exec::simd: quantize_to_codes and dequantize in batches of the widest
/// instruction set enabled at compile time; same bits as exec::seq.
template <>
struct export_backend<simd_policy> {
  template <real_scalar T, class S, code_type C>
  static void quantize_to_codes(simd_policy, quantizer<T, S> const& q, code_arguments<T, C> const& a) {
    export_simd_detail::run_quantize_to_codes(1, q, a);
  }
  template <real_scalar T, class S>
  static void dequantize(simd_policy, quantizer<T, S> const& q, dequantize_arguments<T> const& a) {
    export_simd_detail::run_dequantize(1, q, a);
  }
};

/// exec::par: the simd loops over pieces of 64 Ki elements on OpenMP threads;
/// same bits as exec::seq for any thread count. Throws std::invalid_argument
/// for a negative thread count.
template <>
struct export_backend<parallel_policy> {
  template <real_scalar T, class S, code_type C>
  static void quantize_to_codes(parallel_policy policy, quantizer<T, S> const& q, code_arguments<T, C> const& a) {
    export_simd_detail::run_quantize_to_codes(par_detail::resolve_threads(policy), q, a);
  }
  template <real_scalar T, class S>
  static void dequantize(parallel_policy policy, quantizer<T, S> const& q, dequantize_arguments<T> const& a) {
    export_simd_detail::run_dequantize(par_detail::resolve_threads(policy), q, a);
  }
};

}  // namespace stableqat::exec

#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic pop
#endif
