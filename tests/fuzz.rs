//! Property test of the whole request path through a real server on `127.0.0.1:0`: random
//! directive headers (`X-Gazua`, `X-Gazua-*`, misspelt ones, `TossPayments-Test-Code`, the
//! Envoy aliases) with random or near-grammar values, random JSON bodies whose strings carry
//! random tags (any case, misspelt, unclosed), random bytes as bodies, random paths and
//! methods — sent over keep-alive connections. For every case: no panic, no 5xx unless a
//! directive asked for an error, a status or another profile, and no dropped connection unless
//! a directive asked for a fault.
//!
//! `GAZUA_FUZZ_CASES` sets the number of cases: 2,000 by default (CI: a few seconds), 10^6 in
//! the benchmark mode (BENCHMARKS.md: `GAZUA_FUZZ_CASES=1000000 cargo test --release --test
//! fuzz -- --nocapture`).

mod common;

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::TestServer;
use gazua_pay::directive::headers::{find_tag, from_headers};
use gazua_pay::directive::{Directives, Fault, Outcome};
use http::{HeaderMap, HeaderName, HeaderValue, Request};
use http_body_util::{BodyExt, Full};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::Value;

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// Pieces of valid grammar by kind, so that a good share of the random directives parse and
/// reach deciding, rendering and the socket faults.
const OUTCOMES: &[&str] = &[
    "approved",
    "approved",
    "declined",
    "declined(INSUFFICIENT_BALANCE)",
    "error",
    "error(PROVIDER_ERROR)",
    "error(MY_CODE, 502)",
    "throttled",
    "lost",
    "lost(reset)",
    "97% approved, 2% declined, 1% error",
];
const LATENCIES: &[&str] = &[
    "0",
    "1ms",
    "250us",
    "uniform(1ms, 2ms)",
    "lognormal(p50=1ms, p99=5ms)",
    "percentiles(p50=1ms, p90=2ms, p99=4ms)",
    "95% 1ms + 5% 3s",
];
const FAULTS: &[&str] = &[
    "none",
    "none",
    "reset",
    "close",
    "hang",
    "malformed",
    "truncated",
    "garbage",
    "dribble(1MB/s)",
    "1% reset, 1% hang",
];
const STATUSES: &[&str] = &["200", "418", "503"];
const PROFILES: &[&str] = &["happy", "default", "nosuch"];
const CODES: &[&str] = &["PROVIDER_ERROR", "REJECT_CARD_PAYMENT", "NO_SUCH_CODE"];
const NUMBERS: &[&str] = &["100", "50", "0", "503", "1"];

fn valid(kind: &str) -> &'static [&'static str] {
    match kind {
        "outcome" | "x-gazua-outcome" => OUTCOMES,
        "latency" | "x-gazua-latency" => LATENCIES,
        "fault" | "x-gazua-fault" => FAULTS,
        "status" | "x-gazua-status" => STATUSES,
        "profile" | "x-gazua-profile" => PROFILES,
        "tosspayments-test-code" => CODES,
        name if name.starts_with("x-envoy") => NUMBERS,
        _ => &["k1", "order-42", "ko-KR", "en-US"],
    }
}

/// A value for `kind` (a header name or a tag field): mostly valid, sometimes any piece of
/// grammar, sometimes random text.
fn piece(kind: &str) -> impl Strategy<Value = String> + use<> {
    let any_piece: Vec<&'static str> = [OUTCOMES, LATENCIES, FAULTS, STATUSES]
        .into_iter()
        .flatten()
        .copied()
        .collect();
    prop_oneof![
        8 => prop::sample::select(valid(kind)).prop_map(str::to_owned),
        1 => prop::sample::select(any_piece).prop_map(str::to_owned),
        1 => "[ -~]{0,24}",
        1 => "\\PC{0,12}",
    ]
}

const FIELDS: &[&str] = &["outcome", "latency", "fault", "status", "profile", "key"];

