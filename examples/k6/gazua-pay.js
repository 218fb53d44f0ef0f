// k6 load script for Gazua PAY: each request sets its own Gazua directives.
//
//   k6 run -e BASE_URL=http://localhost:8080 examples/k6/gazua-pay.js
//
// Scenario per iteration (a shopper paying):
//   1. confirm with the outcome mix and latency asked per request (X-Gazua-Outcome,
//      X-Gazua-Latency); the check compares the HTTP answer with what Gazua says it decided
//      (X-Gazua-Decision) and counts outcomes, so the summary shows the delivered mix;
//   2. now and then, the path of a SUT that forwards no headers: a [gazua: ...] tag in
//      orderName at checkout (POST /v1/payments), carried by the minted paymentKey to confirm;
//   3. an inquiry by orderId with a fixed fast latency and a determinism key (X-Gazua-Key:
//      same key + same server --seed = same decision on every instance and every rerun).
import http from 'k6/http';
import { check } from 'k6';
import { Counter } from 'k6/metrics';

const BASE = __ENV.BASE_URL || 'http://localhost:8080';
const MIX = __ENV.LOAD_OUTCOME_MIX || '80% approved, 20% declined';
const LATENCY = __ENV.LOAD_LATENCY || 'lognormal(p50=80ms, p99=400ms)';

const outcomes = new Counter('gazua_outcomes');

export const options = {
  scenarios: {
    shoppers: {
      executor: 'ramping-arrival-rate',
      startRate: 50,
      timeUnit: '1s',
      preAllocatedVUs: 200,
      maxVUs: 2000,
      stages: [
        { target: 500, duration: '1m' },
        { target: 500, duration: '3m' },
        { target: 0, duration: '30s' },
      ],
    },
  },
  thresholds: {
    // Failed = the answer disagreed with the decision, or a transport error.
    checks: ['rate>0.999'],
  },
};

function decision(res) {
  const out = {};
  for (const part of (res.headers['X-Gazua-Decision'] || '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out[part.slice(0, i).trim()] = part.slice(i + 1).trim();
  }
  return out;
}

// Unique per request, within the PG's orderId rules (6-64 of [A-Za-z0-9_-]).
let seq = 0;
function orderId() {
  seq += 1;
  return `k6-${__VU}-${__ITER}-${seq}-${Date.now()}`;
}

export default function () {
  const id = orderId();
  const res = http.post(`${BASE}/v1/payments/confirm`,
    JSON.stringify({ paymentKey: `tgen_${id}`, orderId: id, amount: 15000 }),
    {
      headers: {
        'Content-Type': 'application/json',
        'X-Gazua-Outcome': MIX,
        'X-Gazua-Latency': LATENCY,
      },
      tags: { name: 'POST /v1/payments/confirm' },
      // A declined payment is the answer we asked for, not a failed request.
      responseCallback: http.expectedStatuses({ min: 200, max: 499 }),
    });
  const d = decision(res);
  const outcome = (d.outcome || 'none').split('(')[0];
  outcomes.add(1, { outcome });
  check(res, {
    'answer matches X-Gazua-Decision': (r) =>
      (outcome === 'approved' && r.status === 200 && r.json('status') === 'DONE') ||
      (outcome !== 'approved' && r.status >= 400 && !!r.json('code')),
  });

  if (Math.random() < 0.1) {
    // Tag at checkout: survives a SUT that forwards only paymentKey, orderId and amount.
    const tagged = orderId();
    const created = http.post(`${BASE}/v1/payments`, JSON.stringify({
      method: 'CARD', amount: 15000, orderId: tagged,
      orderName: 'Gazua sneakers [gazua: outcome=declined(REJECT_CARD_PAYMENT); latency=300ms]',
      successUrl: 'https://shop.example/success', failUrl: 'https://shop.example/fail',
    }), { headers: { 'Content-Type': 'application/json' }, tags: { name: 'POST /v1/payments' } });
    if (created.status === 200) {
      const confirmed = http.post(`${BASE}/v1/payments/confirm`,
        JSON.stringify({ paymentKey: created.json('paymentKey'), orderId: tagged, amount: 15000 }),
        {
          headers: { 'Content-Type': 'application/json' },
          tags: { name: 'POST /v1/payments/confirm (tagged)' },
          responseCallback: http.expectedStatuses({ min: 400, max: 499 }),
        });
      check(confirmed, { 'tagged confirm declined': (r) => r.status >= 400 && r.status < 500 });
    }
  }

  http.get(`${BASE}/v1/payments/orders/${id}`, {
    headers: { 'X-Gazua-Latency': 'uniform(5ms, 20ms)', 'X-Gazua-Key': id },
    tags: { name: 'GET /v1/payments/orders/{orderId}' },
    responseCallback: http.expectedStatuses(200, 404),
  });
}
