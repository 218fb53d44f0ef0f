//! Logging: the filter (`GAZUA_LOG`, else `RUST_LOG`, else `info`), colour only on a terminal,
//! and the startup line that says what this process serves.

use std::io::IsTerminal;

use crate::config::{Config, LedgerKind, LogFormat};
use crate::directive::duration::Canonical;
use crate::server::Server;

/// The filter used when neither variable is set.
const DEFAULT_FILTER: &str = "info";

/// Installs the global subscriber, writing to stderr (stdout stays free for commands' output).
pub fn init(format: LogFormat) {
    let filter = filter_text(
        std::env::var("GAZUA_LOG").ok(),
        std::env::var("RUST_LOG").ok(),
    );
    let filter = tracing_subscriber::EnvFilter::try_new(&filter).unwrap_or_else(|error| {
        eprintln!("gazua: log filter '{filter}': {error}; using '{DEFAULT_FILTER}'");
        tracing_subscriber::EnvFilter::new(DEFAULT_FILTER)
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
        LogFormat::Text => builder
            .with_ansi(colour(std::io::stderr().is_terminal()))
            .init(),
    }
}

/// `GAZUA_LOG` first (it names this program), then the Rust-wide `RUST_LOG`; an empty value
/// counts as unset.
pub fn filter_text(gazua_log: Option<String>, rust_log: Option<String>) -> String {
    [gazua_log, rust_log]
        .into_iter()
        .flatten()
        .find(|v| !v.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_FILTER.to_owned())
}

/// Escape codes only for a person at a terminal, and never when `NO_COLOR` is set to anything
/// (see no-color.org): a file or a pipe gets plain text.
fn colour(terminal: bool) -> bool {
    terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The one startup line: version, addresses, the profile in force and where it was chosen,
/// ledger, seed, max latency, workers. Its message is `serving`, with `listen` as a field, in
/// both formats (tests and scripts find the bound port there).
pub fn startup(server: &Server, profile_from: &str) {
    let state = server.state();
    let config: &Config = &state.config;
    let profiles = state.profiles.load();
    let plan = profiles.active();
    let listen = server
        .local_addr()
        .map_or_else(|e| e.to_string(), |a| a.to_string());
    let admin = server
        .admin_addr()
        .map_or_else(|| "none".to_owned(), |a| a.to_string());
    let tls = server
        .tls_addr()
        .map_or_else(|| "none".to_owned(), |a| a.to_string());
    let workers = config.workers.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    tracing::info!(
        version = %env!("CARGO_PKG_VERSION"),
        listen = %listen,
        admin = %admin,
        tls = %tls,
        profile = %plan.name,
        profile_from = %profile_from,
        profile_origin = %plan.origin,
        ledger = %ledger(config),
        seed = config.seed,
        max_latency = %Canonical(config.max_latency),
        workers,
        "serving"
    );
}

fn ledger(config: &Config) -> String {
    #[allow(unreachable_patterns)] // a ledger added later still logs, by its Debug form
    match &config.ledger {
        LedgerKind::Memory => format!("memory(capacity={})", config.ledger_capacity),
        LedgerKind::Stateless => "stateless".to_owned(),
        other => format!("{other:?}").to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gazua_log_comes_before_rust_log_and_empty_is_unset() {
        let s = |v: &str| Some(v.to_owned());
        assert_eq!(filter_text(s("debug"), s("warn")), "debug");
        assert_eq!(filter_text(None, s("warn")), "warn");
        assert_eq!(filter_text(s(""), s("warn")), "warn");
        assert_eq!(filter_text(None, None), "info");
    }
}
