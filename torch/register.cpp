// torch/register.cpp: TORCH_LIBRARY(stableqat, ...) — schemas, CPU kernels, autograd.
//
// Ops (all tensors on the CPU; x float32 or float64 with step/offset of x's dtype,
// or x bfloat16 / float16 with float32 step/offset: computed in float, y and dx
// rounded once to x's dtype, dstep/doffset float32):
//   fake_quantize(x, step, offset?, bits, grid, axis?, group_size?, estimator,
//                 harmonics, params, alpha?, grad_scale?, mask_band) -> y
//   fake_quantize_backward(dy, <the same arguments>) -> (dx, dstep, doffset, dalpha)
//       doffset is undefined (None) without an offset; dalpha (alpha's shape) is
//       DSQ's d alpha, undefined for the other estimators.
//   estimator 'ste' | 'stableqat' (harmonics, params = [] | [A] | a_k) | 'dsq' (alpha:
//       a 1-element tensor of step's dtype, the learnable parameter) | 'ewgs' (params = [delta]);
//   grid 'signed' | 'unsigned' | 'ternary' | 'stretched_elastic' | 'stretched_elastic_ternary'.
//   init_step(x, bits, grid, axis?, group_size?, rule) -> step
//   quantize_to_codes(x, step, offset?, bits, grid, axis?, group_size?) -> codes
//   pack_codes(codes, bits, grid) -> packed [rows, bytes per row] (uint8)
//   unpack_codes(packed, sizes, bits, grid) -> codes
//   dequantize(packed, step, offset?, sizes, bits, grid, axis?, group_size?) -> y (step's dtype)
//       the integer export of docs/export.md: codes int8/uint8/int16 (unsigned
//       16-bit codes as int32), rows of x.size(-1) codes, dequantize == forward bit for bit (-0 -> +0).
// fake_quantize has an Autograd kernel whose backward calls fake_quantize_backward
// through the dispatcher, so autograd, TorchScript and libtorch all run the same kernels.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/autograd.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "kernel_table.hpp"
#include "options.hpp"

