#!/usr/bin/env bash
#: How exactly Gazua answers at the decided moment (issue 9), and what it costs: the same binary
#: with `--timer-precision off` (tokio's 1 ms timer alone, as before the precise timer), the
#: default (750us) and the finest (0), alternating inside every round, fresh processes, medians
#: of rounds and same-round ratios against `off`.
#
#   benches/timer.sh               # FULL: 5 rounds, 10 s windows (~12 min)
#   QUICK=1 benches/timer.sh       # QUICK: 3 rounds, 5 s windows (~5 min)
#
# Per variant and round, one fresh server (`--profile happy`) is warmed up on the zero-delay
# path, then measured:
#   zero       wrk -c64, no latency: req/s (the precise timer is not touched by a zero wait)
#   idle-1ms, idle-20ms, idle-100ms
#              wrk -c1 (one connection) asking that latency: server-side lateness p50/p99
#   client-250us
#              benches/ttfb.py, one keep-alive connection, `250us`: time to first byte p50/p99
#   load       wrk -c1000, lognormal(p50=40ms, p99=300ms): server CPU µs/req, lateness p50/p99
# Server-side lateness is gazua_timer_lateness_seconds (the wake-up minus the decided moment),
# the quantile interpolated inside its bucket as Prometheus' histogram_quantile does.
#
# Knobs: ROUNDS, DURATION, WARMUP, IDLE_DURATION, CLIENT_REQUESTS, VARIANTS ("off 750us 0"),
# GAZUA_BIN (prebuilt: no cargo build), OUT. Traffic goes only to 127.0.0.1; every load run is
# bounded by `timeout`.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then
  ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-5} WARMUP=${WARMUP:-2} IDLE_DURATION=${IDLE_DURATION:-4}
  CLIENT_REQUESTS=${CLIENT_REQUESTS:-2000}
else
  ROUNDS=${ROUNDS:-5} DURATION=${DURATION:-10} WARMUP=${WARMUP:-5} IDLE_DURATION=${IDLE_DURATION:-10}
  CLIENT_REQUESTS=${CLIENT_REQUESTS:-10000}
fi
VARIANTS=${VARIANTS:-"off 750us 0"}
OUT=${OUT:-$ROOT/target/bench-results/timer-$(date -u +%Y%m%dT%H%M%SZ)}
PORT=18580
TICK=$(getconf CLK_TCK)
RESULTS=$OUT/results.tsv

log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

mkdir -p "$OUT/raw"
if ! command -v wrk >/dev/null; then
  log "installing wrk (apt-get)"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk) >&2
fi
ulimit -n "$(ulimit -Hn)"
if [[ -z ${GAZUA_BIN:-} ]]; then
  log "building gazua (release)"
  (cd "$ROOT" && cargo build --release --quiet --bin gazua)
  TARGET_DIR=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps 2>/dev/null | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
  GAZUA_BIN=$TARGET_DIR/release/gazua
fi

SERVER_PID=
cleanup() { [[ -n $SERVER_PID ]] && kill -TERM "$SERVER_PID" 2>/dev/null || true; }
trap cleanup EXIT

wait_port() {
  for _ in $(seq 100); do
    curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/__gazua/health" && return 0
    sleep 0.1
  done
  log "error: nothing answers on 127.0.0.1:$PORT"; return 1
}

proc_cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
box_busy() { awk '/^cpu / { print $2+$3+$4+$6+$7+$8+$9 }' /proc/stat; }
scrape() { curl -s "http://127.0.0.1:$PORT/metrics" >"$1"; }

# Quantile q of the lateness observed between two /metrics dumps, in ms ("-" when empty).
lateness_q() { # before after q
  awk -v m=gazua_timer_lateness_seconds_bucket -v q="$3" -f "$ROOT/benches/histogram_quantile.awk" "$1" "$2"
}

