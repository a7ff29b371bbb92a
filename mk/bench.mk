# Performance: `make bench` runs bench/run.py (gateway vs a no-op gRPC server vs the floor
# server vs direct HTTP to the sandbox), then bench/slow_vendor.py (many callers on a slow
# vendor), and rewrites bench/results/. BENCH_QUICK=1 gives a
# short run for iteration.
# Deliberately not in TEST_TARGETS: numbers are reported, never a pass/fail of `make test`.
GHZ_VERSION := v0.120.0
GHZ_DIR := $(CURDIR)/.tools/ghz-$(GHZ_VERSION)
GHZ := $(GHZ_DIR)/ghz
BENCH_STAMP := $(VENV)/.bench-$(shell cat bench/requirements.txt | sha1sum | cut -c1-12)
BENCH_ARGS ?=

$(GHZ):
	GOBIN=$(GHZ_DIR) GOFLAGS=-mod=mod go install github.com/bojand/ghz/cmd/ghz@$(GHZ_VERSION)

# h2load (Debian's nghttp2-client) drives the direct HTTP path.
.PHONY: bench bench-tools bench-h2load
bench-h2load:
	@command -v h2load >/dev/null || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq nghttp2-client; }

$(BENCH_STAMP): bench/requirements.txt $(STAMP)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r bench/requirements.txt
	@rm -f $(VENV)/.bench-*
	@touch $@

bench-tools: $(GHZ) bench-h2load $(BENCH_STAMP) postgres-tool

bench: bench-tools
	$(BIN)/python bench/run.py --ghz $(GHZ) $(if $(BENCH_QUICK),--quick) $(BENCH_ARGS)
	$(BIN)/python bench/slow_vendor.py --ghz $(GHZ) $(if $(BENCH_QUICK),--duration 8) $(SLOW_VENDOR_ARGS)

# The slow-vendor scenario alone (bench/slow_vendor.py): SLOW_VENDOR_ARGS="--cases a --modes adaptive".
SLOW_VENDOR_ARGS ?=
.PHONY: bench-slow-vendor
bench-slow-vendor: bench-tools
	$(BIN)/python bench/slow_vendor.py --ghz $(GHZ) $(SLOW_VENDOR_ARGS)
