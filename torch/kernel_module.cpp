// torch/kernel_module.cpp: the exported table of one kernel module
// (libstableqat_torch_kernels_<arch>.so; STABLEQAT_TORCH_KERNEL_ARCH names the
// instruction set its objects were compiled for).
#include "kernel_table.hpp"

#ifndef STABLEQAT_TORCH_KERNEL_ARCH
#error "compile with -DSTABLEQAT_TORCH_KERNEL_ARCH=\"<arch>\" (cmake/stableqatTorch.cmake)"
#endif

namespace sqt = stableqat::torch_adapter;

extern "C" __attribute__((visibility("default"))) sqt::kernel_table const* stableqat_torch_kernel_table() {
  static const sqt::kernel_table table{
      sqt::kernel_table_version,
      STABLEQAT_TORCH_KERNEL_ARCH,
      &sqt::run_forward<float>,
      &sqt::run_forward<double>,
      &sqt::run_backward<float>,
      &sqt::run_backward<double>,
      &sqt::run_forward<float, stableqat::bfloat16>,
      &sqt::run_forward<float, stableqat::float16>,
      &sqt::run_backward<float, stableqat::bfloat16>,
      &sqt::run_backward<float, stableqat::float16>,
      &sqt::run_init_steps<float>,
      &sqt::run_init_steps<double>,
      &sqt::run_quantize_to_codes<float>,
      &sqt::run_quantize_to_codes<double>,
      &sqt::run_dequantize<float>,
      &sqt::run_dequantize<double>,
      &sqt::run_pack_codes,
      &sqt::run_unpack_codes,
      &sqt::code_storage_of,
      &sqt::packed_size,
  };
  return &table;
}
