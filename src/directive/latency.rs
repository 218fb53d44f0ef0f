//! Latency expressions (`latency=`, SPEC §2.2). STUB: only fixed durations for now.

use std::fmt;
use std::time::Duration;

use rand::Rng;

use super::DirectiveError;

/// A compiled latency expression: sampling does no parsing and no allocation.
#[derive(Debug, Clone, PartialEq)]
pub struct Latency {
    fixed: Duration,
}

impl Latency {
    pub fn parse(text: &str) -> Result<Latency, DirectiveError> {
        Ok(Latency {
            fixed: super::parse_duration(text)?,
        })
    }

    pub fn fixed(duration: Duration) -> Latency {
        Latency { fixed: duration }
    }

    /// One sample. The caller clamps it to `--max-latency`.
    pub fn sample<R: Rng + ?Sized>(&self, _rng: &mut R) -> Duration {
        self.fixed
    }
}

impl fmt::Display for Latency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.fixed.as_secs_f64() * 1000.0)
    }
}
