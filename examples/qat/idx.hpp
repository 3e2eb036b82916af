// examples/qat/idx.hpp: reading the gzip'd IDX files of (Fashion-)MNIST with zlib.
//
// IDX format (LeCun): a big-endian header, then raw bytes.
//   images: magic 0x00000803, count, rows, cols, then count*rows*cols pixels
//   labels: magic 0x00000801, count, then count labels
// Every check failure throws std::runtime_error naming the file, so a missing
// or corrupt dataset is a clear message, never a crash or silent garbage.
#pragma once

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <Eigen/Core>
#include <zlib.h>

namespace qat {

/// Thrown for a missing, unreadable or malformed dataset file; what() names the path.
class dataset_error : public std::runtime_error {
 public:
  dataset_error(std::string const& path, std::string const& problem) : std::runtime_error(path + ": " + problem) {}
};

/// Magic numbers of the IDX files: 0x08 = unsigned byte data, then the rank.
inline constexpr std::uint32_t idx_images_magic = 0x00000803;
inline constexpr std::uint32_t idx_labels_magic = 0x00000801;

namespace idx_detail {

struct gz_closer {
  void operator()(gzFile_s* f) const noexcept { gzclose(f); }
};

/// A gzip stream that reads exactly the bytes asked for or throws.
class gz_reader {
 public:
  explicit gz_reader(std::string path) : path_(std::move(path)) {
    std::error_code ec;
    if (!std::filesystem::exists(path_, ec)) {
      throw dataset_error(path_, "file not found (Debian: apt-get install dataset-fashion-mnist, or pass --data DIR)");
    }
    errno = 0;
    file_.reset(gzopen(path_.c_str(), "rb"));
    if (!file_) {
      throw dataset_error(path_, std::string("cannot open: ") + (errno ? std::strerror(errno) : "zlib out of memory"));
    }
    gzbuffer(file_.get(), 1 << 17);
  }

  /// Reads n bytes; `what` describes them in the error message.
  void read(void* into, std::size_t n, const char* what) {
    auto* out = static_cast<unsigned char*>(into);
    while (n > 0) {
      const unsigned chunk = n > (1u << 30) ? (1u << 30) : static_cast<unsigned>(n);
      const int got = gzread(file_.get(), out, chunk);
      if (got < 0) {
        int code = 0;
        const char* message = gzerror(file_.get(), &code);
        throw dataset_error(path_, std::string("corrupt gzip data while reading ") + what + ": " + message);
      }
      if (got == 0) {
        throw dataset_error(path_, std::string("file ends early while reading ") + what + " (truncated download?)");
      }
      out += got;
      n -= static_cast<std::size_t>(got);
    }
  }

  std::uint32_t read_big_endian_u32(const char* what) {
    unsigned char b[4];
    read(b, 4, what);
    return (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) | (std::uint32_t{b[2]} << 8) | std::uint32_t{b[3]};
  }

  /// The stream must be finished: trailing bytes mean a file of another shape.
  void expect_end() {
    unsigned char extra = 0;
    const int got = gzread(file_.get(), &extra, 1);
    if (got < 0) {
      int code = 0;
      throw dataset_error(path_, std::string("corrupt gzip data at the end: ") + gzerror(file_.get(), &code));
    }
    if (got != 0) {
      throw dataset_error(path_, "has bytes after the data its header announces");
    }
  }

  std::string const& path() const noexcept { return path_; }

