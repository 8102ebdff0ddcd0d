# Every target creates .venv and installs what it needs; CI runs `make test` (see .ci/run).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP     := $(VENV)/.dev-installed
BENCH_STAMP   := $(VENV)/.bench-installed

.PHONY: demo test chaos lint format bench clean chromium

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "streamlearn needs Python >= 3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUNTIME_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@ $(RUNTIME_STAMP)

demo: $(RUNTIME_STAMP)  ## the whole product on the embedded broker and Redis (< 2 minutes)
	$(BIN)/streamlearn demo

test: $(DEV_STAMP) chromium  ## lint + layers + unit + integration tests (embedded broker and Redis)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/pytest

chaos: $(DEV_STAMP)  ## the full chaos suite, both engines (long); table in bench/results/chaos.json
	STREAMLEARN_CHAOS=full $(BIN)/pytest tests/chaos -v --timeout 3600

# Headless Chromium for the dashboard's browser test: installed with apt-get where it exists
# (as root, or with password-less sudo); elsewhere that one test is skipped and says why.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
	|| command -v google-chrome >/dev/null 2>&1 || command -v google-chrome-stable >/dev/null 2>&1 \
	|| { if command -v apt-get >/dev/null 2>&1; then \
	       sudo=$$([ "$$(id -u)" = 0 ] || echo "sudo -n"); \
	       echo "installing Chromium with apt-get (the dashboard's browser test)"; \
	       { $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install \
	           -y -qq --no-install-recommends chromium >/dev/null; } \
	       || echo "could not install Chromium: the dashboard's browser test will be skipped"; \
	     else echo "no apt-get: install Chromium for the dashboard's browser test"; fi; }

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

format: $(DEV_STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

$(BENCH_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	@touch $@ $(RUNTIME_STAMP)

bench: $(BENCH_STAMP)  ## benchmarks: tables on stdout, JSON (and a PNG) in bench/results/
	$(BIN)/python -m bench.learner_cost
	$(BIN)/python -m bench.learner_throughput
	$(BIN)/python -m bench.scoring_latency
	$(BIN)/python -m bench.client_latency
	$(BIN)/python -m bench.scale
	$(BIN)/python -m bench.decay_recovery
	$(BIN)/python -m bench.blend_quality
	$(BIN)/python -m bench.retrain_cost
	$(BIN)/python -m bench.drift_quality
	$(BIN)/python -m bench.profile_worker

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache
