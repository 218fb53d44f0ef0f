//! Custom routes: endpoints a profile adds beside the PG API (a points service, a webhook
//! target), each a path pattern with `{param}` segments and a JSON body template filled from
//! the request. Patterns and templates are compiled at load; rendering walks the compiled tree.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::header::HeaderName;
use http::{HeaderMap, Method, StatusCode};
use rand::RngExt;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::fields;
use crate::directive::{Directives, Fault, Latency, Mix, Outcome};

/// One custom route: `method path` answered with `status` and the rendered `body`, its
/// directives the route's defaults (below headers, tag, rules and schedule).
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawCustomRoute")]
pub struct CustomRoute {
    pub method: Method,
    /// The pattern as written, e.g. `/v1/points/{userId}/use`.
    pub path: Arc<str>,
    pub status: StatusCode,
    pub directives: Directives,
    segments: Vec<Segment>,
    body: Template,
    /// Whether the template reads the request body (so it is parsed only then).
    reads_body: bool,
}

/// The path parameters of a matched custom route, `(name, value)` in pattern order.
pub type Params<'p> = Vec<(&'p str, &'p str)>;

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Literal(String),
    Param(String),
}

#[derive(Debug, Clone)]
enum Template {
    /// A value with no placeholder anywhere inside: copied as is.
    Literal(Value),
    /// A string that is exactly one placeholder: a JSON number, bool, object or array from the
    /// request body keeps its type.
    Whole(Hole),
    /// A string with text and placeholders.
    Text(Vec<Piece>),
    Array(Vec<Template>),
    Object(Vec<(String, Template)>),
}

#[derive(Debug, Clone)]
enum Piece {
    Text(String),
    Hole(Hole),
}

#[derive(Debug, Clone)]
enum Hole {
    /// `{{path.NAME}}`: the index of the parameter in the pattern's parameters.
    Path(usize),
    /// `{{body./pointer}}`.
    Body(String),
    /// `{{header.name}}`.
    Header(HeaderName),
    /// `{{now}}`: RFC 3339 seconds in +09:00, as the PG's timestamps.
    Now,
    /// `{{uuid}}`: a random version-4 UUID.
    Uuid,
}

impl CustomRoute {
    /// The parameters when `method path` is this route.
    pub fn matches<'p>(&'p self, method: &Method, path: &'p str) -> Option<Params<'p>> {
        if *method != self.method {
            return None;
        }
        let mut params = Vec::new();
        let mut parts = path.strip_prefix('/')?.split('/');
        for segment in &self.segments {
            let part = parts.next()?;
            match segment {
                Segment::Literal(l) if l == part => {}
                Segment::Literal(_) => return None,
                Segment::Param(_) if part.is_empty() => return None,
                Segment::Param(name) => params.push((name.as_str(), part)),
            }
        }
        parts.next().is_none().then_some(params)
    }

    /// The response body: the template with the request's fields substituted. `body` is the
    /// raw request body, parsed only when the template reads it (missing values become
    /// `null`, or nothing inside a longer string).
    pub fn render(
        &self,
        params: &[(&str, &str)],
        body: &[u8],
        headers: &HeaderMap,
        now: SystemTime,
    ) -> Bytes {
        let parsed = if self.reads_body {
            serde_json::from_slice(body).unwrap_or(Value::Null)
        } else {
            Value::Null
        };
        let request = Request {
            params,
            body: &parsed,
            headers,
            now,
        };
        let value = request.fill(&self.body);
        Bytes::from(serde_json::to_vec(&value).expect("a JSON value serializes"))
    }
}

/// What a template reads from one request.
struct Request<'a> {
    params: &'a [(&'a str, &'a str)],
    body: &'a Value,
    headers: &'a HeaderMap,
    now: SystemTime,
}

impl Request<'_> {
    fn fill(&self, t: &Template) -> Value {
        match t {
            Template::Literal(v) => v.clone(),
            Template::Whole(hole) => self.value(hole),
            Template::Text(pieces) => {
                let mut out = String::new();
                for piece in pieces {
                    match piece {
                        Piece::Text(text) => out.push_str(text),
                        Piece::Hole(hole) => match self.value(hole) {
                            Value::String(s) => out.push_str(&s),
                            Value::Null => {}
                            other => out.push_str(&other.to_string()),
                        },
                    }
                }
                Value::String(out)
            }
            Template::Array(items) => Value::Array(items.iter().map(|i| self.fill(i)).collect()),
            Template::Object(members) => Value::Object(
                members
                    .iter()
                    .map(|(k, v)| (k.clone(), self.fill(v)))
                    .collect::<Map<_, _>>(),
            ),
        }
    }

    fn value(&self, hole: &Hole) -> Value {
        match hole {
            Hole::Path(i) => self
                .params
                .get(*i)
                .map_or(Value::Null, |(_, v)| Value::String((*v).to_owned())),
            Hole::Body(pointer) => self.body.pointer(pointer).cloned().unwrap_or(Value::Null),
            Hole::Header(name) => self
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map_or(Value::Null, |v| Value::String(v.to_owned())),
            Hole::Now => Value::String(kst_seconds(self.now)),
            Hole::Uuid => Value::String(uuid_v4()),
        }
    }
}

