// 2-bit quantization-aware training on Fashion-MNIST: STE versus the StableQAT
// rotated-Fourier surrogate across learning rates (the `make demo` program).
//
// An MLP 784-256-128-10 (Eigen) is trained in FP32 and with 2-bit weights
// (per output channel, learnable LSQ steps) in its first two layers, the
// gradient of round() replaced by STE or by fourier_surrogate<1>{0.21}
// (optionally <3>). Each method runs at several learning rates and seeds; the
// program prints a table of test accuracy (mean ± half range over seeds, with
// diverged runs marked) and writes CSV curves and a gnuplot plot.
//
//   qat_fashion_mnist                 the default sweep (a few minutes on 2 cores)
//   qat_fashion_mnist --quick         a short sweep with pass/fail checks (CI)
//   qat_fashion_mnist --help          every option
#include <algorithm>
#include <atomic>
#include <charconv>
#include <cmath>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <Eigen/Core>

#include "qat/idx.hpp"
#include "qat/mlp.hpp"
#include "qat/progress.hpp"
#include "qat/report.hpp"
#include "qat/trainer.hpp"

namespace {

struct options {
  std::vector<qat::method> methods{qat::method::fp32, qat::method::ste, qat::method::fourier1,
                                   qat::method::ste_scaled};
  std::vector<float> lrs;  ///< empty until parsed: then --lrs, or the optimizer's default sweep
  std::vector<std::uint64_t> seeds{1, 2, 3};
  qat::schedule plan;
  std::string data_dir = qat::default_data_dir;
  std::string out_dir = "qat-demo-output";
  unsigned threads = 0;
  bool quick = false;
  bool check = false;
  bool plot = true;
};

/// The default learning-rate sweeps: one decade for SGD (where the STE starts
/// to fail), and 1e-4 .. 3e-2 for Adam/AdamW, whose step per weight is about
/// lr whatever the gradient's scale (PyTorch's default 1e-3 in the middle).
const std::vector<float> sgd_lrs{0.05f, 0.1f, 0.2f, 0.3f, 0.4f, 0.5f};
const std::vector<float> adam_lrs{1e-4f, 3e-4f, 1e-3f, 3e-3f, 1e-2f, 3e-2f};

std::string method_help() {
  std::string text;
  for (qat::method_info const& row : qat::method_table) {
    char line[160];
    std::snprintf(line, sizeof line, "                         %-11s %s\n", row.key, row.description);
    text += line;
  }
  return text;
}

void print_help() {
  std::printf(
      "usage: qat_fashion_mnist [options]\n"
      "  --quick              short sweep (fp32, ste, fourier1 or --methods, at one lr, 1 seed, 2 epochs on\n"
      "                       20000 images) and run the checks (implies --check)\n"
      "  --check              exit 1 unless: 60000/10000 images loaded, FP32 test accuracy >= 0.80,\n"
      "                       every 2-bit run finite, <= 4 distinct weight values per channel\n"
      "  --methods LIST       comma list of methods (default fp32,ste,fourier1,ste_scaled; the paper's\n"
      "                       baselines dsq,paretoq,ewgs on request):\n%s"
      "  --lrs LIST           learning rates (default: SGD 0.05,0.1,0.2,0.3,0.4,0.5;\n"
      "                       Adam/AdamW 0.0001,0.0003,0.001,0.003,0.01,0.03)\n"
      "  --seeds N            seeds 1..N (default 3)\n"
      "  --seed-list LIST     these seeds instead, e.g. 4,5,6 (to add seeds to a sweep already run)\n"
      "  --epochs N           epochs per run (default 6)\n"
      "  --batch N            minibatch size (default 128)\n"
      "  --train-limit N      train on the first N images of each shuffled epoch (default all 60000)\n"
      "  --optimizer NAME     sgd (momentum 0.9, the default), adam or adamw (betas 0.9/0.999, eps 1e-8,\n"
      "                       bias-corrected; every parameter including the quantizers' steps)\n"
      "  --weight-decay X     L2 (sgd, adam) or decoupled (adamw) weight decay on the weight matrices\n"
      "                       (default 0)\n"
      "  --constant-lr        no cosine decay\n"
      "  --act-bits N         also fake-quantize hidden activations to N-bit unsigned (LSQ+; default 0 = FP32)\n"
      "  --threads N          runs trained in parallel (default: hardware threads)\n"
      "  --data DIR           dataset folder (default %s)\n"
      "  --out DIR            output folder (default qat-demo-output)\n"
      "  --no-plot            do not call gnuplot\n",
      method_help().c_str(), qat::default_data_dir);
}

template <class T>
T parse_number(std::string_view text, const char* option) {
  T value{};
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) {
    throw std::invalid_argument(std::string(option) + ": '" + std::string(text) + "' is not a number");
  }
  return value;
}

