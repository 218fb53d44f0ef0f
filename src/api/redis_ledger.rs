//! The shared ledger on Redis (`--ledger redis://…`): every instance of a fleet reads and
//! changes the same payments, so a confirm on one instance and a cancel on another agree.
//!
//! # Atomicity
//!
//! The lifecycle is decided by the same code as for the memory ledger (the routes' closures
//! over a [`Payment`]); Redis only commits it. A change reads the record, applies the closure,
//! and commits with one server-side script that sets the new record only if the stored one is
//! still byte-for-byte what was read (compare-and-set, as WATCH/MULTI would). On a conflict the
//! script answers with the record now stored and the closure runs again on it, so two
//! concurrent cancels can never both spend the same balance. No read-modify-write is ever
//! committed blindly from the client.
//!
//! # Layout (all keys expire after `--ledger-ttl`)
//!
//! - `gazua:pay:{paymentKey}` — the payment, compact JSON (~300 bytes).
//! - `gazua:order:{orderId}` — the paymentKey of the order's latest payment.
//! - `gazua:idem:{scope}` — an `Idempotency-Key`'s reservation (`R`, for
//!   [`RESERVATION_TTL_MS`]) then its stored answer (scope is a 64-bit hash in hex).
//!
//! # Failure
//!
//! Every call is bounded by `--ledger-timeout` ([`DEFAULT_TIMEOUT`]; waiting for an in-flight
//! slot included), so a slow or stopped Redis turns into a 503 `GAZUA_LEDGER_UNAVAILABLE`,
//! never a hang. The connection manager reconnects by itself with backoff; a ping every
//! [`HEALTH_INTERVAL`] keeps readiness true to Redis's state, and while Redis is unreachable
//! one direct connection attempt per ping says why (a 503's message and the log carry it).
//!
//! # TLS (`rediss://`)
//!
//! rustls with the ring provider (it builds with a C compiler alone, no cmake or nasm). The
//! server's certificate and name are always checked, against `--ledger-ca` when given (a
//! private CA), else against the bundled web roots: the release image is `FROM scratch`, with
//! no system trust store, and managed Redis (ElastiCache) certificates chain to those roots.

use std::borrow::Cow;
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::StatusCode;
use prometheus::{Histogram, IntCounter};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use super::ReplyCode;
use super::ledger::{Cancel, Payment, RESERVATION_TTL_MS, Reservation, Status, Stored, StoredBody};
use super::render;
use crate::codes::{self, CodeKind};
use crate::directive::CodeName;

/// The default `--ledger-timeout`: how long one ledger call may take before the request is
/// answered 503. A Redis next to Gazua answers in well under a millisecond; a second covers a
/// loaded one's hiccups while staying far below the timeouts of the clients under test.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// How often readiness asks Redis whether it is there.
pub const HEALTH_INTERVAL: Duration = Duration::from_millis(500);

/// At most this many ledger calls wait on Redis at once per instance; more wait for a slot
/// (within the timeout) instead of piling onto a struggling server.
pub const MAX_IN_FLIGHT: usize = 1024;

/// The default `--ledger-ttl`: the PG's idempotency window, 15 days.
pub const DEFAULT_TTL: Duration = Duration::from_secs(15 * 24 * 3600);

/// Commits a payment if the stored one is still what was read.
///
/// KEYS: payment, order index. ARGV: the record read (empty: absent), the new record (empty:
/// delete), ttl seconds, the paymentKey to index under the order (empty: none).
/// Answers `{1, ''}` when committed, `{0, current}` when another change came first.
const CAS: &str = r"
local cur = redis.call('GET', KEYS[1])
if cur == false then cur = '' end
if cur ~= ARGV[1] then return {0, cur} end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
end
if ARGV[4] ~= '' then redis.call('SET', KEYS[2], ARGV[4], 'EX', ARGV[3]) end
return {1, ''}
";

