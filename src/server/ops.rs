//! The ops routes: health, readiness, metrics, the profile in force (and switching it) and the
//! API document. They ignore directives entirely: never faulted, delayed or refused for them.

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, Method, Response, StatusCode, header};
use serde_json::json;
use subtle::ConstantTimeEq;

use super::State;
use super::fault::GazuaBody;
use crate::api::Reply;

const JSON: &str = "application/json";

/// The OpenAPI document of the PG API, kept in the repository root.
const OPENAPI: &str = include_str!("../../openapi.json");

/// Whether `path` is an ops route rather than the PG API.
pub fn is_ops(path: &str) -> bool {
    path == "/metrics" || path.starts_with("/__gazua/")
}

/// The port a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// `--listen`: the PG API, and the ops routes unless `--admin-listen` takes them.
    Pg,
    /// `--admin-listen`: the ops routes only.
    Admin,
}

/// The ops route the PG port keeps when `--admin-listen` is set: load balancers probe the
/// port they send traffic to, and liveness says nothing an attacker can use.
const HEALTH: &str = "/__gazua/health";

/// Answers an ops route (or the reply its body read ended in: too large, too slow).
pub fn answer(
    state: &State,
    parts: &Parts,
    body: Result<Bytes, Reply>,
    port: Port,
) -> Response<GazuaBody> {
    let body = match body {
        Ok(body) => body,
        Err(reply) => return respond(reply.status, JSON, reply.body.to_vec()),
    };
    let path = parts.uri.path();
    let get = parts.method == Method::GET || parts.method == Method::HEAD;
    let elsewhere = port == Port::Pg && state.config.admin_listen.is_some() && path != HEALTH;
    let (status, content_type, body): (StatusCode, &'static str, Vec<u8>) = match path {
        _ if elsewhere => (
            StatusCode::NOT_FOUND,
            JSON,
            error(
                "NOT_FOUND",
                "the ops routes are served on the admin port (--admin-listen); this port serves the PG API and /__gazua/health",
            ),
        ),
        #[cfg(test)]
        "/__gazua/test/panic" => panic!("a test asked this handler to panic"),
        _ if !is_ops(path) => (
            StatusCode::NOT_FOUND,
            JSON,
            error(
                "NOT_FOUND",
                "this port serves the ops routes only; the PG API is on --listen",
            ),
        ),
        "/__gazua/profile" if parts.method == Method::PUT => switch_profile(state, parts, &body),
        _ if !get => (
            StatusCode::METHOD_NOT_ALLOWED,
            JSON,
            error(
                "METHOD_NOT_ALLOWED",
                "ops routes answer GET (and PUT /__gazua/profile)",
            ),
        ),
        "/__gazua/health" => (StatusCode::OK, JSON, br#"{"status":"UP"}"#.to_vec()),
        "/__gazua/ready" if !state.ready.load(Ordering::Relaxed) => (
            StatusCode::SERVICE_UNAVAILABLE,
            JSON,
            br#"{"status":"DRAINING"}"#.to_vec(),
        ),
        // A fleet's instance that cannot reach the shared ledger would answer only 503s: the
        // load balancer should route around it until Redis is back.
        "/__gazua/ready" if !state.api.ledger_healthy() => (
            StatusCode::SERVICE_UNAVAILABLE,
            JSON,
            br#"{"status":"LEDGER_UNAVAILABLE"}"#.to_vec(),
        ),
        "/__gazua/ready" => (StatusCode::OK, JSON, br#"{"status":"READY"}"#.to_vec()),
        "/metrics" => {
            record_profile_info(state);
            (
                StatusCode::OK,
                "text/plain; version=0.0.4",
                state.metrics.render(),
            )
        }
        "/__gazua/profile" => (StatusCode::OK, JSON, profile_json(state)),
        "/__gazua/openapi.json" => (StatusCode::OK, JSON, OPENAPI.as_bytes().to_vec()),
        _ => (
            StatusCode::NOT_FOUND,
            JSON,
            error(
                "NOT_FOUND",
                "no such ops route; try /__gazua/health, /__gazua/ready, /metrics, /__gazua/profile, /__gazua/openapi.json",
            ),
        ),
    };
    respond(status, content_type, body)
}

fn respond(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response<GazuaBody> {
    let mut response = Response::new(GazuaBody::full(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn error(code: &str, message: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({ "code": code, "message": message })).expect("json serializes")
}

/// The harness route that deposits into a waiting virtual account now.
const DEPOSITS: &str = "/__gazua/deposits/";

/// `POST /__gazua/deposits/{paymentKey}` (the PG test console's "deposit" button), when the
/// request is one; `None` for every other ops route. Open without `--admin-token`, else the
/// token is required; on the admin port only when `--admin-listen` is set.
pub async fn deposit(state: &State, parts: &Parts, port: Port) -> Option<Response<GazuaBody>> {
    let key = parts.uri.path().strip_prefix(DEPOSITS)?;
    if port == Port::Pg && state.config.admin_listen.is_some() {
        return None;
    }
    if parts.method != Method::POST {
        let message = "the deposit route answers POST /__gazua/deposits/{paymentKey}";
        let mut response = respond(
            StatusCode::METHOD_NOT_ALLOWED,
            JSON,
            error("METHOD_NOT_ALLOWED", message),
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return Some(response);
    }
    if let Some(token) = &state.config.admin_token
        && let Err(refused) = authorized(parts, token)
    {
        return Some(respond(refused.0, refused.1, refused.2));
    }
    let key = percent_encoding::percent_decode_str(key)
        .decode_utf8()
        .unwrap_or_default();
    let lang = crate::api::Lang::from_headers(&parts.headers);
    Some(
        match state
            .api
            .deposit_now(&key, jiff::Timestamp::now(), lang)
            .await
        {
            Ok((status, body)) => respond(status, JSON, body),
            Err(_) => respond(
                StatusCode::SERVICE_UNAVAILABLE,
                JSON,
                error(
                    "LEDGER_UNAVAILABLE",
                    "the shared ledger cannot be reached; retry when /__gazua/ready answers 200",
                ),
            ),
        },
    )
}

/// The admin token check: `Authorization: Bearer TOKEN`, compared in constant time (how long
/// the comparison takes says nothing about how much matched).
fn authorized(parts: &Parts, token: &str) -> Result<(), (StatusCode, &'static str, Vec<u8>)> {
    let bearer = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if bearer.is_some_and(|b| bool::from(b.as_bytes().ct_eq(token.as_bytes()))) {
        return Ok(());
    }
    Err((
        StatusCode::UNAUTHORIZED,
        JSON,
        error(
            "UNAUTHORIZED",
            "send the admin token as 'Authorization: Bearer TOKEN'",
        ),
    ))
}

/// The profile in force, with the current schedule phase and the serve flags above it.
fn profile_json(state: &State) -> Vec<u8> {
    let profiles = state.profiles.load();
    let plan = profiles.active();
    let phase = plan.phase_at(SystemTime::now(), state.engine.boot);
    let flags = &state.engine.flags;
    let doc = json!({
        "profile": plan.describe(),
        "phase": phase.map(|p| &*p.name),
        "flags": {
            "outcome": flags.outcome.as_ref().map(ToString::to_string),
            "latency": flags.latency.as_ref().map(ToString::to_string),
            "fault": flags.fault.as_ref().map(ToString::to_string),
        },
        "loaded": profiles.names().collect::<Vec<_>>(),
        "maxLatency": format!("{}ms", state.config.max_latency.as_millis()),
        "seed": state.config.seed,
    });
    serde_json::to_vec_pretty(&doc).expect("a json value serializes")
}

/// `PUT /__gazua/profile` with `{"name": "…"}` (or `?name=…`): makes a loaded profile the one
/// in force. Disabled without `--admin-token`; refused without that token.
fn switch_profile(
    state: &State,
    parts: &Parts,
    body: &[u8],
) -> (StatusCode, &'static str, Vec<u8>) {
    let Some(token) = &state.config.admin_token else {
        return (
            StatusCode::FORBIDDEN,
            JSON,
            error(
                "FORBIDDEN",
                "the admin route is disabled; start gazua with --admin-token to enable it",
            ),
        );
    };
    if let Err(refused) = authorized(parts, token) {
        return refused;
    }
    let from_query = parts
        .uri
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("name=")))
        .map(str::to_owned);
    let from_body = || {
        serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("name").and_then(|n| n.as_str()).map(str::to_owned))
    };
    let Some(name) = from_query.or_else(from_body) else {
        return (
            StatusCode::BAD_REQUEST,
            JSON,
            error(
                "INVALID_REQUEST",
                "expected a JSON body {\"name\": \"PROFILE\"} or ?name=PROFILE",
            ),
        );
    };
    let profiles = state.profiles.load();
    match profiles.with_active(&name) {
        Some(switched) => {
            tracing::info!(profile = %name, "profile switched through the admin route");
            state.serve(switched);
            (StatusCode::OK, JSON, profile_json(state))
        }
        None => {
            let names: Vec<&str> = profiles.names().collect();
            let message = format!(
                "no profile named '{name}'; expected one of {}",
                names.join(", ")
            );
            (
                StatusCode::NOT_FOUND,
                JSON,
                error("NOT_FOUND_PROFILE", &message),
            )
        }
    }
}

/// `gazua_profile_info{profile, phase}` is 1 for the profile and phase in force, read at scrape
/// time (the phase moves with the clock). Labels come from the loaded files, not from requests.
fn record_profile_info(state: &State) {
    let profiles = state.profiles.load();
    let plan = profiles.active();
    let phase = plan.phase_at(SystemTime::now(), state.engine.boot);
    state.metrics.profile_info.reset();
    state
        .metrics
        .profile_info
        .with_label_values(&[&*plan.name, phase.map_or("-", |p| &*p.name)])
        .set(1);
}

/// `gazua healthcheck`: `Ok` when the server at `addr` answers its health route with 200
/// within `timeout`, else why not (refused, no answer in time, the status it gave).
/// Loopback stands in for an unspecified listen address (`0.0.0.0`).
pub async fn healthcheck(
    addr: std::net::SocketAddr,
    timeout: std::time::Duration,
) -> Result<(), String> {
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let probe = async {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        let io = hyper_util::rt::TokioIo::new(stream);
        let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| format!("{addr}: {e}"))?;
        tokio::spawn(connection);
        let request = http::Request::get("/__gazua/health")
            .header(header::HOST, addr.to_string())
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("{addr}: no answer to GET /__gazua/health: {e}"))?;
        match response.status() {
            StatusCode::OK => Ok(()),
            status => Err(format!(
                "{addr}: GET /__gazua/health answered {status}, expected 200 OK"
            )),
        }
    };
    tokio::time::timeout(timeout, probe)
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "{addr}: no answer to GET /__gazua/health within {timeout:?}"
            ))
        })
}
