#!/usr/bin/env python3
"""Local fleet test: three gazua processes behind haproxy, all on 127.0.0.1, no containers.

Run through ci/fleet-test.sh (which installs haproxy and finds the binary). Proves:
  1. determinism: the same X-Gazua-Key gets the same decision from every instance, directly and
     through the load balancer, whichever instance answers;
  2. stateless fleet: a payment minted on one instance (POST /v1/payments) is confirmed,
     looked up and cancelled on the others (--ledger stateless), and a [gazua: ...] tag given
     at creation travels inside the minted key to the instance that confirms it;
  3. schedule: with a shared --schedule-start, every instance is in the same phase at the same
     wall-clock moment;
  4. graceful drain: one instance gets SIGTERM mid-run under load; the client sees no error
     (haproxy retries connection failures on another server), the killed instance answers its
     in-flight requests and exits 0.
Prints PASS/FAIL/SKIP lines and a closing "fleet: N passed, N failed, N skipped".
"""

import argparse
import datetime as dt
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

SEED = "4242"
MIX = "50% approved, 30% declined, 20% error"

results = {"passed": 0, "failed": 0, "skipped": 0}


def report(kind, msg):
    results[{"PASS": "passed", "FAIL": "failed", "SKIP": "skipped"}[kind]] += 1
    print(f"{kind} {msg}", flush=True)


