//! The directive language: one grammar for headers, body tags, profile files and
//! CLI flags, parsed once into the typed values below and never looked at as text again.
//!
//! Text → [`Directives`] (what one source asked for) → the engine picks, per field, the first
//! source that set it, and samples it into a `Decision`.

mod cursor;
pub mod deposit;
pub mod duration;
pub mod fault;
pub mod headers;
pub mod latency;
pub mod mix;
pub mod outcome;
pub mod preview;
pub mod webhook;

use std::fmt;

pub use deposit::Deposit;
pub use duration::parse_duration;
pub use fault::Fault;
pub use latency::Latency;
pub use mix::Mix;
pub use outcome::{CodeName, CodeRef, Outcome};
pub use webhook::Webhook;

/// The longest directive text Gazua parses: one header value, one tag, one profile value.
/// Real directives are far shorter (a 20-point `percentiles(…)` is about 300 bytes); the cap
/// keeps a hostile one to microseconds of work and its error message short.
pub const MAX_DIRECTIVE_BYTES: usize = 4096;

/// The most arguments one call (`percentiles(…)`) takes, and the most parts one outcome or
/// fault list or latency mixture has.
pub const MAX_ITEMS: usize = 100;

/// Refuses a directive text past [`MAX_DIRECTIVE_BYTES`] before any parsing, without echoing it.
pub(crate) fn check_length(text: &str) -> Result<(), DirectiveError> {
    check_len(text.len())
}

pub(crate) fn check_len(len: usize) -> Result<(), DirectiveError> {
    if len <= MAX_DIRECTIVE_BYTES {
        return Ok(());
    }
    Err(DirectiveError::new(format!(
        "the directive is {len} bytes long; expected at most {MAX_DIRECTIVE_BYTES} bytes \
         (Gazua's directive length cap)"
    )))
}

/// Why a directive was refused. The message is lowercase, names the offending text and its
/// position, and says what was expected; the caller prefixes the header or field name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectiveError {
    /// The PG error code the client gets: `GAZUA_INVALID_DIRECTIVE`, or `INVALID_TEST_CODE`
    /// for an unknown `TossPayments-Test-Code` (as the real PG answers).
    pub code: &'static str,
    pub message: String,
}

impl DirectiveError {
    pub fn new(message: impl Into<String>) -> Self {
        DirectiveError {
            code: "GAZUA_INVALID_DIRECTIVE",
            message: message.into(),
        }
    }

    /// The same error, its message prefixed with where the text came from (`X-Gazua-Latency`).
    pub fn within(self, source: &str) -> Self {
        DirectiveError {
            code: self.code,
            message: format!("{source}: {}", self.message),
        }
    }
}

impl fmt::Display for DirectiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DirectiveError {}

/// What one source (the request's headers, a body tag, a profile, the serve flags) asked for.
/// Each field is decided on its own by the first source that sets it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Directives {
    pub latency: Option<Latency>,
    pub outcome: Option<Mix<Outcome>>,
    pub fault: Option<Mix<Fault>>,
    /// Raw HTTP status override (`X-Gazua-Status`, `status=`), 200..=599.
    pub status: Option<http::StatusCode>,
    /// Another loaded profile to use for this request (`X-Gazua-Profile`, `profile=`).
    pub profile: Option<String>,
    /// The determinism key (`X-Gazua-Key`, `key=`), see the README's *Determinism*.
    pub key: Option<String>,
    /// What happens to an issued virtual account (`deposit=`).
    pub deposit: Option<Deposit>,
    /// How the webhook events of this request's payment change are delivered (`webhook=`).
    pub webhook: Option<Webhook>,
}

impl Directives {
    pub fn is_empty(&self) -> bool {
        *self == Directives::default()
    }
}
