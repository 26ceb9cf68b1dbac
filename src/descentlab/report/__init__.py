"""descentlab.report: the pictures and the one HTML page of a study, read from the store alone.

:func:`write_report` draws every figure (surface paths and races, training curves, lr
sensitivity, the performance profile) and writes them with the tables into one self-contained
``report.html``; ``descentlab report`` and ``descentlab run --report`` call it.
"""

from descentlab.report.build import write_report

__all__ = ["write_report"]
