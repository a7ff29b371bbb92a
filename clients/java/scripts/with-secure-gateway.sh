#!/usr/bin/env bash
# Runs a command against a gateway with TLS, required client certificates (mTLS) and caller
# authentication, for the Java client's "secure" tests:
#   scripts/with-secure-gateway.sh mvn -Pinterop -Dtest.groups=secure test
# Makes a throw-away CA, a server certificate for 127.0.0.1 and two client certificates with
# openssl, a bearer token and a callers file in a temporary directory, then runs the command
# under scripts/with-gateway.sh with the gateway's TLS and callers settings pointing at them.
# Exports LIVENESS_TEST_TLS_DIR (ca.pem, cert.pem/cert.key: caller "java-cert", Detect only;
# anon.pem/anon.key: a certificate no caller names) and LIVENESS_TEST_TOKEN (caller
# "java-token", every RPC).
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
# sign NAME CN EXTENSIONS: NAME.key and NAME.pem, signed by the CA, valid for a day.
sign() {
  key "$dir/$1.key"
  openssl req -new -key "$dir/$1.key" -subj "/CN=$2" -out "$dir/$1.csr"
  openssl x509 -req -in "$dir/$1.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 1 -extfile <(printf '%s\n' "$3") -out "$dir/$1.pem" 2>/dev/null
}
key "$dir/ca.key"
openssl req -x509 -new -key "$dir/ca.key" -subj /CN=liveness-test-ca -days 1 \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign \
  -out "$dir/ca.pem"
sign server localhost $'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth'
sign cert java-cert.test $'subjectAltName=DNS:java-cert.test\nextendedKeyUsage=clientAuth'
sign anon java-anon.test $'subjectAltName=DNS:java-anon.test\nextendedKeyUsage=clientAuth'

token=$(openssl rand -hex 24)
cat >"$dir/callers.toml" <<TOML
[[caller]]
name = "java-cert"
cert_names = ["java-cert.test"]
rpcs = ["Detect"]

[[caller]]
name = "java-token"
token_sha256 = "$(printf %s "$token" | sha256sum | cut -d' ' -f1)"
rpcs = ["*"]
TOML

export LIVENESS_TLS_CERT=$dir/server.pem LIVENESS_TLS_KEY=$dir/server.key
export LIVENESS_TLS_CLIENT_CA=$dir/ca.pem LIVENESS_CALLERS_FILE=$dir/callers.toml
export LIVENESS_TEST_TLS_DIR=$dir LIVENESS_TEST_TOKEN=$token
"$root/scripts/with-gateway.sh" "$@"
