//! The cursor parser shared by every directive form: it walks the text token by token, and
//! every error it builds names the offending text, the whole input and what was expected
//! (`expected a duration such as 120ms at 'p50=80' in 'lognormal(p50=80, p99=900ms)'`).
//! Also the weighted-list grammar shared by outcome and fault mixes.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;

use super::mix::WHOLE;
use super::{CodeName, CodeRef, DirectiveError, Fault, MAX_ITEMS, Mix, Outcome, duration};
use crate::codes;

/// Texts echoed in an error message are cut to this many characters: a header may be kilobytes.
const ECHO_CHARS: usize = 120;

/// A position in one directive text.
pub(super) struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

/// A token and where it lies in the text.
#[derive(Debug, Clone, Copy)]
pub(super) struct Token<'a> {
    pub start: usize,
    pub end: usize,
    pub text: &'a str,
}

/// Characters that make up a token: words, numbers with their units (`1.5s`, `1KB/s`, `250µs`),
/// code names and percentile labels (`p99.9`). `-` is included so that `-5ms` is reported
/// whole rather than as a stray `-`.
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-' | 'µ')
}

impl<'a> Cursor<'a> {
    pub fn new(text: &'a str) -> Self {
        Cursor { text, pos: 0 }
    }

    /// The position of the next non-blank character.
    pub fn pos(&mut self) -> usize {
        self.skip_blanks();
        self.pos
    }

    /// The position right after what was read last.
    pub fn offset(&self) -> usize {
        self.pos
    }

    fn skip_blanks(&mut self) {
        let rest = &self.text[self.pos..];
        self.pos += rest.len() - rest.trim_start().len();
    }

    pub fn peek(&mut self) -> Option<char> {
        self.skip_blanks();
        self.text[self.pos..].chars().next()
    }

    pub fn at_end(&mut self) -> bool {
        self.peek().is_none()
    }

    /// Consumes `c` if it comes next.
    pub fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    pub fn expect(&mut self, c: char, expected: &str) -> Result<(), DirectiveError> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.error_here(expected))
        }
    }

    /// The next token; empty when the next character is punctuation or the text has ended.
    pub fn token(&mut self) -> Token<'a> {
        self.skip_blanks();
        let start = self.pos;
        let rest = &self.text[start..];
        let len = rest.find(|c| !is_token_char(c)).unwrap_or(rest.len());
        self.pos += len;
        Token {
            start,
            end: self.pos,
            text: &rest[..len],
        }
    }

    /// Puts a token back, for one token of lookahead.
    pub fn unread(&mut self, token: Token<'a>) {
        self.pos = token.start;
    }

    /// `expected {expected} at '{text[start..end]}' in '{text}'`; a long text is shown as a
    /// window around the position, with the position as a byte offset.
    pub fn error(&self, start: usize, end: usize, expected: &str) -> DirectiveError {
        let found = self.text[start..end].trim_end();
        if found.is_empty() {
            return DirectiveError::new(format!(
                "expected {expected} at the end of '{}'",
                echo_end(self.text)
            ));
        }
        DirectiveError::new(format!(
            "expected {expected} at '{}' in {}",
            echo(found),
            around(self.text, start)
        ))
    }

    /// An error about whatever comes next: a token, else one character, else the end.
    pub fn error_here(&mut self, expected: &str) -> DirectiveError {
        let token = self.token();
        self.unread(token);
        let end = if token.text.is_empty() {
            self.text[token.start..]
                .chars()
                .next()
                .map_or(token.start, |c| token.start + c.len_utf8())
        } else {
            token.end
        };
        self.error(token.start, end, expected)
    }

    /// Succeeds only when nothing but blanks is left.
    pub fn finish(&mut self) -> Result<(), DirectiveError> {
        self.finish_or("the end")
    }

    /// Like [`finish`](Self::finish), naming what else could have come (`',' or the end`).
    pub fn finish_or(&mut self, expected: &str) -> Result<(), DirectiveError> {
        if self.at_end() {
            Ok(())
        } else {
            let start = self.pos;
            Err(self.error(start, self.text.len(), expected))
        }
    }

    pub fn duration(&mut self) -> Result<Duration, DirectiveError> {
        let token = self.token();
        if token.text.is_empty() {
            return Err(self.error_here(duration::EXPECTED));
        }
        duration::parse_token(token.text).map_err(|e| self.error(token.start, token.end, e))
    }

    /// A weight `5%` or `0.25%` if one comes next, in parts per million.
    pub fn weight(&mut self) -> Result<Option<u32>, DirectiveError> {
        let token = self.token();
        if token.text.is_empty() || !self.eat('%') {
            self.unread(token);
            return Ok(None);
        }
        parse_percent(token.text).map(Some).ok_or_else(|| {
            self.error(
                token.start,
                self.pos,
                "a weight from 0% to 100% with at most 4 decimals, such as 5% or 0.25%",
            )
        })
    }

    pub fn status(&mut self) -> Result<StatusCode, DirectiveError> {
        let token = self.token();
        match parse_status(token.text) {
            Some(status) => Ok(status),
            None if token.text.is_empty() => Err(self.error_here(STATUS_EXPECTED)),
            None => Err(self.error(token.start, token.end, STATUS_EXPECTED)),
        }
    }
}

