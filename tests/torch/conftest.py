"""pytest setup for the PyTorch adapter's tests (run by ctest, see tests/torch.cmake).

ctest sets PYTHONPATH=<repo>/python and STABLEQAT_TORCH_LIBRARY to the freshly
built op library; run by hand, the package falls back to build/<preset>/torch/.
"""

import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
if str(ROOT / "python") not in sys.path:
    sys.path.insert(0, str(ROOT / "python"))
