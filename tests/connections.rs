//! Connection handling: idle keep-alive kept past load balancers' idle timeout, body limit.

mod common;

use std::time::Duration;

use common::{TestServer, send, send_on};
use http::StatusCode;
use hyper_util::rt::TokioIo;

#[tokio::test(start_paused = true)]
async fn an_idle_keep_alive_connection_survives_75_seconds() {
    let server = TestServer::default().await;
    let stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    let first = send_on(&mut sender, server.addr, "GET", "/__gazua/health", &[], "").await;
    assert_eq!(first.status, StatusCode::OK);
    // Paused time: the clock jumps straight to 75 s unless a timer fires before.
    tokio::time::sleep(Duration::from_secs(75)).await;
    assert!(
        !connection.is_finished(),
        "the server closed the idle connection"
    );
    let second = send_on(&mut sender, server.addr, "GET", "/__gazua/health", &[], "").await;
    assert_eq!(second.status, StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn an_idle_connection_is_closed_after_the_idle_timeout() {
    let mut config = common::config();
    config.idle_timeout = Duration::from_secs(90);
    let server = TestServer::start(config).await;
    let stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    send_on(&mut sender, server.addr, "GET", "/__gazua/health", &[], "").await;
    tokio::time::sleep(Duration::from_secs(95)).await;
    assert!(
        sender.ready().await.is_err() || connection.is_finished(),
        "still open after 95 s"
    );
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_pg_shaped_413() {
    let mut config = common::config();
    config.max_body = 1000;
    let server = TestServer::start(config).await;
    let body = format!(
        r#"{{"paymentKey":"{}","orderId":"order-0001","amount":1}}"#,
        "k".repeat(2000)
    );
    let reply = send(server.addr, "POST", "/v1/payments/confirm", &[], &body).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    let json = reply.json();
    assert!(json["code"].is_string());
    assert!(json["message"].as_str().unwrap().contains("1000"));
}

#[tokio::test]
async fn ops_routes_ignore_directives() {
    let server = TestServer::default().await;
    for path in [
        "/__gazua/health",
        "/__gazua/ready",
        "/metrics",
        "/__gazua/profile",
    ] {
        let reply = send(
            server.addr,
            "GET",
            path,
            &[("x-gazua-fault", "reset"), ("x-gazua-latncy", "bad")],
            "",
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert!(reply.headers.get("x-gazua-decision").is_none());
    }
}

#[tokio::test]
async fn the_admin_port_serves_the_ops_routes_only() {
    let mut config = common::config();
    config.admin_listen = Some("127.0.0.1:0".parse().unwrap());
    let server = TestServer::start(config).await;
    let admin = server.admin.expect("an admin port");
    assert_ne!(admin, server.addr);
    for path in ["/__gazua/health", "/__gazua/ready", "/metrics"] {
        assert_eq!(
            send(admin, "GET", path, &[], "").await.status,
            StatusCode::OK,
            "{path}"
        );
    }
    let pg = send(
        admin,
        "POST",
        "/v1/payments/confirm",
        &[],
        &common::fresh_confirm_body(),
    )
    .await;
    assert_eq!(
        pg.status,
        StatusCode::NOT_FOUND,
        "no PG API on the admin port"
    );
    // The main port keeps its ops routes too (load balancers probe it).
    assert_eq!(
        send(server.addr, "GET", "/__gazua/health", &[], "")
            .await
            .status,
        StatusCode::OK
    );
}
