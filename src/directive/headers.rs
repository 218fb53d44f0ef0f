//! Directives from a request: the `X-Gazua*` headers and their aliases, and the `[gazua: …]`
//! body tag (SPEC §2.5, sources 1 and 2).
//!
//! Headers are read on every request, so [`from_headers`] makes one pass over the header map
//! and allocates nothing unless a directive header is present.

use std::time::Duration;

use http::{HeaderMap, HeaderValue};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::cursor::{Cursor, echo, parse_percent, parse_status};
use super::mix::WHOLE;
use super::{
    CodeName, CodeRef, Deposit, DirectiveError, Directives, Fault, Latency, Mix, Outcome, Webhook,
};
use crate::codes::{self, CodeKind};

/// The headers Gazua answers to, as their names are written in the documentation.
const KNOWN: &str = "X-Gazua, X-Gazua-Latency, X-Gazua-Outcome, X-Gazua-Fault, X-Gazua-Status, \
     X-Gazua-Profile, X-Gazua-Key";

/// The name of every header [`from_headers`] reads, lowercase (for tests and fuzzers).
pub const NAMES: [&str; 14] = [
    "x-gazua",
    "x-gazua-latency",
    "x-gazua-outcome",
    "x-gazua-fault",
    "x-gazua-status",
    "x-gazua-profile",
    "x-gazua-key",
    "tosspayments-test-code",
    "x-envoy-fault-delay-request",
    "x-envoy-fault-delay-request-percentage",
    "x-envoy-fault-abort-request",
    "x-envoy-fault-abort-request-percentage",
    "x-envoy-fault-throughput-response",
    "x-envoy-fault-throughput-response-percentage",
];

/// Every header `from_headers` reads; the discriminant is its bit in the "seen" mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Header {
    Compound,
    Latency,
    Outcome,
    Fault,
    Status,
    Profile,
    Key,
    EnvoyDelay,
    EnvoyDelayPercentage,
    EnvoyAbort,
    EnvoyAbortPercentage,
    EnvoyThroughput,
    EnvoyThroughputPercentage,
    TestCode,
}

impl Header {
    /// The header a lowercase name is, `Ok(None)` for a header that is none of ours, `Err` for
    /// an unknown `x-gazua*` name.
    fn from_name(name: &str) -> Result<Option<Header>, DirectiveError> {
        if let Some(rest) = name.strip_prefix("x-gazua") {
            return Ok(Some(match rest {
                "" => Header::Compound,
                "-latency" => Header::Latency,
                "-outcome" => Header::Outcome,
                "-fault" => Header::Fault,
                "-status" => Header::Status,
                "-profile" => Header::Profile,
                "-key" => Header::Key,
                _ => return Err(unknown_header(name)),
            }));
        }
        if let Some(rest) = name.strip_prefix("x-envoy-fault-") {
            return Ok(match rest {
                "delay-request" => Some(Header::EnvoyDelay),
                "delay-request-percentage" => Some(Header::EnvoyDelayPercentage),
                "abort-request" => Some(Header::EnvoyAbort),
                "abort-request-percentage" => Some(Header::EnvoyAbortPercentage),
                "throughput-response" => Some(Header::EnvoyThroughput),
                "throughput-response-percentage" => Some(Header::EnvoyThroughputPercentage),
                // Envoy's other fault headers (gRPC aborts, …) are Envoy's business.
                _ => None,
            });
        }
        Ok((name == "tosspayments-test-code").then_some(Header::TestCode))
    }

    fn display(self) -> &'static str {
        match self {
            Header::Compound => "X-Gazua",
            Header::Latency => "X-Gazua-Latency",
            Header::Outcome => "X-Gazua-Outcome",
            Header::Fault => "X-Gazua-Fault",
            Header::Status => "X-Gazua-Status",
            Header::Profile => "X-Gazua-Profile",
            Header::Key => "X-Gazua-Key",
            Header::EnvoyDelay => "x-envoy-fault-delay-request",
            Header::EnvoyDelayPercentage => "x-envoy-fault-delay-request-percentage",
            Header::EnvoyAbort => "x-envoy-fault-abort-request",
            Header::EnvoyAbortPercentage => "x-envoy-fault-abort-request-percentage",
            Header::EnvoyThroughput => "x-envoy-fault-throughput-response",
            Header::EnvoyThroughputPercentage => "x-envoy-fault-throughput-response-percentage",
            Header::TestCode => "TossPayments-Test-Code",
        }
    }
}

