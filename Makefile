# Everything installs from PyPI into .venv; a fresh machine needs only python3 and make.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: install dev torch demo test bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PIP) install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(PY)
	$(PIP) install -q -e '.[dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed

dev: $(VENV)/.installed-dev

# The CPU build of torch, for the datasource dataloader tests (optional).
torch: $(VENV)/.installed-dev
	$(PIP) install -q torch==2.13.0

demo: $(VENV)/.installed
	$(VENV)/bin/limnos demo

test: $(VENV)/.installed-dev
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.installed-dev
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) build dist .pytest_cache