namespace stableqat::torch_adapter {
namespace {

using at::Tensor;
using c10::optional;
using c10::string_view;

constexpr const char* forward_op = "stableqat::fake_quantize";
constexpr const char* backward_op = "stableqat::fake_quantize_backward";
constexpr const char* init_op = "stableqat::init_step";

// Library errors become Python exceptions that keep the library's message:
// bad values -> ValueError, unsupported features -> NotImplementedError.
template <class F>
decltype(auto) translate_errors(F&& f) {
  try {
    return f();
  } catch (unsupported_feature const& e) {
    TORCH_CHECK_NOT_IMPLEMENTED(false, e.what());
  } catch (std::invalid_argument const& e) {
    TORCH_CHECK_VALUE(false, e.what());
  }
}

std::vector<std::int64_t> sizes_of(Tensor const& x) { return x.sizes().vec(); }

template <class T>
std::optional<T> to_std(optional<T> const& value) {
  return value.has_value() ? std::optional<T>(*value) : std::nullopt;
}

// 16-bit storage: x (dy, y, dx) bfloat16 or float16, computed in float32.
bool is_16bit(at::ScalarType dtype) { return dtype == at::kBFloat16 || dtype == at::kHalf; }

// The dtype of step, offset and their gradients for x's dtype: x's own, float32 for 16-bit x.
at::ScalarType step_dtype(Tensor const& x) { return is_16bit(x.scalar_type()) ? at::kFloat : x.scalar_type(); }

// dtype, device and size checks the library cannot see (it gets raw pointers).
// `dtype`: the dtype `name` must have (x's for dy, step_dtype(x) for step/offset).
void check_tensor(const char* op, const char* name, Tensor const& t, Tensor const& x, at::ScalarType dtype) {
  TORCH_CHECK(t.device().is_cpu(), op, ": ", name, " is on device ", t.device(),
              "; this op library has CPU kernels only (Debian's torch is a CPU build)");
  TORCH_CHECK(t.scalar_type() == dtype, op, ": ", name, " has dtype ", t.scalar_type(), " but x has dtype ",
              x.scalar_type(), "; it must be ", dtype,
              is_16bit(x.scalar_type()) && dtype != x.scalar_type()
                  ? " (16-bit x is computed in float32: steps and offsets are float32)"
                  : "");
  TORCH_CHECK(!t.is_complex() && t.layout() == at::kStrided, op, ": ", name, " must be a dense real tensor");
}
void check_tensor(const char* op, const char* name, Tensor const& t, Tensor const& x) {
  check_tensor(op, name, t, x, step_dtype(x));
}

// DSQ's alpha: one value per quantizer, step's dtype, read on the host (its range
// is the library's check, in parse_options).
std::optional<double> alpha_value(const char* op, optional<Tensor> const& alpha, Tensor const& x) {
  if (!alpha.has_value() || !alpha->defined()) return std::nullopt;
  check_tensor(op, "alpha", *alpha, x);
  TORCH_CHECK_VALUE(alpha->numel() == 1, op, ": alpha.numel() = ", alpha->numel(),
                    " must be 1 (DSQ has one alpha per quantizer)");
  return alpha->item<double>();
}

// The grid and layout arguments every op shares (estimator fields keep their defaults).
raw_options layout_raw(const char* op, int64_t bits, string_view grid, optional<int64_t> axis,
                       optional<int64_t> group_size) {
  raw_options raw;
  raw.op = op;
  raw.bits = bits;
  raw.grid = std::string(grid);
  raw.axis = to_std(axis);
  raw.group_size = to_std(group_size);
  return raw;
}

raw_options make_raw(const char* op, Tensor const& x, int64_t bits, string_view grid, optional<int64_t> axis,
                     optional<int64_t> group_size, string_view estimator, int64_t harmonics, at::ArrayRef<double> params,
                     optional<Tensor> const& alpha, optional<double> grad_scale, string_view mask_band) {
  raw_options raw = layout_raw(op, bits, grid, axis, group_size);
  raw.estimator = std::string(estimator);
  raw.harmonics = harmonics;
  raw.params.assign(params.begin(), params.end());
  raw.alpha = alpha_value(op, alpha, x);
  raw.grad_scale = to_std(grad_scale);
  raw.mask_band = std::string(mask_band);
  return raw;
}

void check_x(const char* op, Tensor const& x) {
  TORCH_CHECK(x.defined(), op, ": x is undefined");
  TORCH_CHECK(x.device().is_cpu(), op, ": x is on device ", x.device(),
              "; this op library has CPU kernels only (Debian's torch is a CPU build)");
  TORCH_CHECK(x.layout() == at::kStrided, op, ": x must be a dense (strided) tensor");
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble || is_16bit(x.scalar_type()), op,
              ": x has dtype ", x.scalar_type(), "; supported: float32, float64, bfloat16, float16");
}

// Calls f.template operator()<T, E>() for x's dtype: E the storage of x, y, dy
// and dx, T the compute type of the formulas and of step/offset/dstep
// (float32/float64 as themselves; bfloat16/float16 as stableqat::bfloat16 /
// float16, the same 16 bits, computed in float).
template <class F>
void dispatch_storage(const char* op, at::ScalarType dtype, F&& f) {
  static_assert(sizeof(at::BFloat16) == sizeof(bfloat16) && sizeof(at::Half) == sizeof(float16));
  switch (dtype) {
    case at::kFloat: f.template operator()<float, float>(); return;
    case at::kDouble: f.template operator()<double, double>(); return;
    case at::kBFloat16: f.template operator()<float, bfloat16>(); return;
    case at::kHalf: f.template operator()<float, float16>(); return;
    default: TORCH_CHECK(false, op, ": x has dtype ", dtype, "; supported: float32, float64, bfloat16, float16");
  }
}

// x as the compute type of ops without a 16-bit path (init_step,
// quantize_to_codes): a float32 copy of 16-bit x (exact widening), x itself otherwise.
Tensor computed(Tensor const& x) { return is_16bit(x.scalar_type()) ? x.to(at::kFloat) : x; }

void check_step_count(op_options const& o, const char* name, Tensor const& t, at::IntArrayRef x_sizes) {
  TORCH_CHECK_VALUE(static_cast<std::size_t>(t.numel()) == o.step_count, o.op, ": ", name, ".numel() = ", t.numel(),
                    " differs from the ", o.step_count, " step(s) the layout needs for x of shape ", x_sizes, " ",
                    "(per tensor: 1, axis=0: x.size(0), group_size: x.numel()/group_size)");
}

// x, step and offset of an element-wise op (forward, backward, quantize_to_codes)
// after the checks the library cannot make (device, dtype, step counts) and the
// parsing of its options; non-contiguous tensors are copied once, contiguous
// ones used in place. `raw()` builds the options once x has passed its checks.
struct checked_call {
  op_options o;
  Tensor x;
  Tensor step;
  Tensor offset;  ///< undefined without an offset