fn unknown_header(name: &str) -> DirectiveError {
    let known = [
        "X-Gazua",
        "X-Gazua-Latency",
        "X-Gazua-Outcome",
        "X-Gazua-Fault",
        "X-Gazua-Status",
        "X-Gazua-Profile",
        "X-Gazua-Key",
    ];
    // A name far longer than any known one is no typo of one: skip the quadratic distance.
    let closest = known
        .iter()
        .filter(|_| name.len() <= 32)
        .map(|k| (edit_distance(name, &k.to_ascii_lowercase()), *k))
        .min()
        .filter(|(distance, _)| *distance <= 3);
    let hint = closest.map_or(String::new(), |(_, k)| format!(" (did you mean {k}?)"));
    DirectiveError::new(format!(
        "{}: unknown header{hint}; expected one of {KNOWN}",
        echo(name)
    ))
}

/// Levenshtein distance, for the "did you mean" of a misspelt header or profile name, and a
/// misspelt tag marker (a word of at most a few letters); error paths only.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// The fields of [`Directives`], to tell which source set each.
#[derive(Debug, Clone, Copy)]
enum Field {
    Latency,
    Outcome,
    Fault,
    Status,
    Profile,
    Key,
    Deposit,
    Webhook,
}

impl Field {
    fn name(self) -> &'static str {
        match self {
            Field::Latency => "latency",
            Field::Outcome => "outcome",
            Field::Fault => "fault",
            Field::Status => "status",
            Field::Profile => "profile",
            Field::Key => "key",
            Field::Deposit => "deposit",
            Field::Webhook => "webhook",
        }
    }

    /// How the compound header names its part that sets this field.
    fn in_compound(self) -> &'static str {
        match self {
            Field::Latency => "X-Gazua (latency=)",
            Field::Outcome => "X-Gazua (outcome=)",
            Field::Fault => "X-Gazua (fault=)",
            Field::Status => "X-Gazua (status=)",
            Field::Profile => "X-Gazua (profile=)",
            Field::Key => "X-Gazua (key=)",
            Field::Deposit => "X-Gazua (deposit=)",
            Field::Webhook => "X-Gazua (webhook=)",
        }
    }
}

