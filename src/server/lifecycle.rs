//! One request's life, in order: route → directives → body → decision → answer → wait → deliver
//! (or fault). Every bad input becomes a PG-shaped answer; the handler fails the connection
//! only when a fault asked for it or the client is gone.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode, Version, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use tokio::time::Instant;

use super::State;
use super::fault::{Control, Dribble, GazuaBody, OnClose};
use super::ops;
use crate::api::{self, ApiRequest, Lang, Origin, Reply, ReplyCode, error_reply};
use crate::codes::{self, CodeKind};
use crate::config::KeyFrom;
use crate::directive::{DirectiveError, Directives, Fault, headers};
use crate::engine::{Asked, Decision, Source};
use crate::metrics::GaugeGuard;
use crate::profile::{Admission, Plan, Profiles, RuleInput};
use crate::report::Delivered;
use crate::route::{self, Route, Target};

/// The connection is ended on purpose (a fault) or because the client went away.
#[derive(Debug)]
pub struct Dropped(&'static str);

impl fmt::Display for Dropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Dropped {}

pub type Answer = Result<Response<GazuaBody>, Dropped>;

pub async fn handle(state: Arc<State>, control: Control, req: Request<Incoming>) -> Answer {
    let arrival = Instant::now();
    let _in_flight = GaugeGuard::new(&state.metrics.in_flight);
    let (parts, body) = req.into_parts();

    // Health, readiness, metrics and the other ops routes ignore directives entirely.
    if ops::is_ops(parts.uri.path()) {
        let body = read_body(&state, body, &parts, arrival).await?;
        if let Some(deposited) = ops::deposit(&state, &parts, ops::Port::Pg).await {
            return Ok(deposited);
        }
        return Ok(ops::answer(&state, &parts, body, ops::Port::Pg));
    }
    // The checkout window is a page for a browser, not a PG API call: no directives of its
    // own beyond the key's, not counted as an API route.
    if let Some(key) = api::checkout::key_of(parts.uri.path()) {
        return Ok(checkout(&state, &parts, &key, arrival).await);
    }
    let target = route::route(&parts.method, parts.uri.path());

    // Bad input found before deciding is answered at once, as what it is.
    let refused = |reply: Reply| Ok(refuse(&state, &parts, target.route, reply, arrival));
    let header = match headers::from_headers(&parts.headers) {
        Ok(directives) => directives,
        Err(error) => return refused(directive_error(&state, error)),
    };
    let body = match read_body(&state, body, &parts, arrival).await? {
        Ok(body) => body,
        Err(reply) => return refused(reply),
    };
    let tag = match state.api.request_tag(&target, &body).transpose() {
        Ok(tag) => tag,
        Err(error) => return refused(directive_error(&state, error)),
    };
    let (route, decision, reply) = match decide_and_answer(
        &state,
        &parts,
        &target,
        &body,
        &header,
        tag.as_ref(),
        arrival,
    )
    .await
    {
        Ok(decided) => decided,
        Err(error) => return refused(directive_error(&state, error)),
    };
    // Gazua's own ledger failed: not a PG answer, so none of the decided wait or fault.
    if reply.ledger_failed() {
        return refused(reply);
    }

    deliver(&state, &control, &parts, route, arrival, &decision, reply).await
}

/// A request on the `--admin-listen` port: an ops route, or a 404 saying where the PG API is.
pub async fn handle_ops(state: Arc<State>, req: Request<Incoming>) -> Answer {
    let arrival = Instant::now();
    let (parts, body) = req.into_parts();
    let body = read_body(&state, body, &parts, arrival).await?;
    if let Some(deposited) = ops::deposit(&state, &parts, ops::Port::Admin).await {
        return Ok(deposited);
    }
    Ok(ops::answer(&state, &parts, body, ops::Port::Admin))
}

/// The middle of a request: the decision, then the answer rendered from the ledger — awaited,
/// since a shared ledger is across the network (an in-process one answers on the first poll).
async fn decide_and_answer(
    state: &State,
    parts: &Parts,
    target: &Target<'_>,
    body: &Bytes,
    header: &Directives,
    tag: Option<&Directives>,
    arrival: Instant,
) -> Result<(Route, Decision, Reply), DirectiveError> {
    let (route, decision, custom) = decide(state, parts, target, body, header, tag, arrival)?;
    let reply = match custom {
        Some(reply) => reply,
        None => {
            let request = ApiRequest {
                target,
                method: &parts.method,
                headers: &parts.headers,
                body,
                lang: Lang::from_headers(&parts.headers),
                now: jiff::Timestamp::now(),
            };
            state.api.answer(&request, &decision).await
        }
    };
    Ok((route, decision, reply))
}

/// The synchronous part of the middle: the profile, the decision (with the profile's rate
/// limit and capacity applied), and a custom route's answer. The profiles are read once here
/// and not held across any wait.
fn decide(
    state: &State,
    parts: &Parts,
    target: &Target<'_>,
    body: &Bytes,
    header: &Directives,
    tag: Option<&Directives>,
    arrival: Instant,
) -> Result<(Route, Decision, Option<Reply>), DirectiveError> {
    let profiles = state.profiles.load();
    let asked_profile = header
        .profile
        .as_deref()
        .or_else(|| tag.and_then(|t| t.profile.as_deref()));
    let plan = match asked_profile {
        None => profiles.active(),
        Some(name) => profiles
            .get(name)
            .ok_or_else(|| unknown_profile(name, &profiles))?,
    };
    let custom = match target.route {
        Route::Unknown => plan.match_custom(&parts.method, parts.uri.path()),
        _ => None,
    };
    let route = if custom.is_some() {
        Route::Custom
    } else {
        target.route
    };

    let rule = plan.rule_for(&RuleInput {
        route,
        method: &parts.method,
        headers: &parts.headers,
        body,
    });
    let asked = Asked {
        header: (!header.is_empty()).then_some(header),
        tag,
        rule,
    };
    let order_key = match state.config.key_from {
        KeyFrom::OrderId => order_key(target.param.as_deref(), body),
        KeyFrom::None => None,
    };
    let fallback_key = idempotency_key(parts).or(order_key.as_deref());
    let mut decision = state.engine.decide(plan, route, asked, fallback_key);
    limit(state, plan, route, arrival, &mut decision);

    // Counted as decided here; as delivered once the answer leaves (see `report`).
    let metrics = &state.metrics;
    metrics.request(route, &decision.outcome, decision.fault);
    metrics.decided(route, decision.latency.as_secs_f64());
    let custom = custom.map(|(custom, params)| {
        let lang = Lang::from_headers(&parts.headers);
        api::custom_reply(custom, &params, body, &parts.headers, &decision, lang)
    });
    Ok((route, decision, custom))
}

/// The profile's rate limit and virtual capacity: a request past the limit, or past the full
/// queue, is answered at once with the limit's outcome; an admitted one waits its turn for a
/// virtual worker slot on top of its decided latency.
fn limit(state: &State, plan: &Plan, route: Route, arrival: Instant, decision: &mut Decision) {
    if let Some(limiter) = &plan.rate_limit
        && !limiter.admit(arrival)
    {
        decision.outcome = state.engine.outcome_from(route, &limiter.outcome);
        decision.latency = Duration::ZERO;
        decision.sources.outcome = Source::RateLimit;
        decision.sources.latency = Source::RateLimit;
        return;
    }
    if let Some(capacity) = &plan.capacity {
        match capacity.admit(arrival, decision.latency) {
            Admission::Admitted { total } => {
                let total = total.min(state.config.max_latency);
                let queued = total.saturating_sub(decision.latency);
                state.metrics.capacity_wait.observe(queued.as_secs_f64());
                // The wait for a virtual worker is part of the latency delivered.
                if !queued.is_zero() {
                    decision.sources.latency = Source::Capacity;
                }
                decision.latency = total;
            }
            Admission::Overflow => {
                decision.outcome = state.engine.outcome_from(route, &capacity.overflow);
                decision.latency = Duration::ZERO;
                decision.sources.outcome = Source::Capacity;
                decision.sources.latency = Source::Capacity;
            }
        }
        state
            .metrics
            .capacity_queue_depth
            .set(capacity.queue_depth(arrival) as i64);
    }
}

fn unknown_profile(name: &str, profiles: &Profiles) -> DirectiveError {
    let names: Vec<&str> = profiles.names().collect();
    DirectiveError::new(format!(
        "X-Gazua-Profile: no profile named '{name}'; expected one of {}",
        names.join(", ")
    ))
}

/// Waits until the decided moment, then answers — or carries out the decided fault.
async fn deliver(
    state: &State,
    control: &Control,
    parts: &Parts,
    route: Route,
    arrival: Instant,
    decision: &Decision,
    reply: Reply,
) -> Answer {
    // The fault done at the socket; a lost answer is an approved payment whose response is
    // replaced by its fault.
    let delivered = Delivered::decided(decision, &reply);
    let fault = delivered.fault;
    // Only HTTP/1 owns its connection: on HTTP/2 a fault ends the stream, not its neighbours.
    let owns_connection = parts.version <= Version::HTTP_11;

    if fault == Fault::Hang {
        // Its answer is nothing, given now: the client may give up before the hang ends.
        report(state, parts, route, &delivered, arrival);
        wait_until(state, arrival + state.config.max_latency).await;
        return Err(Dropped("hang fault"));
    }
    let waited_out = wait_until(state, arrival + decision.latency).await;
    let observed = arrival.elapsed();
    state.metrics.observed(route, observed.as_secs_f64());
    match observed.checked_sub(decision.latency) {
        Some(lateness) => state.metrics.timer_lateness.observe(lateness.as_secs_f64()),
        // Shutdown answers early on purpose; otherwise the timer broke its promise.
        None if waited_out => state.metrics.timer_early.inc(),
        None => {}
    }

    let header = report(state, parts, route, &delivered, arrival);
    let body = match fault {
        Fault::None => GazuaBody::full(reply.body.clone()),
        Fault::Reset | Fault::Close | Fault::Garbage => {
            if owns_connection {
                control.on_close(match fault {
                    Fault::Reset => OnClose::Reset,
                    Fault::Garbage => OnClose::Garbage,
                    _ => OnClose::Fin,
                });
            }
            return Err(Dropped("transport fault"));
        }
        // Half the JSON document: never valid JSON, whatever the answer was.
        Fault::Malformed => GazuaBody::full(reply.body.slice(..reply.body.len() / 2)),
        Fault::Truncated => GazuaBody::Short(Some(reply.body.slice(..reply.body.len() / 2))),
        // Dribbling ends by arrival + --max-latency, like every other wait.
        Fault::Dribble { bytes_per_sec } => GazuaBody::Dribble(Box::new(Dribble::new(
            reply.body.clone(),
            bytes_per_sec,
            state.drain.clone(),
            arrival + state.config.max_latency,
        ))),
        Fault::Hang => unreachable!("handled above"),
    };
    let promised =
        matches!(fault, Fault::Truncated | Fault::Dribble { .. }).then_some(reply.body.len());
    let mut response = build(delivered.status, body, promised, header, reply.retry_after);
    if reply.status == StatusCode::METHOD_NOT_ALLOWED {
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(route.method()));
    }
    Ok(response)
}

