//! Outcomes (`outcome=`): what the PG answers.

use std::fmt;
use std::sync::Arc;

use http::StatusCode;

use super::{DirectiveError, Fault, Mix};
use crate::codes::CodeInfo;

/// The PG's answer for one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Approved,
    /// A card or issuer refusal; the route's default code when none is given.
    Declined(CodeRef),
    /// A PG-side failure; the route's default code when none is given.
    Error(CodeRef),
    /// The PG's throttling answer.
    Throttled,
    /// The payment is approved but the client never gets the answer: the response is replaced
    /// by this fault (never `None` or `Dribble`).
    Lost(Fault),
}

/// An error code as a directive names it. Both parts `None` means "the route's default".
#[derive(Debug, Clone, PartialEq)]
pub struct CodeRef {
    pub code: Option<CodeName>,
    /// An explicit HTTP status (`error(MY_CODE, 502)`); required for a custom code.
    pub status: Option<StatusCode>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CodeName {
    /// A code of the PG's catalog, with its documented status and messages.
    Known(&'static CodeInfo),
    /// A user-defined code matching `[A-Z][A-Z0-9_]*`; always carries an explicit status.
    Custom(Arc<str>),
}

impl CodeRef {
    pub const DEFAULT: CodeRef = CodeRef {
        code: None,
        status: None,
    };
}

impl CodeName {
    pub fn as_str(&self) -> &str {
        match self {
            CodeName::Known(info) => info.name,
            CodeName::Custom(name) => name,
        }
    }
}

impl Outcome {
    /// Parses an outcome mix: `approved`, `declined(INSUFFICIENT_BALANCE)`,
    /// `97% approved, 2% declined, 1% error(MY_CODE, 502)`. What the weights leave is approved.
    pub fn parse_mix(text: &str) -> Result<Mix<Outcome>, DirectiveError> {
        super::cursor::parse_outcome_mix(text)
    }

    /// The metrics label of this outcome's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Approved => "approved",
            Outcome::Declined(_) => "declined",
            Outcome::Error(_) => "error",
            Outcome::Throttled => "throttled",
            Outcome::Lost(_) => "lost",
        }
    }
}

