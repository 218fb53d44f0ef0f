#!/usr/bin/env bash
#: Gazua PAY against a bare hyper baseline (benches/baseline/bare_hyper.rs), same box, same load, same
#: body size: every scenario against both servers in alternation, fresh processes per round, a
#: table of medians and same-round Gazua/baseline ratios. Method: BENCHMARKS.md.
#
#   benches/run.sh                 # FULL: 5 rounds, 10 s windows (20 s at 10k conns), pinned run too (~18 min)
#   QUICK=1 benches/run.sh         # QUICK: 3 rounds, 5 s windows (~5 min)
#
# Knobs (environment): ROUNDS, DURATION, DURATION_BIG (the 10k-connection window), WARMUP,
# SCENARIOS ("zero d100 lognormal c10k mix" [+ "zero-pinned" in FULL]), OUT (results folder),
# GAZUA_ARGS (serve flags; default "--profile happy"), GAZUA_BIN / BASELINE_BIN (prebuilt binaries: no cargo build),
# ALT_BIN / ALT_ARGS (a second Gazua build, e.g. with another allocator, or the same build with
# other flags such as "--ledger stateless", measured as "gazua-alt"),
# SUMMARY_ONLY=1 OUT=dir (re-print the table of a finished run).
#
# Traffic goes only to 127.0.0.1. Every load run is bounded by `timeout`.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then
  ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-5} DURATION_BIG=${DURATION_BIG:-6} WARMUP=${WARMUP:-2}
  SCENARIOS=${SCENARIOS:-"zero d100 lognormal c10k mix"}
else
  ROUNDS=${ROUNDS:-5} DURATION=${DURATION:-10} DURATION_BIG=${DURATION_BIG:-20} WARMUP=${WARMUP:-5}
  SCENARIOS=${SCENARIOS:-"zero d100 lognormal c10k mix zero-pinned"}
fi
OUT=${OUT:-$ROOT/target/bench-results/$(date -u +%Y%m%dT%H%M%SZ)}
# `happy`: every payment approved at once, unless a request's headers say otherwise. The
# default profile would add its realistic per-route latencies to every scenario.
GAZUA_ARGS=${GAZUA_ARGS:---profile happy}
GAZUA_PORT=18480 BASELINE_PORT=18490 ALT_PORT=18500
RESULTS=$OUT/results.tsv
TICK=$(getconf CLK_TCK)
NCPU=$(nproc)