  template <class T>
  const T* offset_data() const {
    return offset.defined() ? offset.data_ptr<T>() : nullptr;
  }
};

template <class Raw>
checked_call check_call(const char* op, Tensor const& x, Tensor const& step, optional<Tensor> const& offset,
                        Raw&& raw) {
  check_x(op, x);
  check_tensor(op, "step", step, x);
  const bool has_offset = offset.has_value() && offset->defined();
  if (has_offset) check_tensor(op, "offset", *offset, x);
  checked_call c;
  c.o = translate_errors([&] { return parse_options(raw(), sizes_of(x)); });
  check_step_count(c.o, "step", step, x.sizes());
  if (has_offset) check_step_count(c.o, "offset", *offset, x.sizes());
  c.x = x.contiguous();
  c.step = step.contiguous();
  if (has_offset) c.offset = offset->contiguous();
  return c;
}

// --- forward ------------------------------------------------------------------
Tensor fake_quantize_cpu(Tensor const& x, Tensor const& step, optional<Tensor> const& offset, int64_t bits,
                         string_view grid, optional<int64_t> axis, optional<int64_t> group_size,
                         string_view estimator, int64_t harmonics, at::ArrayRef<double> params,
                         optional<Tensor> const& alpha, optional<double> grad_scale, string_view mask_band) {
  const checked_call c = check_call(forward_op, x, step, offset, [&] {
    return make_raw(forward_op, x, bits, grid, axis, group_size, estimator, harmonics, params, alpha, grad_scale,
                    mask_band);
  });
  Tensor y = at::empty(x.sizes(), x.options().memory_format(at::MemoryFormat::Contiguous));
  dispatch_storage(forward_op, x.scalar_type(), [&]<class T, class E>() {
    const forward_buffers<T, E> b{static_cast<const E*>(c.x.data_ptr()), static_cast<E*>(y.data_ptr()),
                                  static_cast<std::size_t>(c.x.numel()), c.step.data_ptr<T>(), c.offset_data<T>(),
                                  static_cast<std::size_t>(c.step.numel())};
    translate_errors([&] { dispatched::run_forward(c.o, b, at::get_num_threads()); });
  });
  return y;
}

// --- backward -----------------------------------------------------------------
std::tuple<Tensor, Tensor, Tensor, Tensor> fake_quantize_backward_cpu(
    Tensor const& dy, Tensor const& x, Tensor const& step, optional<Tensor> const& offset, int64_t bits,
    string_view grid, optional<int64_t> axis, optional<int64_t> group_size, string_view estimator, int64_t harmonics,
    at::ArrayRef<double> params, optional<Tensor> const& alpha, optional<double> grad_scale, string_view mask_band) {
  check_x(backward_op, x);
  check_tensor(backward_op, "dy", dy, x, x.scalar_type());
  TORCH_CHECK_VALUE(dy.sizes() == x.sizes(), backward_op, ": dy has shape ", dy.sizes(), " but x has shape ",
                    x.sizes());
  const checked_call c = check_call(backward_op, x, step, offset, [&] {
    return make_raw(backward_op, x, bits, grid, axis, group_size, estimator, harmonics, params, alpha, grad_scale,
                    mask_band);
  });
  const Tensor dyc = dy.contiguous();
  const auto contiguous = at::MemoryFormat::Contiguous;
  Tensor dx = at::empty(x.sizes(), x.options().memory_format(contiguous));
  Tensor dstep = at::empty(step.sizes(), step.options().memory_format(contiguous));
  Tensor doffset = c.offset.defined() ? at::empty(offset->sizes(), offset->options().memory_format(contiguous)) : Tensor();
  Tensor dalpha = c.o.estimator == estimator_kind::dsq ? at::empty(alpha->sizes(), step.options()) : Tensor();
  dispatch_storage(backward_op, x.scalar_type(), [&]<class T, class E>() {
    const backward_buffers<T, E> b{static_cast<const E*>(c.x.data_ptr()),
                                   static_cast<const E*>(dyc.data_ptr()),
                                   static_cast<E*>(dx.data_ptr()),
                                   static_cast<std::size_t>(c.x.numel()),
                                   c.step.data_ptr<T>(),
                                   c.offset_data<T>(),
                                   dstep.data_ptr<T>(),
                                   doffset.defined() ? doffset.data_ptr<T>() : nullptr,
                                   static_cast<std::size_t>(c.step.numel()),
                                   dalpha.defined() ? dalpha.data_ptr<T>() : nullptr};
    translate_errors([&] { dispatched::run_backward(c.o, b, at::get_num_threads()); });
  });
  return {dx, dstep, doffset, dalpha};
}

// --- init_step --------------------------------------------------------------------
// Options of the ops that take only a grid and a layout (init_step and the export).
op_options export_options(const char* op, int64_t bits, string_view grid, optional<int64_t> axis,
                          optional<int64_t> group_size, std::vector<std::int64_t> const& sizes) {
  return translate_errors([&] { return parse_options(layout_raw(op, bits, grid, axis, group_size), sizes); });
}

Tensor init_step_cpu(Tensor const& x, int64_t bits, string_view grid, optional<int64_t> axis,
                     optional<int64_t> group_size, string_view rule) {
  check_x(init_op, x);
  const op_options o = export_options(init_op, bits, grid, axis, group_size, sizes_of(x));
  const Tensor xc = computed(x).contiguous();
  Tensor step = at::empty({static_cast<int64_t>(o.step_count)}, xc.options());
  const std::string rule_name(rule);
  AT_DISPATCH_FLOATING_TYPES(xc.scalar_type(), "stableqat::init_step", [&] {
    translate_errors([&] {
      dispatched::run_init_steps(o, rule_name.c_str(), xc.data_ptr<scalar_t>(), static_cast<std::size_t>(xc.numel()),
                               step.data_ptr<scalar_t>());
    });
  });
  return step;
}

// --- integer export ----------------------------------------------------------------
constexpr const char* codes_op = "stableqat::quantize_to_codes";
constexpr const char* pack_op = "stableqat::pack_codes";
constexpr const char* unpack_op = "stableqat::unpack_codes";
constexpr const char* dequantize_op = "stableqat::dequantize";

at::ScalarType code_dtype(code_storage s) {
  switch (s) {
    case code_storage::int8: return at::kChar;
    case code_storage::uint8: return at::kByte;
    case code_storage::int16: return at::kShort;
    case code_storage::int32: return at::kInt;
  }
  return at::kInt;
}

// Packing rows: the last dimension (a row-major [out, in] weight packs with cols = in).
std::size_t packing_cols(at::IntArrayRef sizes) {
  return sizes.empty() ? 1 : static_cast<std::size_t>(sizes.back());
}

Tensor quantize_to_codes_cpu(Tensor const& x, Tensor const& step, optional<Tensor> const& offset, int64_t bits,
                             string_view grid, optional<int64_t> axis, optional<int64_t> group_size) {
  const checked_call c =
      check_call(codes_op, x, step, offset, [&] { return layout_raw(codes_op, bits, grid, axis, group_size); });
  const code_storage storage = translate_errors([&] { return dispatched::code_storage_of(c.o.grid); });
  const Tensor xc = computed(c.x);
  Tensor codes = at::empty(x.sizes(), x.options().dtype(code_dtype(storage)));
  AT_DISPATCH_FLOATING_TYPES(xc.scalar_type(), "stableqat::quantize_to_codes", [&] {
    translate_errors([&] {
      dispatched::run_quantize_to_codes(c.o, xc.data_ptr<scalar_t>(), static_cast<std::size_t>(xc.numel()),
                                        c.step.data_ptr<scalar_t>(), c.offset_data<scalar_t>(), codes.data_ptr(),
                                        at::get_num_threads());
    });
  });
  return codes;
}

Tensor pack_codes_cpu(Tensor const& codes, int64_t bits, string_view grid) {
  TORCH_CHECK(codes.defined() && codes.device().is_cpu() && codes.layout() == at::kStrided, pack_op,
              ": codes must be a dense CPU tensor");
  const stableqat::grid g = translate_errors([&] { return parse_grid(pack_op, bits, std::string(grid)); });
  const code_storage storage = translate_errors([&] { return dispatched::code_storage_of(g); });
  TORCH_CHECK(codes.scalar_type() == code_dtype(storage), pack_op, ": codes has dtype ", codes.scalar_type(),
              "; this grid's codes are ", code_dtype(storage), " (as quantize_to_codes returns them)");
  const Tensor cc = codes.contiguous();
  const std::size_t cols = packing_cols(cc.sizes());
  const std::size_t numel = static_cast<std::size_t>(cc.numel());
  const std::size_t rows = cols == 0 ? 0 : numel / cols;
  const std::size_t bytes = translate_errors([&] { return dispatched::packed_size(g, rows, cols); });
  Tensor packed = at::empty({static_cast<int64_t>(rows), static_cast<int64_t>(rows == 0 ? 0 : bytes / rows)},
                            cc.options().dtype(at::kByte));
  if (numel != 0) {
    translate_errors([&] { dispatched::run_pack_codes(g, cols, cc.data_ptr(), numel, packed.data_ptr<std::uint8_t>(), bytes); });
  }
  return packed;
}

void check_packed(const char* op, Tensor const& packed) {
  TORCH_CHECK(packed.defined() && packed.device().is_cpu() && packed.layout() == at::kStrided, op,
              ": packed must be a dense CPU tensor");
  TORCH_CHECK(packed.scalar_type() == at::kByte, op, ": packed has dtype ", packed.scalar_type(),
              "; it must be uint8 (as pack_codes returns it)");
}

Tensor unpack_codes_cpu(Tensor const& packed, at::IntArrayRef sizes, int64_t bits, string_view grid) {
  check_packed(unpack_op, packed);
  const stableqat::grid g = translate_errors([&] { return parse_grid(unpack_op, bits, std::string(grid)); });
  const code_storage storage = translate_errors([&] { return dispatched::code_storage_of(g); });
  Tensor codes = at::empty(sizes, packed.options().dtype(code_dtype(storage)));
  const Tensor pc = packed.contiguous();
  const std::size_t numel = static_cast<std::size_t>(codes.numel());
  const std::size_t cols = packing_cols(sizes);
  translate_errors([&] {
    dispatched::run_unpack_codes(g, cols, pc.data_ptr<std::uint8_t>(), static_cast<std::size_t>(pc.numel()), codes.data_ptr(),
                     numel);
  });
  return codes;
}

Tensor dequantize_cpu(Tensor const& packed, Tensor const& step, optional<Tensor> const& offset, at::IntArrayRef sizes,
                      int64_t bits, string_view grid, optional<int64_t> axis, optional<int64_t> group_size) {
  check_packed(dequantize_op, packed);
  check_x(dequantize_op, step);
  TORCH_CHECK(!is_16bit(step.scalar_type()), dequantize_op, ": step has dtype ", step.scalar_type(),
              "; supported: float32, float64 (dequantize to float32, then .to() the 16-bit dtype)");
  const bool has_offset = offset.has_value() && offset->defined();
  if (has_offset) check_tensor(dequantize_op, "offset", *offset, step);
  const op_options o = export_options(dequantize_op, bits, grid, axis, group_size, sizes.vec());
  check_step_count(o, "step", step, sizes);
  if (has_offset) check_step_count(o, "offset", *offset, sizes);
  const Tensor pc = packed.contiguous();
  const Tensor sc = step.contiguous();
  const Tensor oc = has_offset ? offset->contiguous() : Tensor();
  Tensor y = at::empty(sizes, step.options().memory_format(at::MemoryFormat::Contiguous));
  const std::size_t cols = packing_cols(sizes);
  AT_DISPATCH_FLOATING_TYPES(step.scalar_type(), "stableqat::dequantize", [&] {
    translate_errors([&] {
      dispatched::run_dequantize(o, cols, pc.data_ptr<std::uint8_t>(), static_cast<std::size_t>(pc.numel()),
                               sc.data_ptr<scalar_t>(), has_offset ? oc.data_ptr<scalar_t>() : nullptr,
                               y.data_ptr<scalar_t>(), static_cast<std::size_t>(y.numel()), at::get_num_threads());
    });
  });
  return y;
}

// The instruction set of the kernel module in use (loads it on first call).
std::string kernel_arch_op() {
  return kernels().arch;
}

// --- autograd ---------------------------------------------------------------------
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The backward op through the dispatcher (CPU now; a CUDA kernel would slot in).
std::tuple<Tensor, Tensor, Tensor, Tensor> call_backward(Tensor const& dy, Tensor const& x, Tensor const& step,
                                                         optional<Tensor> const& offset, int64_t bits,
                                                         string_view grid, optional<int64_t> axis,
                                                         optional<int64_t> group_size, string_view estimator,
                                                         int64_t harmonics, at::ArrayRef<double> params,
                                                         optional<Tensor> const& alpha, optional<double> grad_scale,
                                                         string_view mask_band) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("stableqat::fake_quantize_backward", "")
                       .typed<decltype(fake_quantize_backward_cpu)>();
  return op.call(dy, x, step, offset, bits, grid, axis, group_size, estimator, harmonics, params, alpha, grad_scale,
                 mask_band);
}