row() { # round variant scenario requests seconds cpu_ticks other_pct before after [client p50 p99]
  local rps cpu late50 late99
  rps=$(awk -v r="$4" -v s="$5" 'BEGIN { printf "%.0f", (s > 0) ? r / s : 0 }')
  cpu=$(awk -v c="$6" -v r="$4" -v t="$TICK" 'BEGIN { printf "%.1f", (r > 0) ? 1e6 * c / t / r : 0 }')
  late50=$(lateness_q "$8" "$9" 0.50) late99=$(lateness_q "$8" "$9" 0.99)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$rps" "$cpu" \
    "$late50" "$late99" "${10:--}" "${11:--}" "$7" >>"$RESULTS"
  log "  $2 $3: $4 req, $rps req/s, CPU $cpu µs/req, lateness p50/p99 $late50/$late99 ms, client p50/p99 ${10:--}/${11:--} ms, other tenants ${7}%"
}

wrk_window() { # round variant scenario conns seconds headers
  local tag="$OUT/raw/r$1-$2-$3" pid=$SERVER_PID c0 c1 b0 b1 t0 t1
  scrape "$tag.before.prom"
  c0=$(proc_cpu "$pid") b0=$(box_busy) t0=$(date +%s.%N)
  BENCH_HEADERS=$6 timeout $(($5 + 60)) /usr/bin/time -f "WRKCPU %U %S" \
    wrk -t1 -c"$4" -d"${5}s" --timeout 10s -s "$ROOT/benches/confirm.lua" \
    "http://127.0.0.1:$PORT/v1/payments/confirm" >"$tag.wrk" 2>&1 || true
  c1=$(proc_cpu "$pid") b1=$(box_busy) t1=$(date +%s.%N)
  scrape "$tag.after.prom"
  local req secs wrk_cpu other
  req=$(sed -n 's/.* requests=\([0-9]*\).*/\1/p' "$tag.wrk")
  secs=$(sed -n 's/.* duration_us=\([0-9]*\).*/\1/p' "$tag.wrk" | awk '{ print $1 / 1e6 }')
  wrk_cpu=$(awk '/^WRKCPU/ { print $2 + $3 }' "$tag.wrk")
  # Busy CPU of the box that was neither this server nor wrk: how noisy the window was.
  other=$(awk -v b="$((b1 - b0))" -v c="$((c1 - c0))" -v w="${wrk_cpu:-0}" -v t="$TICK" -v a="$t0" -v z="$t1" \
    'BEGIN { o = (b - c) / t - w; if (o < 0) o = 0; printf "%.0f", 100 * o / (z - a) }')
  row "$1" "$2" "$3" "${req:-0}" "${secs:-0}" "$((c1 - c0))" "$other" "$tag.before.prom" "$tag.after.prom"
}

printf 'round\tvariant\tscenario\trequests\trps\tcpu_us_per_req\tlateness_p50_ms\tlateness_p99_ms\tclient_p50_ms\tclient_p99_ms\tother_cpu_pct\n' >"$RESULTS"
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "mode: QUICK=$QUICK ROUNDS=$ROUNDS DURATION=$DURATION IDLE_DURATION=$IDLE_DURATION CLIENT_REQUESTS=$CLIENT_REQUESTS"
  echo "gazua: $GAZUA_BIN ($(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null)); variants: $VARIANTS"
  echo "nproc: $(nproc); cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); kernel: $(uname -r)"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/env.txt" >&2

