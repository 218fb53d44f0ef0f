//! Deciding: route + the request's directives + the profile + an RNG → one [`Decision`], the
//! only value that crosses from deciding to answering. Synchronous and pure given its RNG.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;

use crate::directive::{Fault, Outcome};

/// Which source decided the outcome (SPEC §2.5), reported in `X-Gazua-Decision`.
/// Ordered by precedence: the first source wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    Header,
    Tag,
    Rule,
    Phase,
    Route,
    Profile,
    Flag,
    Builtin,
}

/// Everything decided for one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// `Declined` and `Error` always name their code here (the route's default filled in).
    pub outcome: Outcome,
    /// Total time from arrival to the first response byte, already clamped to `--max-latency`.
    pub latency: Duration,
    /// The transport fault; `lost` outcomes keep theirs inside the outcome.
    pub fault: Fault,
    /// Raw HTTP status override.
    pub status: Option<StatusCode>,
    pub profile: Arc<str>,
    pub phase: Option<Arc<str>>,
    pub source: Source,
}

use std::cell::RefCell;

use rand::rngs::{SmallRng, Xoshiro256PlusPlus};
use rand::{Rng, SeedableRng};

use crate::codes::{self, CodeKind};
use crate::directive::{CodeRef, Directives, Latency, Mix};
use crate::route::Route;

/// The deciding half of the server: the defaults below the request's own directives.
#[derive(Debug, Clone)]
pub struct Engine {
    /// The serve flags `--outcome/--latency/--fault` (SPEC §2.5, source 5).
    pub flags: Directives,
    pub seed: u64,
    pub max_latency: Duration,
    pub profile: Arc<str>,
}

/// The request's own directives, in precedence order.
#[derive(Debug, Clone, Copy, Default)]
pub struct Asked<'a> {
    pub header: Option<&'a Directives>,
    pub tag: Option<&'a Directives>,
}

impl Engine {
    /// Decides one request. With a key (X-Gazua-Key, a tag's `key=`, else `fallback_key`: the
    /// Idempotency-Key or, with `--key-from order-id`, the order) every random choice comes from
    /// a generator seeded by (seed, key, route), so the same key is decided alike by every
    /// instance with the same seed; without one, from a fast per-thread generator.
    pub fn decide(&self, route: Route, asked: Asked<'_>, fallback_key: Option<&str>) -> Decision {
        let key = asked
            .header
            .and_then(|d| d.key.as_deref())
            .or_else(|| asked.tag.and_then(|d| d.key.as_deref()))
            .or(fallback_key);
        match key {
            Some(key) => self.decide_with(route, asked, &mut self.keyed_rng(route, key)),
            None => THREAD_RNG.with(|rng| self.decide_with(route, asked, &mut *rng.borrow_mut())),
        }
    }

    /// The generator for a key: a portable algorithm, so every build of this version agrees.
    pub fn keyed_rng(&self, route: Route, key: &str) -> Xoshiro256PlusPlus {
        let seed = self.seed ^ (route.index() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Xoshiro256PlusPlus::seed_from_u64(xxhash_rust::xxh3::xxh3_64_with_seed(
            key.as_bytes(),
            seed,
        ))
    }

    /// Decides with a given generator. Draws in a fixed order: outcome, latency, fault.
    pub fn decide_with<R: Rng + ?Sized>(
        &self,
        route: Route,
        asked: Asked<'_>,
        rng: &mut R,
    ) -> Decision {
        // Only money-moving routes take the defaults' outcome: an inquiry is approved unless
        // it is asked for something else (SPEC §3).
        let defaults_outcome = route.moves_money();
        let (outcome, outcome_source) = self.first(asked, |d| d.outcome.as_ref(), defaults_outcome);
        let (latency, latency_source) = self.first(asked, |d| d.latency.as_ref(), true);
        let (fault, fault_source) = self.first(asked, |d| d.fault.as_ref(), true);
        let status = asked
            .header
            .and_then(|d| d.status)
            .or_else(|| asked.tag.and_then(|d| d.status));

        let outcome = outcome.map_or(Outcome::Approved, |mix: &Mix<Outcome>| {
            with_default_code(route, mix.pick(rng).clone())
        });
        let latency = latency
            .map_or(Duration::ZERO, |l: &Latency| l.sample(rng))
            .min(self.max_latency);
        let fault = fault.map_or(Fault::None, |mix: &Mix<Fault>| *mix.pick(rng));
        let source = outcome_source.min(latency_source).min(fault_source);
        Decision {
            outcome,
            latency,
            fault,
            status,
            profile: self.profile.clone(),
            phase: None,
            source,
        }
    }

    /// The first source that sets a field, and which source that was.
    fn first<'a, T>(
        &'a self,
        asked: Asked<'a>,
        field: impl Fn(&'a Directives) -> Option<&'a T>,
        use_defaults: bool,
    ) -> (Option<&'a T>, Source) {
        if let Some(v) = asked.header.and_then(&field) {
            return (Some(v), Source::Header);
        }
        if let Some(v) = asked.tag.and_then(&field) {
            return (Some(v), Source::Tag);
        }
        if use_defaults && let Some(v) = field(&self.flags) {
            return (Some(v), Source::Flag);
        }
        (None, Source::Builtin)
    }
}

/// Names the route's code for a `declined`/`error` that named none, so the decision (and the
/// `X-Gazua-Decision` header) says exactly what the client gets.
fn with_default_code(route: Route, outcome: Outcome) -> Outcome {
    let fill = |code: CodeRef, kind| match code.code {
        Some(_) => code,
        None => CodeRef {
            code: codes::default_code(route, kind).map(crate::directive::CodeName::Known),
            status: code.status,
        },
    };
    match outcome {
        Outcome::Declined(code) => Outcome::Declined(fill(code, CodeKind::Declined)),
        Outcome::Error(code) => Outcome::Error(fill(code, CodeKind::Error)),
        other => other,
    }
}

thread_local! {
    static THREAD_RNG: RefCell<SmallRng> = RefCell::new(SmallRng::from_rng(&mut rand::rng()));
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Header => "header",
            Source::Tag => "tag",
            Source::Rule => "rule",
            Source::Phase => "phase",
            Source::Route => "route",
            Source::Profile => "profile",
            Source::Flag => "flag",
            Source::Builtin => "builtin",
        }
    }
}

impl Decision {
    /// The `X-Gazua-Decision` header value:
    /// `outcome=approved; latency=83.214ms; fault=none; profile=default; phase=-; source=header`.
    pub fn header_value(&self) -> String {
        use std::fmt::Write;
        let mut out = String::with_capacity(112);
        let _ = write!(
            out,
            "outcome={}; latency={:.3}ms; fault={}; profile={}; phase={}; source={}",
            self.outcome,
            self.latency.as_secs_f64() * 1000.0,
            self.fault,
            self.profile,
            self.phase.as_deref().unwrap_or("-"),
            self.source.name()
        );
        out
    }
}
