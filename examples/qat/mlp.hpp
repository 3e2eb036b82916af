// examples/qat/mlp.hpp: a multilayer perceptron in Eigen with stableqat fake quantizers.
//
// Activations are column-major [features x batch] matrices (one sample per
// column); weights are row-major [out x in] matrices, PyTorch's layout, so one
// step per output channel is one step per contiguous row
// (sq::eigen::steps_per::row maps to sq::per_channel(in)).
//
// Forward of layer l:   Wq = fake_quantize(W)   (or W itself in FP32)
//                       A  = fake_quantize_act(H)  (optional, hidden inputs only)
//                       Z  = Wq * A + b,  H_next = relu(Z)
// Backward:  dWq = dZ * A^T, db = rowsum(dZ), dA = Wq^T * dZ, and the fake
// quantizers' backward passes turn dWq into dW plus a step gradient (LSQ), and
// dA into dH plus step and offset gradients (LSQ+).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <Eigen/Core>

#include <stableqat/eigen.hpp>

#if defined(STABLEQAT_DEMO_POLICY_SIMD)
#include <stableqat/exec/simd.hpp>
#endif

namespace qat {

namespace sq = stableqat;

using row_matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using matrix = Eigen::MatrixXf;

/// The stableqat execution policy of the demo: each training run owns one core
/// (runs go in parallel), so the fastest single-core backend is the right one.
#if defined(STABLEQAT_DEMO_POLICY_SIMD)
inline constexpr auto policy = sq::exec::simd;
inline constexpr const char* policy_name = "exec::simd";
#else
inline constexpr auto policy = sq::exec::seq;
inline constexpr const char* policy_name = "exec::seq";
#endif

/// A training method: the FP32 reference, or 2-bit weights with a gradient estimator.
/// ste_scaled is a control: the STE times the mean of fourier_surrogate<1>{0.21}
/// over a period (0.302457), i.e. the same average gradient without its shape.
/// dsq, paretoq and ewgs are the StableQAT paper's baselines (docs/math.md §5),
/// not in the default sweep. Adding a method takes one enum value, one row of
/// method_table and one case of make_quantizers; the command line (--methods),
/// tables, file names and plots follow from the table.
enum class method { fp32, ste, fourier1, fourier3, ste_scaled, dsq, paretoq, ewgs };

/// The STE scaled by a constant, g(r) = scale: a user-defined surrogate type
/// (it models sq::surrogate) used as a control in the demo.
struct scaled_ste {
  double scale = 1.0;
  template <class V>
  V derivative(V /*r*/) const {
    using T = sq::scalar_of_t<V>;
    return V(static_cast<T>(scale));
  }
};
static_assert(sq::surrogate<scaled_ste>);

/// Mean of fourier_surrogate<1>{0.21} over one period (docs/math.md reference value).
inline constexpr double fourier1_mean_gradient = 0.302457;

/// DSQ's initial alpha (the official StableQAT code's), learned per quantizer,
/// kept in [dsq_alpha_min, dsq_alpha_max] after every update (alpha in (0, 1)).
inline constexpr float dsq_initial_alpha = 0.2f;
inline constexpr float dsq_alpha_min = 1e-3f;
inline constexpr float dsq_alpha_max = 0.999f;

/// EWGS's delta, fixed (the EWGS paper adapts it from a Hessian estimate; the
/// demo keeps it constant): g = 1 + delta sign(dy) r lies in [0.9, 1.1].
inline constexpr double ewgs_delta = 0.2;

/// What the command line, the tables and the file names know about a method.
struct method_info {
  method m;
  const char* key;          ///< --methods name and file-name stem, e.g. "fourier1"
  const char* label;        ///< table and plot label, e.g. "2-bit StableQAT K=1"
  const char* description;  ///< one line of --help
};

/// Every method the demo can train, in --help order.
inline constexpr method_info method_table[] = {
    {method::fp32, "fp32", "FP32", "no quantization (the reference)"},
    {method::ste, "ste", "2-bit STE", "straight-through estimator, g = 1"},
    {method::fourier1, "fourier1", "2-bit StableQAT K=1", "fourier_surrogate<1>{0.21} (the paper default)"},
    {method::fourier3, "fourier3", "2-bit StableQAT K=3", "fourier_surrogate<3>{0.21}"},
    {method::ste_scaled, "ste_scaled", "2-bit STE x 0.30",
     "control: g = 0.302457, the mean of fourier1 (its scale without its shape)"},
    {method::dsq, "dsq", "2-bit DSQ", "dsq_surrogate, learnable alpha per quantizer (init 0.2)"},
    {method::paretoq, "paretoq", "2-bit ParetoQ SEQ",
     "ParetoQ: stretched elastic 2-bit grid (+-1/4, +-3/4 of alpha = max|w_row| init) with the STE"},
    {method::ewgs, "ewgs", "2-bit EWGS", "ewgs_surrogate{0.2}: g = 1 + 0.2 sign(dy) r"},
};

/// The table row of m (every enum value has one).
inline method_info const& info(method m) {
  for (method_info const& row : method_table) {
    if (row.m == m) return row;
  }
  throw std::logic_error("qat::info: a method without a row in method_table");
}

/// Short name used on the command line and in file names.
inline const char* method_key(method m) { return info(m).key; }

/// Name used in tables and plots.
inline const char* method_label(method m) { return info(m).label; }

/// The method whose key is `key`; std::invalid_argument naming the known keys otherwise.
inline method parse_method_key(std::string_view key) {
  std::string known;
  for (method_info const& row : method_table) {
    if (key == row.key) return row.m;
    known.append(known.empty() ? "" : ", ").append(row.key);
  }
  throw std::invalid_argument("--methods: unknown method '" + std::string(key) + "' (known: " + known + ")");
}

/// Weight grid of the quantized layers: two's complement 2 bits, levels {-2, -1, 0, 1}
/// (ParetoQ: stretched_elastic_grid(2), levels +-1/4, +-3/4 of the step alpha).
inline constexpr sq::grid weight_grid = sq::signed_grid(2);

/// The fake quantizers of a method. The surrogate type is a template argument of
/// stableqat's quantizer; this interface hides it so the model is written once.
/// `params` / `dparams` are the surrogate's learnable parameters of this one
/// quantizer and their gradients (parameter_count() values each; empty for
/// every surrogate but DSQ, whose one parameter is alpha).
class fake_quantizers {
 public:
  virtual ~fake_quantizers() = default;
  /// wq = fake_quantize(w), one step per row (output channel).
  virtual void weights_forward(row_matrix const& w, Eigen::VectorXf const& steps, Eigen::VectorXf const& params,
                               row_matrix& wq) const = 0;
  /// dw from dwq (surrogate gradient), the step gradient per row, and the parameters' gradients.
  virtual void weights_backward(row_matrix const& w, Eigen::VectorXf const& steps, Eigen::VectorXf const& params,
                                row_matrix const& dwq, row_matrix& dw, Eigen::VectorXf& dsteps,
                                Eigen::VectorXf& dparams) const = 0;
  /// a = fake_quantize(h) on the unsigned grid, one step and offset for the whole matrix.
  virtual void activations_forward(matrix const& h, Eigen::VectorXf const& step, Eigen::VectorXf const& offset,
                                   Eigen::VectorXf const& params, matrix& a) const = 0;
  /// dh from da, and the step and offset gradients (LSQ+), and the parameters' gradients.
  virtual void activations_backward(matrix const& h, Eigen::VectorXf const& step, Eigen::VectorXf const& offset,
                                    Eigen::VectorXf const& params, matrix const& da, matrix& dh,
                                    Eigen::VectorXf& dstep, Eigen::VectorXf& doffset,
                                    Eigen::VectorXf& dparams) const = 0;
  /// The weight grid (signed 2-bit, or ParetoQ's stretched elastic 2-bit grid).
  [[nodiscard]] virtual sq::grid weight_grid() const = 0;
  /// The activation grid (unsigned, activation_bits wide).
  [[nodiscard]] virtual sq::grid activation_grid() const = 0;
  /// Learnable surrogate parameters per quantizer (DSQ: 1, alpha; others 0).
  [[nodiscard]] virtual std::size_t parameter_count() const { return 0; }
  /// Their initial values (parameter_count() of them).
  [[nodiscard]] virtual Eigen::VectorXf initial_parameters() const { return {}; }
  /// Each parameter's bounds after an optimizer update (DSQ: alpha in [1e-3, 0.999]).
  [[nodiscard]] virtual float parameter_min() const { return -std::numeric_limits<float>::infinity(); }
  [[nodiscard]] virtual float parameter_max() const { return std::numeric_limits<float>::infinity(); }
  /// Initial weight steps, one per row: LSQ's 2 mean|w_row| / sqrt(qmax), or
  /// ParetoQ's max|w_row| on the stretched elastic grid.
  void init_weight_steps(row_matrix const& w, Eigen::VectorXf& steps) const {
    const std::span<const float> values(w.data(), static_cast<std::size_t>(w.size()));
    const std::span<float> out(steps.data(), static_cast<std::size_t>(steps.size()));
    const sq::step_layout rows = sq::per_channel(static_cast<std::size_t>(w.cols()));
    if (weight_grid().is_stretched_elastic()) {
      sq::paretoq_init_steps(values, weight_grid(), rows, out);
    } else {
      sq::lsq_init_steps(values, weight_grid(), rows, out);
    }
  }
};

/// fake_quantizers for the surrogate type S (sq::ste, sq::fourier_surrogate<K>,
/// sq::dsq_surrogate, ...) on the weight grid `weights`. A learnable S (DSQ) is
/// rebuilt from the current parameter at every call (a few logarithms), and goes
/// through the std::span front-end, the one with `dparameters`.
template <sq::surrogate S>
class fake_quantizers_with final : public fake_quantizers {
 public:
  fake_quantizers_with(S surrogate, int activation_bits, sq::grid weights = qat::weight_grid)
      : weights_{weights, surrogate},
        activations_{sq::unsigned_grid(activation_bits > 0 ? activation_bits : 8), surrogate} {}