class fake_quantize_function : public torch::autograd::Function<fake_quantize_function> {
 public:
  static Tensor forward(AutogradContext* ctx, Tensor const& x, Tensor const& step, optional<Tensor> const& offset,
                        int64_t bits, string_view grid, optional<int64_t> axis, optional<int64_t> group_size,
                        string_view estimator, int64_t harmonics, at::ArrayRef<double> params,
                        optional<Tensor> const& alpha, optional<double> grad_scale, string_view mask_band) {
    at::AutoDispatchBelowADInplaceOrView guard;
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("stableqat::fake_quantize", "")
                         .typed<decltype(fake_quantize_cpu)>();
    Tensor y = op.call(x, step, offset, bits, grid, axis, group_size, estimator, harmonics, params, alpha,
                       grad_scale, mask_band);
    ctx->save_for_backward({x, step, offset.has_value() ? *offset : Tensor(), alpha.has_value() ? *alpha : Tensor()});
    ctx->saved_data["bits"] = bits;
    ctx->saved_data["grid"] = std::string(grid);
    ctx->saved_data["axis"] = axis;
    ctx->saved_data["group_size"] = group_size;
    ctx->saved_data["estimator"] = std::string(estimator);
    ctx->saved_data["harmonics"] = harmonics;
    ctx->saved_data["params"] = std::vector<double>(params.begin(), params.end());
    ctx->saved_data["grad_scale"] = grad_scale;
    ctx->saved_data["mask_band"] = std::string(mask_band);
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    Tensor const& x = saved[0];
    Tensor const& step = saved[1];
    const optional<Tensor> offset = saved[2].defined() ? optional<Tensor>(saved[2]) : c10::nullopt;
    const optional<Tensor> alpha = saved[3].defined() ? optional<Tensor>(saved[3]) : c10::nullopt;
    Tensor dy = grad_outputs[0];
    if (!dy.defined()) dy = at::zeros_like(x);
    auto& d = ctx->saved_data;
    const std::string grid = d["grid"].toStringRef();
    const std::string estimator = d["estimator"].toStringRef();
    const std::string band = d["mask_band"].toStringRef();
    const std::vector<double> params = d["params"].toDoubleVector();
    const optional<int64_t> axis = d["axis"].toOptional<int64_t>();
    const optional<int64_t> group_size = d["group_size"].toOptional<int64_t>();
    const optional<double> grad_scale = d["grad_scale"].toOptional<double>();
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [dx, dstep, doffset, dalpha] =
        call_backward(dy, x, step, offset, d["bits"].toInt(), grid, axis, group_size, estimator,
                      d["harmonics"].toInt(), params, alpha, grad_scale, band);
    // One gradient per forward argument; non-tensor arguments get none.
    return {dx, dstep, doffset, Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), dalpha,
            Tensor(), Tensor()};
  }
};

