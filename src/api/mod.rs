//! The PG's HTTP API (Toss-Payments-compatible flavor): validating a request, applying the
//! decided outcome to the payment lifecycle, and rendering the answer's JSON.

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};

use crate::codes::CodeInfo;
use crate::directive::{DirectiveError, Directives};
use crate::engine::Decision;
use crate::route::Target;

/// The language of messages: Korean unless the client sends `Accept-Language: en-US`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Ko,
    En,
}

impl Lang {
    pub fn from_headers(headers: &HeaderMap) -> Lang {
        let english = headers
            .get(http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("en"));
        if english { Lang::En } else { Lang::Ko }
    }
}

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
    /// A user-defined code from a directive.
    Custom,
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
}

/// The API's state: settings and (later) the ledger.
pub struct Api {
    pub secret_key: Option<String>,
}

impl Api {
    /// The `[gazua: …]` tag this request carries, in a JSON string value of its body (or, for
    /// a key Gazua minted, inside that key).
    pub fn request_tag(
        &self,
        _target: &Target<'_>,
        body: &[u8],
    ) -> Option<Result<Directives, DirectiveError>> {
        crate::directive::headers::find_tag(body)
    }

    /// Validates the request, applies `decision` to the payment lifecycle and renders the
    /// answer. Never fails: every bad input is a PG-shaped 4xx.
    pub fn answer(&self, req: &ApiRequest<'_>, decision: &Decision) -> Reply {
        let _ = (req, decision);
        Reply {
            status: StatusCode::OK,
            body: Bytes::from_static(b"{}"),
            code: ReplyCode::Ok,
            retry_after: None,
        }
    }
}

/// A PG error body `{"code": …, "message": …}` with its status.
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
    .expect("serializing two strings cannot fail");
    Reply {
        status,
        body: Bytes::from(body),
        code,
        retry_after: None,
    }
}
