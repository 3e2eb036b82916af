// stableqat/exec/simd/export_kernels.hpp: integer export on exec::simd and exec::par.
//
// quantize_to_codes and dequantize are element-wise: each is a chunk_loop
// (plan.hpp) over the chunks of chunk_elements elements, run by the runner of
// the backend (runner.hpp's sequential_runner for exec::simd, par.hpp's OpenMP
// runner for exec::par), and every element goes through transform.hpp's loop
// with the per-element templates of exec::seq (quantize_level_element,
// dequantize of core/lsq.hpp; code_of_level / level_of_code of core/codes.hpp)
// at V = batch<T> and V = T. No element depends on another, so any cut of
// the work gives exec::seq's bits.
//
// A span of elements sharing a step takes it broadcast (shared_step); a
// per_column span loads one step per lane (column_steps: 1/s computed lane by
// lane, the same correctly rounded division as exec::seq's).
//
// dequantize decodes up to decode_block fields of a packed row into their
// levels through a table of the levels of all 256 byte values (4, 2 or 1
// fields per byte, built once per call with level_of_code), then scales them.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "../../core/codes.hpp"
#include "../../core/layout.hpp"
#include "../../core/lsq.hpp"
#include "../../quantizer.hpp"
#include "../arguments.hpp"
#include "../export_plan.hpp"
#include "batch.hpp"
#include "plan.hpp"
#include "transform.hpp"

namespace stableqat::exec::simd_detail {

/// Fields decoded per block of dequantize (bounds a stack array).
inline constexpr std::size_t decode_block = 512;

/// One step (and offset) for a whole span, broadcast to V.
template <class T, class Offset>
struct shared_step {
  T step;
  T inv_step;
  Offset offset;

  template <class V>
  [[nodiscard]] V step_at(std::size_t) const noexcept {
    return V(step);
  }
  template <class V>
  [[nodiscard]] V inv_step_at(std::size_t) const noexcept {
    return V(inv_step);
  }
  template <class V>
  [[nodiscard]] auto offset_at(std::size_t) const noexcept {
    return broadcast_offset<V>(offset);
  }
};

/// Steps (and offsets) of consecutive columns: element i of the span uses steps[i].
template <class T, bool WithOffsets>
struct column_steps {
  T const* steps;
  T const* offsets;  // unused without offsets

  template <class V>
  [[nodiscard]] V step_at(std::size_t i) const noexcept {
    return load<V>(steps + i);
  }
  template <class V>
  [[nodiscard]] V inv_step_at(std::size_t i) const noexcept {
    return V(T(1)) / load<V>(steps + i);
  }
  template <class V>
  [[nodiscard]] auto offset_at(std::size_t i) const noexcept {
    if constexpr (WithOffsets) {
      return load<V>(offsets + i);
    } else {
      return no_offset{};
    }
  }
};

/// Cuts elements [begin, end) into spans whose steps a step source describes:
/// f(span_begin, span_end, source), source indexed from span_begin.
template <bool WithOffsets, class T, class F>
void for_each_step_span(step_layout const& layout, T const* steps, T const* offsets, std::size_t begin,
                        std::size_t end, F&& f) {
  if (layout.step_per_column()) {
    const std::size_t channels = layout.extent();
    for (std::size_t i = begin; i < end;) {
      const std::size_t c = i % channels;
      const std::size_t stop = std::min(end, i + (channels - c));
      f(i, stop, column_steps<T, WithOffsets>{steps + c, WithOffsets ? offsets + c : nullptr});
      i = stop;
    }
    return;
  }
  export_detail::for_each_step_run(layout, begin, end, [&](std::size_t k, std::size_t i0, std::size_t i1) {
    const auto offset = offset_of(offsets, k, std::bool_constant<WithOffsets>{});
    f(i0, i1, shared_step<T, decltype(offset)>{steps[k], T(1) / steps[k], offset});
  });
}

/// V's codes (integer-valued T) narrowed to C at p.
template <class V, class T, code_type C>
inline void store_codes(C* p, V const& code) noexcept {
  if constexpr (std::is_same_v<V, T>) {
    *p = static_cast<C>(code);
  } else {
    alignas(64) T lanes[V::size];
    code.store_aligned(lanes);
    for (std::size_t e = 0; e < V::size; ++e) {
      p[e] = static_cast<C>(lanes[e]);
    }
  }
}

/// quantize_to_codes as a chunk_loop: chunk c covers elements [c, c + 1) * chunk_elements.
template <bool WithOffsets, real_scalar T, code_type C, class Levels>
class code_kernel {
 public:
  code_kernel(code_arguments<T, C> const& a, Levels const& levels, step_layout layout, T nan) noexcept
      : a_(a), levels_(levels), layout_(layout), nan_(nan) {}

