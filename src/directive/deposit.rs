//! `deposit=`: what happens to an issued virtual account — deposited after a latency
//! distribution, never deposited (it expires at its due date), or expired after a given time
//! (its due date brought forward, so a test sees the expiry in seconds).

use std::fmt;
use std::time::Duration;

use super::{DirectiveError, Latency, parse_duration};

#[derive(Debug, Clone, PartialEq)]
pub enum Deposit {
    /// `deposit=10s`, `deposit=lognormal(p50=10m, p99=2h)`: deposited after a sample.
    After(Latency),
    /// `deposit=never`: never deposited; the account expires at its due date.
    Never,
    /// `deposit=expired` or `deposit=expired(30s)`: never deposited, and the due date is this
    /// long after issue (zero: the account is expired as soon as it is issued).
    Expired(Duration),
}

impl Deposit {
    pub fn parse(text: &str) -> Result<Deposit, DirectiveError> {
        super::check_length(text)?;
        let text = text.trim();
        if text.eq_ignore_ascii_case("never") {
            return Ok(Deposit::Never);
        }
        if text.eq_ignore_ascii_case("expired") {
            return Ok(Deposit::Expired(Duration::ZERO));
        }
        if let Some(inner) = text
            .strip_prefix("expired(")
            .and_then(|rest| rest.strip_suffix(')'))
        {
            return parse_duration(inner.trim())
                .map(Deposit::Expired)
                .map_err(|e| {
                    DirectiveError::new(format!(
                        "expected expired(DURATION) such as expired(30s): {}",
                        e.message
                    ))
                });
        }
        Latency::parse(text).map(Deposit::After).map_err(|e| {
            DirectiveError::new(format!(
                "expected never, expired, expired(DURATION) or a latency such as \
                 lognormal(p50=10m, p99=2h): {}",
                e.message
            ))
        })
    }
}

impl fmt::Display for Deposit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Deposit::After(latency) => latency.fmt(f),
            Deposit::Never => f.write_str("never"),
            Deposit::Expired(d) => write!(f, "expired({}ms)", d.as_millis()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_parses_and_bad_text_says_what_was_expected() {
        assert_eq!(Deposit::parse("never"), Ok(Deposit::Never));
        assert_eq!(
            Deposit::parse("expired"),
            Ok(Deposit::Expired(Duration::ZERO))
        );
        assert_eq!(
            Deposit::parse("expired(30s)"),
            Ok(Deposit::Expired(Duration::from_secs(30)))
        );
        assert!(matches!(
            Deposit::parse("lognormal(p50=10m, p99=2h)"),
            Ok(Deposit::After(_))
        ));
        assert!(matches!(Deposit::parse("2s"), Ok(Deposit::After(_))));
        let e = Deposit::parse("soon").unwrap_err();
        assert!(e.message.starts_with("expected never, expired"), "{e}");
        let e = Deposit::parse("expired(x)").unwrap_err();
        assert!(e.message.starts_with("expected expired(DURATION)"), "{e}");
    }
}
