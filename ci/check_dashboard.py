#!/usr/bin/env python3
"""Checks the Grafana dashboard (deploy/compose/grafana/dashboards/gazua.json).

  * valid JSON, provisionable as is: "id": null, a fixed uid, no "__inputs"/${DS_...} (an
    "export for sharing externally" file fails to provision), every panel and query on the
    datasource uid "prometheus";
  * every panel has at least one query, unique ids, a grid position;
  * every metric a query names is one Gazua exports (the list the README's Operations section promises, histogram
    series _bucket/_sum/_count of its histograms, process_* and Prometheus' own `up`), and every
    label a query groups or filters by is one of those metrics' labels;
  * with --metrics-file (a live /metrics scrape): every metric named is really in the scrape;
  * with --promtool: every query is valid PromQL (Grafana's $variables substituted).

Usage: check_dashboard.py DASHBOARD [--metrics-file FILE] [--promtool PATH]
Prints PASS/FAIL lines; exit 1 on any FAIL.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

HISTOGRAMS = {
    "gazua_decided_latency_seconds",
    "gazua_observed_latency_seconds",
    "gazua_timer_lateness_seconds",
    "gazua_ledger_call_seconds",
    "gazua_tls_handshake_duration_seconds",
    "gazua_webhook_delivery_seconds",
}
PLAIN = {
    "gazua_requests_total", "gazua_responses_total", "gazua_answers_total",
    "gazua_overrides_total", "gazua_in_flight_requests",
    "gazua_open_connections", "gazua_directive_errors_total", "gazua_capacity_queue_depth",
    "gazua_profile_info", "gazua_build_info", "gazua_ledger_errors_total",
    "gazua_connections_closed_total", "gazua_panics_total", "gazua_tls_handshakes_total",
    "gazua_webhooks_total",
    # process collector (prometheus crate, Linux)
    "process_cpu_seconds_total", "process_resident_memory_bytes", "process_virtual_memory_bytes",
    "process_open_fds", "process_max_fds", "process_start_time_seconds", "process_threads",
}
SYNTHETIC = {"up"}  # made by Prometheus at scrape time, never in /metrics
LABELS = {"route", "outcome", "fault", "code", "status_class", "by", "profile", "phase", "version", "le", "kind",
          "reason", "result",
          "instance", "job"}  # the last two: added by Prometheus
PROMQL_WORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
                "group_left", "group_right", "inf", "nan"}

failures = []
passes = []


def check(ok, what, detail=""):
    (passes if ok else failures).append(what)
    print(f"{'PASS' if ok else 'FAIL'} {what}{': ' + detail if detail and not ok else ''}")


def known_metric(name):
    if name in PLAIN or name in HISTOGRAMS or name in SYNTHETIC:
        return True
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name[: -len(suffix)] in HISTOGRAMS:
            return True
    return False


def metrics_in(expr):
    """Metric names a PromQL expression selects (function names, keywords, labels excluded)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)       # string literals
    labels = set()
    for body in re.findall(r"\{([^}]*)\}", e):           # label matchers
        labels |= set(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", body))
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)                    # range and subquery selectors
    for body in re.findall(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", e):
        labels |= {x.strip() for x in body.split(",") if x.strip()}
    e = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    e = re.sub(r"\$\w+", " ", e)                          # Grafana variables
    names = set()
    for m in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", e):
        word, call = m.group(1), m.group(2)
        if call or word.lower() in PROMQL_WORDS:
            continue
        names.add(word)
    return names, labels


def all_panels(panels):
    for p in panels:
        yield p
        yield from all_panels(p.get("panels", []))


def scrape_names(path):
    names = set()
    for line in open(path):
        if line.startswith("#") or not line.strip():
            continue
        names.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0))
    return names


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dashboard")
    ap.add_argument("--metrics-file")
    ap.add_argument("--promtool")
    args = ap.parse_args()

    raw = open(args.dashboard).read()
    try:
        dash = json.loads(raw)
    except ValueError as e:
        check(False, "dashboard is valid JSON", str(e))
        return 1
    check(True, "dashboard is valid JSON")
    check(dash.get("id") is None and bool(dash.get("uid")) and bool(dash.get("title")),
          "dashboard: id null, fixed uid, title (provisionable)")
    check("__inputs" not in dash and "${DS_" not in raw,
          "dashboard: no __inputs / ${DS_...} placeholders (raw JSON, not an external export)")

    panels = list(all_panels(dash.get("panels", [])))
    ids = [p.get("id") for p in panels]
    check(len(ids) == len(set(ids)) and None not in ids, "dashboard: unique panel ids")
    queries = []  # (panel title, expr)
    for p in panels:
        if p.get("type") == "row":
            continue
        title = p.get("title", "?")
        targets = p.get("targets", [])
        check(bool(targets) and all(t.get("expr") for t in targets), f"panel {title!r}: has queries")
        check(all(k in p.get("gridPos", {}) for k in "xywh"), f"panel {title!r}: grid position")
        uids = {p.get("datasource", {}).get("uid")} | {t.get("datasource", {}).get("uid") for t in targets}
        check(uids == {"prometheus"}, f"panel {title!r}: datasource uid prometheus", str(uids))
        queries += [(title, t["expr"]) for t in targets if t.get("expr")]
    for var in dash.get("templating", {}).get("list", []):
        q = var.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        m = re.fullmatch(r"\s*label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*(\w+)\s*\)\s*", q or "")
        check(m is not None, f"variable ${var.get('name')}: label_values(metric, label)", str(q))
        if m:
            queries.append((f"variable ${var.get('name')}", f"{m.group(1)}{{{m.group(2)}!=\"\"}}"))

    named = set()
    for title, expr in queries:
        names, labels = metrics_in(expr)
        unknown = sorted(n for n in names if not known_metric(n))
        check(names and not unknown, f"{title!r}: queries only metrics Gazua exports",
              f"{unknown or 'no metric'} in {expr}")
        bad_labels = sorted(labels - LABELS)
        check(not bad_labels, f"{title!r}: groups/filters only by Gazua's labels", f"{bad_labels} in {expr}")
        named |= names
    print(f"metrics used by the dashboard: {', '.join(sorted(named))}")

    if args.metrics_file:
        live = scrape_names(args.metrics_file)
        missing = sorted(n for n in named - SYNTHETIC if n not in live)
        check(not missing, "every metric the dashboard queries is in the live /metrics scrape",
              f"absent from the scrape: {missing}")
        unused = sorted(n for n in (PLAIN | HISTOGRAMS) if n not in live
                        and not any(x.startswith(n + "_") for x in live))
        check(not unused, "every metric the README promises is in the live /metrics scrape",
              f"absent: {unused}")

    if args.promtool:
        # promtool validates PromQL inside a rules file; Grafana's variables get plain values.
        rules = {"groups": [{"name": "dashboard", "rules": []}]}
        for n, (title, expr) in enumerate(queries):
            e = expr.replace("$__rate_interval", "1m").replace("$__interval", "1m").replace("$route", ".*")
            rules["groups"][0]["rules"].append({"record": f"dashboard:query{n}", "expr": e})
        with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
            json.dump(rules, f)  # JSON is YAML
            path = f.name
        out = subprocess.run([args.promtool, "check", "rules", path], capture_output=True, text=True)
        os.unlink(path)
        check(out.returncode == 0, f"all {len(queries)} queries are valid PromQL (promtool check rules)",
              (out.stdout + out.stderr).strip()[-1500:])

    print(f"dashboard checks: {len(passes)} ok, {len(failures)} failing")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
