"""descentlab: the classic gradient-descent optimizers, exact, and a lab that compares them."""

__version__ = "0.1.0"
