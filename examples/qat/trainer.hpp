// examples/qat/trainer.hpp: optimizers (SGD, Adam, AdamW) and one training run (method x learning rate x seed).
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <stdexcept>
#include <span>
#include <string>
#include <vector>

#include "idx.hpp"
#include "mlp.hpp"

namespace qat {

/// The optimizers of the demo (see optimizer for their update rules).
enum class optimizer_kind { sgd, adam, adamw };

/// Hyper-parameters of the optimizers. The defaults are PyTorch's for Adam and
/// AdamW (betas 0.9/0.999, eps 1e-8), with weight decay 0 as in the paper's QAT
/// runs; SGD uses only momentum and weight_decay.
struct optimizer_settings {
  float momentum = 0.9f;       ///< SGD heavy-ball momentum mu
  float beta1 = 0.9f;          ///< Adam/AdamW first-moment decay
  float beta2 = 0.999f;        ///< Adam/AdamW second-moment decay
  float epsilon = 1e-8f;       ///< Adam/AdamW denominator guard, added to sqrt(v_hat)
  float weight_decay = 0.0f;   ///< lambda; applies to parameters with `decays` (weight matrices) only
};

/// "sgd", "adam", "adamw".
inline const char* optimizer_key(optimizer_kind kind) {
  return kind == optimizer_kind::sgd ? "sgd" : kind == optimizer_kind::adam ? "adam" : "adamw";
}

/// One line for logs and plot titles, with the hyper-parameters that apply.
inline std::string optimizer_description(optimizer_kind kind, optimizer_settings const& s) {
  char text[160];
  if (kind == optimizer_kind::sgd) {
    std::snprintf(text, sizeof text, "SGD momentum %g", static_cast<double>(s.momentum));
  } else {
    std::snprintf(text, sizeof text, "%s betas %g/%g eps %g", kind == optimizer_kind::adam ? "Adam" : "AdamW",
                  static_cast<double>(s.beta1), static_cast<double>(s.beta2), static_cast<double>(s.epsilon));
  }
  std::string line = text;
  if (s.weight_decay != 0.0f || kind == optimizer_kind::adamw) {
    std::snprintf(text, sizeof text, ", weight decay %g", static_cast<double>(s.weight_decay));
    line += text;
  }
  return line;
}

/// Updates every parameter from its gradient g at step t = 1, 2, ... with
/// learning rate lr (the schedule's value at this step). With lambda the
/// weight decay (only for parameters marked `decays`):
///
///   SGD:   g' = g + lambda p;  m = mu m + g';  p -= lr m          (PyTorch SGD, dampening 0)
///   Adam:  g' = g + lambda p;  m = b1 m + (1 - b1) g';  v = b2 v + (1 - b2) g'^2
///          p -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)   (Kingma & Ba 2015, bias-corrected)
///   AdamW: p -= lr lambda p (decoupled, Loshchilov & Hutter 2019), then the Adam update with g' = g
///
/// m and v start at 0. Every parameter takes part, the quantizers' learnable
/// steps (and activation offsets, DSQ's alpha) included; steps are then clamped to >= min_step,
/// bounded parameters (DSQ's alpha) to their [lower, upper]
/// (a NaN stays NaN, so divergence is still detected). Adam's update is invariant
/// to a constant scale c of g (for |c g| >> eps), which is why the STE x 0.30
/// control trains like the STE under Adam/AdamW.
class optimizer {
 public:
  optimizer(optimizer_kind kind, std::vector<parameter> params, optimizer_settings settings = {})
      : kind_(kind), settings_(settings), params_(std::move(params)) {
    for (parameter const& p : params_) {
      first_.emplace_back(p.size, 0.0f);
      if (kind_ != optimizer_kind::sgd) {
        second_.emplace_back(p.size, 0.0f);
      }
    }
  }

  void step(float lr) {
    ++t_;
    const float momentum = settings_.momentum;
    const float beta1 = settings_.beta1;
    const float beta2 = settings_.beta2;
    const float epsilon = settings_.epsilon;
    const float decay = settings_.weight_decay;
    const auto correction1 = static_cast<float>(1.0 - std::pow(static_cast<double>(beta1), t_));
    const auto correction2 = static_cast<float>(1.0 - std::pow(static_cast<double>(beta2), t_));
    for (std::size_t k = 0; k < params_.size(); ++k) {
      parameter const& p = params_[k];
      float* m = first_[k].data();
      // Skipped entirely when lambda = 0: 0 * Inf would turn an overflowing weight into NaN.
      const bool decays = p.decays && decay != 0.0f;
      for (std::size_t i = 0; i < p.size; ++i) {
        float g = p.grad[i];
        if (kind_ == optimizer_kind::sgd) {
          if (decays) g += decay * p.value[i];
          m[i] = momentum * m[i] + g;
          p.value[i] -= lr * m[i];
        } else {
          if (decays) {
            if (kind_ == optimizer_kind::adamw) {
              p.value[i] -= lr * decay * p.value[i];
            } else {
              g += decay * p.value[i];
            }
          }
          float* v = second_[k].data();
          m[i] = beta1 * m[i] + (1.0f - beta1) * g;
          v[i] = beta2 * v[i] + (1.0f - beta2) * g * g;
          p.value[i] -= lr * (m[i] / correction1) / (std::sqrt(v[i] / correction2) + epsilon);
        }
        if (p.positive && !(p.value[i] >= min_step)) {
          p.value[i] = std::isnan(p.value[i]) ? p.value[i] : min_step;
        }
        if (p.value[i] < p.lower) p.value[i] = p.lower;  // false for NaN: it stays
        if (p.value[i] > p.upper) p.value[i] = p.upper;
      }
    }
  }

