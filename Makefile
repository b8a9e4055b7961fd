# The two commands of README.md are `make demo` and `make test`; everything else is a step.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup system python hapi demo test lint unit bench clean

setup: system python hapi

system:
	bash docker/local/ensure-system.sh

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

python: $(STAMP)

hapi:
	bash docker/hapi/build.sh >/dev/null

lint: python
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

unit: python
	$(VENV)/bin/pytest tests/unit -q

## the whole suite against real Orthanc, HAPI FHIR and PostgreSQL (README command 2)
test: setup lint
	$(VENV)/bin/pytest -q -rs

## archive + EHR + bridge + samples, ends with URLs to open (README command 1)
demo: setup
	$(PY) docker/local/demo.py

bench: setup
	$(PY) tests/bench/bench_mapping.py

clean:
	rm -rf .run build *.egg-info
