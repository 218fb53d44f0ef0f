//! The command line: the only module that knows clap. Every flag's doc comment is its help, and
//! every flag can also be set by an environment variable `GAZUA_<FLAG>`.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::config::{Config, KeyFrom, LedgerKind, LogFormat, TlsIdentity, TlsSettings};
use crate::directive::{Directives, Fault, Latency, Mix, Outcome, parse_duration};

/// Gazua PAY: a mock payment gateway for load tests. Every answer and every delay is directed
/// per request (X-Gazua-* headers or a [gazua: …] body tag) or by the serving defaults.
#[derive(Debug, Parser)]
#[command(
    name = "gazua",
    version,
    after_help = ENVIRONMENT
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Flags every command that reads profiles shares (global: before or after the command).
    #[command(flatten)]
    pub dirs: ProfileDirs,

    #[command(flatten)]
    pub serve: ServeArgs,
}

/// The environment `gazua --help` documents besides the flags' own variables.
const ENVIRONMENT: &str = "\
Environment:
  GAZUA_<FLAG>  every flag also reads an environment variable, e.g. GAZUA_LISTEN=:9090
  GAZUA_LOG     log filter, e.g. 'debug' or 'info,gazua_pay::server=debug' (default: info)
  RUST_LOG      the same filter, read when GAZUA_LOG is unset
  NO_COLOR      set (non-empty) to never colour the text log; colour is used only when
                stderr is a terminal";

