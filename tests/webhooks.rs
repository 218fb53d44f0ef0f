//! Webhooks through real sockets: a small receiver (a hyper server on 127.0.0.1:0) records
//! every delivery; the tests check the PG's bodies and headers, the retry schedule (scaled),
//! directed duplicates and drops, the bounded outbox, and the virtual-account lifecycle as the
//! merchant sees it.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{TestServer, send};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// One delivery as the receiver got it.
#[derive(Debug, Clone)]
struct Got {
    headers: HeaderMap,
    body: Value,
    at: Instant,
}

impl Got {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).unwrap().to_str().unwrap()
    }
}

/// How the receiver answers: `fail_first` deliveries get a 500, then 200s; `stuck` never
/// answers; every answer waits `slow` first.
#[derive(Clone, Copy, Default)]
struct Behaviour {
    fail_first: usize,
    stuck: bool,
    slow: Duration,
}

const STUCK: Behaviour = Behaviour {
    fail_first: 0,
    stuck: true,
    slow: Duration::ZERO,
};

#[derive(Clone)]
struct Receiver {
    addr: SocketAddr,
    /// Over TLS: the scheme of `url()` is https.
    tls: bool,
    got: Arc<Mutex<Vec<Got>>>,
    /// The most deliveries the receiver was answering at once.
    peak: Arc<AtomicUsize>,
}

impl Receiver {
    async fn start(behaviour: Behaviour) -> Receiver {
        Receiver::serve(behaviour, None).await
    }

