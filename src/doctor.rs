//! `gazua doctor`: what a first load test trips on before Gazua answers a single request —
//! the open-file limit against `--max-connections`, the kernel's listen backlog, ports already
//! taken, the memory ledger against the memory there is — each with the fix.
//!
//! Reads Linux's `/proc` and cgroup files; where one is missing (another OS, a sandbox) the
//! check says it could not tell rather than guessing.

use std::fmt;
use std::net::SocketAddr;

use crate::config::{Config, LedgerKind};

/// File descriptors Gazua holds besides its connections: listeners, the runtime's epoll and
/// wakers, stdio, a profile file being read.
const FD_OVERHEAD: u64 = 64;

/// What the memory ledger holds per payment: the top of the measured range (README, *Ledger
/// memory*: 0.27–0.41 KB, `tests/ledger_memory.rs`).
pub const LEDGER_BYTES_PER_PAYMENT: u64 = 410;

/// What one stored `Idempotency-Key` answer adds (measured 0.33–0.39 KB): when every request
/// carries a key, the ledger holds as many answers as payments.
pub const LEDGER_BYTES_PER_ANSWER: u64 = 390;

/// The backlog Gazua asks for (`server::BACKLOG`); the kernel caps it at `somaxconn`.
const BACKLOG: u64 = 65_535;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Ok,
    /// Works, but a load test may see it (dropped SYNs, a slow start).
    Warn,
    /// A load test will fail on it.
    Fail,
    /// Could not be checked here.
    Unknown,
}

/// One check's verdict.
#[derive(Debug, Clone)]
pub struct Finding {
    pub level: Level,
    /// What was checked, e.g. `open files`.
    pub check: &'static str,
    pub detail: String,
    /// The fix, for a `Warn` or a `Fail`.
    pub fix: Option<String>,
}

/// Every check's verdict, printed one finding a line (and its fix below it).
#[derive(Debug, Clone)]
pub struct Report {
    pub findings: Vec<Finding>,
}

impl Report {
    /// True when a finding would fail a load test.
    pub fn fails(&self) -> bool {
        self.findings.iter().any(|f| f.level == Level::Fail)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for finding in &self.findings {
            let level = match finding.level {
                Level::Ok => "ok",
                Level::Warn => "warn",
                Level::Fail => "FAIL",
                Level::Unknown => "?",
            };
            writeln!(f, "{level:<5} {}: {}", finding.check, finding.detail)?;
            if let Some(fix) = &finding.fix {
                writeln!(f, "      fix: {fix}")?;
            }
        }
        let problems = self
            .findings
            .iter()
            .filter(|f| matches!(f.level, Level::Warn | Level::Fail))
            .count();
        match problems {
            0 => writeln!(f, "no problem found"),
            n => writeln!(f, "{n} problem(s) found"),
        }
    }
}

/// Runs every check against the settings `gazua` would serve with.
pub fn examine(config: &Config) -> Report {
    let mut findings = vec![
        open_files(config.max_connections as u64, read("/proc/self/limits")),
        somaxconn(
            config.max_connections as u64,
            read("/proc/sys/net/core/somaxconn"),
        ),
        port("listen port", config.listen, "--listen"),
    ];
    if let Some(admin) = config.admin_listen {
        findings.push(port("admin port", admin, "--admin-listen"));
    }
    findings.push(ledger_memory(config, available_memory()));
    Report { findings }
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// The soft and hard "Max open files" of `/proc/self/limits` (`None` for unlimited).
fn parse_open_files(limits: &str) -> Option<(Option<u64>, Option<u64>)> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut values = line["Max open files".len()..].split_whitespace();
    let mut value = || match values.next()? {
        "unlimited" => Some(None),
        v => v.parse().ok().map(Some),
    };
    Some((value()?, value()?))
}