/// `GET /v1/payments/{paymentKey}/checkout`: the page, or — after the decided latency — the
/// 303 to the merchant's `successUrl` or `failUrl`.
async fn checkout(
    state: &State,
    parts: &Parts,
    key: &str,
    arrival: Instant,
) -> Response<GazuaBody> {
    let lang = Lang::from_headers(&parts.headers);
    let page = if parts.method == http::Method::GET || parts.method == http::Method::HEAD {
        let mut rng = state.engine.keyed_rng(Route::Confirm, key);
        let query = parts.uri.query().unwrap_or("");
        state
            .api
            .checkout(key, query, lang, state.config.max_latency, &mut rng)
    } else {
        api::checkout::method_not_allowed()
    };
    let mut response = match page {
        api::checkout::Page::Html { status, body } => {
            let mut response = Response::new(GazuaBody::full(body));
            *response.status_mut() = status;
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            response
        }
        api::checkout::Page::Redirect { location, wait } => {
            wait_until(state, arrival + wait).await;
            let mut response = Response::new(GazuaBody::full(Bytes::new()));
            *response.status_mut() = StatusCode::SEE_OTHER;
            if let Ok(value) = HeaderValue::try_from(location) {
                response.headers_mut().insert(header::LOCATION, value);
            }
            response
        }
    };
    // Each press is its own decision: the browser must not reuse a page or a redirect.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if response.status() == StatusCode::METHOD_NOT_ALLOWED {
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    }
    response
}

