#!/usr/bin/env bash
#: Gazua's HTTPS listener against a bare hyper + rustls server (benches/baseline/bare_hyper_tls.rs)
#: with the same rustls configuration and the same certificate files, same box, same load, in
#: alternating rounds with fresh processes. Three scenarios, each with wrk over TLS:
#:   keepalive   zero delay, 50 keep-alive connections: req/s (target: Gazua ≥ 0.85× the bare server)
#:   handshake   zero delay, `Connection: close`: every request a new TCP + TLS handshake (handshakes/s)
#:   d100-c1000  100 ms per answer at 1,000 TLS connections: % of the possible 10,000 req/s (target ≥ 95%)
#:
#:   benches/tls.sh              # 5 rounds, 10 s windows
#:   QUICK=1 benches/tls.sh      # 3 rounds, 5 s windows
#:
#: wrk runs one thread (-t1), as benches/run.sh: confirm.lua numbers its payments per Lua state.
#: Knobs: SCENARIOS (default "keepalive handshake d100-c1000"), GAZUA_ARGS (default
#: "--profile happy"; e.g. add "--ledger stateless"), ROUNDS, DURATION, GAZUA_BIN / BASELINE_BIN (prebuilt: no cargo build), OUT.
#: Traffic goes only to 127.0.0.1; every load run is bounded by `timeout`.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-5}; else ROUNDS=${ROUNDS:-5} DURATION=${DURATION:-10}; fi
OUT=${OUT:-$ROOT/target/bench-results/tls-$(date -u +%Y%m%dT%H%M%SZ)}
GAZUA_ARGS=${GAZUA_ARGS:---profile happy}
GAZUA_PORT=18543 GAZUA_PLAIN=18580 BASELINE_PORT=18553
mkdir -p "$OUT"
log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 1; }
command -v openssl >/dev/null || { echo "openssl (the CLI) is needed to make the certificate" >&2; exit 1; }
ulimit -n 65536 2>/dev/null || true

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
if [[ -z ${GAZUA_BIN:-} || -z ${BASELINE_BIN:-} ]]; then
  log "building release binaries"
  (cd "$ROOT" && cargo build --release --bin gazua --example bare-hyper-tls >&2)
fi
GAZUA_BIN=${GAZUA_BIN:-$TARGET_DIR/release/gazua}
BASELINE_BIN=${BASELINE_BIN:-$TARGET_DIR/release/examples/bare-hyper-tls}

# One ECDSA P-256 certificate (what --tls-self-signed makes) for both servers.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$OUT/key.pem" -out "$OUT/cert.pem" 2>/dev/null

# Gazua's confirm answer size, so the baseline sends as many bytes.
"$GAZUA_BIN" --listen 127.0.0.1:$GAZUA_PLAIN --profile happy 2>/dev/null &
probe=$!
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$GAZUA_PLAIN/__gazua/health" && break; sleep 0.05; done
BODY_BYTES=$(curl -s -u test_sk_x: -H 'content-type: application/json' \
  -d '{"paymentKey":"pk_size_probe","orderId":"order-size-probe","amount":15000}' \
  "http://127.0.0.1:$GAZUA_PLAIN/v1/payments/confirm" | wc -c)
kill $probe; wait $probe 2>/dev/null || true
log "confirm body: $BODY_BYTES bytes"

start_server() { # name
  case $1 in
    gazua) "$GAZUA_BIN" --listen 127.0.0.1:$GAZUA_PLAIN $GAZUA_ARGS --tls-listen 127.0.0.1:$GAZUA_PORT \
             --tls-cert "$OUT/cert.pem" --tls-key "$OUT/key.pem" 2>>"$OUT/gazua.log" & ;;
    baseline) "$BASELINE_BIN" --listen 127.0.0.1:$BASELINE_PORT --body-bytes "$BODY_BYTES" \
             --cert "$OUT/cert.pem" --key "$OUT/key.pem" >>"$OUT/baseline.log" & ;;
  esac
  pid=$!
  local port=$([[ $1 == gazua ]] && echo $GAZUA_PORT || echo $BASELINE_PORT)
  for _ in $(seq 200); do curl -skf -o /dev/null "https://127.0.0.1:$port/__gazua/health" && break
    [[ $1 == baseline ]] && curl -sk -o /dev/null "https://127.0.0.1:$port/" && break; sleep 0.05; done
}

