//! `webhook=`: how the webhook events of the payment change a request makes are delivered —
//! overriding the `--webhook-*` fractions (and the profile's `webhooks` section) for them.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{DirectiveError, Latency};

#[derive(Debug, Clone, PartialEq)]
pub enum Webhook {
    /// `webhook=send`: delivered once, at once (no drop, duplicate, reorder or delay drawn).
    Send,
    /// `webhook=drop`: never sent (counted `skipped`).
    Drop,
    /// `webhook=duplicate`: delivered twice under one transmission id.
    Duplicate,
    /// `webhook=reorder`: held back until the payment's next event has been tried.
    Reorder,
    /// `webhook=delay(5s)`, `webhook=delay(lognormal(p50=1s, p99=30s))`: sent after a sample.
    Delay(Latency),
}

impl Webhook {
    pub fn parse(text: &str) -> Result<Webhook, DirectiveError> {
        super::check_length(text)?;
        let text = text.trim();
        let word = |w: &str| text.eq_ignore_ascii_case(w);
        if word("send") {
            return Ok(Webhook::Send);
        }
        if word("drop") {
            return Ok(Webhook::Drop);
        }
        if word("duplicate") {
            return Ok(Webhook::Duplicate);
        }
        if word("reorder") {
            return Ok(Webhook::Reorder);
        }
        if let Some(inner) = text
            .strip_prefix("delay(")
            .and_then(|rest| rest.strip_suffix(')'))
        {
            return Latency::parse(inner.trim())
                .map(Webhook::Delay)
                .map_err(|e| {
                    DirectiveError::new(format!(
                        "expected delay(LATENCY) such as delay(5s): {}",
                        e.message
                    ))
                });
        }
        Err(DirectiveError::new(format!(
            "expected send, drop, duplicate, reorder or delay(LATENCY) such as delay(5s), \
             got '{}'",
            super::cursor::echo(text)
        )))
    }
}

impl fmt::Display for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Webhook::Send => f.write_str("send"),
            Webhook::Drop => f.write_str("drop"),
            Webhook::Duplicate => f.write_str("duplicate"),
            Webhook::Reorder => f.write_str("reorder"),
            Webhook::Delay(latency) => write!(f, "delay({latency})"),
        }
    }
}

/// Stored with a virtual account (in the shared ledger too) as its directive text.
impl Serialize for Webhook {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Webhook {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Webhook::parse(&text).map_err(|e| serde::de::Error::custom(e.message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_parses_prints_back_and_bad_text_says_what_was_expected() {
        for text in ["send", "drop", "duplicate", "reorder", "delay(5s)"] {
            let parsed = Webhook::parse(text).unwrap();
            assert_eq!(parsed.to_string(), text);
            assert_eq!(Webhook::parse(&parsed.to_string()), Ok(parsed));
        }
        assert!(matches!(
            Webhook::parse("delay(lognormal(p50=1s, p99=30s))"),
            Ok(Webhook::Delay(_))
        ));
        let e = Webhook::parse("dupe").unwrap_err();
        assert!(e.message.contains("expected send, drop"), "{}", e.message);
        let e = Webhook::parse("delay(5)").unwrap_err();
        assert!(
            e.message.starts_with("expected delay(LATENCY)"),
            "{}",
            e.message
        );
        let json = serde_json::to_string(&Webhook::Duplicate).unwrap();
        assert_eq!(json, "\"duplicate\"");
        assert_eq!(
            serde_json::from_str::<Webhook>(&json).unwrap(),
            Webhook::Duplicate
        );
    }
}
