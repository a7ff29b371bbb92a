# The Python client (clients/python, issues #5 and #16): installed into the root venv, linted
# (ruff, mypy strict), its generated liveness.v1 copy checked against protos/, its tests and the
# shared conformance table run against the real gateway on the sandbox, its tests again at the
# lowest declared dependency versions, and its README's install checked from outside the
# repository. Included by the Makefile.
#
#   make test-clients-python    all of it (part of `make test`)
#   make proto-clients-python   regenerate clients/python/src/liveness_client/_proto/

CLIENT_PY := clients/python
# Re-install when the client's pyproject changes, or after the root venv was (re)installed.
CLIENT_PY_STAMP := $(VENV)/.installed-client-python

.PHONY: setup-clients-python lint-clients-python proto-clients-python \
	proto-check-clients-python pytest-clients-python pytest-lowest-clients-python \
	consumer-clients-python test-clients-python

setup-clients-python: $(CLIENT_PY_STAMP)

$(CLIENT_PY_STAMP): $(CLIENT_PY)/pyproject.toml $(STAMP)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e $(CLIENT_PY)
	@touch $@

lint-clients-python: $(CLIENT_PY_STAMP)
	cd $(CLIENT_PY) && $(CURDIR)/$(BIN)/ruff check . && $(CURDIR)/$(BIN)/ruff format --check .
	cd $(CLIENT_PY) && $(CURDIR)/$(BIN)/mypy

proto-clients-python: $(STAMP)
	VENV_BIN=$(CURDIR)/$(BIN) $(CLIENT_PY)/gen-proto.sh

# Fails when regenerating from protos/ would change anything.
proto-check-clients-python: $(STAMP)
	VENV_BIN=$(CURDIR)/$(BIN) $(CLIENT_PY)/gen-proto.sh --check

# The conformance table reads its gateway's settings from clients/conformance.json.
CLIENT_PY_CONFORMANCE_ENV := $(CURDIR)/$(BIN)/python -c 'import json, sys; \
  print(" ".join(k + "=" + v for k, v in json.load(open(sys.argv[1]))["gateway_env"].items()))' \
  $(CURDIR)/clients/conformance.json

# The client's own suite (its fixtures start gateways), then the conformance table with the
# asyncio client and with the blocking one, each on a fresh gateway started by
# scripts/with-gateway.sh with the table's gateway_env.
pytest-clients-python: $(CLIENT_PY_STAMP) openssl-tool
	cd $(CLIENT_PY) && $(CURDIR)/$(BIN)/pytest -q
	for client in asyncio blocking; do \
	  (cd $(CLIENT_PY) && env $$($(CLIENT_PY_CONFORMANCE_ENV)) LIVENESS_CONFORMANCE_CLIENT=$$client \
	    $(CURDIR)/scripts/with-gateway.sh $(CURDIR)/$(BIN)/pytest -q -m conformance) || exit 1; \
	done

# The client's tests again at the lowest versions it declares: a second venv from
# constraints-lowest.txt (wheels only), the client installed as a user would (not editable,
# so its package data is what a wheel ships); the gateway is still the root venv's.
CLIENT_PY_LOWEST := $(CLIENT_PY)/.venv-lowest
CLIENT_PY_LOWEST_STAMP := $(CLIENT_PY_LOWEST)/.installed
CLIENT_PY_TEST_DEPS := pytest==9.2.0 pytest-asyncio==1.5.0 pytest-timeout==2.4.0

$(CLIENT_PY_LOWEST_STAMP): $(CLIENT_PY)/constraints-lowest.txt $(CLIENT_PY)/pyproject.toml
	rm -rf $(CLIENT_PY_LOWEST)
	$(PYTHON) -m venv $(CLIENT_PY_LOWEST)
	$(CLIENT_PY_LOWEST)/bin/python -m pip install -q --disable-pip-version-check --only-binary=:all: \
	  -r $(CLIENT_PY)/constraints-lowest.txt $(CLIENT_PY_TEST_DEPS)
	@touch $@

pytest-lowest-clients-python: $(CLIENT_PY_LOWEST_STAMP) $(STAMP)
	$(CLIENT_PY_LOWEST)/bin/python -m pip install -q --disable-pip-version-check --no-deps \
	  --force-reinstall -c $(CLIENT_PY)/constraints-lowest.txt ./$(CLIENT_PY)
	$(CLIENT_PY_LOWEST)/bin/python -m pip check
	$(CLIENT_PY_LOWEST)/bin/python -m pip freeze | grep -xF -f <(grep -v '^#' $(CLIENT_PY)/constraints-lowest.txt) \
	  | diff - <(grep -v '^#' $(CLIENT_PY)/constraints-lowest.txt)
	cd $(CLIENT_PY) && $(CURDIR)/$(CLIENT_PY_LOWEST)/bin/pytest -q -p no:cacheprovider

# The README's install and program, word for word, from a project outside the repository.
consumer-clients-python: $(STAMP)
	scripts/with-gateway.sh $(CLIENT_PY)/consumer-check.sh

test-clients-python: lint-clients-python proto-check-clients-python pytest-clients-python \
	pytest-lowest-clients-python consumer-clients-python

TEST_TARGETS += test-clients-python
