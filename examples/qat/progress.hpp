// examples/qat/progress.hpp: one updating terminal line per running training run.
//
// Several runs train at once (one per worker thread). On a terminal each
// worker owns a line at the bottom that is redrawn in place (ANSI cursor
// movement); a finished run's line is printed once above them and stays.
// Without a terminal (CI logs, pipes) only the finished lines are printed.
#pragma once

#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

#include <unistd.h>

namespace qat {

class progress_board {
 public:
  explicit progress_board(std::size_t slots, bool interactive = isatty(STDOUT_FILENO) != 0)
      : active_(slots), interactive_(interactive) {}

  /// Replaces the in-place line of a worker (at most ~10 redraws per second).
  void update(std::size_t slot, std::string line) {
    std::lock_guard lock(mutex_);
    active_[slot] = std::move(line);
    const auto now = std::chrono::steady_clock::now();
    if (interactive_ && now - last_draw_ > std::chrono::milliseconds(100)) {
      redraw(nullptr);
      last_draw_ = now;
    }
  }

  /// Prints a run's final line permanently and clears the worker's line.
  void finish(std::size_t slot, std::string const& line) {
    std::lock_guard lock(mutex_);
    active_[slot].clear();
    if (interactive_) {
      redraw(&line);
    } else {
      std::printf("%s\n", line.c_str());
      std::fflush(stdout);
    }
  }

 private:
  // Moves up over the lines drawn last time, clears to the end of the screen,
  // prints the finished line (if any), then the active lines.
  void redraw(std::string const* finished) {
    std::string out;
    if (drawn_ > 0) {
      out += "\x1b[" + std::to_string(drawn_) + "F";
    }
    out += "\x1b[J";
    if (finished) {
      out += *finished + "\n";
    }
    drawn_ = 0;
    for (std::string const& line : active_) {
      if (!line.empty()) {
        out += line + "\n";
        ++drawn_;
      }
    }
    std::fputs(out.c_str(), stdout);
    std::fflush(stdout);
  }

  std::mutex mutex_;
  std::vector<std::string> active_;
  bool interactive_;
  int drawn_ = 0;
  std::chrono::steady_clock::time_point last_draw_{};
};

}  // namespace qat
