# sansio-wss: `make demo` and `make test` need only python3; everything else is installed here.
PY ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
PYENV_ROOT ?= $(HOME)/.pyenv
PY313 ?= $(firstword $(wildcard $(PYENV_ROOT)/versions/3.13*/bin/python3) $(shell command -v python3.13))
FUZZ_SECONDS ?= 20
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test lint typecheck unit py313 fuzz-smoke fuzz bench bench-quick wheel clean node-ws chromium proxies \
	conformance conformance-full

$(VENV)/.deps: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade "pip>=24" setuptools wheel
	$(BIN)/pip install -q ".[test,trio,fuzz,bench,cli]"
	touch $@

# Always rebuild and reinstall the wheel (never an editable install): the tests
# and mypy must see exactly what users install.
wheel: $(VENV)/.deps
	rm -rf build dist
	$(BIN)/pip wheel -q --no-deps --no-build-isolation -w dist .
	$(BIN)/pip install -q --force-reinstall --no-deps dist/*.whl

demo: wheel
	cd /tmp && $(BIN)/python -m sansio_wss demo

lint: $(VENV)/.deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy runs from outside the repo so that it checks the installed package,
# adapters included (from the repo root the local sansio_wss/ would shadow it);
# one run per folder, as each test folder is its own import root.
MYPY := cd /tmp && MYPYPATH=$(CURDIR)/tests $(BIN)/mypy --strict --config-file $(CURDIR)/pyproject.toml --cache-dir $(CURDIR)/.mypy_cache
TYPED_DIRS := tests/wire.py tests/hep_wire.py tests/proxy_wire.py tests/leaks.py tests/conftest.py tests/core tests/adapter_suite tests/properties tests/reference \
	tests/packaging tests/fuzz_replay tests/cli tests/proxies fuzz bench tools conformance

typecheck: wheel
	$(MYPY) -p sansio_wss
	for dir in $(TYPED_DIRS); do $(MYPY) $(CURDIR)/$$dir || exit 1; done

# The core twice: with its optional C unmasking, then on the pure-Python reference path.
# Node's ws, a peer for the interop tests (node ships with these machines).
.node/node_modules/ws/package.json:
	mkdir -p .node
	cd .node && npm install --no-audit --no-fund --silent ws@8

node-ws: .node/node_modules/ws/package.json

# Debian's Chromium, for the browser test of the test page.
chromium:
	command -v chromium >/dev/null || { apt-get update -q && apt-get install -y -q chromium; }

# Debian's nginx and HAProxy, for tests/proxies (run as subprocesses on loopback; the packages may
# also start their own services, which the tests do not use).
proxies:
	command -v nginx >/dev/null || test -x /usr/sbin/nginx || { apt-get update -q && apt-get install -y -q nginx; }
	command -v haproxy >/dev/null || test -x /usr/sbin/haproxy || { apt-get update -q && apt-get install -y -q haproxy; }

unit: wheel node-ws chromium proxies
	$(BIN)/pytest -p no:cacheprovider --cov --cov-report=
	SANSIO_WSS_PURE=1 $(BIN)/pytest -p no:cacheprovider --cov --cov-append --cov-report=term \
		--cov-fail-under=95 tests/core tests/properties tests/reference

# The core tests again on Python 3.13 (3.10 to 3.13 are supported).
py313: wheel
	@test -n "$(PY313)" || { echo "python 3.13 not found (pyenv or PATH)"; exit 1; }
	test -x .venv313/bin/python || $(PY313) -m venv .venv313
	.venv313/bin/pip install -q pytest hypothesis h11 wsproto websockets cryptography trustme setuptools wheel
	rm -rf build dist313
	.venv313/bin/pip wheel -q --no-deps --no-build-isolation -w dist313 .
	.venv313/bin/pip install -q --force-reinstall --no-deps dist313/*.whl
	.venv313/bin/pytest -p no:cacheprovider tests/core tests/properties tests/reference

fuzz-smoke: wheel
	$(BIN)/python fuzz/run.py --seconds 3

fuzz: wheel
	$(BIN)/python fuzz/run.py --seconds $(FUZZ_SECONDS)

test: lint typecheck unit py313 fuzz-smoke conformance
	@echo "make test: all checks passed"

bench: wheel
	$(BIN)/python bench/core_bench.py
	$(BIN)/python bench/adapters_bench.py
	$(BIN)/python bench/trace_bench.py
	$(BIN)/python bench/deflate_bench.py
	$(BIN)/python bench/proxy_bench.py

bench-quick: wheel
	$(BIN)/python bench/core_bench.py --quick
	$(BIN)/python bench/adapters_bench.py --quick
	$(BIN)/python bench/trace_bench.py --quick
	$(BIN)/python bench/deflate_bench.py --quick
	$(BIN)/python bench/proxy_bench.py --quick

# The Autobahn testsuite (conformance/README.md). autobahntestsuite is Python 2 code: it runs
# in a Python 2.7.18 virtualenv (pyenv's), made by virtualenv 20.21.1, the last release that
# still creates 2.7 environments, itself installed in a Python 3 venv beside it.
AUTOBAHN := .venv-autobahn
PY27 ?= $(PYENV_ROOT)/versions/2.7.18/bin/python
CONFORMANCE := $(BIN)/python conformance/run.py --wstest $(CURDIR)/$(AUTOBAHN)/py27/bin/python

$(AUTOBAHN)/.deps: conformance/requirements-py27.txt
	@test -x "$(PY27)" || { echo "Python 2.7.18 not found at $(PY27) (pyenv install 2.7.18)"; exit 1; }
	rm -rf $(AUTOBAHN)
	$(PY) -m venv $(AUTOBAHN)/tool
	$(AUTOBAHN)/tool/bin/pip install -q "virtualenv==20.21.1"
	$(AUTOBAHN)/tool/bin/virtualenv -q -p "$(PY27)" $(AUTOBAHN)/py27
	$(AUTOBAHN)/py27/bin/pip install -q --prefer-binary -r conformance/requirements-py27.txt
	$(AUTOBAHN)/py27/bin/wstest -a
	touch $@

# Groups 1-10 and one case of each permessage-deflate subgroup (12.x, 13.x: 13 of their 216),
# both roles, asyncio adapter: about 100 s.
conformance: wheel $(AUTOBAHN)/.deps
	$(CONFORMANCE) quick

# Every case of groups 1-13, both roles, then the trio and sync servers too: 1 to 2 hours.
conformance-full: wheel $(AUTOBAHN)/.deps
	$(CONFORMANCE) full

clean:
	rm -rf build dist dist313 $(VENV) .venv313 .node .coverage .hypothesis $(AUTOBAHN) conformance/reports