std::vector<std::string_view> split_list(std::string_view text) {
  std::vector<std::string_view> parts;
  while (!text.empty()) {
    const auto comma = text.find(',');
    parts.push_back(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
  }
  return parts;
}

options parse(int argc, char** argv) {
  options o;
  bool quick_defaults = false;
  bool methods_given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const auto value = [&]() -> std::string_view {
      if (i + 1 >= argc) throw std::invalid_argument(std::string(arg) + " needs a value");
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      print_help();
      std::exit(0);
    } else if (arg == "--quick") {
      quick_defaults = true;
    } else if (arg == "--check") {
      o.check = true;
    } else if (arg == "--methods") {
      o.methods.clear();
      methods_given = true;
      for (auto name : split_list(value())) {
        const qat::method m = qat::parse_method_key(name);
        if (std::find(o.methods.begin(), o.methods.end(), m) != o.methods.end()) {
          throw std::invalid_argument("--methods: '" + std::string(name) + "' given twice");
        }
        o.methods.push_back(m);
      }
    } else if (arg == "--lrs") {
      o.lrs.clear();
      for (auto text : split_list(value())) o.lrs.push_back(parse_number<float>(text, "--lrs"));
    } else if (arg == "--seeds") {
      const auto n = parse_number<unsigned>(value(), "--seeds");
      o.seeds.clear();
      for (unsigned s = 1; s <= n; ++s) o.seeds.push_back(s);
    } else if (arg == "--seed-list") {
      o.seeds.clear();
      for (auto text : split_list(value())) {
        const auto seed = parse_number<std::uint64_t>(text, "--seed-list");
        if (std::find(o.seeds.begin(), o.seeds.end(), seed) != o.seeds.end()) {
          throw std::invalid_argument("--seed-list: seed " + std::string(text) + " given twice");
        }
        o.seeds.push_back(seed);
      }
    } else if (arg == "--epochs") {
      o.plan.epochs = parse_number<int>(value(), "--epochs");
    } else if (arg == "--batch") {
      o.plan.batch = parse_number<int>(value(), "--batch");
    } else if (arg == "--train-limit") {
      o.plan.train_limit = parse_number<std::size_t>(value(), "--train-limit");
    } else if (arg == "--optimizer") {
      const auto name = value();
      if (name == "sgd") {
        o.plan.optimizer = qat::optimizer_kind::sgd;
      } else if (name == "adam") {
        o.plan.optimizer = qat::optimizer_kind::adam;
      } else if (name == "adamw") {
        o.plan.optimizer = qat::optimizer_kind::adamw;
      } else {
        throw std::invalid_argument("--optimizer: '" + std::string(name) + "' is not sgd, adam or adamw");
      }
    } else if (arg == "--weight-decay") {
      o.plan.optimizer_hyper.weight_decay = parse_number<float>(value(), "--weight-decay");
    } else if (arg == "--constant-lr") {
      o.plan.cosine = false;
    } else if (arg == "--act-bits") {
      o.plan.activation_bits = parse_number<int>(value(), "--act-bits");
    } else if (arg == "--threads") {
      o.threads = parse_number<unsigned>(value(), "--threads");
    } else if (arg == "--data") {
      o.data_dir = value();
    } else if (arg == "--out") {
      o.out_dir = value();
    } else if (arg == "--no-plot") {
      o.plot = false;
    } else {
      throw std::invalid_argument("unknown option '" + std::string(arg) + "' (see --help)");
    }
  }
  if (quick_defaults) {
    // Other options on the command line do not override these: --quick is one fixed, checked
    // schedule; only --methods chooses what it trains (e.g. the baselines: --methods dsq,paretoq,ewgs).
    o.quick = true;
    o.check = true;
    if (!methods_given) o.methods = {qat::method::fp32, qat::method::ste, qat::method::fourier1};
    // One learning rate in the middle of the optimizer's sweep.
    o.lrs = {o.plan.optimizer == qat::optimizer_kind::sgd ? 0.1f : 1e-3f};
    o.seeds = {1};
    o.plan.epochs = 2;
    o.plan.train_limit = 20000;
  }
  if (o.lrs.empty()) o.lrs = o.plan.optimizer == qat::optimizer_kind::sgd ? sgd_lrs : adam_lrs;
  if (o.methods.empty() || o.seeds.empty()) throw std::invalid_argument("nothing to run");
  if (o.plan.epochs < 1) throw std::invalid_argument("--epochs must be >= 1");
  if (o.plan.batch < 1) throw std::invalid_argument("--batch must be >= 1");
  if (o.plan.activation_bits < 0 || o.plan.activation_bits > 8) throw std::invalid_argument("--act-bits: 0..8");
  for (const float lr : o.lrs) {
    if (!(lr > 0.0f) || !std::isfinite(lr)) throw std::invalid_argument("--lrs: learning rates must be positive and finite");
  }
  const float decay = o.plan.optimizer_hyper.weight_decay;
  if (!(decay >= 0.0f) || !std::isfinite(decay)) throw std::invalid_argument("--weight-decay: must be >= 0 and finite");
  return o;
}

