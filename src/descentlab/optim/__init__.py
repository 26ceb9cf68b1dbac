"""descentlab.optim: every classic optimizer as a composition of momentum and adaptation rules.

Drop-in ``torch.optim.Optimizer`` subclasses with torch's argument names, defaults and state keys,
plus ``flavor="keras"`` for Keras 3's formulas, and :class:`Composed` for any other point of the
lattice. See the README for the lattice and flavor tables.
"""

from descentlab.optim._chain import ADAPTATION_RULES, MOMENTUM_RULES, ORDERS, ChainOptimizer
from descentlab.optim._checks import FLAVORS, Flavored
from descentlab.optim.composed import Composed
from descentlab.optim.ftrl import FTRL
from descentlab.optim.named import SGD, Adadelta, Adagrad, Adam, Adamax, AdamW, NAdam, Nadam, Nadamax, RMSprop

NAMED = {
    "SGD": SGD,
    "Adagrad": Adagrad,
    "Adadelta": Adadelta,
    "RMSprop": RMSprop,
    "Adam": Adam,
    "AdamW": AdamW,
    "Adamax": Adamax,
    "Nadam": Nadam,
    "Nadamax": Nadamax,
    "FTRL": FTRL,
}

__all__ = [
    "ADAPTATION_RULES", "FLAVORS", "MOMENTUM_RULES", "NAMED", "ORDERS",
    "SGD", "Adadelta", "Adagrad", "Adam", "AdamW", "Adamax", "ChainOptimizer", "Composed", "FTRL",
    "Flavored", "NAdam", "Nadam", "Nadamax", "RMSprop",
]