log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# --- summary: medians per (scenario, server) and medians of same-round ratios ---------------
summarize() {
  awk -F'\t' -v quick="$QUICK" '
    function median(list,   n, a, i, j, t) {
      n = split(list, a, " ")
      if (n == 0) return ""
      for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
      return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    function add(key, v) { if (v != "" && v != "-") vals[key] = vals[key] " " v }
    function fmt(v, d) { return v == "" ? "–" : sprintf("%." d "f", v) }
    NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    {
      sc = $col["scenario"]; sv = $col["server"]; r = $col["round"]
      if (!(sc in seen_sc)) { seen_sc[sc] = 1; sc_order[++nsc] = sc }
      if (!((sc, sv) in seen)) { seen[sc, sv] = 1; servers[sc] = servers[sc] " " sv }
      conns[sc] = $col["conns"]; ideal[sc] = $col["ideal_rps"]; ceiling[sc] = $col["ceiling_rps"]
      for (k in col) add(sc SUBSEP sv SUBSEP k, $col[k])
      rps[sc, sv, r] = $col["rps"]; p99[sc, sv, r] = $col["p99_ms"]; rss[sc, sv, r] = $col["rss_mb"]
      cpu[sc, sv, r] = $col["cpu_us_per_req"]; late[sc, sv, r] = $col["lateness_p99_ms"]
      rounds[sc, r] = 1
    }
    END {
      print "| scenario | server | req/s median [min–max] | % ideal (% window ceiling) | p50 ms | p99 ms | errors socket / non-2xx | peak RSS MB | server CPU µs/req | timer lateness p99 ms | other-tenant CPU % | req/s ÷ base | p99 ÷ base | RSS ÷ base | CPU ÷ base | lateness p99 − base ms |"
      print "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
      for (s = 1; s <= nsc; s++) {
        sc = sc_order[s]
        n = split(servers[sc], svs, " ")
        for (i = 1; i <= n; i++) {
          sv = svs[i]; k = sc SUBSEP sv SUBSEP
          m = median(vals[k "rps"]); split(vals[k "rps"], rr, " ")
          lo = hi = ""; for (j in rr) { v = rr[j] + 0; if (lo == "" || v < lo) lo = v; if (hi == "" || v > hi) hi = v }
          pct = (ideal[sc] > 0) ? sprintf("%.1f%% (%.1f%%)", 100 * m / ideal[sc], 100 * m / ceiling[sc]) : "–"
          # same-round ratios against the baseline
          rl = pl = ml = cl = ll = ""
          for (key in rounds) {
            split(key, kk, SUBSEP); if (kk[1] != sc) continue; r = kk[2]
            if (sv == "baseline" || !((sc, "baseline", r) in rps) || !((sc, sv, r) in rps)) continue
            if (rps[sc, "baseline", r] > 0) rl = rl " " rps[sc, sv, r] / rps[sc, "baseline", r]
            if (p99[sc, "baseline", r] > 0) pl = pl " " p99[sc, sv, r] / p99[sc, "baseline", r]
            if (rss[sc, "baseline", r] > 0) ml = ml " " rss[sc, sv, r] / rss[sc, "baseline", r]
            if (cpu[sc, "baseline", r] > 0) cl = cl " " cpu[sc, sv, r] / cpu[sc, "baseline", r]
            if (late[sc, sv, r] != "-" && late[sc, "baseline", r] != "-") ll = ll " " late[sc, sv, r] - late[sc, "baseline", r]
          }
          printf "| %s c%s | %s | %s [%s–%s] | %s | %s | %s | %s / %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", \
            sc, conns[sc], sv, fmt(m, 0), fmt(lo, 0), fmt(hi, 0), pct, \
            fmt(median(vals[k "p50_ms"]), 1), fmt(median(vals[k "p99_ms"]), 1), \
            fmt(median(vals[k "socket_errors"]), 0), fmt(median(vals[k "non2xx"]), 0), \
            fmt(median(vals[k "rss_mb"]), 1), fmt(median(vals[k "cpu_us_per_req"]), 1), \
            fmt(median(vals[k "lateness_p99_ms"]), 2), fmt(median(vals[k "other_cpu_pct"]), 0), \
            (sv == "baseline") ? "1.00" : fmt(median(rl), 2), (sv == "baseline") ? "1.00" : fmt(median(pl), 2), \
            (sv == "baseline") ? "1.00" : fmt(median(ml), 2), (sv == "baseline") ? "1.00" : fmt(median(cl), 2), \
            (sv == "baseline") ? "0" : fmt(median(ll), 2)
          R_rps[sc, sv] = median(rl); R_rss[sc, sv] = median(ml); M_cpu[sc, sv] = median(vals[k "cpu_us_per_req"])
          M_pct[sc, sv] = (ideal[sc] > 0) ? 100 * m / ideal[sc] : ""; M_p99[sc, sv] = median(vals[k "p99_ms"])
          M_late[sc, sv] = median(vals[k "lateness_p99_ms"]); M_err[sc, sv] = median(vals[k "socket_errors"]) + median(vals[k "non2xx"])
          D_late[sc, sv] = median(ll); R_p99[sc, sv] = median(pl)
        }
      }
      # Issue 5 goals, for every Gazua build measured.
      print ""
      print "| goal | target | measured | verdict |"
      print "|---|---|---|---|"
      for (s = 1; s <= nsc; s++) {
        sc = sc_order[s]; n = split(servers[sc], svs, " ")
        for (i = 1; i <= n; i++) {
          sv = svs[i]; if (sv == "baseline") continue
          if (sc == "zero") {
            goal(sv " zero: req/s ÷ baseline", ">= 0.85", R_rps[sc, sv], R_rps[sc, sv] >= 0.85)
            goal(sv " zero: server CPU µs/req", "<= 20", M_cpu[sc, sv], M_cpu[sc, sv] <= 20)
          } else if (sc == "d100" || sc == "lognormal") {
            goal(sv " " sc ": % of C/D", ">= 95", M_pct[sc, sv], M_pct[sc, sv] >= 95)
            goal(sv " " sc ": timer lateness p99 − baseline (ms)", "<= 2", D_late[sc, sv], D_late[sc, sv] <= 2)
            goal(sv " " sc ": client p99 − baseline p99 (ms)", "<= 2", M_p99[sc, sv] - M_p99[sc, "baseline"], M_p99[sc, sv] - M_p99[sc, "baseline"] <= 2)
          } else if (sc == "c10k") {
            goal(sv " c10k: req/s ÷ baseline", ">= 0.95", R_rps[sc, sv], R_rps[sc, sv] >= 0.95)
            goal(sv " c10k: p99 ÷ baseline", "<= 1.05", R_p99[sc, sv], R_p99[sc, sv] <= 1.05)
            goal(sv " c10k: peak RSS ÷ baseline", "<= 1.3", R_rss[sc, sv], R_rss[sc, sv] <= 1.3)
            goal(sv " c10k: errors (median)", "0", M_err[sc, sv], M_err[sc, sv] == 0)
            goal(sv " c10k: timer lateness p99 (ms; baseline " M_late[sc, "baseline"] ")", "report", M_late[sc, sv], 1)
          }
        }
      }
    }
    function goal(name, target, value, ok) {
      printf "| %s | %s | %s | %s |\n", name, target, (value == "") ? "–" : sprintf("%.3g", value), ok ? "met" : "**not met**"
    }' "$RESULTS"
}

if [[ ${SUMMARY_ONLY:-0} == 1 ]]; then
  summarize
  exit 0
fi

# --- preparation ----------------------------------------------------------------------------
mkdir -p "$OUT"
if ! command -v wrk >/dev/null; then
  log "installing wrk (apt-get)"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk) >&2
