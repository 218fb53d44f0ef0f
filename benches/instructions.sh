#!/usr/bin/env bash
#: User-space instructions per keep-alive request, counted by callgrind: repeatable on a shared,
#: noisy machine where req/s and CPU time are not. One TLS client (Python's ssl module, HTTP/1.1,
#: one connection) sends confirms of new payments, each after the previous answer, as
#: benches/confirm.lua does. The server runs under `valgrind --tool=callgrind` twice, for
#: SMALL and LARGE requests; (Ir(LARGE) − Ir(SMALL)) ÷ (LARGE − SMALL) cancels start-up, the
#: handshake and shutdown.
#:
#:   benches/instructions.sh                        # Gazua (--tls-listen, --profile happy) and the bare server
#:   GAZUA_BIN=/path/to/old/gazua benches/instructions.sh gazua   # another build, Gazua only
#:
#: Knobs: SMALL (1000), LARGE (5000), GAZUA_BIN / BASELINE_BIN (prebuilt: no cargo build), OUT.
#: Counts move by about ±1% between runs of the same build (thread interleaving, the ledger's
#: map growth); compare builds by several runs each, or by a function's inclusive count in the
#: callgrind files kept in OUT (`callgrind_annotate --inclusive=yes FILE`).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SMALL=${SMALL:-1000} LARGE=${LARGE:-5000}
OUT=${OUT:-$ROOT/target/bench-results/instructions-$(date -u +%Y%m%dT%H%M%SZ)}
PORT=18643 PLAIN=18680
mkdir -p "$OUT"
log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
command -v openssl >/dev/null || { echo "openssl (the CLI) is needed to make the certificate" >&2; exit 1; }

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
if [[ -z ${GAZUA_BIN:-} || -z ${BASELINE_BIN:-} ]]; then
  log "building release binaries"
  (cd "$ROOT" && cargo build --release --bin gazua --example bare-hyper-tls >&2)
fi
GAZUA_BIN=${GAZUA_BIN:-$TARGET_DIR/release/gazua}
BASELINE_BIN=${BASELINE_BIN:-$TARGET_DIR/release/examples/bare-hyper-tls}
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$OUT/key.pem" -out "$OUT/cert.pem" 2>/dev/null

cat >"$OUT/client.py" <<'EOF'
import socket, ssl, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.set_alpn_protocols(["http/1.1"])
for _ in range(1200):
    try:
        s = socket.create_connection(("127.0.0.1", port))
        break
    except OSError:
        time.sleep(0.1)
s = ctx.wrap_socket(s, server_hostname="localhost")
f = s.makefile("rb")
run = str(int(time.time() * 1000))
for i in range(n):
    body = '{"paymentKey":"pk_ir_%s_%d","orderId":"order-%s-%d","amount":15000}' % (run, i, run, i)
    s.sendall(("POST /v1/payments/confirm HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
               % (len(body), body)).encode())
    length = 0
    while True:
        line = f.readline()
        if line in (b"\r\n", b""):
            break
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    f.read(length)
EOF

# count SERVER N: the server's total Ir for N requests.
count() {
  local server=$1 n=$2 file="$OUT/callgrind-$1-$2.out" pid
  case $server in
    gazua) valgrind --tool=callgrind --callgrind-out-file="$file" "$GAZUA_BIN" --listen 127.0.0.1:$PLAIN \
             --profile happy --tls-listen 127.0.0.1:$PORT --tls-cert "$OUT/cert.pem" --tls-key "$OUT/key.pem" \
             >/dev/null 2>>"$OUT/valgrind.log" & ;;
    bare) valgrind --tool=callgrind --callgrind-out-file="$file" "$BASELINE_BIN" --listen 127.0.0.1:$PORT \
             --body-bytes 1534 --cert "$OUT/cert.pem" --key "$OUT/key.pem" >/dev/null 2>>"$OUT/valgrind.log" & ;;
  esac
  pid=$!
  timeout 600 python3 "$OUT/client.py" $PORT "$n"
  # Gazua drains on SIGTERM; the bare server ends on it. Either way callgrind writes its file.
  kill -TERM $pid; wait $pid 2>/dev/null || true
  awk '/^(summary|totals):/ { print $2; exit }' "$file"
}

servers=${1:-gazua bare}
for server in $servers; do
  small=$(count "$server" "$SMALL")
  large=$(count "$server" "$LARGE")
  printf '%s\t%s instructions per request (Ir %s for %s requests, %s for %s)\n' "$server" \
    $(( (large - small) / (LARGE - SMALL) )) "$small" "$SMALL" "$large" "$LARGE" | tee -a "$OUT/summary.txt"
done
log "callgrind files in $OUT"
