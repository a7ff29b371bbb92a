# The front door. Every target installs what it needs, so each works on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Re-install when the pinned dependencies change.
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: help setup serve sandbox test test-fast lint proto proto-check proto-breaking pytest fuzz clean

help:
	@echo "make serve        run the gateway on the embedded vendor sandbox (port 50051), audit trail in .data/"
	@echo "make test         lint, contract checks and the full test suite"
	@echo "make test-fast    the fast suite: pytest -m 'not system', 4 xdist workers (no external tools needed)"
	@echo "make lint         ruff, mypy, buf lint"
	@echo "make proto        regenerate Python code from protos/"

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

# The audit trail is on in `make serve`: an SQLite file and its journal under DATA_DIR.
DATA_DIR ?= .data
serve: $(STAMP)
	$(BIN)/liveness-gateway serve --sandbox --audit-url sqlite:$(DATA_DIR)/audit.db \
	  --audit-journal-dir $(DATA_DIR)/audit-journal

sandbox: $(STAMP)
	$(BIN)/liveness-gateway sandbox

proto: $(STAMP)
	scripts/gen-proto.sh

# Fails when the checked-in generated code differs from what protos/ produces.
proto-check: $(STAMP)
	@tmp=$$(mktemp -d) && trap 'rm -rf $$tmp' EXIT && scripts/gen-proto.sh $$tmp && \
	  diff -r -x __pycache__ $$tmp/liveness service/liveness && echo "proto-check: generated code is up to date"

# The contract may only grow: no breaking change against liveness.v1 as released (v1.0,
# an image built from its protos/ and kept in protos/baseline/).
proto-breaking: $(STAMP)
	$(BIN)/buf breaking --against protos/baseline/liveness-v1.0.binpb && \
	  echo "proto-breaking: no breaking change against liveness.v1 v1.0"

lint: $(STAMP)
	$(BIN)/ruff check service tests bench fuzz
	$(BIN)/ruff format --check service tests bench fuzz
	$(BIN)/mypy
	$(BIN)/bandit -q -c pyproject.toml -r service
	$(BIN)/buf lint

pytest: $(STAMP)
	$(BIN)/pytest -q

# The tests that run inside one Python process; `make test` runs the system tests too.
# Most fast tests wait on timers (breakers, deadlines, retries), not on a core: four workers
# on two cores bring 48 s down to about 25 s. `make test` runs everything in one process.
test-fast: $(STAMP)
	$(BIN)/pytest -q -m "not system" -n 4 --dist worksteal

# Each area adds its checks to TEST_TARGETS in its own mk/<area>.mk, so areas stay apart.
TEST_TARGETS := lint proto-check proto-breaking pytest
-include mk/*.mk

test: $(TEST_TARGETS)

# Coverage-guided fuzzing of the validator and the vendor parsers, then the gRPC framing and
# message layer of a live gateway over raw HTTP/2; both bounded, not part of test.
FUZZ_RUNS ?= 200000
FUZZ_FRAMING_RUNS ?= 2000
fuzz: $(STAMP)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[fuzz]'
	$(BIN)/python fuzz/fuzz_gateway.py -runs=$(FUZZ_RUNS) -max_len=4096 -rss_limit_mb=2048
	$(BIN)/python fuzz/fuzz_framing.py --runs $(FUZZ_FRAMING_RUNS) --seconds 600

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
