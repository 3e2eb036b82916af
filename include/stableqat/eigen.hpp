// stableqat/eigen.hpp: fake_quantize / fake_quantize_backward and the integer
// export (quantize_to_codes, pack_codes, unpack_codes, dequantize) on Eigen
// matrices and vectors.
//
// The only header of the library that includes Eigen (3.4). It adds overloads
// of the front-end functions of ops.hpp that take Eigen objects with direct
// access to contiguous storage (Matrix, Array, Map, Ref, contiguous Blocks):
//
//     Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> W(out, in), Wq(out, in);
//     Eigen::VectorXf steps(out);                       // one step per output channel (row)
//     sq::quantizer<float, sq::fourier_surrogate<1>> q{sq::signed_grid(2)};
//     sq::fake_quantize(sq::exec::seq, q, sq::eigen::steps_per::row, W, steps, Wq);
//     sq::fake_quantize_backward(sq::exec::seq, q, sq::eigen::steps_per::row, W, steps, dWq, dW, dsteps);
//
// For matrices the steps follow an index of the matrix (one for the whole
// matrix, one per row or one per column); the adapter maps that onto the
// step_layout the storage order needs (see layout_for) and hands contiguous
// spans to the span front-end, which validates and computes. For vectors the
// quantizer's own layout applies to the vector's elements in order.
//
// Export (export.hpp, docs/export.md): the packed format stores rows, so a
// row-major [out, in] weight matrix packs row by row:
//
//     Eigen::Matrix<std::int8_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> codes(out, in);
//     sq::quantize_to_codes(sq::exec::simd, q, sq::eigen::steps_per::row, W, steps, codes);
//     std::vector<std::uint8_t> packed(sq::packed_bytes(out, in, sq::code_bits(q.grid())));
//     sq::pack_codes(sq::code_bits(q.grid()), codes, packed);
//     sq::dequantize(sq::exec::simd, q, sq::eigen::steps_per::row, packed, steps, Wq);  // == fake_quantize
//
// Codes are element-wise (either storage order); pack_codes, unpack_codes and
// dequantize refuse a column-major matrix with more than one row and column
// (std::invalid_argument naming it): its memory holds columns, and packing
// them would silently transpose the format.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <type_traits>

#include <Eigen/Core>

#include "stableqat.hpp"

namespace stableqat {

namespace eigen {

/// Which index of a matrix the steps follow: one step for the whole matrix
/// (steps.size() == 1), one per row (== rows()) or one per column (== cols()).
enum class steps_per { matrix, row, column };

/// An Eigen dense object (Matrix, Array, Map, Ref, Block) with direct access to
/// its coefficients: its storage can be viewed as a span when it is contiguous.
template <class E>
concept dense_storage = std::derived_from<std::remove_cvref_t<E>, Eigen::DenseBase<std::remove_cvref_t<E>>> &&
                        (int(std::remove_cvref_t<E>::Flags) & Eigen::DirectAccessBit) != 0;

/// dense_storage whose coefficients can be written through it: a non-const
/// plain object, or a writable view (Map, Ref, Block; the view itself may be const).
template <class E>
concept writable_dense_storage =
    dense_storage<E> && (int(std::remove_cvref_t<E>::Flags) & Eigen::LvalueBit) != 0 &&
    !(std::is_const_v<std::remove_reference_t<E>> &&
      std::derived_from<std::remove_cvref_t<E>, Eigen::PlainObjectBase<std::remove_cvref_t<E>>>);

/// dense_storage holding coefficients of type T.
template <class E, class T>
concept dense_of = dense_storage<E> && std::same_as<typename std::remove_cvref_t<E>::Scalar, T>;

/// writable_dense_storage holding coefficients of type T.
template <class E, class T>
concept writable_dense_of = writable_dense_storage<E> && std::same_as<typename std::remove_cvref_t<E>::Scalar, T>;

/// dense_storage holding integer codes (code_type: int8_t, uint8_t, int16_t, uint16_t).
template <class E>
concept code_storage = dense_storage<E> && code_type<typename std::remove_cvref_t<E>::Scalar>;

/// writable_dense_storage holding integer codes.
template <class E>
concept writable_code_storage = writable_dense_storage<E> && code_type<typename std::remove_cvref_t<E>::Scalar>;

/// An Eigen vector type (one row or one column fixed at compile time).
template <class E>
concept vector_type = dense_storage<E> && bool(std::remove_cvref_t<E>::IsVectorAtCompileTime);

/// The step_layout that makes steps follow `axis` of a rows x cols matrix stored
/// row-major (`row_major`) or column-major, both extents positive:
///
///     axis      row-major storage     column-major storage
///     matrix    per_tensor()          per_tensor()
///     row       per_channel(cols)     per_column(rows)
///     column    per_column(cols)      per_channel(rows)
///
/// (A row-major row, like a column-major column, is one contiguous run.)
constexpr step_layout layout_for(steps_per axis, bool row_major, std::size_t rows, std::size_t cols) {
  switch (axis) {
    case steps_per::row:
      return row_major ? per_channel(cols) : per_column(rows);
    case steps_per::column:
      return row_major ? per_column(cols) : per_channel(rows);
    default:
      return per_tensor();
  }
}

/// layout_for with the storage order and extents of the Eigen object x.
template <dense_storage E>
step_layout layout_for(steps_per axis, E const& x) {
  return layout_for(axis, bool(std::remove_cvref_t<E>::IsRowMajor), static_cast<std::size_t>(x.rows()),
                    static_cast<std::size_t>(x.cols()));
}

}  // namespace eigen

namespace eigen_detail {

inline const char* axis_name(eigen::steps_per axis) noexcept {
  switch (axis) {
    case eigen::steps_per::row:
      return "steps_per::row";
    case eigen::steps_per::column:
      return "steps_per::column";
    default:
      return "steps_per::matrix";
  }
}

/// The storage of e as one span in memory order. Throws unless it is contiguous:
/// unit inner stride, and the outer stride equal to the inner size.
template <class T, class E>
std::span<T> storage_span(const char* function, const char* name, E const& e, T* data) {
  const auto numel = static_cast<std::size_t>(e.size());
  if (numel == 0) {
    return {};
  }
  if (e.innerStride() != 1) {
    detail::throw_invalid_argument(function, std::string(name) + ".innerStride()", e.innerStride(),
                                   "must be 1: the Eigen adapter needs contiguous storage (copy the expression "
                                   "into a Matrix first)");
  }
  if (e.outerSize() > 1 && e.outerStride() != e.innerSize()) {
    detail::throw_invalid_argument(function, std::string(name) + ".outerStride()", e.outerStride(),
                                   "differs from " + std::string(name) + ".innerSize() = " +
                                       std::to_string(e.innerSize()) +
                                       ": the Eigen adapter needs contiguous storage (copy the block into a "
                                       "Matrix first)");
  }
  return std::span<T>(data, numel);
}

/// A read-only input as a span.
template <class E>
auto input_span(const char* function, const char* name, E const& e) {
  using T = typename std::remove_cvref_t<E>::Scalar;
  return storage_span<const T>(function, name, e, e.data());
}

/// A writable output as a span; a const view (const Ref<MatrixXf>&) still
/// writes through to its target, as Eigen's own functions do.
template <class E>
auto output_span(const char* function, const char* name, E&& e) {
  using D = std::remove_cvref_t<E>;
  using T = typename D::Scalar;
  return storage_span<T>(function, name, e, const_cast<D&>(e).data());
}

/// Same shape as x, reported like the span front-end's size errors.
template <class X, class Y>
void check_same_shape(const char* function, const char* name, X const& x, Y const& y) {
  if (y.rows() != x.rows()) {
    detail::throw_invalid_argument(function, std::string(name) + ".rows()", y.rows(),
                                   "differs from x.rows() = " + std::to_string(x.rows()));
  }
  if (y.cols() != x.cols()) {
    detail::throw_invalid_argument(function, std::string(name) + ".cols()", y.cols(),
                                   "differs from x.cols() = " + std::to_string(x.cols()));
  }
}

template <class X, class Y>
constexpr void require_same_order() {
  static_assert(bool(std::remove_cvref_t<X>::IsRowMajor) == bool(std::remove_cvref_t<Y>::IsRowMajor),
                "stableqat Eigen adapter: every matrix of one call must have the same storage order "
                "(RowMajor or ColMajor) so that element i in memory is the same (row, col) in each");
}

/// Step count the axis needs, checked like the span front-end's steps.size() check.
template <class X>
void check_step_count(const char* function, const char* name, eigen::steps_per axis, X const& x, std::size_t count) {
  const std::size_t expected = axis == eigen::steps_per::row      ? static_cast<std::size_t>(x.rows())
                               : axis == eigen::steps_per::column ? static_cast<std::size_t>(x.cols())
                                                                  : std::size_t{1};
  if (count != expected) {
    detail::throw_invalid_argument(function, std::string(name) + ".size()", count,
                                   "differs from the " + std::to_string(expected) + " step(s) " + axis_name(axis) +
                                       " needs for a " + std::to_string(x.rows()) + "x" + std::to_string(x.cols()) +
                                       " matrix");
  }
}

/// The quantizer the span front-end gets: q with the layout the axis maps to.
/// q's own layout must be per_tensor() (no opinion) or that very layout. A
/// matrix without elements has no row length to map; it gets a layout with
/// the axis' `step_count` steps for zero elements, so that the front-end still
/// checks the step values and zeroes the step gradients.
template <real_scalar T, class S, class X>
quantizer<T, S> with_axis_layout(const char* function, quantizer<T, S> const& q, eigen::steps_per axis, X const& x,
                                 std::size_t step_count) {
  if (x.size() == 0) {
    return quantizer<T, S>{q.grid(), q.surrogate(), step_count == 0 ? per_channel(1) : per_column(step_count)};
  }
  const step_layout mapped = eigen::layout_for(axis, x);
  if (q.layout() != per_tensor() && q.layout() != mapped) {
    detail::throw_invalid_argument(
        function, "q.layout().extent()", q.layout().extent(),
        std::string("of the quantizer's ") + q.layout().name() + " layout conflicts with " + axis_name(axis) +
            " on this " + (std::remove_cvref_t<X>::IsRowMajor ? "row" : "column") + "-major matrix, which needs " +
            mapped.name() + "(" + std::to_string(mapped.extent()) +
            "); give the quantizer per_tensor() and let the adapter map the axis");
  }
  return quantizer<T, S>{q.grid(), q.surrogate(), mapped};
}

/// The checks and spans every element-wise matrix call shares (fake_quantize,
/// quantize_to_codes): `out` has x's storage order and shape, the steps (and
/// offsets) the count `axis` needs, all storage is contiguous. Then
/// call(q mapped onto the axis, x, steps, out [, offsets]) with spans, for the
/// span front-end to validate values and compute.
template <real_scalar T, class S, class X, class Steps, class Out, class Call, class... Offsets>
void elementwise_call(const char* function, const char* out_name, quantizer<T, S> const& q, eigen::steps_per axis,
                      X const& x, Steps const& steps, Out&& out, Call&& call, Offsets const&... offsets) {
  static_assert(sizeof...(Offsets) <= 1, "at most one offsets argument");
  require_same_order<X, Out>();
  check_same_shape(function, out_name, x, out);
  check_step_count(function, "steps", axis, x, static_cast<std::size_t>(steps.size()));
  (check_step_count(function, "offsets", axis, x, static_cast<std::size_t>(offsets.size())), ...);
  const auto x_span = input_span(function, "x", x);
  const auto steps_span = input_span(function, "steps", steps);
  const auto out_span = output_span(function, out_name, out);
  const auto mapped = with_axis_layout(function, q, axis, x, steps_span.size());
  call(mapped, x_span, steps_span, out_span, input_span(function, "offsets", offsets)...);
}

/// The packed format stores rows (row i of a row-major [out, in] matrix is
/// packed row i), so a packed matrix's storage must hold its elements in row
/// order: a RowMajor object, or a ColMajor one with a single row or column,
/// where both orders are the same. Packing any other column-major matrix would
/// pack its columns, so it is refused rather than silently transposed. Also
/// refuses a matrix without columns (no row length for the format).
template <class E>
std::size_t packed_row_length(const char* function, const char* name, E const& e) {
  if (!std::remove_cvref_t<E>::IsRowMajor && e.rows() > 1 && e.cols() > 1) {
    detail::throw_invalid_argument(function, std::string(name) + ".cols()", e.cols(),
                                   "columns in a column-major matrix with " + std::to_string(e.rows()) +
                                       " rows: the packed format stores rows, so " + name +
                                       " must be RowMajor (e.g. Eigen::Matrix<..., Eigen::RowMajor>)");
  }
  if (e.cols() <= 0) {
    detail::throw_invalid_argument(function, std::string(name) + ".cols()", e.cols(),
                                   "must be positive: a packed row needs a length");
  }
  return static_cast<std::size_t>(e.cols());
}

/// The checks of a matrix backward call before its spans are taken: storage
/// order, shapes and step counts, in the order the errors are reported.
template <class X, class Steps, class DY, class DX, class DSteps>
void check_matrix_backward(const char* function, eigen::steps_per axis, X const& x, Steps const& steps, DY const& dy,
                           DX const& dx, DSteps const& dsteps) {
  require_same_order<X, DY>();
  require_same_order<X, DX>();
  check_same_shape(function, "dy", x, dy);
  check_same_shape(function, "dx", x, dx);
  check_step_count(function, "steps", axis, x, static_cast<std::size_t>(steps.size()));
  check_step_count(function, "dsteps", axis, x, static_cast<std::size_t>(dsteps.size()));
}

/// The spans of a backward call (each checked contiguous, in this order), for
/// the span front-end.
template <real_scalar T>
struct gradient_spans {
  std::span<const T> x, steps, dy;
  std::span<T> dx, dsteps;

