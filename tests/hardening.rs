//! One client against everyone else: silent and slow connections are closed on their clocks,
//! the cap makes room for the health check, a broken body is a PG-shaped 4xx, the ops routes
//! live on the admin port only, and the admin port answers readiness through the drain.

mod common;

use std::time::Duration;

use common::{Binary, TestServer, send, send_on};
use http::StatusCode;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Reads until the server closes the connection; the bytes it sent and when it closed.
async fn until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return bytes,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
        }
    }
}

/// `gazua_connections_closed_total{reason}` as the server's `/metrics` says (on a new connection).
async fn closed_by_gazua(addr: std::net::SocketAddr, reason: &str) -> f64 {
    let metrics = send(addr, "GET", "/metrics", &[], "").await;
    let text = String::from_utf8_lossy(&metrics.body);
    metric(
        &text,
        &format!(r#"gazua_connections_closed_total{{reason="{reason}"}}"#),
    )
}

/// A metric's value in the Prometheus text of `/metrics`.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_silent_connection_is_closed_at_the_first_request_deadline() {
    let mut config = common::config();
    config.header_timeout = Duration::from_secs(3);
    let server = TestServer::start(config).await;
    let start = Instant::now();
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    // A slow-header client: a few bytes of a head, then nothing more.
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"GET /__gazua/hea").await.unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(60), async {
        until_closed(&mut silent).await;
        until_closed(&mut slow).await;
    })
    .await;
    assert!(closed.is_ok(), "silent connections still open after 60 s");
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_secs(3) && elapsed < Duration::from_secs(4),
        "closed after {elapsed:?}, expected the 3 s deadline"
    );
    assert_eq!(
        closed_by_gazua(server.addr, "first_request_timeout").await,
        2.0
    );
}

#[tokio::test(start_paused = true)]
async fn the_first_request_deadline_does_not_cut_an_idle_keep_alive_connection() {
    let mut config = common::config();
    config.header_timeout = Duration::from_secs(3);
    let server = TestServer::start(config).await;
    let mut sender = common::connect(server.addr).await;
    let first = send_on(&mut sender, server.addr, "GET", "/__gazua/health", &[], "").await;
    assert_eq!(first.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_secs(65)).await;
    let second = send_on(&mut sender, server.addr, "GET", "/__gazua/health", &[], "").await;
    assert_eq!(second.status, StatusCode::OK, "idle 65 s between requests");
}

#[tokio::test(start_paused = true)]
async fn a_slowloris_body_gets_a_408_at_the_body_deadline_and_does_not_hold_shutdown() {
    let mut config = common::config();
    config.body_timeout = Duration::from_secs(2);
    config.shutdown_grace = Duration::from_secs(20);
    let server = TestServer::start(config).await;
    let head = "POST /v1/payments/confirm HTTP/1.1\r\nhost: gazua\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{";

    let start = Instant::now();
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(head.as_bytes()).await.unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(60), until_closed(&mut slow))
        .await
        .expect("a body that never completes is answered");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains(r#""code":"GAZUA_BODY_TIMEOUT""#),
        "{answer}"
    );
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_secs(2) && elapsed < Duration::from_secs(3),
        "answered after {elapsed:?}, expected the 2 s body deadline"
    );

    // A slow body in flight when shutdown starts ends at its deadline, not at the grace.
    let mut held = TcpStream::connect(server.addr).await.unwrap();
    held.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let start = Instant::now();
    server.shutdown().await;
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "shutdown took {:?}; the slow body held it",
        start.elapsed()
    );
    let answer = String::from_utf8_lossy(&until_closed(&mut held).await).into_owned();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}

#[tokio::test]
async fn a_malformed_chunked_body_is_a_pg_shaped_400() {
    let server = TestServer::default().await;
    let request = "POST /v1/payments/confirm HTTP/1.1\r\nhost: gazua\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\nnot-a-chunk-size\r\n{}\r\n0\r\n\r\n";
    let end = tokio::time::timeout(Duration::from_secs(10), common::raw(server.addr, request))
        .await
        .expect("answered, not held");
    let answer = String::from_utf8_lossy(&end.bytes).into_owned();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer:?}");
    assert!(
        answer.contains(r#""code":"GAZUA_MALFORMED_BODY""#),
        "{answer}"
    );
}