/// Each connection holds a descriptor: past the soft limit `accept` fails (EMFILE) and new
/// clients wait or time out while Gazua looks idle.
fn open_files(max_connections: u64, limits: Option<String>) -> Finding {
    let check = "open files";
    let needed = max_connections + FD_OVERHEAD;
    let Some((soft, hard)) = limits.as_deref().and_then(parse_open_files) else {
        return Finding {
            level: Level::Unknown,
            check,
            detail: "cannot read the limit (/proc/self/limits)".to_owned(),
            fix: Some(format!("make sure `ulimit -n` is at least {needed}")),
        };
    };
    let show = |v: Option<u64>| v.map_or("unlimited".to_owned(), |v| v.to_string());
    let detail = format!(
        "soft limit {} (hard {}); --max-connections {max_connections} needs {needed}",
        show(soft),
        show(hard)
    );
    if soft.is_none_or(|soft| soft >= needed) {
        return Finding {
            level: Level::Ok,
            check,
            detail,
            fix: None,
        };
    }
    let fix = if hard.is_none_or(|hard| hard >= needed) {
        format!("run `ulimit -n {needed}` in the shell that starts gazua")
    } else {
        format!(
            "raise the hard limit: `docker run --ulimit nofile={needed}:{needed}`, systemd \
             `LimitNOFILE={needed}`, or /etc/security/limits.conf; or lower --max-connections \
             to {}",
            soft.unwrap_or(0).saturating_sub(FD_OVERHEAD)
        )
    };
    Finding {
        level: Level::Fail,
        check,
        detail,
        fix: Some(fix),
    }
}

/// The kernel caps the listen backlog at `net.core.somaxconn`: a burst of new connections past
/// it has its SYNs dropped, and clients retry after a second — a latency spike Gazua never saw.
fn somaxconn(max_connections: u64, value: Option<String>) -> Finding {
    let check = "listen backlog";
    let Some(value) = value.and_then(|v| v.trim().parse::<u64>().ok()) else {
        return Finding {
            level: Level::Unknown,
            check,
            detail: "cannot read net.core.somaxconn".to_owned(),
            fix: None,
        };
    };
    let wanted = max_connections.min(BACKLOG);
    let detail = format!(
        "net.core.somaxconn {value}: at most {value} connections wait to be accepted at once"
    );
    if value >= wanted {
        return Finding {
            level: Level::Ok,
            check,
            detail,
            fix: None,
        };
    }
    Finding {
        level: Level::Warn,
        check,
        detail: format!(
            "{detail}; a burst of {wanted} new connections (--max-connections) gets SYNs dropped"
        ),
        fix: Some(format!(
            "`sysctl -w net.core.somaxconn={wanted}` (docker: `--sysctl net.core.somaxconn={wanted}`; \
             Kubernetes: the pod's securityContext.sysctls)"
        )),
    }
}

/// Binds the address the way the server will, and lets go at once.
fn port(check: &'static str, addr: SocketAddr, flag: &str) -> Finding {
    match std::net::TcpListener::bind(addr) {
        Ok(_) => Finding {
            level: Level::Ok,
            check,
            detail: format!("{addr} is free"),
            fix: None,
        },
        Err(error) => {
            let fix = match error.kind() {
                std::io::ErrorKind::AddrInUse => format!(
                    "stop what listens there (`ss -ltnp 'sport = :{}'` shows it) or pick another {flag}",
                    addr.port()
                ),
                std::io::ErrorKind::PermissionDenied => {
                    format!("ports below 1024 need privileges: use a port such as 8080 in {flag}")
                }
                _ => format!("pick an address of this machine in {flag}"),
            };
            Finding {
                level: Level::Fail,
                check,
                detail: format!("cannot listen on {addr}: {error}"),
                fix: Some(fix),
            }
        }
    }
}