/// Reserves an idempotency scope if free. KEYS: the scope. ARGV: the reservation's lifetime
/// in ms. Answers nil when reserved, else what holds the scope (the marker or an answer).
const RESERVE: &str = r"
local held = redis.call('GET', KEYS[1])
if held then return held end
redis.call('SET', KEYS[1], 'R', 'PX', ARGV[1])
return false
";

/// Deletes a scope's reservation marker, never a stored answer. KEYS: the scope.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == 'R' then return redis.call('DEL', KEYS[1]) end
return 0
";

/// The value of a reserved scope whose answer is not stored yet.
const RESERVED: &[u8] = b"R";

/// Why a ledger call failed: the request is answered 503 with this as the message.
#[derive(Debug, Clone)]
pub struct LedgerDown(String);

impl fmt::Display for LedgerDown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The metric handles the ledger records into (resolved once, at start).
#[derive(Clone)]
pub struct LedgerMetrics {
    /// `gazua_ledger_call_seconds`.
    pub latency: Histogram,
    /// `gazua_ledger_errors_total{kind="timeout"}`.
    pub timeouts: IntCounter,
    /// `gazua_ledger_errors_total{kind="unavailable"}`.
    pub unavailable: IntCounter,
}

/// How the Redis ledger is reached and kept (`--ledger-ttl`, `--ledger-timeout`, `--ledger-ca`).
pub struct RedisOptions<'a> {
    pub ttl: Duration,
    pub timeout: Duration,
    pub ca: Option<&'a Path>,
}

pub struct RedisLedger {
    conn: ConnectionManager,
    /// For a direct connection attempt that says why Redis cannot be reached (the connection
    /// manager retries forever and only ever reports a timeout).
    client: redis::Client,
    /// What the last such attempt said (a refused certificate, a refused connection), added to
    /// a timeout's message until a call succeeds again.
    cause: std::sync::Mutex<Option<String>>,
    timeout: Duration,
    cas: Script,
    reserve: Script,
    release: Script,
    slots: Semaphore,
    ttl_secs: u64,
    healthy: AtomicBool,
    metrics: LedgerMetrics,
}

