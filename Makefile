# Quick start:  make run   (install + main job)      make test   (install + test suite)
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
	$(BIN)/python -m pip install -q -e ".[test,plot,docs]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	ART_SGT_DATA=$${ART_SGT_DATA:-$(DATA)} $(BIN)/python examples/mnist_sgt.py

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check art_sgt tests examples benchmarks

bench: $(STAMP)
	ART_SGT_DATA=$${ART_SGT_DATA:-$(DATA)} $(BIN)/python benchmarks/bench_trainers.py

clean:
	rm -rf $(VENV) build *.egg-info docs/_build

docs: $(STAMP)
	$(BIN)/sphinx-build -W --keep-going -q -b html docs docs/_build/html
	$(BIN)/sphinx-build -W --keep-going -q -b doctest docs docs/_build/doctest
