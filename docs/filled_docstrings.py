"""A griffe extension: show the docstrings descentlab fills in at import time.

Each optimizer's docstring holds ``{params}`` and ``{shared}`` in its source, and
``descentlab.optim._docs.document`` fills the shared argument docs in when the class is created.
griffe reads the source, so for every class whose source docstring holds such a placeholder this
takes the docstring Python sees instead (the rest of the API is read statically as usual).
"""

from __future__ import annotations

import importlib
import inspect
import re
from typing import Any

import griffe

_PLACEHOLDER = re.compile(r"\{[a-z_]+\}")


class FilledDocstrings(griffe.Extension):
    def on_class(self, *, cls: griffe.Class, **kwargs: Any) -> None:
        if cls.docstring is None or not _PLACEHOLDER.search(cls.docstring.value):
            return
        module = importlib.import_module(cls.module.path)
        filled = inspect.cleandoc(getattr(module, cls.name).__doc__)
        if _PLACEHOLDER.search(filled):
            raise ValueError(f"{cls.path}: a placeholder is left unfilled in its docstring")
        cls.docstring.value = filled
