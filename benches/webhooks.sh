#!/usr/bin/env bash
#: Webhooks on every confirm against webhooks off, same box, same load, same run (issue 12), in
#: alternating rounds with fresh processes. The receiver is the bare hyper server
#: (benches/baseline/bare_hyper.rs: it answers 200 to any POST at once) on the same machine.
#
#   benches/webhooks.sh              # 3 rounds, 8 s windows
#   QUICK=1 benches/webhooks.sh      # 2 rounds, 4 s windows (a sanity check on a busy machine)
#
# Scenarios: `d100` — 100 ms decided latency at 1,000 connections: req/s as a % of the possible
# 10,000 req/s (the goal is >= 95% with webhooks on); `zero` — new confirms with no delay at 64
# connections: Gazua CPU µs/req (Δ utime+stime of /proc/PID/stat ÷ requests) with and without
# webhooks, and the receiver's own CPU µs/req. With webhooks on, every run reads
# gazua_webhooks_total before and a second after the window, so the table shows the events of
# the window really sent (`sent` ≈ requests; the confirms still waiting when wrk stops add up
# to 1,000) and how many a full outbox dropped (`lost`: when the receiver path cannot keep up).
# Knobs: ROUNDS, DURATION, GAZUA_BIN / RECEIVER_BIN (prebuilt: no cargo build), OUT.
# Traffic goes only to 127.0.0.1; every load run is bounded by `timeout`.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then ROUNDS=${ROUNDS:-2} DURATION=${DURATION:-4}; else ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-8}; fi
OUT=${OUT:-$ROOT/target/bench-results/webhooks-$(date -u +%Y%m%dT%H%M%SZ)}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
if [[ -z ${GAZUA_BIN:-} || -z ${RECEIVER_BIN:-} ]]; then
  (cd "$ROOT" && cargo build --release --bin gazua --example bare-hyper >&2)
fi
GAZUA_BIN=${GAZUA_BIN:-$TARGET_DIR/release/gazua}
RECEIVER_BIN=${RECEIVER_BIN:-$TARGET_DIR/release/examples/bare-hyper}
PORT=18581 ADMIN_PORT=18582 RECEIVER_PORT=18583
TICK=$(getconf CLK_TCK)
mkdir -p "$OUT"
ulimit -n 65536 2>/dev/null || true
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 1; }

log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
# "SENT LOST": gazua_webhooks_total for sent, and for dropped (outbox full) + abandoned.
webhook_counts() {
  curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" | awk '
    /^gazua_webhooks_total\{result="(sent|dropped|abandoned)"\}/ { split($1, a, "\""); v[a[2]] = $2 }
    END { printf "%d %d", v["sent"], v["dropped"] + v["abandoned"] }'
}

run_one() { # round webhooks(on|off) scenario → one TSV row
  local round=$1 mode=$2 sc=$3 args=() rpid="" conns headers
  if [[ $mode == on ]]; then
    "$RECEIVER_BIN" --listen "127.0.0.1:$RECEIVER_PORT" --body-bytes 16 >/dev/null 2>&1 &
    rpid=$!; PIDS+=("$rpid"); wait_port "$RECEIVER_PORT"
    args=(--webhook-url "http://127.0.0.1:$RECEIVER_PORT/hooks")
  fi
  "$GAZUA_BIN" --listen "127.0.0.1:$PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" --profile happy \
    --shutdown-grace 20s "${args[@]}" 2>>"$OUT/gazua.log" &
  local pid=$!; PIDS+=("$pid"); wait_port "$PORT"
  case $sc in zero) conns=64 headers="" ;; d100) conns=1000 headers="X-Gazua-Latency: 100ms" ;; esac
  local url="http://127.0.0.1:$PORT/v1/payments/confirm"
  # A gentle warm-up (about 1,600 req/s): its events are all delivered before the count starts.
  BENCH_HEADERS="X-Gazua-Latency: 10ms" timeout 30 wrk -t1 -c16 -d2s -s "$ROOT/benches/confirm.lua" "$url" >/dev/null 2>&1 || true
  sleep 1
  local m0 g0 r0=0 g1 r1=0 m1 tag="$OUT/r$round-$mode-$sc.wrk"
  m0=$(webhook_counts)
  g0=$(ticks "$pid"); [[ -n $rpid ]] && r0=$(ticks "$rpid")
  BENCH_HEADERS=$headers timeout $((DURATION + 60)) wrk -t1 -c"$conns" -d"${DURATION}s" --timeout 10s \
    -s "$ROOT/benches/confirm.lua" "$url" >"$tag" 2>&1 || true
  g1=$(ticks "$pid"); [[ -n $rpid ]] && r1=$(ticks "$rpid")
  # The events of the window still in flight are delivered within the grace, then counted.
  sleep 1
  m1=$(webhook_counts)
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  [[ -n $rpid ]] && { kill "$rpid"; wait "$rpid" 2>/dev/null || true; }
  awk -v round="$round" -v mode="$mode" -v sc="$sc" -v conns="$conns" -v g="$((g1 - g0))" \
      -v r="$((r1 - r0))" -v tick="$TICK" -v receiver="$rpid" -v m0="$m0" -v m1="$m1" '
    /^RESULT/ {
      for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
      req = v["requests"]; rps = req / (v["duration_us"] / 1e6)
      errors = v["connect"] + v["read"] + v["write"] + v["timeout"]
      split(m0, z, " "); split(m1, m, " ")
      printf "%s\t%s\t%s\t%d\t%.0f\t%.1f\t%s\t%d\t%d\t%.2f\t%d\t%d\t%d\n", round, sc, mode, conns, rps,
        (sc == "d100") ? 100 * rps / (conns / 0.1) : 0, (req > 0) ? sprintf("%.1f", 1e6 * g / tick / req) : "-",
        errors, v["status"], (receiver != "" && req > 0) ? 1e6 * r / tick / req : 0,
        req, m[1] - z[1], m[2] - z[2]
    }' "$tag"
}