#[tokio::test]
async fn silent_connections_at_the_cap_do_not_starve_the_health_check() {
    let mut config = common::config();
    config.max_connections = 20;
    let server = TestServer::start(config).await;
    let mut silent = Vec::new();
    for _ in 0..20 {
        silent.push(TcpStream::connect(server.addr).await.unwrap());
    }
    // Accepted in order after the 20 silent ones: at the cap, the oldest silent one goes.
    let mut sender = tokio::time::timeout(Duration::from_secs(10), common::connect(server.addr))
        .await
        .expect("connected");
    let health = tokio::time::timeout(
        Duration::from_secs(10),
        send_on(&mut sender, server.addr, "GET", "/__gazua/health", &[], ""),
    )
    .await
    .expect("the health check answers at the cap");
    assert_eq!(health.status, StatusCode::OK);
    let metrics = send_on(&mut sender, server.addr, "GET", "/metrics", &[], "").await;
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(
        metric(
            &text,
            r#"gazua_connections_closed_total{reason="shed_silent"}"#
        ) >= 1.0
    );
    let oldest = tokio::time::timeout(Duration::from_secs(10), until_closed(&mut silent[0])).await;
    assert!(oldest.is_ok(), "the oldest silent connection was closed");
}

#[tokio::test]
async fn with_an_admin_port_the_pg_port_refuses_the_ops_and_admin_routes() {
    let mut config = common::config();
    config.admin_listen = Some("127.0.0.1:0".parse().unwrap());
    config.admin_token = Some("s3cret".to_owned());
    let server = TestServer::start(config).await;
    let admin = server.admin.unwrap();
    let auth = [("authorization", "Bearer s3cret")];
    let switch = r#"{"name":"default"}"#;
    for (method, path, body) in [
        ("GET", "/metrics", ""),
        ("GET", "/__gazua/ready", ""),
        ("GET", "/__gazua/profile", ""),
        ("PUT", "/__gazua/profile", switch),
    ] {
        let reply = send(server.addr, method, path, &auth, body).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{method} {path}");
        assert!(
            reply.json()["message"]
                .as_str()
                .unwrap()
                .contains("--admin-listen"),
            "{method} {path}"
        );
    }
    // Health stays on the traffic port: load balancers probe the port they send to.
    let health = send(server.addr, "GET", "/__gazua/health", &[], "").await;
    assert_eq!(health.status, StatusCode::OK);
    let switched = send(admin, "PUT", "/__gazua/profile", &auth, switch).await;
    assert_eq!(switched.status, StatusCode::OK);
    let wrong = send(
        admin,
        "PUT",
        "/__gazua/profile",
        &[("authorization", "Bearer s3cres")],
        switch,
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(start_paused = true)]
async fn an_idle_http2_connection_is_closed_after_the_idle_timeout() {
    let server = TestServer::default().await;
    let stream = TcpStream::connect(server.addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    let connection = tokio::spawn(connection);
    let request = http::Request::get(format!("http://{}/__gazua/health", server.addr))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.version(), http::Version::HTTP_2);
    drop(response);
    // Kept past load balancers' 60 s idle timeout, closed after the 90 s one.
    tokio::time::sleep(Duration::from_secs(75)).await;
    assert!(!connection.is_finished(), "closed before 75 s");
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert!(
        connection.is_finished(),
        "an idle HTTP/2 connection still open after 95 s"
    );
    assert_eq!(closed_by_gazua(server.addr, "idle_timeout").await, 1.0);
}

/// Polls `/__gazua/ready` on `addr` until it answers `status`, for at most `limit`.
async fn wait_ready_status(addr: std::net::SocketAddr, status: StatusCode, limit: Duration) {
    let start = std::time::Instant::now();
    loop {
        let reply = send(addr, "GET", "/__gazua/ready", &[], "").await;
        if reply.status == status {
            return;
        }
        assert!(start.elapsed() < limit, "ready stayed {}", reply.status);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn after_sigterm_the_admin_port_answers_ready_503_while_the_pg_port_refuses() {
    let mut gazua = Binary::start(&["--admin-listen", "127.0.0.1:0", "--shutdown-grace", "6s"]);
    let admin = gazua
        .admin
        .expect("the serving line names the admin address");
    let runtime = common::runtime();
    let addr = gazua.addr;
    runtime.block_on(async {
        wait_ready_status(admin, StatusCode::OK, Duration::from_secs(5)).await;
        // A request held past the signal keeps the drain going for most of the grace.
        let held = tokio::spawn(async move {
            common::confirm(addr, &[("x-gazua-latency", "50s")])
                .await
                .status
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        gazua.signal("-TERM");
        wait_ready_status(
            admin,
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(2),
        )
        .await;
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "the PG port still accepts after SIGTERM"
        );
        // Still answering 503 later in the drain, and the held request is answered.
        tokio::time::sleep(Duration::from_millis(500)).await;
        wait_ready_status(
            admin,
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(1),
        )
        .await;
        assert_eq!(held.await.unwrap(), StatusCode::OK);
    });
    assert!(gazua.wait(Duration::from_secs(15)).success(), "exit 0");
}
