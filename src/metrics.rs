//! Prometheus metrics. The registry is Gazua's own; every label value comes from a closed enum
//! (routes, outcome kinds, delivered answer kinds, status classes, fault kinds, catalog codes,
//! `custom` for user-defined codes), and every handle is resolved once — at start, or on first
//! use into a slot that is never resolved again — so recording a request hashes nothing and
//! takes no lock.

use std::sync::OnceLock;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::api::redis_ledger::LedgerMetrics;
use crate::api::{Origin, ReplyCode};
use crate::codes::{self, CATALOG};
use crate::directive::{Fault, Outcome};
use crate::report::{Class, Delivered, StatusClass};
use crate::route::Route;
use crate::webhook::WebhookMetrics;

const OUTCOMES: [&str; 5] = ["approved", "declined", "error", "throttled", "lost"];
const FAULTS: [&str; 8] = [
    "none",
    "reset",
    "close",
    "hang",
    "malformed",
    "truncated",
    "garbage",
    "dribble",
];
/// Latency buckets from 1 ms to 60 s.
const LATENCY_BUCKETS: [f64; 17] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0,
    30.0, 60.0,
];
/// Timer lateness buckets: how late Gazua answers past the decided moment. Fine from 10 µs to
/// 5 ms, where the precise timer and tokio's 1 ms tick differ; coarse up to 1 s, so a stalled
/// process still shows.
const LATENESS_BUCKETS: [f64; 22] = [
    0.00001, 0.00002, 0.00003, 0.00005, 0.000075, 0.0001, 0.00015, 0.0002, 0.0003, 0.0005, 0.00075,
    0.001, 0.0015, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// The `by` label of `gazua_overrides_total`: what replaced a decided answer.
const OVERRIDERS: [Origin; 2] = [Origin::Ledger, Origin::Validation];
/// `OK`, then every catalog code, then `custom`: the `code` label's values.
const CODES: usize = CATALOG.len() + 2;

pub struct Metrics {
    registry: Registry,
    requests_vec: IntCounterVec,
    requests: Box<[OnceLock<IntCounter>]>,
    responses_vec: IntCounterVec,
    /// Per route, per code (see [`CODES`]).
    responses: Box<[OnceLock<IntCounter>]>,
    answers_vec: IntCounterVec,
    /// Per route, delivered class and status class.
    answers: Box<[OnceLock<IntCounter>]>,
    overrides_vec: IntCounterVec,
    /// Per overrider, per code.
    overrides: Box<[OnceLock<IntCounter>]>,
    decided: Vec<Histogram>,
    observed: Vec<Histogram>,
    pub timer_lateness: Histogram,
    /// Answers handed over before their decided moment (not cut short by shutdown): a bug.
    pub timer_early: IntCounter,
    pub in_flight: IntGauge,
    pub open_connections: IntGauge,
    pub directive_errors: IntCounter,
    pub capacity_queue_depth: IntGauge,
    pub capacity_wait: Histogram,
    pub profile_info: IntGaugeVec,
    /// The shared ledger's calls (zero with an in-process ledger, which makes none).
    pub ledger: LedgerMetrics,
    /// Webhook deliveries.
    pub webhooks: WebhookMetrics,
    /// Per [`CloseReason`], in its order.
    closed: Vec<IntCounter>,
    pub panics: IntCounter,
}

/// Why Gazua closed a connection itself (not counted: the client closing, a fault asked for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// No complete request head within `--header-timeout` of accept.
    FirstRequestTimeout,
    /// Idle between requests past `--idle-timeout` (HTTP/1 and HTTP/2).
    IdleTimeout,
    /// Closed at the connection cap: it had never sent a request head.
    ShedSilent,
    /// Closed at the connection cap: idle keep-alive, no silent one left to close.
    ShedIdle,
}

impl CloseReason {
    pub const ALL: [CloseReason; 4] = [
        CloseReason::FirstRequestTimeout,
        CloseReason::IdleTimeout,
        CloseReason::ShedSilent,
        CloseReason::ShedIdle,
    ];