fi
# 10k connections need ~10k descriptors on each side; the hard limit here is 20000.
ulimit -n "$(ulimit -Hn)"
if (($(ulimit -n) < 20000)); then log "warning: ulimit -n is $(ulimit -n); the 10k-connection scenario may fail"; fi

if [[ -z ${GAZUA_BIN:-} || -z ${BASELINE_BIN:-} ]]; then
  log "building gazua and the bare-hyper baseline (release)"
  (cd "$ROOT" && cargo build --release --quiet --bin gazua --example bare-hyper)
fi
TARGET_DIR=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps 2>/dev/null | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
GAZUA_BIN=${GAZUA_BIN:-$TARGET_DIR/release/gazua}
BASELINE_BIN=${BASELINE_BIN:-$TARGET_DIR/release/examples/bare-hyper}
SERVERS="gazua baseline"
ALT_ARGS=${ALT_ARGS:-}
if [[ -n ${ALT_BIN:-} || -n $ALT_ARGS ]]; then
  ALT_BIN=${ALT_BIN:-$GAZUA_BIN}
  SERVERS="gazua gazua-alt baseline"
fi

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

wait_port() { # port → waits until the server answers, at most 10 s
  for _ in $(seq 100); do
    curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$1/__probe" && return 0
    sleep 0.1
  done
  log "error: nothing answers on 127.0.0.1:$1"; return 1
}

CONFIRM_BODY='{"paymentKey":"pk_size_probe","orderId":"order-size-probe","amount":15000}'

