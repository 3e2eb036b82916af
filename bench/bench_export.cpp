// Google Benchmark suite for the integer export (issue 13).
//
// Names: <op>/<bits>/<policy>/<elements>
//   op       pack (int8/uint8 codes -> packed fields), unpack (the inverse),
//            dequant (packed -> float weights, per_channel rows of 512, the
//            shape of PyTorch [out, 512] weights), codes (quantize_to_codes,
//            float -> int8/uint8 codes), and memcpy over the same bytes
//            (memcpy/<bits>/<op>: a copy moving the op's total bytes read + written)
//   bits     field width; signed grids for 2 and 8 bits, unsigned for 4
//   policy   seq, simd, par (all threads) for dequant and codes; "-" for
//            pack/unpack (policy-free functions) and memcpy
// Counters: bytes_per_second counts the bytes the op must move (codes 1 B,
// packed bits/8 B, floats 4 B per element); items_per_second counts elements.
// Wall-clock time (UseRealTime).
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <stableqat/stableqat.hpp>

namespace sq = stableqat;

namespace {

constexpr std::size_t max_elements = std::size_t{1} << 24;
constexpr std::size_t cols = 512;
constexpr std::size_t sizes[] = {std::size_t{1} << 12, std::size_t{1} << 18, max_elements};

sq::grid grid_of(int bits) { return bits == 4 ? sq::unsigned_grid(4) : sq::signed_grid(bits); }

/// Buffers shared by every case, filled (and paged in) once.
struct buffers {
  std::vector<float> x = std::vector<float>(max_elements);
  std::vector<float> y = std::vector<float>(max_elements);
  std::vector<std::int8_t> codes = std::vector<std::int8_t>(max_elements);
  std::vector<std::uint8_t> ucodes = std::vector<std::uint8_t>(max_elements);
  std::vector<std::uint8_t> packed = std::vector<std::uint8_t>(max_elements);
  std::vector<std::uint8_t> copy_src = std::vector<std::uint8_t>(3 * max_elements, 1);
  std::vector<std::uint8_t> copy_dst = std::vector<std::uint8_t>(3 * max_elements, 2);
  std::vector<float> steps = std::vector<float>(max_elements / cols, 0.05f);

  buffers() {
    std::mt19937 rng(42);
    std::uniform_real_distribution<float> value(-1.0f, 1.0f);
    for (float& v : x) v = value(rng);
  }
};

buffers& shared() {
  static buffers b;
  return b;
}

std::span<const float> steps_for(std::size_t n) { return std::span<const float>(shared().steps).first(n / cols); }

template <class Policy>
void run_codes(benchmark::State& state, Policy const& policy, int bits, std::size_t n) {
  buffers& b = shared();
  const sq::quantizer<float> q{grid_of(bits), sq::ste{}, sq::per_channel(cols)};
  const std::span<const float> x(b.x.data(), n);
  for (auto _ : state) {
    if (bits == 4) {
      sq::quantize_to_codes(policy, q, x, steps_for(n), std::span<std::uint8_t>(b.ucodes.data(), n));
    } else {
      sq::quantize_to_codes(policy, q, x, steps_for(n), std::span<std::int8_t>(b.codes.data(), n));
    }
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * n * 5));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
}

/// Valid codes of the grid in b.codes / b.ucodes and their packing in b.packed.
void prepare_codes(int bits, std::size_t n) {
  buffers& b = shared();
  const sq::quantizer<float> q{grid_of(bits), sq::ste{}, sq::per_channel(cols)};
  const std::size_t bytes = sq::packed_bytes(n / cols, cols, bits);
  if (bits == 4) {
    sq::quantize_to_codes(sq::exec::simd, q, std::span<const float>(b.x.data(), n), steps_for(n),
                          std::span<std::uint8_t>(b.ucodes.data(), n));
    sq::pack_codes(bits, cols, std::span<const std::uint8_t>(b.ucodes.data(), n),
                   std::span<std::uint8_t>(b.packed.data(), bytes));
  } else {
    sq::quantize_to_codes(sq::exec::simd, q, std::span<const float>(b.x.data(), n), steps_for(n),
                          std::span<std::int8_t>(b.codes.data(), n));
    sq::pack_codes(bits, cols, std::span<const std::int8_t>(b.codes.data(), n),
                   std::span<std::uint8_t>(b.packed.data(), bytes));
  }
}

