//! Profiles through real sockets and the real binary: rules, schedules agreed across instances,
//! the virtual capacity queue, `gazua check`, and switching profiles under load.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use common::{Binary, TestServer, confirm, send};
use http::StatusCode;
use serde_json::json;

fn write(dir: &tempfile::TempDir, name: &str, profile: serde_json::Value) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, serde_json::to_string_pretty(&profile).unwrap()).unwrap();
    path
}

fn confirm_body(amount: u64) -> String {
    let body: serde_json::Value = serde_json::from_str(&common::fresh_confirm_body()).unwrap();
    let mut body = body.as_object().unwrap().clone();
    body.insert("amount".into(), json!(amount));
    serde_json::Value::Object(body).to_string()
}

#[tokio::test]
async fn a_rule_on_the_amount_declines_exactly_those_requests_and_headers_still_win() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "big.json",
        json!({
            "name": "big-amounts",
            "defaults": {"outcome": "approved"},
            "rules": [{"when": {"json": "/amount", "gte": 1000000}, "then": {"outcome": "declined(EXCEED_MAX_AMOUNT)"}}]
        }),
    );
    let mut config = common::config();
    config.profile = Some(file.to_str().unwrap().to_owned());
    let server = TestServer::start(config).await;
    for (amount, declined) in [
        (999_999, false),
        (1_000_000, true),
        (5_000_000, true),
        (1, false),
    ] {
        let reply = send(
            server.addr,
            "POST",
            "/v1/payments/confirm",
            &[],
            &confirm_body(amount),
        )
        .await;
        if declined {
            assert_eq!(reply.json()["code"], "EXCEED_MAX_AMOUNT", "{amount}");
            assert_eq!(reply.source_of("outcome"), "rule");
        } else {
            assert_eq!(reply.status, StatusCode::OK, "{amount}");
        }
    }
    let reply = send(
        server.addr,
        "POST",
        "/v1/payments/confirm",
        &[("x-gazua-outcome", "approved")],
        &confirm_body(2_000_000),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "a header wins over the rule");
}

/// The phase `X-Gazua-Decision` reports.
async fn phase(addr: std::net::SocketAddr) -> String {
    confirm(addr, &[]).await.decided("phase")
}

