// torch/options.cpp: parsing of the op schema's non-tensor arguments.
#include "options.hpp"

#include <cmath>
#include <limits>
#include <string>

#include <stableqat/core/errors.hpp>
#include <stableqat/surrogates/dsq.hpp>
#include <stableqat/surrogates/ewgs.hpp>
#include <stableqat/surrogates/fourier.hpp>

namespace stableqat::torch_adapter {

void throw_argument(const char* op, std::string const& argument, std::string const& value,
                    std::string const& problem) {
  throw std::invalid_argument(std::string(op) + ": " + argument + " = " + value + " " + problem);
}

namespace {

std::string quoted(std::string const& text) { return "'" + text + "'"; }

// A library constructor's own message (it names its argument: amplitude,
// coefficients[k], alpha, delta) behind the op's name and the schema argument.
template <class F>
void validate_with_library(const char* op, const char* argument, F&& construct) {
  try {
    construct();
  } catch (std::invalid_argument const& e) {
    throw std::invalid_argument(std::string(op) + ": " + argument + " rejected by " + e.what());
  }
}

// Builds the surrogate once to run the library's own validation (exact
// extremes of sqrt(2)*pi*S on [-1/2, 1/2]); the kernels rebuild it per call.
template <int K>
void validate_fourier(std::vector<double> const& params) {
  if constexpr (K >= 1) {
    if (params.empty()) {
      (void)fourier_surrogate<K>{};
    } else if (params.size() == 1) {
      (void)fourier_surrogate<K>{params[0]};
    } else {
      std::array<double, static_cast<std::size_t>(K)> a{};
      for (std::size_t k = 0; k < a.size(); ++k) a[k] = params[k];
      (void)fourier_surrogate<K>::from_coefficients(a);
    }
  }
}

step_layout parse_layout(raw_options const& raw, std::vector<std::int64_t> const& sizes, std::size_t& step_count) {
  std::size_t numel = 1;
  for (auto d : sizes) numel *= static_cast<std::size_t>(d);
  if (raw.axis && raw.group_size) {
    throw_argument(raw.op, "group_size", std::to_string(*raw.group_size),
                   "cannot be combined with axis = " + std::to_string(*raw.axis) + " (choose one layout)");
  }
  if (raw.axis) {
    const auto dims = static_cast<std::int64_t>(sizes.size());
    const std::int64_t axis = *raw.axis < 0 ? *raw.axis + dims : *raw.axis;
    if (dims == 0 || axis != 0) {
      throw_argument(raw.op, "axis", std::to_string(*raw.axis),
                     "is not supported for a tensor of " + std::to_string(dims) +
                         " dimension(s): steps run along dim 0 (one per row, PyTorch's [out, in] weight layout)");
    }
    step_count = static_cast<std::size_t>(sizes[0]);
    const std::size_t inner = step_count == 0 ? 0 : numel / step_count;
    return per_channel(inner == 0 ? 1 : inner);
  }
  if (raw.group_size) {
    if (*raw.group_size <= 0) {
      throw_argument(raw.op, "group_size", std::to_string(*raw.group_size), "must be positive");
    }
    const auto size = static_cast<std::size_t>(*raw.group_size);
    if (numel % size != 0) {
      throw_argument(raw.op, "group_size", std::to_string(size),
                     "does not divide x.numel() = " + std::to_string(numel));
    }
    step_count = numel / size;
    return per_group(size);
  }
  step_count = 1;
  return per_tensor();
}

}  // namespace

grid parse_grid(const char* op, std::int64_t bits, std::string const& name) {
  const bool ternary = name == "ternary" || name == "stretched_elastic_ternary";
  const bool stretched = name == "stretched_elastic" || name == "stretched_elastic_ternary";
  if (!ternary && !stretched && name != "signed" && name != "unsigned") {
    throw_argument(op, "grid", quoted(name),
                   "is not one of 'signed', 'unsigned', 'ternary', 'stretched_elastic', 'stretched_elastic_ternary'");
  }
  if (ternary || stretched) {
    // ParetoQ defines its stretched elastic grid for 2 bits and ternary only;
    // ternary grids are 2-bit codes (-1, 0, 1).
    if (bits != 2) {
      throw_argument(op, "bits", std::to_string(bits),
                     "must be 2 for grid = " + quoted(name) +
                         (stretched ? " (ParetoQ's stretched elastic grid exists for 2 bits and ternary)"
                                    : " (levels -1, 0, 1)"));
    }
    if (stretched) return ternary ? stretched_elastic_ternary_grid() : stretched_elastic_grid(2);
    return ternary_grid();
  }
  if (bits < 1 || bits > max_grid_bits) {
    throw_argument(op, "bits", std::to_string(bits), "is outside 1..16");
  }
  return name == "signed" ? signed_grid(static_cast<int>(bits)) : unsigned_grid(static_cast<int>(bits));
}

op_options parse_options(raw_options const& raw, std::vector<std::int64_t> const& sizes) {
  op_options out;
  out.op = raw.op;
  out.grid = parse_grid(raw.op, raw.bits, raw.grid);
  out.layout = parse_layout(raw, sizes, out.step_count);

  const std::size_t n = raw.params.size();
  const auto no_params = [&] {
    if (n != 0) {
      throw_argument(raw.op, "params", "a list of " + std::to_string(n) + " value(s)",
                     "must be empty for estimator = " + quoted(raw.estimator));
    }
  };
  if (raw.estimator == "ste") {
    out.estimator = estimator_kind::ste;
    no_params();
  } else if (raw.estimator == "stableqat") {
    out.estimator = estimator_kind::fourier;
    if (raw.harmonics < 1 || raw.harmonics > max_compiled_harmonics) {
      throw_argument(raw.op, "harmonics", std::to_string(raw.harmonics),
                     "is outside 1.." + std::to_string(max_compiled_harmonics) + " (the counts compiled into the op library)");
    }
    out.harmonics = static_cast<int>(raw.harmonics);
    if (n > 1 && n != static_cast<std::size_t>(out.harmonics)) {
      throw_argument(raw.op, "params", "a list of " + std::to_string(n) + " values",
                     "must be empty (paper amplitude 0.21), one amplitude A, or harmonics = " +
                         std::to_string(out.harmonics) + " coefficients a_k");
    }
    out.fourier_params = raw.params;
    validate_with_library(raw.op, n == 1 ? "params (amplitude)" : "params (coefficients)", [&] {
      switch (out.harmonics) {
        case 1: validate_fourier<1>(raw.params); break;
        case 2: validate_fourier<2>(raw.params); break;
        default: validate_fourier<3>(raw.params); break;
      }
    });
  } else if (raw.estimator == "dsq") {
    out.estimator = estimator_kind::dsq;
    no_params();
    if (!raw.alpha) {
      throw_argument(raw.op, "alpha", "None",
                     "but estimator = 'dsq' needs it: a 1-element tensor in (0, 1) (DSQ's learnable alpha, init 0.2)");
    }
    validate_with_library(raw.op, "alpha", [&] { (void)dsq_surrogate{*raw.alpha}; });
    out.dsq_alpha = *raw.alpha;
    // DSQ's tie rule and band are defined on the integer grid [qmin, qmax].
    if (out.grid.is_binary() || out.grid.is_stretched_elastic()) {
      throw_argument(raw.op, "grid", quoted(raw.grid) + (out.grid.is_binary() ? " with bits = 1" : ""),
                     "cannot be used with estimator = 'dsq' (DSQ needs a uniform integer grid: signed with "
                     "bits >= 2, unsigned, ternary)");
    }
  } else if (raw.estimator == "ewgs") {
    out.estimator = estimator_kind::ewgs;
    if (n != 1) {
      throw_argument(raw.op, "params", "a list of " + std::to_string(n) + " value(s)",
                     "must be [delta] for estimator = 'ewgs' (EWGS's scaling factor, delta >= 0)");
    }
    validate_with_library(raw.op, "params (delta)", [&] { (void)ewgs_surrogate{raw.params[0]}; });
    out.ewgs_delta = raw.params[0];
  } else {
    throw_argument(raw.op, "estimator", quoted(raw.estimator), "is not one of 'ste', 'stableqat', 'dsq', 'ewgs'");
  }
  if (raw.alpha && out.estimator != estimator_kind::dsq) {
    throw_argument(raw.op, "alpha", "a tensor", "is only used by estimator = 'dsq'; pass None");
  }
  if (raw.grad_scale) {
    const double s = *raw.grad_scale;
    if (!std::isfinite(s)) {
      throw_argument(raw.op, "grad_scale", detail::format_number(s), "is not finite");
    }
    out.grad_scale = s;
  }
  if (raw.mask_band == "official") {
    out.band = mask_band::official;
  } else if (raw.mask_band == "aten") {
    if (out.grid.is_binary() || out.grid.is_stretched_elastic()) {
      throw_argument(raw.op, "mask_band", "'aten'",
                     out.grid.is_binary() ? "has no meaning on the binary (1-bit sign) grid"
                                          : "has no meaning on the stretched elastic grid (its band is |x/s| <= 0.99)");
    }
    if (out.estimator == estimator_kind::dsq || out.estimator == estimator_kind::ewgs) {
      throw_argument(raw.op, "mask_band", "'aten'",
                     "is offered for estimator = 'ste' and 'stableqat' only (ATen parity); DSQ has its own "
                     "band and EWGS follows LSQ's");
    }
    out.band = mask_band::aten;
  } else {
    throw_argument(raw.op, "mask_band", quoted(raw.mask_band), "is not one of 'official', 'aten'");
  }
  return out;
}

}  // namespace stableqat::torch_adapter
