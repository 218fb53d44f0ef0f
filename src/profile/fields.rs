//! The directive fields a profile section sets, and the deserializers of directive strings
//! that every part of a profile file shares (its rules, schedule and custom routes): each parses
//! its text once and fails with a message naming the field, so that serde_json attaches the
//! line and column to a bad one.

use std::time::Duration;

use http::StatusCode;
use serde::{Deserialize, Deserializer, de};

use crate::directive::{
    Deposit, Directives, Fault, Latency, Mix, Outcome, Webhook, parse_duration,
};

/// The directive fields a profile section may set: `outcome`, `latency`, `fault`, `status`,
/// `deposit`, `webhook`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Fields {
    #[serde(default, deserialize_with = "outcome")]
    pub outcome: Option<Mix<Outcome>>,
    #[serde(default, deserialize_with = "latency")]
    pub latency: Option<Latency>,
    #[serde(default, deserialize_with = "fault")]
    pub fault: Option<Mix<Fault>>,
    #[serde(default, deserialize_with = "status")]
    pub status: Option<StatusCode>,
    #[serde(default, deserialize_with = "deposit")]
    pub deposit: Option<Deposit>,
    #[serde(default, deserialize_with = "webhook")]
    pub webhook: Option<Webhook>,
}

impl Fields {
    /// Field-wise inheritance: what `self` leaves unset comes from `parent`.
    pub fn or(self, parent: &Fields) -> Fields {
        Fields {
            outcome: self.outcome.or_else(|| parent.outcome.clone()),
            latency: self.latency.or_else(|| parent.latency.clone()),
            fault: self.fault.or_else(|| parent.fault.clone()),
            status: self.status.or(parent.status),
            deposit: self.deposit.or_else(|| parent.deposit.clone()),
            webhook: self.webhook.or_else(|| parent.webhook.clone()),
        }
    }

    pub fn into_directives(self) -> Directives {
        Directives {
            latency: self.latency,
            outcome: self.outcome,
            fault: self.fault,
            status: self.status,
            profile: None,
            key: None,
            deposit: self.deposit,
            webhook: self.webhook,
        }
    }
}

/// Parses a directive string with `parse`, prefixing an error with the field's name.
pub(crate) fn directive<'de, D, T>(
    d: D,
    field: &str,
    parse: fn(&str) -> Result<T, crate::directive::DirectiveError>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    let text = String::deserialize(d)?;
    parse(&text).map_err(|e| de::Error::custom(format!("{field}: {e}")))
}

pub(crate) fn outcome<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Mix<Outcome>>, D::Error> {
    directive(d, "outcome", Outcome::parse_mix).map(Some)
}

pub(crate) fn outcome_required<'de, D: Deserializer<'de>>(d: D) -> Result<Mix<Outcome>, D::Error> {
    directive(d, "outcome", Outcome::parse_mix)
}

pub(crate) fn latency<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Latency>, D::Error> {
    directive(d, "latency", Latency::parse).map(Some)
}

pub(crate) fn deposit<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Deposit>, D::Error> {
    directive(d, "deposit", Deposit::parse).map(Some)
}

pub(crate) fn webhook<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Webhook>, D::Error> {
    directive(d, "webhook", Webhook::parse).map(Some)
}

pub(crate) fn fault<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Mix<Fault>>, D::Error> {
    directive(d, "fault", Fault::parse_mix).map(Some)
}

/// A status: a number from 200 to 599 (a string of digits is accepted too).
pub(crate) fn status<'de, D: Deserializer<'de>>(d: D) -> Result<Option<StatusCode>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(u64),
        Text(String),
    }
    let bad = || de::Error::custom("status: expected an HTTP status from 200 to 599 such as 503");
    let code = match Raw::deserialize(d).map_err(|_: D::Error| bad())? {
        Raw::Number(n) => n,
        Raw::Text(t) => t.trim().parse().map_err(|_| bad())?,
    };
    match u16::try_from(code) {
        Ok(c @ 200..=599) => Ok(Some(StatusCode::from_u16(c).map_err(|_| bad())?)),
        _ => Err(bad()),
    }
}

/// A duration such as `5m`.
pub(crate) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text).map_err(de::Error::custom)
}