  [[nodiscard]] std::size_t chunk_count() const noexcept {
    return (a_.x.size() + chunk_elements - 1) / chunk_elements;
  }

  void run(std::size_t chunk) const noexcept {
    const std::size_t begin = chunk * chunk_elements;
    const std::size_t end = std::min(a_.x.size(), begin + chunk_elements);
    for_each_step_span<WithOffsets>(layout_, a_.steps.data(), a_.offsets.data(), begin, end,
                                    [&](std::size_t i0, std::size_t i1, auto const& source) {
                                      span(i0, i1 - i0, source);
                                    });
  }

 private:
  template <class Source>
  void span(std::size_t begin, std::size_t n, Source const& source) const noexcept {
    T const* x = a_.x.data() + begin;
    C* codes = a_.codes.data() + begin;
    const Levels levels = levels_;
    transform<T>(begin, n, [&]<class V>(std::size_t i, auto) {
      const V level =
          quantize_level_element(load<V>(x + i), source.template inv_step_at<V>(i), source.template offset_at<V>(i),
                                 levels);
      store_codes<V, T>(codes + i, code_or_nan_code(levels, level, V(nan_)));
    });
  }

  code_arguments<T, C> const& a_;
  Levels levels_;
  step_layout layout_;
  T nan_;
};

/// Levels of the fields of every byte value: v[byte * per_byte + e] is the
/// level of field e of `byte` (empty for 16-bit fields).
template <class T, int Bits>
struct level_table {
  static constexpr std::size_t per_byte = Bits < 8 ? 8 / Bits : 1;
  alignas(64) T v[Bits <= 8 ? 256 * per_byte : 1];

  template <class Levels>
  level_table(Levels const& levels, bool is_signed) noexcept {
    if constexpr (Bits <= 8) {
      for (std::uint32_t byte = 0; byte < 256; ++byte) {
        for (std::size_t e = 0; e < per_byte; ++e) {
          v[byte * per_byte + e] = level_of_field(levels, (byte >> (e * Bits)) & field_mask, is_signed);
        }
      }
    } else {
      v[0] = T(0);
    }
  }

  static constexpr std::uint32_t field_mask = (std::uint32_t{1} << (Bits < 16 ? Bits : 1)) - 1u;

  /// The level of a field value f.
  template <class Levels>
  static T level_of_field(Levels const& levels, std::uint32_t f, bool is_signed) noexcept {
    const int code = is_signed ? static_cast<int>(code_of_field<std::int16_t>(f, Bits)) : static_cast<int>(f);
    return level_of_code(levels, static_cast<T>(code));
  }
};

/// True when the level map has its own code -> level mapping (levels are not the codes).
template <class Levels, class T>
inline constexpr bool has_level_of_code = requires(Levels const& l, T c) { l.level_of_code(c); };

/// out[e] = level of field j0 + e of a packed row, e < n. Writes up to 3 entries
/// past n (whole bytes of 2-bit fields); out has room for them.
template <int Bits, class T, class Levels>
void decode_levels(std::uint8_t const* row, std::size_t j0, std::size_t n, level_table<T, Bits> const& table,
                   bool is_signed, Levels const& levels, T* out) noexcept {
  using table_type = level_table<T, Bits>;
  if constexpr (Bits == 16) {
    for (std::size_t e = 0; e < n; ++e) {
      out[e] = table_type::level_of_field(levels, read_field(row, j0 + e, 16), is_signed);
    }
  } else if constexpr (Bits == 8 && !has_level_of_code<Levels, T>) {
    // The level is the code: convert the bytes directly (vectorized), the
    // values the table holds.
    std::uint8_t const* bytes = row + j0;
    if (is_signed) {
      for (std::size_t e = 0; e < n; ++e) {
        out[e] = static_cast<T>(static_cast<std::int8_t>(bytes[e]));
      }
    } else {
      for (std::size_t e = 0; e < n; ++e) {
        out[e] = static_cast<T>(bytes[e]);
      }
    }
  } else {
    constexpr std::size_t per_byte = table_type::per_byte;
    // Fields before the first byte boundary (a chunk may start inside a byte).
    std::size_t e = 0;
    for (; e < n && (j0 + e) % per_byte != 0; ++e) {
      out[e] = table.v[row[(j0 + e) / per_byte] * per_byte + (j0 + e) % per_byte];
    }
    std::uint8_t const* bytes = row + (j0 + e) / per_byte;
    const std::size_t count = (n - e + per_byte - 1) / per_byte;
    for (std::size_t b = 0; b < count; ++b) {
      std::memcpy(out + e + b * per_byte, table.v + bytes[b] * per_byte, per_byte * sizeof(T));
    }
  }
}

/// dequantize as a chunk_loop over chunks of chunk_elements elements; inside a
/// chunk, blocks of at most decode_block fields of one packed row.
template <bool WithOffsets, int Bits, real_scalar T, class Levels>
class dequantize_kernel {
 public:
  dequantize_kernel(dequantize_arguments<T> const& a, Levels const& levels, step_layout layout) noexcept
      : a_(a), levels_(levels), layout_(layout), table_(levels, a.field.is_signed),
        row_bytes_(packed_row_bytes(a.cols, Bits)) {}

