#!/usr/bin/env bash
# Local fleet test without containers: three gazua processes (--ledger stateless, one --seed)
# behind haproxy (Debian package), all on 127.0.0.1. See ci/fleet_test.py for what it proves:
# determinism by X-Gazua-Key across instances, minted keys confirmed/cancelled on another
# instance, schedule phase agreement, and no client error when one instance gets SIGTERM mid-run.
#
# Usage: ci/fleet-test.sh            (from anywhere; root needed to apt-get install haproxy)
# Env:   GAZUA_BIN=path              gazua binary (default target/release/gazua, built if missing)
#        GAZUA_CI_KEEP=1             keep the scratch dir (instance and haproxy logs)
# Needs: haproxy, python3 (stdlib only), curl. About 1 minute.

CI_NAME=fleet
# shellcheck source=ci/common.sh
source "$(dirname "$0")/common.sh"
ci_init

apt_ensure haproxy haproxy || die "haproxy is needed (apt-get install haproxy)"
BIN="$(gazua_bin)"
log "using $BIN, $(haproxy -v | head -1)"

# fleet_test.py owns its processes (three gazua, one haproxy) and stops them on every exit path;
# the outer timeout bounds the whole run.
set +e
timeout -k 10 300 python3 "$REPO_ROOT/ci/fleet_test.py" --bin "$BIN" --work "$CI_WORK"
rc=$?
set -e
[ "$rc" -eq 124 ] && echo "FAIL fleet test timed out after 300 s"
exit "$rc"
