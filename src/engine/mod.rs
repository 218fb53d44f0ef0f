//! Deciding: route + the request's directives + the profile + an RNG → one [`Decision`], the
//! only value that crosses from deciding to answering. Synchronous and pure given its RNG.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::StatusCode;

use crate::directive::{Fault, Outcome};

/// Where one field of a decision came from, reported in `X-Gazua-Decision`. Ordered by
/// precedence: the first source wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    /// The profile's capacity model overflowed: its overflow outcome replaced the decision.
    Capacity,
    /// The profile's rate limit was exceeded: its outcome replaced the decision.
    RateLimit,
    Header,
    Tag,
    Rule,
    Phase,
    Flag,
    Route,
    Profile,
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
    /// What happens to a virtual account this request issues (`deposit=`); sampled when the
    /// account is issued. Not clamped to `--max-latency`: a deposit comes hours later.
    pub deposit: Option<Deposit>,
    /// How the webhook events of the payment change this request makes are delivered
    /// (`webhook=`); `None`: as the `--webhook-*` fractions draw.
    pub webhook: Option<Webhook>,
    /// Which source set each field.
    pub sources: FieldSources,
}

/// The source of each field of a [`Decision`]: each is decided on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSources {
    pub outcome: Source,
    pub latency: Source,
    pub fault: Source,
    /// `Builtin` when no source overrode the answer's own status.
    pub status: Source,
}

impl FieldSources {
    /// Every field built in: what a decision no source touched reports.
    pub const BUILTIN: FieldSources = FieldSources {
        outcome: Source::Builtin,
        latency: Source::Builtin,
        fault: Source::Builtin,
        status: Source::Builtin,
    };
}

use std::cell::RefCell;

use rand::rngs::{SmallRng, Xoshiro256PlusPlus};
use rand::{Rng, SeedableRng};

use crate::codes::{self, CodeKind};
use crate::directive::{CodeRef, Deposit, Directives, Latency, Mix, Webhook};
use crate::profile::{Phase, Plan};
use crate::route::Route;

/// The deciding half of the server: what sits below the request's own directives.
#[derive(Debug, Clone)]
pub struct Engine {
    /// The serve flags `--outcome/--latency/--fault`.
    pub flags: Directives,
    pub seed: u64,
    pub max_latency: Duration,
    /// Anchors a schedule that starts at `boot`.
    pub boot: SystemTime,
}

/// What the request itself asked for, in precedence order, and what of the profile matched it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Asked<'a> {
    pub header: Option<&'a Directives>,
    pub tag: Option<&'a Directives>,
    /// The profile's first matching rule.
    pub rule: Option<&'a Directives>,
}