impl RedisLedger {
    /// Connects lazily: Gazua starts whether or not Redis is up yet, and readiness says which.
    /// Must be called inside the tokio runtime (it starts the health task).
    pub fn start(
        url: &str,
        options: RedisOptions<'_>,
        metrics: LedgerMetrics,
    ) -> Result<Arc<RedisLedger>, String> {
        let client = client(url, options.ca)?;
        let timeout = options.timeout;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(2))
            .set_number_of_retries(usize::MAX)
            .set_pipeline_buffer_size(MAX_IN_FLIGHT);
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|e| format!("redis ledger at {}: {e}", redacted(url)))?;
        let ledger = Arc::new(RedisLedger {
            conn,
            client,
            cause: std::sync::Mutex::new(None),
            timeout,
            cas: Script::new(CAS),
            reserve: Script::new(RESERVE),
            release: Script::new(RELEASE),
            slots: Semaphore::new(MAX_IN_FLIGHT),
            ttl_secs: options.ttl.as_secs().max(1),
            healthy: AtomicBool::new(false),
            metrics,
        });
        tokio::spawn(watch_health(Arc::downgrade(&ledger)));
        Ok(ledger)
    }

    /// Whether the last call or ping reached Redis.
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Runs one Redis call within the timeout and an in-flight slot, recording its latency
    /// and failures.
    async fn call<T, F>(&self, run: impl FnOnce(ConnectionManager) -> F) -> Result<T, LedgerDown>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        let started = Instant::now();
        let result = tokio::time::timeout(self.timeout, async {
            let _slot = self.slots.acquire().await.expect("never closed");
            run(self.conn.clone()).await
        })
        .await;
        self.metrics
            .latency
            .observe(started.elapsed().as_secs_f64());
        let failure = match result {
            Ok(Ok(value)) => {
                if !self.healthy.swap(true, Ordering::Relaxed) {
                    *self.cause.lock().expect("never poisoned") = None;
                }
                return Ok(value);
            }
            Ok(Err(e)) if e.is_timeout() => self.timed_out(),
            Err(_) => self.timed_out(),
            Ok(Err(e)) => format!("the shared ledger (redis) is unavailable: {e}"),
        };
        if failure.contains("did not answer") {
            self.metrics.timeouts.inc();
        } else {
            self.metrics.unavailable.inc();
        }
        self.healthy.store(false, Ordering::Relaxed);
        Err(LedgerDown(failure))
    }

    async fn get(&self, key: String) -> Result<Option<Vec<u8>>, LedgerDown> {
        self.call(|mut c| async move { c.get(key).await }).await
    }

    pub async fn view(&self, key: &str) -> Result<Option<Payment>, LedgerDown> {
        Ok(self
            .get(payment_key(key))
            .await?
            .and_then(|raw| decode_payment(&raw))
            .filter(|p| p.key() == key))
    }

    pub async fn view_order(&self, order_id: &str) -> Result<Option<Payment>, LedgerDown> {
        let Some(key) = self.get(order_key(order_id)).await? else {
            return Ok(None);
        };
        let key = String::from_utf8_lossy(&key).into_owned();
        Ok(self.view(&key).await?.filter(|p| p.order_id() == order_id))
    }

    /// Read, apply `f`, compare-and-set; again on the record now stored when another change
    /// came first.
    pub async fn modify(
        &self,
        key: &str,
        f: &mut (dyn FnMut(&mut Option<Payment>) + Send),
    ) -> Result<(), LedgerDown> {
        let pay_key = payment_key(key);
        let mut read = self.get(pay_key.clone()).await?.unwrap_or_default();
        loop {
            let before = decode_payment(&read).filter(|p| p.key() == key);
            let existed = before.is_some();
            let mut slot = before;
            f(&mut slot);
            let new = slot.as_ref().map(encode_payment).unwrap_or_default();
            if new == read || (!existed && slot.is_none()) {
                return Ok(());
            }
            // A payment seen for the first time is indexed under its order, as the memory
            // ledger does on insert.
            let (order, index) = match (&slot, existed) {
                (Some(p), false) => (order_key(p.order_id()), key),
                _ => (pay_key.clone(), ""),
            };
            let answer: (i64, Vec<u8>) = self
                .call(|mut c| {
                    let mut invocation = self.cas.prepare_invoke();
                    invocation
                        .key(&pay_key)
                        .key(&order)
                        .arg(&read)
                        .arg(&new)
                        .arg(self.ttl_secs)
                        .arg(index);
                    async move { invocation.invoke_async(&mut c).await }
                })
                .await?;
            match answer {
                (1, _) => return Ok(()),
                (_, current) => read = current,
            }
        }
    }

    /// Claims an idempotency scope in one step: a reservation marker with a lifetime of
    /// [`RESERVATION_TTL_MS`] if the scope is free, else whatever holds it.
    pub async fn reserve(&self, scope: u64) -> Result<Reservation, LedgerDown> {
        let key = answer_key(scope);
        let found: Option<Vec<u8>> = self
            .call(|mut c| {
                let mut invocation = self.reserve.prepare_invoke();
                invocation.key(&key).arg(RESERVATION_TTL_MS);
                async move { invocation.invoke_async(&mut c).await }
            })
            .await?;
        Ok(match found {
            None => Reservation::Reserved,
            Some(held) if held == RESERVED => Reservation::InFlight,
            // An answer this build cannot read (another version's) is not replayed as
            // something else: the request waits it out as in flight.
            Some(raw) => decode_stored(&raw).map_or(Reservation::InFlight, Reservation::Stored),
        })
    }

    /// Stores the answer of the request that reserved the scope, for `--ledger-ttl`. A
    /// payment object is stored rendered: every instance replays the same bytes.
    pub async fn remember(&self, scope: u64, stored: &Stored) -> Result<(), LedgerDown> {
        let key = answer_key(scope);
        let value = encode_stored(stored);
        let ttl = self.ttl_secs;
        self.call(|mut c| async move { c.set_ex::<_, _, ()>(key, value, ttl).await })
            .await
    }

    /// Frees a scope this instance reserved, unless an answer is stored there by now.
    pub async fn release(&self, scope: u64) {
        let key = answer_key(scope);
        // A failure is counted by `call`; the reservation then lapses by itself.
        let _ = self
            .call(|mut c| {
                let mut invocation = self.release.prepare_invoke();
                invocation.key(&key);
                async move { invocation.invoke_async::<i64>(&mut c).await }
            })
            .await;
    }

    fn timed_out(&self) -> String {
        let waited = format!(
            "the shared ledger (redis) did not answer within {} ms",
            self.timeout.as_millis()
        );
        match &*self.cause.lock().expect("never poisoned") {
            Some(cause) => format!("{waited}; the last connection attempt said: {cause}"),
            None => waited,
        }
    }

    /// One direct connection attempt, for why Redis cannot be reached; logged when it changes.
    async fn probe(&self) {
        let attempt =
            tokio::time::timeout(self.timeout, self.client.get_multiplexed_async_connection())
                .await;
        let Ok(Err(e)) = attempt else {
            return;
        };
        let cause = e.to_string();
        let mut kept = self.cause.lock().expect("never poisoned");
        if kept.as_deref() != Some(&cause) {
            tracing::warn!(error = %cause, "ledger unreachable");
            *kept = Some(cause);
        }
    }

    async fn ping(&self) -> Result<(), LedgerDown> {
        self.call(|mut c| async move { redis::cmd("PING").query_async::<String>(&mut c).await })
            .await
            .map(drop)
    }
}

