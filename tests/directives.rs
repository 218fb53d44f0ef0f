//! Directives through a real socket: latency honoured, mixes within binomial bounds, keyed
//! determinism across processes, and clear errors for anything that does not parse.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{Binary, TestServer, confirm, send};
use http::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_percent_decline_mix_lands_within_binomial_bounds() {
    // One fixed body, as a load tool replaying a recorded request sends: no key, so every
    // request draws on its own. Stateless, or the ledger would refuse the repeated confirms.
    let mut config = common::config();
    config.ledger = gazua_pay::config::LedgerKind::Stateless;
    let server = TestServer::start(config).await;
    let mut counts: HashMap<StatusCode, u32> = HashMap::new();
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let addr = server.addr;
            tokio::spawn(async move {
                let mut sender = common::connect(addr).await;
                let mut statuses = Vec::new();
                for _ in 0..1250 {
                    let reply = common::send_on(
                        &mut sender,
                        addr,
                        "POST",
                        "/v1/payments/confirm",
                        &[("x-gazua-outcome", "98% approved, 2% declined")],
                        common::CONFIRM_BODY,
                    )
                    .await;
                    statuses.push(reply.status);
                }
                statuses
            })
        })
        .collect();
    for task in tasks {
        for status in task.await.unwrap() {
            *counts.entry(status).or_default() += 1;
        }
    }
    let declined = counts.get(&StatusCode::FORBIDDEN).copied().unwrap_or(0);
    let approved = counts.get(&StatusCode::OK).copied().unwrap_or(0);
    assert_eq!(
        declined + approved,
        5000,
        "only approvals and declines: {counts:?}"
    );
    // Binomial(5000, 0.02): mean 100, sd 9.9; ±5 sd never flakes and still catches a wrong mix.
    assert!(
        (50..=150).contains(&declined),
        "{declined} declines of 5000"
    );
}

#[test]
fn the_same_key_and_seed_decide_alike_in_two_processes() {
    let args = ["--seed", "42"];
    let a = Binary::start(&args);
    let b = Binary::start(&args);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let headers = |key: &'static str| {
        [
            ("x-gazua-outcome", "50% approved, 30% declined, 20% error"),
            ("x-gazua-latency", "uniform(0ms, 20ms)"),
            ("x-gazua-fault", "10% malformed"),
            ("x-gazua-key", key),
        ]
    };
    let keys = [
        "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9", "k10", "k11", "k12",
    ];
    let mut distinct = std::collections::HashSet::new();
    for key in keys {
        let (ra, rb) = runtime.block_on(async {
            (
                confirm(a.addr, &headers(key)).await,
                confirm(b.addr, &headers(key)).await,
            )
        });
        assert_eq!(ra.decision(), rb.decision(), "key {key}");
        assert_eq!(ra.status, rb.status, "key {key}");
        distinct.insert(ra.decision());
    }
    // The decisions do depend on the key: a constant answer would pass the check above too.
    assert!(
        distinct.len() > 6,
        "only {} distinct decisions over 12 keys",
        distinct.len()
    );

    // A different seed decides the same keys differently.
    let c = Binary::start(&["--seed", "43"]);
    let differ = keys.iter().filter(|key| {
        runtime.block_on(async {
            confirm(a.addr, &headers(key)).await.decision()
                != confirm(c.addr, &headers(key)).await.decision()
        })
    });
    assert!(differ.count() > 6);
}

#[tokio::test]
async fn the_idempotency_key_is_a_determinism_key() {
    let server = TestServer::default().await;
    let ask = |key: &'static str| {
        [
            ("x-gazua-latency", "uniform(0ms, 50ms)"),
            ("x-gazua-outcome", "50% declined"),
            ("idempotency-key", key),
        ]
    };
    let first = confirm(server.addr, &ask("idem-1")).await;
    let second = confirm(server.addr, &ask("idem-1")).await;
    assert_eq!(first.decided("latency"), second.decided("latency"));
    assert_eq!(first.decided("outcome"), second.decided("outcome"));
}