 private:
  std::string path_;
  std::unique_ptr<gzFile_s, gz_closer> file_;
};

inline void expect_magic(gz_reader& in, std::uint32_t expected, const char* kind) {
  const std::uint32_t magic = in.read_big_endian_u32("the magic number");
  if (magic != expected) {
    char text[96];
    std::snprintf(text, sizeof text, "magic number 0x%08x is not 0x%08x (an IDX %s file)", magic, expected, kind);
    throw dataset_error(in.path(), text);
  }
}

}  // namespace idx_detail

/// Images as bytes: count images of rows x cols pixels, image i at pixels[i*rows*cols].
struct idx_images {
  std::uint32_t count = 0;
  std::uint32_t rows = 0;
  std::uint32_t cols = 0;
  std::vector<std::uint8_t> pixels;
};

/// Reads an IDX3 image file (gzip'd or plain). `expected_count` (0 = any) and
/// the 28 x 28 image size are checked.
inline idx_images read_idx_images(std::string const& path, std::uint32_t expected_count = 0) {
  idx_detail::gz_reader in(path);
  idx_detail::expect_magic(in, idx_images_magic, "images");
  idx_images images;
  images.count = in.read_big_endian_u32("the image count");
  images.rows = in.read_big_endian_u32("the row count");
  images.cols = in.read_big_endian_u32("the column count");
  if (images.rows != 28 || images.cols != 28) {
    throw dataset_error(path, "images are " + std::to_string(images.rows) + "x" + std::to_string(images.cols) +
                                  ", expected 28x28");
  }
  if (expected_count != 0 && images.count != expected_count) {
    throw dataset_error(path, "holds " + std::to_string(images.count) + " images, expected " +
                                  std::to_string(expected_count));
  }
  images.pixels.resize(std::size_t{images.count} * images.rows * images.cols);
  in.read(images.pixels.data(), images.pixels.size(), "the pixels");
  in.expect_end();
  return images;
}

/// Reads an IDX1 label file; every label must be a class 0..9.
inline std::vector<std::uint8_t> read_idx_labels(std::string const& path, std::uint32_t expected_count = 0) {
  idx_detail::gz_reader in(path);
  idx_detail::expect_magic(in, idx_labels_magic, "labels");
  const std::uint32_t count = in.read_big_endian_u32("the label count");
  if (expected_count != 0 && count != expected_count) {
    throw dataset_error(path, "holds " + std::to_string(count) + " labels, expected " + std::to_string(expected_count));
  }
  std::vector<std::uint8_t> labels(count);
  in.read(labels.data(), labels.size(), "the labels");
  in.expect_end();
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] > 9) {
      throw dataset_error(path, "label " + std::to_string(i) + " is " + std::to_string(labels[i]) + ", not a class 0..9");
    }
  }
  return labels;
}

/// One split: pixels as a 784 x count column-major matrix (one image per
/// column, standardised), and the labels.
struct split {
  Eigen::MatrixXf images;
  std::vector<std::uint8_t> labels;
  [[nodiscard]] std::size_t size() const noexcept { return labels.size(); }
};

/// The standard splits of Fashion-MNIST.
struct dataset {
  split train;
  split test;
  float pixel_mean = 0;  ///< of the training pixels in [0, 1], used for both splits
  float pixel_std = 1;
};

/// Default location of Debian's dataset-fashion-mnist package.
inline constexpr const char* default_data_dir = "/usr/share/datasets/fashion-mnist";

/// Loads {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz from `dir`: 60000
/// training and 10000 test images, checked against their labels. Pixels are
/// scaled to [0, 1] and standardised with the training set's mean and
/// standard deviation.
inline dataset load_fashion_mnist(std::string const& dir = default_data_dir) {
  const auto file = [&](const char* name) { return (std::filesystem::path(dir) / name).string(); };
  const idx_images train_images = read_idx_images(file("train-images-idx3-ubyte.gz"), 60000);
  const idx_images test_images = read_idx_images(file("t10k-images-idx3-ubyte.gz"), 10000);
  dataset data;
  data.train.labels = read_idx_labels(file("train-labels-idx1-ubyte.gz"), 60000);
  data.test.labels = read_idx_labels(file("t10k-labels-idx1-ubyte.gz"), 10000);

  double sum = 0.0;
  double sum_squares = 0.0;
  for (const std::uint8_t p : train_images.pixels) {
    const double v = p / 255.0;
    sum += v;
    sum_squares += v * v;
  }
  const double n = static_cast<double>(train_images.pixels.size());
  const double mean = sum / n;
  const double std_dev = std::sqrt(sum_squares / n - mean * mean);
  data.pixel_mean = static_cast<float>(mean);
  data.pixel_std = static_cast<float>(std_dev);

  const auto to_matrix = [&](idx_images const& images) {
    const Eigen::Index pixels = Eigen::Index{images.rows} * images.cols;
    Eigen::MatrixXf m(pixels, Eigen::Index{images.count});
    const float scale = static_cast<float>(1.0 / (255.0 * std_dev));
    const float shift = static_cast<float>(mean / std_dev);
    for (std::size_t i = 0; i < images.pixels.size(); ++i) {
      m.data()[i] = static_cast<float>(images.pixels[i]) * scale - shift;  // image-major bytes = column-major
    }
    return m;
  };
  data.train.images = to_matrix(train_images);
  data.test.images = to_matrix(test_images);
  return data;
}

}  // namespace qat
