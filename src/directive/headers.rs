//! Directives from a request: the `X-Gazua*` headers and their aliases, and the `[gazua: …]`
//! body tag (SPEC §2.5, sources 1 and 2). STUB.

use http::HeaderMap;

use super::{DirectiveError, Directives, Fault, Latency, Outcome};

/// Everything the request's headers ask for. An unknown `X-Gazua-*` header, a field set twice,
/// or text that does not parse is an error naming the header.
pub fn from_headers(headers: &HeaderMap) -> Result<Directives, DirectiveError> {
    let mut d = Directives::default();
    if let Some(v) = headers.get("x-gazua-latency") {
        let text = v.to_str().map_err(|_| DirectiveError::new("not text"))?;
        d.latency = Some(Latency::parse(text).map_err(|e| e.within("X-Gazua-Latency"))?);
    }
    if let Some(v) = headers.get("x-gazua-outcome") {
        let text = v.to_str().map_err(|_| DirectiveError::new("not text"))?;
        d.outcome = Some(Outcome::parse_mix(text).map_err(|e| e.within("X-Gazua-Outcome"))?);
    }
    if let Some(v) = headers.get("x-gazua-fault") {
        let text = v.to_str().map_err(|_| DirectiveError::new("not text"))?;
        d.fault = Some(Fault::parse_mix(text).map_err(|e| e.within("X-Gazua-Fault"))?);
    }
    if let Some(v) = headers.get("x-gazua-key") {
        d.key = v.to_str().ok().map(str::to_owned);
    }
    Ok(d)
}

/// The directives of the first `[gazua: …]` tag inside a string value of a JSON body; `None`
/// when the body holds no tag.
pub fn find_tag(_body: &[u8]) -> Option<Result<Directives, DirectiveError>> {
    None
}

/// Parses the compound form used by `X-Gazua` and tags: `outcome=declined; latency=2s; key=k1`.
pub fn parse_compound(_text: &str) -> Result<Directives, DirectiveError> {
    Ok(Directives::default())
}
