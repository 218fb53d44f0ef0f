//! Answers leave at the decided moment and never before it: the precise timer on its own (many
//! waiters, cancelled waits, two runtimes in one process) and through the server's sockets.
//! Its own test binary, so fewer tests compete for the two cores while it measures. Only the
//! hard bound (never early) is asserted; how late answers are depends on the machine's load
//! and is measured by `benches/timer.sh`.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant as RealInstant};

use bytes::Bytes;
use common::{TestServer, fresh_confirm_body};
use gazua_pay::server::timer::{FINE_SPAN, Timer};
use http::Request;
use http_body_util::{BodyExt, Full};
use tokio::time::Instant;

/// Waits on one timer from one runtime: every wait either fires, at or after its deadline, or
/// was cancelled; cancelled waits leave nothing in the heap once their moment has passed.
async fn waiters_on_one_timer(precision: Duration) {
    let timer = Arc::new(Timer::new(Some(precision)));
    assert!(timer.is_precise(), "the timerfd is available on Linux");
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..1_000u64 {
        // Deadlines from now to 8 ms: some wait only in the fine stage, some in both.
        let deadline = start + Duration::from_micros(i * 7_919 % 8_000);
        let timer = timer.clone();
        tasks.spawn(async move {
            if i % 3 == 0 {
                // Cancelled about a millisecond before its moment, often inside the fine stage:
                // the dropped wait must not hold up the others.
                let cancel_at = deadline.checked_sub(Duration::from_millis(1)).unwrap();
                tokio::select! {
                    () = timer.sleep_until(deadline) => {}
                    () = tokio::time::sleep_until(cancel_at) => return None,
                }
            } else {
                timer.sleep_until(deadline).await;
            }
            Some((deadline, Instant::now(), RealInstant::now()))
        });
    }
    let mut fired = 0;
    let all = async {
        while let Some(result) = tasks.join_next().await {
            if let Some((deadline, woke, real)) = result.unwrap() {
                assert!(woke >= deadline, "woke {:?} early", deadline - woke);
                assert!(real >= deadline.into_std(), "woke early on the real clock");
                fired += 1;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), all)
        .await
        .expect("every waiter fires or is cancelled");
    assert!(fired >= 666, "only {fired} waits fired");

    // Cancelled entries leave the heap once their moment has passed (one wake-up gap later).
    let last = start + Duration::from_millis(8) + FINE_SPAN + precision;
    tokio::time::sleep_until(last).await;
    let drained = async {
        while timer.pending() > 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), drained)
        .await
        .unwrap_or_else(|_| panic!("{} entries left in the heap", timer.pending()));
}

#[test]
fn many_waiters_fire_never_early_and_cancelled_ones_leave_nothing_on_two_runtimes_at_once() {
    // Two runtimes in one process, each with its own timer, at the finest setting and at the
    // default gap: a timer shared through a process-wide static would leave one side waiting.
    let runtimes: Vec<_> = [Duration::ZERO, Duration::from_micros(500)]
        .into_iter()
        .map(|precision| {
            std::thread::spawn(move || {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(waiters_on_one_timer(precision));
            })
        })
        .collect();
    for runtime in runtimes {
        runtime.join().expect("the runtime's waiters all finished");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_are_never_early_for_10000_keyed_requests() {
    let server = TestServer::default().await;
    const CONNECTIONS: usize = 40;
    const PER_CONNECTION: usize = 250;
    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|connection| {
            let addr = server.addr;
            tokio::spawn(async move {
                let mut sender = common::connect(addr).await;
                let mut samples = Vec::with_capacity(PER_CONNECTION);
                for i in 0..PER_CONNECTION {
                    // Small latencies, from none to a few milliseconds: some answered in the
                    // fine stage alone, some after a coarse sleep too.
                    let request = Request::post("/v1/payments/confirm")
                        .header("host", addr.to_string())
                        .header("content-type", "application/json")
                        .header("x-gazua-latency", "uniform(0ms, 5ms)")
                        .header("x-gazua-key", format!("early-{connection}-{i}"))
                        .body(Full::new(Bytes::from(fresh_confirm_body())))
                        .unwrap();
                    let start = RealInstant::now();
                    // Resolves when the response head has arrived: the first bytes.
                    let response = sender.send_request(request).await.expect("a response");
                    let elapsed = start.elapsed();
                    let (parts, body) = response.into_parts();
                    body.collect().await.expect("a whole body");
                    assert_eq!(parts.status, 200);
                    let reply = common::Reply {
                        status: parts.status,
                        headers: parts.headers,
                        body: Bytes::new(),
                    };
                    samples.push((elapsed, reply.decided_latency()));
                }
                samples
            })
        })
        .collect();
    let mut count = 0;
    for task in tasks {
        for (elapsed, decided) in task.await.unwrap() {
            // X-Gazua-Decision gives the latency to the microsecond, rounded to the nearest.
            assert!(
                elapsed + Duration::from_nanos(500) >= decided,
                "first byte after {elapsed:?}, decided {decided:?}"
            );
            count += 1;
        }
    }
    assert_eq!(count, CONNECTIONS * PER_CONNECTION);

    // The server's own view, to the nanosecond: no answer left before its moment, and every
    // answer's lateness was counted.
    let metrics = common::send(server.addr, "GET", "/metrics", &[], "").await;
    let metrics = String::from_utf8_lossy(&metrics.body);
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /metrics"))
    };
    assert_eq!(value("gazua_timer_early_total"), 0.0);
    assert_eq!(value("gazua_timer_lateness_seconds_count"), count as f64);
    server.shutdown().await;
}

#[test]
fn timer_precision_is_a_gap_zero_or_off_and_750us_by_default() {
    use clap::Parser;
    use gazua_pay::cli::Cli;
    let precision = |args: &[&str]| {
        let argv = ["gazua"].iter().chain(args);
        Cli::try_parse_from(argv)
            .unwrap()
            .serve
            .into_config(Vec::new())
            .timer_precision
    };
    assert_eq!(precision(&[]), Some(Duration::from_micros(750)));
    assert_eq!(
        precision(&["--timer-precision", "250us"]),
        Some(Duration::from_micros(250))
    );
    assert_eq!(precision(&["--timer-precision", "0"]), Some(Duration::ZERO));
    assert_eq!(precision(&["--timer-precision", "off"]), None);
}

#[tokio::test]
async fn with_the_timer_off_answers_still_wait_and_lateness_buckets_start_at_10us() {
    let mut config = common::config();
    config.timer_precision = None;
    let server = TestServer::start(config).await;
    let start = RealInstant::now();
    let reply = common::confirm(server.addr, &[("x-gazua-latency", "2ms")]).await;
    assert!(start.elapsed() >= Duration::from_millis(2));
    assert_eq!(reply.status, 200);
    let metrics = common::send(server.addr, "GET", "/metrics", &[], "").await;
    let metrics = String::from_utf8_lossy(&metrics.body);
    assert!(metrics.contains("gazua_timer_lateness_seconds_bucket{le=\"0.00001\"}"));
    assert!(metrics.contains("gazua_timer_lateness_seconds_count 1"));
    server.shutdown().await;
}

#[test]
fn a_timer_precision_past_the_fine_stage_is_refused() {
    let output = Command::new(env!("CARGO_BIN_EXE_gazua"))
        .args(["--timer-precision", "5ms"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("'5ms': expected a gap from 0 to 3ms"),
        "{stderr}"
    );
}
