#!/usr/bin/env python3
"""Consistency checks of the deploy files that no generic schema knows about.

Run by ci/deploy-checks.sh after the schema checks (kubernetes-validate, check-jsonschema).
Checks that the Kubernetes manifests, the Elastic Beanstalk bundles and the compose stack agree
with each other and with what gazua promises: probe paths, ports by name, selectors, grace
periods above the shutdown grace, load-balancer timeouts above the longest injected latency,
CPU-only autoscaling, a stateless ledger for fleets, and only GAZUA_* variables the server reads.

Usage: check_deploy.py [--gazua-help FILE]   (FILE: output of `gazua serve --help`, to check
       every GAZUA_* variable the deploy files set is one this build reads)
Prints PASS/FAIL lines; exit 1 on any FAIL.
"""

import argparse
import json
import os
import re
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
K8S = os.path.join(ROOT, "deploy", "kubernetes")
EB = os.path.join(ROOT, "deploy", "elastic-beanstalk")
COMPOSE = os.path.join(ROOT, "deploy", "compose")

# The serve flags' variables promised by the interface (README, Operations); `gazua serve --help` of the
# current build is checked too when given.
KNOWN_ENV = {
    "GAZUA_LISTEN", "GAZUA_ADMIN_LISTEN", "GAZUA_PROFILE", "GAZUA_PROFILES_DIR", "GAZUA_LATENCY",
    "GAZUA_OUTCOME", "GAZUA_FAULT", "GAZUA_SEED", "GAZUA_MAX_LATENCY", "GAZUA_MAX_CONNECTIONS",
    "GAZUA_MAX_BODY", "GAZUA_SHUTDOWN_GRACE", "GAZUA_IDLE_TIMEOUT", "GAZUA_LEDGER",
    "GAZUA_LEDGER_CAPACITY", "GAZUA_LEDGER_TTL", "GAZUA_KEY_FROM", "GAZUA_SECRET_KEY", "GAZUA_SCHEDULE_START",
    "GAZUA_ADMIN_TOKEN", "GAZUA_LOG_FORMAT", "GAZUA_ACCESS_LOG", "GAZUA_WORKERS",
    "GAZUA_TLS_LISTEN", "GAZUA_TLS_CERT", "GAZUA_TLS_KEY", "GAZUA_TLS_SELF_SIGNED", "GAZUA_TLS_NAME",
    "GAZUA_TLS_WRITE_CA",
}
DEFAULTS = {"GAZUA_SHUTDOWN_GRACE": "25s", "GAZUA_MAX_LATENCY": "60s", "GAZUA_IDLE_TIMEOUT": "90s"}

failures = []
passes = []


def check(ok, what, detail=""):
    if ok:
        passes.append(what)
        print(f"PASS {what}")
    else:
        failures.append(what)
        print(f"FAIL {what}{': ' + detail if detail else ''}")


def seconds(text):
    """'25s' / '2m' / '90' / 500ms -> seconds (float)."""
    m = re.fullmatch(r"\s*([0-9.]+)\s*(ms|s|m|h)?\s*", str(text))
    if not m:
        raise ValueError(f"not a duration: {text!r}")
    n = float(m.group(1))
    return n * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]


def load_yaml_docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def subset(small, big):
    return all(big.get(k) == v for k, v in (small or {}).items())


def env_map(env_list):
    return {e["name"]: e.get("value") for e in env_list or []}


def check_env_names(names, where, build_env):
    unknown = sorted(n for n in names if n.startswith("GAZUA_") and n not in KNOWN_ENV)
    check(not unknown, f"{where}: every GAZUA_* variable is a serve flag", f"unknown {unknown}")
    if build_env is not None:
        unread = sorted(n for n in names if n.startswith("GAZUA_") and n not in build_env)
        check(not unread, f"{where}: every GAZUA_* variable is read by this gazua build",
              f"`gazua serve --help` lists no {unread} (the server would ignore them)")


