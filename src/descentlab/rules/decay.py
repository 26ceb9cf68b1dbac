"""Keras-2 time-based learning-rate decay."""

from __future__ import annotations


def time_decay(lr: float, lr_decay: float, iterations: float) -> float:
    """The learning rate after ``iterations`` completed steps: ``lr / (1 + lr_decay·iterations)``.

    Conventions:
        Keras 2's ``decay`` argument (``lr·1/(1 + decay·iterations)``, iterations counted before the
        update) and torch Adagrad's ``lr_decay`` (``lr/(1 + (step − 1)·lr_decay)``, step counted
        after the increment) are the same schedule; Keras 3 dropped ``decay``. descentlab offers it
        on every optimizer as ``lr_decay``, counted per parameter like torch's ``step``.
    """
    if lr_decay == 0:
        return lr
    return lr / (1 + iterations * lr_decay)
