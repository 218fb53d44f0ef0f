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
mod tests {
    use super::*;
    use http::StatusCode;
    use http::header::HeaderName;
    use proptest::prelude::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    fn ok(pairs: &[(&str, &str)]) -> Directives {
        from_headers(&map(pairs)).unwrap_or_else(|e| panic!("{pairs:?}: {e}"))
    }

    fn err(pairs: &[(&str, &str)]) -> DirectiveError {
        from_headers(&map(pairs)).unwrap_err()
    }

    fn known(name: &str) -> CodeRef {
        CodeRef {
            code: Some(CodeName::Known(codes::lookup(name).unwrap())),
            status: None,
        }
    }

    #[test]
    fn every_name_is_read() {
        for name in NAMES {
            let header = Header::from_name(name).unwrap().expect("one of ours");
            assert!(header.display().eq_ignore_ascii_case(name), "{name}");
        }
    }

    #[test]
    fn no_directive_headers_is_empty() {
        let d = ok(&[
            ("content-type", "application/json"),
            ("idempotency-key", "k"),
            ("x-envoy-upstream-service-time", "3"),
            ("x-forwarded-for", "10.0.0.1"),
        ]);
        assert!(d.is_empty());
        assert!(from_headers(&HeaderMap::new()).unwrap().is_empty());
    }

    #[test]
    fn the_compound_header_sets_every_field() {
        let d = ok(&[(
            "X-Gazua",
            "outcome=declined; latency=2s; fault=reset; status=503; profile=peak-sale; key=abc",
        )]);
        assert_eq!(
            d.outcome,
            Some(Mix::single(Outcome::Declined(CodeRef::DEFAULT)))
        );
        assert_eq!(d.latency, Some(Latency::fixed(Duration::from_secs(2))));
        assert_eq!(d.fault, Some(Mix::single(Fault::Reset)));
        assert_eq!(d.status, Some(StatusCode::SERVICE_UNAVAILABLE));
        assert_eq!(d.profile.as_deref(), Some("peak-sale"));
        assert_eq!(d.key.as_deref(), Some("abc"));
    }

    #[test]
    fn per_field_headers_any_case() {
        let d = ok(&[
            ("x-gazua-latency", "lognormal(p50=80ms, p99=900ms)"),
            ("X-GAZUA-OUTCOME", "97% approved, 3% error(PROVIDER_ERROR)"),
            ("X-Gazua-Fault", "dribble(1KB/s)"),
            ("X-Gazua-Status", " 418 "),
            ("X-Gazua-Profile", "peak_sale-2"),
            ("X-Gazua-Key", "order-42/a"),
        ]);
        assert_eq!(
            d.latency.unwrap().to_string(),
            "lognormal(p50=80ms, p99=900ms)"
        );
        assert_eq!(
            d.outcome.unwrap().to_string(),
            "97% approved, 3% error(PROVIDER_ERROR)"
        );
        assert_eq!(
            d.fault,
            Some(Mix::single(Fault::Dribble {
                bytes_per_sec: 1000
            }))
        );
        assert_eq!(d.status, Some(StatusCode::IM_A_TEAPOT));
        assert_eq!(d.profile.as_deref(), Some("peak_sale-2"));
        assert_eq!(d.key.as_deref(), Some("order-42/a"));
        // The compound header and per-field headers that set different fields combine.
        let d = ok(&[("X-Gazua", "outcome=error"), ("X-Gazua-Latency", "5ms")]);
        assert_eq!(
            d.outcome,
            Some(Mix::single(Outcome::Error(CodeRef::DEFAULT)))
        );
        assert_eq!(d.latency, Some(Latency::fixed(Duration::from_millis(5))));
    }

