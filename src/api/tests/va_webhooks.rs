//! A virtual account's deposit or expiry is told to the webhooks exactly once, whoever settles
//! it: its timer, or a cancel or harness deposit that meets the account past its moment first.
//! That window (the moment has come, the timer has not had its turn) is a race on a live
//! server, so here both clocks are driven: each request carries the time it arrives at, and
//! the timer is played at a chosen moment (`Timers::take_due` and `settle_and_tell`, which
//! the timer task calls with the wall clock). The events go over a real socket to a receiver
//! on 127.0.0.1:0 and are counted once the outbox has drained: nothing is left to arrive.
//!
//! Under `--ledger stateless` no record holds the account: the timer of the instance that
//! issued it rebuilds it from its key, and tells what an inquiry on any instance shows.

use std::sync::Mutex;

use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use super::*;
use crate::directive::{Deposit, Latency, Webhook};
use crate::webhook::WebhookSettings;

const MINUTE_MS: i64 = 60_000;

/// A merchant's webhook endpoint: records every delivery's JSON body and answers 200.
struct Receiver {
    url: http::Uri,
    got: Arc<Mutex<Vec<Value>>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        let got = Arc::new(Mutex::new(Vec::new()));
        let record = got.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let record = record.clone();
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(move |req: http::Request<Incoming>| {
                            let record = record.clone();
                            async move {
                                let body = req.into_body().collect().await?.to_bytes();
                                let event: Value = serde_json::from_slice(&body).unwrap();
                                record.lock().unwrap().push(event);
                                Ok::<_, hyper::Error>(http::Response::new(Full::new(Bytes::new())))
                            }
                        });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver {
            url: url.parse().unwrap(),
            got,
        }
    }

    /// Every event delivered, as (event, the status as JSON text), once the outbox has
    /// drained.
    async fn delivered(&self, api: &Api) -> Vec<(String, String)> {
        api.drain_webhooks(Duration::from_secs(20)).await;
        let hooks = api.webhooks.as_ref().unwrap();
        assert_eq!(hooks.pending(), 0, "the outbox did not drain");
        let got = self.got.lock().unwrap();
        got.iter()
            .map(|e| match e["eventType"].as_str() {
                Some(kind) => (kind.to_owned(), e["data"]["status"].to_string()),
                None => ("DEPOSIT_CALLBACK".to_owned(), e["status"].to_string()),
            })
            .collect()
    }
}

/// How many of `events` are `kind` with `status`.
fn count(events: &[(String, String)], kind: &str, status: &str) -> usize {
    let status = format!("\"{status}\"");
    events
        .iter()
        .filter(|(k, s)| k == kind && *s == status)
        .count()
}

/// Asserts that `events` hold exactly one `kind` event with `status`.
#[track_caller]
fn told_once(events: &[(String, String)], kind: &str, status: &str) {
    assert_eq!(
        count(events, kind, status),
        1,
        "{kind} {status}: {events:?}"
    );
}

/// An API on `ledger` whose webhooks go to `receiver` (the timer task starts with them).
fn api_to(receiver: &Receiver, ledger: &LedgerChoice) -> Api {
    let settings = WebhookSettings {
        urls: vec![receiver.url.clone()],
        ..WebhookSettings::default()
    };
    let metrics = crate::metrics::Metrics::new().webhooks.clone();
    let hooks = Webhooks::start(settings, None, false, metrics).unwrap();
    Api::new(ApiSettings {
        seed: 42,
        ledger: ledger.clone(),
        ..ApiSettings::default()
    })
    .with_webhooks(hooks)
}

/// A request arriving at `at_ms` (unix milliseconds), with the decided `deposit=`.
async fn answer_at(
    api: &Api,
    method: Method,
    path: &str,
    body: &str,
    at_ms: i64,
    deposit: Option<Deposit>,
) -> (StatusCode, Value) {
    answer_directed(api, method, path, body, at_ms, deposit, None).await
}