  void weights_forward(row_matrix const& w, Eigen::VectorXf const& steps, Eigen::VectorXf const& params,
                       row_matrix& wq) const override {
    if constexpr (sq::learnable_surrogate<S>) {
      sq::fake_quantize(policy, with(weights_, params, sq::per_channel(static_cast<std::size_t>(w.cols()))), span(w),
                        span(steps), span(wq));
    } else {
      (void)params;
      sq::fake_quantize(policy, weights_, sq::eigen::steps_per::row, w, steps, wq);
    }
  }
  void weights_backward(row_matrix const& w, Eigen::VectorXf const& steps, Eigen::VectorXf const& params,
                        row_matrix const& dwq, row_matrix& dw, Eigen::VectorXf& dsteps,
                        Eigen::VectorXf& dparams) const override {
    if constexpr (sq::learnable_surrogate<S>) {
      dw.resizeLike(w);
      dsteps.resize(steps.size());
      sq::fake_quantize_backward(policy, with(weights_, params, sq::per_channel(static_cast<std::size_t>(w.cols()))),
                                 span(w), span(steps), span(dwq), span(dw), span(dsteps), span(dparams));
    } else {
      (void)params;
      (void)dparams;
      sq::fake_quantize_backward(policy, weights_, sq::eigen::steps_per::row, w, steps, dwq, dw, dsteps);
    }
  }
  void activations_forward(matrix const& h, Eigen::VectorXf const& step, Eigen::VectorXf const& offset,
                           Eigen::VectorXf const& params, matrix& a) const override {
    if constexpr (sq::learnable_surrogate<S>) {
      sq::fake_quantize(policy, with(activations_, params, sq::per_tensor()), span(h), span(step), span(a),
                        span(offset));
    } else {
      (void)params;
      sq::fake_quantize(policy, activations_, sq::eigen::steps_per::matrix, h, step, a, offset);
    }
  }
  void activations_backward(matrix const& h, Eigen::VectorXf const& step, Eigen::VectorXf const& offset,
                            Eigen::VectorXf const& params, matrix const& da, matrix& dh, Eigen::VectorXf& dstep,
                            Eigen::VectorXf& doffset, Eigen::VectorXf& dparams) const override {
    if constexpr (sq::learnable_surrogate<S>) {
      dh.resizeLike(h);
      sq::fake_quantize_backward(policy, with(activations_, params, sq::per_tensor()), span(h), span(step), span(da),
                                 span(dh), span(dstep), span(offset), span(doffset), span(dparams));
    } else {
      (void)params;
      (void)dparams;
      sq::fake_quantize_backward(policy, activations_, sq::eigen::steps_per::matrix, h, step, da, dh, dstep, offset,
                                 doffset);
    }
  }
  [[nodiscard]] sq::grid weight_grid() const override { return weights_.grid(); }
  [[nodiscard]] sq::grid activation_grid() const override { return activations_.grid(); }
  [[nodiscard]] std::size_t parameter_count() const override { return sq::surrogate_parameter_count<S>; }
  [[nodiscard]] Eigen::VectorXf initial_parameters() const override {
    if constexpr (std::is_same_v<S, sq::dsq_surrogate>) {
      return Eigen::VectorXf::Constant(1, dsq_initial_alpha);
    } else {
      return {};
    }
  }
  [[nodiscard]] float parameter_min() const override {
    return std::is_same_v<S, sq::dsq_surrogate> ? dsq_alpha_min : fake_quantizers::parameter_min();
  }
  [[nodiscard]] float parameter_max() const override {
    return std::is_same_v<S, sq::dsq_surrogate> ? dsq_alpha_max : fake_quantizers::parameter_max();
  }