Tensor fake_quantize_autograd(Tensor const& x, Tensor const& step, optional<Tensor> const& offset, int64_t bits,
                              string_view grid, optional<int64_t> axis, optional<int64_t> group_size,
                              string_view estimator, int64_t harmonics, at::ArrayRef<double> params,
                              optional<Tensor> const& alpha, optional<double> grad_scale, string_view mask_band) {
  return fake_quantize_function::apply(x, step, offset, bits, grid, axis, group_size, estimator, harmonics, params,
                                       alpha, grad_scale, mask_band);
}

// The CPU kernels of the training ops, for the dispatch keys that share them.
void register_training_ops(torch::Library& m) {
  m.impl("fake_quantize", &fake_quantize_cpu);
  m.impl("fake_quantize_backward", &fake_quantize_backward_cpu);
  m.impl("init_step", &init_step_cpu);
}

}  // namespace
}  // namespace stableqat::torch_adapter

TORCH_LIBRARY(stableqat, m) {
  m.def(
      "fake_quantize(Tensor x, Tensor step, Tensor? offset=None, int bits=8, str grid=\"signed\", int? axis=None, "
      "int? group_size=None, str estimator=\"ste\", int harmonics=1, float[] params=[], Tensor? alpha=None, "
      "float? grad_scale=None, str mask_band=\"official\") -> Tensor");
  m.def(
      "fake_quantize_backward(Tensor dy, Tensor x, Tensor step, Tensor? offset=None, int bits=8, "
      "str grid=\"signed\", int? axis=None, int? group_size=None, str estimator=\"ste\", int harmonics=1, "
      "float[] params=[], Tensor? alpha=None, float? grad_scale=None, str mask_band=\"official\") "
      "-> (Tensor dx, Tensor dstep, Tensor doffset, Tensor dalpha)");
  m.def(
      "init_step(Tensor x, int bits, str grid=\"signed\", int? axis=None, int? group_size=None, "
      "str rule=\"official\") -> Tensor");
  m.def(
      "quantize_to_codes(Tensor x, Tensor step, Tensor? offset=None, int bits=8, str grid=\"signed\", "
      "int? axis=None, int? group_size=None) -> Tensor");
  m.def("kernel_arch() -> str", &stableqat::torch_adapter::kernel_arch_op);
  m.def("pack_codes(Tensor codes, int bits=8, str grid=\"signed\") -> Tensor");
  m.def("unpack_codes(Tensor packed, int[] sizes, int bits=8, str grid=\"signed\") -> Tensor");
  m.def(
      "dequantize(Tensor packed, Tensor step, Tensor? offset, int[] sizes, int bits=8, str grid=\"signed\", "
      "int? axis=None, int? group_size=None) -> Tensor");
}

TORCH_LIBRARY_IMPL(stableqat, CPU, m) {
  stableqat::torch_adapter::register_training_ops(m);
  m.impl("quantize_to_codes", &stableqat::torch_adapter::quantize_to_codes_cpu);
  m.impl("pack_codes", &stableqat::torch_adapter::pack_codes_cpu);
  m.impl("unpack_codes", &stableqat::torch_adapter::unpack_codes_cpu);
  m.impl("dequantize", &stableqat::torch_adapter::dequantize_cpu);
}

// Tensors on other devices reach the CPU kernels' device checks (a clear error
// naming the argument) instead of the dispatcher's generic "could not run";
// a CUDA kernel (exec::cuda_on(current stream)) would replace these entries.
TORCH_LIBRARY_IMPL(stableqat, Meta, m) { stableqat::torch_adapter::register_training_ops(m); }
TORCH_LIBRARY_IMPL(stableqat, CUDA, m) { stableqat::torch_adapter::register_training_ops(m); }

TORCH_LIBRARY_IMPL(stableqat, Autograd, m) {
  m.impl("fake_quantize", &stableqat::torch_adapter::fake_quantize_autograd);
}
