#!/usr/bin/env bash
# Proves the Dockerfile's runtime stage without pulling any base image: builds gazua as a static
# glibc binary, builds the Dockerfile's own runtime stage (FROM scratch, everything from
# "FROM scratch AS runtime" to the end, the COPY --from=builder pointed at that binary) with
# podman, runs it, and checks: non-root, HEALTHCHECK kept and passing, health/ready/confirm/metrics
# answered through a published loopback port, and SIGTERM (podman stop) draining an in-flight
# delayed request before a clean exit 0.
#
# Usage: ci/podman-test.sh            (from anywhere; root needed to apt-get install podman)
# Env:   GAZUA_STATIC_BIN=path        skip the static build and use this binary
#        GAZUA_CI_KEEP=1              keep the scratch dir (podman storage) for inspection
# Needs: podman + runc (Debian packages, installed when missing), cargo, curl. About 4-6 min on
#        2 cores, most of it the static release build.
# If podman cannot run containers on a machine, the script says so and exits 0 with a SKIP
# (the build-and-run steps stay here for people whose machines can).

CI_NAME=podman
# shellcheck source=ci/common.sh
source "$(dirname "$0")/common.sh"
ci_init

# --- tools ----------------------------------------------------------------------------------
apt_ensure podman podman runc || true
apt_ensure runc runc || true
if ! command -v podman >/dev/null 2>&1 || ! command -v runc >/dev/null 2>&1; then
    skip "podman/runc not installable here; run this script on a machine with podman"
    finish
    exit
fi

# --- the static binary ----------------------------------------------------------------------
TRIPLE="$(uname -m)-unknown-linux-gnu"
STATIC_BIN="${GAZUA_STATIC_BIN:-$REPO_ROOT/target/$TRIPLE/release/gazua}"
if [ -z "${GAZUA_STATIC_BIN:-}" ]; then
    log "building static glibc binary for $TRIPLE (RUSTFLAGS=-C target-feature=+crt-static)"
    # --target keeps these artifacts in target/$TRIPLE, apart from the normal target/release.
    RUSTFLAGS='-C target-feature=+crt-static' timeout 1200 \
        cargo build --release --locked --target "$TRIPLE" --bin gazua >&2 \
        || die "static build failed"
fi
[ -x "$STATIC_BIN" ] || die "no static binary at $STATIC_BIN"
if ldd "$STATIC_BIN" 2>&1 | grep -q '=>'; then
    fail "binary is dynamically linked: $(ldd "$STATIC_BIN" 2>&1 | tr '\n' ' ')"
else
    pass "binary is static ($(du -h "$STATIC_BIN" | cut -f1))"
fi

# --- the runtime stage, as written in the Dockerfile -----------------------------------------
CTX="$CI_WORK/ctx"
mkdir -p "$CTX"
# The Dockerfile's builder strips symbols (CARGO_PROFILE_RELEASE_STRIP); do the same here.
strip -o "$CTX/gazua" "$STATIC_BIN" 2>/dev/null || cp "$STATIC_BIN" "$CTX/gazua"
awk '/^FROM scratch AS runtime/{on=1} on' Dockerfile \
    | sed 's|^COPY --from=builder /gazua /gazua$|COPY gazua /gazua|' >"$CTX/Containerfile"
grep -q '^FROM scratch AS runtime' "$CTX/Containerfile" || die "Dockerfile has no 'FROM scratch AS runtime' stage"
grep -q '^COPY gazua /gazua$' "$CTX/Containerfile" || die "runtime stage lacks 'COPY --from=builder /gazua /gazua'"

# Private storage (vfs: no overlay mounts needed) and runc with explicit ulimits: crun cannot
# set rlimits without CAP_SYS_RESOURCE on these machines.
PODMAN=(podman --root "$CI_WORK/storage" --runroot "$CI_WORK/run" --storage-driver vfs
    --runtime runc --cgroup-manager cgroupfs --events-backend file)
IMAGE=localhost/gazua-pay:ci
NAME="gazua-ci-$$"
CI_EXTRA_CLEANUP='timeout 60 "${PODMAN[@]}" rm -f -t 0 "$NAME" >/dev/null 2>&1; timeout 60 "${PODMAN[@]}" rmi -f "$IMAGE" >/dev/null 2>&1'

