//! Resolved settings: what the CLI (or a test) hands the server, with no parsing left to do.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::directive::Directives;

/// The default `--timer-precision`: under load (1,000 connections, lognormal p50 40 ms) it cost
/// 1.03× the CPU per request of tokio's timer alone with a lateness p99 of 1.0 ms, where 500us
/// cost 1.39× and the finest setting 1.84× (BENCHMARKS.md, a quiet-machine run).
pub const DEFAULT_TIMER_PRECISION: Duration = Duration::from_micros(750);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFrom {
    None,
    OrderId,
}

/// Where payments are recorded (`--ledger`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerKind {
    /// Per instance, bounded by `--ledger-capacity`.
    Memory,
    /// Nothing recorded: every request judged on its own; minted keys still decode.
    Stateless,
    /// Shared by a fleet on Redis: `redis://[user:pass@]host:port[/db]`, or `rediss://…` (TLS).
    Redis { url: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// `--tls-listen` and its certificate.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub listen: SocketAddr,
    pub identity: TlsIdentity,
}

/// Where the HTTPS certificate comes from.
#[derive(Debug, Clone)]
pub enum TlsIdentity {
    /// `--tls-cert`/`--tls-key`: PEM files, read again on SIGHUP.
    Files { cert: PathBuf, key: PathBuf },
    /// `--tls-self-signed`: made at start for `names`; its CA written to `write_ca`.
    SelfSigned {
        names: Vec<String>,
        write_ca: Option<PathBuf>,
    },
}

impl TlsIdentity {
    /// The default `--tls-name`s: localhost, the loopback addresses, and the TLS listen address
    /// when it is a specific one.
    pub fn default_names(listen: std::net::SocketAddr) -> Vec<String> {
        let mut names = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ];
        let ip = listen.ip();
        if !ip.is_unspecified() && !ip.is_loopback() {
            names.push(ip.to_string());
        }
        names
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// `--tls-listen`: a port serving the same routes over HTTPS.
    pub tls: Option<TlsSettings>,
    /// A second port serving only the ops routes.
    pub admin_listen: Option<SocketAddr>,
    /// `--profile NAME|PATH`; `None` serves the shipped `default`.
    pub profile: Option<String>,
    /// `--profiles-dir`: folders whose `*.json` files are loaded beside the shipped profiles.
    pub profiles_dirs: Vec<PathBuf>,
    /// `--schedule-start`: anchors every profile's schedule at this instant.
    pub schedule_start: Option<SystemTime>,
    /// `--admin-token`: enables `PUT /__gazua/profile` for requests bearing it.
    pub admin_token: Option<String>,
    /// The serve flags `--outcome/--latency/--fault`.
    pub flags: Directives,
    pub seed: u64,
    pub max_latency: Duration,
    pub max_connections: usize,
    pub max_body: usize,
    pub shutdown_grace: Duration,
    /// How long an idle keep-alive connection is kept between requests.
    pub idle_timeout: Duration,
    /// How long a new connection may take to send its first complete request head.
    pub header_timeout: Duration,
    /// How long a request's body may take to arrive, from its head's arrival.
    pub body_timeout: Duration,
    /// Warn when the p99 timer lateness over a 10 s window passes this.
    pub lateness_warn: Duration,
    /// `--timer-precision`: the least gap between two wake-ups of the precise timer (`0` the
    /// finest); `None` waits on tokio's 1 ms timer alone.
    pub timer_precision: Option<Duration>,
    pub key_from: KeyFrom,
    pub ledger: LedgerKind,
    pub ledger_capacity: usize,
    /// `--ledger-ttl`: how long the Redis ledger keeps a payment or a stored answer.
    pub ledger_ttl: Duration,
    /// `--ledger-timeout`: how long one Redis ledger call may take before the request is a 503.
    pub ledger_timeout: Duration,
    /// `--ledger-ca`: a PEM file of the CAs a `rediss://` ledger's certificate is checked
    /// against, instead of the bundled web roots.
    pub ledger_ca: Option<PathBuf>,
    pub secret_key: Option<String>,
    pub log_format: LogFormat,
    pub access_log: bool,
    pub workers: Option<usize>,
    /// `--webhook-*`: where payments' changes are sent, and how.
    pub webhooks: crate::webhook::WebhookSettings,
}

impl Config {
    /// What `Profiles::load` needs of these settings (at start and on every reload).
    pub fn load_options(&self) -> crate::profile::LoadOptions {
        crate::profile::LoadOptions {
            profile: self.profile.clone(),
            dirs: self.profiles_dirs.clone(),
            schedule_start: self.schedule_start,
        }
    }

    /// Settings for a server on `listen` with every default, as `gazua` with no flags.
    pub fn new(listen: SocketAddr) -> Config {
        Config {
            listen,
            tls: None,
            admin_listen: None,
            profile: None,
            profiles_dirs: Vec::new(),
            schedule_start: None,
            admin_token: None,
            flags: Directives::default(),
            seed: 1,
            max_latency: Duration::from_secs(60),
            max_connections: 10_000,
            max_body: 1024 * 1024,
            shutdown_grace: Duration::from_secs(25),
            idle_timeout: Duration::from_secs(90),
            header_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(10),
            lateness_warn: Duration::from_millis(5),
            timer_precision: Some(DEFAULT_TIMER_PRECISION),
            key_from: KeyFrom::None,
            ledger: LedgerKind::Memory,
            ledger_capacity: crate::api::DEFAULT_LEDGER_CAPACITY,
            ledger_ttl: crate::api::redis_ledger::DEFAULT_TTL,
            ledger_timeout: crate::api::redis_ledger::DEFAULT_TIMEOUT,
            ledger_ca: None,
            secret_key: None,
            log_format: LogFormat::Text,
            access_log: false,
            workers: None,
            webhooks: crate::webhook::WebhookSettings::default(),
        }
    }
}