impl Cli {
    /// Parses the process's arguments, noting where the served profile was chosen (for the
    /// startup log: a flag, its environment variable, or nothing).
    pub fn parse_args() -> Cli {
        let command = Cli::command();
        let matches = command.clone().get_matches();
        // A serve flag before another command would be silently unused: refuse it. (clap's
        // `args_conflicts_with_subcommands` would refuse the global flags too.)
        if let Some((name, _)) = matches.subcommand() {
            let misplaced = command.get_arguments().find(|arg| {
                !arg.is_global_set()
                    && matches.value_source(arg.get_id().as_str()) == Some(ValueSource::CommandLine)
            });
            if let Some(arg) = misplaced {
                let flag = arg.get_long().unwrap_or(arg.get_id().as_str());
                command
                    .clone()
                    .error(
                        clap::error::ErrorKind::ArgumentConflict,
                        format!(
                            "--{flag} is a serve flag and does nothing for `gazua {name}`; \
                             remove it, or put it after `gazua serve`"
                        ),
                    )
                    .exit();
            }
        }
        let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        let serve_matches = match matches.subcommand() {
            Some(("serve" | "doctor", sub)) => sub,
            _ => &matches,
        };
        let from = match serve_matches.value_source("profile") {
            Some(ValueSource::CommandLine) => ProfileFrom::Flag,
            Some(ValueSource::EnvVariable) => ProfileFrom::Env,
            _ => ProfileFrom::Default,
        };
        match &mut cli.command {
            Some(Command::Serve(args) | Command::Doctor(args)) => args.profile_from = from,
            _ => cli.serve.profile_from = from,
        }
        cli
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the PG API (the default when no command is given).
    Serve(Box<ServeArgs>),
    /// Sample a latency expression and print its percentiles and a histogram.
    Preview(PreviewArgs),
    /// Validate profile files; print each error as file:line:col and exit 1 if there is one.
    Check(CheckArgs),
    /// List the loaded profiles (shipped, and from --profiles-dir) with their descriptions.
    Profiles,
    /// Exit 0 when the local server answers its health route; otherwise say why on stderr and
    /// exit 1 (for a container HEALTHCHECK without curl).
    Healthcheck(HealthcheckArgs),
    /// Check this machine against the serve flags given (open-file limit, listen backlog,
    /// ports, ledger memory) and print the fix for each problem; exit 1 if one would fail a
    /// load test.
    Doctor(Box<ServeArgs>),
    /// Print a shell completion script, e.g. `gazua completions bash > /etc/bash_completion.d/gazua`.
    Completions(CompletionsArgs),
    /// Print the man page (roff), e.g. `gazua man > gazua.1 && man -l gazua.1`.
    Man,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to serve the PG API (and the ops routes) on: HOST:PORT, :PORT or PORT (all
    /// interfaces), or NAME:PORT (resolved at start).
    #[arg(long, env = "GAZUA_LISTEN", default_value = "0.0.0.0:8080", value_parser = parse_listen)]
    pub listen: SocketAddr,

    /// Serve the same routes over HTTPS on this address too (needs --tls-cert/--tls-key or
    /// --tls-self-signed); written like --listen. ALPN offers h2 and http/1.1.
    #[arg(long, env = "GAZUA_TLS_LISTEN", requires = "tls_identity", value_parser = parse_listen)]
    pub tls_listen: Option<SocketAddr>,

    /// The HTTPS certificate chain (PEM, leaf first); read again on SIGHUP.
    #[arg(
        long,
        env = "GAZUA_TLS_CERT",
        requires = "tls_key",
        group = "tls_identity"
    )]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1); read again on SIGHUP.
    #[arg(long, env = "GAZUA_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Make a certificate at start, signed by a CA made for it (see --tls-write-ca).
    #[arg(
        long,
        env = "GAZUA_TLS_SELF_SIGNED",
        group = "tls_identity",
        conflicts_with = "tls_cert"
    )]
    pub tls_self_signed: bool,

    /// A name the self-signed certificate covers (DNS name or IP address); repeatable.
    /// Default: localhost, 127.0.0.1, ::1 and the --tls-listen address.
    #[arg(
        long,
        env = "GAZUA_TLS_NAME",
        value_delimiter = ',',
        requires = "tls_self_signed"
    )]
    pub tls_name: Vec<String>,

    /// Write the self-signed certificate's CA (PEM) here, for clients to trust.
    #[arg(long, env = "GAZUA_TLS_WRITE_CA", requires = "tls_self_signed")]
    pub tls_write_ca: Option<PathBuf>,

    /// A second address serving only the ops routes (health, readiness, metrics, profile);
    /// written like --listen.
    #[arg(long, env = "GAZUA_ADMIN_LISTEN", value_parser = parse_listen)]
    pub admin_listen: Option<SocketAddr>,

    /// The profile to serve: a loaded profile's name (see `gazua profiles`) or a JSON file.
    #[arg(long, env = "GAZUA_PROFILE")]
    pub profile: Option<String>,

    /// Where `--profile` was set; filled by [`Cli::parse_args`].
    #[arg(skip)]
    pub profile_from: ProfileFrom,

    /// Anchor every profile's schedule at this RFC 3339 instant: instances given the same
    /// instant are in the same phase at the same moment.
    #[arg(long, env = "GAZUA_SCHEDULE_START", value_parser = crate::profile::parse_instant)]
    pub schedule_start: Option<SystemTime>,

    /// Token that enables `PUT /__gazua/profile` (sent as `Authorization: Bearer TOKEN`);
    /// without it the route is disabled.
    #[arg(long, env = "GAZUA_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Default outcome mix, e.g. '97% approved, 2% declined, 1% error'.
    #[arg(long, env = "GAZUA_OUTCOME", value_parser = parse_outcome)]
    pub outcome: Option<Mix<Outcome>>,

    /// Default latency expression, e.g. 'lognormal(p50=80ms, p99=400ms)'.
    #[arg(long, env = "GAZUA_LATENCY", value_parser = parse_latency)]
    pub latency: Option<Latency>,

    /// Default transport-fault mix, e.g. '0.5% reset, 0.5% hang'.
    #[arg(long, env = "GAZUA_FAULT", value_parser = parse_fault)]
    pub fault: Option<Mix<Fault>>,

    /// Seed of every keyed random choice: instances with the same seed decide a key alike.
    #[arg(long, env = "GAZUA_SEED", default_value_t = 1)]
    pub seed: u64,

    /// Upper bound of every latency sample, and how long a `hang` lasts.
    #[arg(long, env = "GAZUA_MAX_LATENCY", default_value = "60s", value_parser = parse_dur)]
    pub max_latency: Duration,

    /// Most connections open at once. At the cap the oldest connection that never sent a
    /// request (else the oldest idle one) is closed to make room; only when every connection
    /// is mid-request do further clients wait in the listen backlog.
    #[arg(long, env = "GAZUA_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,

    /// Largest request body in bytes; a larger one gets 413.
    #[arg(long, env = "GAZUA_MAX_BODY", default_value_t = 1024 * 1024)]
    pub max_body: usize,

    /// On SIGTERM/SIGINT, time to answer every in-flight request (delayed ones are answered
    /// early if their wait would run past it) before exiting.
    #[arg(long, env = "GAZUA_SHUTDOWN_GRACE", default_value = "25s", value_parser = parse_dur)]
    pub shutdown_grace: Duration,

    /// How long an idle keep-alive connection (or one sending its headers) is kept. Above
    /// load balancers' 60 s idle timeout, so they never race a close.
    #[arg(long, env = "GAZUA_IDLE_TIMEOUT", default_value = "90s", value_parser = parse_dur)]
    pub idle_timeout: Duration,

    /// How long a new connection may stay without sending a complete first request head
    /// before it is closed (silent and slow-header clients).
    #[arg(long, env = "GAZUA_HEADER_TIMEOUT", default_value = "5s", value_parser = parse_dur)]
    pub header_timeout: Duration,

    /// How long a request body may take to arrive after its head; past it the request gets a
    /// PG-shaped 408 and the connection closes.
    #[arg(long, env = "GAZUA_BODY_TIMEOUT", default_value = "10s", value_parser = parse_dur)]
    pub body_timeout: Duration,

    /// Log a warning when answers run this late past their decided moment (p99 over 10 s):
    /// Gazua itself has become the bottleneck and should be scaled out.
    #[arg(long, env = "GAZUA_LATENESS_WARN", default_value = "5ms", value_parser = parse_dur)]
    pub lateness_warn: Duration,

    /// Least gap between two wake-ups of the precise timer, which answers within tens of
    /// microseconds of the decided moment: answers due within one gap leave together, at most
    /// that much late. Smaller costs CPU under load; `0` is the finest; `off` waits on tokio's
    /// 1 ms timer alone.
    #[arg(long, env = "GAZUA_TIMER_PRECISION", default_value = "750us", value_parser = parse_timer_precision)]
    pub timer_precision: TimerPrecision,

    /// Where the determinism key comes from when no X-Gazua-Key or Idempotency-Key is sent.
    #[arg(long, env = "GAZUA_KEY_FROM", value_enum, default_value_t = KeyFromArg::None)]
    pub key_from: KeyFromArg,

    /// Where payments are recorded: `memory` (per instance, bounded), `stateless` (nothing
    /// recorded) or `redis://[user:pass@]host:port[/db]` / `rediss://…` (TLS): one ledger
    /// shared by a fleet.
    #[arg(long, env = "GAZUA_LEDGER", default_value = "memory", value_parser = parse_ledger)]
    pub ledger: LedgerKind,

    /// Most payments the memory ledger keeps; the oldest are evicted first.
    #[arg(long, env = "GAZUA_LEDGER_CAPACITY", default_value_t = crate::api::DEFAULT_LEDGER_CAPACITY)]
    pub ledger_capacity: usize,

    /// How long the Redis ledger keeps a payment, its order index and an Idempotency-Key
    /// answer (the PG honours a key for 15 days).
    #[arg(long, env = "GAZUA_LEDGER_TTL", default_value = "15d", value_parser = parse_ttl)]
    pub ledger_ttl: Duration,

    /// How long one call to the Redis ledger may take (a free in-flight slot, the connection
    /// and the answer) before the request is answered 503 GAZUA_LEDGER_UNAVAILABLE.
    #[arg(long, env = "GAZUA_LEDGER_TIMEOUT", default_value = "1s", value_parser = parse_ledger_timeout)]
    pub ledger_timeout: Duration,

    /// A PEM file of the CAs that sign a `rediss://` Redis's certificate (a private CA);
    /// without it the bundled web roots (Mozilla's, as ElastiCache's certificates chain to).
    #[arg(long, env = "GAZUA_LEDGER_CA", value_name = "FILE")]
    pub ledger_ca: Option<PathBuf>,

    /// Check the Basic-auth secret key against this value (otherwise only its format).
    #[arg(long, env = "GAZUA_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,

    /// Log line format.
    #[arg(long, env = "GAZUA_LOG_FORMAT", value_enum, default_value_t = LogFormatArg::Text)]
    pub log_format: LogFormatArg,

    /// Log one line per request.
    #[arg(long, env = "GAZUA_ACCESS_LOG")]
    pub access_log: bool,

    /// Runtime worker threads (default: one per core).
    #[arg(long, env = "GAZUA_WORKERS")]
    pub workers: Option<usize>,

    /// Send PAYMENT_STATUS_CHANGED and DEPOSIT_CALLBACK events to this http:// or https://
    /// URL (repeatable: every event goes to each; added to the served profile's webhooks.urls).
    #[arg(long = "webhook-url", value_parser = crate::profile::webhook_url)]
    pub webhook_urls: Vec<http::Uri>,

    /// Webhook deliveries waiting at most; when full the oldest is dropped and counted.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub webhook_outbox: u64,

    /// Multiplies the PG's webhook retry schedule (1, 4, 16 … 4096 minutes): 0.001 runs a
    /// minute in 60 ms.
    #[arg(long, default_value_t = 1.0, value_parser = parse_scale)]
    pub webhook_time_scale: f64,

    /// The fraction of webhook events delivered twice with the same transmission id (0.02);
    /// replaces the profile's webhooks.duplicate (default 0).
    #[arg(long, value_parser = crate::profile::fraction)]
    pub webhook_duplicate: Option<f64>,

    /// The fraction of webhook events never sent (0.01); replaces the profile's webhooks.drop.
    #[arg(long, value_parser = crate::profile::fraction)]
    pub webhook_drop: Option<f64>,

    /// The fraction of webhook events held back and sent after the payment's next event (or
    /// after one scaled retry minute when none comes): DONE before WAITING_FOR_DEPOSIT;
    /// replaces the profile's webhooks.reorder.
    #[arg(long, value_parser = crate::profile::fraction)]
    pub webhook_reorder: Option<f64>,

    /// Webhook deliveries in flight at once, at most (a slow receiver still gets throughput).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=65_536))]
    pub webhook_concurrency: u64,

    /// Waited before an event's first delivery: a latency expression such as
    /// lognormal(p50=200ms, p99=5s); replaces the profile's webhooks.delay.
    #[arg(long, value_parser = parse_latency)]
    pub webhook_delay: Option<Latency>,

    /// PEM certificates trusted for https:// webhook targets beside the public (Mozilla) roots:
    /// a receiver with a self-signed certificate.
    #[arg(long, value_name = "FILE")]
    pub webhook_ca: Option<PathBuf>,
}

