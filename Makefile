# Thin wrappers around the course CLI. `make run` and `make test` do all the setup.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SHELL  := /bin/bash
# Some pip configurations warn once per package about missing mirror folders; keep the noise out.
QUIET_PIP := 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }

.DEFAULT_GOAL := help
.PHONY: help setup run lab check notebooks test lint up down status bench lock wheelhouse

help:  ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

# The venv is rebuilt only when the lock or the package metadata changed since the last install.
$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11, 5) else "Python 3.11.5+ is needed (a pinned package needs it); set PYTHON=/path/to/python3.11")'
	@test -x $(BIN)/python || { echo "==> creating $(VENV)"; $(PYTHON) -m venv $(VENV); }
	@echo "==> installing pinned packages from requirements.lock (first time: about 2 minutes)"
	@set -o pipefail; $(BIN)/python -m pip install --disable-pip-version-check --progress-bar off -q -r requirements.lock $(QUIET_PIP)
	@set -o pipefail; $(BIN)/python -m pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e . $(QUIET_PIP)
	@touch $(STAMP)
	@echo "==> $(VENV) is ready"

setup: $(STAMP)  ## create or refresh the venv from requirements.lock

run: setup  ## start the stack and execute every lesson notebook in order (build/notebooks/)
	$(BIN)/course run

lab: setup  ## start the stack and JupyterLab on the lessons
	$(BIN)/course lab

check: setup  ## check every exercise against the stack, with a summary table
	$(BIN)/course check --all

notebooks: setup  ## run every lesson and save its outputs into notebooks/ (to commit)
	$(BIN)/course run --save-outputs

test: setup  ## run the whole test suite (starts its own stack on its own ports)
	$(BIN)/python -m pytest

lint: setup  ## ruff (code and notebooks)
	$(BIN)/ruff check .

up: setup  ## start the stack
	$(BIN)/course up

down: setup  ## stop the stack
	$(BIN)/course down

status: setup  ## show what runs where
	$(BIN)/course status

bench: setup  ## run the benchmarks
	$(BIN)/python benchmarks/clickhouse_server.py
	$(BIN)/python benchmarks/course_run.py

# For classrooms with weak Wi-Fi: download every pinned wheel once (Python 3.11 wheels for this
# platform, whatever `python3` is), then install offline from a USB stick with
# `PIP_NO_INDEX=1 PIP_FIND_LINKS="$PWD/wheelhouse" make setup` (docs/instructor-guide.md).
wheelhouse:  ## download the pinned Python 3.11 wheels for this platform into wheelhouse/
	$(PYTHON) -m pip download --disable-pip-version-check -r requirements.lock -d wheelhouse --python-version 3.11.5 --only-binary=:all:

lock:  ## re-pin requirements.lock (and environment.yml) from the current venv
	@{ echo "# Exact pins for the one course venv (Python 3.11). Install with: pip install -r requirements.lock"; \
	   echo "# Regenerate after a change with: make lock"; \
	   $(BIN)/python -m pip freeze --all --exclude-editable | grep -vE '^(-e |pip==)'; } > requirements.lock
	$(BIN)/python -m course.pins
