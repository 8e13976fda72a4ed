# Two commands: `make run` and `make test` each do all the set-up they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench clean

# setup.py builds the compiled candidate scanner and the relay's byte tests (needs gcc and
# the Python headers).
$(STAMP): pyproject.toml setup.py dlp/detect/_candidates.c dlp/detect/_candidates_scan.h dlp/smtp/_wire.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	mkdir -p var
	$(BIN)/dlp serve

lint: $(STAMP)
	$(BIN)/ruff check dlp tests bench
	$(BIN)/ruff format --check dlp
	$(BIN)/lint-imports --no-cache  # import contracts: [tool.importlinter] in pyproject.toml

typecheck: $(STAMP)
	$(BIN)/mypy dlp

test: lint typecheck
	$(BIN)/pytest -q -ra

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

bench: $(STAMP)
	$(BIN)/python bench/scan_throughput.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
