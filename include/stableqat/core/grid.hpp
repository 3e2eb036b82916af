// stableqat/core/grid.hpp: the integer grid [qmin, qmax] a quantizer rounds onto.
#pragma once

#include "config.hpp"
#include "errors.hpp"
#include "math.hpp"
#include "stretched_grid.hpp"

namespace stableqat {

/// The integer levels a fake quantizer may output, before scaling by the step.
///
/// A grid is either uniform (`clamp(round(v), qmin, qmax)`) or binary
/// (`sign(v)`, levels -1, 0, +1 where 0 appears only for v = 0). Grids are
/// built by the factories below, which validate their arguments, so a `grid`
/// value is always valid.
class grid {
 public:
  /// Smallest level.
  [[nodiscard]] constexpr int qmin() const noexcept { return qmin_; }
  /// Largest level.
  [[nodiscard]] constexpr int qmax() const noexcept { return qmax_; }
  /// True for the 1-bit sign grid `signed_grid(1)`.
  [[nodiscard]] constexpr bool is_binary() const noexcept { return binary_; }
  /// True for ParetoQ's stretched elastic grids (stretched_elastic_grid(2),
  /// stretched_elastic_ternary_grid()): qmin/qmax are then the integer code
  /// range, the levels are (code + shift)/m (core/stretched_grid.hpp).
  [[nodiscard]] constexpr bool is_stretched_elastic() const noexcept { return stretched_; }

  constexpr bool operator==(grid const&) const noexcept = default;

  friend constexpr grid signed_grid(int bits);
  friend constexpr grid unsigned_grid(int bits);
  friend constexpr grid ternary_grid() noexcept;
  friend constexpr grid integer_grid(int qmin, int qmax);
  friend constexpr grid stretched_elastic_grid(int bits);
  friend constexpr grid stretched_elastic_ternary_grid() noexcept;

 private:
  constexpr grid(int qmin, int qmax, bool binary) noexcept
      : qmin_(qmin), qmax_(qmax), binary_(binary) {}
  constexpr grid(int qmin, int qmax, bool binary, bool stretched) noexcept
      : qmin_(qmin), qmax_(qmax), binary_(binary), stretched_(stretched) {}

