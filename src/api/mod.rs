//! The PG's HTTP API (Toss-Payments-compatible flavor): validating a request, applying the
//! decided outcome to the payment lifecycle, and rendering the answer's JSON.
//!
//! # Layout
//!
//! - this file — the types the server sees ([`Api`], [`ApiRequest`], [`Reply`]), and the
//!   checks every route shares: route, method, `Authorization`, `Idempotency-Key`, throttling.
//! - `routes` — one function per route: read the body, apply the outcome to the ledger, render.
//! - `input` — reading bodies as the PG validates them, and the 400 messages.
//! - `ledger` — the [`Ledger`] seam and its memory and stateless implementations.
//! - `redis_ledger` — the shared ledger on Redis, for a fleet.
//! - `store` — the async seam the routes await: in-process ledgers answer at once, Redis is
//!   awaited, and its failure is a 503 `GAZUA_LEDGER_UNAVAILABLE`.
//! - `keys` — minted, signed, self-describing `paymentKey`s and `billingKey`s.
//! - `render` — the Payment and billing objects, serialized straight from the record.
//! - `checkout` — the checkout window a `checkout.url` serves, and its redirects.
//!
//! # Keys an instance has not seen
//!
//! A minted key says its amount, orderId, orderName, tag and time — and for a virtual account
//! its bank, customer and (when issued with the key) issue and due times — so any instance with
//! the same seed answers for it. With no record of it (stateless ledger, another instance
//! confirmed it, or evicted), an instance shows it as its confirm most likely ended: `DONE`
//! approved at its minting time — the default outcome is approval — unless the key's tag asks
//! for one outcome only, `declined(…)` (then `ABORTED` with that failure) or `error(…)` (then
//! `IN_PROGRESS`, not approved); a virtual account is issued as its tag's `deposit=` directs and
//! shown as it is now (waiting, deposited or expired). A confirm of such a key starts from `READY`, so it approves once per instance. A
//! key Gazua did not mint is known only where it was recorded; elsewhere it is
//! `NOT_FOUND_PAYMENT` (a confirm of one creates the payment, as the PG would have at checkout).

pub mod checkout;
mod custom;
mod input;
pub mod keys;
pub mod ledger;
pub mod redis_ledger;
mod render;
mod routes;
mod store;
#[cfg(test)]
mod tests;
pub mod virtual_account;

pub use render::transaction_key;

use crate::webhook::Webhooks;

/// A payment's JSON as webhooks carry it (the PG's Korean rendering).
pub fn render_payment(p: &ledger::Payment) -> Vec<u8> {
    render::payment(p, Lang::Ko)
}

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::codes::{self, CodeInfo, CodeKind};
use crate::directive::{CodeName, CodeRef, DirectiveError, Directives, Mix, Outcome};
use crate::engine::Decision;
use crate::route::{Route, Target};
pub use custom::custom_reply;
use input::{Loose, Problem};
use keys::KeyMint;
pub use ledger::{Ledger, MemoryLedger, Reservation, StatelessLedger, StoredBody};
use redis_ledger::{LedgerDown, RedisLedger};
use store::Store;
pub use store::ready_now;

pub use crate::codes::Lang;

/// One request as the API sees it, after routing and the body read.
pub struct ApiRequest<'a> {
    pub target: &'a Target<'a>,
    pub method: &'a Method,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub lang: Lang,
    /// Wall-clock time of arrival.
    pub now: jiff::Timestamp,
}

/// Which code an answer carries, for the `code` label of `gazua_responses_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyCode {
    /// A 2xx payment (or billing) object.
    Ok,
    Known(&'static CodeInfo),
    /// A user-defined code from a directive, and the kind of answer it was asked as: kept so
    /// a replay of it is still reported as what it is.
    Custom(CodeKind),
}

/// What shaped an answer: the decision, or something that overrode it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The decided outcome, rendered.
    Decision,
    /// The payment lifecycle refused or replayed: a second confirm, an unknown payment, a
    /// balance too small, the stored first answer for an `Idempotency-Key`.
    Ledger,
    /// The request itself was refused: a missing or malformed field, a bad header, a route or
    /// method that does not exist, a directive that does not apply.
    Validation,
}