void run_pack(benchmark::State& state, int bits, std::size_t n, bool unpack) {
  buffers& b = shared();
  prepare_codes(bits, n);
  const std::size_t bytes = sq::packed_bytes(n / cols, cols, bits);
  const std::span<std::uint8_t> packed(b.packed.data(), bytes);
  for (auto _ : state) {
    if (bits == 4) {
      const std::span<std::uint8_t> codes(b.ucodes.data(), n);
      unpack ? sq::unpack_codes(bits, cols, std::span<const std::uint8_t>(packed), codes)
             : sq::pack_codes(bits, cols, codes, packed);
    } else {
      const std::span<std::int8_t> codes(b.codes.data(), n);
      unpack ? sq::unpack_codes(bits, cols, std::span<const std::uint8_t>(packed), codes)
             : sq::pack_codes(bits, cols, codes, packed);
    }
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * (n + bytes)));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
}

template <class Policy>
void run_dequant(benchmark::State& state, Policy const& policy, int bits, std::size_t n) {
  buffers& b = shared();
  prepare_codes(bits, n);
  const sq::quantizer<float> q{grid_of(bits), sq::ste{}, sq::per_channel(cols)};
  const std::size_t bytes = sq::packed_bytes(n / cols, cols, bits);
  const std::span<const std::uint8_t> packed(b.packed.data(), bytes);
  const std::span<float> y(b.y.data(), n);
  for (auto _ : state) {
    sq::dequantize(policy, q, cols, packed, steps_for(n), y);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * (bytes + 4 * n)));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
}

/// memcpy moving `total` bytes (read + written), i.e. copying total / 2.
void run_memcpy(benchmark::State& state, std::size_t total, std::size_t n) {
  buffers& b = shared();
  const std::size_t half = total / 2;
  for (auto _ : state) {
    std::memcpy(b.copy_dst.data(), b.copy_src.data(), half);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * 2 * half));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
}

void register_all() {
  const auto add = [](std::string const& name, auto&& f) {
    benchmark::RegisterBenchmark(name.c_str(), f)->UseRealTime()->Unit(benchmark::kMicrosecond);
  };
  for (std::size_t n : sizes) {
    const std::string size = std::to_string(n);
    for (int bits : {2, 4, 8}) {
      const std::string w = std::to_string(bits);
      const std::size_t packed = n * static_cast<std::size_t>(bits) / 8;
      add("pack/" + w + "/-/" + size, [=](benchmark::State& st) { run_pack(st, bits, n, false); });
      add("unpack/" + w + "/-/" + size, [=](benchmark::State& st) { run_pack(st, bits, n, true); });
      add("memcpy/" + w + "/pack/" + size, [=](benchmark::State& st) { run_memcpy(st, n + packed, n); });
      add("dequant/" + w + "/seq/" + size, [=](benchmark::State& st) { run_dequant(st, sq::exec::seq, bits, n); });
      add("dequant/" + w + "/simd/" + size, [=](benchmark::State& st) { run_dequant(st, sq::exec::simd, bits, n); });
      add("dequant/" + w + "/par/" + size, [=](benchmark::State& st) { run_dequant(st, sq::exec::par, bits, n); });
      add("memcpy/" + w + "/dequant/" + size, [=](benchmark::State& st) { run_memcpy(st, packed + 4 * n, n); });
    }
    add("codes/2/seq/" + size, [=](benchmark::State& st) { run_codes(st, sq::exec::seq, 2, n); });
    add("codes/2/simd/" + size, [=](benchmark::State& st) { run_codes(st, sq::exec::simd, 2, n); });
    add("codes/2/par/" + size, [=](benchmark::State& st) { run_codes(st, sq::exec::par, 2, n); });
    add("memcpy/2/codes/" + size, [=](benchmark::State& st) { run_memcpy(st, 5 * n, n); });
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
    return 1;
  }
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
