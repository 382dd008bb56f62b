#!/usr/bin/env bash
# Runs the cargo-fuzz targets of schemas/fuzz, each for SECONDS (default 600).
#
#   deploy/dev/fuzz.sh [SECONDS] [TARGET...]      # default: every target
#
# Installs cargo-fuzz if it is missing. Uses the nightly toolchain when one is installed, else
# the stable one with RUSTC_BOOTSTRAP=1 (cargo-fuzz needs -Z flags; the stable toolchain ships
# the AddressSanitizer runtime). Builds in $SWITCHBOARD_CACHE/fuzz-target, so the workspace's
# own build is left alone, and runs at the lowest CPU priority. New interesting inputs go to
# schemas/fuzz/corpus/<target>/; a crash leaves its input in schemas/fuzz/artifacts/<target>/
# and makes the script exit 1 after the other targets ran. FUZZ_CMIN=1 minimises each corpus
# afterwards (`cargo fuzz cmin`); FUZZ_JOBS=N runs N fuzzing processes per target.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

SECONDS_EACH=${1:-600}
shift || true
FUZZ_DIR="$ROOT/schemas/fuzz"
TARGET_DIR="$CACHE/fuzz-target"
JOBS=${FUZZ_JOBS:-1}

case "$SECONDS_EACH" in
  '' | *[!0-9]*) die "usage: $0 [SECONDS] [TARGET...] (SECONDS must be a whole number)" ;;
esac

install_cargo_fuzz() {
  if cargo fuzz --version >/dev/null 2>&1; then return 0; fi
  say "installing cargo-fuzz (cargo install --locked)"
  cargo install cargo-fuzz --locked >"$CACHE/cargo-fuzz-install.log" 2>&1 \
    || die "cargo install cargo-fuzz failed; see $CACHE/cargo-fuzz-install.log"
}

# The cargo command line that accepts nightly flags: nightly if installed, else stable + bootstrap.
fuzz_cargo() {
  if rustup run nightly rustc --version >/dev/null 2>&1; then
    nice -n 19 cargo +nightly fuzz "$@"
  else
    RUSTC_BOOTSTRAP=1 nice -n 19 cargo fuzz "$@"
  fi
}

install_cargo_fuzz
cd "$FUZZ_DIR"
if [ "$#" -gt 0 ]; then
  TARGETS=("$@")
else
  mapfile -t TARGETS < <(cargo fuzz list)
fi

say "building fuzz targets in $TARGET_DIR"
fuzz_cargo build --target-dir "$TARGET_DIR" >"$CACHE/fuzz-build.log" 2>&1 \
  || die "cargo fuzz build failed; see $CACHE/fuzz-build.log"

failed=()
for target in "${TARGETS[@]}"; do
  mkdir -p "corpus/$target"
  log="$CACHE/fuzz-$target.log"
  say "fuzzing $target for ${SECONDS_EACH}s (log: $log)"
  parallel=()
  if [ "$JOBS" -gt 1 ]; then parallel=(-jobs="$JOBS" -workers="$JOBS"); fi
  if fuzz_cargo run --target-dir "$TARGET_DIR" "$target" "corpus/$target" -- \
    -max_total_time="$SECONDS_EACH" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    "${parallel[@]}" >"$log" 2>&1; then
    runs=$(cat "$log" fuzz-*.log 2>/dev/null | awk '/^stat::number_of_executed_units/ {s += $2} END {print s + 0}' || true)
    say "$target: no crash, $runs executions, corpus $(find "corpus/$target" -type f | wc -l) inputs"
  else
    say "$target: FAILED (crash, timeout or build error); see $log and artifacts/$target/"
    failed+=("$target")
  fi
  rm -f fuzz-*.log
  if [ "${FUZZ_CMIN:-0}" = 1 ]; then
    fuzz_cargo cmin --target-dir "$TARGET_DIR" "$target" "corpus/$target" >"$CACHE/fuzz-cmin-$target.log" 2>&1 \
      || say "cmin of $target failed; see $CACHE/fuzz-cmin-$target.log"
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  die "fuzz targets with findings: ${failed[*]}"
fi
say "all fuzz targets ran ${SECONDS_EACH}s each without a crash"
