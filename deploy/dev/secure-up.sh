#!/usr/bin/env bash
# Starts the secure Kafka mode beside the plain broker (which it never touches):
#   127.0.0.1:9094  SASL SCRAM-SHA-512 over plaintext
#   127.0.0.1:9095  SASL SCRAM-SHA-512 over TLS (nisshi's own TLS, certificate from a private test CA)
# Two nisshi brokers, each with its own data in .switchboard/kafka-secure{,-tls}/.
# User `switchboard`; its password is in .switchboard/kafka-secure/switchboard.password and the
# CA in .switchboard/kafka-secure/tls/ca.pem. Prints the environment a client needs.
# Idempotent: a second run on a warm machine returns at once.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
install_broker
start_secure_kafka
cat <<ENV
# SASL over plaintext:
export SWITCHBOARD_KAFKA_BROKERS=127.0.0.1:$SECURE_KAFKA_PORT
export SWITCHBOARD_KAFKA_USERNAME=switchboard
export SWITCHBOARD_KAFKA_PASSWORD_FILE=$SECURE_KAFKA_DIR/switchboard.password
# or SASL over TLS:
# export SWITCHBOARD_KAFKA_BROKERS=127.0.0.1:$SECURE_KAFKA_TLS_PORT
# export SWITCHBOARD_KAFKA_CA_FILE=$SECURE_KAFKA_DIR/tls/ca.pem
ENV
