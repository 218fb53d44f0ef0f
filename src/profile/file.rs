//! The profile file format (docs/profiles.md): JSON with no unknown fields, every directive
//! string parsed during deserialization so that serde_json attaches the line and column to a
//! bad one.

use serde::{Deserialize, Deserializer, de};

use super::custom::CustomRoute;
use super::fields::{self, Fields, directive, outcome_required};
use super::rules::Rule;
use super::schedule::Schedule;
use crate::directive::{Latency, Mix, Outcome};

/// One profile file as written; sections it leaves out are taken from the profile it
/// `extends`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProfileFile {
    #[serde(deserialize_with = "name")]
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "some_name")]
    pub extends: Option<String>,
    #[serde(default)]
    pub defaults: Option<Fields>,
    #[serde(default)]
    pub routes: Option<Routes>,
    #[serde(default)]
    pub rules: Option<Vec<Rule>>,
    #[serde(default)]
    pub capacity: Option<CapacitySpec>,
    #[serde(default)]
    pub rate_limit: Option<RateLimitSpec>,
    #[serde(default)]
    pub schedule: Option<Schedule>,
    #[serde(default)]
    pub custom_routes: Option<Vec<CustomRoute>>,
    #[serde(default)]
    pub tls: Option<TlsKnob>,
    #[serde(default)]
    pub webhooks: Option<WebhooksKnob>,
}

/// `routes`: one entry per PG route, named as `Route::name()`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Routes {
    #[serde(default)]
    pub create: Option<Fields>,
    #[serde(default)]
    pub confirm: Option<Fields>,
    #[serde(default)]
    pub inquiry: Option<Fields>,
    #[serde(default)]
    pub cancel: Option<Fields>,
    #[serde(default)]
    pub billing_issue: Option<Fields>,
    #[serde(default)]
    pub billing_charge: Option<Fields>,
}

impl Routes {
    /// The entries in `Route::ALL` order (without `unknown`).
    pub fn entries(&self) -> [&Option<Fields>; 6] {
        [
            &self.create,
            &self.confirm,
            &self.inquiry,
            &self.cancel,
            &self.billing_issue,
            &self.billing_charge,
        ]
    }

    /// Inheritance per route entry, and field-wise inside each entry.
    pub fn or(self, parent: &Routes) -> Routes {
        let merge = |child: Option<Fields>, parent: &Option<Fields>| match (child, parent) {
            (Some(c), Some(p)) => Some(c.or(p)),
            (c, p) => c.or_else(|| p.clone()),
        };
        Routes {
            create: merge(self.create, &parent.create),
            confirm: merge(self.confirm, &parent.confirm),
            inquiry: merge(self.inquiry, &parent.inquiry),
            cancel: merge(self.cancel, &parent.cancel),
            billing_issue: merge(self.billing_issue, &parent.billing_issue),
            billing_charge: merge(self.billing_charge, &parent.billing_charge),
        }
    }
}

/// `capacity`: a PG with `concurrency` workers and a bounded queue in front of them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CapacitySpec {
    #[serde(deserialize_with = "positive_count")]
    pub concurrency: usize,
    #[serde(default)]
    pub queue: usize,
    #[serde(default = "throttled", deserialize_with = "outcome_required")]
    pub overflow: Mix<Outcome>,
}

/// `rate_limit`: a token bucket of `rps` refilled per second holding `burst` tokens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RateLimitSpec {
    #[serde(deserialize_with = "positive_rate")]
    pub rps: f64,
    #[serde(default = "one", deserialize_with = "positive_count")]
    pub burst: usize,
    #[serde(default = "throttled", deserialize_with = "outcome_required")]
    pub outcome: Mix<Outcome>,
}

/// `tls`: how the HTTPS listener's handshakes behave under this profile. A handshake happens
/// before any request exists, so no directive of a request can reach it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsKnob {
    /// The wait between the client's hello and the server's answer (the latency grammar).
    #[serde(default, deserialize_with = "fields::latency")]
    pub handshake_latency: Option<Latency>,
    /// The percentage of handshakes answered with a fatal `access_denied` alert, 0 to 100.
    #[serde(default, deserialize_with = "percentage")]
    pub handshake_refuse: f64,
}

/// `webhooks`: where the served profile's payment events go and how they are delivered. The
/// `--webhook-*` flags add their URLs to `urls` and, when given, replace the other fields.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksKnob {
    /// Every event goes to each (`http://` or `https://`).
    #[serde(default, deserialize_with = "webhook_urls")]
    pub urls: Vec<http::Uri>,
    /// Waited before an event's first delivery (the latency grammar).
    #[serde(default, deserialize_with = "webhook_delay")]
    pub delay: Option<Latency>,
    /// The fraction of events delivered twice, 0 to 1.
    #[serde(default, deserialize_with = "duplicate_fraction")]
    pub duplicate: Option<f64>,
    /// The fraction of events never sent, 0 to 1.
    #[serde(default, deserialize_with = "drop_fraction")]
    pub drop: Option<f64>,
    /// The fraction of events held back behind the payment's next one, 0 to 1.
    #[serde(default, deserialize_with = "reorder_fraction")]
    pub reorder: Option<f64>,
}

