# Observability: the tests scrape the gateway with a real Prometheus server and check the
# exposition with promtool, so both must be installed before pytest runs.
.PHONY: prometheus-tools
prometheus-tools:
	@scripts/ensure-prometheus.sh >/dev/null

pytest: prometheus-tools
