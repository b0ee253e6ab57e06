# Quick start:  make run   (install + main job)      make test   (install + test suite)
# make install puts art-sgt in .venv, editable, with the dev (pytest, hypothesis, ruff, import-linter) and docs
# extras, and torchattacks (the autoattack extra: FAB-T and the AutoAttack cross-check).
PYTHON ?= python3
VENV ?= .venv
DATA ?= ../shared/data
BIN := $(VENV)/bin
STAMP := $(VENV)/.art-sgt-installed

.PHONY: install run test lint docs bench clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev,docs]"
	$(BIN)/python -m pip install -q --no-deps "torchattacks>=3.5"  # the autoattack extra (setup.cfg says why no deps)
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	ART_SGT_DATA=$${ART_SGT_DATA:-$(DATA)} $(BIN)/python examples/mnist_sgt.py

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check art_sgt tests examples benchmarks docs
	$(BIN)/ruff format --check art_sgt tests examples benchmarks docs
	$(BIN)/lint-imports

bench: $(STAMP)
	ART_SGT_DATA=$${ART_SGT_DATA:-$(DATA)} $(BIN)/python benchmarks/bench_trainers.py

clean:
	rm -rf $(VENV) build *.egg-info docs/_build docs/tutorial/*.rst docs/tutorial/images

# The HTML build executes the tutorial (docs/tutorial_src, sphinx-gallery) on a small MNIST subset; the doctest
# build runs every example of the pages and docstrings and does not execute the tutorial again.
docs: $(STAMP)
	ART_SGT_DATA=$${ART_SGT_DATA:-$(DATA)} $(BIN)/sphinx-build -W --keep-going -q -b html docs docs/_build/html
	ART_SGT_DATA=$${ART_SGT_DATA:-$(DATA)} $(BIN)/sphinx-build -W --keep-going -q -b doctest -D plot_gallery=0 docs docs/_build/doctest
