//! Webhooks: what the PG sends the merchant later. Events (`PAYMENT_STATUS_CHANGED`,
//! `DEPOSIT_CALLBACK`) go into one bounded outbox the answer path never waits on, and one
//! scheduler task hands them to deliveries, at most `--webhook-concurrency` at once, over one
//! pooled HTTP client. Every delivery not yet in flight — ready now, waiting out a directed
//! delay, a retry interval or a reordering hold — sits in that outbox, ordered by when it is due;
//! its size is `--webhook-outbox`, and when it is full the oldest undelivered event is dropped
//! and counted. A failed delivery is retried on the PG's schedule (1, 4, 16, 64, 256, 1024, 4096
//! minutes, times `--webhook-time-scale`). Delivery is directed by flags: `--webhook-duplicate`,
//! `--webhook-drop`, `--webhook-reorder` (fractions of events) and `--webhook-delay` (a latency
//! expression before the first try).
//!
//! Reordering holds an event back until the next event of the same payment has been tried (so
//! the merchant sees `DONE` before `WAITING_FOR_DEPOSIT`), or for one scaled retry minute when
//! no later event comes.
//!
//! `CANCEL_STATUS_CHANGED` is not sent: the real PG sends it for asynchronous (overseas
//! easy-pay) cancels, which Gazua does not model.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::path::{Path, PathBuf};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{Request, Uri, header};
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use prometheus::{Histogram, IntCounter};
use rand::RngExt;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;

use crate::api::ledger::{Payment, Status};
use crate::directive::{Latency, Webhook};
use crate::profile::WebhooksKnob;

/// The PG's retry intervals after a failed delivery, in minutes.
pub const RETRY_MINUTES: [u64; 7] = [1, 4, 16, 64, 256, 1024, 4096];

/// A delivery not answered within this long has failed (merchants answer within 10 s).
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// `--webhook-*`: where and how events are delivered. The URLs and the fractions add to and
/// replace the served profile's `webhooks` section (see [`Effective`]).
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// `--webhook-url` (repeatable): every event goes to each, beside the profile's.
    pub urls: Vec<Uri>,
    /// `--webhook-outbox`: deliveries waiting (ready, delayed, retrying or held), at most.
    pub outbox: usize,
    /// `--webhook-concurrency`: deliveries in flight at once, at most.
    pub concurrency: usize,
    /// `--webhook-time-scale`: the retry schedule's minutes are multiplied by this (0.001: a
    /// minute passes in 60 ms).
    pub time_scale: f64,
    /// `--webhook-duplicate`: the fraction of events delivered twice (same transmission id).
    pub duplicate: Option<f64>,
    /// `--webhook-drop`: the fraction of events never sent.
    pub drop: Option<f64>,
    /// `--webhook-reorder`: the fraction of events held back until the payment's next event.
    pub reorder: Option<f64>,
    /// `--webhook-delay`: waited before an event's first delivery.
    pub delay: Option<Latency>,
    /// `--webhook-ca`: PEM certificates trusted for `https://` targets beside the public roots
    /// (a receiver with a self-signed certificate).
    pub ca: Option<PathBuf>,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            urls: Vec::new(),
            outbox: 10_000,
            concurrency: 64,
            time_scale: 1.0,
            duplicate: None,
            drop: None,
            reorder: None,
            delay: None,
            ca: None,
        }
    }
}

/// What is in force: the flags over the served profile's `webhooks` section. Swapped whole
/// when the profiles reload or another profile is served.
#[derive(Debug, Default)]
struct Effective {
    urls: Vec<Uri>,
    duplicate: f64,
    drop: f64,
    reorder: f64,
    delay: Option<Latency>,
}

impl Effective {
    /// URLs: the profile's, then the flags' (each once). Every other field: the flag when
    /// given, else the profile's, else none.
    fn new(flags: &WebhookSettings, profile: Option<&WebhooksKnob>) -> Effective {
        let empty = WebhooksKnob::default();
        let profile = profile.unwrap_or(&empty);
        let mut urls = profile.urls.clone();
        for url in &flags.urls {
            if !urls.contains(url) {
                urls.push(url.clone());
            }
        }
        Effective {
            urls,
            duplicate: flags.duplicate.or(profile.duplicate).unwrap_or(0.0),
            drop: flags.drop.or(profile.drop).unwrap_or(0.0),
            reorder: flags.reorder.or(profile.reorder).unwrap_or(0.0),
            delay: flags.delay.clone().or_else(|| profile.delay.clone()),
        }
    }
}

