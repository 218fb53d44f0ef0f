#!/usr/bin/env bash
#: One client against everyone else: 10,000 silent connections and 2,000 one-byte-per-second
#: connections (half slow heads, half slow bodies) held open against a release Gazua at its
#: default --max-connections, while a normal client probes health (fresh connection, as a load
#: balancer does, on the PG port and on the --admin-listen port) and confirm (keep-alive). Reports p50/p99/max of each probe alone and under
#: attack, and their ratio (the figure that survives a shared machine). See benches/attack/slowloris.rs.
#
#   benches/slowloris.sh              # FULL: 10,000 silent + 2,000 slow, 30 s phases
#   QUICK=1 benches/slowloris.sh      # QUICK: same counts, 10 s phases
#
# Knobs (environment): SILENT, SLOW, DURATION, RAMP, EVERY_MS, GAZUA_ARGS (serve flags,
# default "--profile happy"), GAZUA_BIN (prebuilt binary: no cargo build). Traffic goes only to
# 127.0.0.1; the server is stopped at the end.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
QUICK=${QUICK:-0}
export SILENT=${SILENT:-10000} SLOW=${SLOW:-2000}
if [[ $QUICK == 1 ]]; then
  export DURATION=${DURATION:-10} RAMP=${RAMP:-8}
else
  export DURATION=${DURATION:-30} RAMP=${RAMP:-12}
fi
GAZUA_ARGS=${GAZUA_ARGS:---profile happy}
export ADDR=127.0.0.1:18580 ADMIN=127.0.0.1:18581

# Both sides hold ~12,000 sockets: raise the descriptor limit as far as the hard limit allows.
want=$((SILENT + SLOW + 4096))
hard=$(ulimit -Hn)
if [[ $hard != unlimited && $hard -lt $want ]]; then
  echo "warning: hard fd limit $hard < $want wanted; connect errors will show in the report" >&2
  ulimit -n "$hard"
else
  ulimit -n "$want"
fi

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
if [[ -z ${GAZUA_BIN:-} ]]; then
  cargo build --release --quiet --bin gazua --example slowloris --manifest-path "$ROOT/Cargo.toml"
  GAZUA_BIN=$CARGO_TARGET_DIR/release/gazua
fi
ATTACK_BIN=${ATTACK_BIN:-$CARGO_TARGET_DIR/release/examples/slowloris}

# shellcheck disable=SC2086
"$GAZUA_BIN" --listen "$ADDR" --admin-listen "$ADMIN" $GAZUA_ARGS --log-format json 2>"${TMPDIR:-/tmp}/gazua-slowloris.log" &
gazua=$!
trap 'kill "$gazua" 2>/dev/null || true; wait "$gazua" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  "$GAZUA_BIN" healthcheck --listen "$ADDR" --timeout 200ms && break
  sleep 0.1
done

echo "# $(date -u +%FT%TZ) silent=$SILENT slow=$SLOW duration=${DURATION}s ramp=${RAMP}s nofile=$(ulimit -n) nproc=$(nproc)"
timeout $((2 * DURATION + RAMP + 60)) "$ATTACK_BIN"
# What Gazua says it did, from its own metrics.
curl -s "http://$ADMIN/metrics" 2>/dev/null | grep -E '^gazua_connections_closed_total|^gazua_open_connections|^gazua_panics_total' || true
