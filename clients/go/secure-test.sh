#!/usr/bin/env bash
# TLS, mTLS and bearer tokens against real gateways: makes a throwaway CA, a server
# certificate for 127.0.0.1, two client certificates and a callers file, then runs
# TestSecureTLS (a gateway with --tls-cert and a callers file) and TestSecureMTLS (the same
# with --tls-client-ca) from secure_test.go (build tag securetest).
#   secure-test.sh PATH/TO/scripts/with-gateway.sh
set -euo pipefail
with_gateway=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cert() { # NAME SUBJECT_ALT_NAMES EXTENDED_KEY_USAGE
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" \
    -keyout "$tmp/$1.key" -out "$tmp/$1.csr" 2>/dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=%s\n' "$2" "$3" >"$tmp/$1.ext"
  openssl x509 -req -in "$tmp/$1.csr" -CA "$tmp/ca.crt" -CAkey "$tmp/ca.key" -CAcreateserial \
    -days 1 -extfile "$tmp/$1.ext" -out "$tmp/$1.crt" 2>/dev/null
}
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -subj "/CN=liveness test CA" -keyout "$tmp/ca.key" -out "$tmp/ca.crt" 2>/dev/null
cert server "DNS:localhost,IP:127.0.0.1" serverAuth
cert checkout.internal "DNS:checkout.internal" clientAuth
cert stranger.internal "DNS:stranger.internal" clientAuth

token=$(openssl rand -hex 24)
quota_token=$(openssl rand -hex 24)
sha() { printf %s "$1" | sha256sum | cut -d' ' -f1; }
cat >"$tmp/callers.toml" <<TOML
[[caller]]
name = "checkout"
cert_names = ["checkout.internal"]
rpcs = ["*"]

[[caller]]
name = "batch"
token_sha256 = "$(sha "$token")"
rpcs = ["Detect"]

[[caller]]
name = "trial"
token_sha256 = "$(sha "$quota_token")"
rpcs = ["*"]
daily_quota = 1
TOML

export LIVENESS_TEST_TLS_DIR=$tmp LIVENESS_TEST_TOKEN=$token LIVENESS_TEST_QUOTA_TOKEN=$quota_token
export LIVENESS_TLS_CERT=$tmp/server.crt LIVENESS_TLS_KEY=$tmp/server.key
export LIVENESS_CALLERS_FILE=$tmp/callers.toml
cd "$here"
"$with_gateway" go test -count=1 -tags securetest -run '^TestSecureTLS$' -v ./livenessclient/ | grep -v '^=== RUN'
LIVENESS_TLS_CLIENT_CA=$tmp/ca.crt \
  "$with_gateway" go test -count=1 -tags securetest -run '^TestSecureMTLS$' -v ./livenessclient/ | grep -v '^=== RUN'