/// The client for `url`; a `rediss://` one trusts the CAs of `ca` when given.
fn client(url: &str, ca: Option<&Path>) -> Result<redis::Client, String> {
    let tls = url.starts_with("rediss://");
    let Some(ca) = ca else {
        if tls {
            install_ring();
        }
        return redis::Client::open(url).map_err(|e| describe_url_error(url, &e));
    };
    if !tls {
        return Err(format!(
            "--ledger-ca '{}' is for a rediss:// (TLS) ledger, and the ledger is '{}'",
            ca.display(),
            redacted(url)
        ));
    }
    let pem = std::fs::read(ca)
        .map_err(|e| format!("--ledger-ca '{}': cannot read it ({e})", ca.display()))?;
    let certificates = CertificateDer::pem_slice_iter(&pem).collect::<Result<Vec<_>, _>>();
    if !certificates.is_ok_and(|c| !c.is_empty()) {
        return Err(format!(
            "--ledger-ca '{}': expected PEM certificates (-----BEGIN CERTIFICATE-----)",
            ca.display()
        ));
    }
    install_ring();
    let certificates = redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(pem),
    };
    redis::Client::build_with_tls(url, certificates).map_err(|e| describe_url_error(url, &e))
}

/// The redis crate builds its TLS settings on rustls's process-wide provider: ring, named here
/// so that no other crate's rustls features can make the choice ambiguous. Installed once; a
/// provider installed before (the same ring) stays.
fn install_ring() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Pings while the ledger lives, so readiness recovers by itself when Redis is back (the
/// connection manager reconnects on the next call).
async fn watch_health(ledger: Weak<RedisLedger>) {
    let mut tick = tokio::time::interval(HEALTH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(ledger) = ledger.upgrade() else {
            return;
        };
        let was = ledger.healthy();
        let result = ledger.ping().await;
        match (was, result) {
            (true, Err(e)) => tracing::warn!(error = %e, "ledger unavailable"),
            (false, Ok(())) => tracing::info!("ledger reachable"),
            _ => {}
        }
        if !ledger.healthy() {
            ledger.probe().await;
        }
    }
}

fn payment_key(key: &str) -> String {
    format!("gazua:pay:{key}")
}

fn order_key(order_id: &str) -> String {
    format!("gazua:order:{order_id}")
}

fn answer_key(scope: u64) -> String {
    format!("gazua:idem:{scope:016x}")
}

/// The URL without its password, for messages.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://…{}", &url[..scheme], &url[at..]),
        _ => url.to_owned(),
    }
}

