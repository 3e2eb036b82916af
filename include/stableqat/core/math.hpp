// stableqat/core/math.hpp: scalar shims with the names xsimd uses for batches.
//
// Every per-element formula in core/ is a template over a value type V that is
// either a scalar (float, double) or a SIMD batch. The formulas call `fma`,
// `select`, ... unqualified: for scalars ordinary lookup finds the shims below,
// for xsimd batches argument-dependent lookup finds xsimd's own functions. One
// source therefore serves the scalar reference, the SIMD body and its tail, and
// the CUDA kernels.
#pragma once

#include <cmath>
#include <concepts>
#include <cstddef>
#include <type_traits>

#include "config.hpp"

namespace stableqat {

/// The element types the library computes in: float and double.
template <class T>
concept real_scalar = std::same_as<T, float> || std::same_as<T, double>;

/// `scalar_of_t<V>` is V for a scalar and the lane type for a SIMD batch
/// (anything with a `value_type`).
template <class V>
struct scalar_of {
  using type = V;
};
template <class V>
  requires requires { typename V::value_type; }
struct scalar_of<V> {
  using type = typename V::value_type;
};
template <class V>
using scalar_of_t = typename scalar_of<V>::type;

/// fma(a, b, c) = a*b + c, rounded once when the target fuses (CUDA devices,
/// x86 hosts built with FMA/AVX-512) and as a*b then +c otherwise; batches go
/// through batch_fma below, which the SIMD backend makes fuse on exactly the
/// same builds. Formulas spell every multiply-add as `stableqat::fma(...)`
/// (qualified) so that the compiler's own contraction (GCC's default
/// -ffp-contract=fast, nvcc's --fmad) cannot make two backends round
/// differently. In constant evaluation it is a*b + c (two roundings).
template <real_scalar T>
STABLEQAT_HD constexpr T fma(T a, T b, T c) noexcept {
#if STABLEQAT_DEVICE_CODE
  return ::fma(a, b, c);
#else
  if (std::is_constant_evaluated()) {
    return a * b + c;
  } else if constexpr (STABLEQAT_HOST_HAS_FMA != 0) {
    return std::fma(a, b, c);
  } else {
    return a * b + c;
  }
#endif
}

}  // namespace stableqat

namespace stableqat_adl {
// Outside namespace stableqat so that the unqualified call finds the batch
// library's own fma by argument-dependent lookup, never stableqat::fma.
template <class V>
inline V batch_library_fma(V const& a, V const& b, V const& c) {
  return fma(a, b, c);
}
}  // namespace stableqat_adl

namespace stableqat {

/// How a SIMD batch type computes fma(a, b, c). The default is the batch
/// library's fma; a SIMD backend specialises it where that function does not
/// fuse although the hardware can (xsimd 8.1's AVX-512 kernels compute a*b + c
/// in two roundings), so that batches round exactly like the scalar shim.
template <class V, class Enable = void>
struct batch_fma {
  static V apply(V const& a, V const& b, V const& c) { return stableqat_adl::batch_library_fma(a, b, c); }
};

/// Batch overload of fma: dispatches through batch_fma<V>. The formulas call
/// `stableqat::fma` qualified, so this overload (not the batch library's,
/// which ADL would otherwise prefer) is the one they reach.
template <class V>
  requires(!real_scalar<V>)
inline V fma(V const& a, V const& b, V const& c) {
  return batch_fma<V>::apply(a, b, c);
}

/// select(cond, a, b) = cond ? a : b, the scalar twin of xsimd::select.
template <real_scalar T>
STABLEQAT_HD constexpr T select(bool cond, T a, T b) noexcept {
  return cond ? a : b;
}

/// floor(v), the scalar twin of xsimd::floor (batches find theirs by
/// argument-dependent lookup). NaN and ±Inf come back unchanged.
template <real_scalar T>
STABLEQAT_HD inline T floor(T v) noexcept {
#if STABLEQAT_DEVICE_CODE
  return ::floor(v);
#else
  return std::floor(v);
#endif
}

/// |v|, the scalar twin of xsimd::abs (both clear the sign bit: -0 -> +0, NaN stays NaN).
template <real_scalar T>
STABLEQAT_HD inline T abs(T v) noexcept {
#if STABLEQAT_DEVICE_CODE
  return ::fabs(v);
#else
  return std::fabs(v);
#endif
}

/// |magnitude| with the sign bit of sign_source, the scalar twin of
/// xsimd::copysign (bit operations on both: no compare, NaN sources give their sign).
template <real_scalar T>
STABLEQAT_HD inline T copysign(T magnitude, T sign_source) noexcept {
#if STABLEQAT_DEVICE_CODE
  return ::copysign(magnitude, sign_source);
#else
  return std::copysign(magnitude, sign_source);
#endif
}

/// Clamps v to [lo, hi] and lets NaN through unchanged (std::clamp and the SIMD
/// min/max instructions disagree on NaN; comparisons with NaN are false here in
/// every backend, so NaN stays NaN).
template <class V>
STABLEQAT_HD constexpr V clamp_keep_nan(V v, V lo, V hi) noexcept {
  return select(v < lo, lo, select(hi < v, hi, v));
}

/// How a SIMD batch type computes clamp_keep_nan(v, lo, hi). The default is the
/// two selects below; a SIMD backend specialises it with min/max instructions
/// whose operand order gives exactly those selects, NaN and signed zeros
/// included (x86: maxps(lo, v) = lo > v ? lo : v), which saves a compare and
/// a blend per bound where blends cost a multiply pipe (AVX2 on Zen).
template <class V, class Enable = void>
struct batch_clamp {
  static V apply(V const& v, V const& lo, V const& hi) { return select(v < lo, lo, select(hi < v, hi, v)); }
};

/// Batch overload of clamp_keep_nan (same signature, more constrained, so it
/// wins for batches): dispatches through batch_clamp<V>.
template <class V>
  requires(!real_scalar<V>)
constexpr V clamp_keep_nan(V v, V lo, V hi) noexcept {
  return batch_clamp<V>::apply(v, lo, hi);
}

/// sign(v) in {-1, 0, +1}; sign(±0) = ±0 and sign(NaN) = NaN.
template <class V>
STABLEQAT_HD constexpr V sign_keep_nan(V v) noexcept {
  using T = scalar_of_t<V>;
  return select(V(T(0)) < v, V(T(1)), select(v < V(T(0)), V(T(-1)), v));
}

/// Evaluates `f` in double precision and returns its value as V.
///
/// Used where a formula loses too much in float (the multi-harmonic surrogate
/// near its extremes). Scalars convert directly; double batches pass through;
/// float batches go through `widen_traits<V>`, which a SIMD backend may
/// specialise with register conversions. The fallback below works lane by lane.
template <class V, class Enable = void>
struct widen_traits {
  template <class F>
  static V apply(V const& r, F const& f) {
    using T = scalar_of_t<V>;
    alignas(64) T lanes[V::size];
    r.store_aligned(lanes);
    for (std::size_t i = 0; i < V::size; ++i) {
      lanes[i] = static_cast<T>(f(static_cast<double>(lanes[i])));
    }
    return V::load_aligned(lanes);
  }
};

template <class V, class F>
STABLEQAT_HD constexpr V evaluate_in_double(V r, F const& f) {
  if constexpr (std::same_as<scalar_of_t<V>, double>) {
    return f(r);
  } else if constexpr (real_scalar<V>) {
    return static_cast<V>(f(static_cast<double>(r)));
  } else {
    return widen_traits<V>::apply(r, f);
  }
}

}  // namespace stableqat
