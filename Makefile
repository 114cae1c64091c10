# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench chaos install clean plotly-js

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  echo "Python 3.11 or newer is needed: run e.g. 'make $(MAKECMDGOALS) PYTHON=python3.12'."; \
	  exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## Run the whole platform: embedded Redis, an RQ worker, the web server, seeded demo data.
demo: $(STAMP)
	$(PY) -m routing_platform.launcher

## Lint, the import contracts, and the test suite.
lint: $(STAMP)
	$(VENV)/bin/ruff check --no-cache .
	$(VENV)/bin/lint-imports

test: lint
	$(VENV)/bin/pytest $(PYTEST_ARGS)

## Benchmarks: rewrites BENCHMARKS.md (BENCH_ARGS="--quick" or "--only NAME").
bench: $(STAMP)
	$(PY) -m benchmarks.run $(BENCH_ARGS)

## Chaos suite (not in `make test`): PostgreSQL, redis-server, 2 web + 2 RQ workers on
## 127.0.0.1; kills workers, stops Redis, restarts PostgreSQL; writes BENCHMARKS.md (~10 min).
chaos: $(STAMP)
	$(PY) -m benchmarks.chaos $(CHAOS_ARGS)

## Re-vendor the admin's plotly.js: the official "basic" partial bundle (scatter, bar, pie)
## from npm, at the plotly.js version the installed plotly package bundles. Never at run time.
## First line: V8's explicit compile hint, so Chromium compiles the bundle's functions while it
## streams in (off the main thread) instead of lazily on first call (docs/decisions/0016-*).
PLOTLY_JS_DIR := dashboard/static/dashboard
PLOTLY_COMPILE_HINT := //\# allFunctionsCalledOnLoad
plotly-js: $(STAMP)
	@version=$$($(PY) -c 'from plotly.offline import get_plotlyjs_version; print(get_plotlyjs_version())') && \
	  work=$$(mktemp -d) && \
	  (cd $$work && npm pack --silent plotly.js-basic-dist-min@$$version >/dev/null && tar xzf *.tgz) && \
	  { echo '$(PLOTLY_COMPILE_HINT)'; cat $$work/package/plotly-basic.min.js; } > $(PLOTLY_JS_DIR)/plotly-basic.min.js && \
	  cp $$work/package/LICENSE $(PLOTLY_JS_DIR)/plotly-basic.LICENSE.txt && \
	  rm -rf $$work && \
	  echo "plotly.js-basic-dist-min@$$version -> $(PLOTLY_JS_DIR)/plotly-basic.min.js" && \
	  sha256sum $(PLOTLY_JS_DIR)/plotly-basic.min.js

clean:
	rm -rf $(VENV) var .pytest_cache
