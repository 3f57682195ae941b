# moestat: two commands set everything up on a fresh machine.
#   make demo  - create .venv if missing, install, fit the shipped example and print the result
#   make test  - create .venv if missing, install with test extras, lint, run the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-slow lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/moestat fit examples/two_experts.csv --target y --experts 2 --seed 0
	@echo "truth (examples/make_two_experts.py): beta1 [[25],[0]], beta0 [-8,0], a [[-20],[20]], b [15,-5], var [0.09,0.16] (up to the order of experts)"

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

test: $(STAMP) lint
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

bench: $(STAMP)
	$(BIN)/python benchmarks/em_throughput.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