/// A webhook target: `http://` or `https://` with a host. Shared by `--webhook-url` and the
/// profile's `webhooks.urls`.
pub fn webhook_url(text: &str) -> Result<http::Uri, String> {
    let uri: http::Uri = text
        .parse()
        .map_err(|e| format!("'{text}': {e}; expected http(s)://host:port/path"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.authority().is_none() {
        return Err(format!("'{text}': expected http(s)://host:port/path"));
    }
    Ok(uri)
}

/// A fraction of events, 0 to 1. Shared by the `--webhook-*` flags and the profile.
pub fn fraction(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err(format!(
            "'{text}': expected a fraction from 0 to 1, such as 0.02"
        )),
    }
}

fn webhook_urls<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<http::Uri>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|text| webhook_url(text).map_err(|e| de::Error::custom(format!("webhooks.urls: {e}"))))
        .collect()
}

fn webhook_fraction<'de, D: Deserializer<'de>>(d: D, field: &str) -> Result<Option<f64>, D::Error> {
    let f = f64::deserialize(d)?;
    fraction(&f.to_string())
        .map(Some)
        .map_err(|e| de::Error::custom(format!("webhooks.{field}: {e}")))
}

fn webhook_delay<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Latency>, D::Error> {
    directive(d, "webhooks.delay", Latency::parse).map(Some)
}

fn duplicate_fraction<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    webhook_fraction(d, "duplicate")
}

fn drop_fraction<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    webhook_fraction(d, "drop")
}

fn reorder_fraction<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    webhook_fraction(d, "reorder")
}

/// A percentage from 0 to 100, as a number or a string such as `"2.5%"`.
fn percentage<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(f64),
        Text(String),
    }
    let value = match Raw::deserialize(d)? {
        Raw::Number(n) => Some(n),
        Raw::Text(t) => t.trim().trim_end_matches('%').trim().parse::<f64>().ok(),
    };
    match value {
        Some(p) if (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(de::Error::custom(
            "handshake_refuse: expected a percentage from 0 to 100, such as 2.5 or \"2.5%\"",
        )),
    }
}

fn throttled() -> Mix<Outcome> {
    Mix::single(Outcome::Throttled)
}

fn one() -> usize {
    1
}

impl ProfileFile {
    /// This file with what it leaves out taken from `parent` (already resolved): shallow per
    /// section, field-wise for `defaults` and each `routes` entry.
    pub fn inherit(self, parent: &ProfileFile) -> ProfileFile {
        ProfileFile {
            name: self.name,
            description: self.description.or_else(|| parent.description.clone()),
            extends: self.extends,
            defaults: match (self.defaults, &parent.defaults) {
                (Some(c), Some(p)) => Some(c.or(p)),
                (c, p) => c.or_else(|| p.clone()),
            },
            routes: match (self.routes, &parent.routes) {
                (Some(c), Some(p)) => Some(c.or(p)),
                (c, p) => c.or_else(|| p.clone()),
            },
            rules: self.rules.or_else(|| parent.rules.clone()),
            capacity: self.capacity.or_else(|| parent.capacity.clone()),
            rate_limit: self.rate_limit.or_else(|| parent.rate_limit.clone()),
            schedule: self.schedule.or_else(|| parent.schedule.clone()),
            custom_routes: self.custom_routes.or_else(|| parent.custom_routes.clone()),
            tls: self.tls.or_else(|| parent.tls.clone()),
            webhooks: self.webhooks.or_else(|| parent.webhooks.clone()),
        }
    }
}

// ---- deserializers: each parses its text once and fails with a message naming the field ----

/// A profile name: `[a-z0-9][a-z0-9_-]*`, at most 64 characters (what `X-Gazua-Profile`
/// accepts).
pub(crate) fn valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    name.len() <= 64
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let name = String::deserialize(d)?;
    if valid_name(&name) {
        Ok(name)
    } else {
        Err(de::Error::custom(format!(
            "expected a profile name such as peak-sale ([a-z0-9][a-z0-9_-]*, at most 64 \
             characters), got '{name}'"
        )))
    }
}

fn some_name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    name(d).map(Some)
}

fn positive_count<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let n = usize::deserialize(d)?;
    if n == 0 {
        return Err(de::Error::custom("expected a whole number of at least 1"));
    }
    Ok(n)
}

fn positive_rate<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let r = f64::deserialize(d)?;
    if !(r.is_finite() && r > 0.0 && r <= 1e9) {
        return Err(de::Error::custom(
            "rps: expected a rate above 0 requests per second such as 500",
        ));
    }
    Ok(r)
}