/// `2026-11-22T10:00:00+09:00`: the PG's timestamp format.
pub(crate) fn kst_seconds(now: SystemTime) -> String {
    let ts = jiff::Timestamp::try_from(now).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    ts.to_zoned(jiff::tz::TimeZone::fixed(jiff::tz::offset(9)))
        .strftime("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

fn uuid_v4() -> String {
    let mut b: [u8; 16] = rand::rng().random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

// ---- the file form ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCustomRoute {
    method: String,
    path: String,
    #[serde(default, deserialize_with = "fields::status")]
    status: Option<StatusCode>,
    #[serde(default)]
    body: Option<Value>,
    #[serde(default, deserialize_with = "fields::outcome")]
    outcome: Option<Mix<Outcome>>,
    #[serde(default, deserialize_with = "fields::latency")]
    latency: Option<Latency>,
    #[serde(default, deserialize_with = "fields::fault")]
    fault: Option<Mix<Fault>>,
}

impl TryFrom<RawCustomRoute> for CustomRoute {
    type Error = String;

    fn try_from(raw: RawCustomRoute) -> Result<CustomRoute, String> {
        let method =
            Method::from_bytes(raw.method.to_ascii_uppercase().as_bytes()).map_err(|_| {
                format!(
                    "method: expected an HTTP method such as POST, got '{}'",
                    raw.method
                )
            })?;
        let segments = pattern(&raw.path)?;
        if segments == [Segment::Literal("__gazua".into())]
            || matches!(segments.first(), Some(Segment::Literal(s)) if s == "__gazua" || s == "metrics")
        {
            return Err(format!(
                "path: /__gazua/* and /metrics belong to Gazua itself, got '{}'",
                raw.path
            ));
        }
        let names: Vec<&str> = segments
            .iter()
            .filter_map(|s| match s {
                Segment::Param(n) => Some(n.as_str()),
                Segment::Literal(_) => None,
            })
            .collect();
        let mut reads_body = false;
        let body = compile(&raw.body.unwrap_or(Value::Null), &names, &mut reads_body)?;
        Ok(CustomRoute {
            method,
            path: raw.path.as_str().into(),
            status: raw.status.unwrap_or(StatusCode::OK),
            directives: Directives {
                latency: raw.latency,
                outcome: raw.outcome,
                fault: raw.fault,
                ..Directives::default()
            },
            segments,
            body,
            reads_body,
        })
    }
}

/// `/v1/points/{userId}/use` → its segments; parameter names are unique.
fn pattern(path: &str) -> Result<Vec<Segment>, String> {
    let bad = |why: &str| format!("path: {why}, got '{path}'");
    let rest = path
        .strip_prefix('/')
        .ok_or_else(|| bad("expected a path starting with / such as /v1/points/{userId}"))?;
    let mut segments = Vec::new();
    for part in rest.split('/') {
        if part.is_empty() {
            return Err(bad("expected no empty segment"));
        }
        if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            let valid = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !valid {
                return Err(bad("expected a parameter such as {userId}"));
            }
            if segments.contains(&Segment::Param(name.to_owned())) {
                return Err(bad(&format!(
                    "expected each parameter once, {{{name}}} repeats"
                )));
            }
            segments.push(Segment::Param(name.to_owned()));
        } else if part.contains(['{', '}', '?', '#']) {
            return Err(bad("expected a whole segment {name} or plain text"));
        } else {
            segments.push(Segment::Literal(part.to_owned()));
        }
    }
    Ok(segments)
}

fn compile(v: &Value, params: &[&str], reads_body: &mut bool) -> Result<Template, String> {
    Ok(match v {
        Value::String(s) if s.contains("{{") => {
            let pieces = pieces(s, params, reads_body)?;
            match pieces.as_slice() {
                [Piece::Hole(hole)] => Template::Whole(hole.clone()),
                _ => Template::Text(pieces),
            }
        }
        Value::Array(items) => {
            let items = items
                .iter()
                .map(|i| compile(i, params, reads_body))
                .collect::<Result<Vec<_>, _>>()?;
            if items.iter().all(|i| matches!(i, Template::Literal(_))) {
                Template::Literal(v.clone())
            } else {
                Template::Array(items)
            }
        }
        Value::Object(members) => {
            let members = members
                .iter()
                .map(|(k, m)| Ok((k.clone(), compile(m, params, reads_body)?)))
                .collect::<Result<Vec<_>, String>>()?;
            if members
                .iter()
                .all(|(_, m)| matches!(m, Template::Literal(_)))
            {
                Template::Literal(v.clone())
            } else {
                Template::Object(members)
            }
        }
        other => Template::Literal(other.clone()),
    })
}

fn pieces(s: &str, params: &[&str], reads_body: &mut bool) -> Result<Vec<Piece>, String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            out.push(Piece::Text(rest[..open].to_owned()));
        }
        let after = &rest[open + 2..];
        let close = after
            .find("}}")
            .ok_or_else(|| format!("body: expected }}}} to close the placeholder in '{s}'"))?;
        let name = after[..close].trim();
        out.push(Piece::Hole(hole(name, params, reads_body)?));
        rest = &after[close + 2..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest.to_owned()));
    }
    Ok(out)
}

