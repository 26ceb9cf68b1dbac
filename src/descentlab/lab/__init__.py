"""descentlab.lab: fair, resumable optimizer studies (docs/design.md, "A fair comparison").

- :class:`Study`: problems × optimizers × learning-rate grid × seeds × budget;
- :func:`run_study`: tune on seed 0 (extending each lr grid until its best point is bracketed),
  select on validation, confirm on every seed, report test metrics; results in a SQLite
  :class:`Store`, so a killed study resumes;
- :func:`summarize` reads a study back from the store alone; :func:`format_summary` prints it,
  with the verdict on the talk's claims;
- :data:`SUITES`: predefined studies (``quick`` is a sub-minute smoke study, ``talk`` the talk);
- :func:`descentlab.compare`: the same protocol on your own model.
"""

from descentlab.lab.protocol import run_study
from descentlab.lab.spec import OPTIMIZERS, TrialSpec, default_lr, lr_grid
from descentlab.lab.store import Store, StoreError
from descentlab.lab.study import Study
from descentlab.lab.suites import SUITES
from descentlab.lab.summary import summarize
from descentlab.lab.tables import format_summary

__all__ = ["OPTIMIZERS", "SUITES", "Store", "StoreError", "Study", "TrialSpec", "default_lr", "format_summary",
           "lr_grid", "run_study", "summarize"]
