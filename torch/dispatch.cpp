// torch/dispatch.cpp: picks and loads the kernel module (runtime SIMD dispatch).
// Compiled for the baseline instruction set, like the rest of libstableqat_torch.so.
#include <dlfcn.h>

#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>

#if defined(__x86_64__) || defined(_M_X64)
#include <xsimd/config/xsimd_cpuid.hpp>
#endif

#include "kernel_table.hpp"

namespace stableqat::torch_adapter {

namespace {

#if defined(__x86_64__) || defined(_M_X64)
constexpr std::string_view arches[] = {"avx512", "avx2", "sse2"};  // widest first

// xsimd reads CPUID; __builtin_cpu_supports also checks that the OS saves the
// wide registers (XGETBV), which xsimd 8.1 does not. Both must agree.
bool supported(std::string_view arch) {
  const auto a = xsimd::available_architectures();
  if (arch == "sse2") return a.sse2 != 0;
  if (arch == "avx2") {
    // The module is built with -mavx2 -mfma -mf16c (F16C: float16 tensors; xsimd 8.1 does not report it).
    return a.fma3_avx2 != 0 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           __builtin_cpu_supports("f16c");
  }
  if (arch == "avx512") {
    // The module is built with -mavx512{f,cd,dq,bw,vl} (xsimd's avx512bw).
    return a.avx512bw != 0 && a.avx512dq != 0 && a.avx512cd != 0 && a.fma3_avx2 != 0 &&
           __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
  }
  return false;
}
#else
constexpr std::string_view arches[] = {"generic"};
bool supported(std::string_view arch) { return arch == "generic"; }
#endif

std::string arch_list() {
  std::string out;
  for (auto a : arches) out += (out.empty() ? "" : ", ") + std::string(a);
  return out;
}

std::string chosen_arch() {
  const char* env = std::getenv("STABLEQAT_TORCH_ARCH");
  const std::string forced = env == nullptr ? "" : env;
  if (forced.empty() || forced == "auto") {
    for (auto a : arches) {
      if (supported(a)) return std::string(a);
    }
    throw std::runtime_error("stableqat: this CPU supports none of the op library's instruction sets (" +
                             arch_list() + ")");
  }
  bool known = false;
  for (auto a : arches) known = known || a == forced;
  if (!known) {
    throw std::runtime_error("stableqat: STABLEQAT_TORCH_ARCH = '" + forced + "' is not one of auto, " + arch_list());
  }
  if (!supported(forced)) {
    throw std::runtime_error("stableqat: STABLEQAT_TORCH_ARCH = '" + forced +
                             "' but this CPU (or OS) does not support that instruction set");
  }
  return forced;
}

// The kernel modules sit next to libstableqat_torch.so (the build writes them
// to the same directory); dladdr finds where this library was loaded from.
std::string module_path(std::string const& arch) {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&kernels), &info) == 0 || info.dli_fname == nullptr) {
    throw std::runtime_error("stableqat: cannot locate libstableqat_torch.so (dladdr failed)");
  }
  std::string dir(info.dli_fname);
  const auto slash = dir.rfind('/');
  dir = slash == std::string::npos ? "." : dir.substr(0, slash);
  return dir + "/libstableqat_torch_kernels_" + arch + ".so";
}

kernel_table const& load() {
  const std::string arch = chosen_arch();
  const std::string path = module_path(arch);
  // RTLD_LOCAL: the module's symbols never join the global scope, so no other
  // library can bind to its instruction-set-specific code.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    throw std::runtime_error("stableqat: cannot load the " + arch + " kernel module " + path + ": " +
                             (why != nullptr ? why : "unknown error"));
  }
  using entry_fn = kernel_table const* (*)();
  auto entry = reinterpret_cast<entry_fn>(dlsym(handle, STABLEQAT_TORCH_KERNEL_ENTRY));
  if (entry == nullptr) {
    throw std::runtime_error("stableqat: " + path + " has no " STABLEQAT_TORCH_KERNEL_ENTRY);
  }
  kernel_table const* table = entry();
  if (table == nullptr || table->version != kernel_table_version) {
    throw std::runtime_error("stableqat: " + path + " is from another build (kernel table version mismatch)");
  }
  return *table;  // the module stays loaded for the process's lifetime
}

}  // namespace

kernel_table const& kernels() {
  // Thread-safe one-time load; a failed load throws and is retried on the next call.
  static kernel_table const& table = load();
  return table;
}

}  // namespace stableqat::torch_adapter