  [[nodiscard]] std::size_t chunk_count() const noexcept {
    return (a_.y.size() + chunk_elements - 1) / chunk_elements;
  }

  void run(std::size_t chunk) const noexcept {
    alignas(64) T decoded[decode_block + 8];
    const std::size_t end = std::min(a_.y.size(), (chunk + 1) * chunk_elements);
    for (std::size_t i = chunk * chunk_elements; i < end;) {
      const std::size_t row = i / a_.cols;
      const std::size_t col = i - row * a_.cols;
      const std::size_t n = std::min({decode_block, a_.cols - col, end - i});
      decode_levels<Bits>(a_.packed.data() + row * row_bytes_, col, n, table_, a_.field.is_signed, levels_, decoded);
      for_each_step_span<WithOffsets>(layout_, a_.steps.data(), a_.offsets.data(), i, i + n,
                                      [&](std::size_t i0, std::size_t i1, auto const& source) {
                                        scale(decoded + (i0 - i), i0, i1 - i0, source);
                                      });
      i += n;
    }
  }

 private:
  template <class Source>
  void scale(T const* level, std::size_t begin, std::size_t n, Source const& source) const noexcept {
    T* y = a_.y.data() + begin;
    transform<T>(begin, n, [&]<class V>(std::size_t i, auto) {
      store<false>(y + i, stableqat::dequantize(source.template step_at<V>(i), load<V>(level + i),
                                                source.template offset_at<V>(i)));
    });
  }

  dequantize_arguments<T> const& a_;
  Levels levels_;
  step_layout layout_;
  level_table<T, Bits> table_;
  std::size_t row_bytes_;
};

/// codes = quantize_to_codes(x): a code_kernel on `runner`.
template <class Runner, real_scalar T, class S, code_type C>
void run_quantize_to_codes(Runner const& runner, quantizer<T, S> const& q, code_arguments<T, C> const& a) {
  const T nan = static_cast<T>(nan_code(q.grid()));
  visit_kernel<T>(q.grid(), a.has_offsets, [&](auto const& levels, auto with_offsets) {
    using Levels = std::remove_cvref_t<decltype(levels)>;
    runner.run(code_kernel<decltype(with_offsets)::value, T, C, Levels>(a, levels, q.layout(), nan));
  });
}

/// y = dequantize(packed): a dequantize_kernel of the field width on `runner`.
template <class Runner, real_scalar T, class S>
void run_dequantize(Runner const& runner, quantizer<T, S> const& q, dequantize_arguments<T> const& a) {
  visit_kernel<T>(q.grid(), a.has_offsets, [&](auto const& levels, auto with_offsets) {
    using Levels = std::remove_cvref_t<decltype(levels)>;
    visit_bits(a.field.bits, [&](auto bits) {
      runner.run(dequantize_kernel<decltype(with_offsets)::value, decltype(bits)::value, T, Levels>(a, levels,
                                                                                                   q.layout()));
    });
  });
}

}  // namespace stableqat::exec::simd_detail
