#!/usr/bin/env bash
#: The allocator experiment: builds Gazua with mimalloc as its global allocator in a scratch
#: copy of the repo (the repo itself is not touched), then runs benches/run.sh with that build as
#: "gazua-alt" beside the system-allocator build and the baseline.
#
#   benches/allocator.sh                                   # QUICK pass, zero and mix scenarios
#   SCENARIOS="zero d100 c10k" QUICK=1 benches/allocator.sh
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SCRATCH=${SCRATCH:-${TMPDIR:-/tmp}/gazua-mimalloc}
MIMALLOC_VERSION=${MIMALLOC_VERSION:-0.1}

rm -rf "$SCRATCH"
mkdir -p "$SCRATCH"
# The tracked sources only, plus a copy of the lock file.
(cd "$ROOT" && git ls-files -z | xargs -0 cp --parents -t "$SCRATCH")
cd "$SCRATCH"
cargo add --quiet "mimalloc@$MIMALLOC_VERSION" --no-default-features
cat >>src/main.rs <<'EOF'

/// Allocator experiment (benches/allocator.sh): not part of the product.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
EOF
# Its own target dir, so the main build's cache is not invalidated.
CARGO_TARGET_DIR=$SCRATCH/target cargo build --release --quiet --bin gazua
echo "mimalloc build: $SCRATCH/target/release/gazua" >&2
[[ ${BUILD_ONLY:-0} == 1 ]] && exit 0

cd "$ROOT"
cargo build --release --quiet --bin gazua --example bare-hyper
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
ALT_BIN=$SCRATCH/target/release/gazua \
  GAZUA_BIN=$TARGET_DIR/release/gazua BASELINE_BIN=$TARGET_DIR/release/examples/bare-hyper \
  QUICK=${QUICK:-1} SCENARIOS=${SCENARIOS:-"zero mix d100"} \
  OUT=${OUT:-$ROOT/target/bench-results/allocator-$(date -u +%Y%m%dT%H%M%SZ)} \
  "$ROOT/benches/run.sh"
