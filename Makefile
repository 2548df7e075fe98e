# Every target bootstraps its own virtual environment, so a fresh clone needs only
# `make demo` or `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEMO   ?= workloads/eu_saas.yaml

.PHONY: install demo test lint bench bench-legacy catalogs clean

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

# issue 9's protocol: the whole ladder, 3 seeds, every method in its own process (hours on 2 cores)
bench: $(STAMP)
	$(BIN)/python -m bench --sizes 20x10,50x20,200x50,1000x100,5000x300 --seeds 1,2,3 --json bench/results/issue9.json

# the older measurements of bench/run.py (ladder with N+1-off / CBC baselines, Ctrl-C, examples)
bench-legacy: $(STAMP)
	$(BIN)/python bench/run.py

# Rebuild catalogs/ from ../shared/data (maintainers only; the product never reads ../shared).
catalogs: $(STAMP)
	$(BIN)/python tools/build_catalogs.py --src ../shared/data --out catalogs

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
