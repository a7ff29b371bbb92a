# Fleet mode (issue #18): the state store's tests start a real Redis, Debian's redis-server
# (installed where it is missing, as openssl is for the client suites). The fixture in
# tests/redis_server.py runs it on a Unix socket in a temporary directory, without persistence.
.PHONY: redis-tool
redis-tool:
	@command -v redis-server >/dev/null || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq redis-server; }

pytest: redis-tool