impl Origin {
    pub fn name(self) -> &'static str {
        match self {
            Origin::Decision => "decision",
            Origin::Ledger => "ledger",
            Origin::Validation => "validation",
        }
    }
}

/// A rendered answer, before the decided wait and fault are applied.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    /// JSON.
    pub body: Bytes,
    pub code: ReplyCode,
    /// Seconds for a `Retry-After` header (throttling on generic routes).
    pub retry_after: Option<u32>,
    pub origin: Origin,
}

impl Reply {
    /// The same answer, shaped by `origin`.
    pub fn by(self, origin: Origin) -> Reply {
        Reply { origin, ..self }
    }
}

impl Reply {
    /// Whether this is Gazua's own failure to reach its ledger rather than a PG answer: it is
    /// then sent at once, without the decided wait or fault.
    pub fn ledger_failed(&self) -> bool {
        matches!(self.code, ReplyCode::Known(info) if info.name == "GAZUA_LEDGER_UNAVAILABLE")
    }
}

/// Where payments are remembered (`--ledger`).
#[derive(Clone)]
pub enum LedgerChoice {
    /// Per instance, bounded: at most this many payments, oldest evicted first.
    Memory { capacity: usize },
    /// Nothing remembered.
    Stateless,
    /// Any other in-process implementation.
    Shared(Arc<dyn Ledger>),
    /// The fleet-wide ledger on Redis.
    Redis(Arc<RedisLedger>),
}

/// The default `--ledger-capacity`.
pub const DEFAULT_LEDGER_CAPACITY: usize = 1_000_000;

/// What the API needs from the configuration.
#[derive(Clone)]
pub struct ApiSettings {
    /// `--secret-key`: when set, the Basic credentials must name it, and a request without
    /// `Authorization` is refused.
    pub secret_key: Option<String>,
    /// `--seed`: minted keys are signed with a key derived from it, so a fleet sharing the seed
    /// reads each other's keys.
    pub seed: u64,
    pub ledger: LedgerChoice,
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            secret_key: None,
            seed: 0,
            ledger: LedgerChoice::Memory {
                capacity: DEFAULT_LEDGER_CAPACITY,
            },
        }
    }
}

/// The API's state: settings, the key mint and the ledger.
pub struct Api {
    pub secret_key: Option<String>,
    mint: KeyMint,
    ledger: Store,
    /// `--webhook-url`: where payments' changes are sent.
    webhooks: Option<Webhooks>,
    /// Waiting virtual accounts' deposit and due-date timers (only with webhooks).
    timers: Option<Arc<virtual_account::Timers>>,
}

/// The longest `Idempotency-Key` the PG accepts.
const MAX_IDEMPOTENCY_KEY: usize = 300;

impl Api {
    pub fn new(settings: ApiSettings) -> Api {
        let ledger = match settings.ledger {
            LedgerChoice::Memory { capacity } => {
                Store::Local(Arc::new(MemoryLedger::new(capacity)))
            }
            LedgerChoice::Stateless => Store::Local(Arc::new(StatelessLedger)),
            LedgerChoice::Shared(ledger) => Store::Local(ledger),
            LedgerChoice::Redis(ledger) => Store::Redis(ledger),
        };
        Api {
            secret_key: settings.secret_key,
            mint: KeyMint::new(settings.seed),
            ledger,
            webhooks: None,
            timers: None,
        }
    }

    /// At shutdown: pending webhooks are sent within `grace` or reported abandoned.
    pub async fn drain_webhooks(&self, grace: std::time::Duration) {
        if let Some(hooks) = &self.webhooks {
            hooks.drain(grace).await;
        }
    }

    /// The served profile changed: its `webhooks` section is in force (when webhooks are on).
    pub fn serve_profile(&self, plan: &crate::profile::Plan) {
        if let Some(hooks) = &self.webhooks {
            hooks.serve_profile(plan.webhooks.as_ref());
        }
    }