/// [`answer_at`] with the decided `webhook=` too.
async fn answer_directed(
    api: &Api,
    method: Method,
    path: &str,
    body: &str,
    at_ms: i64,
    deposit: Option<Deposit>,
    webhook: Option<Webhook>,
) -> (StatusCode, Value) {
    let target = route(&method, path);
    let headers = HeaderMap::new();
    let req = ApiRequest {
        target: &target,
        method: &method,
        headers: &headers,
        body: body.as_bytes(),
        lang: Lang::Ko,
        now: jiff::Timestamp::from_millisecond(at_ms).unwrap(),
    };
    let mut d = decision(Outcome::Approved);
    d.deposit = deposit;
    d.webhook = webhook;
    let reply = api.answer(&req, &d).await;
    (reply.status, serde_json::from_slice(&reply.body).unwrap())
}

/// An account issued at `at_ms`, due an hour later, deposited as `deposit` directs: its
/// paymentKey. Its timer is then set by the wall clock, which is far from any moment these
/// tests play (the timer task does not come on its own while they run).
async fn issue(api: &Api, order_id: &str, at_ms: i64, deposit: Option<Deposit>) -> String {
    let body = serde_json::json!({"amount": 30000, "orderId": order_id, "orderName": "패딩",
                                  "customerName": "홍길동", "bank": "20", "validHours": 1});
    let path = "/v1/virtual-accounts";
    let (status, p) = answer_at(api, Method::POST, path, &body.to_string(), at_ms, deposit).await;
    assert_eq!(status, StatusCode::OK, "{p}");
    assert_eq!(p["status"], "WAITING_FOR_DEPOSIT");
    p["paymentKey"].as_str().unwrap().to_owned()
}

async fn cancel(api: &Api, key: &str, at_ms: i64, refund: bool) -> (StatusCode, Value) {
    let mut body = serde_json::json!({"cancelReason": "고객 변심"});
    if refund {
        body["refundReceiveAccount"] = serde_json::json!({"bank": "20", "accountNumber": "1002000000", "holderName": "홍길동"});
    }
    let path = format!("/v1/payments/{key}/cancel");
    answer_at(api, Method::POST, &path, &body.to_string(), at_ms, None).await
}

/// The harness route's deposit at `at_ms`: its status and body.
async fn deposit_now(api: &Api, key: &str, at_ms: i64) -> (StatusCode, Value) {
    let at = jiff::Timestamp::from_millisecond(at_ms).unwrap();
    let (status, body) = api.deposit_now(key, at, Lang::En).await.unwrap();
    (status, serde_json::from_slice(&body).unwrap())
}

/// Plays the account timers due by `at_ms` as the timer task would: how many there were.
async fn play_timers(api: &Api, at_ms: i64) -> usize {
    let (Some(timers), Some(hooks)) = (&api.timers, &api.webhooks) else {
        panic!("webhooks are on, so the timers are");
    };
    let mut played = 0;
    while let Ok(due) = timers.take_due(at_ms) {
        timers.settle_and_tell(&api.ledger, hooks, due, at_ms).await;
        played += 1;
    }
    played
}

/// Now on the wall clock: the issue time of these accounts.
fn wall_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

fn after(text: &str) -> Option<Deposit> {
    Some(Deposit::After(Latency::parse(text).unwrap()))
}

fn memory_ledger() -> LedgerChoice {
    LedgerChoice::Memory {
        capacity: DEFAULT_LEDGER_CAPACITY,
    }
}

/// A cancel that meets an account past its due date before its timer: the expiry is told by
/// the cancel, once, and the timer coming later tells nothing.
async fn cancel_meets_an_expired_account(ledger: &LedgerChoice) {
    let receiver = Receiver::start().await;
    let api = api_to(&receiver, ledger);
    let t0 = wall_ms();
    let key = issue(&api, &format!("order-va-hook-1-{t0}"), t0, None).await;

    // Two hours on (due after one), the timer not yet come: the cancel finds it EXPIRED.
    let (status, refused) = cancel(&api, &key, t0 + 120 * MINUTE_MS, false).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert_eq!(refused["code"], "NOT_CANCELABLE_PAYMENT");
    // Then the timer comes, and finds the account already settled.
    assert_eq!(play_timers(&api, t0 + 121 * MINUTE_MS).await, 1);

    let events = receiver.delivered(&api).await;
    told_once(&events, "PAYMENT_STATUS_CHANGED", "EXPIRED");
    assert_eq!(events.len(), 3, "issue (two events) and expiry: {events:?}");
}

