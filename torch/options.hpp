// torch/options.hpp: the op schema's non-tensor arguments, parsed and validated.
//
// Plain C++ (no torch headers): register.cpp turns the TorchScript values into
// raw_options, parse_options() checks them against the library's rules and
// builds the grid, layout and estimator the kernels (kernels.cpp) run with.
// Every error is std::invalid_argument("<op>: <argument> = <value> <problem>")
// (unsupported features: unsupported_feature), so Python sees the argument's name.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <stableqat/core/grid.hpp>
#include <stableqat/core/layout.hpp>

namespace stableqat::torch_adapter {

/// A feature the schema names but this build of the op library does not
/// implement (e.g. a device without kernels). Python: NotImplementedError.
class unsupported_feature : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

/// Which surrogate gradient of round() the backward pass uses.
enum class estimator_kind {
  ste,      ///< g = 1 (fourier_surrogate<0>)
  fourier,  ///< StableQAT rotated Fourier surrogate with `harmonics` odd harmonics
  dsq,      ///< DSQ (dsq_surrogate): own rounding and band, learnable alpha (its gradient is returned)
  ewgs,     ///< EWGS (ewgs_surrogate): g = 1 + delta sign(dy) r
};

/// Which elements receive dx (and the LSQ inside-step term).
enum class mask_band {
  official,  ///< qmin <= v <= qmax on v itself (LSQ, official StableQAT code)
  aten,      ///< qmin <= round(v) <= qmax (ATen's fake_quantize_* kernels)
};

/// Largest harmonic count compiled into the op library (fourier_surrogate<1..3>).
inline constexpr int max_compiled_harmonics = 3;

/// The schema arguments exactly as the caller gave them.
struct raw_options {
  const char* op = "stableqat::fake_quantize";
  std::int64_t bits = 8;
  std::string grid = "signed";
  std::optional<std::int64_t> axis;
  std::optional<std::int64_t> group_size;
  std::string estimator = "ste";
  std::int64_t harmonics = 1;
  std::vector<double> params;
  /// The value of the 1-element `alpha` tensor (DSQ), read on the host; nullopt when None.
  std::optional<double> alpha;
  std::optional<double> grad_scale;
  std::string mask_band = "official";
};

/// Validated configuration of one call.
struct op_options {
  const char* op = "stableqat::fake_quantize";
  stableqat::grid grid = signed_grid(8);
  /// Step layout for the tensor's shape (per tensor, per row of dim 0, per group).
  stableqat::step_layout layout = per_tensor();
  /// Steps the layout needs for this tensor (also for an empty tensor).
  std::size_t step_count = 1;
  estimator_kind estimator = estimator_kind::ste;
  int harmonics = 0;
  /// Fourier: empty = paper amplitude 0.21, one value = amplitude A, K values = coefficients a_k.
  std::vector<double> fourier_params;
  /// DSQ's alpha in (0, 1) (validated by dsq_surrogate).
  double dsq_alpha = 0.2;
  /// EWGS's delta in [0, 2) (validated by ewgs_surrogate).
  double ewgs_delta = 0.0;
  std::optional<double> grad_scale;
  enum mask_band band = mask_band::official;
};

/// Parses and validates `raw` for a tensor of shape `sizes`; constructs the
/// surrogate once so that invalid amplitudes/coefficients fail here, in the
/// forward call, not only in backward. Throws std::invalid_argument or unsupported_feature.
op_options parse_options(raw_options const& raw, std::vector<std::int64_t> const& sizes);

/// Grid of the schema's (bits, grid) pair alone (also used by init_step).
stableqat::grid parse_grid(const char* op, std::int64_t bits, std::string const& grid);

/// "<op>: <argument> = <value> <problem>" as std::invalid_argument.
[[noreturn]] void throw_argument(const char* op, std::string const& argument, std::string const& value,
                                 std::string const& problem);

}  // namespace stableqat::torch_adapter