impl WebhookSettings {
    /// One scaled minute of the retry schedule: also the longest a reordered event is held.
    fn minutes(&self, minutes: u64) -> Duration {
        Duration::from_secs_f64(minutes as f64 * 60.0 * self.time_scale)
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
    /// An event held back behind the payment's next one because `--webhook-reorder` said so.
    pub reordered: IntCounter,
    /// Events still pending when the shutdown grace ran out.
    pub abandoned: IntCounter,
    pub latency: Histogram,
}

/// How one event is delivered, drawn from the flags' fractions.
#[derive(Debug, Clone, Copy, Default)]
struct Direction {
    drop: bool,
    duplicate: bool,
    reorder: bool,
    delay: Duration,
}

/// One delivery of one event to one URL.
struct Delivery {
    url: Uri,
    id: Arc<str>,
    event: &'static str,
    body: Bytes,
    retried: usize,
    made: Instant,
    /// The outbox's age order: the smallest is the oldest (a retry keeps its place).
    seq: u64,
    /// Held back for reordering: the payment whose next event releases it.
    held: Option<Arc<str>>,
    /// Earlier events of the payment, held back until this one has been tried.
    then: Vec<Delivery>,
}

impl Delivery {
    /// The deliveries this one carries, at every depth.
    fn carried(&self) -> usize {
        self.then.iter().map(|d| 1 + d.carried()).sum()
    }
}

/// Every delivery not in flight: one structure, bounded as a whole.
struct Outbox {
    capacity: usize,
    /// By age: the first is the oldest, dropped when the outbox is full.
    by_age: BTreeMap<u64, (Instant, Delivery)>,
    /// The same deliveries by due time: the first is the next to send.
    by_due: BTreeSet<(Instant, u64)>,
    /// Deliveries carried by others (held for reordering), in the outbox or in flight.
    carried: usize,
    /// Held deliveries not yet carried, per payment and URL: the payment's next event takes them.
    held: HashMap<(Arc<str>, Uri), Vec<u64>>,
    next_seq: u64,
}

impl Outbox {
    fn len(&self) -> usize {
        self.by_age.len() + self.carried
    }

    fn insert(&mut self, due: Instant, delivery: Delivery) {
        self.by_due.insert((due, delivery.seq));
        self.by_age.insert(delivery.seq, (due, delivery));
    }

    fn remove(&mut self, seq: u64) -> Option<Delivery> {
        let (due, delivery) = self.by_age.remove(&seq)?;
        self.by_due.remove(&(due, seq));
        if let Some(payment) = &delivery.held {
            let key = (payment.clone(), delivery.url.clone());
            if let Some(seqs) = self.held.get_mut(&key) {
                seqs.retain(|&s| s != seq);
                if seqs.is_empty() {
                    self.held.remove(&key);
                }
            }
        }
        Some(delivery)
    }

    /// Pushes the oldest out until the bound holds; returns what was dropped (with what each
    /// carried).
    fn trim(&mut self) -> Vec<Delivery> {
        let mut out = Vec::new();
        while self.len() > self.capacity {
            let Some(&seq) = self.by_age.keys().next() else {
                break;
            };
            if let Some(old) = self.remove(seq) {
                self.carried -= old.carried();
                out.push(old);
            }
        }
        out
    }