def kubernetes(build_env):
    docs = {}
    # The shared ledger's own Deployment and Service (redis.yaml) are checked by name, apart
    # from Gazua's.
    kinds_named = set()
    for name in sorted(os.listdir(K8S)):
        if not name.endswith((".yaml", ".yml")) or name == "kustomization.yaml":
            continue
        for doc in load_yaml_docs(os.path.join(K8S, name)):
            ok = all(doc.get(k) for k in ("apiVersion", "kind")) and doc.get("metadata", {}).get("name")
            check(bool(ok), f"k8s {name}: apiVersion, kind, metadata.name present")
            kinds_named.add(f'{doc["kind"]}/{doc["metadata"]["name"]}')
            if doc["metadata"]["name"] != "gazua-redis":
                docs[doc["kind"]] = doc
    with open(os.path.join(K8S, "kustomization.yaml")) as f:
        check("redis.yaml" in yaml.safe_load(f).get("resources", []),
              "k8s kustomization: applies redis.yaml (the fleet's ledger)")
    for kind in ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ServiceMonitor"):
        check(kind in docs, f"k8s: a {kind} is shipped")
    dep, svc = docs["Deployment"], docs["Service"]
    hpa, pdb, sm = docs["HorizontalPodAutoscaler"], docs["PodDisruptionBudget"], docs["ServiceMonitor"]
    tmpl = dep["spec"]["template"]
    pod_labels = tmpl["metadata"]["labels"]
    check(subset(dep["spec"]["selector"]["matchLabels"], pod_labels), "k8s Deployment: selector matches the pod labels")
    pod = tmpl["spec"]
    containers = pod["containers"]
    check(len(containers) == 1, "k8s Deployment: one container")
    c = containers[0]
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    check(ports.get("http") == 8080, "k8s Deployment: container port named http is 8080", str(ports))
    env = env_map(c.get("env"))
    check_env_names(env, "k8s Deployment", build_env)
    listen_port = int(str(env.get("GAZUA_LISTEN", "0.0.0.0:8080")).rsplit(":", 1)[1])
    check(listen_port == ports.get("http"), "k8s Deployment: GAZUA_LISTEN port is the http port")
    check(str(env.get("GAZUA_LEDGER", "")).startswith("redis://")
          and "Deployment/gazua-redis" in kinds_named and "Service/gazua-redis" in kinds_named,
          "k8s Deployment: the fleet ledger on the gazua-redis manifest (GAZUA_LEDGER=redis://…)",
          str(env.get("GAZUA_LEDGER")))
    rp, lp = c.get("readinessProbe", {}), c.get("livenessProbe", {})
    check(rp.get("httpGet", {}).get("path") == "/__gazua/ready" and rp["httpGet"].get("port") in ("http", 8080),
          "k8s Deployment: readiness probe GET /__gazua/ready on the http port")
    check(lp.get("httpGet", {}).get("path") == "/__gazua/health" and lp["httpGet"].get("port") in ("http", 8080),
          "k8s Deployment: liveness probe GET /__gazua/health on the http port")
    check(lp.get("failureThreshold", 3) * lp.get("periodSeconds", 10) >= 30,
          "k8s Deployment: liveness tolerates 30 s+ of failures (no restarts under CPU saturation)")
    grace = seconds(env.get("GAZUA_SHUTDOWN_GRACE", DEFAULTS["GAZUA_SHUTDOWN_GRACE"]))
    pre = c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    tgps = pod.get("terminationGracePeriodSeconds", 30)
    check(tgps > grace + pre, "k8s Deployment: terminationGracePeriodSeconds > preStop + GAZUA_SHUTDOWN_GRACE",
          f"{tgps} <= {pre} + {grace}")
    req = c.get("resources", {}).get("requests", {})
    check("cpu" in req and "memory" in req, "k8s Deployment: CPU and memory requests set (the HPA needs the CPU request)")
    check("cpu" not in c.get("resources", {}).get("limits", {}),
          "k8s Deployment: no CPU limit (CFS throttling would add latency gazua did not decide)")
    sc = pod.get("securityContext", {})
    check(sc.get("runAsNonRoot") is True and sc.get("runAsUser") == 65532, "k8s Deployment: runs as non-root uid 65532")
    ann = tmpl["metadata"].get("annotations", {})
    check(ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/path") == "/metrics"
          and int(ann.get("prometheus.io/port", 0)) == ports.get("http"),
          "k8s Deployment: prometheus.io scrape annotations point at /metrics on the http port")

    # HTTPS: the port gazua serves TLS on is the container's https port, the certificate files
    # come from a mounted Secret, and the Service exposes them.
    tls_port = int(str(env.get("GAZUA_TLS_LISTEN", "0.0.0.0:0")).rsplit(":", 1)[1])
    check(tls_port == ports.get("https"), "k8s Deployment: GAZUA_TLS_LISTEN port is the https port", str(ports))
    secret_vols = {v["name"] for v in pod.get("volumes", []) if v.get("secret", {}).get("secretName")}
    mounts = [m["mountPath"] for m in c.get("volumeMounts", []) if m["name"] in secret_vols]
    check(all(any(str(env.get(k, "")).startswith(m + "/") for m in mounts) for k in ("GAZUA_TLS_CERT", "GAZUA_TLS_KEY")),
          "k8s Deployment: GAZUA_TLS_CERT and GAZUA_TLS_KEY are files of a mounted Secret")
    check(subset(svc["spec"]["selector"], pod_labels), "k8s Service: selector matches the pod labels")
    svc_ports = {p.get("name"): p for p in svc["spec"]["ports"]}
    check("http" in svc_ports and svc_ports["http"].get("targetPort") in ("http", 8080),
          "k8s Service: port named http targets the container's http port")

    tgt = hpa["spec"]["scaleTargetRef"]
    check(tgt.get("kind") == "Deployment" and tgt.get("name") == dep["metadata"]["name"],
          "k8s HPA: targets the Deployment")
    metrics = hpa["spec"].get("metrics", [])
    check(metrics and all(m.get("type") == "Resource" and m["resource"]["name"] == "cpu" for m in metrics),
          "k8s HPA: scales on CPU only (injected waits cost no CPU)")
    check(hpa["spec"].get("minReplicas", 1) >= 2, "k8s HPA: at least 2 replicas")

    check(subset(pdb["spec"]["selector"]["matchLabels"], pod_labels), "k8s PDB: selector matches the pod labels")

    check(sm["apiVersion"] == "monitoring.coreos.com/v1", "k8s ServiceMonitor: monitoring.coreos.com/v1")
    check(subset(sm["spec"]["selector"]["matchLabels"], svc["metadata"].get("labels", {})),
          "k8s ServiceMonitor: selector matches the Service's labels")
    eps = sm["spec"].get("endpoints", [])
    check(eps and all(e.get("port") in svc_ports and e.get("path", "/metrics") == "/metrics" for e in eps),
          "k8s ServiceMonitor: endpoints name a Service port and /metrics")

    kust = load_yaml_docs(os.path.join(K8S, "kustomization.yaml"))[0]
    missing = [r for r in kust.get("resources", []) if not os.path.exists(os.path.join(K8S, r))]
    check(not missing, "k8s kustomization: every resource exists", str(missing))
    image_names = {i["name"] for i in kust.get("images", [])}
    check(c["image"].split(":")[0] in image_names, "k8s kustomization: sets the Deployment's image")


