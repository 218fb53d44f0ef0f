//! What one client received, described once: the `X-Gazua-Decision` header, the
//! access log and the delivered-answer metrics all read the same [`Delivered`], so they cannot
//! disagree with each other or with the answer.
//!
//! The header is `; `-separated `name=value` fields, always in this order:
//!
//! ```text
//! outcome=declined(REJECT_CARD_PAYMENT); status=403; latency=20.000ms; fault=none; profile=default; phase=-; source=outcome:profile,status:outcome,latency:header,fault:builtin
//! outcome=throttled(FORBIDDEN_CONSECUTIVE_REQUEST); status=403; latency=0.000ms; fault=none; profile=default; phase=-; source=outcome:rate_limit,status:outcome,latency:rate_limit,fault:builtin
//! outcome=invalid(ALREADY_PROCESSED_PAYMENT); status=400; latency=0.000ms; fault=none; profile=happy; phase=-; source=outcome:ledger,status:outcome,latency:builtin,fault:builtin; decided=declined(REJECT_CARD_PAYMENT)
//! ```
//!
//! `decided=` is there only when the ledger or request validation replaced the decided answer
//! (`-` when the request was refused before anything was decided).

use std::borrow::Cow;
use std::fmt::Write;

use http::StatusCode;

use crate::api::{Origin, Reply, ReplyCode};
use crate::codes::CodeKind;
use crate::directive::{Fault, Outcome};
use crate::engine::Decision;

/// The kind of answer a client received: the `outcome` label of `gazua_answers_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// A payment (or billing) object.
    Approved,
    /// A card or issuer refusal.
    Declined,
    /// A PG-side failure.
    Error,
    /// The PG's throttling answer.
    Throttled,
    /// An approved payment whose answer a fault replaced.
    Lost,
    /// A fault left the client without a readable answer (reset, close, hang, garbage,
    /// malformed, truncated).
    Fault,
    /// The request was refused: by validation, by the ledger's lifecycle rules, or as a bad
    /// directive.
    Invalid,
}

impl Class {
    pub const ALL: [Class; 7] = [
        Class::Approved,
        Class::Declined,
        Class::Error,
        Class::Throttled,
        Class::Lost,
        Class::Fault,
        Class::Invalid,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Class::Approved => "approved",
            Class::Declined => "declined",
            Class::Error => "error",
            Class::Throttled => "throttled",
            Class::Lost => "lost",
            Class::Fault => "fault",
            Class::Invalid => "invalid",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    fn of_outcome(outcome: &Outcome) -> Class {
        match outcome {
            Outcome::Approved => Class::Approved,
            Outcome::Declined(_) => Class::Declined,
            Outcome::Error(_) => Class::Error,
            Outcome::Throttled => Class::Throttled,
            Outcome::Lost(_) => Class::Lost,
        }
    }

    fn of_kind(kind: CodeKind) -> Class {
        match kind {
            CodeKind::Declined => Class::Declined,
            CodeKind::Error => Class::Error,
            CodeKind::Throttled => Class::Throttled,
            CodeKind::Invalid => Class::Invalid,
        }
    }

    fn of_code(code: ReplyCode) -> Class {
        match code {
            ReplyCode::Ok => Class::Approved,
            ReplyCode::Known(info) => Class::of_kind(info.kind),
            ReplyCode::Custom(kind) => Class::of_kind(kind),
        }
    }
}

/// The class of the status line a client received: the `status_class` label of
/// `gazua_answers_total`. `None` when a fault sent no response at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusClass {
    None,
    Informational,
    Success,
    Redirection,
    ClientError,
    ServerError,
}

impl StatusClass {
    pub const ALL: [StatusClass; 6] = [
        StatusClass::None,
        StatusClass::Informational,
        StatusClass::Success,
        StatusClass::Redirection,
        StatusClass::ClientError,
        StatusClass::ServerError,
    ];

