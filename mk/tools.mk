# Go-built tools the Python test suite drives: toxiproxy (fault injection between gateway and
# sandbox) and grpcurl (reflection, as an operator uses it). Built once with `go install`
# into versioned folders under .tools/ (git-ignored) and reused afterwards.
TOXIPROXY_VERSION := v2.5.0
GRPCURL_VERSION := v1.9.3
TOXIPROXY_DIR := $(CURDIR)/.tools/toxiproxy-$(TOXIPROXY_VERSION)
GRPCURL_DIR := $(CURDIR)/.tools/grpcurl-$(GRPCURL_VERSION)
TOXIPROXY := $(TOXIPROXY_DIR)/server
GRPCURL := $(GRPCURL_DIR)/grpcurl

$(TOXIPROXY):
	GOBIN=$(TOXIPROXY_DIR) GOFLAGS=-mod=mod go install github.com/Shopify/toxiproxy/v2/cmd/server@$(TOXIPROXY_VERSION)

$(GRPCURL):
	GOBIN=$(GRPCURL_DIR) GOFLAGS=-mod=mod go install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)

.PHONY: test-tools
test-tools: $(TOXIPROXY) $(GRPCURL)

pytest: test-tools
pytest: export TOXIPROXY_SERVER = $(TOXIPROXY)
pytest: export GRPCURL = $(GRPCURL)