def elastic_beanstalk(build_env):
    # Prebuilt-image path: Dockerrun.aws.json v1 (+ host nginx, timeouts raised).
    img = os.path.join(EB, "image")
    with open(os.path.join(img, "Dockerrun.aws.json")) as f:
        run = json.load(f)
    check(run.get("AWSEBDockerrunVersion") in ("1", 1), "EB image: Dockerrun.aws.json is version 1")
    check(bool(run.get("Image", {}).get("Name")), "EB image: Dockerrun.aws.json names the image")
    check([p.get("ContainerPort") for p in run.get("Ports", [])][:1] in ([8080], ["8080"]),
          "EB image: first ContainerPort is 8080 (the one EB proxies)")
    check(not os.path.exists(os.path.join(img, "Dockerfile")),
          "EB image: no Dockerfile in the bundle (EB would build it and ignore Image)")
    conf_c = os.path.join(EB, "compose")
    for variant, base in (("image", img), ("compose", conf_c)):
        ext = os.path.join(base, ".ebextensions")
        opts = {}
        for name in sorted(os.listdir(ext)):
            doc = load_yaml_docs(os.path.join(ext, name))[0]
            for ns, values in doc.get("option_settings", {}).items():
                opts.setdefault(ns, {}).update(values)
        env = opts.get("aws:elasticbeanstalk:application:environment", {})
        check_env_names(env, f"EB {variant}", build_env)
        check(env.get("GAZUA_LEDGER") == "stateless", f"EB {variant}: GAZUA_LEDGER=stateless for a fleet")
        proc = opts.get("aws:elasticbeanstalk:environment:process:default", {})
        check(proc.get("HealthCheckPath") == "/__gazua/ready", f"EB {variant}: ALB health check on /__gazua/ready")
        envt = opts.get("aws:elasticbeanstalk:environment", {})
        check(envt.get("LoadBalancerType") == "application", f"EB {variant}: application load balancer")
        idle = int(opts.get("aws:elbv2:loadbalancer", {}).get("IdleTimeout", 60))
        max_latency = seconds(env.get("GAZUA_MAX_LATENCY", DEFAULTS["GAZUA_MAX_LATENCY"]))
        app_idle = seconds(env.get("GAZUA_IDLE_TIMEOUT", DEFAULTS["GAZUA_IDLE_TIMEOUT"]))
        if variant == "compose":
            # The compose file's ${VAR:-default} values apply when EB sets nothing: they must
            # agree with the .ebextensions ones.
            cenv = compose_env(os.path.join(conf_c, "docker-compose.yml"), "gazua")
            differ = {k: (v, cenv.get(k)) for k, v in env.items() if k in cenv and cenv[k] != v}
            check(not differ, "EB compose: docker-compose.yml defaults agree with .ebextensions", str(differ))
        check(idle > max_latency, f"EB {variant}: ALB IdleTimeout {idle}s above the longest injected latency {max_latency:.0f}s")
        check(app_idle > idle, f"EB {variant}: gazua keep-alive {app_idle:.0f}s above the ALB idle timeout {idle}s (no 502 close races)")
        trig = opts.get("aws:autoscaling:trigger", {})
        check(trig.get("MeasureName") == "CPUUtilization", f"EB {variant}: autoscaling on CPUUtilization")
        inst = opts.get("aws:ec2:instances", {}).get("InstanceTypes", "")
        check(inst and not any(t.strip().startswith("t") for t in inst.split(",")),
              f"EB {variant}: non-burstable instance types", inst)
        if variant == "compose":
            check(opts.get("aws:elasticbeanstalk:environment:proxy") is None,
                  "EB compose: no proxy setting (compose has no host nginx)")
    nginx = os.path.join(img, ".platform", "nginx", "conf.d", "elasticbeanstalk", "01-gazua-timeouts.conf")
    text = open(nginx).read()
    read_t = re.search(r"proxy_read_timeout\s+(\S+);", text)
    keep = re.search(r"keepalive_timeout\s+(\S+);", text)
    check(read_t and seconds(read_t.group(1)) > seconds(DEFAULTS["GAZUA_MAX_LATENCY"]),
          "EB image: nginx proxy_read_timeout above the longest injected latency")
    check(keep and seconds(keep.group(1)) > 75, "EB image: nginx keepalive_timeout above the ALB idle timeout")
    cenv = compose_env(os.path.join(conf_c, "docker-compose.yml"), "gazua")
    check_env_names(cenv, "EB compose docker-compose.yml", build_env)
    with open(os.path.join(conf_c, "docker-compose.yml")) as f:
        comp = yaml.safe_load(f)
    g = comp["services"]["gazua"]
    check("80:8080" in [str(p) for p in g.get("ports", [])], "EB compose: gazua published on host port 80 (no nginx hop)")
    check(".env" in g.get("env_file", []), "EB compose: reads EB's environment properties from .env")
    check(cenv.get("GAZUA_LEDGER") == "stateless", "EB compose: GAZUA_LEDGER=stateless for a fleet")


