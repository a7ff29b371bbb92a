# Go, Java and TypeScript clients (clients/<lang>, issue #5): plugin installation into .tools/,
# code generation from protos/ with buf, the generated-code check, builds, and interop tests
# against a real gateway on its sandbox (scripts/with-gateway.sh). Included by the Makefile.
#
#   make gen-clients         regenerate all three clients (gen-client-go, -java, -typescript)
#   make clients-gen-check   fail when the checked-in generated code is not what protos/ gives
#   make test-clients        the check, then each client's build and interop tests
#
# A missing toolchain (go, java/mvn, node/npm) is a failure, never a skip.

CLIENT_TOOLS := .tools
CLIENT_TOOLS_BIN := $(CURDIR)/$(CLIENT_TOOLS)/bin
CLIENT_STAMPS := $(CLIENT_TOOLS)/stamps
BUF := $(BIN)/buf
WITH_GATEWAY := scripts/with-gateway.sh

# Pinned plugin versions. The Go ones are `go install`ed; the Java ones come from Maven
# Central as executables; the TypeScript one (ts-proto) is pinned in clients/typescript.
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2

.PHONY: client-tools gen-clients clients-gen-check build-clients test-clients \
	client-tools-go gen-client-go build-client-go test-client-go \
	client-tools-typescript gen-client-typescript build-client-typescript test-client-typescript

client-tools: client-tools-go client-tools-typescript
gen-clients: gen-client-go gen-client-typescript
build-clients: build-client-go build-client-typescript
test-clients: clients-gen-check test-client-go test-client-typescript

# --- Go ---------------------------------------------------------------------------------
GO_PLUGINS_STAMP := $(CLIENT_STAMPS)/go-plugins-$(PROTOC_GEN_GO_VERSION)-$(PROTOC_GEN_GO_GRPC_VERSION)

client-tools-go: $(GO_PLUGINS_STAMP)

$(GO_PLUGINS_STAMP):
	@mkdir -p $(CLIENT_TOOLS_BIN) $(CLIENT_STAMPS)
	GOBIN=$(CLIENT_TOOLS_BIN) go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	GOBIN=$(CLIENT_TOOLS_BIN) go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	@rm -f $(CLIENT_STAMPS)/go-plugins-* && touch $@

gen-client-go: $(STAMP) $(GO_PLUGINS_STAMP)
	$(BUF) generate --template buf.gen.go.yaml

build-client-go:
	cd clients/go && go vet ./... && go build ./...

test-client-go: $(STAMP) build-client-go
	cd clients/go && ../../$(WITH_GATEWAY) go test -count=1 ./...
	cd clients/go && ../../$(WITH_GATEWAY) go run ./examples/detect 'SANDBOX:score=0.995'

# --- TypeScript -----------------------------------------------------------------------------
# `npm ci` from the committed package-lock.json; re-run when the lock file changes.
TS_DIR := clients/typescript
TS_STAMP := $(TS_DIR)/node_modules/.installed

client-tools-typescript: $(TS_STAMP)

$(TS_STAMP): $(TS_DIR)/package-lock.json
	cd $(TS_DIR) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

gen-client-typescript: $(STAMP) $(TS_STAMP)
	$(BUF) generate --template buf.gen.typescript.yaml

build-client-typescript: $(TS_STAMP)
	cd $(TS_DIR) && rm -rf dist && npm run --silent build

test-client-typescript: $(STAMP) build-client-typescript
	cd $(TS_DIR) && ../../$(WITH_GATEWAY) node --test dist/test/
	cd $(TS_DIR) && ../../$(WITH_GATEWAY) node dist/examples/detect.js 'SANDBOX:score=0.995'

# --- the generated-code check ---------------------------------------------------------------
# Regenerates every client into a temporary directory and diffs it with the checked-in code.
clients-gen-check: $(STAMP) $(GO_PLUGINS_STAMP) $(TS_STAMP)
	@tmp=$$(mktemp -d) && trap 'rm -rf $$tmp' EXIT && \
	  $(BUF) generate --template buf.gen.go.yaml -o $$tmp && \
	  diff -r $$tmp/clients/go/livenessv1 clients/go/livenessv1 && \
	  $(BUF) generate --template buf.gen.typescript.yaml -o $$tmp && \
	  diff -r $$tmp/$(TS_DIR)/src/gen $(TS_DIR)/src/gen && \
	  echo "clients-gen-check: generated client code is up to date"

TEST_TARGETS += test-clients
