#!/usr/bin/env bash
# make-kafka-certs.sh DIR: a private test CA and a broker certificate for 127.0.0.1/localhost,
# for the secure Kafka mode of deploy/dev (TLS in front of the broker). Idempotent: keeps the
# files that are already there and valid for at least a day.
#   DIR/ca.crt       the CA certificate (clients: SWITCHBOARD_KAFKA_CA_FILE)
#   DIR/ca.key       the CA key (mode 600)
#   DIR/broker.crt   the broker certificate, signed by the CA, SAN IP:127.0.0.1, DNS:localhost
#   DIR/broker.key   its key (mode 600)
# Test material only: a deployment brings certificates from its own CA.
set -euo pipefail
dir=${1:?usage: make-kafka-certs.sh DIR}
mkdir -p "$dir"
chmod 700 "$dir"
cd "$dir"
umask 077

valid() { [ -s "$1" ] && openssl x509 -in "$1" -noout -checkend 86400 >/dev/null 2>&1; }

if ! valid ca.crt || [ ! -s ca.key ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 825 \
    -subj "/CN=Switchboard Kafka test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    >/dev/null 2>&1
  rm -f broker.crt
fi
if ! valid broker.crt || [ ! -s broker.key ] \
   || ! openssl verify -CAfile ca.crt broker.crt >/dev/null 2>&1; then
  openssl req -newkey rsa:2048 -nodes -keyout broker.key -out broker.csr \
    -subj "/CN=127.0.0.1" >/dev/null 2>&1
  printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=CA:FALSE" \
    "keyUsage=digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" >broker.ext
  openssl x509 -req -in broker.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
    -out broker.crt -days 825 -extfile broker.ext >/dev/null 2>&1
  rm -f broker.csr broker.ext
fi
chmod 644 ca.crt broker.crt
