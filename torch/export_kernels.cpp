// torch/export_kernels.cpp: the op library's integer export (no torch headers).
#include "export_kernels.hpp"

#include <limits>
#include <type_traits>
#include <span>
#include <string>
#include <vector>

#include <stableqat/stableqat.hpp>

namespace stableqat::torch_adapter {

namespace {

// Calls f(C{}) with the code type of the storage; int32 storage is handled by the callers.
template <class F>
void with_code_type(code_storage s, F&& f) {
  switch (s) {
    case code_storage::int8: f(std::int8_t{}); return;
    case code_storage::uint8: f(std::uint8_t{}); return;
    case code_storage::int16: f(std::int16_t{}); return;
    case code_storage::int32: f(std::uint16_t{}); return;
  }
}

}  // namespace

code_storage code_storage_of(stableqat::grid const& g) {
  const code_field f = code_field_of(g);
  if (f.bits == 16) return f.is_signed ? code_storage::int16 : code_storage::int32;
  return f.is_signed ? code_storage::int8 : code_storage::uint8;
}

int code_field_bits(stableqat::grid const& g) { return code_bits(g); }

std::size_t packed_size(stableqat::grid const& g, std::size_t rows, std::size_t cols) {
  return packed_bytes(rows, cols, code_bits(g));
}

template <class T>
void run_quantize_to_codes(op_options const& o, const T* x, std::size_t numel, const T* steps, const T* offsets,
                           void* codes, int threads) {
  const quantizer<T, ste> q{o.grid, ste{}, o.layout};
  const auto policy = exec::par.with_threads(threads);
  const std::span<const T> xs(x, numel);
  const std::span<const T> ss(steps, o.step_count);
  const code_storage storage = code_storage_of(o.grid);
  with_code_type(storage, [&](auto c) {
    using C = decltype(c);
    auto run = [&](std::span<C> out) {
      if (offsets != nullptr) {
        quantize_to_codes(policy, q, xs, ss, out, std::span<const T>(offsets, o.step_count));
      } else {
        quantize_to_codes(policy, q, xs, ss, out);
      }
    };
    if constexpr (std::is_same_v<C, std::uint16_t>) {
      // uint16 codes widened into the int32 tensor (torch has no uint16).
      std::vector<std::uint16_t> narrow(numel);
      run(std::span<std::uint16_t>(narrow));
      auto* wide = static_cast<std::int32_t*>(codes);
      for (std::size_t i = 0; i < numel; ++i) wide[i] = narrow[i];
    } else {
      run(std::span<C>(static_cast<C*>(codes), numel));
    }
  });
}

void run_pack_codes(stableqat::grid const& g, std::size_t cols, const void* codes, std::size_t numel,
                    std::uint8_t* packed, std::size_t packed_bytes) {
  const code_storage storage = code_storage_of(g);
  const int bits = code_bits(g);
  const std::span<std::uint8_t> out(packed, packed_bytes);
  with_code_type(storage, [&](auto c) {
    using C = decltype(c);
    if constexpr (std::is_same_v<C, std::uint16_t>) {
      const auto* wide = static_cast<const std::int32_t*>(codes);
      std::vector<std::uint16_t> narrow(numel);
      for (std::size_t i = 0; i < numel; ++i) {
        if (wide[i] < 0 || wide[i] > std::numeric_limits<std::uint16_t>::max()) {
          throw_argument("stableqat::pack_codes", "codes[" + std::to_string(i) + "]", std::to_string(wide[i]),
                         "does not fit an unsigned 16-bit field");
        }
        narrow[i] = static_cast<std::uint16_t>(wide[i]);
      }
      pack_codes(bits, cols, std::span<const std::uint16_t>(narrow), out);
    } else {
      pack_codes(bits, cols, std::span<const C>(static_cast<const C*>(codes), numel), out);
    }
  });
}

void run_unpack_codes(stableqat::grid const& g, std::size_t cols, const std::uint8_t* packed,
                      std::size_t packed_bytes, void* codes, std::size_t numel) {
  const code_storage storage = code_storage_of(g);
  const int bits = code_bits(g);
  const std::span<const std::uint8_t> in(packed, packed_bytes);
  with_code_type(storage, [&](auto c) {
    using C = decltype(c);
    if constexpr (std::is_same_v<C, std::uint16_t>) {
      std::vector<std::uint16_t> narrow(numel);
      unpack_codes(bits, cols, in, std::span<std::uint16_t>(narrow));
      auto* wide = static_cast<std::int32_t*>(codes);
      for (std::size_t i = 0; i < numel; ++i) wide[i] = narrow[i];
    } else {
      unpack_codes(bits, cols, in, std::span<C>(static_cast<C*>(codes), numel));
    }
  });
}

template <class T>
void run_dequantize(op_options const& o, std::size_t cols, const std::uint8_t* packed, std::size_t packed_bytes,
                    const T* steps, const T* offsets, T* y, std::size_t numel, int threads) {
  const quantizer<T, ste> q{o.grid, ste{}, o.layout};
  const auto policy = exec::par.with_threads(threads);
  const std::span<const std::uint8_t> in(packed, packed_bytes);
  const std::span<const T> ss(steps, o.step_count);
  const std::span<T> out(y, numel);
  if (offsets != nullptr) {
    dequantize(policy, q, cols, in, ss, out, std::span<const T>(offsets, o.step_count));
  } else {
    dequantize(policy, q, cols, in, ss, out);
  }
}

template void run_quantize_to_codes<float>(op_options const&, const float*, std::size_t, const float*, const float*,
                                           void*, int);
template void run_quantize_to_codes<double>(op_options const&, const double*, std::size_t, const double*,
                                            const double*, void*, int);
template void run_dequantize<float>(op_options const&, std::size_t, const std::uint8_t*, std::size_t, const float*,
                                    const float*, float*, std::size_t, int);
template void run_dequantize<double>(op_options const&, std::size_t, const std::uint8_t*, std::size_t,
                                     const double*, const double*, double*, std::size_t, int);

}  // namespace stableqat::torch_adapter