    /// The next delivery due by `now`, or when the next falls due (`None`: the outbox is empty).
    fn pop_due(&mut self, now: Instant) -> Result<Delivery, Option<Instant>> {
        match self.by_due.first() {
            Some(&(due, seq)) if due <= now => Ok(self.remove(seq).expect("indexed both ways")),
            Some(&(due, _)) => Err(Some(due)),
            None => Err(None),
        }
    }
}

/// The webhook sender; cheap to clone.
#[derive(Clone)]
pub struct Webhooks {
    inner: Arc<Inner>,
}

struct Inner {
    settings: WebhookSettings,
    effective: ArcSwap<Effective>,
    outbox: Mutex<Outbox>,
    /// Something new is in the outbox: the scheduler looks again.
    ready: Notify,
    /// `--webhook-concurrency` permits, one per delivery in flight.
    permits: Arc<Semaphore>,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    metrics: WebhookMetrics,
    /// Deliveries in the outbox, carried or in flight.
    pending: AtomicUsize,
    idle: Notify,
    seq: AtomicU64,
    /// `gz-<process>-`: made once (the process id is a system call each time it is asked).
    id_prefix: String,
}

impl Webhooks {
    /// Starts the scheduler (inside the tokio runtime), delivering as the flags and the served
    /// profile's `webhooks` say. `None` when neither the flags nor any loaded profile names a
    /// URL (`profiles_have_urls`): then nothing on the answer path prepares an event. `Err`
    /// when `--webhook-ca` cannot be read.
    pub fn start(
        settings: WebhookSettings,
        served: Option<&WebhooksKnob>,
        profiles_have_urls: bool,
        metrics: WebhookMetrics,
    ) -> Result<Option<Webhooks>, String> {
        if settings.urls.is_empty() && !profiles_have_urls {
            return Ok(None);
        }
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector(settings.ca.as_deref())?);
        let hooks = Webhooks {
            inner: Arc::new(Inner {
                outbox: Mutex::new(Outbox {
                    capacity: settings.outbox,
                    by_age: BTreeMap::new(),
                    by_due: BTreeSet::new(),
                    carried: 0,
                    held: HashMap::new(),
                    next_seq: 0,
                }),
                permits: Arc::new(Semaphore::new(settings.concurrency.max(1))),
                effective: ArcSwap::from_pointee(Effective::new(&settings, served)),
                settings,
                ready: Notify::new(),
                client,
                metrics,
                pending: AtomicUsize::new(0),
                idle: Notify::new(),
                seq: AtomicU64::new(0),
                id_prefix: format!("gz-{:016x}-", u64::from(std::process::id()) ^ 0x6761_7a75),
            }),
        };
        tokio::spawn(hooks.clone().schedule());
        Ok(Some(hooks))
    }

    /// Another profile is served, or the profiles were reloaded: its `webhooks` section (under
    /// the flags) is in force for the events made from now on.
    pub fn serve_profile(&self, served: Option<&WebhooksKnob>) {
        let effective = Effective::new(&self.inner.settings, served);
        tracing::info!(
            urls = effective.urls.len(),
            "webhook targets and fractions set from the served profile and the flags"
        );
        self.inner.effective.store(Arc::new(effective));
    }

    /// `--webhook-outbox`: how many deliveries may wait.
    pub fn capacity(&self) -> usize {
        self.inner.settings.outbox
    }

    /// Counts an event lost before it reached the outbox (a virtual account's timer pushed out
    /// of its bounded set).
    pub fn count_dropped(&self) {
        self.inner.metrics.dropped.inc();
    }

