# moestat: two commands set everything up on a fresh machine.
#   make demo  - create .venv if missing, install, run the contaminated-MoE rate study (quick)
#   make test  - create .venv if missing, install with test extras, lint, run the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TEST_WORKERS ?= 2  # pytest-xdist processes: the suite takes ~6 min on 2 cores, ~10 in one

.PHONY: demo test test-slow lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/moestat run contaminated_distinguishable --preset quick --out runs/demo
	@echo "fit one model to a table: $(BIN)/moestat fit examples/two_experts.csv --target y --experts 2"

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples

test: $(STAMP) lint
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS)

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow -n $(TEST_WORKERS)

bench: $(STAMP)
	$(BIN)/moestat bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
