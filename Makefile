# The two commands of README.md are `make demo` and `make test`; everything else is a step.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup system browser python hapi viewer newman demo test lint unit bench clean

setup: system python hapi viewer newman

system:
	bash docker/local/ensure-system.sh

## Debian chromium for the browser tests (Playwright drives it; no browser download)
browser:
	BRIDGE_WITH_BROWSER=1 bash docker/local/ensure-system.sh

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

python: $(STAMP)

hapi:
	bash docker/hapi/build.sh >/dev/null

## the OHIF viewer (npm @ohif/app dist/) into ~/.cache/imaging-bridge, never committed
viewer:
	bash docker/local/fetch_ohif.sh >/dev/null

## newman (npm, pinned in docker/postman/package-lock.json) into docker/postman/node_modules
newman:
	bash docker/postman/fetch_newman.sh >/dev/null

lint: python
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

unit: python
	$(VENV)/bin/pytest tests/unit -q

## the whole suite against real Orthanc, HAPI FHIR and PostgreSQL (README command 2)
test: setup browser lint
	$(VENV)/bin/pytest -q -rs

## archive + EHR + bridge + samples, ends with URLs to open (README command 1)
demo: setup
	$(PY) docker/local/demo.py

bench: setup
	$(PY) tests/bench/bench_mapping.py

clean:
	rm -rf .run build *.egg-info
