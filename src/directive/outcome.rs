//! Outcomes (`outcome=`, SPEC §2.3): what the PG answers.

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