 private:
  template <class M>
  static std::span<const float> span(M const& m) {
    return {m.data(), static_cast<std::size_t>(m.size())};
  }
  template <class M>
  static std::span<float> span(M& m) {
    return {m.data(), static_cast<std::size_t>(m.size())};
  }
  /// The quantizer `base` with the surrogate rebuilt from `params` (DSQ: alpha) and `layout`.
  static sq::quantizer<float, S> with(sq::quantizer<float, S> const& base, Eigen::VectorXf const& params,
                                      sq::step_layout layout) {
    static_assert(std::is_constructible_v<S, double>, "a learnable surrogate of the demo is built from one value");
    if (params.size() != 1) throw std::invalid_argument("qat: a learnable surrogate needs exactly one parameter");
    return sq::quantizer<float, S>{base.grid(), S{static_cast<double>(params(0))}, layout};
  }

  sq::quantizer<float, S> weights_;
  sq::quantizer<float, S> activations_;
};

/// The quantizers of a method; nullptr for FP32.
inline std::unique_ptr<fake_quantizers> make_quantizers(method m, int activation_bits) {
  switch (m) {
    case method::fp32:
      return nullptr;
    case method::ste:
      return std::make_unique<fake_quantizers_with<sq::ste>>(sq::ste{}, activation_bits);
    case method::fourier1:
      return std::make_unique<fake_quantizers_with<sq::fourier_surrogate<1>>>(sq::fourier_surrogate<1>{0.21},
                                                                              activation_bits);
    case method::fourier3:
      return std::make_unique<fake_quantizers_with<sq::fourier_surrogate<3>>>(sq::fourier_surrogate<3>{0.21},
                                                                              activation_bits);
    case method::ste_scaled:
      return std::make_unique<fake_quantizers_with<scaled_ste>>(scaled_ste{fourier1_mean_gradient}, activation_bits);
    case method::dsq:
      return std::make_unique<fake_quantizers_with<sq::dsq_surrogate>>(
          sq::dsq_surrogate{static_cast<double>(dsq_initial_alpha)}, activation_bits);
    case method::paretoq:
      return std::make_unique<fake_quantizers_with<sq::ste>>(sq::ste{}, activation_bits,
                                                             sq::stretched_elastic_grid(2));
    case method::ewgs:
      return std::make_unique<fake_quantizers_with<sq::ewgs_surrogate>>(sq::ewgs_surrogate{ewgs_delta},
                                                                        activation_bits);
  }
  throw std::logic_error("qat::make_quantizers: unhandled method");
}

/// A learnable tensor and its gradient, as the optimizer sees it.
struct parameter {
  float* value;
  float* grad;
  std::size_t size;
  bool positive;  ///< a step size: kept >= min_step after every update
  /// Weight decay applies (weight matrices only): decaying a quantizer step
  /// towards 0 would shrink the grid, and biases/offsets are not regularised
  /// by the usual convention.
  bool decays = false;
  /// Bounds kept after every update (DSQ's alpha: [1e-3, 0.999]); NaN stays NaN.
  float lower = -std::numeric_limits<float>::infinity();
  float upper = std::numeric_limits<float>::infinity();
};

/// Steps are clamped to at least this after an update (the front-end rejects steps <= 0).
inline constexpr float min_step = 1e-6f;

/// Uniform double in [0, 1) from 53 random bits: the same on every platform,
/// unlike std::uniform_real_distribution.
inline double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

/// One fully connected layer, its optional weight quantizer state, and the
/// optional activation quantizer of its input.
struct dense_layer {
  row_matrix w, dw, wq, dwq;
  Eigen::VectorXf b, db;
  bool quantized_weights = false;
  Eigen::VectorXf steps, dsteps;  // one per output channel (row)
  Eigen::VectorXf weight_params, dweight_params;  // the weight quantizer's surrogate parameters (DSQ: alpha)

