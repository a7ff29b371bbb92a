# The audit trail (issue #19): its tests run against a real PostgreSQL, started per test from
# initdb and pg_ctl on a Unix socket (tests/postgres.py). Installs the server programs when
# they are missing (Debian keeps them in /usr/lib/postgresql/<major>/bin; tests/tools.py looks
# there too). Included by the Makefile.
#
#   make postgres-tool   install PostgreSQL's server programs if initdb cannot be found

.PHONY: postgres-tool

postgres-tool:
	@command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq postgresql; }

pytest: postgres-tool
