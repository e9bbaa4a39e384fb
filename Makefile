# Everything installs from PyPI into .venv; a fresh machine needs only python3 and make.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: install dev torch tensorflow demo test test-fast lint bench docs clean web-assets

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

# The CPU build of TensorFlow (1.3 GB), for the tf.data export tests (optional).
tensorflow: $(VENV)/.installed-dev
	$(PIP) install -q 'tensorflow-cpu>=2.16'

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

# The lineage page's graph library, built from npm and committed under src/limnos/web/static/vendor/
# (with VERSIONS and the licenses), so that `pip install limnos[web]` needs no node. Needs npm.
WEB_VENDOR := src/limnos/web/static/vendor
WEB_NPM := cytoscape@3.35.0 cytoscape-dagre@2.5.0 dagre@0.8.5
web-assets:
	rm -rf build/web-assets && mkdir -p build/web-assets $(WEB_VENDOR)
	cd build/web-assets && echo '{"private": true}' > package.json && npm install --no-audit --no-fund --silent $(WEB_NPM)
	cp build/web-assets/node_modules/cytoscape/dist/cytoscape.min.js $(WEB_VENDOR)/
	cp build/web-assets/node_modules/dagre/dist/dagre.min.js $(WEB_VENDOR)/
	cp build/web-assets/node_modules/cytoscape-dagre/cytoscape-dagre.js $(WEB_VENDOR)/
	: > $(WEB_VENDOR)/LICENSE
	for p in cytoscape dagre cytoscape-dagre graphlib lodash; do \
	  printf '== %s ==\n' "$$p" >> $(WEB_VENDOR)/LICENSE; cat build/web-assets/node_modules/$$p/LICENSE* >> $(WEB_VENDOR)/LICENSE; \
	  printf '\n' >> $(WEB_VENDOR)/LICENSE; done
	cd build/web-assets && node -e 'for (const p of ["cytoscape","cytoscape-dagre","dagre","graphlib","lodash"]) { const j = require("./node_modules/" + p + "/package.json"); console.log(p + " " + j.version + " " + j.license); }' > ../../$(WEB_VENDOR)/VERSIONS

clean:
	rm -rf $(VENV) build dist site .pytest_cache