  bool quantized_input = false;
  bool input_step_ready = false;
  Eigen::VectorXf input_step{Eigen::VectorXf::Zero(1)}, input_dstep{Eigen::VectorXf::Zero(1)};
  Eigen::VectorXf input_offset{Eigen::VectorXf::Zero(1)}, input_doffset{Eigen::VectorXf::Zero(1)};
  Eigen::VectorXf input_params, dinput_params;  // the activation quantizer's surrogate parameters

  matrix input_raw;  // input before activation quantization
  matrix input;      // what the layer multiplied
  matrix z;          // pre-activation
};

/// Model shape and precision.
struct model_config {
  std::vector<int> widths{784, 256, 128, 10};
  bool quantize_weights = false;  ///< 2-bit per-channel weights in every layer but the last
  int activation_bits = 0;        ///< unsigned fake quantization of hidden activations; 0 = FP32
};

/// A ReLU MLP; hidden layers' weights optionally 2-bit, hidden activations optionally quantized.
/// Precision: the first layer (784 -> 256) and the hidden layer (256 -> 128)
/// get 2-bit weights; the output layer (128 -> 10) and all biases stay FP32;
/// input pixels are FP32.
class mlp {
 public:
  mlp(model_config const& config, std::unique_ptr<fake_quantizers> quantizers, std::uint64_t seed)
      : quantizers_(std::move(quantizers)) {
    std::mt19937_64 rng(seed);
    const std::size_t count = config.widths.size() - 1;
    layers_.resize(count);
    for (std::size_t l = 0; l < count; ++l) {
      dense_layer& layer = layers_[l];
      const int in = config.widths[l];
      const int out = config.widths[l + 1];
      const bool last = l + 1 == count;
      // He (Kaiming) uniform initialisation for ReLU networks: U(-a, a), a = sqrt(6 / fan_in).
      const double a = std::sqrt(6.0 / in);
      layer.w.resize(out, in);
      for (Eigen::Index i = 0; i < layer.w.size(); ++i) {
        layer.w.data()[i] = static_cast<float>((2.0 * uniform01(rng) - 1.0) * a);
      }
      layer.b = Eigen::VectorXf::Zero(out);
      layer.dw.resizeLike(layer.w);
      layer.db.resizeLike(layer.b);
      layer.quantized_weights = quantizers_ && config.quantize_weights && !last;
      if (layer.quantized_weights) {
        // Initial step per output channel: LSQ's 2 mean|w| / sqrt(qmax) (ParetoQ: max|w|).
        layer.steps.resize(out);
        layer.dsteps.resize(out);
        quantizers_->init_weight_steps(layer.w, layer.steps);
        layer.weight_params = quantizers_->initial_parameters();
        layer.dweight_params = Eigen::VectorXf::Zero(layer.weight_params.size());
      }
      layer.quantized_input = quantizers_ && config.activation_bits > 0 && l > 0;
      if (layer.quantized_input) {
        layer.input_params = quantizers_->initial_parameters();
        layer.dinput_params = Eigen::VectorXf::Zero(layer.input_params.size());
      }
    }
  }

