"""The documentation: every reference resolves, and the API pages show the filled-in docstrings."""

from __future__ import annotations

import importlib.util
import inspect
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_no_source_cites_the_design_notes():
    """The design notes the code once cited are not in the repository: docs/design.md replaced them."""
    notes = "DESIGN" + ".md"  # spelled apart so that this file does not cite it either
    citing = [str(path.relative_to(ROOT)) for folder in ("src", "tests", "bench") for path in (ROOT / folder).rglob("*")
              if path.is_file() and path.suffix in {".py", ".md", ".html", ".js", ".toml"}
              and notes in path.read_text(encoding="utf-8")]
    assert citing == []


def test_the_api_pages_show_the_shared_argument_docs_filled_in():
    griffe = pytest.importorskip("griffe")
    spec = importlib.util.spec_from_file_location("filled_docstrings", ROOT / "docs" / "filled_docstrings.py")
    extension = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(extension)

    package = griffe.load("descentlab.optim", search_paths=[str(ROOT / "src")],
                          extensions=griffe.load_extensions(extension.FilledDocstrings()))
    for name in ("SGD", "Adam", "AdaBelief"):
        docstring = package[name].docstring.value
        assert "{shared}" not in docstring and "{params}" not in docstring
        assert "params: the tensors to optimize, or dicts defining param groups" in docstring
        assert "decoupled_weight_decay: decay the weights apart from the gradient" in docstring
        assert ":class:" not in docstring and "::\n" not in docstring  # shown as Markdown


def test_no_optimizer_documents_an_argument_it_does_not_take():
    """AdamW takes no ``decoupled_weight_decay``, so the shared docs filled into it leave that entry out."""
    from descentlab import optim

    for cls in [*optim.NAMED.values(), optim.Composed]:
        args = inspect.getdoc(cls).split("\nArgs:\n", 1)[1].split("\n\n", 1)[0]
        documented = set(re.findall(r"^\s{4}(\w+):", args, flags=re.MULTILINE))
        assert documented <= set(inspect.signature(cls.__init__).parameters), cls.__name__