/// The directive form, e.g. `declined(REJECT_CARD_PAYMENT)` or `error(MY_CODE, 502)`; parsing
/// the printed text gives the same outcome back.
impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (word, code) = match self {
            Outcome::Approved => return f.write_str("approved"),
            Outcome::Throttled => return f.write_str("throttled"),
            Outcome::Lost(fault) => return write!(f, "lost({fault})"),
            Outcome::Declined(code) => ("declined", code),
            Outcome::Error(code) => ("error", code),
        };
        f.write_str(word)?;
        match (&code.code, code.status) {
            (None, None) => Ok(()),
            (Some(name), None) => write!(f, "({})", name.as_str()),
            (Some(name), Some(status)) => write!(f, "({}, {})", name.as_str(), status.as_u16()),
            (None, Some(status)) => write!(f, "(status={})", status.as_u16()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes;
    use crate::directive::mix::WHOLE;
    use proptest::prelude::*;

    fn known(name: &str) -> CodeRef {
        CodeRef {
            code: Some(CodeName::Known(codes::lookup(name).unwrap())),
            status: None,
        }
    }

    fn one(text: &str) -> Outcome {
        let mix = Outcome::parse_mix(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let all: Vec<_> = mix.weights().collect();
        assert_eq!(all.len(), 1, "{text}");
        all[0].1.clone()
    }

    fn err(text: &str) -> String {
        Outcome::parse_mix(text).unwrap_err().message
    }

    #[test]
    fn every_single_outcome() {
        assert_eq!(one("approved"), Outcome::Approved);
        assert_eq!(one(" declined "), Outcome::Declined(CodeRef::DEFAULT));
        assert_eq!(
            one("declined(REJECT_CARD_PAYMENT)"),
            Outcome::Declined(known("REJECT_CARD_PAYMENT"))
        );
        // declined() takes any known code, whatever its kind.
        assert_eq!(
            one("declined(PROVIDER_ERROR)"),
            Outcome::Declined(known("PROVIDER_ERROR"))
        );
        assert_eq!(one("error"), Outcome::Error(CodeRef::DEFAULT));
        assert_eq!(
            one("error(PROVIDER_ERROR)"),
            Outcome::Error(known("PROVIDER_ERROR"))
        );
        assert_eq!(
            one("error(MY_CODE, 502)"),
            Outcome::Error(CodeRef {
                code: Some(CodeName::Custom("MY_CODE".into())),
                status: Some(StatusCode::BAD_GATEWAY),
            })
        );
        assert_eq!(
            one("error( FAILED_INTERNAL_SYSTEM_PROCESSING , status=503 )"),
            Outcome::Error(CodeRef {
                status: Some(StatusCode::SERVICE_UNAVAILABLE),
                ..known("FAILED_INTERNAL_SYSTEM_PROCESSING")
            })
        );
        assert_eq!(
            one("error(status=502)"),
            Outcome::Error(CodeRef {
                code: None,
                status: Some(StatusCode::BAD_GATEWAY),
            })
        );
        assert_eq!(one("throttled"), Outcome::Throttled);
        assert_eq!(one("lost"), Outcome::Lost(Fault::Hang));
        for (text, fault) in [
            ("lost(reset)", Fault::Reset),
            ("lost(close)", Fault::Close),
            ("lost(hang)", Fault::Hang),
            ("lost(garbage)", Fault::Garbage),
            ("lost(truncated)", Fault::Truncated),
            ("lost(malformed)", Fault::Malformed),
        ] {
            assert_eq!(one(text), Outcome::Lost(fault));
        }
        assert_eq!(one("100% error"), Outcome::Error(CodeRef::DEFAULT));
    }

    #[test]
    fn weighted_lists_leave_the_rest_approved() {
        let mix =
            Outcome::parse_mix("97% approved, 2% declined(REJECT_CARD_PAYMENT), 1% error").unwrap();
        let weights: Vec<(u32, Outcome)> = mix.weights().map(|(w, o)| (w, o.clone())).collect();
        assert_eq!(
            weights,
            vec![
                (970_000, Outcome::Approved),
                (20_000, Outcome::Declined(known("REJECT_CARD_PAYMENT"))),
                (10_000, Outcome::Error(CodeRef::DEFAULT)),
            ]
        );
        let mix = Outcome::parse_mix("0.5% error, 0.0001% throttled").unwrap();
        let weights: Vec<(u32, String)> = mix.weights().map(|(w, o)| (w, o.to_string())).collect();
        assert_eq!(
            weights,
            vec![
                (5_000, "error".to_owned()),
                (1, "throttled".to_owned()),
                (WHOLE - 5_001, "approved".to_owned()),
            ]
        );
    }

    #[test]
    fn display_parses_back() {
        for text in [
            "approved",
            "declined(REJECT_CARD_PAYMENT)",
            "error(MY_CODE, 502)",
            "error(PROVIDER_ERROR, 503)",
            "error(status=429)",
            "lost(reset)",
            "97% approved, 2% declined, 1% error(PROVIDER_ERROR)",
            "3% error",
            "0.25% lost(garbage), 0.25% throttled",
        ] {
            let mix = Outcome::parse_mix(text).unwrap();
            let shown = mix.to_string();
            assert_eq!(Outcome::parse_mix(&shown).unwrap(), mix, "{text} → {shown}");
        }
        assert_eq!(
            Outcome::parse_mix("3% error").unwrap().to_string(),
            "3% error, 97% approved"
        );
    }

    #[test]
    fn errors_name_the_text_and_what_was_expected() {
        let cases: &[(&str, &str)] = &[
            (
                "",
                "expected an outcome (approved, declined, error, throttled or lost) at the end of ''",
            ),
            (
                "aproved",
                "expected an outcome (approved, declined, error, throttled or lost) at 'aproved'",
            ),
            (
                "error(MY_CODE)",
                "expected a code of the PG's catalog such as REJECT_CARD_PAYMENT, or a custom code with its HTTP status such as error(MY_CODE, 502) at 'MY_CODE'",
            ),
            ("declined(NO_SUCH_CODE)", "at 'NO_SUCH_CODE'"),
            (
                "error(my_code, 502)",
                "expected an error code such as REJECT_CARD_PAYMENT ([A-Z][A-Z0-9_]*) at 'my_code'",
            ),
            (
                "error(MY_CODE, 600)",
                "expected an HTTP status from 200 to 599 at '600'",
            ),
            ("error(MY_CODE, 199)", "at '199'"),
            (
                "error(MY_CODE, )",
                "expected an HTTP status from 200 to 599 at ')'",
            ),
            (
                "error(MY_CODE",
                "expected ')' or ', STATUS' such as error(MY_CODE, 502) at the end of",
            ),
            (
                "error()",
                "expected an error code such as REJECT_CARD_PAYMENT",
            ),
            (
                "lost(none)",
                "expected a lost answer's fault (reset, close, hang, garbage, truncated or malformed) at 'none'",
            ),
            ("lost(dribble(1KB/s))", "expected a lost answer's fault"),
            ("lost(reset", "expected ')'"),
            (
                "97% approved, error",
                "expected a weight such as 5% before every outcome of a list at 'error'",
            ),
            ("approved, 3% error", "at 'approved'"),
            (
                "60% error, 50% declined",
                "the weights add up to 110%; expected at most 100% in '60% error, 50% declined'",
            ),
            (
                "101% error",
                "expected a weight from 0% to 100% with at most 4 decimals, such as 5% or 0.25% at '101%'",
            ),
            ("0.12345% error", "at '0.12345%'"),
            ("approved declined", "expected ',' or the end at 'declined'"),
            (
                "97% approved; 3% error",
                "expected ',' or the end at '; 3% error'",
            ),
        ];
        for (text, expected) in cases {
            let message = err(text);
            assert!(message.contains(expected), "{text}: {message}");
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in "\\PC{0,60}") {
            let _ = Outcome::parse_mix(&text);
        }

        #[test]
        fn parse_near_grammar_never_panics_and_round_trips(
            text in "[0-9A-Za-z_%(),.= ]{0,40}",
            word in prop::sample::select(vec!["approved", "declined(", "error(", "lost(", "5% error, ", "throttled", ""]),
        ) {
            let text = format!("{word}{text}");
            if let Ok(mix) = Outcome::parse_mix(&text) {
                prop_assert_eq!(Outcome::parse_mix(&mix.to_string()).ok(), Some(mix));
            }
        }
    }
}