  template <class X, class Steps, class DY, class DX, class DSteps>
  gradient_spans(const char* function, X const& x_in, Steps const& steps_in, DY const& dy_in, DX&& dx_in,
                 DSteps&& dsteps_in)
      : x(input_span(function, "x", x_in)),
        steps(input_span(function, "steps", steps_in)),
        dy(input_span(function, "dy", dy_in)),
        dx(output_span(function, "dx", dx_in)),
        dsteps(output_span(function, "dsteps", dsteps_in)) {}
};

}  // namespace eigen_detail

/// Forward fake quantization of an Eigen matrix whose steps follow `axis`:
/// y(i, j) = s * clamp(round_half_even(x(i, j) / s), qmin, qmax) with s the step
/// of row i (steps_per::row), of column j (steps_per::column) or the only one.
///
/// x, y: contiguous storage of the same shape and storage order (y may be x);
/// steps: contiguous, 1 / rows / cols entries. q.layout() must be per_tensor()
/// or eigen::layout_for(axis, x). Errors as the span front-end:
/// std::invalid_argument naming the argument, before anything is written.
template <exec::execution_policy Policy, real_scalar T, class S, eigen::dense_of<T> X, eigen::dense_of<T> Steps,
          eigen::writable_dense_of<T> Y>
void fake_quantize(Policy const& policy, quantizer<T, S> const& q, eigen::steps_per axis, X const& x,
                   Steps const& steps, Y&& y) {
  eigen_detail::elementwise_call(exec::forward_function, "y", q, axis, x, steps, y, [&](auto const&... spans) {
    fake_quantize(policy, spans...);
  });
}

/// Forward with one learnable offset per step (LSQ+): y = s * clamp(round((x - b)/s)) + b.
template <exec::execution_policy Policy, real_scalar T, class S, eigen::dense_of<T> X, eigen::dense_of<T> Steps,
          eigen::writable_dense_of<T> Y, eigen::dense_of<T> Offsets>
void fake_quantize(Policy const& policy, quantizer<T, S> const& q, eigen::steps_per axis, X const& x,
                   Steps const& steps, Y&& y, Offsets const& offsets) {
  eigen_detail::elementwise_call(
      exec::forward_function, "y", q, axis, x, steps, y, [&](auto const&... spans) { fake_quantize(policy, spans...); },
      offsets);
}

/// Backward pass of an Eigen matrix whose steps follow `axis` (formulas as the
/// span front-end): dx = inside ? g(r) dy : 0 element by element, and
/// dsteps[k] = grad_scale * sum over step k's row/column/matrix of the LSQ step
/// terms. grad_scale defaults to lsq_grad_scale(x.size(), q.grid()).
/// x, dy, dx: same shape and storage order (dx may alias x or dy); steps and
/// dsteps: contiguous, 1 / rows / cols entries. An empty x sets dsteps to 0.
template <exec::execution_policy Policy, real_scalar T, class S, eigen::dense_of<T> X, eigen::dense_of<T> Steps,
          eigen::dense_of<T> DY, eigen::writable_dense_of<T> DX, eigen::writable_dense_of<T> DSteps>
void fake_quantize_backward(Policy const& policy, quantizer<T, S> const& q, eigen::steps_per axis, X const& x,
                            Steps const& steps, DY const& dy, DX&& dx, DSteps&& dsteps,
                            std::optional<double> grad_scale = std::nullopt) {
  using namespace eigen_detail;
  const char* function = exec::backward_function;
  check_matrix_backward(function, axis, x, steps, dy, dx, dsteps);
  const gradient_spans<T> m(function, x, steps, dy, dx, dsteps);
  fake_quantize_backward(policy, with_axis_layout(function, q, axis, x, m.steps.size()), m.x, m.steps, m.dy, m.dx,
                         m.dsteps, grad_scale);
}

/// Backward with offsets: additionally doffsets[k] = grad_scale * sum over step k of (dy - dx).
template <exec::execution_policy Policy, real_scalar T, class S, eigen::dense_of<T> X, eigen::dense_of<T> Steps,
          eigen::dense_of<T> DY, eigen::writable_dense_of<T> DX, eigen::writable_dense_of<T> DSteps,
          eigen::dense_of<T> Offsets, eigen::writable_dense_of<T> DOffsets>
void fake_quantize_backward(Policy const& policy, quantizer<T, S> const& q, eigen::steps_per axis, X const& x,
                            Steps const& steps, DY const& dy, DX&& dx, DSteps&& dsteps, Offsets const& offsets,
                            DOffsets&& doffsets, std::optional<double> grad_scale = std::nullopt) {
  using namespace eigen_detail;
  const char* function = exec::backward_function;
  check_step_count(function, "offsets", axis, x, static_cast<std::size_t>(offsets.size()));
  check_step_count(function, "doffsets", axis, x, static_cast<std::size_t>(doffsets.size()));
  const auto offsets_span = input_span(function, "offsets", offsets);
  const auto doffsets_span = output_span(function, "doffsets", doffsets);
  check_matrix_backward(function, axis, x, steps, dy, dx, dsteps);
  const gradient_spans<T> m(function, x, steps, dy, dx, dsteps);
  fake_quantize_backward(policy, with_axis_layout(function, q, axis, x, m.steps.size()), m.x, m.steps, m.dy, m.dx,
                         m.dsteps, offsets_span, doffsets_span, grad_scale);
}

/// Forward fake quantization of an Eigen vector: exactly the span front-end on
/// its elements in order, with the quantizer's own layout (per_tensor(),
/// per_group(n), per_channel(n), per_column(n) as for a span). x, y: vectors of
/// the same size with unit stride (a row or column vector either way).
template <exec::execution_policy Policy, real_scalar T, class S, eigen::dense_of<T> X, eigen::dense_of<T> Steps,
          eigen::writable_dense_of<T> Y>
  requires eigen::vector_type<X> && eigen::vector_type<Y>
void fake_quantize(Policy const& policy, quantizer<T, S> const& q, X const& x, Steps const& steps, Y&& y) {
  using namespace eigen_detail;
  const char* function = exec::forward_function;
  const auto x_span = input_span(function, "x", x);
  const auto steps_span = input_span(function, "steps", steps);
  const auto y_span = output_span(function, "y", y);
  fake_quantize(policy, q, x_span, steps_span, y_span);
}

/// Vector forward with offsets (LSQ+).
template <exec::execution_policy Policy, real_scalar T, class S, eigen::dense_of<T> X, eigen::dense_of<T> Steps,
          eigen::writable_dense_of<T> Y, eigen::dense_of<T> Offsets>
  requires eigen::vector_type<X> && eigen::vector_type<Y>
void fake_quantize(Policy const& policy, quantizer<T, S> const& q, X const& x, Steps const& steps, Y&& y,
                   Offsets const& offsets) {
  using namespace eigen_detail;
  const char* function = exec::forward_function;
  const auto x_span = input_span(function, "x", x);
  const auto steps_span = input_span(function, "steps", steps);
  const auto y_span = output_span(function, "y", y);
  const auto offsets_span = input_span(function, "offsets", offsets);
  fake_quantize(policy, q, x_span, steps_span, y_span, offsets_span);
}

/// Vector backward pass: the span front-end on the vectors' elements in order.
template <exec::execution_policy Policy, real_scalar T, class S, eigen::dense_of<T> X, eigen::dense_of<T> Steps,
          eigen::dense_of<T> DY, eigen::writable_dense_of<T> DX, eigen::writable_dense_of<T> DSteps>
  requires eigen::vector_type<X> && eigen::vector_type<DY> && eigen::vector_type<DX>
void fake_quantize_backward(Policy const& policy, quantizer<T, S> const& q, X const& x, Steps const& steps,
                            DY const& dy, DX&& dx, DSteps&& dsteps, std::optional<double> grad_scale = std::nullopt) {
  using namespace eigen_detail;
  const gradient_spans<T> m(exec::backward_function, x, steps, dy, dx, dsteps);
  fake_quantize_backward(policy, q, m.x, m.steps, m.dy, m.dx, m.dsteps, grad_scale);
}

/// Vector backward pass with offsets (LSQ+).
template <exec::execution_policy Policy, real_scalar T, class S, eigen::dense_of<T> X, eigen::dense_of<T> Steps,
          eigen::dense_of<T> DY, eigen::writable_dense_of<T> DX, eigen::writable_dense_of<T> DSteps,
          eigen::dense_of<T> Offsets, eigen::writable_dense_of<T> DOffsets>
  requires eigen::vector_type<X> && eigen::vector_type<DY> && eigen::vector_type<DX>
void fake_quantize_backward(Policy const& policy, quantizer<T, S> const& q, X const& x, Steps const& steps,
                            DY const& dy, DX&& dx, DSteps&& dsteps, Offsets const& offsets, DOffsets&& doffsets,
                            std::optional<double> grad_scale = std::nullopt) {
  using namespace eigen_detail;
  const char* function = exec::backward_function;
  const gradient_spans<T> m(function, x, steps, dy, dx, dsteps);
  const auto offsets_span = input_span(function, "offsets", offsets);
  const auto doffsets_span = output_span(function, "doffsets", doffsets);
  fake_quantize_backward(policy, q, m.x, m.steps, m.dy, m.dx, m.dsteps, offsets_span, doffsets_span, grad_scale);
}

// ---------------------------------------------------------------------------
// Integer export (export.hpp) of Eigen matrices
// ---------------------------------------------------------------------------

/// quantize_to_codes of an Eigen matrix whose steps follow `axis`: codes(i, j)
/// is the grid level fake_quantize(policy, q, axis, x, steps, y) rounds x(i, j)
/// to (NaN -> nan_code(q.grid())). codes: contiguous, a code_type scalar with the
/// grid's signedness (int8_t for signed grids up to 8 bits), the same shape and
/// storage order as x (either order: the codes are element-wise). Steps and
/// errors as the matrix fake_quantize; the span front-end computes.
template <exec::execution_policy Policy, real_scalar T, class S, eigen::dense_of<T> X, eigen::dense_of<T> Steps,
          eigen::writable_code_storage Codes>
void quantize_to_codes(Policy const& policy, quantizer<T, S> const& q, eigen::steps_per axis, X const& x,
                       Steps const& steps, Codes&& codes) {
  eigen_detail::elementwise_call(export_front::codes_name, "codes", q, axis, x, steps, codes,
                                 [&](auto const&... spans) { quantize_to_codes(policy, spans...); });
}

/// quantize_to_codes with LSQ+ offsets (one per step): codes of clamp(round((x - b) / s)).
template <exec::execution_policy Policy, real_scalar T, class S, eigen::dense_of<T> X, eigen::dense_of<T> Steps,
          eigen::writable_code_storage Codes, eigen::dense_of<T> Offsets>
void quantize_to_codes(Policy const& policy, quantizer<T, S> const& q, eigen::steps_per axis, X const& x,
                       Steps const& steps, Codes&& codes, Offsets const& offsets) {
  eigen_detail::elementwise_call(
      export_front::codes_name, "codes", q, axis, x, steps, codes,
      [&](auto const&... spans) { quantize_to_codes(policy, spans...); }, offsets);
}

/// pack_codes of a codes matrix, row by row: row i of codes becomes packed row
/// i (cols() codes in bits-wide fields, element 0 in the low bits, padded to a
/// whole byte), so a row-major [out, in] weight matrix packs as the format
/// says. packed.size() must be packed_bytes(codes.rows(), codes.cols(), bits).
/// codes: contiguous, RowMajor (or a single row / column); a column-major
/// matrix with several rows and columns throws std::invalid_argument naming
/// codes.cols() (copy it into a RowMajor matrix). Other errors as pack_codes.
template <eigen::code_storage Codes>
void pack_codes(int bits, Codes const& codes, std::span<std::uint8_t> packed) {
  using namespace eigen_detail;
  const std::size_t cols = packed_row_length(export_front::pack_name, "codes", codes);
  pack_codes(bits, cols, input_span(export_front::pack_name, "codes", codes), packed);
}

/// The inverse of the matrix pack_codes: fills codes (its shape gives the rows
/// and row length; RowMajor or a single row / column) from packed.
template <eigen::writable_code_storage Codes>
void unpack_codes(int bits, std::span<const std::uint8_t> packed, Codes&& codes) {
  using namespace eigen_detail;
  const std::size_t cols = packed_row_length(export_front::unpack_name, "codes", codes);
  unpack_codes(bits, cols, packed, output_span(export_front::unpack_name, "codes", codes));
}

/// dequantize into an Eigen matrix whose steps follow `axis`: y(i, j) = s *
/// level(code of row i, field j) + b, the floats the matrix fake_quantize gave
/// (bit for bit but -0 -> +0 and NaN -> nan_code; see export.hpp). y's shape
/// gives the packed rows and row length (fields of code_bits(q.grid()) bits);
/// y: contiguous, RowMajor or a single row / column (a column-major matrix
/// throws std::invalid_argument naming y.cols()). steps: 1 / rows / cols
/// entries. Other errors as the span dequantize, before writing.
template <exec::execution_policy Policy, real_scalar T, class S, eigen::dense_of<T> Steps,
          eigen::writable_dense_of<T> Y, class... Offsets>
  requires(sizeof...(Offsets) <= 1 && (eigen::dense_of<Offsets, T> && ...))
void dequantize(Policy const& policy, quantizer<T, S> const& q, eigen::steps_per axis,
                std::span<const std::uint8_t> packed, Steps const& steps, Y&& y, Offsets const&... offsets) {
  using namespace eigen_detail;
  const char* function = export_front::dequantize_name;
  const std::size_t cols = packed_row_length(function, "y", y);
  check_step_count(function, "steps", axis, y, static_cast<std::size_t>(steps.size()));
  (check_step_count(function, "offsets", axis, y, static_cast<std::size_t>(offsets.size())), ...);
  const auto steps_span = input_span(function, "steps", steps);
  const auto y_span = output_span(function, "y", y);
  dequantize(policy, with_axis_layout(function, q, axis, y, steps_span.size()), cols, packed, steps_span, y_span,
             input_span(function, "offsets", offsets)...);
}

}  // namespace stableqat
