# Every target bootstraps its own virtual environment, so a fresh clone needs only
# `make demo` or `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEMO   ?= workloads/eu_saas.yaml

.PHONY: install demo test lint bench catalogs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/planner validate $(DEMO)
	$(BIN)/planner solve $(DEMO) --out out/demo

lint: $(STAMP)
	$(BIN)/ruff check planner tests tools bench

test: $(STAMP) lint
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/run.py

# Rebuild catalogs/ from ../shared/data (maintainers only; the product never reads ../shared).
catalogs: $(STAMP)
	$(BIN)/python tools/build_catalogs.py --src ../shared/data --out catalogs

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