const STATUS_EXPECTED: &str = "an HTTP status from 200 to 599";

/// `text` cut to [`ECHO_CHARS`] characters for an error message.
pub(super) fn echo(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(ECHO_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]).into(),
        None => text.into(),
    }
}

/// The last [`ECHO_CHARS`] characters of `text`, for an error at its end.
fn echo_end(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().rev().nth(ECHO_CHARS - 1) {
        Some((cut, _)) if cut > 0 => format!("…{}", &text[cut..]).into(),
        _ => text.into(),
    }
}

/// `'text'` whole when short, else a window of about [`ECHO_CHARS`] characters around byte
/// `at` and the position: `'…p49=1ms, p50=80, p51=2ms…' (byte 1234 of 4000)`.
fn around(text: &str, at: usize) -> String {
    if text.len() <= ECHO_CHARS {
        return format!("'{text}'");
    }
    let from = boundary(text, at.saturating_sub(ECHO_CHARS / 3));
    let to = boundary(text, (from + ECHO_CHARS).min(text.len()));
    let head = if from > 0 { "…" } else { "" };
    let tail = if to < text.len() { "…" } else { "" };
    format!(
        "'{head}{}{tail}' (byte {at} of {})",
        &text[from..to],
        text.len()
    )
}

/// The char boundary at or before byte `i`.
fn boundary(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The error for one item past [`MAX_ITEMS`] (`arguments of percentiles`), at that item.
pub(super) fn too_many(c: &Cursor<'_>, start: usize, what: &str) -> DirectiveError {
    let rest = &c.text[start..];
    let len = rest.find([',', ')', '+']).unwrap_or(rest.len());
    c.error(
        start,
        start + len,
        &format!("at most {MAX_ITEMS} {what} (Gazua's cap on items)"),
    )
}

/// A percentage with at most 4 decimals, `0` to `100`, in parts per million.
pub(super) fn parse_percent(text: &str) -> Option<u32> {
    if let Some((_, fraction)) = text.split_once('.')
        && fraction.len() > 4
    {
        return None;
    }
    let ppm = duration::decimal_times(text, 10_000)?;
    (ppm <= u128::from(WHOLE)).then_some(ppm as u32)
}

/// Parts per million as a percentage: `5`, `0.25`, `99.9999`.
pub(super) fn fmt_percent(ppm: u32) -> String {
    let whole = ppm / 10_000;
    let fraction = ppm % 10_000;
    if fraction == 0 {
        whole.to_string()
    } else {
        let digits = format!("{fraction:04}");
        format!("{whole}.{}", digits.trim_end_matches('0'))
    }
}

/// An HTTP status from 200 to 599, digits only.
pub(super) fn parse_status(text: &str) -> Option<StatusCode> {
    if text.len() != 3 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u16 = text.parse().ok()?;
    if (200..=599).contains(&n) {
        StatusCode::from_u16(n).ok()
    } else {
        None
    }
}

/// A weighted list `97% approved, 2% declined, 1% error` of items parsed by `item`; a single
/// item may go without a weight (then it is 100%). What the weights leave is `rest`.
fn parse_mix<'a, T>(
    text: &'a str,
    rest: T,
    what: &str,
    mut item: impl FnMut(&mut Cursor<'a>) -> Result<T, DirectiveError>,
) -> Result<Mix<T>, DirectiveError> {
    super::check_length(text)?;
    let mut c = Cursor::new(text);
    let mut entries: Vec<(Option<u32>, T, usize, usize)> = Vec::new();
    loop {
        let start = c.pos();
        if entries.len() == MAX_ITEMS {
            return Err(too_many(&c, start, &format!("{what}s in a list")));
        }
        let weight = c.weight()?;
        let value = item(&mut c)?;
        entries.push((weight, value, start, c.pos));
        if !c.eat(',') {
            break;
        }
    }
    c.finish_or("',' or the end")?;

    if entries.len() == 1 && entries[0].0.is_none() {
        let (_, value, _, _) = entries.pop().expect("one entry");
        return Ok(Mix::single(value));
    }
    if let Some((_, _, start, end)) = entries.iter().find(|e| e.0.is_none()) {
        return Err(c.error(
            *start,
            *end,
            &format!("a weight such as 5% before every {what} of a list"),
        ));
    }
    let total: u64 = entries.iter().map(|e| u64::from(e.0.unwrap_or(0))).sum();
    let weights = entries
        .into_iter()
        .map(|(w, v, _, _)| (w.unwrap_or(0), v))
        .collect();
    Mix::from_weights(weights, rest).ok_or_else(|| {
        DirectiveError::new(format!(
            "the weights add up to {}%; expected at most 100% in '{}'",
            fmt_total(total),
            echo(text)
        ))
    })
}

/// A sum of weights that may pass 100%.
fn fmt_total(ppm: u64) -> String {
    match u32::try_from(ppm) {
        Ok(ppm) => fmt_percent(ppm),
        Err(_) => format!("{}", ppm / 10_000),
    }
}

pub(super) fn parse_outcome_mix(text: &str) -> Result<Mix<Outcome>, DirectiveError> {
    parse_mix(text, Outcome::Approved, "outcome", outcome)
}

pub(super) fn parse_fault_mix(text: &str) -> Result<Mix<Fault>, DirectiveError> {
    parse_mix(text, Fault::None, "fault", |c| {
        let token = c.token();
        match fault(c, token)? {
            Some(f) => Ok(f),
            None if token.text.is_empty() => Err(c.error_here(FAULT_EXPECTED)),
            None => Err(c.error(token.start, token.end, FAULT_EXPECTED)),
        }
    })
}

const FAULT_EXPECTED: &str =
    "a fault (none, reset, close, hang, malformed, truncated, garbage or dribble(1KB/s))";

/// A fault named by `token` (its arguments read from `c`); `None` when the token names none.
fn fault<'a>(c: &mut Cursor<'a>, token: Token<'a>) -> Result<Option<Fault>, DirectiveError> {
    Ok(Some(match token.text {
        "none" => Fault::None,
        "reset" => Fault::Reset,
        "close" => Fault::Close,
        "hang" => Fault::Hang,
        "malformed" => Fault::Malformed,
        "truncated" => Fault::Truncated,
        "garbage" => Fault::Garbage,
        "dribble" => {
            c.expect('(', "'(' and a rate such as dribble(1KB/s)")?;
            let rate = c.token();
            let bytes_per_sec = parse_rate(rate.text).ok_or_else(|| {
                if rate.text.is_empty() {
                    c.error_here(RATE_EXPECTED)
                } else {
                    c.error(rate.start, rate.end, RATE_EXPECTED)
                }
            })?;
            c.expect(')', "')'")?;
            Fault::Dribble { bytes_per_sec }
        }
        _ => return Ok(None),
    }))
}