# The body size of a live Gazua confirm answer: the baseline answers exactly as many bytes.
"$GAZUA_BIN" --listen 127.0.0.1:$GAZUA_PORT $GAZUA_ARGS 2>"$OUT/probe.log" &
probe=$!; PIDS+=("$probe")
wait_port $GAZUA_PORT
curl -s -D "$OUT/confirm-headers.txt" -o "$OUT/confirm-body.json" -X POST -H 'Content-Type: application/json' \
  -d "$CONFIRM_BODY" "http://127.0.0.1:$GAZUA_PORT/v1/payments/confirm"
BODY_BYTES=$(stat -c %s "$OUT/confirm-body.json")
kill -TERM $probe; wait $probe || true
log "Gazua's confirm answer: $(head -1 "$OUT/confirm-headers.txt" | tr -d '\r'), $BODY_BYTES bytes of body"

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "mode: QUICK=$QUICK ROUNDS=$ROUNDS DURATION=$DURATION DURATION_BIG=$DURATION_BIG WARMUP=$WARMUP"
  echo "scenarios: $SCENARIOS"
  echo "servers: $SERVERS"
  echo "gazua: $GAZUA_BIN $GAZUA_ARGS ($(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null))"
  echo "baseline: $BASELINE_BIN --body-bytes $BODY_BYTES"
  echo "gazua-alt: ${ALT_BIN:-none} $ALT_ARGS"
  echo "body_bytes: $BODY_BYTES"
  echo "nproc: $NCPU"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "kernel: $(uname -r)"
  echo "wrk: $(wrk -v 2>&1 | head -1)"
  echo "limits: ulimit -n $(ulimit -n), somaxconn $(cat /proc/sys/net/core/somaxconn)"
} >"$OUT/env.txt"
cat "$OUT/env.txt" >&2

# --- scenarios --------------------------------------------------------------------------------
# Sets CONNS, DUR, HEADERS (Gazua's directives), QUERY (the baseline's), IDEAL (C / mean delay,
# req/s) and CEILING (what a closed loop can do in the window: C × floor(window / delay) / window),
# PIN (taskset the server to core 0 and wrk to core 1).
scenario() {
  PIN=0 IDEAL=0 CEILING=0 DUR=$DURATION
  case $1 in
    zero) CONNS=64 HEADERS="" QUERY="" ;;
    zero-pinned) CONNS=64 HEADERS="" QUERY="" PIN=1 ;;
    d100) CONNS=1000 HEADERS="X-Gazua-Latency: 100ms" QUERY="?delay_ms=100"
      IDEAL=$((CONNS * 10)) CEILING=$(awk -v c=$CONNS -v d=$DUR 'BEGIN { print c * int(d / 0.1) / d }') ;;
    lognormal) CONNS=1000 HEADERS="X-Gazua-Latency: lognormal(p50=80ms, p99=400ms)"
      QUERY="?dist=lognormal&p50=80&p99=400"
      # mean of a lognormal = p50 × exp(σ²/2), σ = ln(p99/p50) / 2.3263
      IDEAL=$(awk -v c=$CONNS 'BEGIN { s = log(400 / 80) / 2.326348; print int(c / (0.080 * exp(s * s / 2))) }')
      CEILING=$IDEAL ;;
    c10k) CONNS=10000 DUR=$DURATION_BIG HEADERS="X-Gazua-Latency: 1s" QUERY="?delay_ms=1000"
      IDEAL=$((CONNS)) CEILING=$(awk -v c=$CONNS -v d=$DUR 'BEGIN { print c * int(d / 1) / d }') ;;
    mix) CONNS=64 HEADERS="X-Gazua-Outcome: 98% approved, 2% declined|X-Gazua-Fault: 1% reset" QUERY="?close_pct=1" ;;
    *) log "unknown scenario $1"; exit 2 ;;
  esac
}

proc_cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; } # ticks
box_cpu() { awk '/^cpu / { print $2+$3+$4+$6+$7+$8+$9, $9, $2+$3+$4+$5+$6+$7+$8+$9 }' /proc/stat; } # busy steal total

