//! A profile's schedule (source 4 of a decision): named phases of given lengths, from boot or
//! from a wall-clock instant, optionally repeating. With an instant every instance of a fleet
//! computes the same phase at the same moment without talking to the others.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::StatusCode;
use serde::Deserialize;

use super::fields::{self, Fields};
use crate::directive::{Directives, Fault, Latency, Mix, Outcome};

/// One phase: its name (reported in `X-Gazua-Decision` and `gazua_profile_info`) and what it
/// asks for; fields it leaves unset fall through to the profile's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    pub name: Arc<str>,
    pub directives: Directives,
    pub duration: Duration,
}

/// Where the schedule's clock starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The process's start (each instance on its own).
    Boot,
    /// A wall-clock instant (the whole fleet together).
    At(SystemTime),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawSchedule")]
pub struct Schedule {
    pub start: Start,
    pub repeat: bool,
    phases: Vec<Phase>,
    /// `ends[i]` is the end of phase `i` from the start, in nanoseconds.
    ends: Vec<u128>,
}

impl Schedule {
    /// The phase in force at `now`. `boot` anchors a `Start::Boot` schedule. `None` before the
    /// start, and after the end of a schedule that does not repeat.
    pub fn phase_at(&self, now: SystemTime, boot: SystemTime) -> Option<&Phase> {
        let anchor = match self.start {
            Start::Boot => boot,
            Start::At(t) => t,
        };
        let elapsed = now.duration_since(anchor).ok()?.as_nanos();
        let total = *self.ends.last()?;
        let offset = if self.repeat {
            elapsed % total
        } else if elapsed >= total {
            return None;
        } else {
            elapsed
        };
        // The first phase whose end lies after the offset.
        let i = self.ends.partition_point(|end| *end <= offset);
        self.phases.get(i)
    }

    pub fn phases(&self) -> &[Phase] {
        &self.phases
    }

    /// The whole cycle's length.
    pub fn length(&self) -> Duration {
        self.phases.iter().map(|p| p.duration).sum()
    }
}

/// Parses `--schedule-start` and `schedule.start`: an RFC 3339 instant such as
/// `2026-11-22T10:00:00+09:00`.
pub fn parse_instant(text: &str) -> Result<SystemTime, String> {
    text.trim()
        .parse::<jiff::Timestamp>()
        .map(SystemTime::from)
        .map_err(|e| {
            format!(
                "expected \"boot\" or an RFC 3339 instant such as 2026-11-22T10:00:00+09:00, \
                 got '{text}': {e}"
            )
        })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    #[serde(default = "boot")]
    start: String,
    #[serde(default)]
    repeat: bool,
    phases: Vec<RawPhase>,
}