fn describe_url_error(url: &str, error: &redis::RedisError) -> String {
    format!(
        "'{}': not a usable redis url ({error}); expected redis[s]://[user:pass@]host:port[/db]",
        redacted(url)
    )
}

/// A payment as stored: short field names, since every byte is paid for each payment.
/// Texts are `Cow` so that escaped JSON strings read back too.
#[derive(Serialize, Deserialize)]
struct Record<'a> {
    #[serde(borrow)]
    k: Cow<'a, str>,
    #[serde(borrow)]
    o: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    n: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "is_false")]
    b: bool,
    #[serde(borrow)]
    s: Cow<'a, str>,
    t: u64,
    l: u64,
    r: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    a: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    f: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", borrow)]
    c: Vec<(u64, i64, Cow<'a, str>)>,
}

fn is_false(b: &bool) -> bool {
    !b
}

fn encode_payment(p: &Payment) -> Vec<u8> {
    let record = Record {
        k: p.key().into(),
        o: p.order_id().into(),
        n: p.order_name().map(Cow::Borrowed),
        b: p.billing,
        s: p.status.as_str().into(),
        t: p.total,
        l: p.balance,
        r: p.requested_at,
        a: p.approved_at,
        f: p.failure.as_ref().map(|f| Cow::Borrowed(f.as_str())),
        c: p.cancels
            .iter()
            .map(|c| (c.amount, c.at, Cow::Borrowed(&*c.reason)))
            .collect(),
    };
    serde_json::to_vec(&record).expect("a record serializes")
}

/// `None` for an empty or unreadable record (another version's, or not Gazua's): it is then
/// treated as absent rather than failing every request that meets it.
fn decode_payment(raw: &[u8]) -> Option<Payment> {
    if raw.is_empty() {
        return None;
    }
    let r: Record = serde_json::from_slice(raw).ok()?;
    let mut p = Payment::new(&r.k, &r.o, r.n.as_deref(), r.t, r.r);
    p.billing = r.b;
    p.status = Status::parse(&r.s)?;
    p.balance = r.l;
    p.approved_at = r.a;
    p.failure = r.f.map(|name| match codes::lookup(&name) {
        Some(info) => CodeName::Known(info),
        None => CodeName::Custom(name.as_ref().into()),
    });
    p.cancels =
        r.c.into_iter()
            .map(|(amount, at, reason)| Cancel {
                amount,
                at,
                reason: reason.into(),
            })
            .collect();
    Some(p)
}

/// `status code ready_at_ms stored_at\n` then the body as answered.
fn encode_stored(s: &Stored) -> Vec<u8> {
    let code = match s.code {
        ReplyCode::Ok => "-",
        ReplyCode::Known(info) => info.name,
        ReplyCode::Custom(CodeKind::Declined) => "~declined",
        ReplyCode::Custom(CodeKind::Error) => "~error",
        ReplyCode::Custom(CodeKind::Throttled) => "~throttled",
        ReplyCode::Custom(CodeKind::Invalid) => "~invalid",
    };
    let mut out = format!(
        "{} {code} {} {}\n",
        s.status.as_u16(),
        s.ready_at_ms,
        s.stored_at
    )
    .into_bytes();
    match &s.body {
        StoredBody::Payment(payment, lang) => out.extend(render::payment(payment, *lang)),
        StoredBody::Rendered(body) => out.extend_from_slice(body),
    }
    out
}