for round in $(seq "$ROUNDS"); do
  order=$VARIANTS
  # Alternate who goes first, so drift of the box does not favour one setting.
  ((round % 2 == 0)) && order=$(tr ' ' '\n' <<<"$VARIANTS" | tac | tr '\n' ' ')
  for variant in $order; do
    log "round $round of $ROUNDS: --timer-precision $variant"
    "$GAZUA_BIN" --listen "127.0.0.1:$PORT" --profile happy --timer-precision "$variant" 2>>"$OUT/gazua.log" &
    SERVER_PID=$!
    wait_port
    BENCH_HEADERS="" timeout $((WARMUP + 20)) wrk -t1 -c64 -d"${WARMUP}s" -s "$ROOT/benches/confirm.lua" \
      "http://127.0.0.1:$PORT/v1/payments/confirm" >/dev/null 2>&1 || true
    wrk_window "$round" "$variant" zero 64 "$DURATION" ""
    for latency in 1ms 20ms 100ms; do
      wrk_window "$round" "$variant" "idle-$latency" 1 "$IDLE_DURATION" "X-Gazua-Latency: $latency"
    done
    tag="$OUT/raw/r$round-$variant-client-250us"
    scrape "$tag.before.prom"
    c0=$(proc_cpu "$SERVER_PID")
    read -r p50 p99 < <(timeout 120 python3 "$ROOT/benches/ttfb.py" "$PORT" 250us "$CLIENT_REQUESTS")
    c1=$(proc_cpu "$SERVER_PID")
    scrape "$tag.after.prom"
    row "$round" "$variant" client-250us "$CLIENT_REQUESTS" 0 "$((c1 - c0))" - "$tag.before.prom" "$tag.after.prom" "$p50" "$p99"
    wrk_window "$round" "$variant" load 1000 "$DURATION" "X-Gazua-Latency: lognormal(p50=40ms, p99=300ms)"
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" || log "  gazua exited with $?"
    SERVER_PID=
  done
done

# --- summary: medians over rounds, and medians of same-round ratios against `off` -------------
awk -F'\t' '
  function median(list,   n, a, i, j, t) {
    n = split(list, a, " ")
    if (n == 0) return ""
    for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  function add(k, v) { if (v != "" && v != "-" && v !~ />/) vals[k] = vals[k] " " v }
  function fmt(v, d) { return v == "" ? "–" : sprintf("%." d "f", v) }
  NR == 1 { next }
  {
    r = $1; v = $2; s = $3
    if (!(v in seen_v)) { seen_v[v] = 1; vs[++nv] = v }
    if (!(s in seen_s)) { seen_s[s] = 1; ss[++ns] = s }
    add(v SUBSEP s SUBSEP "rps", $5); add(v SUBSEP s SUBSEP "cpu", $6)
    add(v SUBSEP s SUBSEP "l50", $7); add(v SUBSEP s SUBSEP "l99", $8)
    add(v SUBSEP s SUBSEP "c50", $9); add(v SUBSEP s SUBSEP "c99", $10); add(v SUBSEP s SUBSEP "oth", $11)
    rps[r, v, s] = $5; cpu[r, v, s] = $6; rounds[r] = 1
  }
  END {
    print "| scenario | --timer-precision | lateness p50 ms | lateness p99 ms | client TTFB p50 / p99 ms | req/s | CPU µs/req | req/s ÷ off | CPU ÷ off | other tenants % |"
    print "|---|---|---|---|---|---|---|---|---|---|"
    for (i = 1; i <= ns; i++) for (j = 1; j <= nv; j++) {
      s = ss[i]; v = vs[j]; k = v SUBSEP s SUBSEP
      rr = cr = ""
      for (r in rounds) {
        if (rps[r, "off", s] > 0 && rps[r, v, s] != "") rr = rr " " rps[r, v, s] / rps[r, "off", s]
        if (cpu[r, "off", s] > 0 && cpu[r, v, s] != "") cr = cr " " cpu[r, v, s] / cpu[r, "off", s]
      }
      client = (vals[k "c50"] == "") ? "–" : fmt(median(vals[k "c50"]), 3) " / " fmt(median(vals[k "c99"]), 3)
      busy = (s == "zero" || s == "load")
      printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", s, v,
        fmt(median(vals[k "l50"]), 3), fmt(median(vals[k "l99"]), 3), client,
        busy ? fmt(median(vals[k "rps"]), 0) : "–", busy ? fmt(median(vals[k "cpu"]), 1) : "–",
        busy ? fmt(median(rr), 2) : "–", busy ? fmt(median(cr), 2) : "–", fmt(median(vals[k "oth"]), 0)
    }
  }' "$RESULTS" | tee "$OUT/summary.md"
log "raw rows: $RESULTS"
