# The two set-up commands of the README: `make demo` and `make test`. Both work on a fresh machine with
# Python 3.11 and Java 17 (the Apache Kafka test broker's jars come from Maven Central on first use).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test faults lint venv clean

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

# Integration and fault tests (SIGKILLs, a broker restart, a model-server outage, poison records, a PHI
# scan, a short soak) run on Apache Kafka 4 (KRaft, started by the test fixture); the smoke test runs
# again on the embedded Tansu broker. `make faults` runs the fault suite alone, printing its figures.
test: lint
	$(BIN)/pytest -q
	BILLWISE_TEST_BROKER=tansu $(BIN)/pytest -q -m smoke --ignore=tests/faults

faults: $(STAMP)
	$(BIN)/pytest -q -s tests/faults

clean:
	rm -rf $(VENV) .cache
