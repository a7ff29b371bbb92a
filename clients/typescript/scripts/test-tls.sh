#!/usr/bin/env bash
# The TLS, mTLS and bearer-token options against real gateways: makes a throwaway CA, a server
# certificate for 127.0.0.1 and two client certificates (one a registered caller's, one not)
# and a callers file, then runs build/test/tls.test.js on a gateway with TLS and caller
# authentication, and build/test/mtls.test.js on one that also requires client certificates.
#   clients/typescript/scripts/test-tls.sh        (from anywhere; needs the built tests)
set -euo pipefail
client=$(cd "$(dirname "$0")/.." && pwd)
with_gateway=$client/../../scripts/with-gateway.sh
pki=$(mktemp -d)
trap 'rm -rf "$pki"' EXIT
cd "$pki"

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null; }
key ca
openssl req -x509 -new -key ca.key -out ca.pem -days 1 -subj /CN=liveness-test-ca 2>/dev/null
issue() { # name, common name, extensions
  key "$1"
  openssl req -new -key "$1.key" -out "$1.csr" -subj "/CN=$2" 2>/dev/null
  printf '%b\n' "$3" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 \
    -extfile "$1.ext" -out "$1.pem" 2>/dev/null
}
issue server localhost 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth'
issue kyc kyc.internal 'subjectAltName=DNS:kyc.internal\nextendedKeyUsage=clientAuth'
issue stranger stranger.internal 'subjectAltName=DNS:stranger.internal\nextendedKeyUsage=clientAuth'
token=$(openssl rand -hex 16)
cat >callers.toml <<TOML
[[caller]]
name = "checkout"
token_sha256 = "$(printf %s "$token" | sha256sum | cut -d' ' -f1)"
rpcs = ["Detect"]

[[caller]]
name = "kyc"
cert_names = ["kyc.internal"]
rpcs = ["*"]
TOML

export LIVENESS_TEST_PKI=$pki LIVENESS_TEST_TOKEN=$token
export LIVENESS_TLS_CERT=$pki/server.pem LIVENESS_TLS_KEY=$pki/server.key LIVENESS_CALLERS_FILE=$pki/callers.toml
cd "$client"
"$with_gateway" scripts/run-tests.sh build/test/tls.test.js
LIVENESS_TLS_CLIENT_CA=$pki/ca.pem "$with_gateway" scripts/run-tests.sh build/test/mtls.test.js
