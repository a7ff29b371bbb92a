# Tracing (issue #20): the tests export spans to a real OpenTelemetry Collector (OTLP receiver,
# file exporter). Its builder is `go install`ed at the pinned release, and builds the
# Collector described by tests/otelcol/builder.yaml into a versioned folder of .tools/
# (git-ignored, kept across runs; about a minute and a half on two cores with a warm module
# cache).
OTELCOL_VERSION := v0.161.0
OTELCOL_BUILDER := $(CURDIR)/.tools/otelcol-builder-$(OTELCOL_VERSION)/builder
OTELCOL_DIR := $(CURDIR)/.tools/otelcol-tests-$(OTELCOL_VERSION)-$(shell sha1sum tests/otelcol/builder.yaml | cut -c1-8)
OTELCOL := $(OTELCOL_DIR)/otelcol-tests

$(OTELCOL_BUILDER):
	GOBIN=$(dir $@) GOFLAGS=-mod=mod go install go.opentelemetry.io/collector/cmd/builder@$(OTELCOL_VERSION)

$(OTELCOL): tests/otelcol/builder.yaml $(OTELCOL_BUILDER)
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	  sed 's|^dist:|dist:\n  output_path: $(OTELCOL_DIR)|' tests/otelcol/builder.yaml >$$tmp/builder.yaml; \
	  $(OTELCOL_BUILDER) --config $$tmp/builder.yaml >$$tmp/build.log 2>&1 || \
	    { cat $$tmp/build.log; exit 1; }

.PHONY: otelcol
otelcol: $(OTELCOL)

pytest: $(OTELCOL)
pytest: export OTELCOL := $(OTELCOL)

# make bench adds the tracing run (off, 1%, 100%) with this Collector receiving the spans.
bench: $(OTELCOL)
bench: BENCH_ARGS += --otelcol $(OTELCOL)