  /// Logits [classes x batch] for the batch x [784 x batch]; caches what backward needs.
  matrix const& forward(matrix const& x) {
    const matrix* a = &x;
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      dense_layer& layer = layers_[l];
      if (layer.quantized_input) {
        layer.input_raw = *a;
        if (!layer.input_step_ready) {  // LSQ init from the first batch: 2 mean|h| / sqrt(qmax)
          const auto span = std::span<const float>(layer.input_raw.data(), static_cast<std::size_t>(layer.input_raw.size()));
          layer.input_step(0) = static_cast<float>(sq::lsq_init_step(span, quantizers_->activation_grid()));
          layer.input_step_ready = true;
        }
        layer.input.resizeLike(layer.input_raw);
        quantizers_->activations_forward(layer.input_raw, layer.input_step, layer.input_offset, layer.input_params,
                                         layer.input);
      } else {
        layer.input = *a;
      }
      if (layer.quantized_weights) {
        layer.wq.resizeLike(layer.w);
        quantizers_->weights_forward(layer.w, layer.steps, layer.weight_params, layer.wq);
        layer.z.noalias() = layer.wq * layer.input;
      } else {
        layer.z.noalias() = layer.w * layer.input;
      }
      layer.z.colwise() += layer.b;
      if (l + 1 < layers_.size()) {
        hidden_.resizeLike(layer.z);
        hidden_ = layer.z.cwiseMax(0.0f);
        a = &hidden_;
      }
    }
    return layers_.back().z;
  }

