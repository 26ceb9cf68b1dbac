# Two commands do all set-up on a fresh machine: `make run` (the main job) and `make test`.
# torch is installed first and pinned, so that pip never resolves it by itself (a CUDA build).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
TORCH  ?= torch==2.13.0
# Triton's interpreter runs the generated CUDA kernels on the CPU in the tests (a ~190 MB wheel)
TRITON ?= triton==3.6.0
SHARED_DATA := $(abspath ../shared/data)
export DESCENTLAB_DATA ?= $(if $(wildcard $(SHARED_DATA)),$(SHARED_DATA),)

.PHONY: run test docs clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m pip install -q -e '.[ray]' || echo "Ray could not be installed: --executor ray and its test are unavailable"
	touch $@

# The main job: the talk in brief (its 2-D surfaces and both MNIST tasks x the 9 classic
# optimizers, lr tuned and bracketed, 3 seeds), resumable; ends with the verdict table and the
# path of its HTML report. The full talk is one flag away: --suite talk.
run: $(VENV)/.installed
	$(PY) -m descentlab run --suite talk-quick --workers 2 --db results/talk-quick.sqlite --out results/talk-quick --report

# Only the tests need Triton on a CPU machine: they run the generated CUDA kernels in its interpreter.
$(VENV)/.triton: $(VENV)/.installed
	$(PY) -m pip install -q $(TRITON) || echo "Triton could not be installed: its kernel tests are skipped"
	touch $@

# Lightning and transformers for the integration tests; torch named too, so that pip keeps the pinned one.
$(VENV)/.integrations: $(VENV)/.installed
	$(PY) -m pip install -q $(TORCH) -e '.[integrations]' || echo "Lightning/transformers could not be installed: their tests are skipped"
	touch $@

# The documentation site (MkDocs-Material; the API pages from the docstrings) into site/
docs: $(VENV)/.installed
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

test: $(VENV)/.installed $(VENV)/.triton $(VENV)/.integrations
	$(PY) -m ruff check src tests bench docs
	$(PY) -m mypy
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --quiet
	KERAS_BACKEND=torch $(PY) -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis src/*.egg-info results site
