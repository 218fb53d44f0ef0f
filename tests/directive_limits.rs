//! Hostile and near-miss directives through real sockets: the length and item caps answer a
//! 400 naming the cap (quickly, without echoing the input), and the body tag's marker is
//! matched in any case while a misspelt one is a 400, never a silent approval.

mod common;

use std::time::{Duration, Instant};

use common::{TestServer, send};
use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A `percentiles(…)` of `n` distinct arguments: the shape of the issue's 1.66 s tag.
fn percentiles(n: usize) -> String {
    let args: Vec<String> = (0..n)
        .map(|i| format!("p{}.{:04}={}us", 1 + i / 10_000, i % 10_000, i + 1))
        .collect();
    format!("percentiles({})", args.join(", "))
}

/// A `percentiles(…)` of at least `bytes` bytes.
fn percentiles_of(bytes: usize) -> String {
    // Each argument takes 15 to 20 bytes.
    let mut n = bytes / 20;
    loop {
        let text = percentiles(n);
        if text.len() >= bytes {
            return text;
        }
        n += n / 10 + 1;
    }
}

fn confirm_body(order_name: &str) -> String {
    let n = rand_suffix();
    format!(
        r#"{{"paymentKey":"pk_limits_{n}","orderId":"order-{n}","amount":15000,"orderName":"{order_name}"}}"#
    )
}

fn rand_suffix() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(100_000);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

fn message(reply: &common::Reply) -> String {
    reply.json()["message"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_megabyte_directive_in_a_body_tag_is_a_400_naming_the_cap() {
    let server = TestServer::default().await;
    let directive = percentiles_of(1_000_000);
    let body = confirm_body(&format!("[gazua: latency={directive}]"));
    let start = Instant::now();
    let reply = send(server.addr, "POST", "/v1/payments/confirm", &[], &body).await;
    let elapsed = start.elapsed();
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["code"], "GAZUA_INVALID_DIRECTIVE");
    let message = message(&reply);
    assert!(
        message.starts_with("[gazua: …] tag: the directive is ")
            && message.ends_with("expected at most 4096 bytes (Gazua's directive length cap)"),
        "{message}"
    );
    // The answer does not echo the megabyte back.
    assert!(reply.body.len() < 400, "{} bytes", reply.body.len());
    // Wide: today's main parsed this for seconds of CPU (debug build: far longer).
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
}

#[tokio::test]
async fn a_directive_header_past_the_cap_is_a_400_and_past_the_head_limit_a_431() {
    let server = TestServer::default().await;
    // 60 KB fits hyper's 64 KiB head limit: Gazua's cap answers.
    let directive = percentiles_of(60_000);
    assert!(directive.len() < 63_000);
    let reply = common::confirm(server.addr, &[("x-gazua-latency", &directive)]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        message(&reply),
        format!(
            "X-Gazua-Latency: the directive is {} bytes long; expected at most 4096 bytes \
             (Gazua's directive length cap)",
            directive.len()
        )
    );

    // Under the length cap but past the argument cap: named too.
    let directive = percentiles(101);
    assert!(directive.len() < 4096);
    let reply = common::confirm(server.addr, &[("x-gazua-latency", &directive)]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let text = message(&reply);
    assert!(
        text.contains("expected at most 100 arguments in a call (Gazua's cap on items)"),
        "{text}"
    );
    assert!(text.len() < 400, "{text}");

    // A 1 MB header never reaches Gazua: hyper refuses the head with a bare 431.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /v1/payments/confirm HTTP/1.1\r\nhost: gazua\r\nx-gazua-latency: {}\r\n\r\n",
        percentiles_of(1_000_000)
    );
    // The server may answer and close before reading it all: a failed write is fine.
    let _ = stream.write_all(head.as_bytes()).await;
    let mut answer = vec![0u8; 64];
    let n = stream.read(&mut answer).await.unwrap_or(0);
    assert!(
        answer[..n].starts_with(b"HTTP/1.1 431"),
        "{:?}",
        String::from_utf8_lossy(&answer[..n])
    );
}

#[tokio::test]
async fn the_tag_marker_is_matched_in_any_case() {
    let server = TestServer::default().await;
    for marker in ["[Gazua:", "[GAZUA:", "[gazua:"] {
        let body = confirm_body(&format!("socks {marker} outcome=declined]"));
        let reply = send(server.addr, "POST", "/v1/payments/confirm", &[], &body).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{marker}");
        assert_eq!(reply.json()["code"], "REJECT_CARD_PAYMENT", "{marker}");
    }

    // A checkout created with a capitalised tag carries it in its minted key: the confirm of
    // that key (which has no tag of its own) follows it.
    let n = rand_suffix();
    let create = format!(
        r#"{{"method":"CARD","amount":15000,"orderId":"order-{n}","orderName":"[Gazua: outcome=declined]","successUrl":"https://shop.test/ok","failUrl":"https://shop.test/fail"}}"#
    );
    let created = send(server.addr, "POST", "/v1/payments", &[], &create).await;
    assert_eq!(created.status, StatusCode::OK);
    let key = created.json()["paymentKey"].as_str().unwrap().to_owned();
    let body = format!(r#"{{"paymentKey":"{key}","orderId":"order-{n}","amount":15000}}"#);
    let reply = send(server.addr, "POST", "/v1/payments/confirm", &[], &body).await;
    assert_eq!(reply.json()["code"], "REJECT_CARD_PAYMENT");
}

#[tokio::test]
async fn a_misspelt_tag_is_a_400_and_lookalike_text_is_not() {
    let server = TestServer::default().await;
    for near_miss in [
        "[gazau: outcome=declined]",
        "[gazua outcome=declined]",
        "[ Gazua: outcome=declined]",
    ] {
        let body = confirm_body(&format!("socks {near_miss}"));
        let reply = send(server.addr, "POST", "/v1/payments/confirm", &[], &body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{near_miss}");
        assert_eq!(reply.json()["code"], "GAZUA_INVALID_DIRECTIVE");
        let text = message(&reply);
        assert!(
            text.contains("expected the marker '[gazua:' (any case)"),
            "{text}"
        );
    }
    for legit in [
        "[Gazua Store] socks",
        "[gaza: news] socks",
        "[SALE] outcome",
    ] {
        let body = confirm_body(legit);
        let reply = send(server.addr, "POST", "/v1/payments/confirm", &[], &body).await;
        assert_eq!(reply.status, StatusCode::OK, "{legit}: {:?}", reply.body);
    }
}
