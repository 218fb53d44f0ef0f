//! Transport faults (`fault=`, SPEC §2.4): what happens at the socket instead of, or to, the
//! response.

use std::fmt;

use super::{DirectiveError, Mix};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A normal response.
    None,
    /// TCP RST after the request is read (SO_LINGER 0), no response.
    Reset,
    /// Clean close (FIN) with no response bytes.
    Close,
    /// Nothing until the client gives up or `--max-latency` after arrival, then FIN.
    Hang,
    /// Status line and headers fine, body broken JSON.
    Malformed,
    /// `Content-Length` promises more than is sent, then close.
    Truncated,
    /// Random bytes, then close.
    Garbage,
    /// Status and headers after the latency, then the body at this many bytes per second.
    Dribble { bytes_per_sec: u32 },
}

impl Fault {
    /// Parses a fault mix: `reset`, `0.5% reset, 0.5% hang`, `dribble(1KB/s)`. What the weights
    /// leave is `none`.
    pub fn parse_mix(text: &str) -> Result<Mix<Fault>, DirectiveError> {
        super::cursor::parse_fault_mix(text)
    }

    /// The metrics label of this fault's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::None => "none",
            Fault::Reset => "reset",
            Fault::Close => "close",
            Fault::Hang => "hang",
            Fault::Malformed => "malformed",
            Fault::Truncated => "truncated",
            Fault::Garbage => "garbage",
            Fault::Dribble { .. } => "dribble",
        }
    }
}

/// The directive form; `dribble` prints its rate in bytes per second (`dribble(1000B/s)`).
impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Dribble { bytes_per_sec } => write!(f, "dribble({bytes_per_sec}B/s)"),
            other => f.write_str(other.kind()),
        }
    }
}
