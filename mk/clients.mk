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
CLIENT_BUF := $(BIN)/buf
WITH_GATEWAY := scripts/with-gateway.sh

# Pinned plugin versions. The Go ones are `go install`ed; the Java ones come from Maven
# Central as executables; the TypeScript one (ts-proto) is pinned in clients/typescript.
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
# protoc's version on Maven Central (4.x = protobuf 36.x); the Java runtime in
# clients/java/pom.xml must be at least this. protoc-gen-grpc-java 1.83.0 is the newest whose
# executables Maven Central serves; the grpc-java runtime in the pom may be newer, not older.
PROTOC_VERSION := 4.36.2
PROTOC_GEN_GRPC_JAVA_VERSION := 1.83.0
MAVEN_DEPENDENCY_PLUGIN := org.apache.maven.plugins:maven-dependency-plugin:3.11.0
MVN := mvn -B -q -Dstyle.color=never
# Maven Central names the executables by os-arch (linux-x86_64, linux-aarch_64, osx-...).
CLIENT_EXE_CLASSIFIER := $(shell uname -s | tr A-Z a-z | sed 's/darwin/osx/')-$(shell uname -m | sed 's/aarch64/aarch_64/;s/arm64/aarch_64/')

.PHONY: client-tools gen-clients clients-gen-check build-clients test-clients \
	client-tools-go gen-client-go build-client-go test-client-go \
	client-tools-typescript gen-client-typescript build-client-typescript test-client-typescript \
	client-tools-java gen-client-java build-client-java test-client-java

client-tools: client-tools-go client-tools-typescript client-tools-java
gen-clients: gen-client-go gen-client-typescript gen-client-java
build-clients: build-client-go build-client-typescript build-client-java
test-clients: clients-gen-check test-client-go test-client-typescript test-client-java

# --- Go ---------------------------------------------------------------------------------
GO_PLUGINS_STAMP := $(CLIENT_STAMPS)/go-plugins-$(PROTOC_GEN_GO_VERSION)-$(PROTOC_GEN_GO_GRPC_VERSION)

client-tools-go: $(GO_PLUGINS_STAMP)

$(GO_PLUGINS_STAMP):
	@mkdir -p $(CLIENT_TOOLS_BIN) $(CLIENT_STAMPS)
	GOBIN=$(CLIENT_TOOLS_BIN) go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	GOBIN=$(CLIENT_TOOLS_BIN) go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	@rm -f $(CLIENT_STAMPS)/go-plugins-* && touch $@

# The client embeds the shipped service config; the copy is made here and checked by
# build-client-go.
GO_SERVICE_CONFIG := protos/liveness/v1/service_config.json
GO_SERVICE_CONFIG_COPY := clients/go/livenessclient/service_config.json

gen-client-go: $(STAMP) $(GO_PLUGINS_STAMP)
	$(CLIENT_BUF) generate --template buf.gen.go.yaml
	cp $(GO_SERVICE_CONFIG) $(GO_SERVICE_CONFIG_COPY)

build-client-go:
	@diff -u $(GO_SERVICE_CONFIG) $(GO_SERVICE_CONFIG_COPY) || \
	  { echo "$(GO_SERVICE_CONFIG_COPY) differs from $(GO_SERVICE_CONFIG): run make gen-client-go" >&2; exit 1; }
	@cd clients/go && unformatted=$$(gofmt -l .) && [ -z "$$unformatted" ] || \
	  { echo "gofmt: not formatted: $$unformatted" >&2; exit 1; }
	cd clients/go && go vet ./... && go vet -tags securetest ./... && go build ./...

# Unit and interop tests on one gateway; the conformance table on a gateway with the table's
# gateway_env (read from clients/conformance.json); TLS, mTLS and bearer tokens on gateways
# with certificates and a callers file; the example; the consumer install from outside.
GO_CONFORMANCE_ENV = $$($(CURDIR)/$(BIN)/python -c 'import json; \
  print(" ".join(f"{k}={v}" for k, v in json.load(open("../conformance.json"))["gateway_env"].items()))')