    /// Sends payments' changes to the webhook URLs (see [`crate::webhook`]).
    /// Inside the tokio runtime: the virtual accounts' timer task starts with them.
    pub fn with_webhooks(mut self, webhooks: Option<Webhooks>) -> Api {
        // A ledger that records nothing leaves the timers only the keys to rebuild accounts from.
        let stateless = (!self.ledger.records()).then(|| self.mint.clone());
        self.timers = webhooks
            .clone()
            .map(|hooks| virtual_account::Timers::start(self.ledger.clone(), hooks, stateless));
        self.webhooks = webhooks;
        self
    }

    /// The `[gazua: …]` tag this request carries: in a JSON string value of its body, else
    /// inside a minted key it names.
    ///
    /// A tag written at `POST /v1/payments` (in orderName) is meant for the payment's confirm:
    /// the create itself takes only its latency, and a plain `{paymentKey, orderId, amount}`
    /// confirm of the minted key follows the whole tag. Inquiries and cancels of that key take
    /// only its latency (and `key`/`profile`): the tag describes the confirm, and applying its
    /// `lost` or `declined` to the inquiry a SUT reconciles with would defeat the point.
    pub fn request_tag(
        &self,
        target: &Target<'_>,
        body: &[u8],
    ) -> Option<Result<Directives, DirectiveError>> {
        if target.route == Route::Unknown {
            return None;
        }
        if crate::directive::headers::may_hold_tag(body) {
            let found = crate::directive::headers::find_tag(body)?;
            return Some(if target.route == Route::Create {
                found.map(latency_only)
            } else {
                found
            });
        }
        let prefix = keys::TAGGED_PAYMENT_PREFIX;
        match target.route {
            Route::Confirm if memchr::memmem::find(body, prefix.as_bytes()).is_some() => {
                #[derive(Deserialize)]
                #[serde(rename_all = "camelCase")]
                struct KeyOnly<'a> {
                    #[serde(borrow)]
                    payment_key: Option<Loose<'a>>,
                }
                let body: KeyOnly = input::parse_body(body).ok()?;
                let Some(Loose::Str(key)) = body.payment_key else {
                    return None;
                };
                self.key_tag(&key)
            }
            Route::Inquiry | Route::Cancel if !target.by_order => {
                let key = target.param.as_deref().filter(|k| k.starts_with(prefix))?;
                Some(self.key_tag(key)?.map(latency_only))
            }
            _ => None,
        }
    }

    /// The directives of the tag inside a minted payment key.
    fn key_tag(&self, key: &str) -> Option<Result<Directives, DirectiveError>> {
        let tag = self.mint.read_payment(key)?.tag?;
        Some(parse_tag_text(&tag).map_err(|e| e.within("paymentKey tag")))
    }

    /// The checkout window for `key` (see [`checkout`]): a page, or where the browser goes.
    pub fn checkout<R: rand::Rng + ?Sized>(
        &self,
        key: &str,
        query: &str,
        lang: Lang,
        max_latency: std::time::Duration,
        rng: &mut R,
    ) -> checkout::Page {
        checkout::answer(&self.mint, key, query, lang, max_latency, rng)
    }

    /// Whether the ledger can serve now (readiness fails while a shared one is unreachable).
    pub fn ledger_healthy(&self) -> bool {
        self.ledger.healthy()
    }

    /// Validates the request, applies `decision` to the payment lifecycle and renders the
    /// answer. Never fails: every bad input is a PG-shaped 4xx, a ledger that cannot be
    /// reached a 503 `GAZUA_LEDGER_UNAVAILABLE`.
    pub async fn answer(&self, req: &ApiRequest<'_>, decision: &Decision) -> Reply {
        self.answer_with_ledger(req, decision)
            .await
            .unwrap_or_else(|down| ledger_unavailable(&down))
    }

    async fn answer_with_ledger(
        &self,
        req: &ApiRequest<'_>,
        decision: &Decision,
    ) -> Result<Reply, LedgerDown> {
        let lang = req.lang;
        let route = req.target.route;
        if route == Route::Unknown {
            return Ok(code_reply(known("NOT_FOUND"), lang));
        }
        if req.target.wrong_method {
            return Ok(code_reply(known("METHOD_NOT_ALLOWED"), lang));
        }
        if let Err(reply) = self.authorize(req.headers, lang) {
            return Ok(reply);
        }
        let posted = route != Route::Inquiry;
        let scope = if posted {
            match idempotency_scope(req) {
                Ok(scope) => scope.filter(|_| self.ledger.records()),
                Err(reply) => return Ok(reply),
            }
        } else {
            None
        };
        let now_ms = req.now.as_millisecond();
        // Of the requests sharing an `Idempotency-Key`, the one that reserves it is processed;
        // the others get 409 until its answer is due, and that same answer after.
        let mut hold = None;
        if let Some(scope) = scope {
            match self.ledger.reserve(scope, now_ms).await? {
                Reservation::Reserved => hold = Some(Hold::new(&self.ledger, scope)),
                Reservation::InFlight => {
                    return Ok(
                        code_reply(known("IDEMPOTENT_REQUEST_PROCESSING"), lang).by(Origin::Ledger)
                    );
                }
                Reservation::Stored(stored) if now_ms < stored.ready_at_ms => {
                    return Ok(
                        code_reply(known("IDEMPOTENT_REQUEST_PROCESSING"), lang).by(Origin::Ledger)
                    );
                }
                Reservation::Stored(stored) => return Ok(replay(stored)),
            }
        }
        // From here every early return drops `hold`, which releases the key.
        if decision.outcome == Outcome::Throttled {
            return Ok(
                code_reply(known("FORBIDDEN_CONSECUTIVE_REQUEST"), lang).by(Origin::Decision)
            );
        }
        if posted && let Err(problem) = input::check_content_type(req.headers) {
            return Ok(problem_reply(&problem, lang));
        }
        let (reply, shown) = routes::answer(self, req, decision, hold.is_some()).await?;
        // The first answer is kept for a repeat when it is final: an approval or a decline.
        // Errors and refusals are not, so a retry with the same key is processed again.
        let keep = reply.status.is_success() || matches!(decision.outcome, Outcome::Declined(_));
        if let Some(hold) = hold
            && keep
        {
            let wait = i64::try_from(decision.latency.as_millis()).unwrap_or(i64::MAX);
            hold.keep(ledger::Stored {
                status: reply.status,
                body: match shown {
                    Some(payment) => StoredBody::Payment(Box::new(payment), lang),
                    None => StoredBody::Rendered(reply.body.clone()),
                },
                code: reply.code,
                ready_at_ms: now_ms.saturating_add(wait),
                stored_at: req.now.as_second(),
            })
            .await?;
        }
        Ok(reply)
    }

    /// `Authorization: Basic base64("{secretKey}:")`, as the PG checks it. No header at all is
    /// accepted unless a secret key is configured (load scripts often leave it out).
    fn authorize(&self, headers: &HeaderMap, lang: Lang) -> Result<(), Reply> {
        let unauthorized = || code_reply(known("UNAUTHORIZED_KEY"), lang);
        let bad_format = || code_reply(known("INCORRECT_BASIC_AUTH_FORMAT"), lang);
        let Some(value) = headers.get(http::header::AUTHORIZATION) else {
            return match self.secret_key {
                Some(_) => Err(unauthorized()),
                None => Ok(()),
            };
        };
        let value = value.as_bytes();
        let Some((scheme, credentials)) = value
            .iter()
            .position(|b| *b == b' ')
            .map(|i| (&value[..i], value[i + 1..].trim_ascii()))
        else {
            return Err(unauthorized());
        };
        if !scheme.eq_ignore_ascii_case(b"basic") {
            return Err(unauthorized());
        }
        let decoded = decode_base64(credentials).ok_or_else(bad_format)?;
        let colon = decoded
            .iter()
            .position(|b| *b == b':')
            .ok_or_else(bad_format)?;
        match &self.secret_key {
            Some(secret) if decoded[..colon].ct_eq(secret.as_bytes()).unwrap_u8() == 0 => {
                Err(unauthorized())
            }
            _ => Ok(()),
        }
    }
}