  /// Updates done so far (t of the last step).
  [[nodiscard]] int steps_taken() const noexcept { return t_; }

 private:
  optimizer_kind kind_;
  optimizer_settings settings_;
  std::vector<parameter> params_;
  std::vector<std::vector<float>> first_, second_;
  int t_ = 0;
};

/// How every run of a sweep trains.
struct schedule {
  int epochs = 6;
  int batch = 128;
  std::size_t train_limit = 0;  ///< use only the first N (shuffled) training images; 0 = all
  optimizer_kind optimizer = optimizer_kind::sgd;
  optimizer_settings optimizer_hyper;  ///< betas, eps, momentum, weight decay
  bool cosine = true;           ///< cosine decay of the learning rate to 0 over the run
  int activation_bits = 0;      ///< 4 = unsigned 4-bit hidden activations (learnable step + offset)
  int log_points_per_epoch = 10;
};

/// One run of the sweep.
struct run_spec {
  method m = method::fp32;
  float lr = 0.1f;
  std::uint64_t seed = 1;
};

struct curve_point {
  double epoch;       ///< fractional epoch at the end of the logged window
  double train_loss;  ///< mean training loss over the window
};

struct epoch_record {
  int epoch;
  double train_loss;     ///< mean over the epoch
  double test_accuracy;  ///< full test set, after the epoch
  double seconds;        ///< since the run started
};

/// What a run produced.
struct run_result {
  run_spec spec;
  std::vector<curve_point> curve;
  std::vector<epoch_record> epochs;
  bool diverged = false;
  std::string divergence;          ///< why, when diverged
  double test_accuracy = 0.0;      ///< after the last completed epoch (NaN if none)
  double seconds = 0.0;
  int max_levels_per_channel = 0;  ///< most distinct quantized weight values in one row (quantized layers)
  bool parameters_finite = true;
};

/// Progress callback: run, epoch (1-based), fraction of the epoch done, running loss, last test accuracy.
using progress_callback = std::function<void(run_spec const&, int, double, double, double)>;

/// Accuracy of the model on a split, in batches of 1000.
inline double evaluate(mlp& model, split const& data) {
  std::size_t correct = 0;
  const Eigen::Index n = data.images.cols();
  matrix batch;
  for (Eigen::Index start = 0; start < n; start += 1000) {
    const Eigen::Index count = std::min<Eigen::Index>(1000, n - start);
    batch = data.images.middleCols(start, count);
    matrix const& logits = model.forward(batch);
    correct += correct_predictions(
        logits, std::span<const std::uint8_t>(data.labels.data() + start, static_cast<std::size_t>(count)));
  }
  return static_cast<double>(correct) / static_cast<double>(n);
}

/// The most distinct values any row of any quantized weight matrix holds.
inline int max_distinct_per_channel(mlp const& model) {
  int most = 0;
  for (std::size_t l = 0; l < model.layers().size(); ++l) {
    if (!model.layers()[l].quantized_weights) {
      continue;
    }
    const row_matrix wq = model.effective_weights(l);
    for (Eigen::Index r = 0; r < wq.rows(); ++r) {
      const std::set<float> values(wq.row(r).data(), wq.row(r).data() + wq.cols());
      most = std::max(most, static_cast<int>(values.size()));
    }
  }
  return most;
}

/// A run diverges when its loss stops being a number, or when an epoch ends
/// with a mean training loss above ln(10), i.e. worse than predicting the
/// uniform distribution over the 10 classes.
inline constexpr double divergence_loss = 2.302585092994046;

/// Trains one model and records its curves. Deterministic for a given spec and schedule.
inline run_result train(dataset const& data, run_spec const& spec, schedule const& plan,
                        progress_callback const& progress = {}) {
  const auto start = std::chrono::steady_clock::now();
  const auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };

  model_config config;
  config.quantize_weights = spec.m != method::fp32;
  config.activation_bits = spec.m != method::fp32 ? plan.activation_bits : 0;
  mlp model(config, make_quantizers(spec.m, plan.activation_bits), spec.seed);
  optimizer opt(plan.optimizer, model.parameters(), plan.optimizer_hyper);

  run_result result;
  result.spec = spec;
  std::mt19937_64 shuffle_rng(spec.seed * 0x9E3779B97F4A7C15ull + 7);
  const std::size_t available = data.train.size();
  std::vector<std::uint32_t> order(available);
  std::iota(order.begin(), order.end(), 0u);
  const std::size_t used = plan.train_limit > 0 ? std::min(plan.train_limit, available) : available;
  const std::size_t batch = static_cast<std::size_t>(plan.batch);
  const std::size_t batches = used / batch;  // drop the incomplete last batch
  const std::size_t total_steps = batches * static_cast<std::size_t>(plan.epochs);
  const std::size_t log_every = std::max<std::size_t>(1, batches / static_cast<std::size_t>(plan.log_points_per_epoch));

  matrix x(data.train.images.rows(), static_cast<Eigen::Index>(batch));
  std::vector<std::uint8_t> labels(batch);
  matrix dlogits;
  double last_accuracy = std::numeric_limits<double>::quiet_NaN();
  std::size_t step = 0;

  for (int epoch = 1; epoch <= plan.epochs && !result.diverged; ++epoch) {
    // Fisher-Yates with raw 64-bit draws: the same permutation on every platform.
    for (std::size_t i = available - 1; i > 0; --i) {
      std::swap(order[i], order[shuffle_rng() % (i + 1)]);
    }
    double epoch_loss = 0.0;
    double window_loss = 0.0;
    std::size_t window = 0;
    for (std::size_t b = 0; b < batches; ++b, ++step) {
      for (std::size_t j = 0; j < batch; ++j) {
        const std::uint32_t index = order[b * batch + j];
        x.col(static_cast<Eigen::Index>(j)) = data.train.images.col(index);
        labels[j] = data.train.labels[index];
      }
      double loss = 0.0;
      try {
        loss = softmax_cross_entropy(model.forward(x), labels, dlogits);
        if (std::isfinite(loss)) {
          model.backward(dlogits);
        }
      } catch (std::invalid_argument const& e) {  // a step became NaN: the front-end refuses it
        result.diverged = true;
        result.divergence = std::string(e.what()) + " in epoch " + std::to_string(epoch);
        break;
      }
      if (!std::isfinite(loss)) {
        result.diverged = true;
        result.divergence = "loss became " + std::string(std::isnan(loss) ? "NaN" : "Inf") + " in epoch " +
                            std::to_string(epoch);
        break;
      }
      const double progress_fraction = static_cast<double>(step) / static_cast<double>(total_steps);
      const double lr = plan.cosine ? 0.5 * spec.lr * (1.0 + std::cos(3.14159265358979323846 * progress_fraction))
                                    : spec.lr;
      opt.step(static_cast<float>(lr));

      epoch_loss += loss;
      window_loss += loss;
      ++window;
      if (window == log_every || b + 1 == batches) {
        const double fraction = static_cast<double>(b + 1) / static_cast<double>(batches);
        result.curve.push_back({epoch - 1 + fraction, window_loss / static_cast<double>(window)});
        if (progress) {
          progress(spec, epoch, fraction, window_loss / static_cast<double>(window), last_accuracy);
        }
        window_loss = 0.0;
        window = 0;
      }
    }
    if (result.diverged) {
      break;
    }
    epoch_loss /= static_cast<double>(batches);
    try {
      last_accuracy = evaluate(model, data.test);
    } catch (std::invalid_argument const& e) {  // the last update made a step NaN
      result.diverged = true;
      result.divergence = std::string(e.what()) + " after epoch " + std::to_string(epoch);
      break;
    }
    result.epochs.push_back({epoch, epoch_loss, last_accuracy, elapsed()});
    if (progress) {
      progress(spec, epoch, 1.0, epoch_loss, last_accuracy);
    }
    if (epoch_loss > divergence_loss) {
      result.diverged = true;
      result.divergence = "mean training loss " + std::to_string(epoch_loss) + " > ln 10 after epoch " +
                          std::to_string(epoch);
    }
  }

  for (parameter const& p : model.parameters()) {
    for (std::size_t i = 0; i < p.size; ++i) {
      result.parameters_finite = result.parameters_finite && std::isfinite(p.value[i]);
    }
  }
  result.test_accuracy = result.epochs.empty() ? std::numeric_limits<double>::quiet_NaN()
                                               : result.epochs.back().test_accuracy;
  result.max_levels_per_channel = result.parameters_finite ? max_distinct_per_channel(model) : 0;
  result.seconds = elapsed();
  return result;
}

}  // namespace qat