test-client-go: $(STAMP) build-client-go openssl-tool
	cd clients/go && ../../$(WITH_GATEWAY) go test -race -count=1 -skip '^TestConformance$$' ./...
	set -o pipefail && cd clients/go && env $(GO_CONFORMANCE_ENV) ../../$(WITH_GATEWAY) \
	  go test -count=1 -run '^TestConformance$$' -v ./livenessclient/ | grep -v '^=== RUN'
	cd clients/go && ./secure-test.sh ../../$(WITH_GATEWAY)
	cd clients/go && ../../$(WITH_GATEWAY) go run ./examples/detect 'SANDBOX:score=0.995'
	cd clients/go && ../../$(WITH_GATEWAY) ./consumer-test.sh

# --- TypeScript -----------------------------------------------------------------------------
# `npm ci` from the committed package-lock.json; re-run when the lock file changes.
TS_DIR := clients/typescript
TS_STAMP := $(TS_DIR)/node_modules/.installed
# The conformance table's gateway settings (gateway_env in clients/conformance.json), as VAR=value.
TS_CONFORMANCE_ENV = $(shell node -p "Object.entries(require('./clients/conformance.json').gateway_env).map(([k, v]) => k + '=' + v).join(' ')")
# The lowest @grpc/grpc-js the client's peer range admits; the consumer test runs with it too.
TS_GRPC_JS_LOWEST = $(shell node -p "require('./$(TS_DIR)/package.json').peerDependencies['@grpc/grpc-js'].replace(/^\\^/, '')")

client-tools-typescript: $(TS_STAMP)

$(TS_STAMP): $(TS_DIR)/package-lock.json
	cd $(TS_DIR) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

gen-client-typescript: $(STAMP) $(TS_STAMP)
	$(CLIENT_BUF) generate --template buf.gen.typescript.yaml

# dist/: the package as `npm pack` ships it; build/: the package with its tests and example.
build-client-typescript: $(TS_STAMP)
	cd $(TS_DIR) && npm run --silent build && npm run --silent build:test

# Unit and interop tests on a gateway with its defaults, the conformance table on one with the
# table's gateway_env, TLS/mTLS/token on gateways with TLS and caller authentication, the
# example, and the README's install route from a temporary directory with the pinned and the
# lowest admitted @grpc/grpc-js.
test-client-typescript: $(STAMP) build-client-typescript openssl-tool
	cd $(TS_DIR) && ../../$(WITH_GATEWAY) scripts/run-tests.sh build/test/errors.test.js build/test/types.test.js build/test/idempotency.test.js build/test/interop.test.js
	cd $(TS_DIR) && env $(TS_CONFORMANCE_ENV) ../../$(WITH_GATEWAY) scripts/run-tests.sh build/test/conformance.test.js
	$(TS_DIR)/scripts/test-tls.sh
	cd $(TS_DIR) && ../../$(WITH_GATEWAY) node build/examples/detect.js 'SANDBOX:score=0.995'
	$(WITH_GATEWAY) $(TS_DIR)/scripts/consumer-test.sh
	GRPC_JS_VERSION=$(TS_GRPC_JS_LOWEST) $(WITH_GATEWAY) $(TS_DIR)/scripts/consumer-test.sh

# --- Java -------------------------------------------------------------------------------------
# protoc (for buf's built-in java generator) and protoc-gen-grpc-java, as executables from Maven
# Central through the ordinary Maven cache (~/.m2), copied into .tools/bin.
JAVA_DIR := clients/java
JAVA_TOOLS_STAMP := $(CLIENT_STAMPS)/java-tools-$(PROTOC_VERSION)-$(PROTOC_GEN_GRPC_JAVA_VERSION)-$(CLIENT_EXE_CLASSIFIER)

client-tools-java: $(JAVA_TOOLS_STAMP)

$(JAVA_TOOLS_STAMP):
	@mkdir -p $(CLIENT_TOOLS_BIN) $(CLIENT_STAMPS)
	@tmp=$$(mktemp -d) && trap 'rm -rf $$tmp' EXIT && cd $$tmp && \
	  $(MVN) $(MAVEN_DEPENDENCY_PLUGIN):copy -DoutputDirectory=$$tmp/out -Dmdep.stripVersion=true \
	    -Dartifact=com.google.protobuf:protoc:$(PROTOC_VERSION):exe:$(CLIENT_EXE_CLASSIFIER) && \
	  $(MVN) $(MAVEN_DEPENDENCY_PLUGIN):copy -DoutputDirectory=$$tmp/out -Dmdep.stripVersion=true \
	    -Dartifact=io.grpc:protoc-gen-grpc-java:$(PROTOC_GEN_GRPC_JAVA_VERSION):exe:$(CLIENT_EXE_CLASSIFIER) && \
	  install -m 755 out/protoc-$(CLIENT_EXE_CLASSIFIER).exe $(CLIENT_TOOLS_BIN)/protoc && \
	  install -m 755 out/protoc-gen-grpc-java-$(CLIENT_EXE_CLASSIFIER).exe $(CLIENT_TOOLS_BIN)/protoc-gen-grpc-java
	@rm -f $(CLIENT_STAMPS)/java-tools-* && touch $@

