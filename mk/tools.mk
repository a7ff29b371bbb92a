# Go-built tools the Python test suite drives: toxiproxy (fault injection between gateway and
# sandbox) and grpcurl (reflection, as an operator uses it). Built once with `go install`
# into versioned folders under .tools/ (git-ignored) and reused afterwards.
TOXIPROXY_VERSION := v2.5.0
GRPCURL_VERSION := v1.9.3
TOXIPROXY_DIR := $(CURDIR)/.tools/toxiproxy-$(TOXIPROXY_VERSION)
GRPCURL_DIR := $(CURDIR)/.tools/grpcurl-$(GRPCURL_VERSION)
TOXIPROXY_BIN := $(TOXIPROXY_DIR)/server
GRPCURL_BIN := $(GRPCURL_DIR)/grpcurl

$(TOXIPROXY_BIN):
	GOBIN=$(TOXIPROXY_DIR) GOFLAGS=-mod=mod go install github.com/Shopify/toxiproxy/v2/cmd/server@$(TOXIPROXY_VERSION)

$(GRPCURL_BIN):
	GOBIN=$(GRPCURL_DIR) GOFLAGS=-mod=mod go install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)

.PHONY: test-tools
test-tools: $(TOXIPROXY_BIN) $(GRPCURL_BIN)

pytest: test-tools
pytest: export TOXIPROXY_SERVER = $(TOXIPROXY_BIN)
pytest: export GRPCURL = $(GRPCURL_BIN)

# grpc-health-probe is built by mk/deploy.mk; the observability tests run it too.
pytest: $(GRPC_HEALTH_PROBE)
pytest: export GRPC_HEALTH_PROBE := $(GRPC_HEALTH_PROBE)