fn boot() -> String {
    "boot".to_owned()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPhase {
    #[serde(rename = "for", deserialize_with = "fields::duration")]
    length: Duration,
    name: String,
    // The directive fields inline rather than `flatten`ed: serde cannot deny unknown fields
    // through `flatten`, and would lose the position of a bad value.
    #[serde(default, deserialize_with = "fields::outcome")]
    outcome: Option<Mix<Outcome>>,
    #[serde(default, deserialize_with = "fields::latency")]
    latency: Option<Latency>,
    #[serde(default, deserialize_with = "fields::fault")]
    fault: Option<Mix<Fault>>,
    #[serde(default, deserialize_with = "fields::status")]
    status: Option<StatusCode>,
}

impl TryFrom<RawSchedule> for Schedule {
    type Error = String;

    fn try_from(raw: RawSchedule) -> Result<Schedule, String> {
        let start = match raw.start.as_str() {
            "boot" => Start::Boot,
            text => Start::At(parse_instant(text).map_err(|e| format!("start: {e}"))?),
        };
        if raw.phases.is_empty() {
            return Err("phases: expected at least one phase".into());
        }
        let mut phases = Vec::with_capacity(raw.phases.len());
        let mut ends = Vec::with_capacity(raw.phases.len());
        let mut end = 0u128;
        for p in raw.phases {
            if p.length.is_zero() {
                return Err(format!(
                    "phase '{}': expected \"for\" longer than 0",
                    p.name
                ));
            }
            if p.name.is_empty() || p.name.len() > 64 || p.name.chars().any(char::is_control) {
                return Err(format!(
                    "phase name: expected 1 to 64 printable characters, got '{}'",
                    p.name
                ));
            }
            end += p.length.as_nanos();
            ends.push(end);
            phases.push(Phase {
                name: p.name.into(),
                directives: Fields {
                    outcome: p.outcome,
                    latency: p.latency,
                    fault: p.fault,
                    status: p.status,
                    deposit: None,
                    webhook: None,
                }
                .into_directives(),
                duration: p.length,
            });
        }
        Ok(Schedule {
            start,
            repeat: raw.repeat,
            phases,
            ends,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(json: &str) -> Schedule {
        serde_json::from_str(json).unwrap()
    }

    const DRILL: &str = r#"{"start": "2026-11-22T10:00:00+09:00", "repeat": true, "phases": [
        {"for": "5m", "name": "steady"},
        {"for": "1m", "name": "outage", "outcome": "100% error(PROVIDER_ERROR)"},
        {"for": "3m", "name": "recovery", "latency": "lognormal(p50=2s, p99=8s)"}]}"#;

    fn at(text: &str) -> SystemTime {
        parse_instant(text).unwrap()
    }

    fn name_at(s: &Schedule, now: SystemTime, boot: SystemTime) -> Option<&str> {
        s.phase_at(now, boot).map(|p| &*p.name)
    }

    #[test]
    fn phases_follow_the_wall_clock_and_repeat() {
        let s = schedule(DRILL);
        // Any boot time: an instant-anchored schedule ignores it.
        let boot = SystemTime::UNIX_EPOCH;
        assert_eq!(name_at(&s, at("2026-11-22T00:59:59Z"), boot), None);
        assert_eq!(
            name_at(&s, at("2026-11-22T01:00:00Z"), boot),
            Some("steady")
        );
        assert_eq!(
            name_at(&s, at("2026-11-22T10:04:59+09:00"), boot),
            Some("steady")
        );
        assert_eq!(
            name_at(&s, at("2026-11-22T10:05:00+09:00"), boot),
            Some("outage")
        );
        assert_eq!(
            name_at(&s, at("2026-11-22T10:06:00+09:00"), boot),
            Some("recovery")
        );
        // The cycle is 9 minutes: 10:09 starts over, 10:14:30 is the second outage.
        assert_eq!(
            name_at(&s, at("2026-11-22T10:09:00+09:00"), boot),
            Some("steady")
        );
        assert_eq!(
            name_at(&s, at("2026-11-22T10:14:30+09:00"), boot),
            Some("outage")
        );
        let outage = s.phase_at(at("2026-11-22T10:05:30+09:00"), boot).unwrap();
        assert!(outage.directives.outcome.is_some() && outage.directives.latency.is_none());
    }

    #[test]
    fn two_instances_booted_apart_agree_on_an_instant_schedule() {
        let s = schedule(DRILL);
        let now = at("2026-11-22T10:05:10+09:00");
        let a = name_at(&s, now, at("2026-11-22T09:00:00+09:00"));
        let b = name_at(&s, now, at("2026-11-22T10:04:00+09:00"));
        assert_eq!(a, Some("outage"));
        assert_eq!(a, b);
    }

    #[test]
    fn a_boot_schedule_without_repeat_ends() {
        let s = schedule(
            r#"{"phases": [{"for": "10s", "name": "warm"}, {"for": "20s", "name": "burst", "fault": "reset"}]}"#,
        );
        let boot = at("2026-01-01T00:00:00Z");
        let plus = |secs| boot + Duration::from_secs(secs);
        assert_eq!(name_at(&s, plus(0), boot), Some("warm"));
        assert_eq!(name_at(&s, plus(9), boot), Some("warm"));
        assert_eq!(name_at(&s, plus(10), boot), Some("burst"));
        assert_eq!(name_at(&s, plus(29), boot), Some("burst"));
        assert_eq!(name_at(&s, plus(30), boot), None);
        assert_eq!(name_at(&s, boot - Duration::from_secs(1), boot), None);
        assert_eq!(s.length(), Duration::from_secs(30));
    }

    #[test]
    fn bad_schedules_are_refused() {
        for (json, expected) in [
            (r#"{"phases": []}"#, "at least one phase"),
            (
                r#"{"phases": [{"for": "0", "name": "x"}]}"#,
                "longer than 0",
            ),
            (r#"{"phases": [{"for": "5", "name": "x"}]}"#, "duration"),
            (
                r#"{"start": "tomorrow", "phases": [{"for": "5s", "name": "x"}]}"#,
                "RFC 3339",
            ),
            (
                r#"{"phases": [{"for": "5s", "name": "x", "outcom": "error"}]}"#,
                "unknown field",
            ),
        ] {
            let e = serde_json::from_str::<Schedule>(json)
                .unwrap_err()
                .to_string();
            assert!(e.contains(expected), "{json}: {e}");
        }
    }
}