fn hole(name: &str, params: &[&str], reads_body: &mut bool) -> Result<Hole, String> {
    let expected =
        "expected {{path.NAME}}, {{body./pointer}}, {{header.name}}, {{now}} or {{uuid}}";
    if let Some(p) = name.strip_prefix("path.") {
        let i = params.iter().position(|n| *n == p).ok_or_else(|| {
            format!(
                "body: {{{{{name}}}}} names no parameter of the path; expected one of {params:?}"
            )
        })?;
        return Ok(Hole::Path(i));
    }
    if let Some(pointer) = name.strip_prefix("body.") {
        if !(pointer.is_empty() || pointer.starts_with('/')) {
            return Err(format!(
                "body: expected a JSON pointer such as {{{{body./amount}}}}, got {{{{{name}}}}}"
            ));
        }
        *reads_body = true;
        return Ok(Hole::Body(pointer.to_owned()));
    }
    if let Some(h) = name.strip_prefix("header.") {
        let header = HeaderName::from_bytes(h.as_bytes())
            .map_err(|_| format!("body: expected a header name in {{{{{name}}}}}"))?;
        return Ok(Hole::Header(header));
    }
    match name {
        "now" => Ok(Hole::Now),
        "uuid" => Ok(Hole::Uuid),
        _ => Err(format!(
            "body: unknown placeholder {{{{{name}}}}}; {expected}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(json: &str) -> CustomRoute {
        serde_json::from_str(json).unwrap()
    }

    const POINTS: &str = r#"{
        "method": "POST", "path": "/v1/points/{userId}/use", "status": 201,
        "latency": "uniform(10ms, 30ms)",
        "body": {"userId": "{{path.userId}}", "used": "{{body./amount}}",
                 "note": "used {{body./amount}} by {{header.x-store}}",
                 "exact": "{{body./exact}}", "missing": "{{body./nope}}",
                 "at": "{{now}}", "id": "{{uuid}}", "fixed": [1, {"a": true}]}
    }"#;

    #[test]
    fn matches_method_and_segments() {
        let r = route(POINTS);
        assert_eq!(
            r.matches(&Method::POST, "/v1/points/u-7/use"),
            Some(vec![("userId", "u-7")])
        );
        assert_eq!(r.matches(&Method::GET, "/v1/points/u-7/use"), None);
        assert_eq!(r.matches(&Method::POST, "/v1/points/u-7"), None);
        assert_eq!(r.matches(&Method::POST, "/v1/points/u-7/use/x"), None);
        assert_eq!(r.matches(&Method::POST, "/v1/points//use"), None);
        assert_eq!(r.status, StatusCode::CREATED);
        assert!(r.directives.latency.is_some());
    }

    #[test]
    fn renders_request_fields_keeping_json_types() {
        let r = route(POINTS);
        let mut headers = HeaderMap::new();
        headers.insert("x-store", "gangnam".parse().unwrap());
        let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_763_773_200);
        let body = br#"{"amount": 1500, "exact": true}"#;
        let out = r.render(&[("userId", "u-7")], body, &headers, now);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["userId"], "u-7");
        assert_eq!(
            v["used"], 1500,
            "a lone placeholder of a number stays a number"
        );
        assert_eq!(v["note"], "used 1500 by gangnam");
        assert_eq!(v["exact"], true);
        assert_eq!(v["missing"], Value::Null);
        assert_eq!(v["at"], "2025-11-22T10:00:00+09:00");
        let id = v["id"].as_str().unwrap();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_eq!(v["fixed"], serde_json::json!([1, {"a": true}]));
    }

    #[test]
    fn bad_routes_are_refused() {
        for (json, expected) in [
            (r#"{"method": "POST", "path": "v1/x"}"#, "starting with /"),
            (r#"{"method": "POST", "path": "/v1/{a}/{a}"}"#, "repeats"),
            (r#"{"method": "POST", "path": "/v1/x{a}"}"#, "whole segment"),
            (
                r#"{"method": "POST", "path": "/__gazua/x"}"#,
                "belong to Gazua",
            ),
            (
                r#"{"method": "POST", "path": "/v1/{a}", "body": "{{path.b}}"}"#,
                "names no parameter",
            ),
            (
                r#"{"method": "POST", "path": "/v1/x", "body": {"a": "{{today}}"}}"#,
                "unknown placeholder",
            ),
            (
                r#"{"method": "POST", "path": "/v1/x", "body": "{{now"}"#,
                "to close",
            ),
            (
                r#"{"method": "POST", "path": "/v1/x", "latency": "fast"}"#,
                "latency:",
            ),
            (
                r#"{"method": "POST", "path": "/v1/x", "bdy": {}}"#,
                "unknown field",
            ),
        ] {
            let e = serde_json::from_str::<CustomRoute>(json)
                .unwrap_err()
                .to_string();
            assert!(e.contains(expected), "{json}: {e}");
        }
    }
}