std::string cpu_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      return colon == std::string::npos ? line : line.substr(colon + 2);
    }
  }
  return "unknown CPU";
}

std::string run_line(qat::run_spec const& spec, std::size_t index, std::size_t total, int epoch, int epochs,
                     double loss, double accuracy, double seconds, const char* state) {
  char text[256];
  char acc[32] = "   -  ";
  if (accuracy == accuracy) std::snprintf(acc, sizeof acc, "%6.2f%%", 100.0 * accuracy);
  std::snprintf(text, sizeof text, "[%2zu/%zu] %-20s lr=%-5s seed=%llu  epoch %2d/%d  loss %7.4f  test %s  %6.1f s  %s",
                index + 1, total, qat::method_label(spec.m), qat::format_lr(spec.lr).c_str(),
                static_cast<unsigned long long>(spec.seed), epoch, epochs, loss, acc, seconds, state);
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const options opt = parse(argc, argv);
    // One core per run: Eigen's own OpenMP threads would fight the run-level parallelism.
    Eigen::setNbThreads(1);
    // Eigen splits a matrix product's sums into blocks sized from the CPU's cache
    // sizes (read with cpuid at run time), and the block sizes change the float
    // rounding. Fixing them makes the results depend on the build's instruction
    // set only, not on which CPU of that instruction set runs it (docs/demo.md,
    // "Determinism"). These are the sizes Eigen 3.4 detects on the machine that
    // measured docs/demo.md, so its tables stay valid.
    Eigen::setCpuCacheSizes(32768, 1048576, 335544320);
    const auto wall_start = std::chrono::steady_clock::now();

    std::printf("stableqat %s: 2-bit QAT on Fashion-MNIST%s\n", STABLEQAT_VERSION_STRING,
                opt.quick ? " (quick mode)" : "");
    std::printf("model: MLP 784-256-128-10, ReLU; 2-bit signed weights {-2,-1,0,1}*step per output channel with\n"
                "       learnable LSQ steps in layers 1 and 2 (paretoq: {-3,-1,1,3}/4*alpha, alpha = max|w_row| at\n"
                "       start); output layer and biases FP32; activations %s\n",
                opt.plan.activation_bits > 0 ? (std::to_string(opt.plan.activation_bits) +
                                                "-bit unsigned (learnable step + offset) in 2-bit runs")
                                                   .c_str()
                                             : "FP32");
    const std::string optimizer_line = qat::optimizer_description(opt.plan.optimizer, opt.plan.optimizer_hyper);
    std::printf("training: %s, batch %d, %d epochs%s, %s lr; fake quantization with stableqat %s\n",
                optimizer_line.c_str(), opt.plan.batch,
                opt.plan.epochs,
                opt.plan.train_limit ? (" on " + std::to_string(opt.plan.train_limit) + " images").c_str() : "",
                opt.plan.cosine ? "cosine-decayed" : "constant", qat::policy_name);

    const auto load_start = std::chrono::steady_clock::now();
    const qat::dataset data = qat::load_fashion_mnist(opt.data_dir);
    std::printf("data: %zu training and %zu test images from %s (%.1f s)\n", data.train.size(), data.test.size(),
                opt.data_dir.c_str(),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count());

    std::vector<qat::run_spec> jobs;
    for (const float lr : opt.lrs) {
      for (const auto seed : opt.seeds) {
        for (const auto m : opt.methods) jobs.push_back({m, lr, seed});
      }
    }
    const unsigned hardware = std::max(1u, std::thread::hardware_concurrency());
    const auto workers = static_cast<std::size_t>(std::min<std::size_t>(opt.threads ? opt.threads : hardware, jobs.size()));
    std::printf("runs: %zu (%zu methods x %zu learning rates x %zu seeds) on %zu threads, %s\n\n", jobs.size(),
                opt.methods.size(), opt.lrs.size(), opt.seeds.size(), workers, cpu_name().c_str());
    std::fflush(stdout);

    qat::progress_board board(workers);
    std::vector<qat::run_result> results(jobs.size());
    std::atomic<std::size_t> next{0};
    std::vector<std::exception_ptr> failures(workers);
    {
      std::vector<std::jthread> pool;
      for (std::size_t w = 0; w < workers; ++w) {
        pool.emplace_back([&, w] {
          try {
            for (std::size_t j = next++; j < jobs.size(); j = next++) {
              const auto run_start = std::chrono::steady_clock::now();
              auto report = [&](qat::run_spec const& spec, int epoch, double fraction, double loss, double acc) {
                const double seconds =
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();
                (void)fraction;
                board.update(w, run_line(spec, j, jobs.size(), epoch, opt.plan.epochs, loss, acc, seconds, ""));
              };
              results[j] = qat::train(data, jobs[j], opt.plan, report);
              qat::run_result const& r = results[j];
              const double loss = r.epochs.empty() ? std::nan("") : r.epochs.back().train_loss;
              board.finish(w, run_line(r.spec, j, jobs.size(), static_cast<int>(r.epochs.size()), opt.plan.epochs,
                                       loss, r.test_accuracy, r.seconds,
                                       r.diverged ? ("DIVERGED: " + r.divergence).c_str() : "done"));
            }
          } catch (...) {
            failures[w] = std::current_exception();
            next = jobs.size();
          }
        });
      }
    }
    for (auto const& failure : failures) {
      if (failure) std::rethrow_exception(failure);
    }

    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
    char title[256];
    std::snprintf(title, sizeof title, "Fashion-MNIST MLP, 2-bit weights: %s, %d epochs, batch %d, %zu seed(s), one line per seed",
                  optimizer_line.c_str(), opt.plan.epochs,
                  opt.plan.batch, opt.seeds.size());
    const std::string table = qat::results_table(results, opt.methods, opt.lrs);
    std::printf("\nTest accuracy after the last epoch (mean ± half range over %zu seed(s); diverged runs excluded "
                "from the mean and counted):\n\n%s\nwall time %.1f s\n",
                opt.seeds.size(), table.c_str(), wall);

    const std::filesystem::path out = opt.out_dir;
    char header[512];
    std::snprintf(header, sizeof header, "%s\n\nwall time %.1f s on %zu threads, %s\n", title, wall, workers,
                  cpu_name().c_str());
    qat::write_csv_files(out, results, opt.methods, opt.lrs, header);
    qat::write_gnuplot_script(out, results, opt.methods, opt.lrs, opt.seeds, title);
    std::printf("wrote %s/{runs.csv,summary.csv,results.md,curves/,plot.gp}\n", out.string().c_str());
    if (opt.plot) {
      const std::string command = "cd \"" + out.string() + "\" && gnuplot plot.gp";
      if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) {
        std::printf("gnuplot not found: install gnuplot-nox, then run: %s\n", command.c_str());
      } else if (std::system(command.c_str()) != 0) {
        std::printf("gnuplot failed: %s\n", command.c_str());
      } else {
        std::printf("plot: %s/loss_curves.svg and loss_curves.png\n", out.string().c_str());
      }
    }

    if (!opt.check) {
      return 0;
    }
    // --check: the outcomes CI relies on, each printed with its measured value.
    int failed = 0;
    const auto expect = [&](bool ok, std::string const& what) {
      std::printf("check %s: %s\n", ok ? "ok  " : "FAIL", what.c_str());
      failed += ok ? 0 : 1;
    };
    expect(data.train.size() == 60000 && data.train.images.cols() == 60000,
           "training images loaded: " + std::to_string(data.train.size()) + " (expected 60000)");
    expect(data.test.size() == 10000 && data.test.images.cols() == 10000,
           "test images loaded: " + std::to_string(data.test.size()) + " (expected 10000)");
    for (qat::run_result const& r : results) {
      char text[160];
      if (r.spec.m == qat::method::fp32) {
        std::snprintf(text, sizeof text, "FP32 lr=%s seed=%llu test accuracy %.4f >= 0.80",
                      qat::format_lr(r.spec.lr).c_str(), static_cast<unsigned long long>(r.spec.seed), r.test_accuracy);
        expect(!r.diverged && r.test_accuracy >= 0.80, text);
      } else {
        const bool losses_finite = std::all_of(r.curve.begin(), r.curve.end(),
                                               [](qat::curve_point const& p) { return std::isfinite(p.train_loss); });
        std::snprintf(text, sizeof text, "%s lr=%s seed=%llu finite (loss, weights, steps; accuracy %.4f)",
                      qat::method_label(r.spec.m), qat::format_lr(r.spec.lr).c_str(),
                      static_cast<unsigned long long>(r.spec.seed), r.test_accuracy);
        expect(!r.diverged && losses_finite && r.parameters_finite && std::isfinite(r.test_accuracy), text);
        std::snprintf(text, sizeof text, "%s lr=%s seed=%llu at most 4 distinct weight values per channel (max %d)",
                      qat::method_label(r.spec.m), qat::format_lr(r.spec.lr).c_str(),
                      static_cast<unsigned long long>(r.spec.seed), r.max_levels_per_channel);
        expect(r.max_levels_per_channel >= 1 && r.max_levels_per_channel <= 4, text);
      }
    }
    std::printf("%s\n", failed ? "checks FAILED" : "all checks passed");
    return failed ? 1 : 0;
  } catch (std::exception const& e) {
    std::fprintf(stderr, "qat_fashion_mnist: error: %s\n", e.what());
    return 2;
  }
}
