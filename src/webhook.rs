//! Webhooks: what the PG sends the merchant later. Events (`PAYMENT_STATUS_CHANGED`,
//! `DEPOSIT_CALLBACK`) go into a bounded outbox the answer path never waits on — when it is
//! full the oldest undelivered event is dropped and counted — and a few workers deliver them
//! with one pooled HTTP client, retrying a failed delivery on the PG's schedule (1, 4, 16, 64,
//! 256, 1024, 4096 minutes, times `--webhook-time-scale`). Delivery is directed by flags:
//! `--webhook-duplicate`, `--webhook-drop` (fractions of events) and `--webhook-delay` (a
//! latency expression before the first try).
//!
//! `CANCEL_STATUS_CHANGED` is not sent: the real PG sends it for asynchronous (overseas
//! easy-pay) cancels, which Gazua does not model.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Uri, header};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use prometheus::{Histogram, IntCounter};
use rand::RngExt;
use tokio::sync::Notify;

use crate::api::ledger::{Payment, Status};
use crate::directive::Latency;

/// The PG's retry intervals after a failed delivery, in minutes.
pub const RETRY_MINUTES: [u64; 7] = [1, 4, 16, 64, 256, 1024, 4096];

/// A delivery not answered within this long has failed (merchants answer within 10 s).
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// How many deliveries run at once.
const WORKERS: usize = 16;

/// `--webhook-*`: where and how events are delivered.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// `--webhook-url` (repeatable): every event goes to each.
    pub urls: Vec<Uri>,
    /// `--webhook-outbox`: events waiting for delivery, at most.
    pub outbox: usize,
    /// `--webhook-time-scale`: the retry schedule's minutes are multiplied by this (0.001: a
    /// minute passes in 60 ms).
    pub time_scale: f64,
    /// `--webhook-duplicate`: the fraction of events delivered twice (same transmission id).
    pub duplicate: f64,
    /// `--webhook-drop`: the fraction of events never sent.
    pub drop: f64,
    /// `--webhook-delay`: waited before an event's first delivery.
    pub delay: Option<Latency>,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            urls: Vec::new(),
            outbox: 10_000,
            time_scale: 1.0,
            duplicate: 0.0,
            drop: 0.0,
            delay: None,
        }
    }
}

/// `gazua_webhooks_total{result}` and the delivery latency (event made → its 200).
#[derive(Clone)]
pub struct WebhookMetrics {
    /// A delivery answered 200.
    pub sent: IntCounter,
    /// A failed delivery scheduled again.
    pub retried: IntCounter,
    /// An event given up after its last retry.
    pub failed: IntCounter,
    /// The oldest undelivered event, pushed out of a full outbox.
    pub dropped: IntCounter,
    /// An event not sent because `--webhook-drop` said so.
    pub skipped: IntCounter,
    /// An extra delivery of an event because `--webhook-duplicate` said so.
    pub duplicated: IntCounter,
    /// Events still pending when the shutdown grace ran out.
    pub abandoned: IntCounter,
    pub latency: Histogram,
}

/// One delivery of one event to one URL.
struct Delivery {
    url: Uri,
    id: Arc<str>,
    event: &'static str,
    body: Bytes,
    retried: usize,
    made: Instant,
}

/// The webhook sender; cheap to clone.
#[derive(Clone)]
pub struct Webhooks {
    inner: Arc<Inner>,
}

struct Inner {
    settings: WebhookSettings,
    outbox: Mutex<VecDeque<Delivery>>,
    ready: Notify,
    client: Client<HttpConnector, Full<Bytes>>,
    metrics: WebhookMetrics,
    /// Deliveries queued, in flight or waiting for a retry or a delay.
    pending: AtomicUsize,
    idle: Notify,
    seq: AtomicU64,
}

impl Webhooks {
    /// Starts the workers (inside the tokio runtime). `None` without any `--webhook-url`.
    pub fn start(settings: WebhookSettings, metrics: WebhookMetrics) -> Option<Webhooks> {
        if settings.urls.is_empty() {
            return None;
        }
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        let hooks = Webhooks {
            inner: Arc::new(Inner {
                outbox: Mutex::new(VecDeque::with_capacity(settings.outbox.min(4096))),
                settings,
                ready: Notify::new(),
                client,
                metrics,
                pending: AtomicUsize::new(0),
                idle: Notify::new(),
                seq: AtomicU64::new(0),
            }),
        };
        for _ in 0..WORKERS {
            tokio::spawn(hooks.clone().work());
        }
        Some(hooks)
    }