impl Engine {
    /// Decides one request under `plan`. With a key (X-Gazua-Key, a tag's `key=`, else
    /// `fallback_key`: the Idempotency-Key or, with `--key-from order-id`, the order) every
    /// random choice comes from a generator seeded by (seed, key, route), so the same key is
    /// decided alike by every instance with the same seed; without one, from a fast per-thread
    /// generator.
    pub fn decide(
        &self,
        plan: &Plan,
        route: Route,
        asked: Asked<'_>,
        fallback_key: Option<&str>,
    ) -> Decision {
        // The clock is read only for a profile with a schedule.
        let phase = plan
            .schedule
            .is_some()
            .then(|| plan.phase_at(SystemTime::now(), self.boot))
            .flatten();
        let key = asked
            .header
            .and_then(|d| d.key.as_deref())
            .or_else(|| asked.tag.and_then(|d| d.key.as_deref()))
            .or(fallback_key);
        match key {
            Some(key) => {
                self.decide_with(plan, phase, route, asked, &mut self.keyed_rng(route, key))
            }
            None => THREAD_RNG
                .with(|rng| self.decide_with(plan, phase, route, asked, &mut *rng.borrow_mut())),
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

    /// Decides with a given generator and phase. Draws in a fixed order: outcome, latency,
    /// fault. Each field comes from the first source that sets it: header → tag → rule →
    /// phase → serve flags → the profile's route → the profile's defaults → built in.
    pub fn decide_with<R: Rng + ?Sized>(
        &self,
        plan: &Plan,
        phase: Option<&Phase>,
        route: Route,
        asked: Asked<'_>,
        rng: &mut R,
    ) -> Decision {
        let sources = Sources {
            asked,
            phase: phase.map(|p| &p.directives),
            flags: &self.flags,
            route: plan.route(route),
            defaults: &plan.defaults,
            // Only money-moving routes take a general outcome (phase, flags, defaults): an
            // inquiry is approved unless it is asked for something else.
            general_outcome: route.moves_money(),
        };
        let (outcome, outcome_source) = sources.first(|d| d.outcome.as_ref(), true);
        let (latency, latency_source) = sources.first(|d| d.latency.as_ref(), false);
        let (fault, fault_source) = sources.first(|d| d.fault.as_ref(), false);
        let (status, status_source) = sources.first(|d| d.status.as_ref(), false);
        let (deposit, _) = sources.first(|d| d.deposit.as_ref(), false);
        let (webhook, _) = sources.first(|d| d.webhook.as_ref(), false);

        let outcome = outcome.map_or(Outcome::Approved, |mix: &Mix<Outcome>| {
            with_default_code(route, mix.pick(rng).clone())
        });
        let latency = latency
            .map_or(Duration::ZERO, |l: &Latency| l.sample(rng))
            .min(self.max_latency);
        let fault = fault.map_or(Fault::None, |mix: &Mix<Fault>| *mix.pick(rng));
        Decision {
            outcome,
            latency,
            fault,
            status: status.copied(),
            profile: plan.name.clone(),
            phase: phase.map(|p| p.name.clone()),
            deposit: deposit.cloned(),
            webhook: webhook.cloned(),
            sources: FieldSources {
                outcome: outcome_source,
                latency: latency_source,
                fault: fault_source,
                status: status_source,
            },
        }
    }

    /// An outcome picked from `mix` for `route`, with the route's code filled in: what the
    /// capacity model's overflow and the rate limiter answer instead of the decided outcome.
    pub fn outcome_from(&self, route: Route, mix: &Mix<Outcome>) -> Outcome {
        THREAD_RNG.with(|rng| with_default_code(route, mix.pick(&mut *rng.borrow_mut()).clone()))
    }
}

/// The decision's sources, in precedence order.
struct Sources<'a> {
    asked: Asked<'a>,
    phase: Option<&'a Directives>,
    flags: &'a Directives,
    route: &'a Directives,
    defaults: &'a Directives,
    general_outcome: bool,
}

impl<'a> Sources<'a> {
    /// The first source that sets a field, and which source that was. `is_outcome` skips the
    /// general sources on routes that take no general outcome.
    fn first<T>(
        &self,
        field: impl Fn(&'a Directives) -> Option<&'a T>,
        is_outcome: bool,
    ) -> (Option<&'a T>, Source) {
        let general = !is_outcome || self.general_outcome;
        let ordered = [
            (self.asked.header, Source::Header, true),
            (self.asked.tag, Source::Tag, true),
            (self.asked.rule, Source::Rule, true),
            (self.phase, Source::Phase, general),
            (Some(self.flags), Source::Flag, general),
            (Some(self.route), Source::Route, true),
            (Some(self.defaults), Source::Profile, general),
        ];
        ordered
            .into_iter()
            .filter(|(_, _, applies)| *applies)
            .find_map(|(directives, source, _)| directives.and_then(&field).map(|v| (v, source)))
            .map_or((None, Source::Builtin), |(v, source)| (Some(v), source))
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
            Source::Capacity => "capacity",
            Source::RateLimit => "rate_limit",
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
    /// The fault done at the socket: a lost answer's own, else the decided one.
    pub fn transport_fault(&self) -> Fault {
        match self.outcome {
            Outcome::Lost(fault) => fault,
            _ => self.fault,
        }
    }
}