  /// Gradients of every parameter from d loss / d logits of the last forward().
  void backward(matrix const& dlogits) {
    dz_ = dlogits;
    for (std::size_t l = layers_.size(); l-- > 0;) {
      dense_layer& layer = layers_[l];
      if (layer.quantized_weights) {
        layer.dwq.noalias() = dz_ * layer.input.transpose();
        quantizers_->weights_backward(layer.w, layer.steps, layer.weight_params, layer.dwq, layer.dw, layer.dsteps,
                                      layer.dweight_params);
      } else {
        layer.dw.noalias() = dz_ * layer.input.transpose();
      }
      layer.db = dz_.rowwise().sum();
      if (l == 0) {
        break;
      }
      row_matrix const& used = layer.quantized_weights ? layer.wq : layer.w;
      da_.noalias() = used.transpose() * dz_;
      if (layer.quantized_input) {
        dh_.resizeLike(da_);
        quantizers_->activations_backward(layer.input_raw, layer.input_step, layer.input_offset, layer.input_params,
                                          da_, dh_, layer.input_dstep, layer.input_doffset, layer.dinput_params);
      } else {
        dh_.swap(da_);
      }
      dz_ = dh_.cwiseProduct((layers_[l - 1].z.array() > 0.0f).cast<float>().matrix());  // ReLU'
    }
  }