fn parse_scale(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(f) if f > 0.0 && f.is_finite() => Ok(f),
        _ => Err(format!(
            "'{text}': expected a positive factor, such as 0.001"
        )),
    }
}

#[derive(Debug, Args)]
pub struct PreviewArgs {
    /// The latency expression, e.g. 'percentiles(p50=80ms, p99=900ms, max=3s)'.
    #[arg(value_parser = parse_latency)]
    pub expr: Latency,

    /// How many samples to draw.
    #[arg(long, default_value_t = 100_000)]
    pub samples: usize,

    /// Seed of the samples.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Clamp, as the server's --max-latency does.
    #[arg(long, default_value = "60s", value_parser = parse_dur)]
    pub max_latency: Duration,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Profile files to validate.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// `--profiles-dir`, read by `serve`, `check`, `profiles` and `doctor`: global, so it may come
/// before or after the command.
#[derive(Debug, Args)]
pub struct ProfileDirs {
    /// A folder of profile files (*.json) to load beside the shipped ones; repeatable.
    #[arg(
        long = "profiles-dir",
        env = "GAZUA_PROFILES_DIR",
        value_delimiter = ',',
        global = true
    )]
    pub profiles_dirs: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// The server's address, written like --listen; GAZUA_LISTEN when unset (an unspecified
    /// host such as 0.0.0.0 is probed on loopback).
    #[arg(long, env = "GAZUA_LISTEN", default_value = "127.0.0.1:8080", value_parser = parse_listen)]
    pub listen: SocketAddr,

    /// Give up after this long.
    #[arg(long, default_value = "2s", value_parser = parse_dur)]
    pub timeout: Duration,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Where the served profile was chosen, for the startup log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ProfileFrom {
    /// `--profile` on the command line.
    Flag,
    /// The `GAZUA_PROFILE` environment variable.
    Env,
    /// Neither: the shipped `default`.
    #[default]
    Default,
}