    /// A receiver over TLS with a certificate for 127.0.0.1 from a fresh CA; the CA's PEM
    /// file is returned for `--webhook-ca`.
    async fn start_tls(behaviour: Behaviour) -> (Receiver, tempfile::TempDir) {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "merchant test ca");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        )
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        (Receiver::serve(behaviour, Some(acceptor)).await, dir)
    }

    async fn serve(behaviour: Behaviour, tls: Option<tokio_rustls::TlsAcceptor>) -> Receiver {
        let is_tls = tls.is_some();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::new(AtomicUsize::new(0));
        let (peak, now) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let record = got.clone();
        let counters = (peak.clone(), now);
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let (record, seen, counters) = (record.clone(), seen.clone(), counters.clone());
                let tls = tls.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let (record, seen, (peak, now)) =
                            (record.clone(), seen.clone(), counters.clone());
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body.collect().await.unwrap().to_bytes();
                            let n = seen.fetch_add(1, Ordering::SeqCst);
                            record.lock().unwrap().push(Got {
                                headers: parts.headers,
                                body: serde_json::from_slice(&body).unwrap(),
                                at: Instant::now(),
                            });
                            if behaviour.stuck {
                                std::future::pending::<()>().await;
                            }
                            let at_once = now.fetch_add(1, Ordering::SeqCst) + 1;
                            peak.fetch_max(at_once, Ordering::SeqCst);
                            tokio::time::sleep(behaviour.slow).await;
                            now.fetch_sub(1, Ordering::SeqCst);
                            let status = if n < behaviour.fail_first {
                                StatusCode::INTERNAL_SERVER_ERROR
                            } else {
                                StatusCode::OK
                            };
                            let mut response = Response::new(Full::new(Bytes::new()));
                            *response.status_mut() = status;
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    match tls {
                        Some(tls) => {
                            // A client that does not trust the certificate ends the handshake.
                            if let Ok(stream) = tls.accept(stream).await {
                                let _ = http.serve_connection(TokioIo::new(stream), service).await;
                            }
                        }
                        None => {
                            let _ = http.serve_connection(TokioIo::new(stream), service).await;
                        }
                    }
                });
            }
        });
        Receiver {
            addr,
            tls: is_tls,
            got,
            peak,
        }
    }

    fn url(&self) -> http::Uri {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}/hooks", self.addr).parse().unwrap()
    }

    fn all(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    /// Waits (bounded) until `pred` holds of what arrived.
    async fn until(&self, what: &str, pred: impl Fn(&[Got]) -> bool) -> Vec<Got> {
        let start = Instant::now();
        loop {
            let all = self.all();
            if pred(&all) {
                return all;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no {what}: {all:#?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn of_type<'a>(all: &'a [Got], kind: &str, status: &str) -> Vec<&'a Got> {
    all.iter()
        .filter(|g| match kind {
            "DEPOSIT_CALLBACK" => g.body.get("eventType").is_none() && g.body["status"] == status,
            _ => g.body["eventType"] == kind && g.body["data"]["status"] == status,
        })
        .collect()
}

async fn server_to(
    receiver: &Receiver,
    tune: impl FnOnce(&mut gazua_pay::config::Config),
) -> TestServer {
    let mut config = common::config();
    config.webhooks.urls = vec![receiver.url()];
    tune(&mut config);
    TestServer::start(config).await
}

async fn metric(server: &TestServer, result: &str) -> u64 {
    let reply = send(server.addr, "GET", "/metrics", &[], "").await;
    let text = String::from_utf8(reply.body.to_vec()).unwrap();
    let line = format!("gazua_webhooks_total{{result=\"{result}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&line))
        .map_or(0, |v| v.trim().parse().unwrap())
}

/// The harness route: deposits a waiting account now.
async fn deposit_now(server: &TestServer, key: &str) {
    let deposited = send(
        server.addr,
        "POST",
        &format!("/__gazua/deposits/{key}"),
        &[],
        "",
    )
    .await;
    assert_eq!(deposited.status, StatusCode::OK, "{:?}", deposited.body);
}

/// Waits (bounded) until a counter reaches `n`: a delivery is counted once its answer is read,
/// just after the receiver recorded it.
async fn metric_reaches(server: &TestServer, result: &str, n: u64) {
    let start = Instant::now();
    loop {
        let now = metric(server, result).await;
        if now == n {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{result} is {now}, expected {n}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn issue_va(server: &TestServer, order_id: &str, directive: &str) -> Value {
    let body = json!({"amount": 30000, "orderId": order_id, "orderName": "패딩",
                      "customerName": "홍길동", "bank": "20"});
    let reply = send(
        server.addr,
        "POST",
        "/v1/virtual-accounts",
        &[("x-gazua", directive)],
        &body.to_string(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.json()
}

/// A confirm of a fresh payment on a kept-alive connection.
async fn confirm_on(
    sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    addr: SocketAddr,
) -> common::Reply {
    let body = common::fresh_confirm_body();
    common::send_on(sender, addr, "POST", "/v1/payments/confirm", &[], &body).await
}

fn assert_pg_headers(g: &Got) {
    assert_eq!(g.header("content-type"), "application/json");
    assert!(!g.header("tosspayments-webhook-transmission-id").is_empty());
    let time = g.header("tosspayments-webhook-transmission-time");
    assert_eq!(time.len(), "2022-05-12T00:00:00.000000".len(), "{time}");
    assert!(g.headers.get("tosspayments-webhook-signature").is_none());
}

#[tokio::test]
async fn each_event_arrives_with_the_pgs_body_and_headers() {
    let receiver = Receiver::start(Behaviour::default()).await;
    let server = server_to(&receiver, |_| {}).await;
    let confirmed = common::confirm(server.addr, &[]).await;
    assert_eq!(confirmed.status, StatusCode::OK);
    let key = confirmed.json()["paymentKey"].as_str().unwrap().to_owned();
    let all = receiver
        .until("DONE event", |all| {
            !of_type(all, "PAYMENT_STATUS_CHANGED", "DONE").is_empty()
        })
        .await;
    let done = of_type(&all, "PAYMENT_STATUS_CHANGED", "DONE")[0];
    assert_pg_headers(done);
    assert_eq!(
        done.header("tosspayments-webhook-transmission-retried-count"),
        "0"
    );
    let created = done.body["createdAt"].as_str().unwrap();
    assert_eq!(created.len(), 26, "yyyy-MM-ddTHH:mm:ss.SSSSSS: {created}");
    assert!(!created.contains('+'));
    assert_eq!(done.body["data"]["paymentKey"], key.as_str());
    assert_eq!(done.body["data"]["method"], "카드");

    let va = issue_va(&server, "order-hook-va", "deposit=never").await;
    let all = receiver
        .until("issue events", |all| {
            !of_type(all, "DEPOSIT_CALLBACK", "WAITING_FOR_DEPOSIT").is_empty()
                && !of_type(all, "PAYMENT_STATUS_CHANGED", "WAITING_FOR_DEPOSIT").is_empty()
        })
        .await;
    let callback = of_type(&all, "DEPOSIT_CALLBACK", "WAITING_FOR_DEPOSIT")[0];
    assert_pg_headers(callback);
    let mut fields: Vec<&str> = callback
        .body
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        ["createdAt", "orderId", "secret", "status", "transactionKey"]
    );
    assert_eq!(callback.body["secret"], va["secret"]);
    assert_eq!(callback.body["orderId"], "order-hook-va");
    // Each event has its own transmission id.
    let mut ids: Vec<&str> = all
        .iter()
        .map(|g| g.header("tosspayments-webhook-transmission-id"))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), all.len());
    server.shutdown().await;
}

#[tokio::test]
async fn the_virtual_account_lifecycle_reaches_the_merchant() {
    let receiver = Receiver::start(Behaviour::default()).await;
    let server = server_to(&receiver, |_| {}).await;

    // Deposited after the directed delay: DONE, with the secret the issue gave.
    let issued_at = Instant::now();
    let va = issue_va(&server, "order-life-1", "deposit=1s").await;
    let all = receiver
        .until("deposit", |all| {
            !of_type(all, "DEPOSIT_CALLBACK", "DONE").is_empty()
        })
        .await;
    let deposited = of_type(&all, "DEPOSIT_CALLBACK", "DONE")[0];
    assert!(deposited.at.duration_since(issued_at) >= Duration::from_secs(1));
    assert_eq!(deposited.body["secret"], va["secret"]);
    assert_eq!(of_type(&all, "PAYMENT_STATUS_CHANGED", "DONE").len(), 1);
    let key = va["paymentKey"].as_str().unwrap();
    let now = send(server.addr, "GET", &format!("/v1/payments/{key}"), &[], "").await;
    assert_eq!(now.json()["status"], "DONE");

    // Expired at the (directed) due date.
    let expiring = issue_va(&server, "order-life-2", "deposit=expired(300ms)").await;
    let all = receiver
        .until("expiry", |all| {
            !of_type(all, "PAYMENT_STATUS_CHANGED", "EXPIRED").is_empty()
        })
        .await;
    let expired = of_type(&all, "PAYMENT_STATUS_CHANGED", "EXPIRED")[0];
    assert_eq!(expired.body["data"]["paymentKey"], expiring["paymentKey"]);
    assert_eq!(expired.body["data"]["virtualAccount"]["expired"], true);

    // Cancelled while waiting: CANCELED in both events.
    let waiting = issue_va(&server, "order-life-3", "deposit=never").await;
    let key = waiting["paymentKey"].as_str().unwrap();
    let cancel = json!({"cancelReason": "고객 변심"}).to_string();
    let canceled = send(
        server.addr,
        "POST",
        &format!("/v1/payments/{key}/cancel"),
        &[],
        &cancel,
    )
    .await;
    assert_eq!(canceled.status, StatusCode::OK, "{:?}", canceled.body);
    let all = receiver
        .until("cancel events", |all| {
            !of_type(all, "DEPOSIT_CALLBACK", "CANCELED").is_empty()
                && !of_type(all, "PAYMENT_STATUS_CHANGED", "CANCELED").is_empty()
        })
        .await;
    assert_eq!(
        of_type(&all, "DEPOSIT_CALLBACK", "CANCELED")[0].body["secret"],
        waiting["secret"]
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_receiver_failing_twice_gets_the_third_try_on_the_scaled_schedule() {
    let receiver = Receiver::start(Behaviour {
        fail_first: 2,
        ..Behaviour::default()
    })
    .await;
    // A minute lasts 50 ms: the retries come 50 ms and 200 ms after the failures.
    let server = server_to(&receiver, |c| c.webhooks.time_scale = 0.05 / 60.0).await;
    assert_eq!(
        common::confirm(server.addr, &[]).await.status,
        StatusCode::OK
    );
    let all = receiver.until("three tries", |all| all.len() >= 3).await;
    let id = all[0].header("tosspayments-webhook-transmission-id");
    for (n, g) in all.iter().take(3).enumerate() {
        assert_eq!(g.header("tosspayments-webhook-transmission-id"), id);
        assert_eq!(
            g.header("tosspayments-webhook-transmission-retried-count"),
            n.to_string()
        );
    }
    assert!(all[1].at - all[0].at >= Duration::from_millis(50));
    assert!(all[2].at - all[1].at >= Duration::from_millis(200));
    // No fourth: the third was answered 200.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.all().len(), 3);
    assert_eq!(metric(&server, "retried").await, 2);
    assert_eq!(metric(&server, "sent").await, 1);
    server.shutdown().await;
}

#[tokio::test]
async fn two_percent_duplicates_over_two_thousand_events_land_within_binomial_bounds() {
    let receiver = Receiver::start(Behaviour::default()).await;
    let server = server_to(&receiver, |c| c.webhooks.duplicate = Some(0.02)).await;
    const N: usize = 2000;
    let mut sender = common::connect(server.addr).await;
    for _ in 0..N {
        let reply = confirm_on(&mut sender, server.addr).await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    let duplicated = metric(&server, "duplicated").await as usize;
    let all = receiver
        .until("every delivery", |all| all.len() >= N + duplicated)
        .await;
    let mut ids: Vec<&str> = all
        .iter()
        .map(|g| g.header("tosspayments-webhook-transmission-id"))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), N, "every event arrived");
    assert_eq!(
        all.len() - N,
        duplicated,
        "the metric counts the duplicates delivered"
    );
    // Binomial(2000, 0.02): mean 40, sd 6.3; ±5 sd never flakes.
    assert!((9..=71).contains(&duplicated), "{duplicated} duplicates");
    server.shutdown().await;
}

#[tokio::test]
async fn a_full_outbox_drops_the_oldest_counts_it_and_never_delays_an_answer() {
    async fn answer_times(server: &TestServer, n: usize) -> Vec<Duration> {
        let mut sender = common::connect(server.addr).await;
        let mut times = Vec::with_capacity(n);
        for _ in 0..n {
            let start = Instant::now();
            let reply = confirm_on(&mut sender, server.addr).await;
            times.push(start.elapsed());
            assert_eq!(reply.status, StatusCode::OK);
        }
        times.sort_unstable();
        times
    }
    const N: usize = 200;
    let healthy = Receiver::start(Behaviour::default()).await;
    let server = server_to(&healthy, |c| c.webhooks.outbox = 4).await;
    let baseline = answer_times(&server, N).await;
    server.shutdown().await;

    let stuck = Receiver::start(STUCK).await;
    let server = server_to(&stuck, |c| {
        c.webhooks.outbox = 4;
        c.shutdown_grace = Duration::from_millis(300);
    })
    .await;
    let with_stuck = answer_times(&server, N).await;
    // 64 deliveries (--webhook-concurrency) hang in flight, 4 wait: every other event was
    // pushed out and counted.
    let dropped = metric(&server, "dropped").await as usize;
    assert!(dropped >= N - 64 - 4, "{dropped} dropped");
    assert!(dropped <= N, "{dropped} dropped");
    // A blocked answer would wait for the 10 s delivery timeout; the median stays near the
    // healthy one (generous: other builds share this machine).
    let median = |t: &[Duration]| t[t.len() / 2];
    assert!(
        median(&with_stuck) < median(&baseline) * 5 + Duration::from_millis(20),
        "median {:?} with a stuck receiver, {:?} without",
        median(&with_stuck),
        median(&baseline)
    );
    assert!(
        with_stuck[N - 1] < Duration::from_secs(2),
        "max {:?}",
        with_stuck[N - 1]
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_directed_drop_sends_nothing_and_shows_in_the_metric() {
    let receiver = Receiver::start(Behaviour::default()).await;
    let server = server_to(&receiver, |c| c.webhooks.drop = Some(1.0)).await;
    for _ in 0..5 {
        assert_eq!(
            common::confirm(server.addr, &[]).await.status,
            StatusCode::OK
        );
    }
    assert_eq!(metric(&server, "skipped").await, 5);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(receiver.all().is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn webhooks_pending_at_shutdown_are_abandoned_within_the_grace() {
    let receiver = Receiver::start(STUCK).await;
    let server = server_to(&receiver, |c| c.shutdown_grace = Duration::from_millis(300)).await;
    assert_eq!(
        common::confirm(server.addr, &[]).await.status,
        StatusCode::OK
    );
    receiver.until("the delivery", |all| !all.is_empty()).await;
    let start = Instant::now();
    server.shutdown().await;
    // The stuck delivery did not hold shutdown past the grace (plus a margin for a loaded box).
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn the_readme_example_deposits_once_and_calls_back_twice() {
    let receiver = Receiver::start(Behaviour::default()).await;
    let server = server_to(&receiver, |c| c.webhooks.duplicate = Some(1.0)).await;
    let issued_at = Instant::now();
    let issued = issue_va(&server, "order-va-0002", "deposit=2s").await;
    let all = receiver
        // Four events (issue and deposit, each PAYMENT_STATUS_CHANGED and DEPOSIT_CALLBACK),
        // each delivered twice.
        .until("every delivery", |all| all.len() >= 8)
        .await;
    let callbacks = of_type(&all, "DEPOSIT_CALLBACK", "DONE");
    assert_eq!(callbacks.len(), 2);
    assert!(callbacks[0].at.duration_since(issued_at) >= Duration::from_secs(2));
    let id = |g: &Got| g.header("tosspayments-webhook-transmission-id").to_owned();
    assert_eq!(
        id(callbacks[0]),
        id(callbacks[1]),
        "one event, delivered twice"
    );
    assert_eq!(callbacks[0].body["secret"], issued["secret"]);
    let key = issued["paymentKey"].as_str().unwrap();
    let now = send(server.addr, "GET", &format!("/v1/payments/{key}"), &[], "").await;
    assert_eq!(now.json()["status"], "DONE");
    assert_eq!(now.json()["secret"], issued["secret"]);
    assert_eq!(metric(&server, "duplicated").await, 4);
    server.shutdown().await;
}

#[tokio::test]
async fn the_harness_deposit_calls_back_with_the_payments_secret() {
    let receiver = Receiver::start(Behaviour::default()).await;
    let server = server_to(&receiver, |_| {}).await;
    let issued = issue_va(&server, "order-hook-harness", "deposit=never").await;
    let key = issued["paymentKey"].as_str().unwrap();
    deposit_now(&server, key).await;
    let all = receiver
        .until("the deposit events", |all| {
            !of_type(all, "DEPOSIT_CALLBACK", "DONE").is_empty()
                && !of_type(all, "PAYMENT_STATUS_CHANGED", "DONE").is_empty()
        })
        .await;
    let callback = of_type(&all, "DEPOSIT_CALLBACK", "DONE")[0];
    assert_pg_headers(callback);
    assert_eq!(callback.body["secret"], issued["secret"]);
    assert_eq!(callback.body["orderId"], "order-hook-harness");
    let changed = of_type(&all, "PAYMENT_STATUS_CHANGED", "DONE")[0];
    assert_eq!(changed.body["data"]["paymentKey"], key);
    assert_eq!(changed.body["data"]["secret"], issued["secret"]);
    server.shutdown().await;
}

/// A cancel or a harness deposit that comes right after an account's moment races its timer
/// on a live server: whichever settles the account tells the merchant, and only that one. (The
/// window itself, the request first, is played deterministically in the library's tests,
/// `api::tests::va_webhooks`.)
#[tokio::test]
async fn a_request_racing_an_accounts_timer_leaves_the_merchant_one_event_per_change() {
    let receiver = Receiver::start(Behaviour::default()).await;
    let server = server_to(&receiver, |_| {}).await;
    let expiring = issue_va(&server, "order-hook-race-1", "deposit=expired(300ms)").await;
    let depositing = issue_va(&server, "order-hook-race-2", "deposit=300ms").await;
    let key = |p: &Value| p["paymentKey"].as_str().unwrap().to_owned();
    let (expiring, depositing) = (key(&expiring), key(&depositing));
    // The moment the inquiry shows the change, the request goes: the timer may or may not
    // have played.
    for (key, status) in [(&expiring, "EXPIRED"), (&depositing, "DONE")] {
        let start = Instant::now();
        while send(server.addr, "GET", &format!("/v1/payments/{key}"), &[], "")
            .await
            .json()["status"]
            != status
        {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{key} never {status}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let cancel = json!({"cancelReason": "고객 변심"}).to_string();
    let path = format!("/v1/payments/{expiring}/cancel");
    let refused = send(server.addr, "POST", &path, &[], &cancel).await;
    assert_eq!(refused.json()["code"], "NOT_CANCELABLE_PAYMENT");
    let path = format!("/__gazua/deposits/{depositing}");
    let refused = send(server.addr, "POST", &path, &[], "").await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{:?}", refused.body);
    receiver
        .until("the expiry and the deposit", |all| {
            !of_type(all, "PAYMENT_STATUS_CHANGED", "EXPIRED").is_empty()
                && !of_type(all, "DEPOSIT_CALLBACK", "DONE").is_empty()
                && !of_type(all, "PAYMENT_STATUS_CHANGED", "DONE").is_empty()
        })
        .await;
    // The shutdown delivers whatever is still pending: nothing more can arrive after it.
    server.shutdown().await;
    let all = receiver.all();
    assert_eq!(of_type(&all, "PAYMENT_STATUS_CHANGED", "EXPIRED").len(), 1);
    assert_eq!(of_type(&all, "PAYMENT_STATUS_CHANGED", "DONE").len(), 1);
    assert_eq!(of_type(&all, "DEPOSIT_CALLBACK", "DONE").len(), 1);
    assert_eq!(
        all.len(),
        4 + 3,
        "two issues, an expiry, a deposit: {all:#?}"
    );
}

/// Under `--ledger stateless` nothing records an account, so the instance that issued it
/// rebuilds it from its key when its timer comes and tells the deposit or expiry; another
/// instance of the fleet (same seed) shows the same status to an inquiry but sends nothing, so
/// the merchant gets each change once.
#[tokio::test]
async fn under_the_stateless_ledger_the_issuing_instance_alone_tells_a_deposit_and_an_expiry() {
    let receiver = Receiver::start(Behaviour::default()).await;
    let stateless = |c: &mut gazua_pay::config::Config| {
        c.ledger = gazua_pay::config::LedgerKind::Stateless;
    };
    let issuer = server_to(&receiver, stateless).await;
    let other = server_to(&receiver, stateless).await;
    // The directive is in the key's tag: a stateless instance knows no other.
    let issue = |order_id: &'static str, tag: &'static str| {
        let body = json!({"amount": 30000, "orderId": order_id,
                          "orderName": format!("패딩 [gazua: {tag}]"),
                          "customerName": "홍길동", "bank": "20"});
        let addr = issuer.addr;
        async move {
            let reply = send(addr, "POST", "/v1/virtual-accounts", &[], &body.to_string()).await;
            assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
            reply.json()
        }
    };
    let issued_at = Instant::now();
    let depositing = issue("order-hook-stateless-1", "deposit=300ms").await;
    let expiring = issue("order-hook-stateless-2", "deposit=expired(300ms)").await;
    let all = receiver
        .until("the deposit and the expiry", |all| {
            !of_type(all, "DEPOSIT_CALLBACK", "DONE").is_empty()
                && !of_type(all, "PAYMENT_STATUS_CHANGED", "DONE").is_empty()
                && !of_type(all, "PAYMENT_STATUS_CHANGED", "EXPIRED").is_empty()
        })
        .await;
    let callback = of_type(&all, "DEPOSIT_CALLBACK", "DONE")[0];
    assert!(callback.at.duration_since(issued_at) >= Duration::from_millis(300));
    // The other instance shows both changes (rebuilt from the keys), and its inquiries tell
    // the merchant nothing.
    for (p, status) in [(&depositing, "DONE"), (&expiring, "EXPIRED")] {
        let key = p["paymentKey"].as_str().unwrap();
        let seen = send(other.addr, "GET", &format!("/v1/payments/{key}"), &[], "").await;
        assert_eq!(seen.json()["status"], status);
    }
    // The shutdowns deliver whatever is still pending: nothing more can arrive after them.
    issuer.shutdown().await;
    other.shutdown().await;
    let all = receiver.all();
    let done = of_type(&all, "PAYMENT_STATUS_CHANGED", "DONE");
    assert_eq!(done.len(), 1, "{all:#?}");
    assert_pg_headers(done[0]);
    assert_eq!(done[0].body["data"]["paymentKey"], depositing["paymentKey"]);
    let callbacks = of_type(&all, "DEPOSIT_CALLBACK", "DONE");
    assert_eq!(callbacks.len(), 1, "{all:#?}");
    assert_pg_headers(callbacks[0]);
    assert_eq!(callbacks[0].body["secret"], depositing["secret"]);
    assert_eq!(callbacks[0].body["orderId"], "order-hook-stateless-1");
    let expired = of_type(&all, "PAYMENT_STATUS_CHANGED", "EXPIRED");
    assert_eq!(expired.len(), 1, "{all:#?}");
    assert_pg_headers(expired[0]);
    assert_eq!(
        expired[0].body["data"]["paymentKey"],
        expiring["paymentKey"]
    );
    assert_eq!(expired[0].body["data"]["virtualAccount"]["expired"], true);
    assert_eq!(
        all.len(),
        4 + 3,
        "two issues, a deposit, an expiry: {all:#?}"
    );
}

#[tokio::test]
async fn reorder_one_delivers_a_virtual_accounts_events_in_reverse() {
    let receiver = Receiver::start(Behaviour::default()).await;
    // Every event is held behind the payment's next; the last is held one scaled minute (1 s).
    let server = server_to(&receiver, |c| {
        c.webhooks.reorder = Some(1.0);
        c.webhooks.time_scale = 1.0 / 60.0;
    })
    .await;
    let issued = issue_va(&server, "order-hook-reorder", "deposit=never").await;
    let key = issued["paymentKey"].as_str().unwrap();
    deposit_now(&server, key).await;
    let all = receiver.until("four events", |all| all.len() >= 4).await;
    let seen: Vec<(bool, &str)> = all
        .iter()
        .map(|g| match g.body.get("eventType") {
            Some(_) => (true, g.body["data"]["status"].as_str().unwrap()),
            None => (false, g.body["status"].as_str().unwrap()),
        })
        .collect();
    // Made in the order PAYMENT_STATUS_CHANGED, DEPOSIT_CALLBACK (issue), then (deposit).
    assert_eq!(
        seen,
        [
            (false, "DONE"),
            (true, "DONE"),
            (false, "WAITING_FOR_DEPOSIT"),
            (true, "WAITING_FOR_DEPOSIT"),
        ]
    );
    assert_eq!(metric(&server, "reordered").await, 4);
    metric_reaches(&server, "sent", 4).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_reordered_fraction_lands_within_binomial_bounds_and_is_held() {
    let receiver = Receiver::start(Behaviour::default()).await;
    // A held card event has no later event: it goes after one scaled minute (300 ms).
    let server = server_to(&receiver, |c| {
        c.webhooks.reorder = Some(0.1);
        c.webhooks.time_scale = 0.3 / 60.0;
    })
    .await;
    const N: usize = 1000;
    let mut sender = common::connect(server.addr).await;
    let mut confirmed = std::collections::HashMap::new();
    for _ in 0..N {
        let start = Instant::now();
        let reply = confirm_on(&mut sender, server.addr).await;
        assert_eq!(reply.status, StatusCode::OK);
        confirmed.insert(
            reply.json()["paymentKey"].as_str().unwrap().to_owned(),
            start,
        );
    }
    let all = receiver.until("every event", |all| all.len() >= N).await;
    let reordered = metric(&server, "reordered").await as usize;
    // Binomial(1000, 0.1): mean 100, sd 9.5; ±5 sd never flakes.
    assert!((52..=148).contains(&reordered), "{reordered} reordered");
    // Every held event arrived at least the hold after its confirm was sent (others may be
    // late too on a loaded machine, so this bounds from below only).
    let late = all
        .iter()
        .filter(|g| {
            let key = g.body["data"]["paymentKey"].as_str().unwrap();
            g.at.duration_since(confirmed[key]) >= Duration::from_millis(300)
        })
        .count();
    assert!(late >= reordered, "{late} late, {reordered} reordered");
    server.shutdown().await;
}

#[tokio::test]
async fn deliveries_run_up_to_the_concurrency_flag_at_once() {
    // A slow receiver: 16 fixed workers would cap it at 16 answers per 300 ms.
    let receiver = Receiver::start(Behaviour {
        slow: Duration::from_millis(300),
        ..Behaviour::default()
    })
    .await;
    let server = server_to(&receiver, |c| c.webhooks.concurrency = 32).await;
    const N: usize = 200;
    let mut sender = common::connect(server.addr).await;
    for _ in 0..N {
        assert_eq!(
            confirm_on(&mut sender, server.addr).await.status,
            StatusCode::OK
        );
    }
    receiver.until("every event", |all| all.len() >= N).await;
    let peak = receiver.peak.load(Ordering::SeqCst);
    assert!((17..=32).contains(&peak), "{peak} deliveries at once");
    server.shutdown().await;
}

#[tokio::test]
async fn waiting_accounts_timers_are_bounded_by_the_outbox() {
    let receiver = Receiver::start(Behaviour::default()).await;
    let server = server_to(&receiver, |c| c.webhooks.outbox = 4).await;
    // Six accounts deposited 1.0 … 1.5 s after issue: the four due first keep their timers.
    let mut keys = Vec::new();
    for n in 0..6 {
        let directive = format!("deposit={}ms", 1000 + 100 * n);
        let issued = issue_va(&server, &format!("order-hook-timer-{n}"), &directive).await;
        keys.push(issued["paymentKey"].as_str().unwrap().to_owned());
    }
    let deposited = |all: &[Got], key: &str| {
        of_type(all, "PAYMENT_STATUS_CHANGED", "DONE")
            .iter()
            .any(|g| g.body["data"]["paymentKey"] == key)
    };
    receiver
        .until("the first four deposits", |all| {
            keys[..4].iter().all(|k| deposited(all, k))
        })
        .await;
    // The last two would have been due by now; their timers were dropped and counted.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let all = receiver.all();
    for key in &keys[4..] {
        assert!(!deposited(&all, key), "{key} was told");
        // Its inquiry still shows the deposit, settled against the clock.
        let now = send(server.addr, "GET", &format!("/v1/payments/{key}"), &[], "").await;
        assert_eq!(now.json()["status"], "DONE");
    }
    assert!(metric(&server, "dropped").await >= 2);
    server.shutdown().await;
}

#[tokio::test]
async fn a_requests_webhook_directive_decides_its_events_over_the_flags() {
    let receiver = Receiver::start(Behaviour::default()).await;
    // The flags drop every event: only what a request directs gets through.
    let server = server_to(&receiver, |c| c.webhooks.drop = Some(1.0)).await;
    let id = |g: &Got| g.header("tosspayments-webhook-transmission-id").to_owned();

    let sent = common::confirm(server.addr, &[("x-gazua", "webhook=send")]).await;
    assert_eq!(sent.status, StatusCode::OK);
    let key = sent.json()["paymentKey"].as_str().unwrap().to_owned();
    let all = receiver
        .until("the sent event", |all| !all.is_empty())
        .await;
    assert_eq!(all[0].body["data"]["paymentKey"], key.as_str());

    let twice = common::confirm(server.addr, &[("x-gazua", "webhook=duplicate")]).await;
    let key = twice.json()["paymentKey"].as_str().unwrap().to_owned();
    let all = receiver.until("both copies", |all| all.len() >= 3).await;
    assert!(
        all[1..]
            .iter()
            .all(|g| g.body["data"]["paymentKey"] == key.as_str())
    );
    assert_eq!(id(&all[1]), id(&all[2]));

    let asked = Instant::now();
    let late = common::confirm(server.addr, &[("x-gazua", "webhook=delay(400ms)")]).await;
    assert_eq!(late.status, StatusCode::OK);
    let all = receiver
        .until("the delayed event", |all| all.len() >= 4)
        .await;
    assert!(all[3].at.duration_since(asked) >= Duration::from_millis(400));

    // A tag at create is carried in the minted key: its confirm drops the event.
    let create = json!({"method": "CARD", "amount": 1000, "orderId": "order-hook-tag",
                        "orderName": "책 [gazua: webhook=drop]",
                        "successUrl": "https://shop.test/ok", "failUrl": "https://shop.test/fail"});
    let created = common::post_ok(server.addr, "/v1/payments", &create).await;
    let confirm = json!({"paymentKey": created["paymentKey"], "orderId": "order-hook-tag",
                         "amount": 1000});
    let skipped = metric(&server, "skipped").await;
    common::post_ok(server.addr, "/v1/payments/confirm", &confirm).await;
    assert_eq!(metric(&server, "skipped").await, skipped + 1);

    // Never silently ignored: a bad value is the PG-shaped 400 naming it.
    let bad = common::confirm(server.addr, &[("x-gazua", "webhook=twice")]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.json()["code"], "GAZUA_INVALID_DIRECTIVE");
    let message = bad.json()["message"].as_str().unwrap().to_owned();
    assert!(message.contains("webhook="), "{message}");
    assert!(
        message.contains("expected send, drop, duplicate"),
        "{message}"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(receiver.all().len(), 4);
    server.shutdown().await;
}

#[tokio::test]
async fn an_issued_accounts_webhook_directive_directs_its_deposit_events_too() {
    let receiver = Receiver::start(Behaviour::default()).await;
    let server = server_to(&receiver, |_| {}).await;
    issue_va(
        &server,
        "order-hook-va-dup",
        "deposit=300ms; webhook=duplicate",
    )
    .await;
    // Issue and deposit, PAYMENT_STATUS_CHANGED and DEPOSIT_CALLBACK each, every one twice.
    let all = receiver
        .until("eight deliveries", |all| all.len() >= 8)
        .await;
    assert_eq!(of_type(&all, "DEPOSIT_CALLBACK", "DONE").len(), 2);
    assert_eq!(of_type(&all, "PAYMENT_STATUS_CHANGED", "DONE").len(), 2);
    assert_eq!(metric(&server, "duplicated").await, 4);
    server.shutdown().await;
}

fn write_profile(dir: &tempfile::TempDir, name: &str, profile: Value) -> String {
    let path = dir.path().join(format!("{name}.json"));
    std::fs::write(&path, profile.to_string()).unwrap();
    path.to_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_served_profiles_webhooks_section_sends_and_the_flags_extend_and_replace_it() {
    let (a, b) = (
        Receiver::start(Behaviour::default()).await,
        Receiver::start(Behaviour::default()).await,
    );
    let dir = tempfile::tempdir().unwrap();
    write_profile(
        &dir,
        "hooked",
        json!({"name": "hooked", "webhooks": {"urls": [a.url().to_string()], "duplicate": 1.0}}),
    );
    write_profile(
        &dir,
        "other",
        json!({"name": "other", "webhooks": {"urls": [b.url().to_string()]}}),
    );
    let serving = |duplicate: Option<f64>, urls: Vec<http::Uri>| {
        let mut config = common::config();
        config.profiles_dirs = vec![dir.path().to_owned()];
        config.profile = Some("hooked".to_owned());
        config.admin_token = Some("s3cret".to_owned());
        config.webhooks.urls = urls;
        config.webhooks.duplicate = duplicate;
        config
    };

    // The profile alone: its URL, its duplicate fraction.
    let server = TestServer::start(serving(None, Vec::new())).await;
    let profile = send(server.addr, "GET", "/__gazua/profile", &[], "").await;
    assert_eq!(profile.json()["profile"]["webhooks"]["duplicate"], 1.0);
    assert_eq!(
        common::confirm(server.addr, &[]).await.status,
        StatusCode::OK
    );
    a.until("both copies", |all| all.len() >= 2).await;
    // Serving another profile (the admin route; a reload takes the same path) moves the events.
    let switched = send(
        server.addr,
        "PUT",
        "/__gazua/profile",
        &[("authorization", "Bearer s3cret")],
        r#"{"name":"other"}"#,
    )
    .await;
    assert_eq!(switched.status, StatusCode::OK, "{:?}", switched.body);
    assert_eq!(
        common::confirm(server.addr, &[]).await.status,
        StatusCode::OK
    );
    b.until("the other profile's event", |all| !all.is_empty())
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(a.all().len(), 2);
    assert_eq!(b.all().len(), 1);
    server.shutdown().await;

    // A flag URL is added to the profile's; a flag fraction replaces the profile's.
    let server = TestServer::start(serving(Some(0.0), vec![b.url()])).await;
    assert_eq!(
        common::confirm(server.addr, &[]).await.status,
        StatusCode::OK
    );
    a.until("one more on the profile's URL", |all| all.len() >= 3)
        .await;
    b.until("one more on the flag's URL", |all| all.len() >= 2)
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!((a.all().len(), b.all().len()), (3, 2), "no duplicate");
    server.shutdown().await;
}

#[tokio::test]
async fn a_served_profile_without_urls_sends_nothing_until_one_with_urls_is_served() {
    let receiver = Receiver::start(Behaviour::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let hooks = json!({"urls": [receiver.url().to_string()]});
    write_profile(&dir, "hooked", json!({"name": "hooked", "webhooks": hooks}));
    write_profile(&dir, "quiet", json!({"name": "quiet"}));
    let mut config = common::config();
    config.profiles_dirs = vec![dir.path().to_owned()];
    config.profile = Some("quiet".to_owned());
    config.admin_token = Some("s3cret".to_owned());
    // No --webhook-url: webhooks are built because a loaded profile names a URL.
    let server = TestServer::start(config).await;
    assert_eq!(
        common::confirm(server.addr, &[]).await.status,
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(receiver.all().is_empty());
    let switched = send(
        server.addr,
        "PUT",
        "/__gazua/profile",
        &[("authorization", "Bearer s3cret")],
        r#"{"name":"hooked"}"#,
    )
    .await;
    assert_eq!(switched.status, StatusCode::OK, "{:?}", switched.body);
    assert_eq!(
        common::confirm(server.addr, &[]).await.status,
        StatusCode::OK
    );
    receiver.until("the event", |all| !all.is_empty()).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_profile_rule_and_defaults_direct_webhooks_like_any_field() {
    let receiver = Receiver::start(Behaviour::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = write_profile(
        &dir,
        "ruled",
        json!({"name": "ruled", "defaults": {"webhook": "duplicate"},
               "rules": [{"when": {"json": "/amount", "gte": 50000}, "then": {"webhook": "drop"}}]}),
    );
    let server = server_to(&receiver, |c| c.profile = Some(path)).await;
    let confirm = |amount: u64| {
        json!({"paymentKey": format!("pk_rule_{amount}"), "orderId": format!("order-rule-{amount}"),
               "amount": amount})
        .to_string()
    };
    let dropped = send(
        server.addr,
        "POST",
        "/v1/payments/confirm",
        &[],
        &confirm(60000),
    )
    .await;
    assert_eq!(dropped.status, StatusCode::OK);
    assert_eq!(metric(&server, "skipped").await, 1, "the rule dropped it");
    let twice = send(
        server.addr,
        "POST",
        "/v1/payments/confirm",
        &[],
        &confirm(1000),
    )
    .await;
    assert_eq!(twice.status, StatusCode::OK);
    let all = receiver.until("both copies", |all| all.len() >= 2).await;
    assert!(
        all.iter()
            .all(|g| g.body["data"]["paymentKey"] == "pk_rule_1000")
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(receiver.all().len(), 2, "the defaults duplicated it");
    server.shutdown().await;
}

#[tokio::test]
async fn a_bad_webhooks_section_is_a_start_error_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    for (section, expected) in [
        (
            json!({"urls": ["ftp://x/hooks"]}),
            "webhooks.urls: 'ftp://x/hooks': expected http(s)://host:port/path",
        ),
        (
            json!({"duplicate": 1.5}),
            "webhooks.duplicate: '1.5': expected a fraction from 0 to 1",
        ),
        (
            json!({"reorder": -0.1}),
            "webhooks.reorder: '-0.1': expected a fraction from 0 to 1",
        ),
        (
            json!({"delay": "soon"}),
            "webhooks.delay: expected a latency",
        ),
        (json!({"retries": 3}), "unknown field `retries`"),
    ] {
        let path = write_profile(&dir, "bad", json!({"name": "bad", "webhooks": section}));
        let mut config = common::config();
        config.profile = Some(path);
        let error = match gazua_pay::server::Server::bind(config).await {
            Ok(_) => panic!("{section} was accepted"),
            Err(e) => e.to_string(),
        };
        assert!(error.contains(expected), "{section}: {error}");
    }
}

/// The real binary: SIGHUP reloads the served profile's `webhooks` section with the profile.
#[test]
fn sighup_reloads_the_served_profiles_webhook_targets() {
    let rt = common::runtime();
    let (a, b) = (
        rt.block_on(Receiver::start(Behaviour::default())),
        rt.block_on(Receiver::start(Behaviour::default())),
    );
    let dir = tempfile::tempdir().unwrap();
    let live = |url: http::Uri| json!({"name": "live", "webhooks": {"urls": [url.to_string()]}});
    write_profile(&dir, "live", live(a.url()));
    let gazua = common::Binary::start(&[
        "--profiles-dir",
        dir.path().to_str().unwrap(),
        "--profile",
        "live",
    ]);
    assert_eq!(
        rt.block_on(common::confirm(gazua.addr, &[])).status,
        StatusCode::OK
    );
    rt.block_on(a.until("the first target's event", |all| !all.is_empty()));
    write_profile(&dir, "live", live(b.url()));
    gazua.signal("-HUP");
    let start = Instant::now();
    while b.all().is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no event after SIGHUP"
        );
        assert_eq!(
            rt.block_on(common::confirm(gazua.addr, &[])).status,
            StatusCode::OK
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn an_https_receiver_trusted_through_webhook_ca_gets_the_events() {
    let (receiver, dir) = Receiver::start_tls(Behaviour::default()).await;
    assert!(receiver.url().to_string().starts_with("https://127.0.0.1:"));
    let server = server_to(&receiver, |c| {
        c.webhooks.ca = Some(dir.path().join("ca.pem"));
    })
    .await;
    let confirmed = common::confirm(server.addr, &[]).await;
    let key = confirmed.json()["paymentKey"].as_str().unwrap().to_owned();
    let all = receiver
        .until("the event over TLS", |all| !all.is_empty())
        .await;
    assert_pg_headers(&all[0]);
    assert_eq!(all[0].body["data"]["paymentKey"], key.as_str());
    metric_reaches(&server, "sent", 1).await;
    server.shutdown().await;

    // Without the CA the receiver's certificate is not trusted: the try fails and is retried
    // (a minute later: the shutdown grace abandons it).
    let server = server_to(&receiver, |c| c.shutdown_grace = Duration::from_millis(200)).await;
    assert_eq!(
        common::confirm(server.addr, &[]).await.status,
        StatusCode::OK
    );
    let start = Instant::now();
    while metric(&server, "retried").await == 0 {
        assert!(start.elapsed() < Duration::from_secs(10), "no failed try");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(metric(&server, "sent").await, 0);
    assert_eq!(receiver.all().len(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn an_unreadable_webhook_ca_is_a_start_error() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("ca.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    for (ca, expected) in [
        (dir.path().join("missing.pem"), "cannot read it"),
        (not_pem, "expected PEM certificates"),
    ] {
        let mut config = common::config();
        config.webhooks.urls = vec!["https://127.0.0.1:9/hooks".parse().unwrap()];
        config.webhooks.ca = Some(ca);
        let error = match gazua_pay::server::Server::bind(config).await {
            Ok(_) => panic!("accepted"),
            Err(e) => e.to_string(),
        };
        assert!(error.starts_with("--webhook-ca '"), "{error}");
        assert!(error.contains(expected), "{error}");
    }
}

/// The real binary: a delivered try is an access-log line with its transmission id, and on
/// SIGTERM a delivery still hanging when the grace ends is logged as abandoned.
#[test]
fn sigterm_reports_webhooks_still_pending_as_abandoned() {
    let rt = common::runtime();
    let receiver = rt.block_on(Receiver::start(STUCK));
    let healthy = rt.block_on(Receiver::start(Behaviour::default()));
    let url = receiver.url().to_string();
    let healthy_url = healthy.url().to_string();
    let mut gazua = common::Binary::start(&[
        "--profile",
        "happy",
        "--access-log",
        "--shutdown-grace",
        "1s",
        "--webhook-url",
        &url,
        "--webhook-url",
        &healthy_url,
    ]);
    let reply = rt.block_on(common::confirm(gazua.addr, &[]));
    assert_eq!(reply.status, StatusCode::OK);
    rt.block_on(receiver.until("the delivery", |all| !all.is_empty()));
    rt.block_on(healthy.until("the delivery", |all| !all.is_empty()));
    let id = receiver.all()[0]
        .header("tosspayments-webhook-transmission-id")
        .to_owned();
    // The delivered try is in the access log with the event's transmission id (every URL
    // gets the event under one id).
    let start = Instant::now();
    while !gazua.logs.lock().unwrap().iter().any(|l| {
        l["target"] == "access" && l["message"] == "webhook" && l["transmission_id"] == id.as_str()
    }) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no access-log line for {id}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    gazua.signal("-TERM");
    let status = gazua.wait(Duration::from_secs(15));
    assert!(status.success(), "{status:?}");
    let logs = gazua.logs.lock().unwrap().clone();
    let abandoned = logs
        .iter()
        .find(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.contains("abandoned"))
        })
        .unwrap_or_else(|| panic!("no abandoned line in {logs:#?}"));
    assert_eq!(abandoned["abandoned"], 1);
}
