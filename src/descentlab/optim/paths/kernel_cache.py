"""Generated kernel sources as files in a disk cache, imported as modules.

Each distinct source is written once to ``<cache>/kernels/<prefix>_<hash>.py`` and imported from
there, so that the compilers' own disk caches (numba's ``cache=True`` next to the file, Triton's
under ``~/.triton``) find it again in a new process: a new process pays an import and a cache
load, not a compilation. Triton also needs the function's source in a file to compile it. The
cache directory is ``DESCENTLAB_CACHE`` (or ``~/.cache/descentlab``), as for datasets.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from pathlib import Path


def cache_dir() -> Path:
    root = os.environ.get("DESCENTLAB_CACHE") or Path.home() / ".cache" / "descentlab"
    return Path(root) / "kernels"


def load_module(source: str, prefix: str):
    """The module whose text is ``source``, imported from its file in the cache (written if new)."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:20]
    directory = cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{prefix}_{digest}.py"
    if not path.exists():
        # Written once and never touched again: numba's cache is keyed on the file's mtime.
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(source)
        os.replace(temporary, path)
    name = f"descentlab_kernels.{prefix}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None  # a .py file's spec has a loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