def compose_env(path, service):
    with open(path) as f:
        comp = yaml.safe_load(f)
    env = comp["services"][service].get("environment", {})
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    # ${VAR:-default} -> default (what the container gets when nothing overrides VAR).
    return {k: re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(v)) for k, v in env.items()}


def compose(build_env):
    path = os.path.join(COMPOSE, "docker-compose.yml")
    with open(path) as f:
        comp = yaml.safe_load(f)
    svcs = comp["services"]
    for s in ("gazua", "lb", "prometheus", "grafana"):
        check(s in svcs, f"compose: service {s}")
    g = svcs["gazua"]
    env = compose_env(path, "gazua")
    check_env_names(env, "compose", build_env)
    envfile = os.path.join(COMPOSE, "gazua.env")
    names = [line.lstrip("# ").split("=", 1)[0] for line in open(envfile)
             if re.match(r"^#?\s*GAZUA_[A-Z_]+=", line)]
    check_env_names(names, "compose gazua.env", build_env)
    check(env.get("GAZUA_LEDGER") == "redis://redis:6379" and "redis" in svcs
          and "redis" in g.get("depends_on", []),
          "compose: the fleet shares the redis service's ledger (GAZUA_LEDGER=redis://redis:6379)")
    check(g.get("deploy", {}).get("replicas", 1) >= 3, "compose: three gazua replicas")
    check(g.get("build", {}).get("context") == "../.." and os.path.exists(os.path.join(COMPOSE, "../../Dockerfile")),
          "compose: gazua builds the repository's Dockerfile")
    grace = seconds(env.get("GAZUA_SHUTDOWN_GRACE", DEFAULTS["GAZUA_SHUTDOWN_GRACE"]))
    check(seconds(g.get("stop_grace_period", "10s")) > grace, "compose: stop_grace_period above GAZUA_SHUTDOWN_GRACE")
    check("ports" not in g, "compose: instances reached only through the load balancer")
    hap = open(os.path.join(COMPOSE, "haproxy.cfg")).read()
    check("server-template" in hap and "gazua:8080" in hap, "compose haproxy: discovers every replica by DNS")
    check("/__gazua/ready" in hap, "compose haproxy: health-checks /__gazua/ready")
    tls_port = str(env.get("GAZUA_TLS_LISTEN", "")).rsplit(":", 1)[-1]
    check(tls_port in [str(p) for p in g.get("expose", [])] and f"gazua:{tls_port}" in hap
          and re.search(r"mode tcp", hap) is not None,
          "compose: gazua serves HTTPS and haproxy passes it through (mode tcp)")
    vols = {v.split(":")[1]: v.split(":")[0] for v in g.get("volumes", [])}
    check(any(str(env.get("GAZUA_TLS_CERT", "")).startswith(m + "/") for m in vols)
          and "certs" in svcs, "compose: the certificate comes from the certs service's volume")
    ts = re.search(r"timeout server\s+(\S+)", hap)
    check(ts and seconds(ts.group(1)) > seconds(env.get("GAZUA_MAX_LATENCY", DEFAULTS["GAZUA_MAX_LATENCY"])),
          "compose haproxy: server timeout above the longest injected latency")
    check(re.search(r"^\s*retry-on conn-failure\s*$", hap, re.M) is not None,
          "compose haproxy: retries connection failures only (never replays a request gazua received)")
    mounts = {v.split(":")[0]: v.split(":")[1] for v in svcs["lb"].get("volumes", [])}
    check(mounts.get("./haproxy.cfg") == "/usr/local/etc/haproxy/haproxy.cfg", "compose: haproxy.cfg mounted where the image reads it")
    with open(os.path.join(COMPOSE, "prometheus.yml")) as f:
        prom = yaml.safe_load(f)
    jobs = {j["job_name"]: j for j in prom.get("scrape_configs", [])}
    gj = jobs.get("gazua", {})
    dns = (gj.get("dns_sd_configs") or [{}])[0]
    check("gazua" in dns.get("names", []) and dns.get("port") == 8080, "compose prometheus: job gazua scrapes every replica on 8080")
    gv = {v.split(":")[1]: v.split(":")[0] for v in svcs["grafana"].get("volumes", []) if v.startswith("./")}
    prov = gv.get("/etc/grafana/provisioning")
    dashdir = gv.get("/var/lib/grafana/dashboards")
    check(prov is not None and dashdir is not None, "compose grafana: provisioning and dashboards mounted")
    ds = yaml.safe_load(open(os.path.join(COMPOSE, prov, "datasources", "prometheus.yml")))["datasources"][0]
    check(ds.get("uid") == "prometheus" and ds.get("url") == "http://prometheus:9090",
          "compose grafana: datasource uid prometheus at http://prometheus:9090")
    prv = yaml.safe_load(open(os.path.join(COMPOSE, prov, "dashboards", "gazua.yml")))["providers"][0]
    check(prv["options"]["path"] == "/var/lib/grafana/dashboards", "compose grafana: provider reads the mounted dashboards folder")
    home = svcs["grafana"].get("environment", {}).get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH", "")
    check(os.path.exists(os.path.join(COMPOSE, dashdir, os.path.basename(home))),
          "compose grafana: home dashboard file exists")
    dash = json.load(open(os.path.join(COMPOSE, dashdir, "gazua.json")))
    uids = set()

    def walk(panels):
        for p in panels:
            if p.get("datasource"):
                uids.add(p["datasource"].get("uid"))
            for t in p.get("targets", []):
                if t.get("datasource"):
                    uids.add(t["datasource"].get("uid"))
            walk(p.get("panels", []))

    walk(dash.get("panels", []))
    check(uids == {ds["uid"]}, "compose grafana: every panel uses the provisioned datasource uid", str(uids))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gazua-help")
    args = ap.parse_args()
    build_env = None
    if args.gazua_help:
        build_env = set(re.findall(r"env: (GAZUA_[A-Z_]+)", open(args.gazua_help).read()))
    for section in (kubernetes, elastic_beanstalk, compose):
        try:
            section(build_env)
        except Exception as e:  # a missing file or key is a failure, with its name
            check(False, f"{section.__name__}: {type(e).__name__}: {e}")
    print(f"deploy consistency: {len(passes)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