    #[test]
    fn errors_are_prefixed_with_the_header() {
        assert_eq!(
            err(&[("X-Gazua-Latency", "lognormal(p50=80, p99=900ms)")]).message,
            "X-Gazua-Latency: expected a duration such as 120ms at 'p50=80' in \
             'lognormal(p50=80, p99=900ms)'"
        );
        let e = err(&[("X-Gazua", "outcome=declined; latency=2")]);
        assert_eq!(e.code, "GAZUA_INVALID_DIRECTIVE");
        assert_eq!(
            e.message,
            "X-Gazua: latency=: expected a duration such as 120ms at '2' in '2'"
        );
        for (pairs, expected) in [
            (
                &[("X-Gazua-Status", "600")][..],
                "X-Gazua-Status: expected an HTTP status from 200 to 599 at '600'",
            ),
            (
                &[("X-Gazua-Status", "200 ok")],
                "X-Gazua-Status: expected the end at 'ok'",
            ),
            (
                &[("X-Gazua-Profile", "Peak")],
                "X-Gazua-Profile: expected a profile name such as peak-sale",
            ),
            (
                &[("X-Gazua-Profile", "-peak")],
                "X-Gazua-Profile: expected a profile name",
            ),
            (
                &[("X-Gazua-Profile", &"p".repeat(65))],
                "X-Gazua-Profile: expected a profile name",
            ),
            (
                &[("X-Gazua-Key", "a b")],
                "X-Gazua-Key: expected a key of 1 to 256 visible ASCII characters at 'a b'",
            ),
            (
                &[("X-Gazua-Key", &"k".repeat(257))],
                "X-Gazua-Key: expected a key of 1 to 256",
            ),
            (&[("X-Gazua-Key", "")], "X-Gazua-Key: expected a key"),
            (
                &[("X-Gazua-Outcome", "aproved")],
                "X-Gazua-Outcome: expected an outcome",
            ),
            (
                &[("X-Gazua-Fault", "rest")],
                "X-Gazua-Fault: expected a fault",
            ),
            (
                &[("X-Gazua", "outcome")],
                "X-Gazua: expected a field such as outcome=declined at 'outcome'",
            ),
            (
                &[("X-Gazua", "")],
                "X-Gazua: expected at least one field such as outcome=declined",
            ),
            (
                &[("X-Gazua", "outcome=error; outcome=declined")],
                "X-Gazua: expected each field once, but outcome= is repeated",
            ),
            (
                &[("X-Gazua", "latncy=2s")],
                "X-Gazua: expected a field outcome=, latency=, fault=, status=, profile=, key=, deposit= or webhook= at 'latncy=2s'",
            ),
        ] {
            let message = err(pairs).message;
            assert!(message.starts_with(expected), "{pairs:?}: {message}");
        }
    }

    #[test]
    fn unknown_gazua_headers_are_errors() {
        let e = err(&[("X-Gazua-Latncy", "2s")]);
        assert_eq!(
            e.message,
            "x-gazua-latncy: unknown header (did you mean X-Gazua-Latency?); expected one of \
             X-Gazua, X-Gazua-Latency, X-Gazua-Outcome, X-Gazua-Fault, X-Gazua-Status, \
             X-Gazua-Profile, X-Gazua-Key"
        );
        let e = err(&[("x-gazua-something-else", "1")]);
        assert!(
            e.message
                .starts_with("x-gazua-something-else: unknown header; expected one of X-Gazua,"),
            "{e}"
        );
        assert!(
            err(&[("x-gazuax", "1")])
                .message
                .starts_with("x-gazuax: unknown header")
        );
    }

    #[test]
    fn repeats_and_conflicts_name_both_sources() {
        let e = err(&[("X-Gazua-Latency", "1s"), ("x-gazua-latency", "2s")]);
        assert_eq!(
            e.message,
            "X-Gazua-Latency: the header is sent more than once; expected it once"
        );
        let e = err(&[("X-Gazua", "latency=1s"), ("X-Gazua-Latency", "2s")]);
        assert_eq!(
            e.message,
            "latency is set by both X-Gazua (latency=) and X-Gazua-Latency; expected one of them"
        );
        let e = err(&[
            ("X-Gazua-Outcome", "error"),
            ("TossPayments-Test-Code", "PROVIDER_ERROR"),
        ]);
        assert!(e.message.contains("X-Gazua-Outcome"), "{e}");
        assert!(e.message.contains("TossPayments-Test-Code"), "{e}");
        let e = err(&[
            ("X-Gazua-Latency", "1s"),
            ("x-envoy-fault-delay-request", "10"),
        ]);
        assert!(
            e.message
                .contains("X-Gazua-Latency and x-envoy-fault-delay-request"),
            "{e}"
        );
        let e = err(&[
            ("X-Gazua", "fault=reset"),
            ("x-envoy-fault-throughput-response", "1"),
        ]);
        assert!(e.message.contains("X-Gazua (fault=) and x-envoy"), "{e}");
        let e = err(&[("X-Gazua", "key=a"), ("X-Gazua-Key", "b")]);
        assert!(e.message.starts_with("key is set by both"), "{e}");
    }

