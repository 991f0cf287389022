# Two entry points for a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: run test install lint demo index serve bench clean

$(BIN)/python:
	@command -v $(PY) >/dev/null || { echo "need $(PY) (Python 3.11)"; exit 1; }
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch==2.13.0 is pinned in pyproject: pip takes the CPU build from this machine's disk.
# The ray extra is part of the test install: tests/embeddings/test_ray_build.py runs a local cluster.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[dev,ray]'
	@touch $@

install: $(STAMP)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict matcher embeddings service

test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict matcher embeddings service
	$(BIN)/python -m pytest -q

demo: install
	$(BIN)/duijie demo

# Demo data → index build → service on 127.0.0.1:8000 (prints a staff login, an enterprise
# API key and an example curl).
# English demo documents are also indexed with the bundled English model (DUIJIE_ENGLISH_MODEL).
# Development mode: loopback only, demo credentials allowed.
run: export DUIJIE_ENGLISH_MODEL ?= bundled
run: export DUIJIE_ENVIRONMENT ?= dev
# The server answers at once; the first index is built in the background (progress with rate
# and ETA in the terminal) and hot-loaded, then the model is warmed before the first suggestion.
run: install
	$(BIN)/duijie demo
	$(BIN)/duijie serve --demo-credentials

bench: install
	@cat benchmarks/README.md

clean:
	rm -rf var
