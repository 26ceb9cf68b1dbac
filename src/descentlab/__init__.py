"""descentlab: the classic gradient-descent optimizers, exact, and a lab that compares them."""

__version__ = "0.2.0"


def compare(*args, **kwargs):
    """Race optimizers on your own model with the lab's protocol; see :func:`descentlab.lab.compare.compare`."""
    from descentlab.lab.compare import compare as run_compare

    return run_compare(*args, **kwargs)
