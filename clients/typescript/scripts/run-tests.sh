#!/usr/bin/env bash
# node --test over the given files, failing when no test ran or any was skipped or left todo
# (node --test itself passes those).
set -euo pipefail
tap=$(mktemp)
trap 'rm -f "$tap"' EXIT
node --test --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$tap" "$@"
count() { sed -nE "s/^# $1 ([0-9]+)$/\1/p" "$tap" | tail -n1; }
tests=$(count tests) skipped=$(count skip) todo=$(count todo)
if [ "${tests:-0}" -eq 0 ] || [ "${skipped:-0}" -ne 0 ] || [ "${todo:-0}" -ne 0 ]; then
  echo "run-tests: ${tests:-0} tests, ${skipped:-0} skipped, ${todo:-0} todo: want tests and no skip" >&2
  exit 1
fi
