//! `X-Gazua-Decision` and the delivered-answer metrics say what the client received: for every
//! outcome, every fault, the ledger's refusals and validation errors, checked against what a
//! client on a real socket got; and a mixed run's metrics equal the client's own tally exactly.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use common::{Binary, TestServer, confirm, fresh_confirm_body, raw, raw_confirm, send};
use gazua_pay::directive::{Fault, Outcome};
use http::StatusCode;
use serde_json::{Value, json};

/// The `name=value` fields of an `X-Gazua-Decision` value.
fn fields(header: &str) -> BTreeMap<String, String> {
    header
        .split("; ")
        .map(|kv| {
            let (k, v) = kv
                .split_once('=')
                .unwrap_or_else(|| panic!("{kv:?} in {header:?}"));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

/// The code in a reported outcome: `declined(REJECT_CARD_PAYMENT)` and `error(MY_CODE, 502)`
/// name theirs; `approved` and `lost(…)` none.
fn code_in(outcome: &str) -> Option<&str> {
    if outcome.starts_with("approved") || outcome.starts_with("lost") {
        return None;
    }
    let inner = outcome.split_once('(')?.1.strip_suffix(')')?;
    Some(inner.split(',').next().unwrap().trim())
}

/// Asserts that the header describes the status and code this client received, and returns
/// its fields.
fn assert_describes(status: StatusCode, header: &str, body: &[u8]) -> BTreeMap<String, String> {
    let f = fields(header);
    assert_eq!(f["status"], status.as_u16().to_string(), "{header}");
    let json: Value = serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!("{e}: {:?} ({header})", String::from_utf8_lossy(body));
    });
    match code_in(&f["outcome"]) {
        Some(code) => assert_eq!(json["code"], code, "{header}"),
        None => {
            assert!(json.get("code").is_none(), "{json} under {header}");
            assert!(json["paymentKey"].is_string(), "{json} under {header}");
        }
    }
    f
}

fn check(reply: &common::Reply) -> BTreeMap<String, String> {
    assert_describes(reply.status, &reply.decision(), &reply.body)
}

/// A raw HTTP/1.1 response: status, headers (lower-case names), the body bytes received and
/// the body length promised.
struct RawResponse {
    status: StatusCode,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
    promised: usize,
}

fn parse_raw(bytes: &[u8]) -> Option<RawResponse> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&bytes[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()?
        .strip_prefix("HTTP/1.1 ")?
        .get(..3)?
        .parse()
        .ok()?;
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
        .collect();
    let promised = headers.get("content-length")?.parse().ok()?;
    Some(RawResponse {
        status: StatusCode::from_u16(status).ok()?,
        headers,
        body: bytes[end + 4..].to_vec(),
        promised,
    })
}

/// `gazua_answers_total` (or another counter) as scraped: labels text → value.
async fn counters(addr: SocketAddr, metric: &str) -> BTreeMap<String, u64> {
    let reply = send(addr, "GET", "/metrics", &[], "").await;
    String::from_utf8(reply.body.to_vec())
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix(metric))
        .filter_map(|l| l.strip_prefix('{'))
        .filter_map(|l| l.rsplit_once("} "))
        .map(|(labels, v)| (labels.to_owned(), v.parse().unwrap()))
        .collect()
}

