//! Resolved settings: what the CLI (or a test) hands the server, with no parsing left to do.

use std::net::SocketAddr;
use std::time::Duration;

use crate::directive::Directives;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFrom {
    None,
    OrderId,
}

/// Where payments are recorded (`--ledger`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerKind {
    /// Per instance, bounded by `--ledger-capacity`.
    Memory,
    /// Nothing recorded: every request judged on its own; minted keys still decode.
    Stateless,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// The serve flags `--outcome/--latency/--fault`.
    pub flags: Directives,
    pub seed: u64,
    pub max_latency: Duration,
    pub max_connections: usize,
    pub max_body: usize,
    pub shutdown_grace: Duration,
    pub idle_timeout: Duration,
    pub key_from: KeyFrom,
    pub ledger: LedgerKind,
    pub ledger_capacity: usize,
    pub secret_key: Option<String>,
    pub log_format: LogFormat,
    pub access_log: bool,
    pub workers: Option<usize>,
}

impl Config {
    /// Settings for a server on `listen` with every default, as `gazua` with no flags.
    pub fn new(listen: SocketAddr) -> Config {
        Config {
            listen,
            flags: Directives::default(),
            seed: 1,
            max_latency: Duration::from_secs(60),
            max_connections: 10_000,
            max_body: 1024 * 1024,
            shutdown_grace: Duration::from_secs(25),
            idle_timeout: Duration::from_secs(90),
            key_from: KeyFrom::None,
            ledger: LedgerKind::Memory,
            ledger_capacity: crate::api::DEFAULT_LEDGER_CAPACITY,
            secret_key: None,
            log_format: LogFormat::Text,
            access_log: false,
            workers: None,
        }
    }
}