const RATE_EXPECTED: &str = "a rate above 0 such as 1KB/s (units B/s, KB/s, KiB/s, MB/s or MiB/s)";

/// `1KB/s` in bytes per second: above 0 and within `u32`.
pub(super) fn parse_rate(text: &str) -> Option<u32> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let unit: u128 = match unit {
        "B/s" => 1,
        "KB/s" => 1_000,
        "KiB/s" => 1_024,
        "MB/s" => 1_000_000,
        "MiB/s" => 1_048_576,
        _ => return None,
    };
    let rate = duration::decimal_times(number, unit)?;
    u32::try_from(rate).ok().filter(|r| *r > 0)
}

const OUTCOME_EXPECTED: &str = "an outcome (approved, declined, error, throttled or lost)";

fn outcome(c: &mut Cursor<'_>) -> Result<Outcome, DirectiveError> {
    let token = c.token();
    Ok(match token.text {
        "approved" => Outcome::Approved,
        "throttled" => Outcome::Throttled,
        "declined" => Outcome::Declined(code_args(c)?),
        "error" => Outcome::Error(code_args(c)?),
        "lost" => {
            if !c.eat('(') {
                return Ok(Outcome::Lost(Fault::Hang));
            }
            let inner = c.token();
            let fault = match fault(c, inner)? {
                Some(
                    f @ (Fault::Reset
                    | Fault::Close
                    | Fault::Hang
                    | Fault::Garbage
                    | Fault::Truncated
                    | Fault::Malformed),
                ) => f,
                _ => {
                    return Err(c.error(
                        inner.start,
                        c.pos.max(inner.end),
                        "a lost answer's fault (reset, close, hang, garbage, truncated or malformed)",
                    ));
                }
            };
            c.expect(')', "')'")?;
            Outcome::Lost(fault)
        }
        "" => return Err(c.error_here(OUTCOME_EXPECTED)),
        _ => return Err(c.error(token.start, token.end, OUTCOME_EXPECTED)),
    })
}

