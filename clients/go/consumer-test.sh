#!/usr/bin/env bash
# Installs the Go client from outside the repository exactly as README.md says, builds the
# README's program and runs it against the gateway in LIVENESS_TARGET (run it under
# scripts/with-gateway.sh). The README's "consumer-test:" blocks are used word for word.
#
# The company's git host is played by a temporary bare repository holding this directory
# (tracked and new files, as they are now) tagged clients/go/v<Version>; git's own
# url.<...>.insteadOf, in a throwaway global git config, points the repository's https URL at
# it. go get then takes the GOPRIVATE route for the client (git, no proxy, no checksum
# database); the public dependencies come through GOPROXY, from the local module cache first.
# A fresh module cache, so an earlier run's copy of the tag is never reused.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
readme=$here/README.md
repo_url=https://github.com/liveness-gateway/liveness-gateway
[ -n "${LIVENESS_TARGET:-}" ] || { echo "consumer-test: LIVENESS_TARGET is not set" >&2; exit 2; }

version=$(sed -nE 's/^const Version = "([0-9]+\.[0-9]+\.[0-9]+)"$/\1/p' "$here/livenessclient/client.go")
[ -n "$version" ] || { echo "consumer-test: no Version in livenessclient/client.go" >&2; exit 1; }

# The fenced block after the marker <!-- consumer-test:NAME --> in the README.
block() {
  awk -v marker="<!-- consumer-test:$1 -->" '
    $0 == marker { found = 1; next }
    found && !inside && /^```/ { inside = 1; next }
    inside && /^```/ { exit }
    inside { print }' "$readme"
}

host_modcache=$(go env GOMODCACHE)
host_proxy=$(go env GOPROXY)
tmp=$(mktemp -d)
cleanup() { chmod -R u+w "$tmp" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

# The git host: the client's files at their place in the repository, tagged.
src=$tmp/src
mkdir -p "$src/clients/go"
(cd "$here" && git ls-files -co --exclude-standard -z . | xargs -0 cp --parents -t "$src/clients/go")
git init -q -b main "$src"
git -C "$src" add -A
git -C "$src" -c user.name=consumer-test -c user.email=consumer-test@localhost \
  commit -q -m "liveness-gateway Go client $version"
git -C "$src" tag "clients/go/v$version"
git clone -q --bare "$src" "$tmp/host.git"

export GIT_CONFIG_GLOBAL=$tmp/gitconfig GIT_CONFIG_NOSYSTEM=1
git config --global url."file://$tmp/host.git".insteadOf "$repo_url"
export GOMODCACHE=$tmp/modcache GOFLAGS=-modcacherw GOENV=$tmp/goenv
export GOPROXY="file://$host_modcache/cache/download,$host_proxy"
unset GOPRIVATE GONOSUMDB GONOPROXY GOSUMDB

mkdir "$tmp/consumer"
cd "$tmp/consumer"
go mod init example.com/consumer >/dev/null 2>&1
echo "consumer-test: README install block:" >&2
block install | sed 's/^/  /' >&2
bash -euo pipefail -c "$(block install)"
block main.go > main.go
[ -s main.go ] || { echo "consumer-test: no main.go block in the README" >&2; exit 1; }
go build -o consumer .
out=$(./consumer)
echo "$out"
grep -Eq '^score=0\.995 verdict=VERDICT_HACK request_id=[0-9a-f]{32}$' <<<"$out" ||
  { echo "consumer-test: no score with a request id" >&2; exit 1; }
grep -Eq '^code=ResourceExhausted reason=OUT_OF_QUOTA request_id=[0-9a-f]{32}$' <<<"$out" ||
  { echo "consumer-test: no error with its reason and request id" >&2; exit 1; }
grep -q "github.com/liveness-gateway/liveness-gateway/clients/go v$version" go.mod ||
  { echo "consumer-test: go.mod does not require the tagged version:" >&2; cat go.mod >&2; exit 1; }
echo "consumer-test: installed clients/go/v$version through GOPRIVATE and git, built, called the gateway"