/// A reserved idempotency scope: released when dropped, unless its answer was kept. A drop
/// guard, so that every way a request can end without an answer to keep (an error, a refusal,
/// a panic unwinding) frees the key for the client's retry.
struct Hold<'a> {
    ledger: &'a Store,
    scope: Option<u64>,
}

impl<'a> Hold<'a> {
    fn new(ledger: &'a Store, scope: u64) -> Self {
        Hold {
            ledger,
            scope: Some(scope),
        }
    }

    /// Stores the answer. Should the ledger fail here, the reservation lapses by itself
    /// ([`ledger::RESERVATION_TTL_MS`]): releasing it would need the same unreachable ledger.
    async fn keep(mut self, stored: ledger::Stored) -> Result<(), LedgerDown> {
        match self.scope.take() {
            Some(scope) => self.ledger.remember(scope, stored).await,
            None => Ok(()),
        }
    }
}

impl Drop for Hold<'_> {
    fn drop(&mut self) {
        if let Some(scope) = self.scope.take() {
            self.ledger.release(scope);
        }
    }
}

/// The stored first answer, as it was sent.
fn replay(stored: ledger::Stored) -> Reply {
    let body = match stored.body {
        StoredBody::Payment(payment, lang) => Bytes::from(render::payment(&payment, lang)),
        StoredBody::Rendered(body) => body,
    };
    Reply {
        status: stored.status,
        body,
        code: stored.code,
        retry_after: None,
        origin: Origin::Ledger,
    }
}

