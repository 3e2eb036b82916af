"""Finds and loads the compiled op library (libstableqat_torch.so).

The one supported way to use the package from a checkout is:

    cmake --preset release && cmake --build --preset release --target stableqat_torch
    PYTHONPATH=python /usr/bin/python3 -c "import stableqat"

The library is looked up, in this order, at
  1. ``$STABLEQAT_TORCH_LIBRARY`` (a path to the .so; an error if it does not exist),
  2. ``build/<preset>/torch/libstableqat_torch.so`` next to this ``python/`` folder,
     presets tried as release, portable, then any other in name order,
  3. the package's own folder (where an installer may copy it).
"""

import os
import pathlib

import torch

_LIBRARY_NAME = "libstableqat_torch.so"
_loaded_path = None


def candidate_paths():
    """Paths searched for the op library, in order (the environment variable first)."""
    package = pathlib.Path(__file__).resolve().parent
    build = package.parent.parent / "build"
    found = []
    preferred = ["release", "portable"]
    if build.is_dir():
        others = sorted(p.name for p in build.iterdir() if p.is_dir() and p.name not in preferred)
        for preset in preferred + others:
            found.append(build / preset / "torch" / _LIBRARY_NAME)
    found.append(package / _LIBRARY_NAME)
    return found


def library_path():
    """The op library this process loads (or has loaded)."""
    if _loaded_path is not None:
        return _loaded_path
    env = os.environ.get("STABLEQAT_TORCH_LIBRARY")
    if env:
        path = pathlib.Path(env)
        if not path.is_file():
            raise OSError(f"STABLEQAT_TORCH_LIBRARY = {env!r} is not a file")
        return str(path)
    for path in candidate_paths():
        if path.is_file():
            return str(path)
    searched = "\n  ".join(str(p) for p in candidate_paths())
    raise OSError(
        "stableqat: the op library libstableqat_torch.so was not found; build it with\n"
        "  cmake --preset release && cmake --build --preset release --target stableqat_torch\n"
        "or point STABLEQAT_TORCH_LIBRARY at it. Searched:\n  " + searched)


def load():
    """Loads the op library once; afterwards torch.ops.stableqat.* exist (also for TorchScript)."""
    global _loaded_path
    if _loaded_path is None:
        path = library_path()
        torch.ops.load_library(path)
        _loaded_path = path
    return _loaded_path
