"""descentlab.optim: every classic optimizer as a composition of momentum and adaptation rules.

Drop-in ``torch.optim.Optimizer`` subclasses with torch's argument names, defaults and state keys,
plus ``flavor="keras"`` for Keras 3's formulas, and :class:`Composed` for any other point of the
lattice. docs/library.md has the lattice and flavor tables.
"""

from descentlab.optim import named
from descentlab.optim._chain import ChainOptimizer
from descentlab.optim._checks import FLAVORS, Flavored
from descentlab.optim.composed import Composed
from descentlab.optim.ftrl import FTRL
from descentlab.optim.lattice import ADAPTATION_RULES, MOMENTUM_RULES, ORDERS
from descentlab.optim.named import *  # noqa: F403 - every named optimizer: named.__all__

# Every named optimizer by its name (aliases such as NAdam left out), in named.__all__'s order
NAMED: dict[str, type[ChainOptimizer]] = {
    name: getattr(named, name) for name in named.__all__ if getattr(named, name).__name__ == name
}
NAMED["FTRL"] = FTRL

__all__ = ["ADAPTATION_RULES", "FLAVORS", "MOMENTUM_RULES", "NAMED", "ORDERS", "ChainOptimizer", "Composed", "FTRL",
           "Flavored"]
__all__ += named.__all__  # the form type checkers read


def __getattr__(name: str):
    # The Keras port (descentlab.port) builds on this package: imported when first asked for.
    if name in ("from_keras", "to_keras", "explain"):
        from descentlab import port

        return getattr(port, name)
    raise AttributeError(f"module 'descentlab.optim' has no attribute {name!r}")
