//! Latency directives are delivered as asked, measured client-side. Its own test binary, so no
//! other test competes for the two cores while it measures.

mod common;

use std::time::Instant;

use common::{TestServer, fresh_confirm_body, quantile, send_on};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lognormal_latency_is_delivered_as_asked() {
    let server = TestServer::default().await;
    // 25 keep-alive connections × 12 requests. Keyed requests: the 300 latency samples are
    // fixed by (seed, key), so the check on their quantiles does not depend on luck, only on
    // Gazua deciding the right distribution and delivering what it decided.
    let tasks: Vec<_> = (0..25)
        .map(|connection| {
            let addr = server.addr;
            tokio::spawn(async move {
                let mut sender = common::connect(addr).await;
                let mut samples = Vec::new();
                for i in 0..12 {
                    let key = format!("latency-{connection}-{i}");
                    let headers = [
                        ("x-gazua-latency", "lognormal(p50=40ms, p99=200ms)"),
                        ("x-gazua-key", key.as_str()),
                    ];
                    let start = Instant::now();
                    let reply = send_on(
                        &mut sender,
                        addr,
                        "POST",
                        "/v1/payments/confirm",
                        &headers,
                        &fresh_confirm_body(),
                    )
                    .await;
                    samples.push((start.elapsed(), reply.decided_latency()));
                }
                samples
            })
        })
        .collect();
    let mut observed = Vec::new();
    let mut decided = Vec::new();
    for task in tasks {
        for (elapsed, asked) in task.await.unwrap() {
            // Never early: the decided latency is the least a client waits.
            assert!(
                elapsed >= asked,
                "answered after {elapsed:?}, decided {asked:?}"
            );
            observed.push(elapsed);
            decided.push(asked);
        }
    }
    observed.sort();
    decided.sort();
    for (q, asked) in [(0.50, 0.040), (0.99, 0.200)] {
        let d = quantile(&decided, q).as_secs_f64();
        let o = quantile(&observed, q).as_secs_f64();
        let bound = if q < 0.9 { 0.15 } else { 0.25 };
        assert!(
            (d / asked - 1.0).abs() <= bound,
            "decided p{} {d:.4}s, asked {asked}s",
            q * 100.0
        );
        assert!(
            (o / asked - 1.0).abs() <= bound,
            "observed p{} {o:.4}s, asked {asked}s",
            q * 100.0
        );
    }
}
