#!/usr/bin/env bash
# Runs examples/locust/locustfile.py headless for a few seconds against a live gazua on
# 127.0.0.1 and requires: no Locust failure (every HTTP answer matches the X-Gazua-Decision it
# came with) and the confirm outcome mix it asked for (80% approved / 20% declined) within
# binomial bounds (LOAD_CHECK_MIX=1 makes the locustfile fail the run otherwise).
#
# Usage: ci/locust-test.sh
# Env:   GAZUA_BIN=path         gazua binary (default target/release/gazua, built if missing)
#        LOCUST_SECONDS=10      run time
# Needs: python3 with venv; locust is pip-installed into the shared CI venv
#        (~/.cache/gazua-ci/venv) when missing. About 30 s once locust is installed.

CI_NAME=locust
# shellcheck source=ci/common.sh
source "$(dirname "$0")/common.sh"
ci_init

venv_ensure locust
BIN="$(gazua_bin)"
PORT="$(free_ports 1)"

"$BIN" serve --listen "127.0.0.1:$PORT" >"$CI_WORK/gazua.log" 2>&1 &
track_pid $!
wait_http "http://127.0.0.1:$PORT/__gazua/ready" 15 || { tail -20 "$CI_WORK/gazua.log"; die "gazua did not start"; }

log "locust: 20 users for ${LOCUST_SECONDS:-10}s against 127.0.0.1:$PORT"
set +e
LOAD_CHECK_MIX=1 LOAD_OUTCOME_MIX="80% approved, 20% declined" \
    timeout -k 10 120 locust -f "$REPO_ROOT/examples/locust/locustfile.py" \
    --host "http://127.0.0.1:$PORT" --headless -u 20 -r 20 -t "${LOCUST_SECONDS:-10}s" \
    --stop-timeout 5 --only-summary --loglevel WARNING >"$CI_WORK/locust.out" 2>&1
rc=$?
set -e
cat "$CI_WORK/locust.out"

grep -q 'gazua mix check: ok' "$CI_WORK/locust.out" \
    && pass "outcome mix 80% approved / 20% declined delivered within binomial bounds" \
    || fail "outcome mix check did not pass (tally above)"
[ "$rc" -eq 0 ] \
    && pass "locust run: no failures, exit 0" \
    || fail "locust exited $rc (a failure line above says which request disagreed with its decision)"
finish
