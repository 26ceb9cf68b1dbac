"""descentlab.lab: fair, resumable optimizer studies (DESIGN.md §5).

- :class:`Study`: problems × optimizers × learning-rate grid × seeds × budget;
- :func:`run_study`: tune on seed 0, select on validation, confirm on every seed, report test
  metrics; results in a SQLite :class:`Store`, so a killed study resumes;
- :data:`SUITES`: predefined studies (``quick`` is a sub-minute smoke study);
- :func:`descentlab.compare`: the same protocol on your own model.
"""

from descentlab.lab.spec import OPTIMIZERS, Study, TrialSpec, default_lr, lr_grid
from descentlab.lab.store import Store
from descentlab.lab.study import format_summary, run_study, summarize
from descentlab.lab.suites import SUITES

__all__ = ["OPTIMIZERS", "SUITES", "Store", "Study", "TrialSpec", "default_lr", "format_summary", "lr_grid",
           "run_study", "summarize"]