/// Gazua's directive headers and a few others a PG request carries.
fn header_names() -> Vec<&'static str> {
    let others = [
        "idempotency-key",
        "accept-language",
        "authorization",
        "content-type",
        "traceparent",
    ];
    [&gazua_pay::directive::headers::NAMES[..], &others].concat()
}

/// Routes as `(method, path)`; `{}` takes a random segment.
const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/payments/confirm"),
    ("POST", "/v1/payments/confirm"),
    ("POST", "/v1/payments/confirm"),
    ("POST", "/v1/payments"),
    ("GET", "/v1/payments/{}"),
    ("GET", "/v1/payments/orders/{}"),
    ("POST", "/v1/payments/{}/cancel"),
    ("POST", "/v1/billing/authorizations/issue"),
    ("POST", "/v1/billing/{}"),
    ("POST", "/v1/virtual-accounts"),
    ("GET", "/__gazua/health"),
    ("GET", "/__gazua/ready"),
    ("PUT", "/__gazua/profile"),
    ("GET", "/metrics"),
    ("GET", "/{}"),
];

const KEYS: &[&str] = &[
    "paymentKey",
    "orderId",
    "amount",
    "orderName",
    "customerName",
    "cancelReason",
    "cancelAmount",
    "method",
    "successUrl",
    "failUrl",
    "customerKey",
    "authKey",
];