/// Sleeps until `at` on the server's precise timer (no thread held; never before `at`), or
/// until shutdown demands an answer now; false when shutdown cut the wait short.
async fn wait_until(state: &State, at: Instant) -> bool {
    if at <= Instant::now() {
        return true;
    }
    tokio::select! {
        () = state.timer.sleep_until(at) => true,
        () = state.drain_deadline() => false,
    }
}

/// Reads the whole body, bounded by `--max-body` and by `--body-timeout` from the head's
/// arrival (also cut short when shutdown demands answers now). A body that breaks HTTP's
/// framing (a malformed chunk) is a 400; the outer error means the client is gone.
async fn read_body(
    state: &State,
    body: Incoming,
    parts: &Parts,
    arrival: Instant,
) -> Result<Result<Bytes, Reply>, Dropped> {
    let limit = state.config.max_body;
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let lang = || Lang::from_headers(&parts.headers);
    if declared.is_some_and(|n| n > limit as u64) {
        return Ok(Err(api::body_too_large(limit, lang())));
    }
    let timeout = state.config.body_timeout;
    let read = tokio::select! {
        // Biased: a body that is already here never arms the timer.
        biased;
        read = Limited::new(body, limit).collect() => read,
        () = tokio::time::sleep_until(arrival + timeout) => return Ok(Err(body_timeout(timeout))),
        () = state.drain_deadline() => return Ok(Err(body_timeout(timeout))),
    };
    match read {
        Ok(collected) => Ok(Ok(collected.to_bytes())),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => {
            Ok(Err(api::body_too_large(limit, lang())))
        }
        Err(error) if is_malformed(&*error) => Ok(Err(known_error(
            StatusCode::BAD_REQUEST,
            "GAZUA_MALFORMED_BODY",
            &format!(
                "the request body breaks HTTP framing ({error}); expected a body of Content-Length bytes or well-formed chunks"
            ),
        ))),
        Err(_) => Err(Dropped("request body could not be read")),
    }
}