/// A refunding cancel that meets an account past its directed deposit before its timer: the
/// deposit is told, then the cancel, each once.
async fn cancel_meets_a_deposited_account(ledger: &LedgerChoice) {
    let receiver = Receiver::start().await;
    let api = api_to(&receiver, ledger);
    let t0 = wall_ms();
    let key = issue(&api, &format!("order-va-hook-2-{t0}"), t0, after("30m")).await;

    // 45 minutes on, the deposit (at 30) not yet played: the cancel refunds a DONE payment.
    let (status, canceled) = cancel(&api, &key, t0 + 45 * MINUTE_MS, true).await;
    assert_eq!(status, StatusCode::OK, "{canceled}");
    assert_eq!(canceled["status"], "CANCELED");
    assert_eq!(play_timers(&api, t0 + 46 * MINUTE_MS).await, 1);

    let events = receiver.delivered(&api).await;
    for kind in ["PAYMENT_STATUS_CHANGED", "DEPOSIT_CALLBACK"] {
        for status in ["WAITING_FOR_DEPOSIT", "DONE", "CANCELED"] {
            told_once(&events, kind, status);
        }
    }
    assert_eq!(events.len(), 6, "{events:?}");
}

/// The harness deposit that meets one account past its due date and one past its directed
/// deposit, neither timer played: it refuses both (they are not waiting) and tells each change
/// once.
async fn harness_deposit_meets_settled_accounts(ledger: &LedgerChoice) {
    let receiver = Receiver::start().await;
    let api = api_to(&receiver, ledger);
    let t0 = wall_ms();
    let expired = issue(&api, &format!("order-va-hook-3-{t0}"), t0, None).await;
    let deposited = issue(&api, &format!("order-va-hook-4-{t0}"), t0, after("30m")).await;
    for (key, now) in [(&expired, "EXPIRED"), (&deposited, "DONE")] {
        let (status, body) = deposit_now(&api, key, t0 + 120 * MINUTE_MS).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["code"], "NOT_WAITING_FOR_DEPOSIT");
        assert!(body["message"].as_str().unwrap().contains(now), "{body}");
    }
    assert_eq!(play_timers(&api, t0 + 121 * MINUTE_MS).await, 2);

    let events = receiver.delivered(&api).await;
    told_once(&events, "PAYMENT_STATUS_CHANGED", "EXPIRED");
    told_once(&events, "PAYMENT_STATUS_CHANGED", "DONE");
    told_once(&events, "DEPOSIT_CALLBACK", "DONE");
    assert_eq!(
        events.len(),
        4 + 3,
        "two issues, an expiry, a deposit: {events:?}"
    );
}

/// The timer that settles first tells the expiry; the cancel and the harness deposit after it
/// find nothing to tell.
async fn timer_settles_first(ledger: &LedgerChoice) {
    let receiver = Receiver::start().await;
    let api = api_to(&receiver, ledger);
    let t0 = wall_ms();
    let key = issue(&api, &format!("order-va-hook-5-{t0}"), t0, None).await;
    assert_eq!(play_timers(&api, t0 + 61 * MINUTE_MS).await, 1);
    let (_, refused) = cancel(&api, &key, t0 + 62 * MINUTE_MS, false).await;
    assert_eq!(refused["code"], "NOT_CANCELABLE_PAYMENT");
    let (status, _) = deposit_now(&api, &key, t0 + 63 * MINUTE_MS).await;
    assert_eq!(status, StatusCode::CONFLICT);

    let events = receiver.delivered(&api).await;
    told_once(&events, "PAYMENT_STATUS_CHANGED", "EXPIRED");
    assert_eq!(events.len(), 3, "{events:?}");
}