#[tokio::test]
async fn a_directive_that_does_not_parse_is_a_400_naming_it() {
    let server = TestServer::default().await;
    let reply = confirm(
        server.addr,
        &[("x-gazua-latency", "lognormal(p50=80, p99=900ms)")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let body = reply.json();
    assert_eq!(body["code"], "GAZUA_INVALID_DIRECTIVE");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("X-Gazua-Latency"), "{message}");
    assert!(message.contains("p50=80"), "{message}");
}

#[tokio::test]
async fn an_unknown_gazua_header_is_a_400_not_a_silent_pass() {
    let server = TestServer::default().await;
    let reply = confirm(server.addr, &[("x-gazua-latncy", "2s")]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let body = reply.json();
    assert_eq!(body["code"], "GAZUA_INVALID_DIRECTIVE");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .to_ascii_lowercase()
            .contains("x-gazua-latncy")
    );
}

#[tokio::test]
async fn every_outcome_is_reported_in_the_decision_header() {
    let server = TestServer::default().await;
    for (asked, reported) in [
        ("approved", "approved"),
        ("declined", "declined(REJECT_CARD_PAYMENT)"),
        ("error", "error(FAILED_INTERNAL_SYSTEM_PROCESSING)"),
        ("throttled", "throttled(FORBIDDEN_CONSECUTIVE_REQUEST)"),
    ] {
        let reply = confirm(server.addr, &[("x-gazua-outcome", asked)]).await;
        assert_eq!(reply.decided("outcome"), reported);
        assert_eq!(reply.source_of("outcome"), "header");
    }
}

#[tokio::test]
async fn serve_flags_are_the_defaults_below_the_request() {
    let mut config = common::config();
    config.flags.outcome = Some(gazua_pay::directive::Outcome::parse_mix("declined").unwrap());
    config.flags.latency = Some(gazua_pay::directive::Latency::parse("30ms").unwrap());
    let server = TestServer::start(config).await;
    let reply = confirm(server.addr, &[]).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.decided("latency"), "30.000ms");
    assert_eq!(reply.source_of("outcome"), "flag");
    assert_eq!(reply.source_of("latency"), "flag");
    // The request's own directive wins field by field.
    let reply = confirm(server.addr, &[("x-gazua-outcome", "approved")]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.decided("latency"), "30.000ms");
    // An inquiry is not money-moving: the default outcome does not apply to it.
    let reply = send(
        server.addr,
        "GET",
        "/v1/payments/orders/order-0001",
        &[],
        "",
    )
    .await;
    assert_ne!(reply.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn latency_is_clamped_to_max_latency() {
    let mut config = common::config();
    config.max_latency = Duration::from_millis(100);
    let server = TestServer::start(config).await;
    let start = Instant::now();
    let reply = confirm(server.addr, &[("x-gazua-latency", "5s")]).await;
    assert_eq!(reply.decided("latency"), "100.000ms");
    assert!(start.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn a_body_tag_directs_the_request() {
    let server = TestServer::default().await;
    let body = r#"{"paymentKey":"pk_test_1","orderId":"order-0001","amount":15000,"orderName":"socks [gazua: outcome=declined(EXCEED_MAX_AMOUNT); latency=5ms]"}"#;
    let reply = send(server.addr, "POST", "/v1/payments/confirm", &[], body).await;
    assert_eq!(reply.source_of("outcome"), "tag");
    assert_eq!(reply.source_of("latency"), "tag");
    assert_eq!(reply.decided("outcome"), "declined(EXCEED_MAX_AMOUNT)");
    assert_eq!(reply.json()["code"], "EXCEED_MAX_AMOUNT");
    // A header still wins over the tag (on a payment not yet confirmed).
    let reply = send(
        server.addr,
        "POST",
        "/v1/payments/confirm",
        &[("x-gazua-outcome", "approved")],
        &body.replace("pk_test_1", "pk_test_tag_2"),
    )
    .await;
    assert_eq!(reply.decided("outcome"), "approved");
    assert_eq!(reply.source_of("outcome"), "header");
    assert_eq!(reply.source_of("latency"), "tag");
}