/// A compound directive: `outcome=…; latency=…`, sometimes broken.
fn compound() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(FIELDS).prop_flat_map(|field| (Just(field), piece(field))),
        0..3,
    )
    .prop_map(|parts| {
        parts
            .iter()
            .map(|(field, value)| format!("{field}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    })
}

/// A header and its value: ours mostly, with values meant for it mostly.
fn header() -> impl Strategy<Value = (String, Vec<u8>)> {
    prop_oneof![
        8 => prop::sample::select(header_names()).prop_flat_map(|name| {
            let value = if name == "x-gazua" {
                compound().boxed()
            } else {
                piece(name).boxed()
            };
            (Just(name.to_owned()), value.prop_map(String::into_bytes))
        }),
        1 => ("x-gazua[a-z0-9-]{0,8}", "[ -~]{0,12}".prop_map(String::into_bytes)),
        1 => (
            prop::sample::select(header_names()).prop_map(str::to_owned),
            prop::collection::vec(any::<u8>(), 0..48)
        ),
    ]
}

/// Text that often holds a tag: the marker in any case, misspelt, or unclosed.
fn text() -> impl Strategy<Value = String> {
    let marker = prop::sample::select(
        &[
            "[gazua:", "[Gazua:", "[GAZUA: ", "[gazau:", "[gazua ", "[ gazua:", "[",
        ][..],
    );
    prop_oneof![
        3 => "\\PC{0,16}",
        2 => ("\\PC{0,6}", marker, compound(), prop::sample::select(&["]", "", "] tail"][..]))
            .prop_map(|(before, marker, inner, close)| format!("{before}{marker}{inner}{close}")),
    ]
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (0u64..100_000).prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        prop::sample::select(KEYS).prop_map(str::to_owned),
                        "\\PC{0,6}"
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

/// A body shaped like a payment request (so validation passes often), a random JSON value,
/// or random bytes.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let payment = (
        prop_oneof![4 => "pk_[a-z0-9]{1,12}", 1 => "gzp1[A-Za-z0-9_-]{0,40}", 1 => "\\PC{0,10}"],
        prop_oneof![4 => "order-[0-9]{6}", 1 => "[A-Za-z0-9_-]{0,70}"],
        prop_oneof![4 => (1u64..1_000_000).prop_map(Value::from), 1 => json()],
        text(),
    )
        .prop_map(|(key, order, amount, name)| {
            serde_json::json!({
                "paymentKey": key, "orderId": order, "amount": amount, "orderName": name,
                "method": "CARD", "successUrl": "https://s.test/ok", "failUrl": "https://s.test/no",
                "cancelReason": "fuzz",
            })
        });
    prop_oneof![
        4 => payment.prop_map(|v| serde_json::to_vec(&v).unwrap()),
        2 => json().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        1 => prop::collection::vec(any::<u8>(), 0..64),
        1 => Just(Vec::new()),
    ]
}

/// A route's method (or, one time in six, another) and its path.
fn target() -> impl Strategy<Value = (&'static str, String)> {
    (
        prop::sample::select(ROUTES),
        prop::sample::select(&["GET", "POST", "PUT", "DELETE", "PATCH"][..]),
        prop::bool::weighted(1.0 / 6.0),
        prop_oneof![
            4 => "[A-Za-z0-9_-]{6,24}",
            1 => "[A-Za-z0-9_.~-]{0,24}",
            1 => Just("%EA%B0%80%EB%82%98".to_owned()),
        ],
    )
        .prop_map(|((method, path), other, use_other, segment)| {
            let method = if use_other { other } else { method };
            (method, path.replace("{}", &segment))
        })
}

#[derive(Debug, Clone)]
struct Case {
    method: &'static str,
    path: String,
    headers: Vec<(String, Vec<u8>)>,
    json_content_type: bool,
    body: Vec<u8>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        target(),
        prop::collection::vec(header(), 0..3),
        prop::bool::weighted(0.9),
        body(),
    )
        .prop_map(|((method, path), headers, json_content_type, body)| Case {
            method,
            path,
            headers,
            json_content_type,
            body,
        })
}

/// What the case's own directives allow: a 5xx, a dropped or broken answer.
#[derive(Debug, Default, Clone, Copy)]
struct Allowed {
    server_error: bool,
    broken: bool,
}

impl Allowed {
    fn from(d: &Directives, allowed: &mut Allowed) {
        if let Some(mix) = &d.outcome
            && mix.weights().any(|(w, o)| w > 0 && *o != Outcome::Approved)
        {
            // Errors are 5xx; `lost` replaces the answer with a fault.
            allowed.server_error = true;
            allowed.broken = true;
        }
        if d.status.is_some_and(|s| s.is_server_error()) {
            allowed.server_error = true;
        }
        if let Some(mix) = &d.fault
            && mix.weights().any(|(w, f)| w > 0 && *f != Fault::None)
        {
            allowed.broken = true;
        }
        if d.profile.is_some() {
            // Another loaded profile may decide anything.
            allowed.server_error = true;
            allowed.broken = true;
        }
    }
}

/// The request, and what its directives (parsed by Gazua's own parser) allow.
fn build(case: &Case) -> (Request<Full<Bytes>>, Allowed) {
    let mut request = Request::builder()
        .method(case.method)
        .uri(&case.path)
        .header("host", "gazua");
    let mut map = HeaderMap::new();
    if case.json_content_type {
        map.insert("content-type", HeaderValue::from_static("application/json"));
    }
    for (name, value) in &case.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) {
            map.append(name, value);
        }
    }
    let mut allowed = Allowed::default();
    if let Ok(d) = from_headers(&map) {
        Allowed::from(&d, &mut allowed);
    }
    if let Some(Ok(d)) = find_tag(&case.body) {
        Allowed::from(&d, &mut allowed);
    }
    for (name, value) in &map {
        request = request.header(name, value);
    }
    let request = request
        .body(Full::new(Bytes::from(case.body.clone())))
        .expect("a valid request");
    (request, allowed)
}

#[derive(Default)]
struct Tally {
    success: Cell<u64>,
    client_error: Cell<u64>,
    directive_error: Cell<u64>,
    server_error_asked: Cell<u64>,
    broken_asked: Cell<u64>,
    /// Answers by status and PG code, for the summary.
    codes: RefCell<std::collections::BTreeMap<String, u64>>,
}

fn bump(c: &Cell<u64>) {
    c.set(c.get() + 1);
}