    pub fn name(self) -> &'static str {
        match self {
            CloseReason::FirstRequestTimeout => "first_request_timeout",
            CloseReason::IdleTimeout => "idle_timeout",
            CloseReason::ShedSilent => "shed_silent",
            CloseReason::ShedIdle => "shed_idle",
        }
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let requests_vec = IntCounterVec::new(
            Opts::new(
                "gazua_requests_total",
                "Requests decided, by route, decided outcome and fault (before the ledger or validation may replace the answer; gazua_answers_total counts what was delivered).",
            ),
            &["route", "outcome", "fault"],
        )
        .expect("valid metric");
        let responses_vec = IntCounterVec::new(
            Opts::new(
                "gazua_responses_total",
                "Answers delivered, by route and the PG code rendered (OK for a payment object; a faulted answer counts the code it replaced).",
            ),
            &["route", "code"],
        )
        .expect("valid metric");
        let answers_vec = IntCounterVec::new(
            Opts::new(
                "gazua_answers_total",
                "Answers as clients received them, by route, delivered outcome (approved, declined, error, throttled, lost, fault, invalid) and status class (none when a fault sent no response).",
            ),
            &["route", "outcome", "status_class"],
        )
        .expect("valid metric");
        let overrides_vec = IntCounterVec::new(
            Opts::new(
                "gazua_overrides_total",
                "Decided answers replaced by the ledger (a second confirm, an unknown payment, an idempotent replay) or by request validation, by the code delivered instead.",
            ),
            &["by", "code"],
        )
        .expect("valid metric");
        let histogram = |name: &str, help: &str| {
            HistogramVec::new(
                HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()),
                &["route"],
            )
            .expect("valid metric")
        };
        let decided_vec = histogram(
            "gazua_decided_latency_seconds",
            "Latency decided for each request (arrival to first response byte).",
        );
        let observed_vec = histogram(
            "gazua_observed_latency_seconds",
            "Latency delivered: arrival to the moment the response was handed to the connection.",
        );
        let timer_lateness = Histogram::with_opts(
            HistogramOpts::new(
                "gazua_timer_lateness_seconds",
                "How late answers were past their decided moment; a growing tail means Gazua itself is the bottleneck.",
            )
            .buckets(LATENESS_BUCKETS.to_vec()),
        )
        .expect("valid metric");
        let timer_early = IntCounter::new(
            "gazua_timer_early_total",
            "Answers handed over before their decided moment, shutdown aside; anything but 0 is a bug in Gazua.",
        )
        .expect("valid metric");
        let in_flight = IntGauge::new(
            "gazua_in_flight_requests",
            "Requests being decided, waited or answered.",
        )
        .expect("valid metric");
        let open_connections = IntGauge::new("gazua_open_connections", "Open client connections.")
            .expect("valid metric");
        let directive_errors = IntCounter::new(
            "gazua_directive_errors_total",
            "Requests refused because a directive did not parse.",
        )
        .expect("valid metric");
        let capacity_queue_depth = IntGauge::new(
            "gazua_capacity_queue_depth",
            "Requests queued for a virtual PG worker slot.",
        )
        .expect("valid metric");
        let capacity_wait = Histogram::with_opts(
            HistogramOpts::new(
                "gazua_capacity_wait_seconds",
                "Time requests waited for a virtual PG worker slot (profiles with capacity).",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )
        .expect("valid metric");
        let profile_info = IntGaugeVec::new(
            Opts::new(
                "gazua_profile_info",
                "The active profile and schedule phase (value 1).",
            ),
            &["profile", "phase"],
        )
        .expect("valid metric");
        let build_info = IntGaugeVec::new(
            Opts::new("gazua_build_info", "Gazua's version (value 1)."),
            &["version"],
        )
        .expect("valid metric");
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        let ledger_latency = Histogram::with_opts(
            HistogramOpts::new(
                "gazua_ledger_call_seconds",
                "Duration of each call to the shared ledger (Redis), failed ones included.",
            )
            .buckets(LATENESS_BUCKETS.to_vec()),
        )
        .expect("valid metric");
        let ledger_errors = IntCounterVec::new(
            Opts::new(
                "gazua_ledger_errors_total",
                "Shared-ledger calls that failed (the request was answered 503), by kind.",
            ),
            &["kind"],
        )
        .expect("valid metric");
        let ledger = LedgerMetrics {
            latency: ledger_latency.clone(),
            timeouts: ledger_errors.with_label_values(&["timeout"]),
            unavailable: ledger_errors.with_label_values(&["unavailable"]),
        };
        let webhooks_vec = IntCounterVec::new(
            Opts::new(
                "gazua_webhooks_total",
                "Webhook events and deliveries, by result: sent (answered 200), retried, failed \
                 (given up after the last retry), dropped (pushed out of a full outbox), skipped \
                 (--webhook-drop), duplicated (--webhook-duplicate), reordered (--webhook-reorder), \
                 abandoned (at shutdown).",
            ),
            &["result"],
        )
        .expect("valid metric");
        let webhook_latency = Histogram::with_opts(
            HistogramOpts::new(
                "gazua_webhook_delivery_seconds",
                "From an event made to its delivery answered 200, retries included.",
            )
            .buckets(prometheus::exponential_buckets(0.001, 4.0, 14).expect("valid buckets")),
        )
        .expect("valid metric");
        let webhooks = WebhookMetrics {
            sent: webhooks_vec.with_label_values(&["sent"]),
            retried: webhooks_vec.with_label_values(&["retried"]),
            failed: webhooks_vec.with_label_values(&["failed"]),
            dropped: webhooks_vec.with_label_values(&["dropped"]),
            skipped: webhooks_vec.with_label_values(&["skipped"]),
            duplicated: webhooks_vec.with_label_values(&["duplicated"]),
            reordered: webhooks_vec.with_label_values(&["reordered"]),
            abandoned: webhooks_vec.with_label_values(&["abandoned"]),
            latency: webhook_latency.clone(),
        };
        let closed_vec = IntCounterVec::new(
            Opts::new(
                "gazua_connections_closed_total",
                "Connections Gazua closed itself, by reason (deadlines, shedding at the cap).",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let panics = IntCounter::new(
            "gazua_panics_total",
            "Requests whose handler panicked; each was answered with a PG-shaped 500.",
        )
        .expect("valid metric");

        for collector in [
            Box::new(requests_vec.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(responses_vec.clone()),
            Box::new(answers_vec.clone()),
            Box::new(overrides_vec.clone()),
            Box::new(decided_vec.clone()),
            Box::new(observed_vec.clone()),
            Box::new(timer_lateness.clone()),
            Box::new(timer_early.clone()),
            Box::new(in_flight.clone()),
            Box::new(open_connections.clone()),
            Box::new(directive_errors.clone()),
            Box::new(capacity_queue_depth.clone()),
            Box::new(capacity_wait.clone()),
            Box::new(profile_info.clone()),
            Box::new(build_info),
            Box::new(ledger_latency),
            Box::new(ledger_errors),
            Box::new(webhooks_vec),
            Box::new(webhook_latency),
            Box::new(closed_vec.clone()),
            Box::new(panics.clone()),
        ] {
            registry
                .register(collector)
                .expect("metric names are unique");
        }
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("process metrics register once");

        let per_route = |vec: &HistogramVec| {
            Route::ALL
                .iter()
                .map(|r| vec.with_label_values(&[r.name()]))
                .collect()
        };
        Metrics {
            registry,
            requests_vec,
            requests: slots(Route::ALL.len() * OUTCOMES.len() * FAULTS.len()),
            responses_vec,
            responses: slots(Route::ALL.len() * CODES),
            answers_vec,
            answers: slots(Route::ALL.len() * Class::ALL.len() * StatusClass::ALL.len()),
            overrides_vec,
            overrides: slots(OVERRIDERS.len() * CODES),
            decided: per_route(&decided_vec),
            observed: per_route(&observed_vec),
            timer_lateness,
            timer_early,
            in_flight,
            open_connections,
            directive_errors,
            capacity_queue_depth,
            capacity_wait,
            profile_info,
            ledger,
            webhooks,
            closed: CloseReason::ALL
                .iter()
                .map(|r| closed_vec.with_label_values(&[r.name()]))
                .collect(),
            panics,
        }
    }

    /// Counts a connection Gazua closed itself.
    pub fn closed(&self, reason: CloseReason) {
        self.closed[reason as usize].inc();
    }

    /// Counts a decided request.
    pub fn request(&self, route: Route, outcome: &Outcome, fault: Fault) {
        let o = OUTCOMES
            .iter()
            .position(|k| *k == outcome.kind())
            .unwrap_or(0);
        let f = FAULTS.iter().position(|k| *k == fault.kind()).unwrap_or(0);
        let slot = (route.index() * OUTCOMES.len() + o) * FAULTS.len() + f;
        self.requests[slot]
            .get_or_init(|| {
                self.requests_vec
                    .with_label_values(&[route.name(), OUTCOMES[o], FAULTS[f]])
            })
            .inc();
    }

    /// Counts an answer by the code it carried.
    pub fn response(&self, route: Route, code: ReplyCode) {
        let (index, name) = code_label(code);
        self.responses[route.index() * CODES + index]
            .get_or_init(|| self.responses_vec.with_label_values(&[route.name(), name]))
            .inc();
    }

    /// Counts an answer as its client received it, at the moment it is handed to the
    /// connection (a hang as it begins: its client may give up before it ends).
    pub fn delivered(&self, route: Route, delivered: &Delivered<'_>) {
        self.response(route, delivered.reply.code);
        let (class, status) = (delivered.class(), delivered.status_class());
        let slot = (route.index() * Class::ALL.len() + class.index()) * StatusClass::ALL.len()
            + status.index();
        self.answers[slot]
            .get_or_init(|| {
                self.answers_vec
                    .with_label_values(&[route.name(), class.name(), status.name()])
            })
            .inc();
        if let Some((origin, code)) = delivered.overridden() {
            self.override_slot(origin, code).inc();
        }
    }

    fn override_slot(&self, origin: Origin, code: ReplyCode) -> &IntCounter {
        let by = OVERRIDERS.iter().position(|o| *o == origin).unwrap_or(0);
        let (index, name) = code_label(code);
        self.overrides[by * CODES + index].get_or_init(|| {
            self.overrides_vec
                .with_label_values(&[OVERRIDERS[by].name(), name])
        })
    }

    /// Answers delivered on `route` so far, whatever their kind.
    pub fn answers_on(&self, route: Route) -> u64 {
        let per_route = Class::ALL.len() * StatusClass::ALL.len();
        self.answers[route.index() * per_route..][..per_route]
            .iter()
            .filter_map(OnceLock::get)
            .map(IntCounter::get)
            .sum()
    }

    /// How often `origin` replaced a decided answer with `code` so far.
    pub fn overrides_with(&self, origin: Origin, code: ReplyCode) -> u64 {
        let by = OVERRIDERS.iter().position(|o| *o == origin).unwrap_or(0);
        self.overrides[by * CODES + code_label(code).0]
            .get()
            .map_or(0, IntCounter::get)
    }

    pub fn decided(&self, route: Route, seconds: f64) {
        self.decided[route.index()].observe(seconds);
    }

    pub fn observed(&self, route: Route, seconds: f64) {
        self.observed[route.index()].observe(seconds);
    }

    /// The timer-lateness histogram as it stands, for the lateness watch.
    pub fn lateness(&self) -> LatenessSnapshot {
        use prometheus::core::Metric;
        let metric = self.timer_lateness.metric();
        let histogram = metric.get_histogram();
        LatenessSnapshot {
            count: histogram.get_sample_count(),
            buckets: histogram
                .get_bucket()
                .iter()
                .map(|b| (b.upper_bound(), b.cumulative_count()))
                .collect(),
        }
    }

    /// The Prometheus text exposition of every metric.
    /// The registry, for metrics a module owns (TLS registers its own at start).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 * 1024);
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("encoding into a Vec cannot fail");
        out
    }
}

/// The `code` label of an answer, and its slot among [`CODES`].
fn code_label(code: ReplyCode) -> (usize, &'static str) {
    match code {
        ReplyCode::Ok => (0, "OK"),
        ReplyCode::Known(info) => (1 + codes::index_of(info), info.name),
        ReplyCode::Custom(_) => (CATALOG.len() + 1, "custom"),
    }
}

fn slots(n: usize) -> Box<[OnceLock<IntCounter>]> {
    (0..n).map(|_| OnceLock::new()).collect()
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Holds a gauge up for as long as it lives: hyper cancels a request by dropping its future,
/// so only a guard keeps in-flight and connection counts honest.
pub struct GaugeGuard(IntGauge);

impl GaugeGuard {
    pub fn new(gauge: &IntGauge) -> GaugeGuard {
        gauge.inc();
        GaugeGuard(gauge.clone())
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Timer lateness as counted at one moment: total answers and cumulative bucket counts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LatenessSnapshot {
    pub count: u64,
    /// `(upper bound in seconds, cumulative count)` per bucket, ascending.
    pub buckets: Vec<(f64, u64)>,
}

impl LatenessSnapshot {
    /// The p99 of the answers counted since `earlier`, as the upper bound of the bucket it
    /// falls in (infinite past the last bucket); `None` with fewer than `min_samples` answers.
    pub fn p99_since(&self, earlier: &LatenessSnapshot, min_samples: u64) -> Option<f64> {
        let count = self.count.saturating_sub(earlier.count);
        if count < min_samples {
            return None;
        }
        let wanted = (count as f64 * 0.99).ceil() as u64;
        let before = |i: usize| earlier.buckets.get(i).map_or(0, |b| b.1);
        let bucket = self
            .buckets
            .iter()
            .enumerate()
            .find(|(i, (_, cumulative))| cumulative.saturating_sub(before(*i)) >= wanted);
        Some(bucket.map_or(f64::INFINITY, |(_, (bound, _))| *bound))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_p99_comes_from_the_bucket_counts_between_snapshots() {
        let metrics = Metrics::new();
        let start = metrics.lateness();
        for _ in 0..990 {
            metrics.timer_lateness.observe(0.00018);
        }
        for _ in 0..10 {
            metrics.timer_lateness.observe(0.030);
        }
        let middle = metrics.lateness();
        assert_eq!(middle.p99_since(&start, 100), Some(0.0002));
        for _ in 0..100 {
            metrics.timer_lateness.observe(0.030);
        }
        // The second window holds only late answers, whatever came before it.
        assert_eq!(metrics.lateness().p99_since(&middle, 100), Some(0.05));
        assert_eq!(metrics.lateness().p99_since(&middle, 1000), None);
    }
}