#[test]
fn schedule_phases_switch_on_time_and_two_instances_agree() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir,
        "drill.json",
        json!({
            "name": "drill",
            "defaults": {"outcome": "approved"},
            "schedule": {"start": "boot", "repeat": true, "phases": [
                {"for": "1s", "name": "steady"},
                {"for": "1s", "name": "outage", "outcome": "100% error(PROVIDER_ERROR)"},
                {"for": "1s", "name": "recovery"}
            ]}
        }),
    );
    // A start a little in the future, on a whole second, shared by both instances.
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap();
    let start_secs = now.as_secs() + 2;
    let start = jiff::Timestamp::from_second(start_secs as i64)
        .unwrap()
        .to_string();
    let args = [
        "--profiles-dir",
        dir.path().to_str().unwrap(),
        "--profile",
        "drill",
        "--schedule-start",
        &start,
    ];
    let a = Binary::start(&args);
    let b = Binary::start(&args);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        assert_eq!(phase(a.addr).await, "-", "before the start, no phase");
        // Sample both instances every 20 ms for 3.5 s; away from the switching moments
        // (± 100 ms) the phase must be the scheduled one, on both.
        let mut seen = std::collections::BTreeSet::new();
        loop {
            let t = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs_f64()
                - start_secs as f64;
            if t > 3.5 {
                break;
            }
            let (pa, pb) = (phase(a.addr).await, phase(b.addr).await);
            let after = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs_f64()
                - start_secs as f64;
            let near_switch = [0.0, 1.0, 2.0, 3.0]
                .iter()
                .any(|s| (t - s).abs() < 0.1 || (after - s).abs() < 0.1 || (t < *s && after > *s));
            if !near_switch && t > 0.0 {
                let expected = ["steady", "outage", "recovery", "steady"][(t as usize) % 4 % 3];
                assert_eq!(pa, expected, "instance a at {t:.3}s");
                assert_eq!(pb, expected, "instance b at {t:.3}s");
                seen.insert(pa);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(seen.len(), 3, "every phase was seen: {seen:?}");
    });
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn capacity_queues_past_its_slots_then_overflows() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "pg.json",
        json!({
            "name": "small-pg",
            "defaults": {"outcome": "approved", "latency": "100ms"},
            "capacity": {"concurrency": 50, "queue": 100, "overflow": "throttled"}
        }),
    );
    let mut config = common::config();
    config.profile = Some(file.to_str().unwrap().to_owned());
    let server = TestServer::start(config).await;

    // Offered load on the paused clock: arrivals exactly `gap` apart. 50 slots × 100 ms serve
    // 500 rps.
    async fn offer(
        addr: std::net::SocketAddr,
        rps: u32,
        count: u32,
    ) -> Vec<(Duration, StatusCode)> {
        let gap = Duration::from_secs(1) / rps;
        let start = tokio::time::Instant::now();
        let tasks: Vec<_> = (0..count)
            .map(|i| {
                tokio::spawn(async move {
                    tokio::time::sleep_until(start + gap * i).await;
                    let reply = confirm(addr, &[]).await;
                    (reply.decided_latency(), reply.status)
                })
            })
            .collect();
        let mut out = Vec::new();
        for task in tasks {
            out.push(task.await.unwrap());
        }
        out
    }

    let light = offer(server.addr, 200, 200).await;
    assert!(
        light
            .iter()
            .all(|(latency, status)| *status == StatusCode::OK
                && *latency == Duration::from_millis(100)),
        "under capacity every request takes its 100 ms"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;

    let heavy = offer(server.addr, 800, 800).await;
    let admitted: Vec<Duration> = heavy
        .iter()
        .filter(|(_, s)| *s == StatusCode::OK)
        .map(|(l, _)| *l)
        .collect();
    let throttled = heavy
        .iter()
        .filter(|(_, s)| *s == StatusCode::FORBIDDEN)
        .count();
    assert_eq!(admitted.len() + throttled, 800);
    assert!(
        throttled > 100,
        "past the queue, overflow: {throttled} throttled"
    );
    // The wait grows with the backlog: the first requests wait nothing, later ones up to the
    // full queue's worth (100 queued ÷ 500 rps = 200 ms) on top of their 100 ms.
    assert_eq!(admitted[0], Duration::from_millis(100));
    let longest = admitted.iter().max().unwrap();
    assert!(
        *longest > Duration::from_millis(250) && *longest <= Duration::from_millis(310),
        "longest {longest:?}"
    );
    let early: Duration = admitted[..20].iter().sum::<Duration>() / 20;
    let late: Duration = admitted[admitted.len() - 20..].iter().sum::<Duration>() / 20;
    assert!(
        late > early + Duration::from_millis(100),
        "latency grows with load: {early:?} → {late:?}"
    );
}

#[test]
fn gazua_check_locates_each_error() {
    let dir = tempfile::tempdir().unwrap();
    let typo = write(
        &dir,
        "typo.json",
        json!({"name": "typo", "defaults": {"latncy": "10ms"}}),
    );
    let bad = write(
        &dir,
        "bad.json",
        json!({"name": "bad", "defaults": {"latency": "lognormal(p50=80, p99=900ms)"}}),
    );
    let orphan = write(
        &dir,
        "orphan.json",
        json!({"name": "orphan", "extends": "defualt"}),
    );
    let good = write(
        &dir,
        "good.json",
        json!({"name": "good", "extends": "default", "defaults": {"outcome": "99% approved, 1% declined"}}),
    );
    let run = |files: &[&std::path::Path]| {
        Command::new(env!("CARGO_BIN_EXE_gazua"))
            .arg("check")
            .args(files)
            .output()
            .unwrap()
    };
    let out = run(&[&typo, &bad, &orphan]);
    assert!(!out.status.success());
    let errors = String::from_utf8(out.stderr).unwrap();
    let line_of = |file: &std::path::Path| {
        errors
            .lines()
            .find(|l| l.starts_with(file.to_str().unwrap()))
            .unwrap_or_else(|| panic!("no error for {file:?} in {errors}"))
            .to_owned()
    };
    let (typo_line, bad_line, orphan_line) = (line_of(&typo), line_of(&bad), line_of(&orphan));
    for (line, needle) in [
        (&typo_line, "latncy"),
        (&bad_line, "p50=80"),
        (&orphan_line, "defualt"),
    ] {
        assert!(line.contains(needle), "{line}");
        // file:line:col: …
        let rest = line.split_once(".json:").unwrap().1;
        let mut parts = rest.splitn(3, ':');
        assert!(parts.next().unwrap().parse::<u32>().unwrap() > 0, "{line}");
        assert!(parts.next().unwrap().parse::<u32>().unwrap() > 0, "{line}");
    }
    assert!(run(&[&good]).status.success());
}

