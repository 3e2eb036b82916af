// stableqat/exec/simd/runner.hpp: running a chunk kernel on the calling thread.
//
// A runner executes the kernels of row_kernels.hpp / column_kernels.hpp through
// the protocol of plan.hpp (chunk_loop, chunk_reduction). exec::simd uses this
// one; exec::par (par.hpp) has an OpenMP runner with the same two functions.
#pragma once

#include <cstddef>

#include "plan.hpp"

namespace stableqat::exec::simd_detail {

/// Runs chunks one after the other on the calling thread.
struct sequential_runner {
  template <chunk_loop Kernel>
  void run(Kernel const& kernel) const {
    for (std::size_t c = 0; c < kernel.chunk_count(); ++c) {
      kernel.run(c);
    }
  }

  /// produce(c) then consume(c) for each chunk in order; one result on the stack.
  template <chunk_reduction Kernel>
  void reduce(Kernel& kernel) const {
    if (kernel.direct()) {
      for (std::size_t c = 0; c < kernel.chunk_count(); ++c) {
        kernel.produce(c, nullptr);
      }
      return;
    }
    typename Kernel::result_type result;
    for (std::size_t c = 0; c < kernel.chunk_count(); ++c) {
      kernel.produce(c, &result);
      kernel.consume(c, result);
    }
    kernel.finish();
  }
};

}  // namespace stableqat::exec::simd_detail
