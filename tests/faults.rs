//! Each transport fault, observed by a raw TCP client as the fault it names.

mod common;

use std::io::ErrorKind;
use std::time::Duration;

use common::{TestServer, raw, raw_confirm};

fn status_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// The body after the head, and the head's Content-Length.
fn split(bytes: &[u8]) -> (usize, Vec<u8>) {
    let text = String::from_utf8_lossy(bytes);
    let (head, _) = text.split_once("\r\n\r\n").expect("a complete head");
    let length = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(|v| v.parse().unwrap())
        })
        .expect("a content-length");
    (length, bytes[head.len() + 4..].to_vec())
}

#[tokio::test]
async fn reset_is_a_tcp_rst_with_no_response() {
    let server = TestServer::default().await;
    let end = raw(server.addr, &raw_confirm("x-gazua-fault: reset\r\n")).await;
    assert!(
        end.bytes.is_empty(),
        "no response bytes, got {:?}",
        String::from_utf8_lossy(&end.bytes)
    );
    assert_eq!(end.end.unwrap_err().kind(), ErrorKind::ConnectionReset);
}

#[tokio::test]
async fn close_is_a_clean_fin_with_no_response() {
    let server = TestServer::default().await;
    let end = raw(server.addr, &raw_confirm("x-gazua-fault: close\r\n")).await;
    assert!(end.bytes.is_empty());
    assert!(end.end.is_ok(), "clean EOF, got {:?}", end.end);
}

#[tokio::test]
async fn garbage_is_bytes_that_are_not_http_then_fin() {
    let server = TestServer::default().await;
    let end = raw(server.addr, &raw_confirm("x-gazua-fault: garbage\r\n")).await;
    assert!(end.bytes.len() >= 64, "got {} bytes", end.bytes.len());
    assert!(!end.bytes.starts_with(b"HTTP/"));
    assert!(end.end.is_ok());
}

#[tokio::test]
async fn malformed_has_a_fine_head_and_a_broken_json_body() {
    let server = TestServer::default().await;
    let end = raw(server.addr, &raw_confirm("x-gazua-fault: malformed\r\n")).await;
    assert_eq!(status_line(&end.bytes), "HTTP/1.1 200 OK");
    let (length, body) = split(&end.bytes);
    assert_eq!(length, body.len(), "the length is honest");
    assert!(!body.is_empty());
    assert!(
        serde_json::from_slice::<serde_json::Value>(&body).is_err(),
        "broken JSON: {:?}",
        String::from_utf8_lossy(&body)
    );
}

#[tokio::test]
async fn truncated_promises_more_than_it_sends_then_closes() {
    let server = TestServer::default().await;
    let end = raw(server.addr, &raw_confirm("x-gazua-fault: truncated\r\n")).await;
    assert_eq!(status_line(&end.bytes), "HTTP/1.1 200 OK");
    let (length, body) = split(&end.bytes);
    assert!(
        body.len() < length,
        "sent {} of the {length} bytes promised",
        body.len()
    );
    assert!(end.end.is_ok());
}

#[tokio::test]
async fn hang_sends_nothing_until_max_latency_then_fin() {
    let mut config = common::config();
    config.max_latency = Duration::from_millis(400);
    let server = TestServer::start(config).await;
    let end = raw(server.addr, &raw_confirm("x-gazua-fault: hang\r\n")).await;
    assert!(end.bytes.is_empty());
    assert!(end.end.is_ok());
    assert!(
        end.elapsed >= Duration::from_millis(400),
        "hung for {:?}",
        end.elapsed
    );
}

#[tokio::test]
async fn dribble_sends_the_head_then_trickles_the_body() {
    let server = TestServer::default().await;
    // 2000 B/s: any body of a few hundred bytes takes a noticeable time.
    let end = raw(
        server.addr,
        &raw_confirm("x-gazua-fault: dribble(2KB/s)\r\n"),
    )
    .await;
    assert_eq!(status_line(&end.bytes), "HTTP/1.1 200 OK");
    let (length, body) = split(&end.bytes);
    assert_eq!(length, body.len(), "the whole body arrives");
    let expected = Duration::from_secs_f64(body.len() as f64 / 2000.0);
    assert!(
        end.elapsed >= expected.mul_f64(0.8),
        "{} bytes in {:?}, expected about {expected:?}",
        body.len(),
        end.elapsed
    );
}

#[tokio::test]
async fn lost_answers_with_its_fault() {
    let server = TestServer::default().await;
    let end = raw(
        server.addr,
        &raw_confirm("x-gazua-outcome: lost(reset)\r\n"),
    )
    .await;
    assert!(end.bytes.is_empty());
    assert_eq!(end.end.unwrap_err().kind(), ErrorKind::ConnectionReset);
}

#[tokio::test]
async fn a_fault_mix_gives_each_fault_about_its_share() {
    let server = TestServer::default().await;
    let mut resets = 0;
    for _ in 0..400 {
        let end = raw(server.addr, &raw_confirm("x-gazua-fault: 25% reset\r\n")).await;
        match end.end {
            Err(e) if e.kind() == ErrorKind::ConnectionReset => resets += 1,
            Ok(()) => assert!(end.bytes.starts_with(b"HTTP/1.1 ")),
            Err(e) => panic!("unexpected end: {e}"),
        }
    }
    // Binomial(400, 0.25): mean 100, sd 8.7; ±5 sd.
    assert!((57..=143).contains(&resets), "{resets} resets of 400");
}

#[tokio::test]
async fn dribble_ends_by_max_latency_with_the_whole_body() {
    let mut config = common::config();
    config.max_latency = Duration::from_millis(500);
    let server = TestServer::start(config).await;
    // 100 B/s: a body of about 1.2 KB would take 12 s; --max-latency is 0.5 s.
    let end = raw(
        server.addr,
        &raw_confirm("x-gazua-fault: dribble(100B/s)\r\n"),
    )
    .await;
    assert_eq!(status_line(&end.bytes), "HTTP/1.1 200 OK");
    let (length, body) = split(&end.bytes);
    assert!(length > 500, "a body of {length} bytes");
    assert_eq!(
        length,
        body.len(),
        "the rest of the body is sent at the cap"
    );
    assert!(
        serde_json::from_slice::<serde_json::Value>(&body).is_ok(),
        "a whole JSON answer"
    );
    // Dribbled up to the cap (about 50 bytes in 0.5 s), then the rest: well under the 12 s
    // the rate alone would take, whatever the machine's load.
    assert!(
        end.elapsed >= Duration::from_millis(450) && end.elapsed < Duration::from_secs(5),
        "{:?}",
        end.elapsed
    );
}