gen-client-java: $(STAMP) $(JAVA_TOOLS_STAMP)
	$(CLIENT_BUF) generate --template buf.gen.java.yaml

build-client-java:
	cd $(JAVA_DIR) && $(MVN) test-compile

# The README's install (`mvn install`: unit tests only, no gateway running) and a consumer project
# outside the repository (scripts/consumer-check.sh); then the live-gateway suites of the interop
# profile, each on its own fresh gateway: interop (default settings), conformance (the table's
# gateway_env, read from clients/conformance.json) and secure (TLS, mTLS, callers file); then the
# example. -q hides Surefire's own summary, so print one from its reports over all the runs; no
# test, or a skipped one, is a failure.
JAVA_MVN_INTEROP := $(MVN) -f $(JAVA_DIR)/pom.xml -Pinterop
JAVA_CONFORMANCE_ENV := $(BIN)/python -c 'import json, sys; \
  print(" ".join(k + "=" + v for k, v in json.load(open(sys.argv[1]))["gateway_env"].items()))' \
  clients/conformance.json

# openssl makes the TLS/mTLS suites' certificates, in every language (Debian's package, where
# it is missing). clients-python.mk depends on it too.
.PHONY: openssl-tool
openssl-tool:
	@command -v openssl >/dev/null || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq openssl; }

test-client-java: $(STAMP) build-client-java openssl-tool
	rm -rf $(JAVA_DIR)/target/surefire-reports
	$(JAVA_DIR)/scripts/consumer-check.sh
	$(WITH_GATEWAY) $(JAVA_MVN_INTEROP) -Dtest.groups=interop test
	env $$($(JAVA_CONFORMANCE_ENV)) $(WITH_GATEWAY) $(JAVA_MVN_INTEROP) -Dtest.groups=conformance test
	$(JAVA_DIR)/scripts/with-secure-gateway.sh $(JAVA_MVN_INTEROP) -Dtest.groups=secure test
	@cat $(JAVA_DIR)/target/surefire-reports/*.txt | awk -F'[:,] *' '/^Tests run:/ { \
	  run += $$2; failed += $$4 + $$6; skipped += $$8 } END { \
	  printf "surefire: %d passed, %d failed, %d skipped\n", run - failed - skipped, failed, skipped; \
	  exit (run == 0 || failed > 0 || skipped > 0) }'
	cd $(JAVA_DIR) && ../../$(WITH_GATEWAY) $(MVN) exec:java -Dexec.args='SANDBOX:score=0.995'

# --- the generated-code check ---------------------------------------------------------------
# Regenerates every client into a temporary directory and diffs it with the checked-in code.
clients-gen-check: $(STAMP) $(GO_PLUGINS_STAMP) $(TS_STAMP) $(JAVA_TOOLS_STAMP)
	@tmp=$$(mktemp -d) && trap 'rm -rf $$tmp' EXIT && \
	  $(CLIENT_BUF) generate --template buf.gen.go.yaml -o $$tmp && \
	  diff -r $$tmp/clients/go/livenessv1 clients/go/livenessv1 && \
	  $(CLIENT_BUF) generate --template buf.gen.typescript.yaml -o $$tmp && \
	  diff -r $$tmp/$(TS_DIR)/src/gen $(TS_DIR)/src/gen && \
	  $(CLIENT_BUF) generate --template buf.gen.java.yaml -o $$tmp && \
	  diff -r $$tmp/$(JAVA_DIR)/src/generated/java $(JAVA_DIR)/src/generated/java && \
	  echo "clients-gen-check: generated client code is up to date"

TEST_TARGETS += test-clients