    #[test]
    fn values_must_be_text() {
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static("x-gazua-latency"),
            HeaderValue::from_bytes(b"1\xffs").unwrap(),
        );
        let e = from_headers(&headers).unwrap_err();
        assert_eq!(
            e.message,
            "X-Gazua-Latency: expected UTF-8 text, got other bytes"
        );
        headers.insert(
            HeaderName::from_static("x-gazua-latency"),
            HeaderValue::from_bytes("250µs".as_bytes()).unwrap(),
        );
        let d = from_headers(&headers).unwrap();
        assert_eq!(d.latency, Some(Latency::fixed(Duration::from_micros(250))));
        headers.insert(
            HeaderName::from_static("x-gazua-latency"),
            HeaderValue::from_bytes("1s\u{85}".as_bytes()).unwrap(),
        );
        let e = from_headers(&headers).unwrap_err();
        assert!(e.message.contains("control characters"), "{e}");
    }

    #[test]
    fn envoy_aliases() {
        let d = ok(&[("x-envoy-fault-delay-request", "250")]);
        assert_eq!(d.latency, Some(Latency::fixed(Duration::from_millis(250))));
        let d = ok(&[
            ("x-envoy-fault-delay-request", "250"),
            ("x-envoy-fault-delay-request-percentage", "30"),
        ]);
        assert_eq!(
            d.latency,
            Some(Latency::parse("30% 250ms + 70% 0").unwrap())
        );

        let d = ok(&[
            ("x-envoy-fault-abort-request", "503"),
            ("x-envoy-fault-abort-request-percentage", "12.5"),
        ]);
        let error = Outcome::Error(CodeRef {
            code: None,
            status: Some(StatusCode::SERVICE_UNAVAILABLE),
        });
        assert_eq!(
            d.outcome,
            Mix::from_weights(vec![(125_000, error.clone())], Outcome::Approved)
        );
        let d = ok(&[("x-envoy-fault-abort-request", "503")]);
        assert_eq!(d.outcome, Some(Mix::single(error)));

        let d = ok(&[
            ("x-envoy-fault-throughput-response", "4"),
            ("x-envoy-fault-throughput-response-percentage", "50"),
        ]);
        let dribble = Fault::Dribble {
            bytes_per_sec: 4096,
        };
        assert_eq!(
            d.fault,
            Mix::from_weights(vec![(500_000, dribble)], Fault::None)
        );

        for (pairs, expected) in [
            (
                &[("x-envoy-fault-delay-request", "1s")][..],
                "x-envoy-fault-delay-request: expected a delay in milliseconds such as 250 at '1s'",
            ),
            (
                &[("x-envoy-fault-abort-request", "99")],
                "x-envoy-fault-abort-request: expected an HTTP status from 200 to 599 at '99'",
            ),
            (
                &[("x-envoy-fault-throughput-response", "0")],
                "x-envoy-fault-throughput-response: expected a rate in KiB/s above 0",
            ),
            (
                &[
                    ("x-envoy-fault-delay-request", "5"),
                    ("x-envoy-fault-delay-request-percentage", "101"),
                ],
                "x-envoy-fault-delay-request-percentage: expected a percentage from 0 to 100",
            ),
            (
                &[("x-envoy-fault-abort-request-percentage", "5")],
                "x-envoy-fault-abort-request-percentage: expected it only with x-envoy-fault-abort-request",
            ),
            (
                &[
                    ("x-envoy-fault-delay-request", "5"),
                    ("x-envoy-fault-delay-request", "6"),
                ],
                "x-envoy-fault-delay-request: the header is sent more than once",
            ),
        ] {
            let message = err(pairs).message;
            assert!(message.starts_with(expected), "{pairs:?}: {message}");
        }
    }

    #[test]
    fn toss_test_codes() {
        let d = ok(&[("TossPayments-Test-Code", "REJECT_CARD_PAYMENT")]);
        assert_eq!(
            d.outcome,
            Some(Mix::single(Outcome::Declined(known("REJECT_CARD_PAYMENT"))))
        );
        let d = ok(&[("tosspayments-test-code", "PROVIDER_ERROR")]);
        assert_eq!(
            d.outcome,
            Some(Mix::single(Outcome::Error(known("PROVIDER_ERROR"))))
        );
        let d = ok(&[("TossPayments-Test-Code", "FORBIDDEN_CONSECUTIVE_REQUEST")]);
        assert_eq!(d.outcome, Some(Mix::single(Outcome::Throttled)));
        let d = ok(&[("TossPayments-Test-Code", "INVALID_REQUEST")]);
        assert_eq!(
            d.outcome,
            Some(Mix::single(Outcome::Error(known("INVALID_REQUEST"))))
        );
        let e = err(&[("TossPayments-Test-Code", "NO_SUCH_CODE")]);
        assert_eq!(e.code, "INVALID_TEST_CODE");
        assert!(e.message.contains("'NO_SUCH_CODE'"), "{e}");
    }

    #[test]
    fn compound_grammar() {
        let d = parse_compound(" outcome = 3% error ; latency=95% 1ms + 5% 1s;").unwrap();
        assert_eq!(d.outcome.unwrap().to_string(), "3% error, 97% approved");
        assert_eq!(d.latency.unwrap().to_string(), "95% 1ms + 5% 1s");
        assert!(parse_compound(";;").is_err());
    }

    #[test]
    fn body_tags() {
        let body = br#"{"orderId":"o1","amount":1000,"orderName":"shoes [gazua: outcome=declined; latency=2s] x","customerName":"[gazua: outcome=error]"}"#;
        let d = find_tag(body).unwrap().unwrap();
        assert_eq!(
            d.outcome,
            Some(Mix::single(Outcome::Declined(CodeRef::DEFAULT)))
        );
        assert_eq!(d.latency, Some(Latency::fixed(Duration::from_secs(2))));

        // Document order, through nested arrays and objects, past other value types.
        let body =
            br#"{"a":[1,-2,3.5,true,null,{"k":"[gazua: fault=reset]"}],"b":"[gazua: fault=hang]"}"#;
        assert_eq!(
            find_tag(body).unwrap().unwrap().fault,
            Some(Mix::single(Fault::Reset))
        );

        // Keys are not values; a tag outside strings, or a body that is not JSON, is no tag.
        assert!(find_tag(br#"{"[gazua: outcome=error]":1}"#).is_none());
        assert!(find_tag(b"[gazua: outcome=error]").is_none());
        assert!(find_tag(br#"{"a":"[gazua: outcome=error]""#).is_none());
        assert!(find_tag(br#"{"a":"[gazua: outcome=error]"} trailing"#).is_none());
        assert!(find_tag(br#"{"a":"no tag"}"#).is_none());
        // Escapes are decoded before looking.
        let d = find_tag(br#"{"a":"x\"y [gazua: key=k\u0031]"}"#)
            .unwrap()
            .unwrap();
        assert_eq!(d.key.as_deref(), Some("k1"));

        let e = find_tag(br#"{"a":"[gazua: latency=5]"}"#)
            .unwrap()
            .unwrap_err();
        assert_eq!(
            e.message,
            "[gazua: …] tag: latency=: expected a duration such as 120ms at '5' in '5'"
        );
        let e = find_tag(br#"{"a":"[gazua: latency=5ms"}"#)
            .unwrap()
            .unwrap_err();
        assert!(e.message.contains("expected ']' to close the tag"), "{e}");
    }

    #[test]
    fn the_marker_is_matched_in_any_case() {
        for body in [
            br#"{"orderName":"[Gazua: outcome=declined]"}"#.as_slice(),
            br#"{"orderName":"socks [GAZUA: outcome=declined]"}"#,
            br#"{"orderName":"[gAzUa:outcome=declined]"}"#,
        ] {
            let d = find_tag(body).unwrap().unwrap();
            assert_eq!(
                d.outcome,
                Some(Mix::single(Outcome::Declined(CodeRef::DEFAULT)))
            );
        }
        assert_eq!(tag_text("x [Gazua: key=k1] y"), Some("key=k1"));
    }

    #[test]
    fn near_misses_of_the_marker_are_errors() {
        for text in [
            "[gazau: outcome=declined]",
            "[gazua outcome=declined]",
            "[ gazua: latency=2s]",
            "[gazua : fault=reset]",
            "[Gaza: OUTCOME = declined]",
            "socks [gzua: key=k]",
        ] {
            let body = format!(r#"{{"orderName":"{text}"}}"#);
            assert!(may_hold_tag(body.as_bytes()), "{text}");
            let e = find_tag(body.as_bytes()).unwrap().unwrap_err();
            assert!(
                e.message.starts_with(
                    "[gazua: …] tag: expected the marker '[gazua:' (any case) such as \
                     [gazua: outcome=declined] at '["
                ),
                "{text}: {e}"
            );
        }
        // Text that merely looks alike is no tag and no error.
        for text in [
            "[Gazua Store] socks",
            "[gaza: news] key=value",
            "[gazua] outcome",
            "[sale: outcome=good]",
            "[outcome=declined]",
            "[gazette: key=1]",
            "[",
            "[gazua",
        ] {
            let body = format!(r#"{{"orderName":"{text}"}}"#);
            assert!(find_tag(body.as_bytes()).is_none(), "{text}");
        }
        // A near miss outside any string value is not a tag either.
        assert!(find_tag(br#"{"[gazau: outcome=declined]":1}"#).is_none());
    }

    #[test]
    fn long_directives_are_refused_by_the_cap_without_echo() {
        let huge = format!("percentiles({})", "p50=1ms,".repeat(125_000));
        let e = err(&[("X-Gazua-Latency", &huge)]);
        assert_eq!(
            e.message,
            format!(
                "X-Gazua-Latency: the directive is {} bytes long; expected at most 4096 bytes \
                 (Gazua's directive length cap)",
                huge.len()
            )
        );
        let body = format!(r#"{{"orderName":"[gazua: latency={huge}]"}}"#);
        let e = find_tag(body.as_bytes()).unwrap().unwrap_err();
        let expected = format!(
            "[gazua: …] tag: the directive is {} bytes long; expected at most 4096",
            " latency=".len() + huge.len()
        );
        assert!(e.message.starts_with(&expected), "{e}");
        // Every message that shows input shows at most a window of it.
        let long = "x".repeat(3000);
        for pairs in [
            vec![("X-Gazua", long.as_str())],
            vec![("X-Gazua-Profile", long.as_str())],
            vec![("TossPayments-Test-Code", long.as_str())],
            vec![("x-envoy-fault-delay-request", long.as_str())],
            vec![(&*format!("x-gazua-{long}"), "1")],
        ] {
            let e = err(&pairs);
            assert!(e.message.len() < 600, "{}", e.message.len());
        }
    }

    #[test]
    fn tags_in_a_single_string() {
        let d = parse_tag_in("tgen_20240101abc[gazua: outcome=lost(reset)]")
            .unwrap()
            .unwrap();
        assert_eq!(d.outcome, Some(Mix::single(Outcome::Lost(Fault::Reset))));
        assert!(parse_tag_in("tgen_20240101abc").is_none());
        assert!(parse_tag_in("[gazua:]").unwrap().is_err());
    }

    fn header_name() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select([&NAMES[..], &["content-type"]].concat()).prop_map(str::to_owned),
            "x-gazua[a-z0-9-]{0,8}",
        ]
    }

    proptest! {
        #[test]
        fn from_headers_never_panics(
            pairs in prop::collection::vec((header_name(), prop::collection::vec(any::<u8>(), 0..40)), 0..6)
        ) {
            let mut headers = HeaderMap::new();
            for (name, value) in pairs {
                if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(&value)) {
                    headers.append(name, value);
                }
            }
            let _ = from_headers(&headers);
        }

        #[test]
        fn from_headers_never_panics_on_near_grammar(
            name in header_name(),
            value in "[ -~]{0,40}",
        ) {
            let headers = map(&[(&name, &value)]);
            let _ = from_headers(&headers);
        }

        #[test]
        fn compound_and_tags_never_panic(text in "\\PC{0,80}") {
            let _ = parse_compound(&text);
            let _ = parse_tag_in(&text);
            let _ = find_tag(text.as_bytes());
            let _ = find_tag(format!("{{\"a\":\"[gazua:{text}\"}}").as_bytes());
        }
    }
}
