# Entry points: `make run` (the app), `make test` (the whole test suite, what CI runs), `make test-fast` (the
# same without the tests marked slow), `make lint` (ruff, configured in ruff.toml; ESLint and Prettier on web/),
# `make space SPACE=user/name` (deploy).
# `run` installs requirements.txt into .venv (what a Space installs); `test` and `lint` add requirements-dev.txt.
# Each stamp depends on the files it installs, so editing one re-installs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SPACE ?=

.PHONY: run test test-fast lint lint-web smoke bench space space-dry-run web web-serve web-space-dry-run web-bench

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.runtime: requirements.txt | $(PY)
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev: requirements-dev.txt requirements.txt | $(PY)
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

run: $(VENV)/.runtime
	$(PY) app.py

# The suite runs on TEST_WORKERS processes (pytest-xdist): the tests that use the app server or Chromium run
# together on one of them, which starts each once; every other module's tests run together on any one. The groups
# are handed out in the order tests/conftest.py sorts them (longest first).
TEST_WORKERS ?= 2
PYTEST := $(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder

test: $(VENV)/.dev
	$(PYTEST)

# Not the servers, browsers, subprocess trainers and passes of thousands of views (marked slow): for iterating.
test-fast: $(VENV)/.dev
	$(PYTEST) -m "not slow"

lint: $(VENV)/.dev lint-web
	$(VENV)/bin/ruff check .

# ESLint (web/eslint.config.js) and Prettier's check (web/.prettierrc.json) on the page's code, at the versions
# web/package-lock.json pins; npm ci first where web/node_modules is missing.
lint-web:
	cd web && { test -d node_modules || npm ci --no-audit --no-fund; } && npm run lint

smoke: $(VENV)/.dev
	$(PY) -m train.train --dataset ../shared/data/fer2013 --epochs 1 --limit-train 2000 --out runs/smoke

bench: $(VENV)/.dev
	$(PY) -m bench.train_throughput
	$(PY) -m bench.latency
	$(PY) -m bench.roofline
	$(PY) -m bench.load

space-dry-run: $(VENV)/.runtime
	$(PY) -m tools.deploy_space --dry-run

space: $(VENV)/.runtime
	$(PY) -m tools.deploy_space $(SPACE)

# The static page (web/, see docs/web-page.md): export the ONNX files, install the pinned npm packages, build web/dist.
web: $(VENV)/.dev
	$(PY) -m tools.export_web
	cd web && npm ci --no-audit --no-fund && npm run build

# tools/serve_web.py: web/dist with the COOP/COEP/CORP headers that make the page cross-origin isolated (threads).
web-serve:
	@test -f web/dist/index.html || $(MAKE) web
	$(PY) -m tools.serve_web --port $(or $(PORT),8000)

# The static Space's file list and README front matter (custom_headers), no network.
web-space-dry-run:
	@test -f web/dist/index.html || $(MAKE) web
	$(PY) -m tools.deploy_space --static --dry-run

# The page's speed in headless Chromium (docs/web-page.md): load, photo stages, webcam frames/s, threads, CPU.
web-bench:
	@test -f web/dist/index.html || $(MAKE) web
	$(PY) -m bench.web_page
