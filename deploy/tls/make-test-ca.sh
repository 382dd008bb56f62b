#!/usr/bin/env bash
# make-test-ca.sh [DIR]: a private test CA with a server and a client certificate, for the mutual
# TLS of `switchboard model serve --tls-dir DIR` and its clients (topology config
# `model_server: { url: https://localhost:50051, tls_dir: DIR }`).
# DIR defaults to $SWITCHBOARD_STATE/tls (SWITCHBOARD_STATE defaults to .switchboard).
# Idempotent: keeps what is there while it is valid for at least a day and signed by the CA.
#   DIR/ca.pem, DIR/ca.key          the CA (EC P-256)
#   DIR/server.pem, DIR/server.key  server certificate, SAN DNS:localhost, IP:127.0.0.1
#   DIR/client.pem, DIR/client.key  client certificate (extendedKeyUsage clientAuth)
# Test material only: a deployment brings certificates from its own CA.
set -euo pipefail
dir=${1:-${SWITCHBOARD_STATE:-.switchboard}/tls}
openssl=${OPENSSL:-openssl}
mkdir -p "$dir"
chmod 700 "$dir"
cd "$dir"
umask 077

valid() { [ -s "$1" ] && "$openssl" x509 -in "$1" -noout -checkend 86400 >/dev/null 2>&1; }
signed() { valid "$1" && [ -s "$2" ] && "$openssl" verify -CAfile ca.pem "$1" >/dev/null 2>&1; }
newkey() { "$openssl" genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" >/dev/null 2>&1; }

if ! valid ca.pem || [ ! -s ca.key ]; then
  newkey ca.key
  "$openssl" req -x509 -new -key ca.key -out ca.pem -days 825 -subj "/CN=Switchboard model server test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" >/dev/null 2>&1
  rm -f server.pem client.pem
fi

# issue NAME CN EXTENSIONS...
issue() {
  local name=$1 cn=$2
  shift 2
  if signed "$name.pem" "$name.key"; then return; fi
  newkey "$name.key"
  "$openssl" req -new -key "$name.key" -out "$name.csr" -subj "/CN=$cn" >/dev/null 2>&1
  printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" "$@" >"$name.ext"
  "$openssl" x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$name.pem" \
    -days 825 -extfile "$name.ext" >/dev/null 2>&1
  rm -f "$name.csr" "$name.ext"
}
issue server localhost "subjectAltName=DNS:localhost,IP:127.0.0.1" "extendedKeyUsage=serverAuth"
issue client switchboard-client "subjectAltName=DNS:switchboard-client" "extendedKeyUsage=clientAuth"
chmod 644 ca.pem server.pem client.pem
echo "$dir"