def log(msg):
    print(f"[fleet {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_ports(n):
    import socket

    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def parse_decision(value):
    """'outcome=approved; latency=83.214ms; ...' -> dict."""
    out = {}
    for part in (value or "").split(";"):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def request(port, method, path, body=None, headers=None, timeout=15):
    """One request on a fresh connection -> (status, headers dict lower-cased, parsed body or text)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = json.dumps(body).encode() if body is not None else None
        h = {"Content-Type": "application/json"} if data is not None else {}
        h.update(headers or {})
        conn.request(method, path, body=data, headers=h)
        resp = conn.getresponse()
        raw = resp.read()
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode(errors="replace")
        return resp.status, hdrs, parsed
    finally:
        conn.close()


def confirm_body(order_id, amount=15000, payment_key=None):
    return {"paymentKey": payment_key or f"tgen_{order_id}", "orderId": order_id, "amount": amount}


class Fleet:
    def __init__(self, binary, work, use_profile):
        self.binary = binary
        self.work = work
        self.ports = free_ports(4)
        self.lb_port = self.ports[3]
        self.procs = {}
        self.haproxy = None
        help_text = subprocess.run([binary, "serve", "--help"], capture_output=True, text=True).stdout
        self.has_ledger = "--ledger" in help_text
        # A schedule needs both a profile file and a shared start instant.
        self.use_profile = use_profile and "--profile" in help_text and "--schedule-start" in help_text
        # The schedule starts at a whole second in the past, shared by all three instances.
        self.t0 = int(time.time()) - 10
        self.profile_path = os.path.join(work, "fleet-schedule.json")
        with open(self.profile_path, "w") as f:
            json.dump(
                {
                    "name": "fleet-schedule",
                    "description": "ci/fleet_test.py: two 2 s phases, repeating",
                    "schedule": {
                        "start": "boot",
                        "repeat": True,
                        "phases": [
                            {"for": "2s", "name": "calm"},
                            {"for": "2s", "name": "storm", "latency": "5ms"},
                        ],
                    },
                },
                f,
            )

    def instance_args(self, i):
        args = [
            self.binary,
            "serve",
            "--listen", f"127.0.0.1:{self.ports[i]}",
            "--seed", SEED,
            "--shutdown-grace", "10s",
        ]
        if self.has_ledger:
            args += ["--ledger", "stateless"]
        if self.use_profile:
            start = dt.datetime.fromtimestamp(self.t0, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            args += ["--profile", self.profile_path, "--schedule-start", start]
        return args

    def start_instance(self, i):
        logf = open(os.path.join(self.work, f"gazua{i + 1}.log"), "ab")
        p = subprocess.Popen(self.instance_args(i), stdout=logf, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL)
        self.procs[i] = p
        return p

    def wait_up(self, i, seconds=15):
        deadline = time.time() + seconds
        while time.time() < deadline:
            if self.procs[i].poll() is not None:
                return False
            try:
                status, _, _ = request(self.ports[i], "GET", "/__gazua/ready", timeout=1)
                if status == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.1)
        return False

    def start(self):
        for i in range(3):
            self.start_instance(i)
        ok = all(self.wait_up(i) for i in range(3))
        if not ok and self.use_profile:
            log("instances did not start with the schedule profile; retrying without it")
            for i in range(3):
                self.stop_instance(i)
            self.use_profile = False
            for i in range(3):
                self.start_instance(i)
            ok = all(self.wait_up(i) for i in range(3))
        if not ok:
            self.dump_logs()
            raise SystemExit("FAIL gazua instances did not become ready")
        self.start_haproxy()

    def start_haproxy(self):
        cfg = os.path.join(self.work, "haproxy.cfg")
        servers = "\n".join(
            f"    server g{i + 1} 127.0.0.1:{self.ports[i]} check" for i in range(3)
        )
        # Same settings as deploy/compose/haproxy.cfg, with loopback servers. Retries cover
        # connection failures only: a request that reached an instance is never replayed (that
        # would double injected faults and double-charge in a real PG).
        with open(cfg, "w") as f:
            f.write(f"""global
    maxconn 4096

defaults
    mode http
    timeout connect 1s
    timeout client 95s
    timeout server 70s
    timeout http-keep-alive 95s
    timeout check 2s
    retries 3
    option redispatch 1
    retry-on conn-failure
    http-reuse safe

frontend gazua_front
    bind 127.0.0.1:{self.lb_port}
    default_backend gazua

backend gazua
    balance roundrobin
    option httpchk GET /__gazua/ready
    http-check expect status 200
    default-server inter 500ms fall 1 rise 2
    http-response set-header X-Gazua-Instance %[srv_name]
{servers}
""")
        check = subprocess.run(["haproxy", "-c", "-f", cfg], capture_output=True, text=True)
        if check.returncode != 0:
            raise SystemExit(f"FAIL haproxy config rejected: {check.stdout}{check.stderr}")
        logf = open(os.path.join(self.work, "haproxy.log"), "ab")
        self.haproxy = subprocess.Popen(["haproxy", "-db", "-f", cfg], stdout=logf,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                seen = set()
                for _ in range(6):
                    status, h, _ = request(self.lb_port, "GET", "/__gazua/health", timeout=1)
                    if status == 200:
                        seen.add(h.get("x-gazua-instance"))
                if len(seen) == 3:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit("FAIL haproxy did not route to all three instances within 10 s")

    def stop_instance(self, i):
        p = self.procs.get(i)
        if p and p.poll() is None:
            p.terminate()
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def stop(self):
        for i in list(self.procs):
            self.stop_instance(i)
        if self.haproxy and self.haproxy.poll() is None:
            self.haproxy.terminate()
            try:
                self.haproxy.wait(10)
            except subprocess.TimeoutExpired:
                self.haproxy.kill()
                self.haproxy.wait()

    def dump_logs(self):
        for name in sorted(os.listdir(self.work)):
            if name.endswith(".log"):
                with open(os.path.join(self.work, name), errors="replace") as f:
                    tail = f.read()[-2000:]
                print(f"--- {name} (tail)\n{tail}", file=sys.stderr)


def test_determinism(fleet):
    keys = [f"fleet-key-{n:02d}" for n in range(24)]
    headers = {"X-Gazua-Outcome": MIX, "X-Gazua-Latency": "uniform(1ms, 20ms)"}
    problems = []
    outcomes = set()
    canonical = {}
    for key in keys:
        h = dict(headers, **{"X-Gazua-Key": key})
        seen = []
        for i in range(3):
            status, rh, _ = request(fleet.ports[i], "POST", "/v1/payments/confirm",
                                    confirm_body(f"order-{key}"), h)
            d = parse_decision(rh.get("x-gazua-decision"))
            if not d:
                problems.append(f"{key}: instance {i + 1} sent no X-Gazua-Decision (HTTP {status})")
                continue
            seen.append((i + 1, status, d.get("outcome"), d.get("latency"), d.get("fault")))
        decisions = {s[1:] for s in seen}
        if len(decisions) != 1:
            problems.append(f"{key}: instances disagree: {seen}")
        elif seen:
            canonical[key] = seen[0][1:]
            outcomes.add(seen[0][2])
    if problems:
        report("FAIL", "determinism (direct): " + "; ".join(problems[:5]))
    elif len(outcomes) < 2:
        report("FAIL", f"determinism (direct): 24 keys all got {outcomes}; the mix {MIX!r} was not applied")
    else:
        report("PASS", f"determinism (direct): 24 keys x 3 instances agree on status, outcome, latency, fault; outcomes seen {sorted(outcomes)}")

    # Through the load balancer: round robin spreads each key's repeats over the instances.
    problems = []
    spread = []
    for key in keys:
        h = dict(headers, **{"X-Gazua-Key": key})
        served = set()
        for _ in range(4):
            status, rh, _ = request(fleet.lb_port, "POST", "/v1/payments/confirm",
                                    confirm_body(f"order-{key}"), h)
            d = parse_decision(rh.get("x-gazua-decision"))
            got = (status, d.get("outcome"), d.get("latency"), d.get("fault"))
            served.add(rh.get("x-gazua-instance"))
            if key not in canonical:
                problems.append(f"{key}: no agreed direct decision to compare with")
                break
            if got != canonical[key]:
                problems.append(f"{key} via {rh.get('x-gazua-instance')}: {got} != {canonical[key]}")
        spread.append(len(served))
    multi = sum(1 for s in spread if s >= 2)
    if problems:
        report("FAIL", "determinism (through haproxy): " + "; ".join(problems[:5]))
    elif multi < len(keys) // 2:
        report("FAIL", f"determinism (through haproxy): only {multi}/{len(keys)} keys were answered by 2+ instances")
    else:
        report("PASS", f"determinism (through haproxy): same decisions whichever instance answered ({multi}/{len(keys)} keys served by 2+ instances)")


def test_minted_keys(fleet):
    a, b, c = fleet.ports[:3]
    order_id = f"fleet-{uuid.uuid4().hex[:16]}"
    create = {
        "method": "CARD", "amount": 15000, "orderId": order_id, "orderName": "fleet test order",
        "successUrl": "https://example.com/success", "failUrl": "https://example.com/fail",
    }
    approve = {"X-Gazua-Outcome": "approved", "X-Gazua-Latency": "0"}
    try:
        status, _, body = request(a, "POST", "/v1/payments", create, approve)
    except OSError as e:
        report("FAIL", f"minted keys: POST /v1/payments on instance 1 failed: {e}")
        return
    key = body.get("paymentKey") if isinstance(body, dict) else None
    if status in (404, 405, 501) or (status == 200 and not key):
        report("SKIP", f"minted keys: POST /v1/payments is not in this build (HTTP {status}); "
                       "mint-on-one/confirm-on-another not tested")
        return
    if status != 200 or not key:
        report("FAIL", f"minted keys: POST /v1/payments on instance 1: HTTP {status} {str(body)[:300]}")
        return
    problems = []
    status, _, body = request(b, "POST", "/v1/payments/confirm",
                              confirm_body(order_id, payment_key=key), approve)
    if status != 200 or not isinstance(body, dict) or body.get("status") != "DONE" \
            or body.get("paymentKey") != key or body.get("orderId") != order_id:
        problems.append(f"confirm on instance 2: HTTP {status} {str(body)[:300]}")
    status, _, body = request(c, "GET", f"/v1/payments/{key}", headers=approve)
    if status != 200 or not isinstance(body, dict) or body.get("orderId") != order_id:
        problems.append(f"inquiry on instance 3: HTTP {status} {str(body)[:300]}")
    status, _, body = request(c, "POST", f"/v1/payments/{key}/cancel",
                              {"cancelReason": "fleet test"}, approve)
    if status != 200 or not isinstance(body, dict) or body.get("status") != "CANCELED":
        problems.append(f"cancel on instance 3: HTTP {status} {str(body)[:300]}")
    if problems:
        report("FAIL", "minted keys: " + "; ".join(problems))
    else:
        report("PASS", "minted keys: created on instance 1, confirmed (DONE) on 2, found and cancelled (CANCELED) on 3")

    # A tag given at creation travels in the minted key: the confirm carries no directive at all.
    order_id = f"fleet-{uuid.uuid4().hex[:16]}"
    tagged = dict(create, orderId=order_id, orderName="fleet order [gazua: outcome=declined]")
    status, _, body = request(a, "POST", "/v1/payments", tagged)
    key = body.get("paymentKey") if isinstance(body, dict) else None
    if status != 200 or not key:
        report("FAIL", f"minted tag: POST /v1/payments with a tag: HTTP {status} {str(body)[:300]}")
        return
    status, rh, body = request(b, "POST", "/v1/payments/confirm", confirm_body(order_id, payment_key=key))
    d = parse_decision(rh.get("x-gazua-decision"))
    if d.get("outcome", "").startswith("declined") and 400 <= status < 500:
        report("PASS", f"minted tag: [gazua: outcome=declined] given on instance 1 declined the confirm on instance 2 (HTTP {status}, {body.get('code') if isinstance(body, dict) else ''})")
    else:
        report("FAIL", f"minted tag: confirm on instance 2 got HTTP {status}, decision {rh.get('x-gazua-decision')!r}")


def test_schedule(fleet):
    if not fleet.use_profile:
        report("SKIP", "schedule: this build does not accept a profile file with a schedule "
                       "(--profile/--schedule-start); phase agreement not tested")
        return
    phases = ["calm", "storm"]
    rounds = []
    problems = []
    for target in (0.7, 2.7, 4.7, 6.7, 8.7, 10.7):
        # Sample each instance in the middle of a phase, far from any boundary.
        now = time.time()
        cycle_pos = (now - fleet.t0) % 4.0
        wait = (target % 4.0 - cycle_pos) % 4.0
        time.sleep(wait)
        expected = phases[int(((time.time() - fleet.t0) % 4.0) // 2)]
        got = []
        for i in range(3):
            status, rh, _ = request(fleet.ports[i], "POST", "/v1/payments/confirm",
                                    confirm_body(f"fleet-sched-{uuid.uuid4().hex[:12]}"),
                                    {"X-Gazua-Outcome": "approved"})
            d = parse_decision(rh.get("x-gazua-decision"))
            got.append((d.get("phase"), d.get("latency")))
        rounds.append((expected, got))
        names = {g[0] for g in got}
        if names == {"-"} or names == {None}:
            report("SKIP", f"schedule: instances accept the profile but report no phase ({got}); not tested")
            return
        if names != {expected}:
            problems.append(f"expected {expected}, instances said {got}")
        elif expected == "storm" and any(g[1] != "5.000ms" for g in got):
            problems.append(f"storm phase latency not applied: {got}")
    if problems:
        report("FAIL", "schedule: " + "; ".join(problems[:4]))
    else:
        report("PASS", f"schedule: 3 instances agreed on the phase in {len(rounds)} samples over 3 cycles "
                       f"({', '.join(r[0] for r in rounds)})")


def test_drain(fleet, duration=9.0, kill_at=3.0, workers=32):
    victim = 1  # instance g2
    victim_name = "g2"
    records = []
    lock = threading.Lock()
    stop = threading.Event()
    t_start = time.time()

    def worker(n):
        conn = None
        while not stop.is_set():
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", fleet.lb_port, timeout=20)
            order_id = f"fleet-drain-{n}-{uuid.uuid4().hex[:12]}"
            body = json.dumps(confirm_body(order_id)).encode()
            t0 = time.time()
            try:
                conn.request("POST", "/v1/payments/confirm", body=body, headers={
                    "Content-Type": "application/json",
                    "X-Gazua-Outcome": "approved",
                    "X-Gazua-Latency": "uniform(20ms, 400ms)",
                })
                resp = conn.getresponse()
                resp.read()
                rec = (t0, time.time(), resp.status, resp.getheader("X-Gazua-Instance"), None)
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                rec = (t0, time.time(), None, None, f"{type(e).__name__}: {e}")
                conn.close()
                conn = None
            with lock:
                records.append(rec)
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(workers)]
    for t in threads:
        t.start()
    time.sleep(kill_at)
    t_kill = time.time()
    proc = fleet.procs[victim]
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(20)
    except subprocess.TimeoutExpired:
        rc = None
    t_exit = time.time()
    time.sleep(max(0.0, duration - (time.time() - t_start)))
    stop.set()
    for t in threads:
        t.join(25)

    errors = [r for r in records if r[4] is not None or r[2] != 200]
    drained = [r for r in records if r[3] == victim_name and r[0] < t_kill < r[1]]
    after = [r for r in records if r[0] > t_exit and r[2] == 200]
    by_instance = {}
    for r in records:
        by_instance[r[3]] = by_instance.get(r[3], 0) + 1
    summary = (f"{len(records)} requests by {workers} clients over {duration:.0f}s, per instance {by_instance}, "
               f"SIGTERM to {victim_name} at {kill_at:.0f}s, exit code {rc} after {t_exit - t_kill:.2f}s, "
               f"{len(drained)} requests in flight on {victim_name} at SIGTERM answered, "
               f"{len(after)} answered after it exited")
    problems = []
    if errors:
        kinds = {}
        for r in errors:
            kind = r[4].split(":")[0] if r[4] else f"HTTP {r[2]} from {r[3] or 'haproxy'}"
            kinds[kind] = kinds.get(kind, 0) + 1
        problems.append(f"{len(errors)} client-side errors {kinds}, e.g. {errors[:2]}")
    if rc != 0:
        problems.append(f"killed instance exit code {rc}, expected 0")
    if not drained:
        problems.append("no request was in flight on the killed instance at SIGTERM (nothing proven about drain)")
    if not after:
        problems.append("no request succeeded after the instance exited")
    if problems:
        report("FAIL", "drain: " + "; ".join(problems) + " | " + summary)
    else:
        report("PASS", "drain: 0 client errors; " + summary)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()

    fleet = Fleet(args.bin, args.work, use_profile=True)

    def on_signal(signum, _frame):
        fleet.stop()
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    try:
        fleet.start()
        log(f"fleet up: gazua on {fleet.ports[:3]}, haproxy on {fleet.lb_port}")
        if not fleet.has_ledger:
            report("SKIP", "stateless ledger: this build has no --ledger flag; the instances run "
                           "their default ledger (the tests below still need no shared state)")
        for test in (test_determinism, test_minted_keys, test_schedule, test_drain):
            try:
                test(fleet)
            except Exception as e:  # a broken test must not hide the others
                report("FAIL", f"{test.__name__}: {type(e).__name__}: {e}")
        if results["failed"]:
            fleet.dump_logs()
    finally:
        fleet.stop()
    print(f"fleet: {results['passed']} passed, {results['failed']} failed, {results['skipped']} skipped")
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
