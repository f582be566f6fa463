# The two set-up commands of the README: `make demo` and `make test`. Both work on a fresh machine with
# Python 3.11 and Java 17 (the Apache Kafka test broker's jars come from Maven Central on first use).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint venv clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e '.[dev,embedded]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/billwise demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/billwise schema export --check

# Integration tests run on Apache Kafka 4 (KRaft, started by the test fixture); the smoke test runs
# again on the embedded Tansu broker.
test: lint
	$(BIN)/pytest -q
	BILLWISE_TEST_BROKER=tansu $(BIN)/pytest -q -m smoke

clean:
	rm -rf $(VENV) .cache