fn decode_stored(raw: &[u8]) -> Option<Stored> {
    let newline = raw.iter().position(|b| *b == b'\n')?;
    let head = std::str::from_utf8(&raw[..newline]).ok()?;
    let mut fields = head.split(' ');
    let status = StatusCode::from_u16(fields.next()?.parse().ok()?).ok()?;
    let code = match fields.next()? {
        "-" => ReplyCode::Ok,
        "~declined" => ReplyCode::Custom(CodeKind::Declined),
        "~error" => ReplyCode::Custom(CodeKind::Error),
        "~throttled" => ReplyCode::Custom(CodeKind::Throttled),
        "~invalid" => ReplyCode::Custom(CodeKind::Invalid),
        name => ReplyCode::Known(codes::lookup(name)?),
    };
    Some(Stored {
        status,
        code,
        ready_at_ms: fields.next()?.parse().ok()?,
        stored_at: fields.next()?.parse().ok()?,
        body: StoredBody::Rendered(Bytes::copy_from_slice(&raw[newline + 1..])),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Lang;

    #[test]
    fn a_payment_reads_back_as_it_was_written() {
        let mut p = Payment::new("key-1", "order-1", Some("티셔츠 \"x\""), 1000, 5);
        p.status = Status::PartialCanceled;
        p.balance = 400;
        p.approved_at = Some(6);
        p.failure = Some(CodeName::Custom("MY_CODE".into()));
        p.cancels.push(Cancel {
            amount: 600,
            at: 7,
            reason: "고객 변심".into(),
        });
        assert_eq!(decode_payment(&encode_payment(&p)), Some(p.clone()));
        p.failure = Some(CodeName::Known(
            codes::lookup("REJECT_CARD_PAYMENT").unwrap(),
        ));
        p.billing = true;
        assert_eq!(decode_payment(&encode_payment(&p)), Some(p));
        assert_eq!(decode_payment(b""), None);
        assert_eq!(decode_payment(b"not json"), None);
    }

    #[test]
    fn a_stored_answer_reads_back_as_it_was_sent() {
        let body = |s: &Stored| match &s.body {
            StoredBody::Rendered(bytes) => bytes.clone(),
            StoredBody::Payment(p, lang) => Bytes::from(render::payment(p, *lang)),
        };
        let payment = Payment::new("key-1", "order-1", Some("티셔츠"), 1000, 5);
        for (code, stored_body) in [
            (
                ReplyCode::Ok,
                StoredBody::Payment(Box::new(payment), Lang::En),
            ),
            (
                ReplyCode::Custom(CodeKind::Declined),
                StoredBody::Rendered(Bytes::from_static(b"{\"code\":\"X\",\n\"message\":\"y\"}")),
            ),
            (
                ReplyCode::Known(codes::lookup("REJECT_CARD_PAYMENT").unwrap()),
                StoredBody::Rendered(Bytes::from_static(b"{}")),
            ),
        ] {
            let stored = Stored {
                status: StatusCode::FORBIDDEN,
                body: stored_body,
                code,
                ready_at_ms: 1_700_000_000_123,
                stored_at: 1_700_000_000,
            };
            let back = decode_stored(&encode_stored(&stored)).unwrap();
            assert_eq!(
                (
                    back.status,
                    body(&back),
                    back.code,
                    back.ready_at_ms,
                    back.stored_at
                ),
                (
                    stored.status,
                    body(&stored),
                    stored.code,
                    stored.ready_at_ms,
                    stored.stored_at
                )
            );
        }
    }

    #[test]
    fn urls_are_shown_without_their_password() {
        assert_eq!(
            redacted("redis://user:secret@cache:6379/0"),
            "redis://…@cache:6379/0"
        );
        assert_eq!(redacted("redis://cache:6379"), "redis://cache:6379");
    }
}
