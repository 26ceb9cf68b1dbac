"""Compile traced loop bodies with numba, cached on disk across processes.

Each distinct kernel source is written once to ``<cache>/kernels/k_<hash>.py`` and compiled with
``@njit(cache=True)``, so numba keeps the machine code next to it: a new process pays an import
and a cache load (tens of ms), not a compilation. The cache directory is ``DESCENTLAB_CACHE`` (or
``~/.cache/descentlab``), as for datasets; ``DESCENTLAB_FUSED=0`` turns the fused path off.

Why numba (README, design): it reached the bandwidth bound for every rule in the prototype,
compiles one kernel in well under a second, caches to disk, and installs as two wheels; a cold
``torch.compile`` took ~11 s here and needs a C compiler at run time.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from functools import cache
from pathlib import Path

# arcp (x/y as x·(1/y)) only: no nnan/ninf, so NaN and inf propagate as in torch (the lab
# detects divergence by them), and no contraction into FMAs, so equal inputs round equally.
FASTMATH = {"arcp"}
# Below this many elements one thread is faster: waking the thread pool costs more than it saves.
PARALLEL_MIN_ELEMENTS = 1 << 16


@cache
def unavailable_reason() -> str | None:
    """Why the fused path cannot run here, or None if it can."""
    if os.environ.get("DESCENTLAB_FUSED", "1") == "0":
        return "the fused path is turned off by DESCENTLAB_FUSED=0"
    try:
        import numba  # noqa: F401
    except ImportError as error:  # pragma: no cover - numba is a dependency
        return f"numba cannot be imported ({error}); install it with `pip install numba`"
    return None


def cache_dir() -> Path:
    root = os.environ.get("DESCENTLAB_CACHE") or Path.home() / ".cache" / "descentlab"
    return Path(root) / "kernels"


class Kernel:
    """One compiled loop: ``kernel(arrays, scalars)`` picks the serial or parallel version."""

    def __init__(self, module) -> None:
        self.parallel = module.parallel_step
        self.serial = module.serial_step

    def __call__(self, arrays: list, scalars) -> None:
        function = self.parallel if arrays[0].shape[0] >= PARALLEL_MIN_ELEMENTS else self.serial
        function(*arrays, scalars)


_compiled: dict[str, Kernel] = {}


def kernel(source: str) -> Kernel:
    """The compiled kernel for ``source`` (memory, then disk cache, then numba)."""
    found = _compiled.get(source)
    if found is None:
        found = _compiled[source] = Kernel(_load(source))
    return found


def _load(source: str):
    from numba import njit

    digest = hashlib.sha256(source.encode()).hexdigest()[:20]
    directory = cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"k_{digest}.py"
    if not path.exists():
        # Written once and never touched again: numba's cache is keyed on the file's mtime.
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(source)
        os.replace(temporary, path)
    name = f"descentlab_kernels.k_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    options = dict(cache=True, fastmath=FASTMATH, nogil=True, error_model="numpy")
    module.parallel_step = njit(parallel=True, **options)(module.parallel_step)
    module.serial_step = njit(**options)(module.serial_step)
    return module