/// Base64 with or without padding, standard or URL-safe alphabet.
fn decode_base64(text: &[u8]) -> Option<Vec<u8>> {
    const CONFIG: GeneralPurposeConfig =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    const STANDARD: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, CONFIG);
    const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, CONFIG);
    STANDARD
        .decode(text)
        .or_else(|_| URL_SAFE.decode(text))
        .ok()
}

/// The idempotency scope of a POST: the PG deduplicates on key + API key + URL + method, never
/// the body. `None` without an `Idempotency-Key`.
fn idempotency_scope(req: &ApiRequest<'_>) -> Result<Option<u64>, Reply> {
    let Some(key) = req.headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = key.as_bytes();
    if key.len() > MAX_IDEMPOTENCY_KEY || key.is_empty() {
        return Err(code_reply(known("INVALID_IDEMPOTENCY_KEY"), req.lang));
    }
    let mut h = xxhash_rust::xxh3::Xxh3Default::new();
    for part in [
        key,
        req.method.as_str().as_bytes(),
        req.target.route.name().as_bytes(),
        req.target.param.as_deref().unwrap_or("").as_bytes(),
        req.headers
            .get(http::header::AUTHORIZATION)
            .map_or(&b""[..], |v| v.as_bytes()),
    ] {
        h.update(&(part.len() as u64).to_le_bytes());
        h.update(part);
    }
    Ok(Some(h.digest()))
}

/// Parses the inner text of a tag (`outcome=declined; latency=2s`) as the body tag would be.
fn parse_tag_text(text: &str) -> Result<Directives, DirectiveError> {
    crate::directive::headers::parse_compound(text)
}

/// Only what a tag says about this request's timing and identity, not its outcome.
fn latency_only(d: Directives) -> Directives {
    Directives {
        outcome: None,
        fault: None,
        status: None,
        ..d
    }
}

/// A catalog entry the code relies on.
fn known(name: &str) -> &'static CodeInfo {
    match codes::lookup(name) {
        Some(info) => info,
        None => unreachable!("code {name} is missing from the catalog"),
    }
}

