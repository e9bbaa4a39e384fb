# Everything installs from PyPI into .venv; a fresh machine needs only python3 and make.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: install dev torch demo test test-fast lint bench docs clean

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

# Everything: SQLite and PostgreSQL, the S3 servers, the slow tests (what CI runs).
test: $(VENV)/.installed-dev
	$(PY) -m pytest $(PYTEST_ARGS)

# The quick loop: SQLite only, no S3 server, nothing slow (markers set in tests/conftest.py).
test-fast: $(VENV)/.installed-dev
	$(PY) -m pytest -m "not postgres and not s3 and not slow" $(PYTEST_ARGS)

# Both checks always run, so one pass shows every problem; fails if either does.
lint: $(VENV)/.installed-dev
	@status=0; \
	$(VENV)/bin/ruff check src tests benchmarks docs/_hooks || status=1; \
	$(VENV)/bin/mypy || status=1; \
	exit $$status

# The docs site, strict (a broken link or reference fails), into site/; tests/test_docs.py runs its examples.
docs: $(VENV)/.installed-dev
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

bench: $(VENV)/.installed-dev
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) build dist site .pytest_cache