    /// The events a payment's new state sends: `PAYMENT_STATUS_CHANGED`, and for a virtual
    /// account's issue, deposit or cancel `DEPOSIT_CALLBACK` too (the PG sends both). A
    /// `webhook=` directive decides how they are delivered instead of the flags' fractions.
    pub fn payment_changed(&self, p: &Payment, directed: Option<&Webhook>) {
        // Served by a profile without URLs (another loaded profile has some): nowhere to send.
        if self.inner.effective.load().urls.is_empty() {
            return;
        }
        let created = created_at();
        let payment = crate::api::render_payment(p);
        let mut body = Vec::with_capacity(payment.len() + 96);
        body.extend_from_slice(br#"{"eventType":"PAYMENT_STATUS_CHANGED","createdAt":""#);
        body.extend_from_slice(created.as_bytes());
        body.extend_from_slice(br#"","data":"#);
        body.extend_from_slice(&payment);
        body.push(b'}');
        let key: Arc<str> = p.key().into();
        self.enqueue(&key, directed, "PAYMENT_STATUS_CHANGED", Bytes::from(body));
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
            self.enqueue(
                &key,
                directed,
                "DEPOSIT_CALLBACK",
                Bytes::from(body.to_string()),
            );
        }
    }

    /// How this event is delivered: as `webhook=` directs, else drawn from the flags' fractions.
    fn direct(&self, effective: &Effective, directed: Option<&Webhook>) -> Direction {
        let mut rng = rand::rng();
        if let Some(directed) = directed {
            let mut direction = Direction::default();
            match directed {
                Webhook::Send => {}
                Webhook::Drop => direction.drop = true,
                Webhook::Duplicate => direction.duplicate = true,
                Webhook::Reorder => direction.reorder = true,
                Webhook::Delay(latency) => direction.delay = latency.sample(&mut rng),
            }
            return direction;
        }
        let mut chance = |fraction: f64| fraction > 0.0 && rng.random::<f64>() < fraction;
        let (drop, duplicate, reorder) = (
            chance(effective.drop),
            chance(effective.duplicate),
            chance(effective.reorder),
        );
        let delay = effective
            .delay
            .as_ref()
            .map_or(Duration::ZERO, |l| l.sample(&mut rng));
        Direction {
            drop,
            duplicate,
            reorder,
            delay,
        }
    }

    /// Puts one event into the outbox for every URL, or drops it as directed. Never waits:
    /// a full outbox loses its oldest undelivered event instead.
    fn enqueue(
        &self,
        payment: &Arc<str>,
        directed: Option<&Webhook>,
        event: &'static str,
        body: Bytes,
    ) {
        let inner = &self.inner;
        let effective = inner.effective.load();
        let direction = self.direct(&effective, directed);
        if direction.drop {
            inner.metrics.skipped.inc();
            return;
        }
        let copies = if direction.duplicate {
            inner.metrics.duplicated.inc();
            2
        } else {
            1
        };
        if direction.reorder {
            inner.metrics.reordered.inc();
        }
        let n = inner.seq.fetch_add(1, Ordering::Relaxed);
        let id: Arc<str> = format!("{}{n}", inner.id_prefix).into();
        let now = Instant::now();
        let mut due = now + direction.delay;
        if direction.reorder {
            due += inner.settings.minutes(1);
        }
        let dropped = {
            let mut outbox = inner.outbox.lock().unwrap_or_else(|e| e.into_inner());
            for url in &effective.urls {
                // The payment's events held back so far go after this one's first copy.
                let then: Vec<Delivery> = outbox
                    .held
                    .remove(&(payment.clone(), url.clone()))
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|seq| outbox.remove(seq))
                    .map(|mut held| {
                        held.held = None;
                        held
                    })
                    .collect();
                outbox.carried += then.len();
                let mut then = Some(then);
                for _ in 0..copies {
                    let seq = outbox.next_seq;
                    outbox.next_seq += 1;
                    let delivery = Delivery {
                        url: url.clone(),
                        id: id.clone(),
                        event,
                        body: body.clone(),
                        retried: 0,
                        made: now,
                        seq,
                        held: direction.reorder.then(|| payment.clone()),
                        then: then.take().unwrap_or_default(),
                    };
                    if direction.reorder {
                        outbox
                            .held
                            .entry((payment.clone(), url.clone()))
                            .or_default()
                            .push(seq);
                    }
                    inner.pending.fetch_add(1, Ordering::SeqCst);
                    outbox.insert(due, delivery);
                }
            }
            outbox.trim()
        };
        self.dropped(dropped);
        inner.ready.notify_one();
    }

    /// Puts deliveries (back) into the outbox, due at `due`.
    fn requeue(&self, due: Instant, deliveries: impl IntoIterator<Item = Delivery>) {
        let dropped = {
            let mut outbox = self.inner.outbox.lock().unwrap_or_else(|e| e.into_inner());
            for delivery in deliveries {
                outbox.insert(due, delivery);
            }
            outbox.trim()
        };
        self.dropped(dropped);
        self.inner.ready.notify_one();
    }

    /// Counts and logs deliveries pushed out of a full outbox, with what they carried.
    fn dropped(&self, dropped: Vec<Delivery>) {
        let mut stack = dropped;
        while let Some(old) = stack.pop() {
            self.inner.metrics.dropped.inc();
            tracing::warn!(
                target: "access",
                transmission_id = &*old.id,
                event = old.event,
                "webhook dropped: the outbox is full (--webhook-outbox)"
            );
            stack.extend(old.then);
            self.done();
        }
    }

    fn done(&self) {
        if self.inner.pending.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.inner.idle.notify_waiters();
        }
    }

    /// The one scheduler: takes a delivery permit, then the next due delivery, and sends it on
    /// its own task. Deliveries waiting for their time cost an outbox entry, not a task.
    async fn schedule(self) {
        let inner = &self.inner;
        loop {
            let Ok(permit) = inner.permits.clone().acquire_owned().await else {
                return;
            };
            let delivery = loop {
                let next = {
                    let mut outbox = inner.outbox.lock().unwrap_or_else(|e| e.into_inner());
                    outbox.pop_due(Instant::now())
                };
                match next {
                    Ok(delivery) => break delivery,
                    // `notify_one` keeps a permit when nobody waits, so a push between the
                    // look and the wait is not missed.
                    Err(Some(at)) => {
                        tokio::select! {
                            () = tokio::time::sleep_until(at) => {}
                            () = inner.ready.notified() => {}
                        }
                    }
                    Err(None) => inner.ready.notified().await,
                }
            };
            let hooks = self.clone();
            tokio::spawn(async move {
                hooks.deliver(delivery).await;
                drop(permit);
            });
        }
    }

    async fn deliver(&self, mut delivery: Delivery) {
        let inner = &self.inner;
        let url = &delivery.url;
        let request = Request::post(url.clone())
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
            url = %url,
            status = status.unwrap_or(0),
            retried = delivery.retried,
            "webhook"
        );
        // The events held behind this one go now that it has been tried, whatever its answer.
        let then = std::mem::take(&mut delivery.then);
        if !then.is_empty() {
            {
                let mut outbox = inner.outbox.lock().unwrap_or_else(|e| e.into_inner());
                outbox.carried -= then.len();
            }
            self.requeue(Instant::now(), then);
        }
        if status == Some(200) {
            inner.metrics.sent.inc();
            inner
                .metrics
                .latency
                .observe(delivery.made.elapsed().as_secs_f64());
            self.done();
            return;
        }
        let Some(&minutes) = RETRY_MINUTES.get(delivery.retried) else {
            inner.metrics.failed.inc();
            self.done();
            return;
        };
        inner.metrics.retried.inc();
        delivery.retried += 1;
        delivery.held = None;
        self.requeue(Instant::now() + inner.settings.minutes(minutes), [delivery]);
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