# p99 of the delta of two Prometheus histogram dumps (cumulative buckets), like histogram_quantile.
hist_p99() { # before-file after-file metric → milliseconds, or "-"
  awk -v m="$3_bucket" -v q=0.99 -f "$ROOT/benches/histogram_quantile.awk" "$1" "$2"
}

start_server() { # server port pin → pid in SERVER_PID
  local taskset=()
  [[ $3 == 1 ]] && taskset=(taskset -c 0)
  case $1 in
    gazua) "${taskset[@]}" "$GAZUA_BIN" --listen "127.0.0.1:$2" $GAZUA_ARGS 2>>"$OUT/gazua.log" & ;;
    gazua-alt) "${taskset[@]}" "$ALT_BIN" --listen "127.0.0.1:$2" $GAZUA_ARGS $ALT_ARGS 2>>"$OUT/gazua-alt.log" & ;;
    baseline) "${taskset[@]}" "$BASELINE_BIN" --listen "127.0.0.1:$2" --body-bytes "$BODY_BYTES" 2>>"$OUT/baseline.log" & ;;
  esac
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
}

metrics_path() { [[ $1 == baseline ]] && echo /lateness || echo /metrics; }
metric_name() { [[ $1 == baseline ]] && echo baseline_timer_lateness_seconds || echo gazua_timer_lateness_seconds; }

