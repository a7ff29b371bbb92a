# The Python client (clients/python, issue #5): installed into the root venv, linted (ruff,
# mypy strict), its generated liveness.v1 copy checked against protos/, and its tests run
# against the real gateway on the sandbox. Included by the Makefile.
#
#   make test-clients-python    all of it (part of `make test`)
#   make proto-clients-python   regenerate clients/python/src/liveness_client/_proto/

CLIENT_PY := clients/python
# Re-install when the client's pyproject changes, or after the root venv was (re)installed.
CLIENT_PY_STAMP := $(VENV)/.installed-client-python

.PHONY: setup-clients-python lint-clients-python proto-clients-python \
	proto-check-clients-python pytest-clients-python test-clients-python

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

# The client's own suite (its fixtures start gateways), then the conformance table on a gateway
# started by scripts/with-gateway.sh with the table's gateway_env.
pytest-clients-python: $(CLIENT_PY_STAMP)
	cd $(CLIENT_PY) && $(CURDIR)/$(BIN)/pytest -q
	cd $(CLIENT_PY) && env $$($(CLIENT_PY_CONFORMANCE_ENV)) \
	  $(CURDIR)/scripts/with-gateway.sh $(CURDIR)/$(BIN)/pytest -q -m conformance

test-clients-python: lint-clients-python proto-check-clients-python pytest-clients-python

TEST_TARGETS += test-clients-python
