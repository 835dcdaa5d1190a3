# Set-up, demo, tests and benchmarks. Every target creates .venv and installs the package first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-fast bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/python -m frugalseg.check_install  # torch and torchvision of one build, else the fix
	touch $(STAMP)

setup: $(STAMP)

## Train the demo student (TMANet-R18, recipe B3, synthetic streets) on the CPU and print its metrics.
demo: $(STAMP)
	$(BIN)/frugalseg fit --config configs/demo.yaml

## Every test, the slow end-to-end tier included, on one pytest worker per core (CPU, a few minutes); what CI runs.
## Each worker takes half of the tests and steals from the other when it runs dry, so both end together.
test: $(STAMP)
	$(BIN)/pytest -q -n auto --dist worksteal -m "slow or not slow"

## The fast default tier: every test not marked slow.
test-fast: $(STAMP)
	$(BIN)/pytest -q

## Every benchmark that runs without arguments; those that read a data set name their command instead.
bench: $(STAMP)
	@for script in benchmarks/bench_*.py; do \
		if grep -q "required=True" $$script; then echo "$$script needs data set folders: see its docstring"; \
		else echo "== $$script"; $(BIN)/python $$script || exit 1; fi; \
	done

## Lint (ruff, with the Google docstring rules) and type checks (mypy, configured in pyproject.toml).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy frugalseg

clean:
	rm -rf $(VENV) runs lightning_logs .pytest_cache