/// The memory a process may use: the cgroup's limit (a container's) or what the kernel reports
/// available, whichever is smaller.
fn available_memory() -> Option<u64> {
    let meminfo = read("/proc/meminfo").and_then(|text| {
        let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    });
    let cgroup = read("/sys/fs/cgroup/memory.max").and_then(|v| v.trim().parse::<u64>().ok());
    match (meminfo, cgroup) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A full memory ledger must fit, with room to spare for connections and buffers; past the
/// memory there is, the process is killed mid-test.
fn ledger_memory(config: &Config, available: Option<u64>) -> Finding {
    let check = "ledger memory";
    #[allow(unreachable_patterns)] // other ledgers keep nothing in this process
    let capacity = match config.ledger {
        LedgerKind::Memory => config.ledger_capacity as u64,
        _ => {
            return Finding {
                level: Level::Ok,
                check,
                detail: "the ledger keeps no payments in this process".to_owned(),
                fix: None,
            };
        }
    };
    let payments = capacity.saturating_mul(LEDGER_BYTES_PER_PAYMENT);
    let with_answers = capacity.saturating_mul(LEDGER_BYTES_PER_PAYMENT + LEDGER_BYTES_PER_ANSWER);
    let mb = |bytes: u64| bytes.div_ceil(1_000_000);
    let need = format!(
        "a full ledger ({capacity} payments) takes about {} MB, {} MB when every request \
         carries an Idempotency-Key",
        mb(payments),
        mb(with_answers)
    );
    let Some(available) = available else {
        return Finding {
            level: Level::Unknown,
            check,
            detail: format!("{need}; cannot read the memory available"),
            fix: None,
        };
    };
    let detail = format!("{need}, of {} MB available", mb(available));
    // The payments alone past the memory: killed mid-test. With every answer kept, or past
    // half of it (connections and buffers need room too): a risk worth a warning.
    let level = if payments > available {
        Level::Fail
    } else if with_answers > available || payments > available / 2 {
        Level::Warn
    } else {
        Level::Ok
    };
    let fix = (level != Level::Ok).then(|| {
        format!(
            "lower --ledger-capacity to {} or below, give the process more memory, or run \
             --ledger stateless (nothing recorded)",
            available / 2 / (LEDGER_BYTES_PER_PAYMENT + LEDGER_BYTES_PER_ANSWER)
        )
    });
    Finding {
        level,
        check,
        detail,
        fix,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: &str = "Limit                     Soft Limit           Hard Limit           Units     \n\
        Max open files            1024                 524288               files     \n";

    #[test]
    fn a_soft_limit_under_max_connections_fails_with_ulimit_as_the_fix() {
        let f = open_files(10_000, Some(LIMITS.to_owned()));
        assert_eq!(f.level, Level::Fail);
        assert!(f.fix.unwrap().contains("ulimit -n 10064"));
        assert_eq!(open_files(500, Some(LIMITS.to_owned())).level, Level::Ok);
    }

    #[test]
    fn past_the_hard_limit_the_fix_raises_it() {
        let f = open_files(1_000_000, Some(LIMITS.to_owned()));
        assert!(f.fix.unwrap().contains("--ulimit nofile=1000064"));
    }

    #[test]
    fn a_small_somaxconn_is_a_warning_with_the_sysctl() {
        let f = somaxconn(10_000, Some("4096\n".to_owned()));
        assert_eq!(f.level, Level::Warn);
        assert!(f.fix.unwrap().contains("net.core.somaxconn=10000"));
        assert_eq!(somaxconn(1_000, Some("4096".into())).level, Level::Ok);
    }

    #[test]
    fn a_ledger_larger_than_memory_fails() {
        let mut config = Config::new("127.0.0.1:0".parse().unwrap());
        config.ledger_capacity = 1_000_000;
        assert_eq!(ledger_memory(&config, Some(400_000_000)).level, Level::Fail);
        assert_eq!(ledger_memory(&config, Some(700_000_000)).level, Level::Warn);
        assert_eq!(ledger_memory(&config, Some(8_000_000_000)).level, Level::Ok);
        config.ledger = LedgerKind::Stateless;
        assert_eq!(ledger_memory(&config, Some(1)).level, Level::Ok);
    }
}