  int qmin_;
  int qmax_;
  bool binary_;
  bool stretched_ = false;
};

/// Largest supported bit width; 16-bit grids still fit exactly in float.
inline constexpr int max_grid_bits = 16;

/// Two's-complement grid: bits = 1 is the binary sign grid {-1, +1} (sign(0) = 0);
/// bits = 2..16 give [-2^(bits-1), 2^(bits-1) - 1], e.g. signed_grid(2) = [-2, 1].
/// Other widths throw std::invalid_argument (a compile error in constexpr use).
constexpr grid signed_grid(int bits) {
  if (bits < 1 || bits > max_grid_bits) {
    detail::throw_invalid_argument("stableqat::signed_grid", "bits", bits, "is outside 1..16");
  }
  if (bits == 1) {
    return grid(-1, 1, true);
  }
  return grid(-(1 << (bits - 1)), (1 << (bits - 1)) - 1, false);
}

/// Unsigned grid [0, 2^bits - 1] for bits = 1..16, e.g. unsigned_grid(4) = [0, 15].
constexpr grid unsigned_grid(int bits) {
  if (bits < 1 || bits > max_grid_bits) {
    detail::throw_invalid_argument("stableqat::unsigned_grid", "bits", bits, "is outside 1..16");
  }
  return grid(0, (1 << bits) - 1, false);
}

/// Ternary grid [-1, 1] (round to nearest of -1, 0, +1).
constexpr grid ternary_grid() noexcept { return grid(-1, 1, false); }

/// Any uniform integer grid with qmin < qmax and both within ±2^16.
constexpr grid integer_grid(int qmin, int qmax) {
  constexpr int limit = 1 << max_grid_bits;
  if (qmin < -limit || qmin > limit) {
    detail::throw_invalid_argument("stableqat::integer_grid", "qmin", qmin, "is outside -65536..65536");
  }
  if (qmax < -limit || qmax > limit) {
    detail::throw_invalid_argument("stableqat::integer_grid", "qmax", qmax, "is outside -65536..65536");
  }
  if (!(qmin < qmax)) {
    detail::throw_invalid_argument("stableqat::integer_grid", "qmax", qmax, "must exceed qmin");
  }
  return grid(qmin, qmax, false);
}

/// ParetoQ's stretched elastic grid (SEQ) for bits = 2: levels ±1/4, ±3/4 of the
/// step (codes -2..1), clip 0.99; see core/stretched_grid.hpp. ParetoQ uses SEQ
/// for 2 bits and ternary only (LSQ's uniform grid from 3 bits), so other
/// widths throw std::invalid_argument naming `bits`.
constexpr grid stretched_elastic_grid(int bits) {
  if (bits != 2) {
    detail::throw_invalid_argument("stableqat::stretched_elastic_grid", "bits", bits,
                                   "is not supported: the stretched elastic grid is defined for 2 bits "
                                   "(stretched_elastic_ternary_grid() for ternary)");
  }
  return grid(-2, 1, false, true);
}

/// ParetoQ's stretched elastic ternary grid: levels 0, ±2/3 of the step
/// (codes -1..1), clip 0.99; see core/stretched_grid.hpp.
constexpr grid stretched_elastic_ternary_grid() noexcept { return grid(-1, 1, false, true); }

/// max(qmax, 1): the count of positive levels LSQ normalises by, in its
/// gradient scale 1/sqrt(numel * positive_levels) and its initial step
/// 2 mean|x| / sqrt(positive_levels). At least 1, so that unsigned 1-bit,
/// binary and ternary grids (qmax <= 1) divide by one level.
constexpr double positive_levels(grid const& g) noexcept {
  return g.qmax() > 1 ? static_cast<double>(g.qmax()) : 1.0;
}

/// Level map of a uniform grid: level(v) = clamp(round(v), qmin, qmax), NaN kept.
template <real_scalar T>
struct uniform_levels {
  T qmin;
  T qmax;
  template <class V>
  STABLEQAT_HD constexpr V level(V /*v*/, V rounded) const noexcept {
    return clamp_keep_nan(rounded, V(qmin), V(qmax));
  }
};

/// Level map of the binary grid: level(v) = sign(v), bounds [-1, 1], NaN kept.
template <real_scalar T>
struct sign_levels {
  T qmin = T(-1);
  T qmax = T(1);
  template <class V>
  STABLEQAT_HD constexpr V level(V v, V /*rounded*/) const noexcept {
    return sign_keep_nan(v);
  }
};

/// The optional members a level map may add to level(v, rounded), qmin and
/// qmax, for grids whose levels are not the integers themselves (only
/// stretched_elastic_levels has them):
///   coordinate(v)      the value the grid rounds (core/lsq.hpp)
///   code_of_level(q)   the integer code of level q (the export, core/codes.hpp)
///   level_of_code(c)   the level of code c, the forward pass's very expression
/// On the integer grids each of them is the identity.
enum class level_hook { coordinate, code_of_level, level_of_code };

/// The level map's member for hook H applied to `value`, or `value` itself when
/// the map has no such member: the one place the hooks are looked up.
template <level_hook H, class Levels, class V>
STABLEQAT_HD constexpr V apply_level_hook(Levels const& levels, V value) noexcept {
  if constexpr (H == level_hook::coordinate && requires { levels.coordinate(value); }) {
    return levels.coordinate(value);
  } else if constexpr (H == level_hook::code_of_level && requires { levels.code_of_level(value); }) {
    return levels.code_of_level(value);
  } else if constexpr (H == level_hook::level_of_code && requires { levels.level_of_code(value); }) {
    return levels.level_of_code(value);
  } else {
    return value;
  }
}

/// Calls f with the level map of `g` in element type T: one runtime branch per
/// call, so the element loops are compiled once per grid kind.
template <real_scalar T, class F>
constexpr decltype(auto) visit_levels(grid const& g, F&& f) {
  if (g.is_binary()) {
    return f(sign_levels<T>{});
  }
  if (g.is_stretched_elastic()) {
    return f(stretched_elastic_levels<T>::for_codes(g.qmin(), g.qmax()));
  }
  return f(uniform_levels<T>{static_cast<T>(g.qmin()), static_cast<T>(g.qmax())});
}

}  // namespace stableqat
