# The two commands a newcomer needs: `make run` (the whole chapter) and `make test` (lint + tests).
# Both create .venv on first use and are quick no-ops for the set-up afterwards.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint bench data clean mutants

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

data: $(STAMP)
	@bash scripts/ensure-data.sh $(PY)

run: $(STAMP) data
	$(PY) -m linearnet chapter
	@echo "next: '. .venv/bin/activate' puts linearnet on PATH; then 'linearnet show runs/chapter/linreg-scratch' (README: What next)"

lint: $(STAMP)
	$(PY) -m ruff check linearnet tests benchmarks fuzz scripts

test: $(STAMP) data lint
	$(PY) -m pytest

# Break the core on purpose (scripts/mutants.py: one named change at a time) and require a test to notice.
mutants: $(STAMP) data
	$(PY) scripts/mutants.py $(MUTANTS_ARGS)

bench: $(STAMP) data
	$(PY) -m benchmarks --quick

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