fn answers_key(outcome: &str, status_class: &str) -> String {
    format!(r#"outcome="{outcome}",route="confirm",status_class="{status_class}""#)
}

fn delta(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>, key: &str) -> u64 {
    after.get(key).copied().unwrap_or(0) - before.get(key).copied().unwrap_or(0)
}

#[tokio::test]
async fn every_outcome_is_reported_with_the_status_and_code_the_client_got() {
    let server = TestServer::default().await;
    for (asked, outcome, status) in [
        (vec![], "approved", 200),
        (
            vec![("x-gazua-outcome", "declined")],
            "declined(REJECT_CARD_PAYMENT)",
            403,
        ),
        (
            vec![("x-gazua-outcome", "declined(EXCEED_MAX_AMOUNT)")],
            "declined(EXCEED_MAX_AMOUNT)",
            400,
        ),
        (
            vec![("x-gazua-outcome", "error")],
            "error(FAILED_INTERNAL_SYSTEM_PROCESSING)",
            500,
        ),
        (
            vec![("x-gazua-outcome", "error(MY_CODE, 502)")],
            "error(MY_CODE, 502)",
            502,
        ),
        (
            vec![("x-gazua-outcome", "throttled")],
            "throttled(FORBIDDEN_CONSECUTIVE_REQUEST)",
            403,
        ),
        (
            vec![("tosspayments-test-code", "PROVIDER_ERROR")],
            "error(PROVIDER_ERROR)",
            400,
        ),
        // The raw status override is part of what the client got.
        (
            vec![("x-gazua-outcome", "declined"), ("x-gazua-status", "503")],
            "declined(REJECT_CARD_PAYMENT)",
            503,
        ),
    ] {
        let reply = confirm(server.addr, &asked).await;
        assert_eq!(reply.status.as_u16(), status, "{asked:?}");
        let f = check(&reply);
        assert_eq!(f["outcome"], outcome, "{asked:?}");
        assert!(!f.contains_key("decided"), "nothing replaced the decision");
    }
    let reply = confirm(
        server.addr,
        &[("x-gazua-outcome", "declined"), ("x-gazua-status", "503")],
    )
    .await;
    assert_eq!(reply.source_of("status"), "header");
    assert_eq!(
        confirm(server.addr, &[]).await.source_of("status"),
        "outcome"
    );
}

#[tokio::test]
async fn faults_that_send_a_head_report_what_was_sent() {
    let server = TestServer::default().await;
    for fault in ["malformed", "truncated", "dribble(100KB/s)"] {
        let request = raw_confirm(&format!(
            "x-gazua-fault: {fault}\r\nx-gazua-outcome: declined\r\n"
        ));
        let end = raw(server.addr, &request).await;
        let response = parse_raw(&end.bytes).expect("a response head");
        let header = &response.headers["x-gazua-decision"];
        let f = fields(header);
        assert_eq!(
            f["status"],
            response.status.as_u16().to_string(),
            "{header}"
        );
        assert_eq!(f["outcome"], "declined(REJECT_CARD_PAYMENT)", "{header}");
        assert!(f["fault"].starts_with(&fault[..5]), "{header}");
        // Even half a body starts with the code the header names.
        assert!(
            response
                .body
                .starts_with(br#"{"code":"REJECT_CARD_PAYMENT""#),
            "{fault}: {:?}",
            String::from_utf8_lossy(&response.body)
        );
        if fault.starts_with("dribble") {
            assert_describes(response.status, header, &response.body);
        } else {
            assert!(serde_json::from_slice::<Value>(&response.body).is_err());
        }
    }
}

#[tokio::test]
async fn faults_without_a_response_are_counted_as_what_the_client_saw() {
    let mut config = common::config();
    config.max_latency = Duration::from_millis(200);
    let server = TestServer::start(config).await;
    let before = counters(server.addr, "gazua_answers_total").await;
    for fault in ["reset", "close", "garbage", "hang"] {
        let end = raw(
            server.addr,
            &raw_confirm(&format!("x-gazua-fault: {fault}\r\n")),
        )
        .await;
        assert!(!end.bytes.starts_with(b"HTTP/"), "{fault}: no response");
    }
    let end = raw(
        server.addr,
        &raw_confirm("x-gazua-outcome: lost(reset)\r\n"),
    )
    .await;
    assert!(end.bytes.is_empty());
    let after = counters(server.addr, "gazua_answers_total").await;
    assert_eq!(delta(&before, &after, &answers_key("fault", "none")), 4);
    assert_eq!(delta(&before, &after, &answers_key("lost", "none")), 1);
    let counted: u64 = after.values().sum::<u64>() - before.values().sum::<u64>();
    assert_eq!(counted, 5, "nothing else was counted: {after:?}");
}

#[tokio::test]
async fn ledger_refusals_say_so_and_keep_the_decided_outcome() {
    let server = TestServer::default().await;
    let addr = server.addr;
    let body = fresh_confirm_body();
    let path = "/v1/payments/confirm";
    assert_eq!(send(addr, "POST", path, &[], &body).await.status, 200);

    // The issue's example: a declined asked for a payment already confirmed.
    let second = send(
        addr,
        "POST",
        path,
        &[("x-gazua-outcome", "declined")],
        &body,
    )
    .await;
    assert_eq!(second.json()["code"], "ALREADY_PROCESSED_PAYMENT");
    let f = check(&second);
    assert_eq!(f["outcome"], "invalid(ALREADY_PROCESSED_PAYMENT)");
    assert_eq!(f["decided"], "declined(REJECT_CARD_PAYMENT)");
    assert_eq!(second.source_of("outcome"), "ledger");
    assert_eq!(second.source_of("status"), "outcome");

    let unknown = send(addr, "GET", "/v1/payments/pk_never_seen", &[], "").await;
    let f = check(&unknown);
    assert_eq!(f["outcome"], "invalid(NOT_FOUND_PAYMENT)");
    assert_eq!(f["decided"], "approved");
    assert_eq!(unknown.source_of("outcome"), "ledger");

    let key: Value = serde_json::from_str(&body).unwrap();
    let cancel = format!(
        "/v1/payments/{}/cancel",
        key["paymentKey"].as_str().unwrap()
    );
    let over = json!({"cancelReason": "test", "cancelAmount": 99_999}).to_string();
    let f = check(&send(addr, "POST", &cancel, &[], &over).await);
    assert_eq!(f["outcome"], "invalid(NOT_CANCELABLE_AMOUNT)");

    // An idempotent replay is the ledger's answer too, even when it is the same approval.
    let body = fresh_confirm_body();
    let idem = [("idempotency-key", "idem-delivered-1")];
    let first = send(addr, "POST", path, &idem, &body).await;
    assert!(!fields(&first.decision()).contains_key("decided"));
    let replay = send(addr, "POST", path, &idem, &body).await;
    assert_eq!(replay.body, first.body, "the stored first answer");
    let f = check(&replay);
    assert_eq!(
        (f["outcome"].as_str(), f["decided"].as_str()),
        ("approved", "approved")
    );
    assert_eq!(replay.source_of("outcome"), "ledger");

    let overrides = counters(addr, "gazua_overrides_total").await;
    for code in [
        "ALREADY_PROCESSED_PAYMENT",
        "NOT_FOUND_PAYMENT",
        "NOT_CANCELABLE_AMOUNT",
        "OK",
    ] {
        assert_eq!(
            overrides.get(&format!(r#"by="ledger",code="{code}""#)),
            Some(&1),
            "{code}: {overrides:?}"
        );
    }
}

#[tokio::test]
async fn validation_errors_say_so_and_keep_the_decided_outcome() {
    let mut config = common::config();
    config.max_body = 1000;
    let server = TestServer::start(config).await;
    let addr = server.addr;

    // A body that is not JSON by its content-type: refused whatever was decided.
    let reply = send(
        addr,
        "POST",
        "/v1/payments/confirm",
        &[
            ("content-type", "text/plain"),
            ("x-gazua-outcome", "declined"),
        ],
        &fresh_confirm_body(),
    )
    .await;
    let f = check(&reply);
    assert_eq!(f["outcome"], "invalid(INVALID_REQUEST)");
    assert_eq!(f["decided"], "declined(REJECT_CARD_PAYMENT)");
    assert!(f["source"].starts_with("outcome:validation,"), "{f:?}");

    let no_order = json!({"paymentKey": "pk_v_1", "amount": 100}).to_string();
    let reply = send(addr, "POST", "/v1/payments/confirm", &[], &no_order).await;
    assert_eq!(check(&reply)["outcome"], "invalid(INVALID_REQUEST)");
    assert_eq!(reply.source_of("outcome"), "validation");

    let reply = send(addr, "GET", "/v1/payments/confirm", &[], "").await;
    assert_eq!(check(&reply)["outcome"], "invalid(METHOD_NOT_ALLOWED)");
    let reply = send(addr, "GET", "/v2/nothing", &[], "").await;
    assert_eq!(check(&reply)["outcome"], "invalid(NOT_FOUND)");
    assert_eq!(reply.source_of("outcome"), "validation");

    // A directive that does not apply to its route is found after deciding.
    let reply = send(
        addr,
        "GET",
        "/v1/payments/pk_x",
        &[("x-gazua-outcome", "declined")],
        "",
    )
    .await;
    let f = check(&reply);
    assert_eq!(f["outcome"], "invalid(GAZUA_INVALID_DIRECTIVE)");
    assert_eq!(f["decided"], "declined");

    // Refused before anything was decided: the header says so.
    let overrides = counters(addr, "gazua_overrides_total").await;
    let reply = confirm(addr, &[("x-gazua-latency", "soon")]).await;
    let f = check(&reply);
    assert_eq!(f["outcome"], "invalid(GAZUA_INVALID_DIRECTIVE)");
    assert_eq!((f["decided"].as_str(), f["profile"].as_str()), ("-", "-"));
    let large = format!(r#"{{"pad":"{}"}}"#, "x".repeat(2000));
    let reply = send(addr, "POST", "/v1/payments/confirm", &[], &large).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(check(&reply)["outcome"], "invalid(GAZUA_BODY_TOO_LARGE)");
    assert_eq!(
        counters(addr, "gazua_overrides_total").await,
        overrides,
        "nothing decided, nothing overridden"
    );
    assert_eq!(
        overrides.get(r#"by="validation",code="INVALID_REQUEST""#),
        Some(&2)
    );
}

fn write_profile(dir: &tempfile::TempDir, profile: Value) -> String {
    let path = dir.path().join("p.json");
    std::fs::write(&path, profile.to_string()).unwrap();
    path.to_str().unwrap().to_owned()
}

#[tokio::test]
async fn each_field_names_its_own_source() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config();
    config.profile = Some(write_profile(
        &dir,
        json!({"name": "mixed", "defaults": {"outcome": "declined"}}),
    ));
    config.flags.fault = Some(Fault::parse_mix("dribble(1MB/s)").unwrap());
    let server = TestServer::start(config).await;
    let reply = confirm(server.addr, &[("x-gazua-latency", "5ms")]).await;
    let f = check(&reply);
    assert_eq!(f["outcome"], "declined(REJECT_CARD_PAYMENT)");
    assert_eq!(f["latency"], "5.000ms");
    assert_eq!(f["fault"], "dribble(1000000B/s)");
    assert_eq!(
        f["source"],
        "outcome:profile,status:outcome,latency:header,fault:flag"
    );

    let mut config = common::config();
    config.profile = Some(write_profile(
        &dir,
        json!({"name": "limited", "defaults": {"latency": "1ms"},
               "rate_limit": {"rps": 0.001, "burst": 1}}),
    ));
    config.flags.outcome = Some(Outcome::parse_mix("approved").unwrap());
    let server = TestServer::start(config).await;
    let first = confirm(server.addr, &[("x-gazua-status", "201")]).await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(
        check(&first)["source"],
        "outcome:flag,status:header,latency:profile,fault:builtin"
    );
    let limited = confirm(server.addr, &[]).await;
    let f = check(&limited);
    assert_eq!(f["outcome"], "throttled(FORBIDDEN_CONSECUTIVE_REQUEST)");
    assert_eq!(
        f["source"],
        "outcome:rate_limit,status:outcome,latency:rate_limit,fault:builtin"
    );
}

/// What a client makes of one raw exchange, in the metric's terms: (outcome, status class).
fn tally(bytes: &[u8]) -> (String, String) {
    let fault = |class: &str| ("fault".to_owned(), class.to_owned());
    let Some(response) = parse_raw(bytes) else {
        return fault("none");
    };
    let class = format!("{}xx", response.status.as_u16() / 100);
    if response.body.len() < response.promised {
        return fault(&class);
    }
    let Ok(json) = serde_json::from_slice::<Value>(&response.body) else {
        return fault(&class);
    };
    let outcome = match json["code"].as_str() {
        None => "approved",
        Some("REJECT_CARD_PAYMENT") => "declined",
        Some("FAILED_INTERNAL_SYSTEM_PROCESSING") => "error",
        Some("FORBIDDEN_CONSECUTIVE_REQUEST") => "throttled",
        Some("ALREADY_PROCESSED_PAYMENT" | "INVALID_REQUEST" | "GAZUA_INVALID_DIRECTIVE") => {
            "invalid"
        }
        Some(other) => panic!("unexpected code {other}"),
    };
    (outcome.to_owned(), class)
}

#[tokio::test]
async fn a_mixed_run_is_counted_exactly_as_its_client_saw_it() {
    const N: usize = 500;
    let server = TestServer::default().await;
    let addr = server.addr;
    let fixed = fresh_confirm_body();
    let requests: Vec<String> = (0..N)
        .map(|i| match i % 50 {
            // One payment confirmed again and again: the ledger refuses the repeats.
            0 => format!(
                "POST /v1/payments/confirm HTTP/1.1\r\nhost: gazua\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{fixed}",
                fixed.len()
            ),
            // A body that is not JSON by its content-type: a validation error.
            1 => format!(
                "POST /v1/payments/confirm HTTP/1.1\r\nhost: gazua\r\ncontent-type: text/plain\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{fixed}",
                fixed.len()
            ),
            2 => raw_confirm("x-gazua-latency: 5\r\n"),
            _ => raw_confirm(
                "x-gazua-outcome: 70% approved, 10% declined, 10% error, 10% throttled\r\n\
                 x-gazua-fault: 2% reset, 2% malformed, 1% truncated, 1% close, 1% garbage\r\n",
            ),
        })
        .collect();
    let mut client: BTreeMap<(String, String), u64> = BTreeMap::new();
    for batch in requests.chunks(25) {
        let ends = join_all(
            batch
                .iter()
                .cloned()
                .map(|r| async move { raw(addr, &r).await }),
        )
        .await;
        for end in ends {
            *client.entry(tally(&end.bytes)).or_default() += 1;
        }
    }

    let mut server_side: BTreeMap<(String, String), u64> = BTreeMap::new();
    for (labels, n) in counters(addr, "gazua_answers_total").await {
        let label = |name: &str| {
            let start = labels.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
            labels[start..].split('"').next().unwrap().to_owned()
        };
        assert_eq!(label("route"), "confirm", "{labels}");
        *server_side
            .entry((label("outcome"), label("status_class")))
            .or_default() += n;
    }
    server_side.retain(|_, n| *n > 0);
    assert_eq!(
        server_side, client,
        "the metrics are the client's own tally"
    );
    assert_eq!(client.values().sum::<u64>(), N as u64);
    for outcome in [
        "approved",
        "declined",
        "error",
        "throttled",
        "invalid",
        "fault",
    ] {
        assert!(
            client.keys().any(|(o, _)| o == outcome),
            "the run had no {outcome}: {client:?}"
        );
    }
}

/// Runs the futures concurrently; their outputs in order.
async fn join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

#[test]
fn repeated_confirms_of_one_payment_log_one_warning_with_the_fix() {
    let gazua = Binary::start(&["--profile", "happy", "--access-log"]);
    let runtime = common::runtime();
    let headers = runtime.block_on(async {
        let mut headers = Vec::new();
        for i in 0..30 {
            let reply = send(
                gazua.addr,
                "POST",
                "/v1/payments/confirm",
                &[],
                common::CONFIRM_BODY,
            )
            .await;
            if i == 0 {
                assert_eq!(reply.status, StatusCode::OK);
            } else {
                // The PG's own answer, untouched by the warning.
                assert_eq!(
                    reply.json(),
                    json!({"code": "ALREADY_PROCESSED_PAYMENT", "message": "이미 처리된 결제 입니다."})
                );
            }
            headers.push(reply.decision());
        }
        headers
    });
    let warnings = || -> Vec<Value> {
        gazua
            .logs
            .lock()
            .unwrap()
            .iter()
            .filter(|log| log["level"] == "WARN" && log.get("repeats").is_some())
            .cloned()
            .collect()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(25);
    while warnings().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no warning about the repeats within two windows"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let warnings = warnings();
    // One line per window, not one per refusal: 29 refusals span at most two windows.
    assert!(warnings.len() <= 2, "{warnings:?}");
    let warned: u64 = warnings
        .iter()
        .map(|w| w["repeats"].as_u64().unwrap())
        .sum();
    assert!((10..=29).contains(&warned), "{warnings:?}");
    let message = warnings[0]["message"].as_str().unwrap();
    for fix in [
        "paymentKey",
        "--ledger stateless",
        "ALREADY_PROCESSED_PAYMENT",
    ] {
        assert!(message.contains(fix), "{fix} in {message}");
    }
    // The access log says what the header said, answer by answer.
    let logged: Vec<String> = gazua
        .logs
        .lock()
        .unwrap()
        .iter()
        .filter(|log| log["target"] == "access")
        .map(|log| log["decision"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(logged, headers);
}