/// One connector for `http://` and `https://` targets. TLS is rustls with the ring provider
/// (as the listener's), trusting the Mozilla roots compiled in (webpki-roots: the runtime image
/// is `FROM scratch`, with no system CA bundle to read) plus `--webhook-ca`.
fn connector(ca: Option<&Path>) -> Result<HttpsConnector<HttpConnector>, String> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(ca) = ca {
        let pem = std::fs::read(ca)
            .map_err(|e| format!("--webhook-ca '{}': cannot read it ({e})", ca.display()))?;
        let certificates = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .ok()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                format!(
                    "--webhook-ca '{}': expected PEM certificates (-----BEGIN CERTIFICATE-----)",
                    ca.display()
                )
            })?;
        for certificate in certificates {
            roots
                .add(certificate)
                .map_err(|e| format!("--webhook-ca '{}': {e}", ca.display()))?;
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("webhook tls: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut http = HttpConnector::new();
    // The https layer hands `https://` URLs down to this connector for the TCP part.
    http.enforce_http(false);
    http.set_connect_timeout(Some(Duration::from_secs(5)));
    http.set_nodelay(true);
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http))
}

/// `createdAt` of an event: ISO 8601 with microseconds and no offset, in KST as the PG's.
fn created_at() -> String {
    let now = jiff::Timestamp::now();
    let dt = jiff::tz::Offset::constant(9).to_datetime(now);
    dt.strftime("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbox(capacity: usize) -> Outbox {
        Outbox {
            capacity,
            by_age: BTreeMap::new(),
            by_due: BTreeSet::new(),
            carried: 0,
            held: HashMap::new(),
            next_seq: 0,
        }
    }

    fn delivery(seq: u64) -> Delivery {
        Delivery {
            url: Uri::from_static("http://127.0.0.1:9/hooks"),
            id: format!("id-{seq}").into(),
            event: "PAYMENT_STATUS_CHANGED",
            body: Bytes::new(),
            retried: 0,
            made: Instant::now(),
            seq,
            held: None,
            then: Vec::new(),
        }
    }

    #[test]
    fn the_outbox_sends_by_due_time_and_drops_by_age_with_what_each_carries() {
        let now = Instant::now();
        let mut o = outbox(3);
        // The oldest is due last (a retry waiting); the carrier holds a reordered event.
        o.insert(now + Duration::from_secs(60), delivery(0));
        o.insert(now, delivery(1));
        let mut carrier = delivery(2);
        carrier.then.push(delivery(3));
        o.carried += carrier.carried();
        o.insert(now + Duration::from_millis(1), carrier);
        assert_eq!(o.len(), 4);
        let dropped: Vec<u64> = o.trim().iter().map(|d| d.seq).collect();
        assert_eq!(dropped, [0], "the oldest goes, not the one due last");
        assert_eq!(o.len(), 3);
        assert_eq!(
            o.pop_due(now).map(|d| d.seq).ok(),
            Some(1),
            "due first, sent first"
        );
        assert!(
            matches!(o.pop_due(now), Err(Some(_))),
            "the carrier is not due yet"
        );
        // Full again at capacity 0: the carrier is dropped with the event it carries.
        o.capacity = 0;
        let dropped = o.trim();
        assert_eq!(dropped.len(), 1);
        assert_eq!(dropped[0].then.len(), 1);
        assert_eq!((o.len(), o.carried), (0, 0));
        assert!(matches!(o.pop_due(now), Err(None)));
    }
}
