# Two commands a new user needs: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench compose-check clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11"; exit 2; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mpls up --workers 6

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy mpls_celery tui scripts
	$(BIN)/python -m pytest -n auto --dist loadgroup

# Every benchmark, even after one fails; the failed ones are named at the end (non-zero exit).
bench: $(STAMP)
	@failed=""; for b in scripts/bench_*.py; do n=$$(basename $$b .py); echo "== $$n"; \
	  $(BIN)/python -m scripts.$$n || failed="$$failed $$n"; done; \
	  if [ -n "$$failed" ]; then echo "failed:$$failed"; exit 1; fi

# Needs root and a few minutes: builds the images and runs the compose stacks (docs/compose.md).
compose-check: $(STAMP)
	infra/images/install-docker.sh
	$(BIN)/python -m scripts.compose_check

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
