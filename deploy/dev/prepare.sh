#!/usr/bin/env bash
# Trains the demo intent models and loads the demo knowledge base into SWITCHBOARD_STATE, with
# the switchboard binary given as $1 (or found in the cargo target dir). Skips what is up to date
# (a stamp holds the hash of the data that made it).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bin=${1:-"${CARGO_TARGET_DIR:-$ROOT/target}/debug/switchboard"}
[ -x "$bin" ] || die "switchboard binary not found at $bin (build it first)"
export SWITCHBOARD_MODELS="${SWITCHBOARD_MODELS:-$ROOT/models}" SWITCHBOARD_STATE="$STATE"
data="$ROOT/operators/data"

train() { # locale-dir data-file encoder
  local out="$STATE/intent/$1" file=$2 encoder=$3
  # The stamp covers the data and the encoder's code: a changed forward pass retrains.
  local hash; hash=$(cat "$file" "$ROOT"/operators/src/intent/encoder.rs "$ROOT"/operators/src/intent/packed.rs \
    | sha256sum | cut -c1-16)-$encoder-f32
  if [ -f "$out/model.json" ] && [ "$(cat "$out/.data-hash" 2>/dev/null)" = "$hash" ]; then return 0; fi
  say "training the $1 intent model on $(basename "$file") with $encoder"
  mkdir -p "$out"
  # Trained (and the knowledge base embedded) in f32 whatever SWITCHBOARD_ENCODER_PRECISION says:
  # int8 is a way to serve these models, not another model.
  env -u SWITCHBOARD_ENCODER_PRECISION "$bin" intent train --data "$file" --encoder "$encoder" --out "$out" >"$STATE/intent-$1-train.json" \
    || die "training the $1 intent model failed"
  echo "$hash" >"$out/.data-hash"
}
train zh "$data/intents/train.zh.jsonl" m3e-small
train en "$data/intents/train.en.jsonl" all-minilm-l6-v2

kb_hash=$(cat "$data"/kb/kb.*.jsonl "$STATE"/intent/*/model.json | sha256sum | cut -c1-16)
if [ "$(cat "$STATE/kb/.data-hash" 2>/dev/null)" != "$kb_hash" ]; then
  say "loading the demo knowledge base"
  env -u SWITCHBOARD_ENCODER_PRECISION "$bin" kb load "$data"/kb/kb.zh.jsonl "$data"/kb/kb.en.jsonl >/dev/null || die "kb load failed"
  echo "$kb_hash" >"$STATE/kb/.data-hash"
fi
