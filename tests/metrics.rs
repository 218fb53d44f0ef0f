//! `/metrics`: the series a test needs to prove what Gazua delivered, and a closed label set
//! that hostile input cannot grow.

mod common;

use std::collections::BTreeSet;

use common::{TestServer, confirm, send};
use rand::{RngExt, SeedableRng};

async fn series(addr: std::net::SocketAddr) -> BTreeSet<String> {
    let reply = send(addr, "GET", "/metrics", &[], "").await;
    String::from_utf8(reply.body.to_vec())
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' ').map(|(name, _)| name.to_owned()))
        .collect()
}

#[tokio::test]
async fn requests_and_both_latency_histograms_are_exported() {
    let server = TestServer::default().await;
    confirm(
        server.addr,
        &[("x-gazua-outcome", "declined"), ("x-gazua-latency", "20ms")],
    )
    .await;
    let names = series(server.addr).await;
    for expected in [
        r#"gazua_requests_total{fault="none",outcome="declined",route="confirm"}"#,
        r#"gazua_responses_total{code="REJECT_CARD_PAYMENT",route="confirm"}"#,
        r#"gazua_decided_latency_seconds_bucket{route="confirm",le="0.025"}"#,
        r#"gazua_observed_latency_seconds_bucket{route="confirm",le="0.025"}"#,
        "gazua_timer_lateness_seconds_count",
        "gazua_in_flight_requests",
        "gazua_open_connections",
        "gazua_directive_errors_total",
        r#"gazua_build_info{version="0.1.0"}"#,
    ] {
        assert!(names.contains(expected), "missing {expected}");
    }
}

#[tokio::test]
async fn hostile_header_values_create_no_new_series() {
    let server = TestServer::default().await;
    let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
    let hostile = |rng: &mut rand::rngs::SmallRng| -> String {
        (0..rng.random_range(1..40))
            .map(|_| rng.random_range(0x20u8..0x7f) as char)
            .collect()
    };
    let names = [
        "x-gazua-outcome",
        "x-gazua-latency",
        "x-gazua-fault",
        "x-gazua-status",
        "x-gazua",
        "tosspayments-test-code",
    ];
    // Warm up: one request of each kind creates the series that any later one may touch.
    confirm(
        server.addr,
        &[("x-gazua-outcome", "error(MY_OWN_CODE, 502)")],
    )
    .await;
    confirm(server.addr, &[("x-gazua-outcome", "no such thing")]).await;
    confirm(server.addr, &[("tosspayments-test-code", "NO_SUCH_CODE")]).await;
    send(server.addr, "GET", "/no/such/path", &[], "").await;
    let before = series(server.addr).await;
    for i in 0..1000 {
        let value = hostile(&mut rng);
        let name = names[i % names.len()];
        let custom = format!("error(CUSTOM_{i}, 503)");
        let path = format!("/v1/{}", rng.random_range(0..1_000_000));
        if i % 10 == 0 {
            send(server.addr, "GET", &path, &[], "").await;
        } else if i % 10 == 1 {
            confirm(server.addr, &[("x-gazua-outcome", &custom)]).await;
        } else if let Ok(value) = http::HeaderValue::from_str(&value).map(|_| value) {
            confirm(server.addr, &[(name, &value)]).await;
        }
    }
    let after = series(server.addr).await;
    let new: Vec<_> = after.difference(&before).collect();
    assert!(new.is_empty(), "new series: {new:?}");
}

#[test]
fn gazua_warns_when_its_answers_run_late() {
    // A threshold of 0: any lateness at all counts, so the watch must speak after its window.
    let gazua = common::Binary::start(&["--lateness-warn", "0", "--profile", "happy"]);
    let runtime = common::runtime();
    runtime.block_on(async {
        for _ in 0..150 {
            confirm(gazua.addr, &[("x-gazua-latency", "1ms")]).await;
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(25);
    loop {
        let warned = gazua.logs.lock().unwrap().iter().any(|log| {
            log["level"] == "WARN"
                && log["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("bottleneck")
        });
        if warned {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no lateness warning within two windows"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