    pub fn name(self) -> &'static str {
        match self {
            StatusClass::None => "none",
            StatusClass::Informational => "1xx",
            StatusClass::Success => "2xx",
            StatusClass::Redirection => "3xx",
            StatusClass::ClientError => "4xx",
            StatusClass::ServerError => "5xx",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    fn of(status: StatusCode) -> StatusClass {
        match status.as_u16() / 100 {
            1 => StatusClass::Informational,
            2 => StatusClass::Success,
            3 => StatusClass::Redirection,
            4 => StatusClass::ClientError,
            _ => StatusClass::ServerError,
        }
    }
}

/// One answer as its client received it.
#[derive(Debug, Clone, Copy)]
pub struct Delivered<'a> {
    /// `None` when the request was refused before anything was decided (a bad directive, a
    /// body over `--max-body`).
    pub decision: Option<&'a Decision>,
    pub reply: &'a Reply,
    /// The fault done at the socket (a lost answer's own included).
    pub fault: Fault,
    /// The status of the answer: the decision's override, else the reply's own.
    pub status: StatusCode,
}

impl<'a> Delivered<'a> {
    /// A decided request answered with `reply` (which the ledger or validation may have shaped
    /// instead of the decision).
    pub fn decided(decision: &'a Decision, reply: &'a Reply) -> Delivered<'a> {
        Delivered {
            decision: Some(decision),
            reply,
            fault: decision.transport_fault(),
            status: decision.status.unwrap_or(reply.status),
        }
    }

    /// A request refused before anything was decided: answered at once, as rendered.
    pub fn undecided(reply: &'a Reply) -> Delivered<'a> {
        Delivered {
            decision: None,
            reply,
            fault: Fault::None,
            status: reply.status,
        }
    }

    /// Whether the client received a status line and headers.
    pub fn head_sent(&self) -> bool {
        !matches!(
            self.fault,
            Fault::Reset | Fault::Close | Fault::Hang | Fault::Garbage
        )
    }

    /// The kind of answer the client received.
    pub fn class(&self) -> Class {
        // A dribbled answer arrives whole, only slowly: it counts as the answer it is.
        let spoiled = !matches!(self.fault, Fault::None | Fault::Dribble { .. });
        // The decision, when its own answer was delivered.
        let decided = self
            .decision
            .filter(|_| self.reply.origin == Origin::Decision);
        match decided {
            Some(d) if spoiled => match d.outcome {
                Outcome::Lost(_) => Class::Lost,
                _ => Class::Fault,
            },
            None if spoiled => Class::Fault,
            Some(d) => Class::of_outcome(&d.outcome),
            None => Class::of_code(self.reply.code),
        }
    }

    pub fn status_class(&self) -> StatusClass {
        if self.head_sent() {
            StatusClass::of(self.status)
        } else {
            StatusClass::None
        }
    }

    /// What replaced a decided answer, and with which code: `None` when the decision's own
    /// answer was delivered, or nothing was decided.
    pub fn overridden(&self) -> Option<(Origin, ReplyCode)> {
        match self.reply.origin {
            Origin::Decision => None,
            origin => self.decision.map(|_| (origin, self.reply.code)),
        }
    }

    /// The `X-Gazua-Decision` header value (also the access log's `decision`).
    pub fn header_value(&self) -> String {
        let mut out = String::with_capacity(256);
        out.push_str("outcome=");
        self.write_outcome(&mut out);
        // Whole microseconds in integers: float formatting costs more than the rest together.
        let us = self
            .decision
            .map_or(0, |d| (d.latency.as_nanos() + 500) / 1000);
        // Pushed piece by piece: `write!` through `core::fmt` cost more than the rest of the
        // header (callgrind), and this runs for every answer.
        let mut digits = itoa::Buffer::new();
        out.push_str("; status=");
        out.push_str(digits.format(self.status.as_u16()));
        out.push_str("; latency=");
        out.push_str(digits.format(us / 1000));
        out.push('.');
        let millis = digits.format(us % 1000);
        out.push_str(&"00"[..3 - millis.len()]);
        out.push_str(millis);
        out.push_str("ms; fault=");
        match self.fault {
            Fault::Dribble { .. } => {
                let _ = write!(out, "{}", self.fault);
            }
            other => out.push_str(other.kind()),
        }
        let Some(d) = self.decision else {
            out.push_str(
                "; profile=-; phase=-; source=outcome:validation,status:outcome,\
                 latency:validation,fault:validation; decided=-",
            );
            return out;
        };
        let outcome_source = match self.reply.origin {
            Origin::Decision => d.sources.outcome.name(),
            origin => origin.name(),
        };
        // No override: the status is the delivered answer's own.
        let status_source = match d.status {
            Some(_) => d.sources.status.name(),
            None => "outcome",
        };
        // A lost answer's fault came with its outcome.
        let fault_source = match d.outcome {
            Outcome::Lost(_) => d.sources.outcome.name(),
            _ => d.sources.fault.name(),
        };
        for piece in [
            "; profile=",
            &d.profile,
            "; phase=",
            d.phase.as_deref().unwrap_or("-"),
            "; source=outcome:",
            outcome_source,
            ",status:",
            status_source,
            ",latency:",
            d.sources.latency.name(),
            ",fault:",
            fault_source,
        ] {
            out.push_str(piece);
        }
        if self.reply.origin != Origin::Decision {
            let _ = write!(out, "; decided={}", d.outcome);
        }
        out
    }

    /// The delivered outcome with the code the client got: the decided outcome as the
    /// directive grammar writes it when it names its code (`declined(REJECT_CARD_PAYMENT)`,
    /// `error(MY_CODE, 502)`, `lost(reset)`), else its kind with the answer's code
    /// (`throttled(FORBIDDEN_CONSECUTIVE_REQUEST)`, `invalid(ALREADY_PROCESSED_PAYMENT)`).
    fn write_outcome(&self, out: &mut String) {
        let class = match self.decision {
            Some(d) if self.reply.origin == Origin::Decision => {
                let names_its_code = match &d.outcome {
                    Outcome::Declined(code) | Outcome::Error(code) => code.code.is_some(),
                    Outcome::Throttled => false,
                    Outcome::Approved | Outcome::Lost(_) => true,
                };
                if names_its_code {
                    match &d.outcome {
                        // Nearly every answer under load: no trip through `core::fmt`.
                        Outcome::Approved => out.push_str("approved"),
                        outcome => {
                            let _ = write!(out, "{outcome}");
                        }
                    }
                    return;
                }
                Class::of_outcome(&d.outcome)
            }
            _ => Class::of_code(self.reply.code),
        };
        match class {
            Class::Approved => out.push_str(class.name()),
            _ => {
                let _ = write!(out, "{}({})", class.name(), code_name(self.reply));
            }
        }
    }
}

