// The demo's building blocks (examples/qat/): the IDX reader on files written
// here (good and broken), the MLP's backward pass against finite differences,
// the quantized model's weights against the 2-bit grid, and the paper's
// baselines (DSQ, ParetoQ's SEQ, EWGS) wired into the model.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <Eigen/Core>
#include <unistd.h>
#include <zlib.h>

#include "qat/idx.hpp"
#include "qat/mlp.hpp"
#include "qat/trainer.hpp"

namespace fs = std::filesystem;

namespace {

/// A fresh folder under the system temp dir, removed at the end of the test.
struct temp_dir {
  fs::path path;
  temp_dir() {
    path = fs::temp_directory_path() / ("stableqat_test_demo_" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~temp_dir() { fs::remove_all(path); }
};

void put_u32(std::vector<unsigned char>& bytes, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back(static_cast<unsigned char>(v >> shift));
}

void write_gzip(fs::path const& path, std::vector<unsigned char> const& bytes) {
  gzFile f = gzopen(path.string().c_str(), "wb");
  REQUIRE(f != nullptr);
  REQUIRE(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) == static_cast<int>(bytes.size()));
  gzclose(f);
}

std::vector<unsigned char> image_file(std::uint32_t magic, std::uint32_t count, std::uint32_t rows, std::uint32_t cols,
                                      std::size_t pixel_bytes) {
  std::vector<unsigned char> bytes;
  put_u32(bytes, magic);
  put_u32(bytes, count);
  put_u32(bytes, rows);
  put_u32(bytes, cols);
  for (std::size_t i = 0; i < pixel_bytes; ++i) bytes.push_back(static_cast<unsigned char>(i * 7 % 256));
  return bytes;
}

std::vector<unsigned char> label_file(std::uint32_t count, std::vector<unsigned char> const& labels) {
  std::vector<unsigned char> bytes;
  put_u32(bytes, qat::idx_labels_magic);
  put_u32(bytes, count);
  bytes.insert(bytes.end(), labels.begin(), labels.end());
  return bytes;
}

template <class F>
std::string dataset_error_of(F&& f) {
  try {
    f();
  } catch (qat::dataset_error const& e) {
    return e.what();
  }
  return "no dataset_error";
}

bool contains(std::string const& text, std::string const& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("IDX reader: a valid image and label file read back byte for byte") {
  temp_dir dir;
  const auto images_path = dir.path / "images.gz";
  const auto labels_path = dir.path / "labels.gz";
  write_gzip(images_path, image_file(qat::idx_images_magic, 3, 28, 28, 3 * 784));
  write_gzip(labels_path, label_file(3, {9, 0, 4}));

  const qat::idx_images images = qat::read_idx_images(images_path.string(), 3);
  CHECK(images.count == 3);
  CHECK(images.rows == 28);
  CHECK(images.cols == 28);
  REQUIRE(images.pixels.size() == 3 * 784);
  CHECK(images.pixels[0] == 0);
  CHECK(images.pixels[1] == 7);
  CHECK(images.pixels[2000] == static_cast<std::uint8_t>(2000 * 7 % 256));
  CHECK(qat::read_idx_labels(labels_path.string(), 3) == std::vector<std::uint8_t>{9, 0, 4});
}

TEST_CASE("IDX reader: missing or corrupt files are errors that name the path") {
  temp_dir dir;
  const auto path = (dir.path / "bad.gz").string();

  CHECK(dataset_error_of([&] { qat::read_idx_images(path); }) ==
        path + ": file not found (Debian: apt-get install dataset-fashion-mnist, or pass --data DIR)");

  write_gzip(path, image_file(0x00000801, 1, 28, 28, 784));
  CHECK(dataset_error_of([&] { qat::read_idx_images(path); }) ==
        path + ": magic number 0x00000801 is not 0x00000803 (an IDX images file)");

  write_gzip(path, image_file(qat::idx_images_magic, 2, 28, 28, 784 + 10));
  CHECK(contains(dataset_error_of([&] { qat::read_idx_images(path); }), path + ": file ends early"));

  write_gzip(path, image_file(qat::idx_images_magic, 1, 28, 28, 785));
  CHECK(dataset_error_of([&] { qat::read_idx_images(path); }) ==
        path + ": has bytes after the data its header announces");

  write_gzip(path, image_file(qat::idx_images_magic, 1, 32, 32, 1024));
  CHECK(dataset_error_of([&] { qat::read_idx_images(path); }) == path + ": images are 32x32, expected 28x28");

  write_gzip(path, image_file(qat::idx_images_magic, 1, 28, 28, 784));
  CHECK(dataset_error_of([&] { qat::read_idx_images(path, 60000); }) ==
        path + ": holds 1 images, expected 60000");

  write_gzip(path, label_file(2, {3, 10}));
  CHECK(dataset_error_of([&] { qat::read_idx_labels(path); }) == path + ": label 1 is 10, not a class 0..9");

  // A gzip stream whose compressed bytes are damaged: zlib reports it, we name the file.
  std::vector<unsigned char> good = image_file(qat::idx_images_magic, 4, 28, 28, 4 * 784);
  write_gzip(path, good);
  {
    std::FILE* f = std::fopen(path.c_str(), "r+b");
    REQUIRE(f != nullptr);
    std::fseek(f, 40, SEEK_SET);
    const unsigned char junk[16] = {0xff, 0x00, 0xff, 0x13, 0x37, 0xff, 0x00, 0x42,
                                    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00};
    std::fwrite(junk, 1, sizeof junk, f);
    std::fclose(f);
  }
  const std::string damaged = dataset_error_of([&] { qat::read_idx_images(path); });
  CHECK(damaged.rfind(path + ": ", 0) == 0);
  CHECK(damaged != "no dataset_error");

  // The loader names the first missing file of a folder.
  const std::string missing = dataset_error_of([&] { qat::load_fashion_mnist(dir.path.string()); });
  CHECK(contains(missing, (dir.path / "train-images-idx3-ubyte.gz").string() + ": file not found"));
}

TEST_CASE("softmax cross-entropy matches the closed form on a 3-class example") {
  qat::matrix logits(3, 2);
  logits << 1.0f, 0.0f, 2.0f, 0.0f, 0.5f, 3.0f;  // columns: (1, 2, 0.5), (0, 0, 3)
  const std::vector<std::uint8_t> labels{1, 0};
  qat::matrix dlogits;
  const double loss = qat::softmax_cross_entropy(logits, labels, dlogits);
  const double z0 = std::exp(1.0) + std::exp(2.0) + std::exp(0.5);
  const double z1 = 2.0 + std::exp(3.0);
  const double expected = 0.5 * ((std::log(z0) - 2.0) + (std::log(z1) - 0.0));
  CHECK(loss == doctest::Approx(expected).epsilon(1e-6));
  CHECK(dlogits(1, 0) == doctest::Approx((std::exp(2.0) / z0 - 1.0) / 2.0).epsilon(1e-5));
  CHECK(dlogits(2, 1) == doctest::Approx((std::exp(3.0) / z1) / 2.0).epsilon(1e-5));
  CHECK(qat::correct_predictions(logits, labels) == 1);  // argmaxes are 1 and 2, labels 1 and 0
}

TEST_CASE("FP32 MLP backward agrees with central finite differences of the loss") {
  qat::model_config config;
  config.widths = {6, 5, 4, 3};
  qat::mlp model(config, nullptr, 42);
  qat::matrix x(6, 4);
  for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = std::sin(0.7f * static_cast<float>(i) + 0.3f);
  const std::vector<std::uint8_t> labels{0, 2, 1, 2};
  qat::matrix dlogits;
  const auto loss_at = [&] { return qat::softmax_cross_entropy(model.forward(x), labels, dlogits); };

  loss_at();
  model.backward(dlogits);
  auto params = model.parameters();
  std::vector<std::vector<float>> analytic;
  for (auto const& p : params) analytic.emplace_back(p.grad, p.grad + p.size);

  // Central differences in float with h = 1e-2; the loss is smooth away from
  // ReLU kinks, which these inputs avoid (checked by the tolerance).
  const float h = 1e-2f;
  for (std::size_t k = 0; k < params.size(); ++k) {
    for (std::size_t i = 0; i < params[k].size; i += 3) {
      float& w = params[k].value[i];
      const float saved = w;
      w = saved + h;
      const double up = loss_at();
      w = saved - h;
      const double down = loss_at();
      w = saved;
      const double numeric = (up - down) / (2.0 * h);
      CHECK(analytic[k][i] == doctest::Approx(numeric).epsilon(2e-2).scale(1e-3));
    }
  }
}

TEST_CASE("2-bit model: every weight row is its own step times a level of {-2, -1, 0, 1}") {
  qat::model_config config;
  config.widths = {20, 12, 8, 3};
  config.quantize_weights = true;
  qat::mlp model(config, qat::make_quantizers(qat::method::fourier1, 0), 7);
  for (std::size_t l = 0; l < 2; ++l) {
    qat::dense_layer const& layer = model.layers()[l];
    REQUIRE(layer.quantized_weights);
    const qat::row_matrix wq = model.effective_weights(l);
    for (Eigen::Index r = 0; r < wq.rows(); ++r) {
      std::set<float> levels;
      for (Eigen::Index c = 0; c < wq.cols(); ++c) {
        const double level = static_cast<double>(wq(r, c)) / static_cast<double>(layer.steps(r));
        CHECK(std::fabs(level - std::nearbyint(level)) < 1e-6);
        CHECK(level >= -2.0);
        CHECK(level <= 1.0);
        levels.insert(wq(r, c));
      }
      CHECK(levels.size() <= 4);
    }
  }
  CHECK_FALSE(model.layers()[2].quantized_weights);  // the output layer stays FP32
  CHECK(qat::max_distinct_per_channel(model) <= 4);
  CHECK(qat::max_distinct_per_channel(model) >= 3);  // a 20-wide row of random weights uses most levels
}

TEST_CASE("4-bit activations: hidden inputs are offset + step * {0..15} after a forward pass") {
  qat::model_config config;
  config.widths = {10, 16, 8, 3};
  config.quantize_weights = true;
  config.activation_bits = 4;
  qat::mlp model(config, qat::make_quantizers(qat::method::ste, 4), 3);
  qat::matrix x(10, 5);
  for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = std::cos(1.3f * static_cast<float>(i));
  model.forward(x);
  for (std::size_t l = 1; l < 3; ++l) {
    qat::dense_layer const& layer = model.layers()[l];
    REQUIRE(layer.quantized_input);
    const float step = layer.input_step(0);
    const float offset = layer.input_offset(0);
    CHECK(step > 0.0f);
    for (Eigen::Index i = 0; i < layer.input.size(); ++i) {
      const double level = (static_cast<double>(layer.input.data()[i]) - offset) / step;
      CHECK(std::fabs(level - std::nearbyint(level)) < 1e-5);
      CHECK(level >= -1e-6);
      CHECK(level <= 15.0 + 1e-6);
    }
  }
}

// --- optimizers (examples/qat/trainer.hpp) -----------------------------------
// References are closed forms or values computed by hand (mpmath, 40 digits,
// with the float32 values of beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f), never
// the optimizer's own output.

namespace {

/// One tensor of n floats with its gradient, as mlp::parameters() exposes it.
struct toy_tensor {
  std::vector<float> value, grad;
  toy_tensor(std::size_t n, float v) : value(n, v), grad(n, 0.0f) {}
  qat::parameter as_parameter(bool positive, bool decays) {
    return {value.data(), grad.data(), value.size(), positive, decays};
  }
};

}  // namespace

TEST_CASE("Adam: three hand-computed bias-corrected updates") {
  // p0 = 0.5, lr = 1/64, gradients 1, -2, 0.5:
  //   t=1: m = 0.1, v = 0.001, m_hat = 1, v_hat = 1, p = 0.5 - lr / (1 + eps)
  //   t=2, t=3: values from mpmath below.
  for (const auto kind : {qat::optimizer_kind::adam, qat::optimizer_kind::adamw}) {
    toy_tensor w(1, 0.5f);
    qat::optimizer opt(kind, {w.as_parameter(false, true)});
    const double expected[] = {0.48437500015625, 0.49009536793683337, 0.4922311595607122};
    const float grads[] = {1.0f, -2.0f, 0.5f};
    for (int t = 0; t < 3; ++t) {
      w.grad[0] = grads[t];
      opt.step(1.0f / 64.0f);
      CHECK(static_cast<double>(w.value[0]) == doctest::Approx(expected[t]).epsilon(2e-7));
    }
    CHECK(opt.steps_taken() == 3);
  }
}

TEST_CASE("Adam: a constant gradient g moves every step by lr g / (|g| + eps), whatever its scale") {
  // With g constant, m_t = (1 - b1^t) g and v_t = (1 - b2^t) g^2, so the
  // bias-corrected ratio is g / (|g| + eps) at every step: p_t = p0 - t lr g / (|g| + eps).
  const int steps = 200;
  const float lr = 1e-3f;
  for (const float g : {0.3f, -2e-3f, 0.3f * 0.302457f, 1e-8f}) {
    toy_tensor w(5, 0.25f);
    for (float& d : w.grad) d = g;
    qat::optimizer opt(qat::optimizer_kind::adam, {w.as_parameter(false, true)});
    for (int t = 0; t < steps; ++t) opt.step(lr);
    const long double gl = g;
    const long double expected = 0.25L - steps * static_cast<long double>(lr) * gl / (fabsl(gl) + 1e-8L);
    for (const float p : w.value) CHECK(static_cast<double>(p) == doctest::Approx(static_cast<double>(expected)).epsilon(1e-5));
  }
  // Scale invariance (the reason the STE x 0.30 control equals the STE under Adam):
  // g and 0.302457 g give the same trajectory up to eps / |g| and float rounding.
  toy_tensor a(1, 0.0f), b(1, 0.0f);
  qat::optimizer oa(qat::optimizer_kind::adam, {a.as_parameter(false, false)});
  qat::optimizer ob(qat::optimizer_kind::adam, {b.as_parameter(false, false)});
  for (int t = 0; t < 100; ++t) {
    const float g = 1e-2f * std::sin(0.37f * static_cast<float>(t)) + 4e-3f;
    a.grad[0] = g;
    b.grad[0] = g * 0.302457f;
    oa.step(1e-2f);
    ob.step(1e-2f);
  }
  CHECK(std::fabs(a.value[0]) > 0.05f);  // it moved ...
  CHECK(static_cast<double>(b.value[0]) == doctest::Approx(static_cast<double>(a.value[0])).epsilon(1e-4));  // ... identically
}

TEST_CASE("AdamW decays weights decoupled: p_t = p0 prod(1 - lr_k lambda) with a zero gradient") {
  // g = 0 gives m = v = 0 and an Adam term 0 / (0 + eps) = 0, so only the
  // decay acts. Steps (positive) and biases/offsets (decays = false) are not decayed.
  qat::optimizer_settings s;
  s.weight_decay = 0.1f;
  toy_tensor w(3, 2.0f), step(2, 0.05f), bias(2, -1.0f);
  qat::optimizer opt(qat::optimizer_kind::adamw,
                     {w.as_parameter(false, true), step.as_parameter(true, false), bias.as_parameter(false, false)}, s);
  const float lrs[] = {0.5f, 0.25f, 0.125f, 1.0f};
  long double expected = 2.0L;
  for (const float lr : lrs) {
    opt.step(lr);
    expected *= 1.0L - static_cast<long double>(lr) * 0.1L;
  }
  for (const float p : w.value) CHECK(static_cast<double>(p) == doctest::Approx(static_cast<double>(expected)).epsilon(1e-6));
  CHECK(static_cast<double>(expected) == doctest::Approx(2.0 * 0.95 * 0.975 * 0.9875 * 0.9));
  for (const float p : step.value) CHECK(p == 0.05f);
  for (const float p : bias.value) CHECK(p == -1.0f);
}

TEST_CASE("Adam's weight decay is L2 in the gradient (coupled), unlike AdamW's") {
  // g' = lambda p = 0.2 at the first step: the normalised update is lr * 0.2 / (0.2 + eps) ~ lr,
  // not AdamW's lr * lambda * p = 0.02 lr.
  qat::optimizer_settings s;
  s.weight_decay = 0.1f;
  toy_tensor adam(1, 2.0f), adamw(1, 2.0f);
  qat::optimizer oa(qat::optimizer_kind::adam, {adam.as_parameter(false, true)}, s);
  qat::optimizer ow(qat::optimizer_kind::adamw, {adamw.as_parameter(false, true)}, s);
  oa.step(0.01f);
  ow.step(0.01f);
  CHECK(static_cast<double>(adam.value[0]) == doctest::Approx(2.0 - 0.01 * 0.2 / (0.2 + 1e-8)).epsilon(1e-7));
  CHECK(static_cast<double>(adamw.value[0]) == doctest::Approx(2.0 * (1.0 - 0.01 * 0.1)).epsilon(1e-7));
}

TEST_CASE("SGD with momentum: constant gradient, p_t = p0 - lr g sum_k (1 - mu^k) / (1 - mu)") {
  toy_tensor w(4, 1.0f);
  for (float& d : w.grad) d = 0.5f;
  qat::optimizer opt(qat::optimizer_kind::sgd, {w.as_parameter(false, true)});
  const int steps = 30;
  for (int t = 0; t < steps; ++t) opt.step(0.01f);
  long double sum = 0.0L;
  for (int k = 1; k <= steps; ++k) sum += (1.0L - powl(0.9L, k)) / 0.1L;
  const long double expected = 1.0L - 0.01L * 0.5L * sum;
  for (const float p : w.value) CHECK(static_cast<double>(p) == doctest::Approx(static_cast<double>(expected)).epsilon(1e-5));
}

TEST_CASE("optimizers keep learnable steps >= min_step and let NaN through") {
  for (const auto kind : {qat::optimizer_kind::sgd, qat::optimizer_kind::adam, qat::optimizer_kind::adamw}) {
    toy_tensor step(2, 0.01f);
    step.grad = {5.0f, std::nanf("")};
    qat::optimizer opt(kind, {step.as_parameter(true, false)});
    opt.step(1.0f);
    CHECK(step.value[0] == qat::min_step);
    CHECK(std::isnan(step.value[1]));
  }
}

TEST_CASE("methods: every table row parses from its key; unknown keys name the argument and the choices") {
  for (qat::method_info const& row : qat::method_table) {
    CHECK(qat::parse_method_key(row.key) == row.m);
    CHECK(std::string(qat::method_key(row.m)) == row.key);
    CHECK(std::string(qat::method_label(row.m)) == row.label);
  }
  std::string message;
  try {
    qat::parse_method_key("lsq");
  } catch (std::invalid_argument const& e) {
    message = e.what();
  }
  CHECK(message ==
        "--methods: unknown method 'lsq' (known: fp32, ste, fourier1, fourier3, ste_scaled, dsq, paretoq, ewgs)");
}

// --- the paper's baselines in the demo (issue 12) ------------------------------

namespace {

/// A small 2-bit model of `m` (layers 20 -> 12 -> 8 -> 3) with weights from seed 7.
qat::mlp small_model(qat::method m, int activation_bits = 0) {
  qat::model_config config;
  config.widths = {20, 12, 8, 3};
  config.quantize_weights = true;
  config.activation_bits = activation_bits;
  return qat::mlp(config, qat::make_quantizers(m, activation_bits), 7);
}

}  // namespace

TEST_CASE("paretoq: alpha starts at max|w_row| and every weight is alpha times one of -3/4, -1/4, 1/4, 3/4") {
  qat::mlp model = small_model(qat::method::paretoq);
  CHECK(model.weight_grid().is_stretched_elastic());
  for (std::size_t l = 0; l < 2; ++l) {
    qat::dense_layer const& layer = model.layers()[l];
    REQUIRE(layer.quantized_weights);
    const qat::row_matrix wq = model.effective_weights(l);
    for (Eigen::Index r = 0; r < wq.rows(); ++r) {
      double largest = 0.0;
      for (Eigen::Index c = 0; c < layer.w.cols(); ++c) largest = std::max(largest, std::fabs(double{layer.w(r, c)}));
      CHECK(double{layer.steps(r)} == doctest::Approx(largest).epsilon(1e-7));
      for (Eigen::Index c = 0; c < wq.cols(); ++c) {
        const double w = layer.w(r, c);
        const double level = double{wq(r, c)} / double{layer.steps(r)};
        // Independent transcription of SEQ: u = clamp(w/alpha, +-0.99), q = (round(2u - 1/2) + 1/2)/2.
        const double u = std::clamp(w / double{layer.steps(r)}, -0.99, 0.99);
        CHECK(level == doctest::Approx((std::nearbyint(2.0 * u - 0.5) + 0.5) / 2.0).epsilon(1e-6));
        CHECK((std::fabs(std::fabs(level) - 0.25) < 1e-6 || std::fabs(std::fabs(level) - 0.75) < 1e-6));
      }
    }
  }
}

TEST_CASE("dsq: one learnable alpha per quantizer, 0.2 at start, bounded to [1e-3, 0.999] by the optimizer") {
  qat::mlp model = small_model(qat::method::dsq, 4);
  CHECK(model.layers()[0].weight_params.size() == 1);
  CHECK(model.layers()[0].weight_params(0) == qat::dsq_initial_alpha);
  CHECK(model.layers()[1].input_params.size() == 1);
  CHECK(model.layers()[2].weight_params.size() == 0);  // the FP32 output layer has no quantizer
  std::size_t bounded = 0;
  for (qat::parameter const& p : model.parameters()) {
    if (p.lower == qat::dsq_alpha_min && p.upper == qat::dsq_alpha_max) bounded += p.size;
  }
  CHECK(bounded == 4);  // weights of layers 0 and 1, inputs of layers 1 and 2

  // The weights stay on the integer grid {-2, -1, 0, 1} * step (DSQ's level, ties down).
  const qat::row_matrix wq = model.effective_weights(0);
  for (Eigen::Index i = 0; i < wq.size(); ++i) {
    const double level = double{wq.data()[i]} / double{model.layers()[0].steps(i / wq.cols())};
    CHECK(std::fabs(level - std::nearbyint(level)) < 1e-6);
    CHECK(level >= -2.0);
    CHECK(level <= 1.0);
  }

  // A huge gradient pushes alpha out of (0, 1): the update lands on the bounds, NaN passes.
  std::vector<float> alpha{0.5f, 0.5f, 0.5f}, grad{1e6f, -1e6f, std::nanf("")};
  qat::optimizer opt(qat::optimizer_kind::sgd,
                     {{alpha.data(), grad.data(), 3, false, false, qat::dsq_alpha_min, qat::dsq_alpha_max}});
  opt.step(1.0f);
  CHECK(alpha[0] == qat::dsq_alpha_min);
  CHECK(alpha[1] == qat::dsq_alpha_max);
  CHECK(std::isnan(alpha[2]));
}

TEST_CASE("dsq and ewgs: the model's weight gradient is the estimator's, transcribed independently") {
  for (qat::method m : {qat::method::dsq, qat::method::ewgs}) {
    CAPTURE(qat::method_key(m));
    qat::mlp model = small_model(m);
    qat::matrix x(20, 6);
    for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = std::sin(0.7f * static_cast<float>(i));
    const qat::matrix logits = model.forward(x);
    qat::matrix dlogits = qat::matrix::Constant(logits.rows(), logits.cols(), 0.1f);
    dlogits.row(0).array() -= 0.5f;
    model.backward(dlogits);
    qat::dense_layer const& layer = model.layers()[1];
    for (Eigen::Index r = 0; r < layer.w.rows(); ++r) {
      const double s = layer.steps(r);
      for (Eigen::Index c = 0; c < layer.w.cols(); ++c) {
        const double v = double{layer.w(r, c)} / s, dy = layer.dwq(r, c);
        double g = 0.0;
        if (m == qat::method::ewgs) {  // g = 1 + delta sign(dy) r inside [qmin, qmax] = [-2, 1]
          const double res = v - std::nearbyint(v);
          g = (v >= -2.0 && v <= 1.0) ? 1.0 + qat::ewgs_delta * (dy < 0 ? -1.0 : 1.0) * res : 0.0;
        } else {  // g = (1/2) scale k sech^2(k d), d = v - floor(v) - 1/2, inside (-2.5, 1.5]
          const double a = qat::dsq_initial_alpha, k = std::log(2.0 / a - 1.0), d = v - std::floor(v) - 0.5;
          g = (v > -2.5 && v <= 1.5) ? 0.5 / (1.0 - a) * k / (std::cosh(k * d) * std::cosh(k * d)) : 0.0;
        }
        CHECK(double{layer.dw(r, c)} == doctest::Approx(g * dy).epsilon(1e-5).scale(1e-7));
      }
    }
    if (m == qat::method::dsq) {
      CHECK(std::isfinite(layer.dweight_params(0)));
      CHECK(layer.dweight_params(0) != 0.0f);
    }
  }
}
