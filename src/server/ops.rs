//! The ops routes: health, readiness, metrics, the effective profile and the API document.
//! They ignore directives entirely: never faulted, delayed or refused for them.

use std::sync::atomic::Ordering;

use http::request::Parts;
use http::{HeaderValue, Method, Response, StatusCode, header};

use super::State;
use super::fault::GazuaBody;

/// The answer when `parts` is an ops route, else `None`.
pub fn answer(state: &State, parts: &Parts) -> Option<Response<GazuaBody>> {
    let path = parts.uri.path();
    if path != "/metrics" && !path.starts_with("/__gazua/") {
        return None;
    }
    let get = parts.method == Method::GET || parts.method == Method::HEAD;
    let (status, content_type, body): (StatusCode, &'static str, Vec<u8>) = match path {
        _ if !get => (
            StatusCode::METHOD_NOT_ALLOWED,
            JSON,
            br#"{"code":"METHOD_NOT_ALLOWED","message":"ops routes answer GET only"}"#.to_vec(),
        ),
        "/__gazua/health" => (StatusCode::OK, JSON, br#"{"status":"UP"}"#.to_vec()),
        "/__gazua/ready" if state.ready.load(Ordering::Relaxed) => {
            (StatusCode::OK, JSON, br#"{"status":"READY"}"#.to_vec())
        }
        "/__gazua/ready" => (StatusCode::SERVICE_UNAVAILABLE, JSON, br#"{"status":"DRAINING"}"#.to_vec()),
        "/metrics" => (StatusCode::OK, "text/plain; version=0.0.4", state.metrics.render()),
        "/__gazua/profile" => (StatusCode::OK, JSON, profile_json(state)),
        "/__gazua/openapi.json" => (StatusCode::OK, JSON, OPENAPI.as_bytes().to_vec()),
        _ => (
            StatusCode::NOT_FOUND,
            JSON,
            br#"{"code":"NOT_FOUND","message":"no such ops route; try /__gazua/health, /__gazua/ready, /metrics, /__gazua/profile"}"#.to_vec(),
        ),
    };
    let mut response = Response::new(GazuaBody::full(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Some(response)
}

const JSON: &str = "application/json";

/// The OpenAPI document of the PG API, kept in the repository root.
const OPENAPI: &str = include_str!("../../openapi.json");

/// The effective serving defaults.
fn profile_json(state: &State) -> Vec<u8> {
    let flags = &state.engine.flags;
    let text = |v: Option<String>| v.map_or(serde_json::Value::Null, serde_json::Value::String);
    let doc = serde_json::json!({
        "name": &*state.engine.profile,
        "phase": null,
        "defaults": {
            "outcome": text(flags.outcome.as_ref().map(mix_text)),
            "latency": text(flags.latency.as_ref().map(ToString::to_string)),
            "fault": text(flags.fault.as_ref().map(mix_text)),
        },
        "maxLatency": format!("{}ms", state.config.max_latency.as_millis()),
        "seed": state.config.seed,
    });
    serde_json::to_vec_pretty(&doc).expect("a json value serializes")
}

/// A mix in directive form, `97% approved, 3% declined(REJECT_CARD_PAYMENT)`.
fn mix_text<T: std::fmt::Display>(mix: &crate::directive::Mix<T>) -> String {
    mix.weights()
        .filter(|(weight, _)| *weight > 0)
        .map(|(weight, value)| format!("{}% {value}", f64::from(weight) / 10_000.0))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `gazua healthcheck`: true when the server at `addr` answers its health route with 200
/// within `timeout`. Loopback stands in for an unspecified listen address (`0.0.0.0`).
pub async fn healthcheck(addr: std::net::SocketAddr, timeout: std::time::Duration) -> bool {
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let probe = async {
        let stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        let io = hyper_util::rt::TokioIo::new(stream);
        let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await.ok()?;
        tokio::spawn(connection);
        let request = http::Request::get("/__gazua/health")
            .header(header::HOST, addr.to_string())
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .ok()?;
        let response = sender.send_request(request).await.ok()?;
        Some(response.status() == StatusCode::OK)
    };
    matches!(tokio::time::timeout(timeout, probe).await, Ok(Some(true)))
}
