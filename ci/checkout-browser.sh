#!/usr/bin/env bash
# The checkout window in a real headless Chromium: a merchant creates payments on a live gazua,
# the browser opens each checkout.url and a tiny merchant receiver records where it lands.
# Checks: "pay" clicked (with JavaScript off: the page's plain form) lands on successUrl with
# paymentKey/orderId/amount; a declined key lands on failUrl with REJECT_CARD_COMPANY; "cancel"
# lands on failUrl with PAY_PROCESS_CANCELED; auto=1 lands on successUrl with no click at all.
# Saves the page's screenshot to target/ci-artifacts/checkout.png.
#
# Usage: ci/checkout-browser.sh
# Env:   GAZUA_BIN=path   gazua binary (default target/release/gazua, built if missing)
# Needs: chromium (Debian package; installed when missing), python3 (standard library only:
#        Chromium is driven over --remote-debugging-pipe, no websocket client). About 10 s.

CI_NAME=checkout-browser
# shellcheck source=ci/common.sh
source "$(dirname "$0")/common.sh"
ci_init

apt_ensure chromium chromium || die "chromium is needed (apt-get install chromium)"
BIN="$(gazua_bin)"
PORT="$(free_ports 1)"

"$BIN" serve --listen "127.0.0.1:$PORT" >"$CI_WORK/gazua.log" 2>&1 &
track_pid $!
wait_http "http://127.0.0.1:$PORT/__gazua/ready" 15 || { tail -20 "$CI_WORK/gazua.log"; die "gazua did not start"; }

mkdir -p "$REPO_ROOT/target/ci-artifacts"
set +e
timeout -k 10 120 python3 "$REPO_ROOT/ci/checkout_browser.py" \
    --gazua "http://127.0.0.1:$PORT" \
    --profile-dir "$CI_WORK/chromium" \
    --screenshot "$REPO_ROOT/target/ci-artifacts/checkout.png"
rc=$?
set -e
if [ "$rc" -eq 0 ]; then
    pass "checkout flows in chromium: pay, decline, cancel, auto=1 (lines above)"
else
    tail -20 "$CI_WORK/gazua.log"
    fail "checkout flows in chromium (exit $rc; FAIL lines above)"
fi
finish