/// A cancel before the account's moment settles nothing: only the cancel is told, and the
/// timer coming to a CANCELED payment tells nothing.
async fn cancel_before_the_moment(ledger: &LedgerChoice) {
    let receiver = Receiver::start().await;
    let api = api_to(&receiver, ledger);
    let t0 = wall_ms();
    let key = issue(&api, &format!("order-va-hook-6-{t0}"), t0, after("30m")).await;
    let (status, canceled) = cancel(&api, &key, t0 + 10 * MINUTE_MS, false).await;
    assert_eq!(status, StatusCode::OK, "{canceled}");
    assert_eq!(play_timers(&api, t0 + 31 * MINUTE_MS).await, 1);

    let events = receiver.delivered(&api).await;
    told_once(&events, "PAYMENT_STATUS_CHANGED", "CANCELED");
    told_once(&events, "DEPOSIT_CALLBACK", "CANCELED");
    assert_eq!(events.len(), 4, "issue and cancel: {events:?}");
}

#[tokio::test]
async fn a_cancel_that_meets_an_expired_account_before_its_timer_tells_the_expiry_once() {
    cancel_meets_an_expired_account(&memory_ledger()).await;
}

#[tokio::test]
async fn a_cancel_that_meets_a_due_deposit_before_its_timer_tells_it_once_then_the_cancel() {
    cancel_meets_a_deposited_account(&memory_ledger()).await;
}

#[tokio::test]
async fn the_harness_deposit_that_meets_a_settled_account_tells_its_change_once() {
    harness_deposit_meets_settled_accounts(&memory_ledger()).await;
}

#[tokio::test]
async fn a_timer_that_settles_first_leaves_the_later_requests_nothing_to_tell() {
    timer_settles_first(&memory_ledger()).await;
}

#[tokio::test]
async fn a_cancel_before_the_accounts_moment_tells_only_the_cancel() {
    cancel_before_the_moment(&memory_ledger()).await;
}

/// A `redis-server` of this test's own on a free loopback port (needs it on the PATH, as
/// `.ci/run` installs it), killed on drop.
struct Redis {
    port: u16,
    child: std::process::Child,
}

impl Redis {
    async fn start() -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("redis-server must be installed (apt-get install redis-server)");
        let redis = Redis { port, child };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !redis.pong().await {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        redis
    }