run_one() { # round scenario server
  local round=$1 sc=$2 sv=$3 port pid url headers
  scenario "$sc"
  case $sv in gazua) port=$GAZUA_PORT ;; gazua-alt) port=$ALT_PORT ;; baseline) port=$BASELINE_PORT ;; esac
  start_server "$sv" "$port" "$PIN"; pid=$SERVER_PID
  wait_port "$port"
  local wrk_pin=()
  [[ $PIN == 1 ]] && wrk_pin=(taskset -c 1)
  url="http://127.0.0.1:$port/v1/payments/confirm"
  # Warm-up on the zero-delay path: no JIT here, but page faults, allocator arenas, the
  # per-thread generators and the metrics' lazily resolved handles.
  BENCH_HEADERS="" timeout $((WARMUP + 20)) "${wrk_pin[@]}" wrk -t1 -c64 -d"${WARMUP}s" -s "$ROOT/benches/confirm.lua" "$url" >/dev/null 2>&1 || true
  [[ $sv == baseline ]] && url="$url$QUERY" headers="" || headers=$HEADERS
  local tag="$OUT/raw/r$round-$sc-$sv"
  mkdir -p "$OUT/raw"
  curl -s "http://127.0.0.1:$port$(metrics_path "$sv")" >"$tag.before.prom"
  local c0 b0 c1 b1
  c0=$(proc_cpu "$pid"); read -r b0 s0 t0 < <(box_cpu)
  local t_start t_end
  t_start=$(date +%s.%N)
  BENCH_HEADERS=$headers timeout $((DUR + 60)) /usr/bin/time -f "WRKCPU %U %S" "${wrk_pin[@]}" \
    wrk -t1 -c"$CONNS" -d"${DUR}s" --timeout 10s --latency -s "$ROOT/benches/confirm.lua" "$url" >"$tag.wrk" 2>&1 || true
  t_end=$(date +%s.%N)
  c1=$(proc_cpu "$pid"); read -r b1 s1 t1 < <(box_cpu)
  local hwm
  hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$pid/status")
  curl -s "http://127.0.0.1:$port$(metrics_path "$sv")" >"$tag.after.prom"
  local late
  late=$(hist_p99 "$tag.before.prom" "$tag.after.prom" "$(metric_name "$sv")")
  # Stop: SIGTERM must drain and exit 0 (Gazua's contract).
  kill -TERM "$pid"
  local rc=0
  timeout 40 tail --pid="$pid" -f /dev/null || true
  wait "$pid" || rc=$?
  PIDS=("${PIDS[@]/$pid/}")

  local res
  res=$(grep '^RESULT' "$tag.wrk" || true)
  if [[ -z $res ]]; then
    log "  $sv $sc round $round: wrk printed no RESULT (see $tag.wrk)"
    return
  fi
  get() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<" $res"; }
  local req dur_us rps
  req=$(get requests) dur_us=$(get duration_us)
  rps=$(awk -v r="$req" -v d="$dur_us" 'BEGIN { printf "%.0f", r / (d / 1e6) }')
  local wrk_cpu
  wrk_cpu=$(awk '/^WRKCPU/ { print $2 + $3 }' "$tag.wrk")
  local row
  row=$(awk -v round="$round" -v sc="$sc" -v sv="$sv" -v conns="$CONNS" -v dur="$DUR" -v pin="$PIN" \
    -v req="$req" -v rps="$rps" -v ideal="$IDEAL" -v ceiling="$CEILING" \
    -v p50="$(get p50_us)" -v p90="$(get p90_us)" -v p99="$(get p99_us)" -v max="$(get max_us)" \
    -v conn="$(get connect)" -v rd="$(get read)" -v wr="$(get write)" -v st="$(get status)" -v to="$(get timeout)" \
    -v hwm="$hwm" -v c0="$c0" -v c1="$c1" -v b0="$b0" -v b1="$b1" -v s0="$s0" -v s1="$s1" -v t0="$t0" -v t1="$t1" \
    -v wrk_cpu="$wrk_cpu" -v tick="$TICK" -v wall_s="$(awk -v a="$t_start" -v b="$t_end" 'BEGIN { print b - a }')" \
    -v late="$late" -v rc="$rc" 'BEGIN {
      server_s = (c1 - c0) / tick; busy_s = (b1 - b0) / tick
      other = busy_s - server_s - wrk_cpu; if (other < 0) other = 0
      OFS = "\t"
      print round, sc, sv, conns, dur, pin, req, rps, ideal, ceiling, p50 / 1000, p90 / 1000, p99 / 1000, max / 1000,
        conn + rd + wr + to, st, conn, rd, wr, to, hwm / 1024, 100 * server_s / wall_s,
        (req > 0) ? 1e6 * server_s / req : 0, 100 * wrk_cpu / wall_s, 100 * other / wall_s,
        100 * (s1 - s0) / tick / wall_s, late, rc
    }')
  echo "$row" >>"$RESULTS"
  log "  $(awk -F'\t' '{ printf "%-9s %-12s r%s: %7d req/s  p50 %7.1f ms  p99 %7.1f ms  err %s/%s  RSS %5.1f MB  CPU %5.1f µs/req  late p99 %s ms  other %3.0f%%  exit %s", $3, $2, $1, $8, $11, $13, $15, $16, $21, $23, $27, $25, $28 }' <<<"$row")"
}

printf 'round\tscenario\tserver\tconns\tduration_s\tpinned\trequests\trps\tideal_rps\tceiling_rps\tp50_ms\tp90_ms\tp99_ms\tmax_ms\tsocket_errors\tnon2xx\tconnect\tread\twrite\ttimeout\trss_mb\tserver_cpu_pct\tcpu_us_per_req\twrk_cpu_pct\tother_cpu_pct\tsteal_pct\tlateness_p99_ms\texit_code\n' >"$RESULTS"
start=$(date +%s)
for round in $(seq "$ROUNDS"); do
  log "round $round of $ROUNDS"
  for sc in $SCENARIOS; do
    order=$SERVERS
    # Alternate who goes first, so drift of the box does not favour one server.
    ((round % 2 == 0)) && order=$(tr ' ' '\n' <<<"$SERVERS" | tac | tr '\n' ' ')
    for sv in $order; do run_one "$round" "$sc" "$sv"; done
  done
done
log "done in $(($(date +%s) - start)) s; raw rows: $RESULTS"
summarize | tee "$OUT/summary.md"
