//! Gazua PAY: a mock payment gateway for performance, load and stress tests. It speaks a real
//! PG's API (Toss-Payments-compatible), and every answer and every delay is directed per request
//! by headers or a body tag, or by the profile chosen at start.
//!
//! # Layout
//!
//! - `main.rs` — thin: CLI → [`config::Config`] → runtime → [`server::run`].
//! - [`cli`] — the only module that knows clap; turns arguments into a `Config`.
//! - [`config`] — resolved settings.
//! - [`logging`] — the log filter and format, and the startup line.
//! - [`doctor`] — `gazua doctor`: this machine's limits against the serve flags, with fixes.
//! - [`directive`] — the directive grammar: durations, latency expressions, outcome and fault
//!   mixes, the request's headers and body tag.
//! - [`profile`] — profile files → a compiled [`profile::Plan`]: per-route defaults, rules,
//!   schedule phases, virtual capacity, rate limit, custom routes; the shipped profiles.
//! - [`engine`] — `decide()`: route + directives + profile + RNG → [`engine::Decision`].
//! - [`api`] — the PG routes: validation, lifecycle, rendering of payment objects and errors;
//!   the checkout window a created payment's `checkout.url` serves.
//! - [`report`] — what the client received, described once: `X-Gazua-Decision`, the access
//!   log and the delivered-answer metrics all read one [`report::Delivered`].
//! - [`codes`] — the PG's error-code catalog.
//! - [`route`] — the closed set of routes.
//! - [`server`] — the two ports and graceful shutdown; `conn` (accept loop, a connection's
//!   clocks, the cap), `stack` (the protective layers, in one place), `lifecycle` (a request's
//!   life), `timer` (the precise timer), `fault` (faults at the socket), `ops` (ops routes),
//!   `tls` (HTTPS: certificates, reload, the handshake knob).
//! - [`webhook`] — events to the merchant's webhook URLs (http or https): one bounded outbox
//!   in due-time order served by one scheduler, concurrency-bounded pooled delivery, the PG's
//!   retry schedule, directed duplicates, drops, reordering and delays (flags, the served
//!   profile's `webhooks`, `webhook=`).
//! - [`metrics`] — the Prometheus registry, handles resolved at start, drop guards.
//!
//! # A request's life
//!
//! Route → directives (headers, then body tag) → profile (rules, phase, defaults) → decision
//! (then the profile's rate limit and capacity) → answer rendered → wait until arrival +
//! decided latency → response written, or the decided fault done at the socket → reported as
//! delivered (header, metrics, access log). See `server::lifecycle::handle`, which reads in
//! that order.

#![forbid(unsafe_code)]

pub mod api;
pub mod cli;
pub mod codes;
pub mod config;
pub mod directive;
pub mod doctor;
pub mod engine;
pub mod logging;
pub mod metrics;
pub mod profile;
pub mod report;
pub mod route;
pub mod server;
pub mod webhook;
