// examples/qat/report.hpp: the results table, CSV files and the gnuplot script of a sweep.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "trainer.hpp"

namespace qat {

/// "0.1", "0.03", "1": learning rates as they appear in tables and file names.
inline std::string format_lr(float lr) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", static_cast<double>(lr));
  return text;
}

/// File stem of a run's curve files, e.g. "ste_lr0.1_seed2".
inline std::string run_stem(run_spec const& spec) {
  return std::string(method_key(spec.m)) + "_lr" + format_lr(spec.lr) + "_seed" + std::to_string(spec.seed);
}

/// Test accuracy of one method at one learning rate over its seeds.
struct cell_summary {
  int runs = 0;
  int diverged = 0;
  double mean = 0.0;    ///< over the runs that did not diverge
  double spread = 0.0;  ///< half the range (max - min) / 2 over those runs
  double min = 0.0;
  double max = 0.0;
};

inline cell_summary summarize(std::vector<run_result> const& results, method m, float lr) {
  cell_summary cell;
  std::vector<double> accuracies;
  for (run_result const& r : results) {
    if (r.spec.m != m || r.spec.lr != lr) {
      continue;
    }
    ++cell.runs;
    if (r.diverged) {
      ++cell.diverged;
    } else {
      accuracies.push_back(r.test_accuracy);
    }
  }
  if (!accuracies.empty()) {
    const auto [lo, hi] = std::minmax_element(accuracies.begin(), accuracies.end());
    cell.min = *lo;
    cell.max = *hi;
    double sum = 0.0;
    for (const double a : accuracies) sum += a;
    cell.mean = sum / static_cast<double>(accuracies.size());
    cell.spread = (cell.max - cell.min) / 2.0;
  }
  return cell;
}

inline std::string format_cell(cell_summary const& cell) {
  char text[96];
  if (cell.runs == 0) {
    return "-";
  }
  if (cell.diverged == cell.runs) {
    std::snprintf(text, sizeof text, "diverged (%d/%d)", cell.diverged, cell.runs);
  } else if (cell.diverged > 0) {
    std::snprintf(text, sizeof text, "%.2f ± %.2f %% (%d/%d diverged)", 100.0 * cell.mean, 100.0 * cell.spread,
                  cell.diverged, cell.runs);
  } else {
    std::snprintf(text, sizeof text, "%.2f ± %.2f %%", 100.0 * cell.mean, 100.0 * cell.spread);
  }
  return text;
}

/// Markdown table: one row per method, one column per learning rate.
inline std::string results_table(std::vector<run_result> const& results, std::vector<method> const& methods,
                                 std::vector<float> const& lrs) {
  std::string table = "| method |";
  std::string rule = "|---|";
  for (const float lr : lrs) {
    table.append(" lr = ").append(format_lr(lr)).append(" |");
    rule.append("---|");
  }
  table.append("\n").append(rule).append("\n");
  for (const method m : methods) {
    // append() rather than operator+: GCC 12 warns falsely (-Wrestrict) on the temporaries.
    table.append("| ").append(method_label(m)).append(" |");
    for (const float lr : lrs) {
      table.append(" ").append(format_cell(summarize(results, m, lr))).append(" |");
    }
    table.append("\n");
  }
  return table;
}

inline std::ofstream open_output(std::filesystem::path const& path) {
  std::ofstream out(path);
  if (!out) {
    throw std::runtime_error(path.string() + ": cannot write");
  }
  return out;
}

/// Writes runs.csv, summary.csv, results.md and curves/<run>.csv, curves/<run>_epochs.csv.
inline void write_csv_files(std::filesystem::path const& dir, std::vector<run_result> const& results,
                            std::vector<method> const& methods, std::vector<float> const& lrs,
                            std::string const& header) {
  std::filesystem::create_directories(dir / "curves");
  {
    auto out = open_output(dir / "runs.csv");
    out << "method,lr,seed,test_accuracy,last_epoch_train_loss,diverged,divergence,max_levels_per_channel,seconds\n";
    for (run_result const& r : results) {
      char line[512];
      const double loss = r.epochs.empty() ? std::nan("") : r.epochs.back().train_loss;
      std::snprintf(line, sizeof line, "%s,%s,%llu,%.4f,%.5f,%d,\"%s\",%d,%.1f\n", method_key(r.spec.m),
                    format_lr(r.spec.lr).c_str(), static_cast<unsigned long long>(r.spec.seed), r.test_accuracy, loss,
                    r.diverged ? 1 : 0, r.divergence.c_str(), r.max_levels_per_channel, r.seconds);
      out << line;
    }
  }
  {
    auto out = open_output(dir / "summary.csv");
    out << "method,lr,runs,diverged,mean_test_accuracy,spread,min,max\n";
    for (const method m : methods) {
      for (const float lr : lrs) {
        const cell_summary c = summarize(results, m, lr);
        char line[256];
        std::snprintf(line, sizeof line, "%s,%s,%d,%d,%.4f,%.4f,%.4f,%.4f\n", method_key(m), format_lr(lr).c_str(),
                      c.runs, c.diverged, c.mean, c.spread, c.min, c.max);
        out << line;
      }
    }
  }
  {
    auto out = open_output(dir / "results.md");
    out << header << "\n" << results_table(results, methods, lrs);
  }
  for (run_result const& r : results) {
    auto curve = open_output(dir / "curves" / (run_stem(r.spec) + ".csv"));
    curve << "epoch,train_loss\n";
    for (curve_point const& p : r.curve) {
      char line[64];
      std::snprintf(line, sizeof line, "%.4f,%.6f\n", p.epoch, p.train_loss);
      curve << line;
    }
    auto epochs = open_output(dir / "curves" / (run_stem(r.spec) + "_epochs.csv"));
    epochs << "epoch,train_loss,test_accuracy\n";
    for (epoch_record const& e : r.epochs) {
      char line[96];
      std::snprintf(line, sizeof line, "%d,%.6f,%.4f\n", e.epoch, e.train_loss, e.test_accuracy);
      epochs << line;
    }
  }
}

