-- The load of benches/run.sh: wrk POSTs a Toss confirm for a payment it has never confirmed
-- (a second confirm of a key is ALREADY_PROCESSED_PAYMENT under Gazua's memory ledger), with
-- the X-Gazua-* headers of $BENCH_HEADERS ("Name: value|Name: value"), and prints one
-- machine-readable RESULT line when done.

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
for pair in string.gmatch(os.getenv("BENCH_HEADERS") or "", "[^|]+") do
  local name, value = pair:match("^%s*([^:]+):%s*(.-)%s*$")
  if name then wrk.headers[name] = value end
end

-- Unique per process and request: wrk -t1 runs one Lua state, so a counter is enough.
local run = tostring(os.time() % 100000)
local n = 0

function request()
  n = n + 1
  local body = string.format(
    '{"paymentKey":"pk_bench_%s_%d","orderId":"order-%s-%d","amount":15000}', run, n, run, n)
  return wrk.format(nil, nil, nil, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d connect=%d read=%d write=%d status=%d timeout=%d " ..
    "p50_us=%d p90_us=%d p99_us=%d max_us=%d mean_us=%.0f\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
end