impl ProfileFrom {
    pub fn as_str(self) -> &'static str {
        match self {
            ProfileFrom::Flag => "--profile",
            ProfileFrom::Env => "GAZUA_PROFILE",
            ProfileFrom::Default => "default",
        }
    }
}

/// Writes the completion script for `shell` (`gazua completions SHELL`).
pub fn write_completions(shell: clap_complete::Shell, out: &mut dyn std::io::Write) {
    clap_complete::generate(shell, &mut Cli::command(), "gazua", out);
}

/// Writes the man page, roff generated from the same definitions as `--help` (`gazua man`).
pub fn write_man_page(out: &mut dyn std::io::Write) -> std::io::Result<()> {
    clap_mangen::Man::new(Cli::command()).render(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyFromArg {
    /// Only X-Gazua-Key and Idempotency-Key.
    None,
    /// Also the request's orderId or paymentKey.
    OrderId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormatArg {
    Text,
    Json,
}

fn parse_dur(text: &str) -> Result<Duration, String> {
    parse_duration(text).map_err(|e| e.to_string())
}

/// `--timer-precision`: a least gap, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerPrecision(pub Option<Duration>);

fn parse_timer_precision(text: &str) -> Result<TimerPrecision, String> {
    if text == "off" {
        return Ok(TimerPrecision(None));
    }
    let gap = parse_duration(text)
        .map_err(|_| format!("'{text}': expected a gap such as 500us, 0 (the finest) or off"))?;
    if gap > crate::server::timer::FINE_SPAN {
        return Err(format!(
            "'{text}': expected a gap from 0 to 3ms (the fine stage's span), or off"
        ));
    }
    Ok(TimerPrecision(Some(gap)))
}

/// `--listen`: `HOST:PORT`, `[V6]:PORT`, `:PORT` or `PORT` (every interface), or
/// `NAME:PORT` resolved now (the first IPv4 address, else the first address).
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    let expected = "expected HOST:PORT, :PORT or PORT, e.g. 0.0.0.0:8080, :8080 or 8080";
    let port_only = text.strip_prefix(':').unwrap_or(text);
    if !port_only.is_empty() && port_only.bytes().all(|b| b.is_ascii_digit()) {
        let port: u16 = port_only
            .parse()
            .map_err(|_| format!("'{text}': port {port_only} is above 65535; {expected}"))?;
        return Ok(SocketAddr::from(([0, 0, 0, 0], port)));
    }
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(format!("'{text}': no port; {expected}"));
    };
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(format!("'{text}': '{port}' is not a port; {expected}"));
    }
    let addrs: Vec<SocketAddr> = text
        .to_socket_addrs()
        .map_err(|e| format!("'{text}': cannot resolve '{host}' ({e}); {expected}"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("'{text}': '{host}' resolves to no address; {expected}"))
}

fn parse_ledger(text: &str) -> Result<LedgerKind, String> {
    match text {
        "memory" => Ok(LedgerKind::Memory),
        "stateless" => Ok(LedgerKind::Stateless),
        // The certificate is always checked: trust a private CA with --ledger-ca instead.
        t if t.starts_with("rediss://") && t.contains('#') => Err(format!(
            "'{t}': a fragment such as #insecure is not accepted (the certificate is always \
             checked; trust a private CA with --ledger-ca FILE); expected \
             rediss://[user:pass@]host:port[/db]"
        )),
        t if t.starts_with("redis://") || t.starts_with("rediss://") => redis::Client::open(t)
            .map(|_| LedgerKind::Redis { url: t.to_owned() })
            .map_err(|e| format!("'{t}': {e}; expected redis[s]://[user:pass@]host:port[/db]")),
        t => Err(format!(
            "'{t}': expected memory, stateless, redis://[user:pass@]host:port[/db] or rediss://… \
             (TLS)"
        )),
    }
}

/// `--ledger-timeout`: above zero (a zero timeout would fail every call).
fn parse_ledger_timeout(text: &str) -> Result<Duration, String> {
    match parse_duration(text) {
        Ok(timeout) if !timeout.is_zero() => Ok(timeout),
        _ => Err(format!(
            "'{text}': expected a duration above zero such as 1s, 250ms or 2.5s"
        )),
    }
}

/// A whole number of days (`15d`) or any duration Gazua reads (`90m`, `3600s`).
fn parse_ttl(text: &str) -> Result<Duration, String> {
    let ttl = match text.strip_suffix('d').map(str::parse::<u64>) {
        Some(Ok(days)) => Duration::from_secs(days.saturating_mul(24 * 3600)),
        _ => parse_dur(text)?,
    };
    if ttl < Duration::from_secs(1) {
        return Err(format!(
            "'{text}': expected at least 1s, such as 15d or 3600s"
        ));
    }
    Ok(ttl)
}

fn parse_latency(text: &str) -> Result<Latency, String> {
    Latency::parse(text).map_err(|e| e.to_string())
}

fn parse_outcome(text: &str) -> Result<Mix<Outcome>, String> {
    Outcome::parse_mix(text).map_err(|e| e.to_string())
}

fn parse_fault(text: &str) -> Result<Mix<Fault>, String> {
    Fault::parse_mix(text).map_err(|e| e.to_string())
}

impl ServeArgs {
    /// The resolved settings; `profiles_dirs` is the global `--profiles-dir`.
    pub fn into_config(self, profiles_dirs: Vec<PathBuf>) -> Config {
        let tls = self.tls_listen.map(|listen| TlsSettings {
            listen,
            identity: match (self.tls_cert, self.tls_key) {
                (Some(cert), Some(key)) => TlsIdentity::Files { cert, key },
                _ => TlsIdentity::SelfSigned {
                    names: if self.tls_name.is_empty() {
                        TlsIdentity::default_names(listen)
                    } else {
                        self.tls_name
                    },
                    write_ca: self.tls_write_ca,
                },
            },
        });
        Config {
            listen: self.listen,
            tls,
            admin_listen: self.admin_listen,
            profile: self.profile,
            profiles_dirs,
            schedule_start: self.schedule_start,
            admin_token: self.admin_token,
            flags: Directives {
                latency: self.latency,
                outcome: self.outcome,
                fault: self.fault,
                ..Directives::default()
            },
            seed: self.seed,
            max_latency: self.max_latency,
            max_connections: self.max_connections.max(1),
            max_body: self.max_body,
            shutdown_grace: self.shutdown_grace,
            idle_timeout: self.idle_timeout,
            header_timeout: self.header_timeout,
            body_timeout: self.body_timeout,
            lateness_warn: self.lateness_warn,
            timer_precision: self.timer_precision.0,
            key_from: match self.key_from {
                KeyFromArg::None => KeyFrom::None,
                KeyFromArg::OrderId => KeyFrom::OrderId,
            },
            ledger: self.ledger,
            ledger_capacity: self.ledger_capacity,
            ledger_ttl: self.ledger_ttl,
            ledger_timeout: self.ledger_timeout,
            ledger_ca: self.ledger_ca,
            secret_key: self.secret_key,
            log_format: match self.log_format {
                LogFormatArg::Text => LogFormat::Text,
                LogFormatArg::Json => LogFormat::Json,
            },
            access_log: self.access_log,
            workers: self.workers,
            webhooks: crate::webhook::WebhookSettings {
                urls: self.webhook_urls,
                outbox: usize::try_from(self.webhook_outbox).unwrap_or(usize::MAX),
                time_scale: self.webhook_time_scale,
                duplicate: self.webhook_duplicate,
                drop: self.webhook_drop,
                reorder: self.webhook_reorder,
                ca: self.webhook_ca,
                concurrency: usize::try_from(self.webhook_concurrency).unwrap_or(64),
                delay: self.webhook_delay,
            },
        }
    }
}
