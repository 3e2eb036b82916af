// The demo's building blocks (examples/qat/): the IDX reader on files written
// here (good and broken), the MLP's backward pass against finite differences,
// and the quantized model's weights against the 2-bit grid.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <set>
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
