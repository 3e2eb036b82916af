"""stableqat for PyTorch: fake quantization with the StableQAT Fourier surrogate.

Pure Python over the op library torch.ops.stableqat (built by CMake as
build/<preset>/torch/libstableqat_torch.so; see stableqat._library for the
lookup). Use from a checkout with ``PYTHONPATH=python``.

    import stableqat
    y = stableqat.fake_quantize(x, step, bits=2, estimator="stableqat", harmonics=1, amplitude=0.21)
    changed = stableqat.quantize_model(model, bits=2, estimator="stableqat", skip=("lm_head",))
    # the paper's baselines: estimator="dsq" (learnable weight_alpha per layer), estimator="ewgs", delta=1e-3,
    # ParetoQ's grid="stretched_elastic" / "stretched_elastic_ternary" (bits=2)
    exported = stableqat.export_quantized(model)   # packed integer weights + learned steps
"""

from ._library import library_path, load
from .functional import ESTIMATORS, GRIDS, MASK_BANDS, fake_quantize, fake_quantize_backward, init_step, kernel_arch
from .nn import QuantLinear, quantize_model
from .export import (dequantize, dequantize_entry, export_quantized, load_quantized, pack_codes, quantize_to_codes,
                     unpack_codes)

__all__ = ["fake_quantize", "fake_quantize_backward", "init_step", "QuantLinear", "quantize_model",
           "library_path", "load", "ESTIMATORS", "GRIDS", "MASK_BANDS", "quantize_to_codes", "pack_codes",
           "unpack_codes", "dequantize", "dequantize_entry", "export_quantized", "load_quantized", "kernel_arch"]