    async fn pong(&self) -> bool {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await else {
            return false;
        };
        let mut buf = [0u8; 16];
        stream.write_all(b"PING\r\n").await.is_ok()
            && stream
                .read(&mut buf)
                .await
                .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// On the shared ledger a change is a compare-and-set that may run the closure again: the
/// request still tells what it settled exactly once, and the timer nothing after it.
#[tokio::test]
async fn on_a_redis_ledger_whoever_settles_an_account_tells_its_change_once() {
    let redis = Redis::start().await;
    let options = redis_ledger::RedisOptions {
        ttl: Duration::from_secs(3_600),
        timeout: Duration::from_secs(5),
        ca: None,
    };
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let metrics = crate::metrics::Metrics::new().ledger.clone();
    let ledger = LedgerChoice::Redis(RedisLedger::start(&url, options, metrics).unwrap());
    cancel_meets_an_expired_account(&ledger).await;
    cancel_meets_a_deposited_account(&ledger).await;
    harness_deposit_meets_settled_accounts(&ledger).await;
    timer_settles_first(&ledger).await;
    cancel_before_the_moment(&ledger).await;
}

/// Account `n` issued at `at_ms` on a stateless API, due an hour later: `order_name` carries
/// the tag its key keeps, `deposit` and `webhook` what the issuing request decided (a real
/// server decides them from that tag, or from a header the key does not keep). The issue's
/// answer.
async fn issue_stateless(
    api: &Api,
    n: u32,
    order_name: &str,
    at_ms: i64,
    (deposit, webhook): (Option<Deposit>, Option<Webhook>),
) -> Value {
    let order_id = format!("order-va-stateless-{n}-{at_ms}");
    let body = serde_json::json!({"amount": 30000, "orderId": order_id, "orderName": order_name,
                                  "customerName": "홍길동", "bank": "20", "validHours": 1});
    let path = "/v1/virtual-accounts";
    let (status, p) = answer_directed(
        api,
        Method::POST,
        path,
        &body.to_string(),
        at_ms,
        deposit,
        webhook,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{p}");
    assert_eq!(p["status"], "WAITING_FOR_DEPOSIT");
    p
}

/// [`issue_stateless`] of an account deposited 30 minutes after `at_ms`, as its key's tag says.
async fn issue_depositing(api: &Api, n: u32, at_ms: i64) -> Value {
    let directed = (after("30m"), None);
    issue_stateless(api, n, "패딩 [gazua: deposit=30m]", at_ms, directed).await
}

/// `POST /v1/payments` of a virtual account at `at_ms`: its paymentKey.
async fn create_va(api: &Api, order_id: &str, order_name: &str, at_ms: i64) -> String {
    let create = serde_json::json!({"method": "VIRTUAL_ACCOUNT", "amount": 30000,
        "orderId": order_id, "orderName": order_name, "successUrl": "https://shop.example/ok",
        "failUrl": "https://shop.example/fail"});
    let path = "/v1/payments";
    let (status, created) =
        answer_at(api, Method::POST, path, &create.to_string(), at_ms, None).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    created["paymentKey"].as_str().unwrap().to_owned()
}

/// The confirm of `body` at `at_ms` with the decided `deposit=`: it issues a virtual account.
async fn confirm_va(api: &Api, body: Value, at_ms: i64, deposit: Option<Deposit>) {
    let path = "/v1/payments/confirm";
    let (status, confirmed) =
        answer_at(api, Method::POST, path, &body.to_string(), at_ms, deposit).await;
    assert_eq!(status, StatusCode::OK, "{confirmed}");
    assert_eq!(confirmed["status"], "WAITING_FOR_DEPOSIT");
}

async fn inquire(api: &Api, key: &str, at_ms: i64) -> Value {
    let path = format!("/v1/payments/{key}");
    let (status, p) = answer_at(api, Method::GET, &path, "", at_ms, None).await;
    assert_eq!(status, StatusCode::OK, "{p}");
    p
}

/// Every event delivered to `receiver`, whole, once `api`'s outbox has drained.
async fn whole_events(receiver: &Receiver, api: &Api) -> Vec<Value> {
    receiver.delivered(api).await;
    receiver.got.lock().unwrap().clone()
}

/// The one `PAYMENT_STATUS_CHANGED` event in `status` among `events`.
fn status_event<'a>(events: &'a [Value], status: &str) -> &'a Value {
    let found: Vec<&Value> = events
        .iter()
        .filter(|e| e["eventType"] == "PAYMENT_STATUS_CHANGED" && e["data"]["status"] == status)
        .collect();
    assert_eq!(found.len(), 1, "one {status} event: {events:#?}");
    found[0]
}

/// Under `--ledger stateless` nothing records the account, so its timer rebuilds it from the
/// key: the directed deposit is told once, by the instance that issued it, with the payment an
/// inquiry on any instance shows; another instance's inquiry tells nothing.
#[tokio::test]
async fn on_the_stateless_ledger_the_issuing_timer_tells_a_directed_deposit_once() {
    let receiver = Receiver::start().await;
    let issuer = api_to(&receiver, &LedgerChoice::Stateless);
    let other = api_to(&receiver, &LedgerChoice::Stateless);
    let t0 = wall_ms();
    let issued = issue_depositing(&issuer, 1, t0).await;
    let key = issued["paymentKey"].as_str().unwrap();

    assert_eq!(play_timers(&issuer, t0 + 30 * MINUTE_MS - 1).await, 0);
    assert_eq!(play_timers(&issuer, t0 + 30 * MINUTE_MS).await, 1);
    let seen = inquire(&other, key, t0 + 31 * MINUTE_MS).await;
    assert_eq!(seen["status"], "DONE");
    assert_eq!(
        play_timers(&other, t0 + 31 * MINUTE_MS).await,
        0,
        "not its account"
    );
    assert_eq!(
        play_timers(&issuer, t0 + 120 * MINUTE_MS).await,
        0,
        "told, done"
    );

    let events = receiver.delivered(&issuer).await;
    told_once(&events, "PAYMENT_STATUS_CHANGED", "DONE");
    told_once(&events, "DEPOSIT_CALLBACK", "DONE");
    assert_eq!(
        events.len(),
        4,
        "issue (two events) and deposit (two): {events:?}"
    );
    let events = whole_events(&receiver, &other).await;
    assert_eq!(
        status_event(&events, "DONE")["data"],
        seen,
        "as an inquiry shows it"
    );
    let callback = events
        .iter()
        .find(|e| e.get("eventType").is_none() && e["status"] == "DONE")
        .unwrap();
    assert_eq!(callback["secret"], issued["secret"]);
    assert_eq!(callback["orderId"], issued["orderId"]);
}

/// An account nobody deposits expires at its due date: `EXPIRED` told once by its timer.
#[tokio::test]
async fn on_the_stateless_ledger_the_issuing_timer_tells_an_expiry_once() {
    let receiver = Receiver::start().await;
    let api = api_to(&receiver, &LedgerChoice::Stateless);
    let t0 = wall_ms();
    let issued = issue_stateless(&api, 2, "패딩", t0, (None, None)).await;
    let key = issued["paymentKey"].as_str().unwrap();
    assert_eq!(play_timers(&api, t0 + 60 * MINUTE_MS).await, 1);
    assert_eq!(play_timers(&api, t0 + 120 * MINUTE_MS).await, 0);
    let seen = inquire(&api, key, t0 + 61 * MINUTE_MS).await;

    let events = receiver.delivered(&api).await;
    told_once(&events, "PAYMENT_STATUS_CHANGED", "EXPIRED");
    assert_eq!(events.len(), 3, "issue (two events) and expiry: {events:?}");
    let events = whole_events(&receiver, &api).await;
    let expired = &status_event(&events, "EXPIRED")["data"];
    assert_eq!(expired["virtualAccount"]["expired"], true);
    assert_eq!(*expired, seen);
}

/// An account issued at the confirm of a create: the key knows the create's time only, so the
/// deposit is told as every inquiry shows it (approved at the create's time plus the delay),
/// when the issuing instance's timer comes. One whose key Gazua did not mint is never told.
#[tokio::test]
async fn on_the_stateless_ledger_an_account_issued_at_confirm_tells_its_deposit_once() {
    let receiver = Receiver::start().await;
    let api = api_to(&receiver, &LedgerChoice::Stateless);
    let t0 = wall_ms();
    let order_id = format!("order-va-stateless-3-{t0}");
    let key = &create_va(&api, &order_id, "패딩 [gazua: deposit=30m]", t0).await;
    let confirm = serde_json::json!({"paymentKey": key, "orderId": order_id, "amount": 30000});
    confirm_va(&api, confirm, t0 + MINUTE_MS, after("30m")).await;
    // A key Gazua did not mint, confirmed as a virtual account: no instance can rebuild it.
    let unminted = serde_json::json!({"paymentKey": format!("pk-va-unminted-{t0}"),
        "orderId": format!("order-va-stateless-3b-{t0}"), "amount": 30000,
        "method": "VIRTUAL_ACCOUNT"});
    confirm_va(&api, unminted, t0 + MINUTE_MS, after("30m")).await;

    assert_eq!(
        play_timers(&api, t0 + 30 * MINUTE_MS).await,
        0,
        "set at confirm"
    );
    assert_eq!(play_timers(&api, t0 + 31 * MINUTE_MS).await, 2);
    let seen = inquire(&api, key, t0 + 31 * MINUTE_MS).await;
    assert_eq!(seen["status"], "DONE");

    let events = receiver.delivered(&api).await;
    told_once(&events, "PAYMENT_STATUS_CHANGED", "DONE");
    told_once(&events, "DEPOSIT_CALLBACK", "DONE");
    assert_eq!(events.len(), 4 + 2, "two issues, one deposit: {events:?}");
    let events = whole_events(&receiver, &api).await;
    assert_eq!(status_event(&events, "DONE")["data"], seen);
}

/// A deposit and `webhook=` decided outside the key's tag (a header, a profile rule): the
/// stateless timer keeps the `webhook=` (the expiry is delivered twice as the issue directed),
/// and, the key knowing no deposit, tells what every inquiry shows: the expiry at the due date.
#[tokio::test]
async fn on_the_stateless_ledger_the_timer_follows_the_issues_webhook_and_what_the_key_shows() {
    let receiver = Receiver::start().await;
    let api = api_to(&receiver, &LedgerChoice::Stateless);
    let t0 = wall_ms();
    let directed = (after("30m"), Some(Webhook::Duplicate));
    let issued = issue_stateless(&api, 4, "패딩", t0, directed).await;
    let key = issued["paymentKey"].as_str().unwrap();
    assert_eq!(play_timers(&api, t0 + 30 * MINUTE_MS).await, 1);
    assert_eq!(
        inquire(&api, key, t0 + 30 * MINUTE_MS).await["status"],
        "WAITING_FOR_DEPOSIT"
    );
    assert_eq!(
        play_timers(&api, t0 + 60 * MINUTE_MS).await,
        1,
        "set again for the due date"
    );
    assert_eq!(
        inquire(&api, key, t0 + 60 * MINUTE_MS).await["status"],
        "EXPIRED"
    );

    let events = receiver.delivered(&api).await;
    assert_eq!(
        count(&events, "PAYMENT_STATUS_CHANGED", "DONE"),
        0,
        "{events:?}"
    );
    assert_eq!(
        count(&events, "PAYMENT_STATUS_CHANGED", "EXPIRED"),
        2,
        "{events:?}"
    );
    assert_eq!(
        events.len(),
        2 * 2 + 2,
        "issue and expiry, each twice: {events:?}"
    );
}

/// A cancel is not recorded under `--ledger stateless` (an inquiry after it shows the account
/// as its key does), so it stops no timer: the deposit is still told, after the cancel's own
/// events.
#[tokio::test]
async fn on_the_stateless_ledger_a_cancel_stops_no_timer() {
    let receiver = Receiver::start().await;
    let api = api_to(&receiver, &LedgerChoice::Stateless);
    let t0 = wall_ms();
    let issued = issue_depositing(&api, 5, t0).await;
    let key = issued["paymentKey"].as_str().unwrap();
    let (status, canceled) = cancel(&api, key, t0 + 10 * MINUTE_MS, false).await;
    assert_eq!(status, StatusCode::OK, "{canceled}");
    assert_eq!(canceled["status"], "CANCELED");
    assert_eq!(play_timers(&api, t0 + 30 * MINUTE_MS).await, 1);
    assert_eq!(
        inquire(&api, key, t0 + 30 * MINUTE_MS).await["status"],
        "DONE"
    );

    let events = receiver.delivered(&api).await;
    for status in ["WAITING_FOR_DEPOSIT", "CANCELED", "DONE"] {
        for kind in ["PAYMENT_STATUS_CHANGED", "DEPOSIT_CALLBACK"] {
            told_once(&events, kind, status);
        }
    }
    assert_eq!(events.len(), 6, "{events:?}");
}

/// Nothing remembers a confirm under `--ledger stateless`: a key confirmed twice is issued
/// twice, each issue with its timer, and each tells its own events.
#[tokio::test]
async fn on_the_stateless_ledger_a_key_confirmed_twice_is_issued_and_told_twice() {
    let receiver = Receiver::start().await;
    let api = api_to(&receiver, &LedgerChoice::Stateless);
    let t0 = wall_ms();
    let order_id = format!("order-va-stateless-6-{t0}");
    let key = create_va(&api, &order_id, "패딩", t0).await;
    let confirm = serde_json::json!({"paymentKey": key, "orderId": order_id, "amount": 30000});
    for at in [t0 + MINUTE_MS, t0 + 2 * MINUTE_MS] {
        confirm_va(&api, confirm.clone(), at, None).await;
    }
    let week_ms = virtual_account::DEFAULT_VALID_HOURS * 60 * MINUTE_MS;
    assert_eq!(play_timers(&api, t0 + 2 * MINUTE_MS + week_ms).await, 2);

    let events = receiver.delivered(&api).await;
    assert_eq!(
        count(&events, "PAYMENT_STATUS_CHANGED", "WAITING_FOR_DEPOSIT"),
        2
    );
    assert_eq!(
        count(&events, "PAYMENT_STATUS_CHANGED", "EXPIRED"),
        2,
        "{events:?}"
    );
    assert_eq!(events.len(), 2 * 2 + 2, "{events:?}");
}
