//! The cursor parser shared by every directive form. STUB.

use super::{DirectiveError, Fault, Mix, Outcome};

pub(super) fn parse_outcome_mix(text: &str) -> Result<Mix<Outcome>, DirectiveError> {
    match text.trim() {
        "approved" => Ok(Mix::single(Outcome::Approved)),
        "declined" => Ok(Mix::single(Outcome::Declined(super::CodeRef::DEFAULT))),
        "error" => Ok(Mix::single(Outcome::Error(super::CodeRef::DEFAULT))),
        "throttled" => Ok(Mix::single(Outcome::Throttled)),
        "lost" => Ok(Mix::single(Outcome::Lost(Fault::Hang))),
        other => Err(DirectiveError::new(format!("unknown outcome '{other}'"))),
    }
}

pub(super) fn parse_fault_mix(text: &str) -> Result<Mix<Fault>, DirectiveError> {
    match text.trim() {
        "none" => Ok(Mix::single(Fault::None)),
        "reset" => Ok(Mix::single(Fault::Reset)),
        "close" => Ok(Mix::single(Fault::Close)),
        "hang" => Ok(Mix::single(Fault::Hang)),
        "malformed" => Ok(Mix::single(Fault::Malformed)),
        "truncated" => Ok(Mix::single(Fault::Truncated)),
        "garbage" => Ok(Mix::single(Fault::Garbage)),
        other => Err(DirectiveError::new(format!("unknown fault '{other}'"))),
    }
}