/// Writes plot.gp: training loss (top row) and test accuracy (bottom row) per
/// epoch, one column per learning rate, one colour per method, one line per
/// seed (the first seed drawn thicker). Renders <outname>.svg and <outname>.png (default loss_curves) into
/// `outdir` (default: the script's folder; run it from there:
/// gnuplot -e "outdir='...'; outname='...'" plot.gp).
inline void write_gnuplot_script(std::filesystem::path const& dir, std::vector<run_result> const& results,
                                 std::vector<method> const& methods, std::vector<float> const& lrs,
                                 std::vector<std::uint64_t> const& seeds, std::string const& title) {
  auto gp = open_output(dir / "plot.gp");
  const char* colours[] = {"#000000", "#d62728", "#1f77b4", "#2ca02c"};
  gp << "# Generated by qat_fashion_mnist: " << title << "\n"
     << "if (!exists(\"outdir\")) outdir = \".\"\n"
     << "if (!exists(\"outname\")) outname = \"loss_curves\"\n"
     << "set datafile separator \",\"\n"
     << "set grid\n";
  const int columns = static_cast<int>(lrs.size());
  const int width = std::max(330 * columns + 120, 760);
  gp << "do for [format = 1:2] {\n"
     << "  if (format == 1) { set terminal svg size " << width
     << ",760 font \"sans,12\" background \"white\"; set output outdir.\"/\".outname.\".svg\" }\n"
     << "  if (format == 2) { set terminal pngcairo size " << width
     << ",760 font \"sans,10\" background \"white\"; set output outdir.\"/\".outname.\".png\" }\n"
     << "  set multiplot layout 2," << columns << " title \"" << title << "\"\n";
  for (int row = 0; row < 2; ++row) {
    for (int c = 0; c < columns; ++c) {
      const float lr = lrs[static_cast<std::size_t>(c)];
      if (row == 0) {
        gp << "  set title \"lr = " << format_lr(lr) << "\"\n"
           << "  set logscale y; set yrange [0.15:3]; set xlabel \"epoch\"; set ylabel \"training loss\"\n";
      } else {
        gp << "  set title \"lr = " << format_lr(lr) << "\"\n"
           << "  unset logscale y; set yrange [0.70:0.92]; set xlabel \"epoch\"; set ylabel \"test accuracy\"\n";
      }
      gp << "  " << (c == 0 && row == 0 ? "set key top right" : "unset key") << "\n  plot ";
      bool first = true;
      for (std::size_t mi = 0; mi < methods.size(); ++mi) {
        bool titled = false;
        for (std::size_t si = 0; si < seeds.size(); ++si) {
          const run_spec spec{methods[mi], lr, seeds[si]};
          // Runs that diverged before logging anything have no points: leave them out.
          const auto found = std::find_if(results.begin(), results.end(), [&](run_result const& r) {
            return r.spec.m == spec.m && r.spec.lr == spec.lr && r.spec.seed == spec.seed;
          });
          if (found == results.end() || (row == 0 ? found->curve.empty() : found->epochs.empty())) {
            continue;
          }
          const std::string file = "curves/" + run_stem(spec) + (row == 0 ? ".csv" : "_epochs.csv");
          if (!first) gp << ", \\\n       ";
          first = false;
          gp << "\"" << file << "\" skip 1 using 1:" << (row == 0 ? 2 : 3) << " with "
             << (row == 0 ? "lines" : "linespoints pt 7 ps 0.5") << " lw " << (titled ? 1 : 2) << " lc rgb \""
             << colours[mi % 4] << "\" "
             << (titled ? "notitle" : "title \"" + std::string(method_label(methods[mi])) + "\"");
          titled = true;
        }
      }
      if (first) {  // every run of this panel diverged at once
        gp << "NaN notitle";
      }
      gp << "\n";
    }
  }
  gp << "  unset multiplot\n  set output\n}\n";
}

}  // namespace qat