/// The PG code an error answer carries.
fn code_name(reply: &Reply) -> Cow<'static, str> {
    match reply.code {
        ReplyCode::Known(info) => Cow::Borrowed(info.name),
        ReplyCode::Ok => Cow::Borrowed("OK"),
        // A user-defined code is only in the body (a replayed answer, rarely): read it back.
        ReplyCode::Custom(_) => {
            #[derive(serde::Deserialize)]
            struct Code {
                code: String,
            }
            serde_json::from_slice::<Code>(&reply.body)
                .map_or(Cow::Borrowed("custom"), |c| Cow::Owned(c.code))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::api::{Lang, code_reply};
    use crate::codes;
    use crate::directive::CodeRef;
    use crate::engine::{FieldSources, Source};

    fn decision(outcome: Outcome, fault: Fault) -> Decision {
        Decision {
            outcome,
            latency: Duration::from_micros(20_500),
            fault,
            status: None,
            profile: Arc::from("default"),
            phase: None,
            deposit: None,
            webhook: None,
            sources: FieldSources {
                outcome: Source::Profile,
                latency: Source::Header,
                fault: Source::Flag,
                status: Source::Builtin,
            },
        }
    }

    fn refusal(name: &str, origin: Origin) -> Reply {
        code_reply(codes::lookup(name).unwrap(), Lang::En).by(origin)
    }

    #[test]
    fn a_ledger_refusal_is_reported_as_delivered_with_the_decision_kept() {
        let d = decision(Outcome::Declined(CodeRef::DEFAULT), Fault::None);
        let reply = refusal("ALREADY_PROCESSED_PAYMENT", Origin::Ledger);
        let delivered = Delivered::decided(&d, &reply);
        assert_eq!(delivered.class(), Class::Invalid);
        assert_eq!(delivered.status_class(), StatusClass::ClientError);
        assert_eq!(
            delivered.header_value(),
            "outcome=invalid(ALREADY_PROCESSED_PAYMENT); status=400; latency=20.500ms; \
             fault=none; profile=default; phase=-; \
             source=outcome:ledger,status:outcome,latency:header,fault:flag; decided=declined"
        );
        assert_eq!(
            delivered.overridden(),
            Some((Origin::Ledger, reply.code)),
            "counted as an override"
        );
    }

    #[test]
    fn the_header_writes_latency_in_milliseconds_with_three_decimals_and_every_fault() {
        let reply = refusal("FORBIDDEN_CONSECUTIVE_REQUEST", Origin::Decision);
        for (us, text) in [
            (0, "0.000"),
            (7, "0.007"),
            (50, "0.050"),
            (999, "0.999"),
            (1_000, "1.000"),
            (20_500, "20.500"),
            (60_000_001, "60000.001"),
        ] {
            for fault in [
                Fault::None,
                Fault::Reset,
                Fault::Dribble { bytes_per_sec: 7 },
            ] {
                let mut d = decision(Outcome::Throttled, fault);
                d.latency = Duration::from_micros(us);
                let header = Delivered::decided(&d, &reply).header_value();
                let want = format!("; latency={text}ms; fault={fault}; profile=default; phase=-;");
                assert!(header.contains(&want), "{header} lacks {want}");
                assert!(header.starts_with("outcome="), "{header}");
            }
        }
    }

    #[test]
    fn a_fault_that_leaves_no_readable_answer_is_counted_as_the_fault() {
        let reply = refusal("FORBIDDEN_CONSECUTIVE_REQUEST", Origin::Decision);
        for (fault, class, status) in [
            (Fault::Reset, Class::Fault, StatusClass::None),
            (Fault::Hang, Class::Fault, StatusClass::None),
            (Fault::Malformed, Class::Fault, StatusClass::ClientError),
            (
                Fault::Dribble { bytes_per_sec: 10 },
                Class::Throttled,
                StatusClass::ClientError,
            ),
        ] {
            let d = decision(Outcome::Throttled, fault);
            let delivered = Delivered::decided(&d, &reply);
            assert_eq!(
                (delivered.class(), delivered.status_class()),
                (class, status),
                "{fault}"
            );
        }
        let d = decision(Outcome::Lost(Fault::Reset), Fault::None);
        assert_eq!(Delivered::decided(&d, &reply).class(), Class::Lost);
    }

    #[test]
    fn an_answer_refused_before_deciding_names_itself() {
        let reply = refusal("GAZUA_INVALID_DIRECTIVE", Origin::Validation);
        let delivered = Delivered::undecided(&reply);
        assert_eq!(delivered.class(), Class::Invalid);
        assert_eq!(delivered.overridden(), None, "no decision was overridden");
        assert!(
            delivered
                .header_value()
                .starts_with("outcome=invalid(GAZUA_INVALID_DIRECTIVE); status=400;"),
            "{}",
            delivered.header_value()
        );
    }
}
