# Every target bootstraps .venv when it is missing, so a fresh clone needs only Python 3.11.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench serve clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/demo.py

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check src plugins tests benchmarks examples
	$(BIN)/mypy

bench: $(STAMP)
	@for b in benchmarks/*.py; do case $$b in */models_intervals.py) continue;; esac; \
		echo "== $$b"; $(BIN)/python $$b || exit 1; done  # models.py runs models_intervals

serve: $(STAMP)
	$(BIN)/nextbest serve --demo

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info plugins/*/*.egg-info .pytest_cache .mypy_cache .ruff_cache
