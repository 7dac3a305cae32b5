# Kurs — run `make help` for the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-16s %s\n", $$1, $$2}'

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.build-installed: requirements/build.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements/build.txt
	touch $@

$(VENV)/.run-installed: requirements/run.txt pyproject.toml $(VENV)/.build-installed
	$(PY) -m pip install --quiet -r requirements/run.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# Also installs the Python SDK (clients/python, kurs-client); its dependencies are pinned in run.txt.
$(VENV)/.dev-installed: requirements/dev.txt clients/python/pyproject.toml $(VENV)/.run-installed
	$(PY) -m pip install --quiet -r requirements/dev.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e clients/python
	touch $@

.PHONY: install
install: $(VENV)/.run-installed ## Create .venv and install the pinned runtime dependencies

.PHONY: install-dev
install-dev: $(VENV)/.dev-installed ## Also install the pinned development and test tools

.PHONY: generate
generate: install-dev ## Regenerate the gRPC stubs in gen/python from protos/
	$(PY) tools/generate_protos.py
	$(PY) clients/python/tools/generate_stubs.py

.PHONY: check-generated
check-generated: install-dev ## Fail when the committed stubs differ from a fresh generation
	$(PY) tools/generate_protos.py --check
	$(PY) clients/python/tools/generate_stubs.py --check

# `buf breaking` compares protos/ with the contracts as of this commit. Move it forward only in the
# commit that makes a deliberate breaking change, and say why in that commit and in the .proto.
BUF_AGAINST ?= ffe23ea0460437ff2123f36b3d5a2e00312d0600
BUF := tools/buf/node_modules/.bin/buf

.PHONY: buf
buf: ## Install the pinned buf CLI (npm, tools/buf/package-lock.json) when missing
	bash tools/ensure_buf.sh

.PHONY: lint
lint: install-dev buf ## Ruff, mypy, buf lint (STANDARD) and buf breaking against BUF_AGAINST
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	cd clients/python && $(abspath $(BIN))/mypy
	$(BUF) lint protos
	@git cat-file -e '$(BUF_AGAINST)^{commit}' || { echo "buf breaking: commit $(BUF_AGAINST) (BUF_AGAINST) is not in this clone's history"; exit 1; }
	$(BUF) breaking protos --against '.git#ref=$(BUF_AGAINST),subdir=protos'

.PHONY: format
format: install-dev ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

.PHONY: services
services: ## Make sure PostgreSQL and Redis run on 127.0.0.1 (installs them when missing)
	bash tools/ensure_services.sh

.PHONY: chromium
chromium: ## Install headless Chromium when missing (Debian package), for the dashboard's browser test
	bash tools/ensure_chromium.sh

.PHONY: c-deps
c-deps: ## Install the C client's Debian packages when missing (libcurl, cJSON, valgrind)
	bash tools/ensure_c_deps.sh

.PHONY: regions-deps
regions-deps: ## Install Patroni, etcd, HAProxy, pgBackRest and iproute2 when missing (Debian packages)
	bash tools/ensure_regions.sh

.PHONY: restore-drill
restore-drill: install-dev regions-deps ## pgBackRest backup + point-in-time restore into a fresh cluster, verified
	$(BIN)/pytest -q -s -p no:cacheprovider tests/regions/test_restore_drill.py

.PHONY: failover-test
failover-test: install-dev regions-deps ## Two regions in network namespaces: cut region A under load; prints RTO/RPO
	$(BIN)/pytest -q -s -p no:cacheprovider tests/regions/test_failover.py

.PHONY: chaos
chaos: install-dev services ## Faults one at a time under load (kill -9 each service, Redis, PostgreSQL); prints a table
	$(BIN)/pytest -q -s -p no:cacheprovider -m chaos tests/chaos

.PHONY: clients
clients: c-deps install-dev ## Build the C client (clients/c) and generate the Runa module (clients/runa)
	$(MAKE) -C clients/c
	$(PY) tools/gen_runa.py

.PHONY: test-c
test-c: install-dev c-deps ## The C client's tests under valgrind against a mesh started by pytest
	$(BIN)/pytest -q tests/integration/gateway/test_c_client.py

.PHONY: test
test: install-dev services c-deps chromium regions-deps ## Install everything and run the whole test suite
	$(BIN)/pytest

.PHONY: test-unit
test-unit: install-dev ## Unit tests only (no servers)
	$(BIN)/pytest tests/unit

.PHONY: run
run: install ## Install and run the whole mesh (embedded store, offline ECB history)
	$(PY) -m kurs_common.mesh

.PHONY: bench
bench: install-dev ## Start the mesh and measure it with wrk; prints req/s, p50, p99
	bash tools/ensure_wrk.sh
	$(PY) tools/bench.py

.PHONY: lock
lock: ## Re-pin requirements/*.txt from pyproject.toml's dependencies (and its `dev` extra) in a scratch venv
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	$(PYTHON) tools/pyproject_deps.py run > .lock-venv/run.in
	.lock-venv/bin/pip install --quiet -r .lock-venv/run.in
	{ echo "# Pinned runtime dependencies (generated by 'make lock' from pyproject.toml)."; .lock-venv/bin/pip freeze --all --exclude pip --exclude setuptools --exclude wheel; } > requirements/run.txt
	$(PYTHON) tools/pyproject_deps.py dev > .lock-venv/dev.in
	.lock-venv/bin/pip install --quiet -r .lock-venv/dev.in
	{ echo "# Pinned development dependencies (generated by 'make lock' from pyproject.toml, with dev)."; .lock-venv/bin/pip freeze --all --exclude pip --exclude setuptools --exclude wheel; } > requirements/dev.txt
	rm -rf .lock-venv

.PHONY: k8s
k8s: ## Render every Kubernetes overlay offline
	for o in deploy/k8s/overlays/*/; do echo "== $$o"; kubectl kustomize $$o > /dev/null && echo ok; done

.PHONY: clean
clean: ## Remove the virtualenv, caches and local data
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
	$(MAKE) -C clients/c clean