log "podman build (runtime stage only, docker format to keep HEALTHCHECK)"
if ! timeout 300 "${PODMAN[@]}" build -q --format docker -t "$IMAGE" -f "$CTX/Containerfile" "$CTX" >"$CI_WORK/build.log" 2>&1; then
    cat "$CI_WORK/build.log"
    skip "podman cannot build images on this machine (log above); the script is kept for machines that can"
    finish
    exit
fi
pass "runtime stage builds FROM scratch"

INSPECT="$("${PODMAN[@]}" image inspect "$IMAGE")"
python3 - "$INSPECT" <<'PY' && pass "image metadata: non-root user, HEALTHCHECK, exec-form entrypoint, GAZUA_* env, small" || fail "image metadata (see above)"
import json, sys
img = json.loads(sys.argv[1])[0]
cfg = img.get("Config", {})
problems = []
if cfg.get("User") != "65532:65532":
    problems.append(f"User is {cfg.get('User')!r}, expected 65532:65532")
# podman puts a docker-format image's HEALTHCHECK at the top level, docker under Config.
hc = (img.get("Healthcheck") or cfg.get("Healthcheck") or {}).get("Test") or []
if "/gazua" not in hc or "healthcheck" not in hc:
    problems.append(f"HEALTHCHECK missing or not '/gazua healthcheck': {hc!r}")
if cfg.get("Entrypoint") != ["/gazua"]:
    problems.append(f"Entrypoint is {cfg.get('Entrypoint')!r}, expected ['/gazua']")
if not any(e.startswith("GAZUA_LISTEN=") for e in cfg.get("Env") or []):
    problems.append("no GAZUA_LISTEN default in Env")
if cfg.get("StopSignal") not in ("SIGTERM", "15", None):
    problems.append(f"StopSignal is {cfg.get('StopSignal')!r}")
size = img.get("Size", 0)
if size > 20 * 1024 * 1024:
    problems.append(f"image is {size} bytes, expected under 20 MiB")
for p in problems:
    print("  " + p)
print(f"  image size {size / 1e6:.2f} MB, user {cfg.get('User')}, healthcheck {hc}")
sys.exit(1 if problems else 0)
PY

# --- run it -----------------------------------------------------------------------------------
PORT="$(free_ports 1)"
# Explicit ulimits, within this process's own hard limits (runc cannot raise them here).
NOFILE="$(ulimit -Hn)"; [ "$NOFILE" = unlimited ] || [ "$NOFILE" -gt 65536 ] && NOFILE=65536
NPROC="$(ulimit -Hu)"; [ "$NPROC" = unlimited ] || [ "$NPROC" -gt 4096 ] && NPROC=4096
RUN_OPTS=(--name "$NAME" -d --ulimit "nofile=$NOFILE:$NOFILE" --ulimit "nproc=$NPROC:$NPROC"
    -e GAZUA_SHUTDOWN_GRACE=15s)
BASE="http://127.0.0.1:$PORT"
if ! timeout 120 "${PODMAN[@]}" run "${RUN_OPTS[@]}" -p "127.0.0.1:$PORT:8080" "$IMAGE" >"$CI_WORK/run.log" 2>&1; then
    cat "$CI_WORK/run.log"
    log "port publishing failed; retrying with --network host on 127.0.0.1:$PORT"
    timeout 60 "${PODMAN[@]}" rm -f -t 0 "$NAME" >/dev/null 2>&1 || true
    if ! timeout 120 "${PODMAN[@]}" run "${RUN_OPTS[@]}" --network host -e "GAZUA_LISTEN=127.0.0.1:$PORT" "$IMAGE" >"$CI_WORK/run.log" 2>&1; then
        cat "$CI_WORK/run.log"
        skip "podman cannot run containers on this machine (log above); the script is kept for machines that can"
        finish
        exit
    fi
fi
if ! wait_http "$BASE/__gazua/health" 20; then
    "${PODMAN[@]}" logs "$NAME" 2>&1 | tail -20
    die "container did not answer $BASE/__gazua/health within 20 s"
