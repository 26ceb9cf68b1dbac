"""Porting a Keras 3 training recipe to PyTorch: the optimizer and its schedule, explained and checked."""

from descentlab.port.flavors import explain
from descentlab.port.optimizers import from_keras, to_keras
from descentlab.port.schedules import KerasSchedule

__all__ = ["KerasSchedule", "explain", "from_keras", "to_keras"]
