"""The largest differences observed against torch.optim and Keras 3, on the parity tests' own cases.

    KERAS_BACKEND=torch python bench/parity.py

The parity tests (``tests/test_optim.py``, ``tests/test_keras_parity.py``) assert a bound (float64
≤ 1e-10, float32 ≤ 1e-5, relative to each tensor's largest magnitude); this prints what those same
runs actually differ by, per case and at most over all cases, so the documentation can quote it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import torch  # noqa: E402

from cases import AUTHORS_CASES, TORCH_CASES  # noqa: E402
from helpers import clone_params, make_params, max_relative_difference, run  # noqa: E402


def against_reference(cases, dtype: torch.dtype) -> dict[str, float]:
    """What ``test_matches_torch_optim`` compares: 200 steps of random gradients, five shapes."""
    found = {}
    for case in cases:
        ours = make_params(dtype)
        theirs = clone_params(ours)
        run([(case.make(ours), ours), (case.make_torch(theirs), theirs)], steps=200)
        found[case.id] = max_relative_difference(ours, theirs)
    return found


def against_keras() -> dict[str, dict[str, float]]:
    """What ``test_keras_flavor_matches_keras_float64/32`` compare: 120 steps, three shapes."""
    import test_keras_parity as keras_parity  # skips (raises) without Keras on the torch backend

    return {
        dtype: {name: keras_parity._max_relative_difference(*pair, dtype) for name, pair in cases.items()}
        for dtype, cases in (("float64", keras_parity.FLOAT64_CASES), ("float32", keras_parity.FLOAT32_CASES))
    }


def _print(title: str, found: dict[str, float]) -> None:
    worst = max(found, key=found.get)
    print(f"{title}: max {found[worst]:.1e} ({worst}) over {len(found)} cases")
    for name, value in found.items():
        print(f"    {name:40s} {value:.1e}")


def main() -> None:
    for dtype in (torch.float64, torch.float32):
        _print(f"torch.optim, {str(dtype).removeprefix('torch.')}", against_reference(TORCH_CASES, dtype))
        _print(f"authors' packages, {str(dtype).removeprefix('torch.')}", against_reference(AUTHORS_CASES, dtype))
    for dtype, found in against_keras().items():
        _print(f"Keras 3, {dtype}", found)


if __name__ == "__main__":
    main()