    /// The events a payment's new state sends: `PAYMENT_STATUS_CHANGED`, and for a virtual
    /// account's issue, deposit or cancel `DEPOSIT_CALLBACK` too (the PG sends both).
    pub fn payment_changed(&self, p: &Payment) {
        let created = created_at();
        let payment = crate::api::render_payment(p);
        let mut body = Vec::with_capacity(payment.len() + 96);
        body.extend_from_slice(br#"{"eventType":"PAYMENT_STATUS_CHANGED","createdAt":""#);
        body.extend_from_slice(created.as_bytes());
        body.extend_from_slice(br#"","data":"#);
        body.extend_from_slice(&payment);
        body.push(b'}');
        self.enqueue("PAYMENT_STATUS_CHANGED", Bytes::from(body));
        if p.va.is_some()
            && matches!(
                p.status,
                Status::WaitingForDeposit | Status::Done | Status::Canceled
            )
        {
            let body = serde_json::json!({
                "createdAt": created,
                "secret": crate::api::virtual_account::secret(p.key()),
                "status": p.status.as_str(),
                "transactionKey": crate::api::transaction_key(p),
                "orderId": p.order_id(),
            });
            self.enqueue("DEPOSIT_CALLBACK", Bytes::from(body.to_string()));
        }
    }

    /// Puts one event into the outbox for every URL, or drops it as directed. Never waits:
    /// a full outbox loses its oldest undelivered event instead.
    fn enqueue(&self, event: &'static str, body: Bytes) {
        let inner = &self.inner;
        let mut rng = rand::rng();
        if inner.settings.drop > 0.0 && rng.random::<f64>() < inner.settings.drop {
            inner.metrics.skipped.inc();
            return;
        }
        let copies =
            if inner.settings.duplicate > 0.0 && rng.random::<f64>() < inner.settings.duplicate {
                inner.metrics.duplicated.inc();
                2
            } else {
                1
            };
        let n = inner.seq.fetch_add(1, Ordering::Relaxed);
        let id: Arc<str> =
            format!("gz-{:016x}-{n}", std::process::id() as u64 ^ 0x6761_7a75).into();
        let delay = inner.settings.delay.as_ref().map(|l| l.sample(&mut rng));
        for url in &inner.settings.urls {
            for _ in 0..copies {
                let delivery = Delivery {
                    url: url.clone(),
                    id: id.clone(),
                    event,
                    body: body.clone(),
                    retried: 0,
                    made: Instant::now(),
                };
                inner.pending.fetch_add(1, Ordering::SeqCst);
                match delay {
                    Some(d) if !d.is_zero() => {
                        let hooks = self.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(d).await;
                            hooks.push(delivery);
                        });
                    }
                    _ => self.push(delivery),
                }
            }
        }
    }

    fn push(&self, delivery: Delivery) {
        let inner = &self.inner;
        let pushed_out = {
            let mut outbox = inner.outbox.lock().unwrap_or_else(|e| e.into_inner());
            let out = (outbox.len() >= inner.settings.outbox).then(|| outbox.pop_front());
            outbox.push_back(delivery);
            out.flatten()
        };
        if let Some(old) = pushed_out {
            inner.metrics.dropped.inc();
            tracing::warn!(
                target: "access",
                transmission_id = &*old.id,
                event = old.event,
                "webhook dropped: the outbox is full (--webhook-outbox)"
            );
            self.done();
        }
        inner.ready.notify_one();
    }

    fn pop(&self) -> Option<Delivery> {
        let mut outbox = self.inner.outbox.lock().unwrap_or_else(|e| e.into_inner());
        outbox.pop_front()
    }

    fn done(&self) {
        if self.inner.pending.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.inner.idle.notify_waiters();
        }
    }

    async fn work(self) {
        loop {
            match self.pop() {
                Some(delivery) => self.deliver(delivery).await,
                None => self.inner.ready.notified().await,
            }
        }
    }

    async fn deliver(&self, delivery: Delivery) {
        let inner = &self.inner;
        let request = Request::post(delivery.url.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header("tosspayments-webhook-transmission-id", &*delivery.id)
            .header("tosspayments-webhook-transmission-time", created_at())
            .header(
                "tosspayments-webhook-transmission-retried-count",
                delivery.retried,
            )
            .body(Full::new(delivery.body.clone()));
        let status = match request {
            Ok(request) => {
                match tokio::time::timeout(DELIVERY_TIMEOUT, inner.client.request(request)).await {
                    Ok(Ok(response)) => Some(response.status().as_u16()),
                    _ => None,
                }
            }
            Err(_) => None,
        };
        tracing::info!(
            target: "access",
            transmission_id = &*delivery.id,
            event = delivery.event,
            url = %delivery.url,
            status = status.unwrap_or(0),
            retried = delivery.retried,
            "webhook"
        );
        if status == Some(200) {
            inner.metrics.sent.inc();
            inner
                .metrics
                .latency
                .observe(delivery.made.elapsed().as_secs_f64());
            self.done();
            return;
        }
        let Some(minutes) = RETRY_MINUTES.get(delivery.retried) else {
            inner.metrics.failed.inc();
            self.done();
            return;
        };
        inner.metrics.retried.inc();
        let wait = Duration::from_secs_f64(*minutes as f64 * 60.0 * inner.settings.time_scale);
        let hooks = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            hooks.push(Delivery {
                retried: delivery.retried + 1,
                ..delivery
            });
        });
    }

    /// Events not yet delivered (queued, in flight, waiting for a retry or a delay).
    pub fn pending(&self) -> usize {
        self.inner.pending.load(Ordering::SeqCst)
    }

    /// At shutdown: waits until every pending event is delivered or `grace` ends; what is
    /// left is reported abandoned (a log line and `gazua_webhooks_total{result="abandoned"}`).
    pub async fn drain(&self, grace: Duration) {
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let idle = self.inner.idle.notified();
            if self.pending() == 0 {
                return;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                break;
            }
        }
        let left = self.pending();
        if left > 0 {
            self.inner.metrics.abandoned.inc_by(left as u64);
            tracing::warn!(
                abandoned = left,
                "webhooks still pending when the shutdown grace ran out were abandoned"
            );
        }
    }
}

/// `createdAt` of an event: ISO 8601 with microseconds and no offset, in KST as the PG's.
fn created_at() -> String {
    let now = jiff::Timestamp::now();
    let dt = jiff::tz::Offset::constant(9).to_datetime(now);
    dt.strftime("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}