# run SCENARIO SERVER ROUND: one wrk window; prints "scenario server round rps errors p99_ms".
run() {
  local scenario=$1 server=$2 round=$3 port conns threads=1 headers
  port=$([[ $server == gazua ]] && echo $GAZUA_PORT || echo $BASELINE_PORT)
  case $scenario in
    keepalive) conns=50 headers="" ;;
    handshake) conns=50 headers="Connection: close" ;;
    d100-c1000) conns=1000
      headers=$([[ $server == gazua ]] && echo "X-Gazua-Latency: 100ms" || echo "x-delay-ms: 100") ;;
  esac
  start_server "$server"
  local out
  out=$(BENCH_HEADERS="$headers" timeout $((DURATION + 30)) wrk -t$threads -c$conns -d${DURATION}s --timeout 10s \
        -s "$ROOT/benches/confirm.lua" "https://127.0.0.1:$port/v1/payments/confirm" 2>&1 || true)
  kill $pid; wait $pid 2>/dev/null || true
  echo "$out" >>"$OUT/wrk-$scenario-$server.txt"
  local line; line=$(grep '^RESULT' <<<"$out" || echo "RESULT requests=0 duration_us=1 connect=0 read=0 write=0 status=0 timeout=0 p99_us=0")
  awk -v sc="$scenario" -v sv="$server" -v r="$round" '{
      for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
      printf "%s\t%s\t%s\t%.0f\t%d\t%.1f\n", sc, sv, r, f["requests"] / (f["duration_us"] / 1e6),
             f["connect"] + f["read"] + f["write"] + f["timeout"] + f["status"], f["p99_us"] / 1000 }' <<<"$line"
}

RESULTS=$OUT/results.tsv
printf 'scenario\tserver\tround\trps\terrors\tp99_ms\n' >"$RESULTS"
for round in $(seq "$ROUNDS"); do
  for scenario in ${SCENARIOS:-keepalive handshake d100-c1000}; do
    # Alternate which server goes first, so neither always gets the warmer machine.
    if (( round % 2 )); then order="gazua baseline"; else order="baseline gazua"; fi
    for server in $order; do
      log "round $round $scenario $server"
      run "$scenario" "$server" "$round" | tee -a "$RESULTS" >&2
    done
  done
done

awk -F'\t' -v possible=10000 '
  function median(list,   n, a, i, j, t) {
    n = split(list, a, " "); for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
  NR == 1 { next }
  { rps[$1, $2, $3] = $4; all[$1, $2] = all[$1, $2] " " $4; err[$1, $2] += $5; rounds[$1] = rounds[$1] " " $3; sc[$1] = 1 }
  END {
    print "| scenario | gazua req/s (median) | bare req/s (median) | gazua ÷ bare (median of same-round ratios) | gazua % of possible | bare % of possible | errors gazua / bare |"
    print "|---|---|---|---|---|---|---|"
    n = split("keepalive handshake d100-c1000", order, " ")
    for (k = 1; k <= n; k++) { s = order[k]; if (!(s in sc)) continue
      split(rounds[s], rr, " "); ratios = ""
      for (i in rr) { r = rr[i]; if (rps[s, "baseline", r] > 0) ratios = ratios " " rps[s, "gazua", r] / rps[s, "baseline", r] }
      g = median(all[s, "gazua"]); b = median(all[s, "baseline"])
      pg = (s == "d100-c1000") ? sprintf("%.1f%%", 100 * g / possible) : "–"
      pb = (s == "d100-c1000") ? sprintf("%.1f%%", 100 * b / possible) : "–"
      printf "| %s | %.0f | %.0f | %.3f | %s | %s | %d / %d |\n", s, g, b, median(ratios), pg, pb, err[s, "gazua"], err[s, "baseline"] } }
' "$RESULTS" | tee "$OUT/summary.md"
log "results in $OUT"
