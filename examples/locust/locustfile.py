"""Locust load script for Gazua PAY: every request carries its own Gazua directives.

    pip install locust
    locust -f examples/locust/locustfile.py --host http://localhost:8080 \
        --headless -u 50 -r 10 -t 2m

What it does, per simulated shopper:
  * confirm (most traffic): POST /v1/payments/confirm asking, per request, for the outcome mix
    LOAD_OUTCOME_MIX (default "80% approved, 20% declined") and the latency LOAD_LATENCY, via
    the X-Gazua-Outcome and X-Gazua-Latency headers. Each response says what Gazua decided in
    X-Gazua-Decision; the script checks the HTTP answer matches it (approved -> 200 DONE,
    declined -> 4xx with a PG error code) and tallies the outcomes.
  * checkout: the path a SUT takes when it forwards no headers: POST /v1/payments with a
    [gazua: ...] tag in orderName; the minted paymentKey carries the tag, so the later confirm
    (with only paymentKey, orderId, amount) follows it.
  * inquiry: GET /v1/payments/orders/{orderId} with a fixed fast latency.

At the end it prints the outcome tally against the mix asked for. With LOAD_CHECK_MIX=1 the
run fails (exit code 1) when an outcome's share is outside its binomial bounds (4.5 sigma), so
it doubles as a test that Gazua delivered exactly the mix asked for (ci/locust-test.sh).
"""

import math
import os
import re
import threading
import uuid

from locust import HttpUser, between, events, task

OUTCOME_MIX = os.environ.get("LOAD_OUTCOME_MIX", "80% approved, 20% declined")
LATENCY = os.environ.get("LOAD_LATENCY", "lognormal(p50=80ms, p99=400ms)")

_tally = {}
_tally_lock = threading.Lock()


def parse_decision(value):
    """'outcome=declined(REJECT_CARD_PAYMENT); latency=83.214ms; ...' -> {'outcome': ..., ...}."""
    out = {}
    for part in (value or "").split(";"):
        if "=" in part:
            key, val = part.split("=", 1)
            out[key.strip()] = val.strip()
    return out


def expected_shares(mix):
    """'80% approved, 20% declined(X)' -> {'approved': 0.8, 'declined': 0.2}; rest is approved."""
    shares = {}
    for weight, name in re.findall(r"([0-9.]+)%\s*([a-z]+)", mix):
        shares[name] = shares.get(name, 0.0) + float(weight) / 100.0
    rest = 1.0 - sum(shares.values())
    if rest > 1e-9:
        shares["approved"] = shares.get("approved", 0.0) + rest
    return shares


def payment_body(order_id, amount=15000):
    return {"paymentKey": f"tgen_{order_id}", "orderId": order_id, "amount": amount}


class Shopper(HttpUser):
    wait_time = between(0.01, 0.05)

    @task(10)
    def confirm(self):
        order_id = "locust-" + uuid.uuid4().hex[:24]
        headers = {"X-Gazua-Outcome": OUTCOME_MIX, "X-Gazua-Latency": LATENCY}
        with self.client.post("/v1/payments/confirm", json=payment_body(order_id), headers=headers,
                              name="POST /v1/payments/confirm", catch_response=True) as resp:
            decision = parse_decision(resp.headers.get("X-Gazua-Decision"))
            outcome = decision.get("outcome", "none").split("(")[0]
            with _tally_lock:
                _tally[outcome] = _tally.get(outcome, 0) + 1
            try:
                body = resp.json()
            except ValueError:
                body = {}
            if outcome == "approved" and resp.status_code == 200 and body.get("status") == "DONE":
                resp.success()
            elif outcome in ("declined", "error", "throttled") and resp.status_code >= 400 and body.get("code"):
                resp.success()  # the PG answer we asked for: not a load-test failure
            else:
                # Stable text (no latency, no ids) so Locust groups the failures.
                resp.failure(f"decided {outcome} but got HTTP {resp.status_code}, status "
                             f"{body.get('status')!r}, code {body.get('code')!r}")

    @task(2)
    def checkout(self):
        # The SUT forwards no X-Gazua-* header: the directive rides in orderName from checkout on.
        order_id = "locust-" + uuid.uuid4().hex[:24]
        created = self.client.post("/v1/payments", name="POST /v1/payments", json={
            "method": "CARD", "amount": 15000, "orderId": order_id,
            "orderName": "Gazua sneakers [gazua: outcome=declined(REJECT_CARD_PAYMENT); latency=300ms]",
            "successUrl": "https://shop.example/success", "failUrl": "https://shop.example/fail",
        })
        key = created.json().get("paymentKey") if created.status_code == 200 else None
        if not key:
            return
        with self.client.post("/v1/payments/confirm", json=payment_body(order_id) | {"paymentKey": key},
                              name="POST /v1/payments/confirm (tagged)", catch_response=True) as resp:
            if resp.status_code >= 400:
                resp.success()  # declined as the tag asked
            else:
                resp.failure(f"tag asked for a decline, got HTTP {resp.status_code}")

    @task(2)
    def inquiry(self):
        order_id = "locust-" + uuid.uuid4().hex[:24]
        # Same X-Gazua-Key -> same decision on every instance of a fleet and every rerun.
        with self.client.get(f"/v1/payments/orders/{order_id}", name="GET /v1/payments/orders/{orderId}",
                             headers={"X-Gazua-Latency": "uniform(5ms, 20ms)", "X-Gazua-Key": order_id},
                             catch_response=True) as resp:
            if resp.status_code in (200, 404):
                resp.success()  # NOT_FOUND_PAYMENT is the PG's answer for an order never paid


@events.quitting.add_listener
def check_mix(environment, **_kwargs):
    with _tally_lock:
        tally = dict(_tally)
    n = sum(tally.values())
    shares = expected_shares(OUTCOME_MIX)
    print(f"gazua outcome tally for confirm ({n} responses), asked {OUTCOME_MIX!r}:")
    problems = []
    for outcome in sorted(set(shares) | set(tally)):
        p = shares.get(outcome, 0.0)
        k = tally.get(outcome, 0)
        got = k / n if n else 0.0
        bound = 4.5 * math.sqrt(p * (1 - p) / n) + 1.0 / n if n else 1.0
        ok = abs(got - p) <= bound
        print(f"  {outcome:10s} {k:6d}  {got:7.2%}  asked {p:7.2%}  (+/- {bound:.2%}) {'ok' if ok else 'OUT OF BOUNDS'}")
        if not ok:
            problems.append(outcome)
    if os.environ.get("LOAD_CHECK_MIX") == "1":
        if n < 200:
            print(f"gazua mix check: only {n} confirm responses, need at least 200")
            environment.process_exit_code = 1
        elif problems:
            print(f"gazua mix check: FAILED for {', '.join(problems)}")
            environment.process_exit_code = 1
        else:
            print("gazua mix check: ok")
