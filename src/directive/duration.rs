//! Durations: `0`, `250us` (or `µs`), `120ms`, `1.5s`, `2m`. Parsed as exact
//! decimals to the nanosecond, so `0.1s` is 100ms and not 99.999999ms, and printed back in a
//! canonical form that parses to the same value.

use std::fmt;
use std::time::Duration;

use super::DirectiveError;
use super::cursor::Cursor;

/// What a duration looks like, for error messages.
pub(super) const EXPECTED: &str = "a duration such as 120ms";

/// The longest duration accepted: what fits in a `u64` of nanoseconds (about 584 years), so
/// that every later conversion to `f64` seconds and back stays finite.
const MAX_NANOS: u128 = u64::MAX as u128;

/// Parses one whole duration; trailing text is an error.
pub fn parse_duration(text: &str) -> Result<Duration, DirectiveError> {
    let mut cursor = Cursor::new(text);
    let duration = cursor.duration()?;
    cursor.finish()?;
    Ok(duration)
}

/// Why a duration token was refused: the `expected …` part of the message.
pub(super) fn parse_token(token: &str) -> Result<Duration, &'static str> {
    if token == "0" {
        return Ok(Duration::ZERO);
    }
    if token.starts_with('-') {
        return Err("a non-negative duration such as 120ms");
    }
    let digits_end = token
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(token.len());
    let (number, unit) = token.split_at(digits_end);
    let unit_nanos: u128 = match unit {
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        _ => return Err(EXPECTED),
    };
    let nanos = decimal_times(number, unit_nanos).ok_or(EXPECTED)?;
    if nanos > MAX_NANOS {
        return Err("a duration shorter than 584 years");
    }
    Ok(Duration::from_nanos(nanos as u64))
}

/// `number × unit`, rounded to the nearest unit of 1, for a plain decimal `123` or `1.25`.
/// `None` when `number` is not such a decimal or the product overflows.
pub(super) fn decimal_times(number: &str, unit: u128) -> Option<u128> {
    let (whole, fraction) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    if number.ends_with('.') {
        return None;
    }
    let mut value: u128 = 0;
    for b in whole.bytes() {
        value = value.checked_mul(10)?.checked_add(u128::from(b - b'0'))?;
    }
    let mut total = value.checked_mul(unit)?;
    // Each fraction digit's share of the unit; beyond 30 digits nothing is left to add.
    let mut scale: u128 = 1;
    let mut numerator: u128 = 0;
    for b in fraction.bytes().take(30) {
        scale *= 10;
        numerator = numerator * 10 + u128::from(b - b'0');
    }
    if scale > 1 {
        // numerator < scale ≤ 10^30 and unit ≤ 6·10^10, so the product fits in u128.
        let part = numerator.checked_mul(unit)?;
        total = total.checked_add((part + scale / 2) / scale)?;
    }
    Some(total)
}

/// A duration in its canonical directive form: the largest of `s`, `ms`, `us` that shows it
/// exactly, else decimal milliseconds (`0.000001ms` for a nanosecond).
pub struct Canonical(pub Duration);

impl fmt::Display for Canonical {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.as_nanos();
        if nanos == 0 {
            f.write_str("0")
        } else if nanos.is_multiple_of(1_000_000_000) {
            write!(f, "{}s", nanos / 1_000_000_000)
        } else if nanos.is_multiple_of(1_000_000) {
            write!(f, "{}ms", nanos / 1_000_000)
        } else if nanos.is_multiple_of(1_000) {
            write!(f, "{}us", nanos / 1_000)
        } else {
            let fraction = format!("{:06}", nanos % 1_000_000);
            write!(
                f,
                "{}.{}ms",
                nanos / 1_000_000,
                fraction.trim_end_matches('0')
            )
        }
    }
}

/// `f64` seconds as a `Duration`, for samples: never panics; negative and NaN give zero, too
/// large gives `Duration::MAX` (the caller clamps to `--max-latency`).
#[inline]
pub(super) fn from_secs(seconds: f64) -> Duration {
    if seconds > 0.0 {
        Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX)
    } else {
        Duration::ZERO
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn every_unit() {
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("250us").unwrap(), Duration::from_micros(250));
        assert_eq!(parse_duration("250µs").unwrap(), Duration::from_micros(250));
        assert_eq!(parse_duration("120ms").unwrap(), ms(120));
        assert_eq!(parse_duration("1.5s").unwrap(), ms(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("  0.1s ").unwrap(), ms(100));
        assert_eq!(parse_duration("0ms").unwrap(), Duration::ZERO);
        assert_eq!(
            parse_duration("0.0000005s").unwrap(),
            Duration::from_nanos(500)
        );
    }

    #[test]
    fn errors_say_what_was_expected() {
        let e = parse_duration("120").unwrap_err();
        assert_eq!(
            e.message,
            "expected a duration such as 120ms at '120' in '120'"
        );
        let e = parse_duration("-5ms").unwrap_err();
        assert!(e.message.contains("non-negative"), "{e}");
        let e = parse_duration("5h").unwrap_err();
        assert!(e.message.contains("at '5h'"), "{e}");
        let e = parse_duration("NaNms").unwrap_err();
        assert!(e.message.starts_with("expected a duration"), "{e}");
        let e = parse_duration("1.s").unwrap_err();
        assert!(e.message.starts_with("expected a duration"), "{e}");
        let e = parse_duration("99999999999999999999m").unwrap_err();
        assert!(e.message.contains("584 years"), "{e}");
        let e = parse_duration("1e3ms").unwrap_err();
        assert!(e.message.contains("at '1e3ms'"), "{e}");
        let e = parse_duration("").unwrap_err();
        assert!(e.message.contains("at the end of"), "{e}");
        let e = parse_duration("5ms 3ms").unwrap_err();
        assert!(e.message.contains("expected the end at '3ms'"), "{e}");
    }

    #[test]
    fn canonical_text_parses_back() {
        for nanos in [
            0,
            1,
            999,
            1000,
            1_500_000,
            2_000_000_000,
            1_234_567_891,
            60_000_000_000,
        ] {
            let d = Duration::from_nanos(nanos);
            let text = Canonical(d).to_string();
            assert_eq!(parse_duration(&text).unwrap(), d, "{text}");
        }
        assert_eq!(Canonical(ms(1500)).to_string(), "1500ms");
        assert_eq!(Canonical(Duration::from_nanos(1)).to_string(), "0.000001ms");
    }

    #[test]
    fn samples_never_panic() {
        assert_eq!(from_secs(-1.0), Duration::ZERO);
        assert_eq!(from_secs(f64::NAN), Duration::ZERO);
        assert_eq!(from_secs(f64::INFINITY), Duration::MAX);
        assert_eq!(from_secs(1e300), Duration::MAX);
        assert_eq!(from_secs(0.25), ms(250));
    }
}