fn status_of(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The PG error answer for a catalog code, with its documented status and message: a refusal
/// of the request (re-shaped with [`Reply::by`] where the ledger or the decision gave it).
pub fn code_reply(info: &'static CodeInfo, lang: Lang) -> Reply {
    code_reply_with(info, info.message(lang))
}

/// A catalog code with a specific message, refusing the request.
fn code_reply_with(info: &'static CodeInfo, message: &str) -> Reply {
    error_reply(
        status_of(info.status),
        ReplyCode::Known(info),
        info.name,
        message,
    )
    .by(Origin::Validation)
}

/// A 400 `INVALID_REQUEST` naming what is wrong.
fn problem_reply(problem: &Problem, lang: Lang) -> Reply {
    code_reply_with(known("INVALID_REQUEST"), &problem.message(lang))
}

/// The answer when the ledger could not be reached: Gazua's own 503, naming what failed (in
/// English whatever the language, as Gazua's own codes are).
fn ledger_unavailable(down: &LedgerDown) -> Reply {
    let info = known("GAZUA_LEDGER_UNAVAILABLE");
    code_reply_with(info, &format!("{} ({down})", info.en)).by(Origin::Ledger)
}

/// The answer for a body over the server's `--max-body` limit (413 in the PG's error shape).
/// `GAZUA_BODY_TOO_LARGE`: a Gazua-own code, so English whatever the language (see `codes`).
pub fn body_too_large(limit: usize, _lang: Lang) -> Reply {
    let info = known("GAZUA_BODY_TOO_LARGE");
    let message = format!("The request body is too large: at most {limit} bytes are accepted.");
    code_reply_with(info, &message)
}

/// The answer a `declined`/`error` outcome asks for. `code: None` means the route has no such
/// answer (the engine filled in every default there is): that is a directive error.
fn outcome_reply(route: Route, outcome: &Outcome, lang: Lang) -> Reply {
    let (word, code) = match outcome {
        Outcome::Declined(code) => ("declined", code),
        Outcome::Error(code) => ("error", code),
        _ => unreachable!("only declined and error outcomes are answered with an error"),
    };
    code_ref_reply(route, word, code, lang)
}

fn code_ref_reply(route: Route, word: &str, code: &CodeRef, lang: Lang) -> Reply {
    match &code.code {
        None => {
            let applies = Route::ALL
                .iter()
                .filter(|r| codes::default_code(**r, codes::CodeKind::Declined).is_some())
                .map(|r| r.name())
                .collect::<Vec<_>>()
                .join(", ");
            let message = format!(
                "outcome={word} does not apply to the {} route: it has no {word} answer; use \
                 error or throttled, or name a code such as {word}(PROVIDER_ERROR) \
                 (declined applies to: {applies})",
                route.name()
            );
            code_reply_with(known("GAZUA_INVALID_DIRECTIVE"), &message)
        }
        Some(CodeName::Known(info)) => {
            let status = code.status.unwrap_or(status_of(info.status));
            error_reply(
                status,
                ReplyCode::Known(info),
                info.name,
                info.message(lang),
            )
        }
        Some(name @ CodeName::Custom(custom)) => {
            let status = code.status.unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let kind = match word {
                "declined" => CodeKind::Declined,
                _ => CodeKind::Error,
            };
            error_reply(
                status,
                ReplyCode::Custom(kind),
                custom,
                render::failure_message(name, lang),
            )
        }
    }
}

/// What a key's tag says its confirm will be, when it says one thing only.
fn tag_verdict(mix: &Mix<Outcome>) -> Option<&Outcome> {
    let mut it = mix.weights().filter(|(w, _)| *w > 0);
    let (_, only) = it.next()?;
    it.next().is_none().then_some(only)
}

/// A PG error body `{"code": …, "message": …}` with its status: the rendering of a decided
/// outcome unless re-shaped with [`Reply::by`].
pub fn error_reply(status: StatusCode, code: ReplyCode, name: &str, message: &str) -> Reply {
    #[derive(serde::Serialize)]
    struct ErrorBody<'a> {
        code: &'a str,
        message: &'a str,
    }
    let body = serde_json::to_vec(&ErrorBody {
        code: name,
        message,
    })
    .unwrap_or_else(|_| b"{\"code\":\"UNKNOWN_ERROR\",\"message\":\"\"}".to_vec());
    Reply {
        status,
        body: Bytes::from(body),
        code,
        retry_after: None,
        origin: Origin::Decision,
    }
}