#[test]
fn sighup_and_the_admin_route_switch_behaviour_under_load_with_no_failed_request() {
    let dir = tempfile::tempdir().unwrap();
    let profile = |outcome: &str| json!({"name": "live", "defaults": {"outcome": outcome}});
    write(&dir, "live.json", profile("approved"));
    let gazua = Binary::start(&[
        "--profiles-dir",
        dir.path().to_str().unwrap(),
        "--profile",
        "live",
        "--admin-token",
        "s3cret",
    ]);
    let runtime = common::runtime();
    let addr = gazua.addr;
    runtime.block_on(async {
        // Load: 8 clients on keep-alive connections, counting answers by status until stopped.
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let failures = Arc::new(AtomicU32::new(0));
        let clients: Vec<_> = (0..8)
            .map(|_| {
                let (stop, failures) = (stop.clone(), failures.clone());
                tokio::spawn(async move {
                    let mut sender = common::connect(addr).await;
                    let mut answered = 0u32;
                    while !stop.load(Ordering::Relaxed) {
                        let body = common::fresh_confirm_body();
                        let request = http::Request::post("/v1/payments/confirm")
                            .header("host", "gazua")
                            .header("content-type", "application/json")
                            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
                            .unwrap();
                        match sender.send_request(request).await {
                            Ok(response) if response.status().as_u16() < 500 => answered += 1,
                            _ => {
                                failures.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    answered
                })
            })
            .collect();

        assert_eq!(confirm(addr, &[]).await.status, StatusCode::OK);
        write(&dir, "live.json", profile("declined"));
        gazua.signal("-HUP");
        let switched = async {
            while confirm(addr, &[]).await.status != StatusCode::FORBIDDEN {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), switched)
            .await
            .expect("SIGHUP reloaded the profile");

        // A broken file is refused; the profile in force keeps serving.
        std::fs::write(
            dir.path().join("live.json"),
            "{\"name\": \"live\", \"defaults\": {\"latency\": \"soon\"}}",
        )
        .unwrap();
        gazua.signal("-HUP");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(confirm(addr, &[]).await.status, StatusCode::FORBIDDEN);

        let denied = send(addr, "PUT", "/__gazua/profile", &[], r#"{"name":"happy"}"#).await;
        assert_eq!(denied.status, StatusCode::UNAUTHORIZED);
        let switched = send(
            addr,
            "PUT",
            "/__gazua/profile",
            &[("authorization", "Bearer s3cret")],
            r#"{"name":"happy"}"#,
        )
        .await;
        assert_eq!(switched.status, StatusCode::OK);
        assert_eq!(confirm(addr, &[]).await.status, StatusCode::OK);
        assert_eq!(confirm(addr, &[]).await.decided("profile"), "happy");

        stop.store(true, Ordering::Relaxed);
        let mut answered = 0;
        for client in clients {
            answered += client.await.unwrap();
        }
        assert!(answered > 100, "the load ran: {answered} answers");
        assert_eq!(
            failures.load(Ordering::Relaxed),
            0,
            "no request failed across the switches"
        );
    });
}

#[tokio::test]
async fn a_request_can_pick_another_loaded_profile() {
    let server = TestServer::default().await;
    let reply = confirm(server.addr, &[("x-gazua-profile", "saturation")]).await;
    assert_eq!(reply.decided("profile"), "saturation");
    let unknown = confirm(server.addr, &[("x-gazua-profile", "nope")]).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(unknown.json()["message"].as_str().unwrap().contains("nope"));
}

#[tokio::test]
async fn a_custom_route_answers_its_template_and_throttles_with_429() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "points.json",
        json!({
            "name": "points",
            "custom_routes": [{"method": "POST", "path": "/v1/points/{userId}/use",
                               "body": {"userId": "{{path.userId}}", "used": "{{body./points}}", "status": "USED"}}]
        }),
    );
    let mut config = common::config();
    config.profile = Some(file.to_str().unwrap().to_owned());
    let server = TestServer::start(config).await;
    let reply = send(
        server.addr,
        "POST",
        "/v1/points/u-42/use",
        &[],
        r#"{"points": 300}"#,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.json(),
        json!({"userId": "u-42", "used": 300, "status": "USED"})
    );
    let throttled = send(
        server.addr,
        "POST",
        "/v1/points/u-42/use",
        &[("x-gazua-outcome", "throttled")],
        "{}",
    )
    .await;
    assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(throttled.headers.contains_key("retry-after"));
}
