# The two commands of the README. Each creates and fills its own virtualenv on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test setup lint clean

$(BIN)/lookout: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

setup: $(BIN)/lookout

## demo: run the engine on the example config, or on MODEL=... SOURCE=... (see README)
demo: setup
ifdef MODEL
	$(BIN)/lookout run --source $(SOURCE) --model $(MODEL) --classes $(or $(CLASSES),person) --fast
else
	$(BIN)/lookout run configs/example.yaml --fast
endif

## test: the whole test suite
test: setup
	$(BIN)/pytest -q

lint: setup
	$(BIN)/ruff check engine bench tests
	$(BIN)/ruff format --check engine bench tests
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