printf 'round\tscenario\twebhooks\tconns\trps\tpct_possible\tgazua_cpu_us_per_req\tsocket_errors\tnon2xx\treceiver_cpu_us_per_req\trequests\twebhooks_sent\twebhooks_lost\n' >"$OUT/results.tsv"
for round in $(seq "$ROUNDS"); do
  for sc in zero d100; do
    # Alternate which goes first, so neither always gets the warmer machine.
    if (( round % 2 )); then order="on off"; else order="off on"; fi
    for mode in $order; do
      row=$(run_one "$round" "$mode" "$sc")
      log "$row"
      printf '%s\n' "$row" >>"$OUT/results.tsv"
    done
  done
done

# Medians per (scenario, webhooks); the on ÷ off CPU ratio is the median of same-round ratios.
echo "| scenario | webhooks | conns | req/s (median) | % of possible | Gazua CPU µs/req | on ÷ off CPU (same round) | receiver CPU µs/req | sent / requests | lost | socket errors / non-2xx |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
awk -F'\t' '
  function median(list,   n, a, i, j, t) {
    n = split(list, a, " "); for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  NR == 1 { next }
  { k = $2 "|" $3; if (!(k in seen)) { seen[k] = 1; order[++n] = k; conns[k] = $4 }
    rps[k] = rps[k] " " $5; pct[k] = pct[k] " " $6; cpu[k] = cpu[k] " " $7; rcpu[k] = rcpu[k] " " $10
    c[$2, $3, $1] = $7; rounds[$2] = rounds[$2] " " $1
    err[k] += $8; non[k] += $9; req[k] += $11; sent[k] += $12; lost[k] += $13 }
  END { for (i = 1; i <= n; i++) { k = order[i]; split(k, p, "|")
    ratios = ""; split(rounds[p[1]], rr, " ")
    for (j in rr) { r = rr[j]; if (c[p[1], "off", r] > 0 && !((p[1], r) in done)) { done[p[1], r] = 1; ratios = ratios " " c[p[1], "on", r] / c[p[1], "off", r] } }
    printf "| %s | %s | %s | %.0f | %s | %.1f | %s | %s | %s | %s | %d / %d |\n", p[1], p[2], conns[k], median(rps[k]),
      p[1] == "d100" ? sprintf("%.1f%%", median(pct[k])) : "–", median(cpu[k]),
      p[2] == "on" ? sprintf("%.2f", median(ratios)) : "–",
      p[2] == "on" ? sprintf("%.1f", median(rcpu[k])) : "–",
      p[2] == "on" ? sprintf("%d / %d", sent[k], req[k]) : "–", p[2] == "on" ? lost[k] : "–", err[k], non[k] } }' "$OUT/results.tsv" | tee "$OUT/summary.md"
log "results: $OUT"