/// A body read error that is the client's bad framing rather than the client going away.
fn is_malformed(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(error);
    while let Some(error) = source {
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData
            );
        }
        source = error.source();
    }
    false
}

fn body_timeout(timeout: Duration) -> Reply {
    known_error(
        StatusCode::REQUEST_TIMEOUT,
        "GAZUA_BODY_TIMEOUT",
        &format!(
            "the request body did not arrive within {} ms of its headers (--body-timeout); expected the whole body at once",
            timeout.as_millis()
        ),
    )
}

/// An error reply with a catalog code (or the code as custom, should the catalog lack it).
fn known_error(status: StatusCode, name: &str, message: &str) -> Reply {
    let code = codes::lookup(name).map_or(ReplyCode::Custom(CodeKind::Invalid), ReplyCode::Known);
    error_reply(status, code, name, message)
}

fn directive_error(state: &State, error: DirectiveError) -> Reply {
    state.metrics.directive_errors.inc();
    known_error(StatusCode::BAD_REQUEST, error.code, &error.message).by(Origin::Validation)
}

/// An immediate answer that no decision shaped (bad input found before deciding).
fn refuse(
    state: &State,
    parts: &Parts,
    route: Route,
    reply: Reply,
    arrival: Instant,
) -> Response<GazuaBody> {
    let delivered = Delivered::undecided(&reply);
    let header = report(state, parts, route, &delivered, arrival);
    build(
        reply.status,
        GazuaBody::full(reply.body.clone()),
        None,
        header,
        reply.retry_after,
    )
}

/// Counts an answer as delivered and writes its access log line; returns its
/// `X-Gazua-Decision` value.
fn report(
    state: &State,
    parts: &Parts,
    route: Route,
    delivered: &Delivered<'_>,
    arrival: Instant,
) -> String {
    state.metrics.delivered(route, delivered);
    let header = delivered.header_value();
    if state.config.access_log {
        access_log(parts, delivered, &header, arrival);
    }
    header
}

/// Made once: inserting by `&str` parses and allocates a custom header name per answer.
const X_GAZUA_DECISION: HeaderName = HeaderName::from_static("x-gazua-decision");

fn build(
    status: StatusCode,
    body: GazuaBody,
    promised_length: Option<usize>,
    // Owned, so the header value takes the string's buffer instead of copying it.
    report: String,
    retry_after: Option<u32>,
) -> Response<GazuaBody> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(length) = promised_length {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    if let Ok(value) = HeaderValue::try_from(report) {
        headers.insert(X_GAZUA_DECISION, value);
    }
    if let Some(seconds) = retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

fn idempotency_key(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .filter(|k| !k.is_empty())
}

/// `--key-from order-id`: the order (or payment) the request is about.
fn order_key(param: Option<&str>, body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Keys {
        order_id: Option<String>,
        payment_key: Option<String>,
    }
    if let Some(param) = param {
        return Some(param.to_owned());
    }
    let keys: Keys = serde_json::from_slice(body).ok()?;
    keys.order_id.or(keys.payment_key)
}

fn access_log(parts: &Parts, delivered: &Delivered<'_>, report: &str, arrival: Instant) {
    let trace_id = parts
        .headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split('-').nth(1))
        .unwrap_or("-");
    // 0: a fault sent no response.
    let status = match delivered.head_sent() {
        true => delivered.status.as_u16(),
        false => 0,
    };
    tracing::info!(
        target: "access",
        trace_id,
        method = %parts.method,
        path = parts.uri.path(),
        status,
        answer = delivered.class().name(),
        decision = report,
        elapsed_ms = arrival.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
}