/// The optional `(CODE)`, `(CODE, 502)`, `(CODE, status=502)` or `(status=502)` after
/// `declined` or `error`.
fn code_args(c: &mut Cursor<'_>) -> Result<CodeRef, DirectiveError> {
    if !c.eat('(') {
        return Ok(CodeRef::DEFAULT);
    }
    let first = c.token();
    if first.text == "status" && c.eat('=') {
        let status = c.status()?;
        c.expect(')', "')'")?;
        return Ok(CodeRef {
            code: None,
            status: Some(status),
        });
    }
    if !is_code_name(first.text) {
        return Err(if first.text.is_empty() {
            c.error_here(CODE_EXPECTED)
        } else {
            c.error(first.start, first.end, CODE_EXPECTED)
        });
    }
    let status = if c.eat(',') {
        let word = c.token();
        if !(word.text == "status" && c.eat('=')) {
            c.unread(word);
        }
        Some(c.status()?)
    } else {
        None
    };
    c.expect(')', "')' or ', STATUS' such as error(MY_CODE, 502)")?;
    let code = match (codes::lookup(first.text), status) {
        (Some(info), _) => CodeName::Known(info),
        (None, Some(_)) => CodeName::Custom(Arc::from(first.text)),
        (None, None) => {
            return Err(c.error(
                first.start,
                first.end,
                "a code of the PG's catalog such as REJECT_CARD_PAYMENT, or a custom code with \
                 its HTTP status such as error(MY_CODE, 502)",
            ));
        }
    };
    Ok(CodeRef {
        code: Some(code),
        status,
    })
}

const CODE_EXPECTED: &str = "an error code such as REJECT_CARD_PAYMENT ([A-Z][A-Z0-9_]*)";

/// `[A-Z][A-Z0-9_]*`: what a custom code may look like.
pub(super) fn is_code_name(text: &str) -> bool {
    let mut bytes = text.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_uppercase())
        && bytes.all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_tokens_and_errors() {
        let mut c = Cursor::new("  uniform( 50ms ,x");
        assert_eq!(c.token().text, "uniform");
        assert!(c.eat('('));
        assert_eq!(c.duration().unwrap(), Duration::from_millis(50));
        assert!(c.eat(','));
        let e = c.finish().unwrap_err();
        assert_eq!(e.message, "expected the end at 'x' in '  uniform( 50ms ,x'");
        let mut c = Cursor::new("(");
        let e = c.error_here("a word");
        assert_eq!(e.message, "expected a word at '(' in '('");
        let mut c = Cursor::new("");
        assert_eq!(
            c.error_here("a word").message,
            "expected a word at the end of ''"
        );
    }

    #[test]
    fn long_texts_are_cut_in_messages() {
        let long = "x".repeat(5000);
        let e = parse_duration_err(&long);
        assert!(e.message.len() < 400, "{}", e.message.len());
        assert!(e.message.contains('…'));
    }

    fn parse_duration_err(text: &str) -> DirectiveError {
        super::super::parse_duration(text).unwrap_err()
    }

    #[test]
    fn percents() {
        assert_eq!(parse_percent("5"), Some(50_000));
        assert_eq!(parse_percent("0.25"), Some(2_500));
        assert_eq!(parse_percent("99.9999"), Some(999_999));
        assert_eq!(parse_percent("100"), Some(WHOLE));
        assert_eq!(parse_percent("100.0001"), None);
        assert_eq!(parse_percent("0.00001"), None);
        assert_eq!(parse_percent("-1"), None);
        assert_eq!(fmt_percent(2_500), "0.25");
        assert_eq!(fmt_percent(999_999), "99.9999");
        assert_eq!(fmt_percent(WHOLE), "100");
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("1KB/s"), Some(1000));
        assert_eq!(parse_rate("1KiB/s"), Some(1024));
        assert_eq!(parse_rate("1.5KiB/s"), Some(1536));
        assert_eq!(parse_rate("2MB/s"), Some(2_000_000));
        assert_eq!(parse_rate("1MiB/s"), Some(1_048_576));
        assert_eq!(parse_rate("300B/s"), Some(300));
        assert_eq!(parse_rate("0B/s"), None);
        assert_eq!(parse_rate("0.1B/s"), None);
        assert_eq!(parse_rate("1kb/s"), None);
        assert_eq!(parse_rate("5000MB/s"), None);
        assert_eq!(parse_rate("100"), None);
    }

    #[test]
    fn statuses() {
        assert_eq!(parse_status("502"), Some(StatusCode::BAD_GATEWAY));
        assert_eq!(parse_status("200"), Some(StatusCode::OK));
        assert_eq!(parse_status("199"), None);
        assert_eq!(parse_status("600"), None);
        assert_eq!(parse_status("0502"), None);
        assert_eq!(parse_status("+50"), None);
    }

    #[test]
    fn code_names() {
        assert!(is_code_name("MY_CODE_2"));
        assert!(is_code_name("X"));
        assert!(!is_code_name("my_code"));
        assert!(!is_code_name("_X"));
        assert!(!is_code_name("2X"));
        assert!(!is_code_name(""));
        assert!(!is_code_name("A-B"));
    }
}
