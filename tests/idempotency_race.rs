//! Many requests sharing one `Idempotency-Key` at once, through real sockets: the payment moves
//! once, and every client gets either the first answer byte for byte or 409
//! `IDEMPOTENT_REQUEST_PROCESSING` — for confirms and cancels, at 0 ms and at 300 ms latency.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use common::{TestServer, connect, send, send_on};
use http::StatusCode;
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use tokio::sync::Barrier;
use tokio::task::JoinSet;

const ROUNDS: usize = 100;
const PARALLEL: usize = 50;
/// Rounds run at once, each on its own key and payment, so that the 300 ms rounds do not add up
/// to 30 s of waiting.
const LANES: usize = 10;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Confirm,
    Cancel,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_confirms_sharing_a_key_approve_once_and_answer_alike() {
    race(Kind::Confirm).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_cancels_sharing_a_key_cancel_once_and_answer_alike() {
    race(Kind::Cancel).await;
}

async fn race(kind: Kind) {
    let server = TestServer::default().await;
    let mut failures = Vec::new();
    for latency in ["0", "300ms"] {
        let mut lanes = JoinSet::new();
        for lane in 0..LANES {
            let addr = server.addr;
            lanes.spawn(async move {
                let mut conns = Vec::with_capacity(PARALLEL);
                for _ in 0..PARALLEL {
                    conns.push(connect(addr).await);
                }
                let mut failures = Vec::new();
                for round in (lane..ROUNDS).step_by(LANES) {
                    let (back, failed) = one_round(addr, kind, latency, round, conns).await;
                    conns = back;
                    failures.extend(failed);
                }
                failures
            });
        }
        while let Some(lane) = lanes.join_next().await {
            failures.extend(lane.unwrap());
        }
    }
    server.shutdown().await;
    assert!(
        failures.is_empty(),
        "{kind:?}: {} failures over {ROUNDS} rounds × {PARALLEL} requests × 2 latencies; first: {:#?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
}

type Conn = SendRequest<Full<Bytes>>;

/// One round: `PARALLEL` requests with one key, released together; then the payment inquired.
/// Returns the connections and what went wrong.
async fn one_round(
    addr: SocketAddr,
    kind: Kind,
    latency: &'static str,
    round: usize,
    conns: Vec<Conn>,
) -> (Vec<Conn>, Vec<String>) {
    let tag = format!("{kind:?}-{}-{round}", latency.len());
    let key = format!("pk-race-{tag}");
    let order_id = format!("order-race-{tag}");
    let confirm = format!(r#"{{"paymentKey":"{key}","orderId":"{order_id}","amount":15000}}"#);
    let (path, body) = match kind {
        Kind::Confirm => ("/v1/payments/confirm".to_owned(), confirm),
        Kind::Cancel => {
            let done = send(addr, "POST", "/v1/payments/confirm", &[], &confirm).await;
            assert_eq!(done.status, StatusCode::OK, "setup confirm of {key}");
            (
                format!("/v1/payments/{key}/cancel"),
                r#"{"cancelReason":"race","cancelAmount":1000}"#.to_owned(),
            )
        }
    };
    let idempotency_key = format!("idem-{tag}");
    let barrier = Arc::new(Barrier::new(PARALLEL));
    let mut requests = JoinSet::new();
    for (i, mut conn) in conns.into_iter().enumerate() {
        let (barrier, path, body, idempotency_key) = (
            barrier.clone(),
            path.clone(),
            body.clone(),
            idempotency_key.clone(),
        );
        requests.spawn(async move {
            barrier.wait().await;
            let headers = [
                ("idempotency-key", idempotency_key.as_str()),
                ("x-gazua-latency", latency),
            ];
            let reply = send_on(&mut conn, addr, "POST", &path, &headers, &body).await;
            (i, conn, reply)
        });
    }
    let mut conns: Vec<Option<Conn>> = (0..PARALLEL).map(|_| None).collect();
    let mut failures = Vec::new();
    let mut first_answer: Option<Bytes> = None;
    while let Some(done) = requests.join_next().await {
        let (i, conn, reply) = done.unwrap();
        conns[i] = Some(conn);
        if reply.status == StatusCode::OK {
            match &first_answer {
                None => first_answer = Some(reply.body.clone()),
                Some(first) if *first == reply.body => {}
                Some(_) => failures.push(format!("{tag}: a 200 unlike the first")),
            }
        } else if reply.status != StatusCode::CONFLICT
            || reply.json()["code"] != "IDEMPOTENT_REQUEST_PROCESSING"
        {
            failures.push(format!(
                "{tag}: wrong answer {} {}",
                reply.status,
                String::from_utf8_lossy(&reply.body)
            ));
        }
    }
    if first_answer.is_none() {
        failures.push(format!("{tag}: no request was processed"));
    }
    let payment = send(addr, "GET", &format!("/v1/payments/{key}"), &[], "").await;
    let payment = payment.json();
    let applied = match kind {
        Kind::Confirm => payment["status"] == "DONE",
        Kind::Cancel => {
            payment["cancels"].as_array().map(Vec::len) == Some(1)
                && payment["balanceAmount"] == 14000
        }
    };
    if !applied {
        failures.push(format!("{tag}: applied other than once: {payment}"));
    }
    (conns.into_iter().map(Option::unwrap).collect(), failures)
}
