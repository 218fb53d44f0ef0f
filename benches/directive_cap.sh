#!/usr/bin/env bash
# Server CPU per request for hostile directives (issue 10): a 1 MB `percentiles(…)` in a body
# tag (refused by the 4 KiB directive cap), a body of the same size without a tag (the
# baseline: reading and walking 1 MB of JSON), a directive at the caps in a header (100
# arguments, parsed and sampled), and a small confirm. CPU is Δ(utime + stime) of the server process in
# /proc/PID/stat over N sequential requests (curl, one connection each), so the client's work
# is not counted. Ratios are against the same-size untagged body of the same run.
#
#   benches/directive_cap.sh                       # N=200 per case
#   N=50 benches/directive_cap.sh                  # QUICK
#   MAIN_BIN=/path/to/old/gazua benches/directive_cap.sh   # also the tagged case on another build
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-200}
N_MAIN=${N_MAIN:-3}
GAZUA_BIN=${GAZUA_BIN:-target/release/gazua}
[ -x "$GAZUA_BIN" ] || cargo build --release --bin gazua
TMP=$(mktemp -d)
trap 'kill "${PID:-}" 2>/dev/null || true; rm -rf "$TMP"' EXIT

# The bodies: ~1 MB each, the tagged one a percentiles(…) of 60,000 arguments.
python3 - "$TMP" <<'EOF'
import sys
d = sys.argv[1]
args = ", ".join(f"p{1 + i // 10000}.{i % 10000:04d}={i + 1}us" for i in range(60000))
tag = f"[gazua: latency=percentiles({args})]"
plain = "x" * len(tag)
def body(name):
    return ('{"paymentKey":"pk_bench_1","orderId":"order-000001","amount":15000,'
            f'"orderName":"{name}"}}')
open(f"{d}/tagged.json", "w").write(body(tag))
open(f"{d}/plain.json", "w").write(body(plain))
open(f"{d}/small.json", "w").write(body("socks"))
# 99 percentiles and max=: 100 arguments (without max= the steep last segment would run on
# to --max-latency).
cap = ", ".join(f"p{1 + i // 100}.{i % 100:02d}={i + 1}us" for i in range(99))
open(f"{d}/cap-header.txt", "w").write(f"percentiles({cap}, max=1ms)")
EOF

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

start_server() {
  local bin=$1 log=$TMP/log
  "$bin" --listen 127.0.0.1:0 --log-format json --profile happy --ledger stateless \
    2>"$log" &
  PID=$!
  for _ in $(seq 100); do
    ADDR=$(grep -o '"listen":"[^"]*"' "$log" | head -1 | cut -d'"' -f4 || true)
    [ -n "$ADDR" ] && return
    sleep 0.1
  done
  echo "gazua did not start" >&2; exit 1
}

# measure NAME COUNT CURL_ARGS…: prints "NAME status ms_per_request"
measure() {
  local name=$1 count=$2; shift 2
  local before after status
  status=$(curl -s -o /dev/null -w '%{http_code}' "$@" "http://$ADDR/v1/payments/confirm")
  before=$(cpu_ticks "$PID")
  for _ in $(seq "$count"); do
    curl -s -o /dev/null "$@" "http://$ADDR/v1/payments/confirm"
  done
  after=$(cpu_ticks "$PID")
  local hz; hz=$(getconf CLK_TCK)
  awk -v n="$name" -v s="$status" -v d=$((after - before)) -v c="$count" -v hz="$hz" \
    'BEGIN { printf "%-28s %s %10.3f\n", n, s, d * 1000 / hz / c }'
}

JSON=(-H 'content-type: application/json')
start_server "$GAZUA_BIN"
echo "case                         status  server CPU ms/request (N=$N, $(getconf CLK_TCK) Hz ticks)"
plain=$(measure "1 MB body, no tag" "$N" "${JSON[@]}" --data-binary "@$TMP/plain.json")
tagged=$(measure "1 MB tag (refused by cap)" "$N" "${JSON[@]}" --data-binary "@$TMP/tagged.json")
capped=$(measure "4 KB header at the caps" "$N" "${JSON[@]}" \
  -H "x-gazua-latency: $(cat "$TMP/cap-header.txt")" --data-binary "@$TMP/small.json")
small=$(measure "small confirm" "$N" "${JSON[@]}" --data-binary "@$TMP/small.json")
printf '%s\n' "$plain" "$tagged" "$capped" "$small"
awk -v a="$(echo "$tagged" | awk '{print $NF}')" -v b="$(echo "$plain" | awk '{print $NF}')" \
  'BEGIN { if (b > 0) printf "ratio tagged / untagged 1 MB body: %.2f\n", a / b }'
kill "$PID"; wait "$PID" 2>/dev/null || true

if [ -n "${MAIN_BIN:-}" ]; then
  start_server "$MAIN_BIN"
  measure "1 MB tag on MAIN_BIN" "$N_MAIN" "${JSON[@]}" --data-binary "@$TMP/tagged.json"
  measure "1 MB body, no tag, MAIN_BIN" "$N" "${JSON[@]}" --data-binary "@$TMP/plain.json"
  kill "$PID"; wait "$PID" 2>/dev/null || true
fi