fi
pass "container answers /__gazua/health on a published loopback port"

code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$BASE/__gazua/ready")"
[ "$code" = 200 ] && pass "/__gazua/ready is 200" || fail "/__gazua/ready is $code, expected 200"

PID="$("${PODMAN[@]}" inspect -f '{{.State.Pid}}' "$NAME")"
uid="$(awk '/^Uid:/{print $2}' "/proc/$PID/status" 2>/dev/null || echo '?')"
[ "$uid" = 65532 ] && pass "gazua runs as uid 65532 (PID 1 in the container)" || fail "gazua runs as uid $uid, expected 65532"

confirm() { # confirm ORDER_ID X-GAZUA-VALUE -> body in $CI_WORK/resp.json, prints status
    curl -s -o "$CI_WORK/resp.json" -w '%{http_code}' --max-time 10 \
        -H 'Content-Type: application/json' -H "X-Gazua: $2" \
        -d "{\"paymentKey\":\"tgen_ci_$1\",\"orderId\":\"$1\",\"amount\":15000}" \
        "$BASE/v1/payments/confirm"
}
code="$(confirm order-ci-0001 'outcome=approved; latency=20ms')"
status="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("status"))' "$CI_WORK/resp.json" 2>/dev/null || true)"
if [ "$code" = 200 ] && [ "$status" = DONE ]; then pass "confirm approved: 200, status DONE"; else fail "confirm approved: HTTP $code, status $status: $(head -c 300 "$CI_WORK/resp.json")"; fi
code="$(confirm order-ci-0002 'outcome=declined')"
case "$code" in 4??) pass "confirm declined: HTTP $code" ;; *) fail "confirm declined: HTTP $code, expected 4xx: $(head -c 300 "$CI_WORK/resp.json")" ;; esac

curl -fsS --max-time 5 -o "$CI_WORK/metrics.txt" "$BASE/metrics" || true
if grep -q '^gazua_requests_total' "$CI_WORK/metrics.txt" 2>/dev/null; then
    pass "/metrics exposes gazua_requests_total"
else
    fail "/metrics lacks gazua_requests_total"
fi

# No systemd here, so podman cannot schedule the HEALTHCHECK; run it by hand: it executes
# `/gazua healthcheck` inside the container.
if out="$(timeout 30 "${PODMAN[@]}" healthcheck run "$NAME" 2>&1)"; then
    pass "HEALTHCHECK (/gazua healthcheck inside the container) passes ${out:+($out)}"
else
    fail "HEALTHCHECK failed: $out"
fi

# --- SIGTERM drains ---------------------------------------------------------------------------
# A request decided to take 3 s is in flight when `podman stop` sends SIGTERM; it must still get
# its 200 and the container must exit 0 on its own, long before podman's 30 s kill.
curl -s -o "$CI_WORK/slow.json" -w '%{http_code}' --max-time 20 \
    -H 'Content-Type: application/json' -H 'X-Gazua: outcome=approved; latency=3s' \
    -d '{"paymentKey":"tgen_ci_slow","orderId":"order-ci-slow","amount":15000}' \
    "$BASE/v1/payments/confirm" >"$CI_WORK/slow.code" &
SLOW=$!
sleep 1
start=$SECONDS
timeout 60 "${PODMAN[@]}" stop -t 30 "$NAME" >/dev/null 2>&1 || true
took=$((SECONDS - start))
wait "$SLOW" || true
exit_code="$("${PODMAN[@]}" inspect -f '{{.State.ExitCode}}' "$NAME")"
slow_code="$(cat "$CI_WORK/slow.code")"
if [ "$slow_code" = 200 ]; then pass "in-flight 3 s request answered 200 during SIGTERM drain"; else fail "in-flight request during SIGTERM got HTTP $slow_code"; fi
if [ "$exit_code" = 0 ] && [ "$took" -lt 20 ]; then
    pass "podman stop: SIGTERM reached gazua, exit 0 after ${took}s"
else
    fail "podman stop: exit code $exit_code after ${took}s (expected 0, well under the 30 s kill)"
    "${PODMAN[@]}" logs "$NAME" 2>&1 | tail -20
fi

finish
