"""A griffe extension: show the docstrings as Python sees them, in Markdown.

Each optimizer's docstring holds ``{params}`` and ``{shared}`` in its source, and
``descentlab.optim._docs.document`` fills the shared argument docs in when the class is created.
griffe reads the source, so for every class whose source docstring holds such a placeholder this
takes the docstring Python sees instead (the rest of the API is read statically as usual). The
docstrings also use two reStructuredText spellings, as torch's do (``:class:`Study```, a line
ending in ``::`` before a literal block); they are shown as Markdown code and a plain colon.
"""

from __future__ import annotations

import importlib
import inspect
import re
from typing import Any

import griffe

_PLACEHOLDER = re.compile(r"\{[a-z_]+\}")
_ROLE = re.compile(r":(?:class|func|mod|meth|attr|data|exc):`~?\.?([^`]+)`")
_LITERAL_MARK = re.compile(r"::$", re.MULTILINE)


class FilledDocstrings(griffe.Extension):
    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is None:
            return
        text = obj.docstring.value
        if obj.is_class and _PLACEHOLDER.search(text):
            text = inspect.cleandoc(getattr(importlib.import_module(obj.module.path), obj.name).__doc__)
            if _PLACEHOLDER.search(text):
                raise ValueError(f"{obj.path}: a placeholder is left unfilled in its docstring")
        obj.docstring.value = _LITERAL_MARK.sub(":", _ROLE.sub(r"`\1`", text))