  /// Every learnable tensor with its gradient buffer.
  std::vector<parameter> parameters() {
    std::vector<parameter> p;
    for (dense_layer& layer : layers_) {
      p.push_back({layer.w.data(), layer.dw.data(), static_cast<std::size_t>(layer.w.size()), false, true});
      p.push_back({layer.b.data(), layer.db.data(), static_cast<std::size_t>(layer.b.size()), false});
      if (layer.quantized_weights) {
        p.push_back({layer.steps.data(), layer.dsteps.data(), static_cast<std::size_t>(layer.steps.size()), true});
        add_surrogate_parameters(p, layer.weight_params, layer.dweight_params);
      }
      if (layer.quantized_input) {
        p.push_back({layer.input_step.data(), layer.input_dstep.data(), 1, true});
        p.push_back({layer.input_offset.data(), layer.input_doffset.data(), 1, false});
        add_surrogate_parameters(p, layer.input_params, layer.dinput_params);
      }
    }
    return p;
  }

  /// The weights the model multiplies with: fake-quantized where quantized.
  row_matrix effective_weights(std::size_t l) const {
    dense_layer const& layer = layers_[l];
    if (!layer.quantized_weights) {
      return layer.w;
    }
    row_matrix wq(layer.w.rows(), layer.w.cols());
    quantizers_->weights_forward(layer.w, layer.steps, layer.weight_params, wq);
    return wq;
  }

  /// The weight grid of the quantized layers (nullptr-safe: signed 2-bit for FP32 models).
  [[nodiscard]] sq::grid weight_grid() const { return quantizers_ ? quantizers_->weight_grid() : qat::weight_grid; }

  [[nodiscard]] std::vector<dense_layer> const& layers() const noexcept { return layers_; }

 private:
  void add_surrogate_parameters(std::vector<parameter>& p, Eigen::VectorXf& values, Eigen::VectorXf& grads) const {
    if (values.size() > 0) {
      p.push_back({values.data(), grads.data(), static_cast<std::size_t>(values.size()), false, false,
                   quantizers_->parameter_min(), quantizers_->parameter_max()});
    }
  }

  std::unique_ptr<fake_quantizers> quantizers_;
  std::vector<dense_layer> layers_;
  matrix hidden_, dz_, da_, dh_;
};

/// Mean softmax cross-entropy of logits [classes x batch] against labels; writes
/// d loss / d logits = (softmax - onehot) / batch. Returns the loss.
inline double softmax_cross_entropy(matrix const& logits, std::span<const std::uint8_t> labels, matrix& dlogits) {
  const Eigen::Index batch = logits.cols();
  dlogits.resizeLike(logits);
  double loss = 0.0;
  for (Eigen::Index j = 0; j < batch; ++j) {
    const float top = logits.col(j).maxCoeff();
    dlogits.col(j) = (logits.col(j).array() - top).exp().matrix();
    const float total = dlogits.col(j).sum();
    dlogits.col(j) /= total;
    const auto y = static_cast<Eigen::Index>(labels[static_cast<std::size_t>(j)]);
    loss -= static_cast<double>(logits(y, j) - top) - std::log(static_cast<double>(total));
    dlogits(y, j) -= 1.0f;
  }
  dlogits /= static_cast<float>(batch);
  return loss / static_cast<double>(batch);
}

/// Number of correct argmax predictions of logits [classes x batch].
inline std::size_t correct_predictions(matrix const& logits, std::span<const std::uint8_t> labels) {
  std::size_t correct = 0;
  for (Eigen::Index j = 0; j < logits.cols(); ++j) {
    Eigen::Index best = 0;
    logits.col(j).maxCoeff(&best);
    correct += static_cast<std::size_t>(best == static_cast<Eigen::Index>(labels[static_cast<std::size_t>(j)]));
  }
  return correct;
}

}  // namespace qat
