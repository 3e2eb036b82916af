// stableqat/exec/export_seq.hpp: integer export on exec::seq, the scalar reference.
//
// One plain loop per function over core/lsq.hpp's quantize_level_element /
// dequantize and core/codes.hpp's field arithmetic with V = T; the other
// backends are tested against it.
#pragma once

#include <cstddef>
#include <cstdint>

#include "../core/codes.hpp"
#include "../core/lsq.hpp"
#include "../quantizer.hpp"
#include "arguments.hpp"
#include "export_plan.hpp"
#include "policy.hpp"

namespace stableqat::exec {

template <>
struct export_backend<sequenced_policy> {
  /// codes[i] = code_or_nan_code(level of x[i]).
  template <real_scalar T, class S, code_type C>
  static void quantize_to_codes(sequenced_policy, quantizer<T, S> const& q, code_arguments<T, C> const& a) {
    const T nan = static_cast<T>(nan_code(q.grid()));
    const step_layout layout = q.layout();
    visit_kernel<T>(q.grid(), a.has_offsets, [&](auto const& levels, auto with_offsets) {
      for (std::size_t i = 0; i < a.x.size(); ++i) {
        const std::size_t k = layout.step_index(i);
        const T level =
            quantize_level_element(a.x[i], T(1) / a.steps[k], offset_of(a.offsets, k, with_offsets), levels);
        a.codes[i] = static_cast<C>(code_or_nan_code(levels, level, nan));
      }
    });
  }

  /// y[i] = dequantize(step, level_of_code(code i), offset), codes read field by field.
  template <real_scalar T, class S>
  static void dequantize(sequenced_policy, quantizer<T, S> const& q, dequantize_arguments<T> const& a) {
    const step_layout layout = q.layout();
    const std::size_t row_bytes = packed_row_bytes(a.cols, a.field.bits);
    visit_kernel<T>(q.grid(), a.has_offsets, [&](auto const& levels, auto with_offsets) {
      for (std::size_t i = 0; i < a.y.size(); ++i) {
        const std::uint8_t* row = a.packed.data() + (i / a.cols) * row_bytes;
        const std::uint32_t f = read_field(row, i % a.cols, a.field.bits);
        const long code = a.field.is_signed ? static_cast<long>(code_of_field<std::int16_t>(f, a.field.bits))
                                            : static_cast<long>(f);
        const std::size_t k = layout.step_index(i);
        a.y[i] = stableqat::dequantize(a.steps[k], level_of_code(levels, static_cast<T>(code)),
                                       offset_of(a.offsets, k, with_offsets));
      }
    });
  }
};

}  // namespace stableqat::exec