#[test]
fn random_requests_get_no_5xx_and_no_dropped_connection_unless_asked() {
    let cases: u32 = std::env::var("GAZUA_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let rt = common::runtime();
    let mut config = common::config();
    // Latency, hang and dribble directives end within this: the cases stay fast.
    config.max_latency = Duration::from_millis(5);
    let server = rt.block_on(TestServer::start(config));
    let addr = server.addr;
    let sender: RefCell<Option<Sender>> = RefCell::new(None);
    let tally = Tally::default();
    let started = Instant::now();

    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let done = Cell::new(0u32);
    let result = runner.run(&case(), |case| {
        done.set(done.get() + 1);
        if done.get().is_multiple_of(100_000) {
            eprintln!(
                "fuzz: {} cases after {:.0} s",
                done.get(),
                started.elapsed().as_secs_f64()
            );
        }
        let (request, allowed) = build(&case);
        // A keep-alive connection, reused while it stays open.
        let mut slot = sender.take();
        let outcome = rt.block_on(async {
            let open = match slot.as_mut() {
                Some(s) => s.ready().await.is_ok(),
                None => false,
            };
            let fresh = !open;
            if fresh {
                slot = Some(common::connect(addr).await);
            }
            let s = slot.as_mut().expect("a connection");
            match exchange(s, request.clone()).await {
                // The server may close a reused connection between two requests (after an
                // answer whose request body it did not read): one retry on a fresh one.
                Err(_) if !fresh => {
                    let s = slot.insert(common::connect(addr).await);
                    exchange(s, request).await
                }
                other => other,
            }
        });
        sender.replace(slot);
        match outcome {
            Ok((status, body)) => {
                let code = serde_json::from_slice::<Value>(&body)
                    .ok()
                    .and_then(|v| v.get("code").and_then(Value::as_str).map(str::to_owned))
                    .unwrap_or_default();
                *tally
                    .codes
                    .borrow_mut()
                    .entry(format!("{} {code}", status.as_u16()))
                    .or_default() += 1;
                if status.is_server_error() {
                    prop_assert!(
                        allowed.server_error,
                        "{status} not asked for: {case:?}\n{}",
                        String::from_utf8_lossy(&body)
                    );
                    bump(&tally.server_error_asked);
                } else if status.is_client_error() {
                    if body.windows(23).any(|w| w == b"GAZUA_INVALID_DIRECTIVE") {
                        bump(&tally.directive_error);
                    } else {
                        bump(&tally.client_error);
                    }
                } else {
                    bump(&tally.success);
                }
            }
            Err(error) => {
                prop_assert!(
                    allowed.broken,
                    "connection dropped ({error}) without a fault asked for: {case:?}"
                );
                sender.borrow_mut().take();
                bump(&tally.broken_asked);
            }
        }
        Ok::<(), TestCaseError>(())
    });
    let elapsed = started.elapsed();
    eprintln!(
        "fuzz: {cases} cases in {:.1} s ({:.0}/s): {} 2xx/3xx, {} 4xx of which {} directive \
         errors, {} 5xx asked for, {} broken answers asked for",
        elapsed.as_secs_f64(),
        f64::from(cases) / elapsed.as_secs_f64(),
        tally.success.get(),
        tally.client_error.get() + tally.directive_error.get(),
        tally.directive_error.get(),
        tally.server_error_asked.get(),
        tally.broken_asked.get(),
    );
    eprintln!(
        "fuzz: answers by status and code: {:?}",
        tally.codes.borrow()
    );
    if let Err(failure) = result {
        panic!("{failure}");
    }
    // The server is still serving: a panic anywhere would have ended its task.
    let health = rt.block_on(common::send(addr, "GET", "/__gazua/health", &[], ""));
    assert_eq!(health.status, http::StatusCode::OK);
    assert!(!server.task.is_finished());
    // Every kind of answer was exercised, or the generator has gone blind.
    assert!(tally.success.get() > 0 && tally.directive_error.get() > 0);
    rt.block_on(server.shutdown());
}

/// One request and its whole answer; `Err` when the connection failed before the answer was
/// complete.
async fn exchange(
    sender: &mut Sender,
    request: Request<Full<Bytes>>,
) -> Result<(http::StatusCode, Bytes), String> {
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, body))
}
