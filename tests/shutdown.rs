//! Graceful shutdown of the real binary: every accepted request is answered, also the ones
//! still waiting on their latency, then the process exits 0.

mod common;

use std::time::{Duration, Instant};

use common::{Binary, confirm, send};
use http::StatusCode;

/// Polls `/metrics` until `gazua_in_flight_requests` reaches `n`.
async fn wait_in_flight(addr: std::net::SocketAddr, n: i64) {
    let start = Instant::now();
    loop {
        let metrics = send(addr, "GET", "/metrics", &[], "").await;
        let text = String::from_utf8_lossy(&metrics.body).into_owned();
        let in_flight: i64 = text
            .lines()
            .find_map(|l| l.strip_prefix("gazua_in_flight_requests "))
            .map(|v| v.trim().parse().unwrap())
            .unwrap();
        // The /metrics request itself is in flight too.
        if in_flight > n {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "only {in_flight} in flight"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn a_thousand_delayed_requests_are_all_answered_across_sigterm() {
    let mut gazua = Binary::start(&[]);
    let runtime = common::runtime();
    let addr = gazua.addr;
    let statuses = runtime.block_on(async {
        let tasks: Vec<_> = (0..1000)
            .map(|_| {
                tokio::spawn(
                    async move { confirm(addr, &[("x-gazua-latency", "3s")]).await.status },
                )
            })
            .collect();
        wait_in_flight(addr, 1000).await;
        gazua.signal("-TERM");
        let mut statuses = Vec::new();
        for task in tasks {
            statuses.push(task.await.expect("every request is answered"));
        }
        statuses
    });
    assert!(statuses.iter().all(|s| *s == StatusCode::OK));
    assert_eq!(statuses.len(), 1000);
    assert!(gazua.wait(Duration::from_secs(20)).success(), "exit 0");
}

#[test]
fn waits_longer_than_the_grace_are_answered_early_and_no_new_connection_is_taken() {
    let mut gazua = Binary::start(&["--shutdown-grace", "3s"]);
    let runtime = common::runtime();
    let addr = gazua.addr;
    let start = Instant::now();
    runtime.block_on(async {
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                tokio::spawn(
                    async move { confirm(addr, &[("x-gazua-latency", "50s")]).await.status },
                )
            })
            .collect();
        wait_in_flight(addr, 50).await;
        gazua.signal("-TERM");
        // The listener closes at once: a new connection is refused while the held requests
        // are still waiting.
        let refused_by = Instant::now() + Duration::from_secs(2);
        loop {
            if tokio::net::TcpStream::connect(addr).await.is_err() {
                break;
            }
            assert!(
                Instant::now() < refused_by,
                "still accepting connections after SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            tasks.iter().all(|t| !t.is_finished()),
            "held requests were answered before the grace"
        );
        for task in tasks {
            assert_eq!(task.await.unwrap(), StatusCode::OK);
        }
    });
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "answered within the grace, not after 50 s"
    );
    assert!(gazua.wait(Duration::from_secs(10)).success());
}
