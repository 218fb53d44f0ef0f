#!/usr/bin/env bash
#: The three ledgers side by side, same box, same load, same run (issue 11): memory, stateless
#: and redis (a fresh local redis-server), in alternation, fresh processes per round.
#
#   benches/ledgers.sh              # 3 rounds, 8 s windows
#   QUICK=1 benches/ledgers.sh      # 2 rounds, 4 s windows (a sanity check on a busy machine)
#
# Scenarios: `zero` — new confirms with no delay at 64 connections: req/s, Gazua CPU µs/req and
# (redis) redis-server's own CPU µs/req; `d100` — 100 ms decided latency at 1,000 connections:
# req/s as a % of the possible 10,000 req/s (the goal is >= 95% for every ledger).
# MAIN_BIN=path/to/gazua adds main's build with the memory and stateless ledgers (`main-memory`,
# `main-stateless`): an in-process ledger must be no slower than before the async seam.
# Knobs: ROUNDS, DURATION, GAZUA_BIN (default target/release/gazua, built if missing), OUT.
# Traffic goes only to 127.0.0.1; every load run is bounded by `timeout`.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then ROUNDS=${ROUNDS:-2} DURATION=${DURATION:-4}; else ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-8}; fi
OUT=${OUT:-$ROOT/target/bench-results/ledgers-$(date -u +%Y%m%dT%H%M%SZ)}
GAZUA_BIN=${GAZUA_BIN:-$ROOT/target/release/gazua}
MAIN_BIN=${MAIN_BIN:-}
PORT=18580 REDIS_PORT=18590
TICK=$(getconf CLK_TCK)
mkdir -p "$OUT"
ulimit -n 65536 2>/dev/null || true
[[ -x $GAZUA_BIN ]] || (cd "$ROOT" && cargo build --release --bin gazua)
command -v redis-server >/dev/null || { echo "redis-server is needed (apt-get install redis-server)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 1; }

log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

run_one() { # round ledger scenario → one TSV row
  local round=$1 ledger=$2 sc=$3 bin=$GAZUA_BIN args=() rpid="" conns headers
  case $ledger in
    memory) args=(--ledger memory) ;;
    stateless) args=(--ledger stateless) ;;
    redis) args=(--ledger "redis://127.0.0.1:$REDIS_PORT") ;;
    main-memory) bin=$MAIN_BIN args=(--ledger memory) ;;
    main-stateless) bin=$MAIN_BIN args=(--ledger stateless) ;;
  esac
  if [[ $ledger == redis ]]; then
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no >/dev/null 2>&1 &
    rpid=$!; PIDS+=("$rpid"); wait_port "$REDIS_PORT"
  fi
  "$bin" --listen "127.0.0.1:$PORT" --profile happy "${args[@]}" 2>>"$OUT/gazua.log" &
  local pid=$!; PIDS+=("$pid"); wait_port "$PORT"
  case $sc in zero) conns=64 headers="" ;; d100) conns=1000 headers="X-Gazua-Latency: 100ms" ;; esac
  local url="http://127.0.0.1:$PORT/v1/payments/confirm"
  BENCH_HEADERS="" timeout 30 wrk -t1 -c64 -d2s -s "$ROOT/benches/confirm.lua" "$url" >/dev/null 2>&1 || true
  local g0 r0=0 g1 r1=0 tag="$OUT/r$round-$ledger-$sc.wrk"
  g0=$(ticks "$pid"); [[ -n $rpid ]] && r0=$(ticks "$rpid")
  BENCH_HEADERS=$headers timeout $((DURATION + 60)) wrk -t1 -c"$conns" -d"${DURATION}s" --timeout 10s \
    -s "$ROOT/benches/confirm.lua" "$url" >"$tag" 2>&1 || true
  g1=$(ticks "$pid"); [[ -n $rpid ]] && r1=$(ticks "$rpid")
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  [[ -n $rpid ]] && { kill "$rpid"; wait "$rpid" 2>/dev/null || true; }
  awk -v round="$round" -v ledger="$ledger" -v sc="$sc" -v conns="$conns" -v g="$((g1 - g0))" \
      -v r="$((r1 - r0))" -v tick="$TICK" -v redis="$rpid" '
    /^RESULT/ {
      for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
      req = v["requests"]; rps = req / (v["duration_us"] / 1e6)
      errors = v["connect"] + v["read"] + v["write"] + v["timeout"]
      printf "%s\t%s\t%s\t%d\t%.0f\t%.1f\t%s\t%d\t%d\t%.2f\n", round, sc, ledger, conns, rps,
        (sc == "d100") ? 100 * rps / (conns / 0.1) : 0, (req > 0) ? sprintf("%.1f", 1e6 * g / tick / req) : "-",
        errors, v["status"], (redis != "" && req > 0) ? 1e6 * r / tick / req : 0
    }' "$tag"
}

LEDGERS="memory stateless redis"
[[ -n $MAIN_BIN ]] && LEDGERS="$LEDGERS main-memory main-stateless"
printf 'round\tscenario\tledger\tconns\trps\tpct_possible\tgazua_cpu_us_per_req\tsocket_errors\tnon2xx\tredis_cpu_us_per_req\n' >"$OUT/results.tsv"
for round in $(seq "$ROUNDS"); do
  for sc in zero d100; do
    for ledger in $LEDGERS; do
      row=$(run_one "$round" "$ledger" "$sc")
      log "$row"
      printf '%s\n' "$row" >>"$OUT/results.tsv"
    done
  done
done

# Medians per (scenario, ledger).
echo "| scenario | ledger | conns | req/s (median) | % of possible | Gazua CPU µs/req | Redis CPU µs/req | socket errors / non-2xx |"
echo "|---|---|---|---|---|---|---|---|"
awk -F'\t' '
  function median(list,   n, a, i, j, t) {
    n = split(list, a, " "); for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  NR == 1 { next }
  { k = $2 "|" $3; if (!(k in seen)) { seen[k] = 1; order[++n] = k; conns[k] = $4 }
    rps[k] = rps[k] " " $5; pct[k] = pct[k] " " $6; cpu[k] = cpu[k] " " $7; rcpu[k] = rcpu[k] " " $10
    err[k] += $8; non[k] += $9 }
  END { for (i = 1; i <= n; i++) { k = order[i]; split(k, p, "|")
    printf "| %s | %s | %s | %.0f | %s | %.1f | %s | %d / %d |\n", p[1], p[2], conns[k], median(rps[k]),
      p[1] == "d100" ? sprintf("%.1f%%", median(pct[k])) : "–", median(cpu[k]),
      p[2] == "redis" ? sprintf("%.1f", median(rcpu[k])) : "–", err[k], non[k] } }' "$OUT/results.tsv" | tee "$OUT/summary.md"
log "results: $OUT"