/// Which source set each field so far: a second source is a conflict, never a silent winner.
#[derive(Default)]
struct Claims([Option<&'static str>; 8]);

impl Claims {
    fn claim(&mut self, field: Field, source: &'static str) -> Result<(), DirectiveError> {
        match self.0[field as usize] {
            Some(first) => Err(DirectiveError::new(format!(
                "{} is set by both {first} and {source}; expected one of them",
                field.name()
            ))),
            None => {
                self.0[field as usize] = Some(source);
                Ok(())
            }
        }
    }
}

/// Everything the request's headers ask for. An unknown `X-Gazua-*` header, a header sent
/// twice, a field set by two headers, or text that does not parse is an error naming the
/// header.
pub fn from_headers(headers: &HeaderMap) -> Result<Directives, DirectiveError> {
    let mut d = Directives::default();
    let mut seen: u16 = 0;
    let mut claims = Claims::default();
    let mut envoy: [Option<&HeaderValue>; 6] = [None; 6];
    for (name, value) in headers {
        // Names in a HeaderMap are lowercase already: matching them is case-insensitive.
        let Some(header) = Header::from_name(name.as_str())? else {
            continue;
        };
        let bit = 1u16 << header as u16;
        if seen & bit != 0 {
            return Err(DirectiveError::new(format!(
                "{}: the header is sent more than once; expected it once",
                header.display()
            )));
        }
        seen |= bit;
        let source = header.display();
        super::check_len(value.len()).map_err(|e| e.within(source))?;
        let text = value_text(value).map_err(|e| e.within(source))?;
        match header {
            Header::Compound => {
                let c = parse_compound(text).map_err(|e| e.within(source))?;
                for (field, set) in [
                    (Field::Latency, c.latency.is_some()),
                    (Field::Outcome, c.outcome.is_some()),
                    (Field::Fault, c.fault.is_some()),
                    (Field::Status, c.status.is_some()),
                    (Field::Profile, c.profile.is_some()),
                    (Field::Key, c.key.is_some()),
                    (Field::Deposit, c.deposit.is_some()),
                    (Field::Webhook, c.webhook.is_some()),
                ] {
                    if set {
                        claims.claim(field, field.in_compound())?;
                    }
                }
                merge(&mut d, c);
            }
            Header::Latency => {
                claims.claim(Field::Latency, source)?;
                d.latency = Some(Latency::parse(text).map_err(|e| e.within(source))?);
            }
            Header::Outcome => {
                claims.claim(Field::Outcome, source)?;
                d.outcome = Some(Outcome::parse_mix(text).map_err(|e| e.within(source))?);
            }
            Header::Fault => {
                claims.claim(Field::Fault, source)?;
                d.fault = Some(Fault::parse_mix(text).map_err(|e| e.within(source))?);
            }
            Header::Status => {
                claims.claim(Field::Status, source)?;
                d.status = Some(status(text).map_err(|e| e.within(source))?);
            }
            Header::Profile => {
                claims.claim(Field::Profile, source)?;
                d.profile = Some(profile(text).map_err(|e| e.within(source))?);
            }
            Header::Key => {
                claims.claim(Field::Key, source)?;
                d.key = Some(key(text).map_err(|e| e.within(source))?);
            }
            Header::TestCode => {
                claims.claim(Field::Outcome, source)?;
                d.outcome = Some(Mix::single(test_code(text)?));
            }
            Header::EnvoyDelay
            | Header::EnvoyDelayPercentage
            | Header::EnvoyAbort
            | Header::EnvoyAbortPercentage
            | Header::EnvoyThroughput
            | Header::EnvoyThroughputPercentage => {
                envoy[header as usize - Header::EnvoyDelay as usize] = Some(value);
            }
        }
    }
    if envoy.iter().any(Option::is_some) {
        apply_envoy(&envoy, &mut d, &mut claims)?;
    }
    Ok(d)
}

/// Moves the fields `from` sets into `into` (the caller has checked they do not overlap).
fn merge(into: &mut Directives, from: Directives) {
    let Directives {
        latency,
        outcome,
        fault,
        status,
        profile,
        key,
        deposit,
        webhook,
    } = from;
    into.latency = latency.or(into.latency.take());
    into.outcome = outcome.or(into.outcome.take());
    into.fault = fault.or(into.fault.take());
    into.status = status.or(into.status);
    into.profile = profile.or(into.profile.take());
    into.key = key.or(into.key.take());
    into.deposit = deposit.or(into.deposit.take());
    into.webhook = webhook.or(into.webhook.take());
}

/// A header value as text: UTF-8 without control characters (a tab counts as a blank).
fn value_text(value: &HeaderValue) -> Result<&str, DirectiveError> {
    let text = std::str::from_utf8(value.as_bytes())
        .map_err(|_| DirectiveError::new("expected UTF-8 text, got other bytes"))?;
    if text.chars().any(|c| c.is_control() && c != '\t') {
        return Err(DirectiveError::new(
            "expected text without control characters",
        ));
    }
    Ok(text)
}

/// Envoy's fault headers: delay in ms, abort status, throughput in KiB/s, each with an
/// optional `-percentage` (0 to 100, default 100) of requests it applies to.
fn apply_envoy(
    values: &[Option<&HeaderValue>; 6],
    d: &mut Directives,
    claims: &mut Claims,
) -> Result<(), DirectiveError> {
    let text = |i: usize| -> Result<Option<&str>, DirectiveError> {
        let header = ENVOY[i];
        values[i]
            .map(|v| {
                value_text(v)
                    .map(str::trim)
                    .map_err(|e| e.within(header.display()))
            })
            .transpose()
    };
    for pair in 0..3 {
        let (base, companion) = (ENVOY[2 * pair], ENVOY[2 * pair + 1]);
        let Some(value) = text(2 * pair)? else {
            if values[2 * pair + 1].is_some() {
                return Err(DirectiveError::new(format!(
                    "{}: expected it only with {}",
                    companion.display(),
                    base.display()
                )));
            }
            continue;
        };
        let percent = match text(2 * pair + 1)? {
            Some(p) => parse_percent(p).ok_or_else(|| {
                DirectiveError::new(format!(
                    "{}: expected a percentage from 0 to 100 such as 25 at '{}'",
                    companion.display(),
                    echo(p)
                ))
            })?,
            None => WHOLE,
        };
        let source = base.display();
        let bad = |expected: &str| {
            DirectiveError::new(format!(
                "{source}: expected {expected} at '{}'",
                echo(value)
            ))
        };
        match base {
            Header::EnvoyDelay => {
                claims.claim(Field::Latency, source)?;
                let ms = whole_number(value)
                    .ok_or_else(|| bad("a delay in milliseconds such as 250"))?;
                d.latency = Some(Latency::sometimes(Duration::from_millis(ms), percent));
            }
            Header::EnvoyAbort => {
                claims.claim(Field::Outcome, source)?;
                let status =
                    parse_status(value).ok_or_else(|| bad("an HTTP status from 200 to 599"))?;
                let error = Outcome::Error(CodeRef {
                    code: None,
                    status: Some(status),
                });
                d.outcome = Mix::from_weights(vec![(percent, error)], Outcome::Approved);
            }
            _ => {
                claims.claim(Field::Fault, source)?;
                let bytes_per_sec = whole_number(value)
                    .and_then(|kib| kib.checked_mul(1024))
                    .and_then(|b| u32::try_from(b).ok())
                    .filter(|b| *b > 0)
                    .ok_or_else(|| bad("a rate in KiB/s above 0 such as 64"))?;
                let dribble = Fault::Dribble { bytes_per_sec };
                d.fault = Mix::from_weights(vec![(percent, dribble)], Fault::None);
            }
        }
    }
    Ok(())
}

/// Envoy's headers in the order of `from_headers`' `envoy` array: each base, then its
/// `-percentage`.
const ENVOY: [Header; 6] = [
    Header::EnvoyDelay,
    Header::EnvoyDelayPercentage,
    Header::EnvoyAbort,
    Header::EnvoyAbortPercentage,
    Header::EnvoyThroughput,
    Header::EnvoyThroughputPercentage,
];

fn whole_number(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `TossPayments-Test-Code: CODE`: the real PG answers with that code; an unknown code is the
/// PG's own `400 INVALID_TEST_CODE`.
fn test_code(text: &str) -> Result<Outcome, DirectiveError> {
    let name = text.trim();
    let Some(info) = codes::lookup(name) else {
        return Err(DirectiveError {
            code: "INVALID_TEST_CODE",
            message: format!(
                "TossPayments-Test-Code: unknown code '{}'; expected an error code of the \
                 PG such as REJECT_CARD_PAYMENT",
                echo(name)
            ),
        });
    };
    let code = CodeRef {
        code: Some(CodeName::Known(info)),
        status: None,
    };
    Ok(match info.kind {
        CodeKind::Declined => Outcome::Declined(code),
        CodeKind::Throttled => Outcome::Throttled,
        CodeKind::Error | CodeKind::Invalid => Outcome::Error(code),
    })
}

fn status(text: &str) -> Result<http::StatusCode, DirectiveError> {
    let mut c = Cursor::new(text);
    let status = c.status()?;
    c.finish()?;
    Ok(status)
}

/// A profile name: `[a-z0-9][a-z0-9_-]*`, at most 64 characters.
fn profile(text: &str) -> Result<String, DirectiveError> {
    let name = text.trim();
    let mut bytes = name.bytes();
    let valid = name.len() <= 64
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if valid {
        Ok(name.to_owned())
    } else {
        Err(DirectiveError::new(format!(
            "expected a profile name such as peak-sale ([a-z0-9][a-z0-9_-]*, at most 64 \
             characters) at '{}'",
            echo(name)
        )))
    }
}

/// A determinism key: visible ASCII, 1 to 256 characters.
fn key(text: &str) -> Result<String, DirectiveError> {
    let key = text.trim();
    if !key.is_empty() && key.len() <= 256 && key.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(key.to_owned())
    } else {
        let shown: String = key.chars().take(64).collect();
        Err(DirectiveError::new(format!(
            "expected a key of 1 to 256 visible ASCII characters at '{shown}'"
        )))
    }
}

/// Parses the compound form used by `X-Gazua`, body tags and profile files:
/// `outcome=declined; latency=2s; fault=reset; status=503; profile=peak-sale; key=abc`.
/// An unknown or repeated field is an error.
pub fn parse_compound(text: &str) -> Result<Directives, DirectiveError> {
    super::check_length(text)?;
    let mut d = Directives::default();
    let mut any = false;
    for part in text.split(';') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let Some((name, value)) = part.split_once('=') else {
            return Err(DirectiveError::new(format!(
                "expected a field such as outcome=declined at '{}' in '{}'",
                echo(part),
                echo(text)
            )));
        };
        let (name, value) = (name.trim(), value.trim());
        let repeated = || {
            DirectiveError::new(format!(
                "expected each field once, but {name}= is repeated in '{}'",
                echo(text)
            ))
        };
        let within = |e: DirectiveError| e.within(&format!("{name}="));
        match name {
            "latency" if d.latency.is_some() => return Err(repeated()),
            "latency" => d.latency = Some(Latency::parse(value).map_err(within)?),
            "outcome" if d.outcome.is_some() => return Err(repeated()),
            "outcome" => d.outcome = Some(Outcome::parse_mix(value).map_err(within)?),
            "fault" if d.fault.is_some() => return Err(repeated()),
            "fault" => d.fault = Some(Fault::parse_mix(value).map_err(within)?),
            "status" if d.status.is_some() => return Err(repeated()),
            "status" => d.status = Some(status(value).map_err(within)?),
            "profile" if d.profile.is_some() => return Err(repeated()),
            "profile" => d.profile = Some(profile(value).map_err(within)?),
            "key" if d.key.is_some() => return Err(repeated()),
            "key" => d.key = Some(key(value).map_err(within)?),
            "deposit" if d.deposit.is_some() => return Err(repeated()),
            "deposit" => d.deposit = Some(Deposit::parse(value).map_err(within)?),
            "webhook" if d.webhook.is_some() => return Err(repeated()),
            "webhook" => d.webhook = Some(Webhook::parse(value).map_err(within)?),
            _ => {
                return Err(DirectiveError::new(format!(
                    "expected a field outcome=, latency=, fault=, status=, profile=, key=, \
                     deposit= or webhook= at '{}' in '{}'",
                    echo(part),
                    echo(text)
                )));
            }
        }
        any = true;
    }
    if !any {
        return Err(DirectiveError::new(format!(
            "expected at least one field such as outcome=declined in '{}'",
            echo(text)
        )));
    }
    Ok(d)
}

/// The tag marker, matched in any case (`[Gazua:`, `[GAZUA:`): a capital G must not turn a
/// directive into silently approved text.
const MARKER: &[u8] = b"[gazua:";

/// The fields a tag may set, to tell a misspelt marker (`[gazau: outcome=…`) from text that
/// merely looks alike (`[Gazua Store] socks`).
const FIELDS: [&str; 8] = [
    "outcome", "latency", "fault", "status", "profile", "key", "deposit", "webhook",
];

/// Where the first tag marker starts in `text`. `[` is rare in a payment body, so memchr
/// finds the candidates about as fast as a search for the marker itself.
fn find_marker(text: &[u8]) -> Option<usize> {
    memchr::memchr_iter(b'[', text).find(|&i| is_marker(&text[i..]))
}

/// `at` (which starts with `[`) starts with the marker, in any case.
fn is_marker(at: &[u8]) -> bool {
    at.len() >= MARKER.len() && at[..MARKER.len()].eq_ignore_ascii_case(MARKER)
}

/// `at` (which starts with `[`) is a near miss of a tag: a word within two typos of `gazua`
/// (or `gazua` itself with blanks around it or no colon), then a directive field and `=`:
/// `[gazau: outcome=declined]`, `[gazua outcome=declined]`, `[ Gazua : latency=2s]`. Such a
/// tag was meant, and must not pass silently; text that merely looks alike has no field.
fn is_near_miss(at: &[u8]) -> bool {
    // Bounded scans: a body of `[` and blanks costs no more than its length.
    let blanks = |i: usize| i + at[i..].iter().take(3).take_while(|b| **b == b' ').count();
    let word = |i: usize| {
        i + at[i..]
            .iter()
            .take(9)
            .take_while(|b| b.is_ascii_alphabetic())
            .count()
    };
    let start = blanks(1);
    let end = word(start);
    if !(3..=8).contains(&(end - start)) {
        return false;
    }
    let mut i = blanks(end);
    let colon = at.get(i) == Some(&b':');
    if colon {
        i = blanks(i + 1);
    }
    let field_end = word(i);
    let field = &at[i..field_end];
    if !FIELDS
        .iter()
        .any(|f| field.eq_ignore_ascii_case(f.as_bytes()))
    {
        return false;
    }
    if at.get(blanks(field_end)) != Some(&b'=') {
        return false;
    }
    let name = String::from_utf8_lossy(&at[start..end]).to_ascii_lowercase();
    edit_distance(&name, "gazua") <= 2 && !is_marker(at)
}

/// Whether `body` may hold a tag or a near miss of one: the request path's cheap check before
/// any JSON is walked.
pub fn may_hold_tag(body: &[u8]) -> bool {
    memchr::memchr_iter(b'[', body).any(|i| is_marker(&body[i..]) || is_near_miss(&body[i..]))
}

/// The directives of the first `[gazua: …]` tag inside a string value of a JSON body, in
/// document order; `None` when the body holds no tag in a string value or is not JSON. A near
/// miss of the marker in a string value (`[gazau: outcome=…]`) is an error.
pub fn find_tag(body: &[u8]) -> Option<Result<Directives, DirectiveError>> {
    if !may_hold_tag(body) {
        return None;
    }
    let mut found = Found::default();
    let mut de = serde_json::Deserializer::from_slice(body);
    FindTag { found: &mut found }.deserialize(&mut de).ok()?;
    de.end().ok()?;
    if let Some(near) = found.near_miss {
        return Some(Err(near_miss_error(&near)));
    }
    parse_tag_in(&found.tag?)
}

fn near_miss_error(text: &str) -> DirectiveError {
    let at = text
        .bytes()
        .enumerate()
        .find(|(i, b)| *b == b'[' && is_near_miss(&text.as_bytes()[*i..]))
        .map_or(0, |(i, _)| i);
    DirectiveError::new(format!(
        "[gazua: …] tag: expected the marker '[gazua:' (any case) such as \
         [gazua: outcome=declined] at '{}'",
        echo(&text[at..])
    ))
}

/// The inner text of the first `[gazua: …]` tag in `text`, trimmed; `None` without a whole
/// tag. What a minted payment key carries.
pub fn tag_text(text: &str) -> Option<&str> {
    let start = find_marker(text.as_bytes())? + MARKER.len();
    let len = text[start..].find(']')?;
    Some(text[start..start + len].trim())
}

/// The directives of the first `[gazua: …]` tag in `text` (a JSON string value, or a payment
/// key Gazua minted with a tag inside); `None` when `text` holds no tag.
pub fn parse_tag_in(text: &str) -> Option<Result<Directives, DirectiveError>> {
    // The marker is ASCII, so the byte after it is a char boundary.
    let start = find_marker(text.as_bytes())? + MARKER.len();
    let rest = &text[start..];
    Some(match rest.find(']') {
        Some(end) => parse_compound(&rest[..end]).map_err(|e| e.within("[gazua: …] tag")),
        None => Err(DirectiveError::new(format!(
            "[gazua: …] tag: expected ']' to close the tag at the end of '{}{}'",
            String::from_utf8_lossy(&text.as_bytes()[start - MARKER.len()..start]),
            echo(rest)
        ))),
    })
}

/// What the walk found: the first string value holding a tag, the first holding a near miss.
#[derive(Default)]
struct Found {
    tag: Option<String>,
    near_miss: Option<String>,
}

/// Walks a JSON document without building it, keeping the first string value holding a tag.
struct FindTag<'s> {
    found: &'s mut Found,
}

impl FindTag<'_> {
    fn string(self, v: &str) {
        let bytes = v.as_bytes();
        if self.found.tag.is_none() && find_marker(bytes).is_some() {
            self.found.tag = Some(v.to_owned());
        }
        if self.found.near_miss.is_none()
            && memchr::memchr_iter(b'[', bytes).any(|i| is_near_miss(&bytes[i..]))
        {
            self.found.near_miss = Some(v.to_owned());
        }
    }
}

impl<'de> DeserializeSeed<'de> for FindTag<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FindTag<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_i128<E>(self, _: i128) -> Result<(), E> {
        Ok(())
    }
    fn visit_u128<E>(self, _: u128) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        self.string(v);
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(FindTag {
                found: &mut *self.found,
            })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // Keys are names, not values: a tag is looked for in values only.
        while map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value_seed(FindTag {
                found: &mut *self.found,
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
