//! One client against everyone else, measured: a normal client's health check (a fresh
//! connection each time, as a load balancer probes) and confirm (one keep-alive connection)
//! answer while thousands of silent and one-byte-per-second connections hold on to Gazua.
//! Run by `benches/slowloris.sh`, which starts the server and raises `ulimit -n`.
//!
//! Two phases against the same server: the probe alone (baseline), then the probe under
//! attack; the ratio of their p99 is the figure to read on a shared machine.
//!
//! Environment: `ADDR` (127.0.0.1:18580), `ADMIN` (the `--admin-listen` address, probed too
//! when set), `SILENT` (10000), `SLOW` (2000: half send their
//! head one byte a second, half a 1,000-byte body one byte a second), `DURATION` seconds per
//! phase (30), `RAMP` seconds to open the attack before measuring (10), `EVERY_MS` between
//! probes (100), `PROBE_TIMEOUT_MS` (5000: a probe slower than this counts as failed).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Default)]
struct Attack {
    stop: AtomicBool,
    opened: AtomicU64,
    closed_by_server: AtomicU64,
    connect_errors: AtomicU64,
}

/// Keeps one hostile connection open, reopening it whenever Gazua closes it.
async fn hold(addr: SocketAddr, attack: Arc<Attack>, kind: usize) {
    let head_slow = b"POST /v1/payments/confirm HTTP/1.1\r\nhost: gazua\r\nx-slow: ";
    let body_slow = b"POST /v1/payments/confirm HTTP/1.1\r\nhost: gazua\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n";
    while !attack.stop.load(Ordering::Relaxed) {
        let Ok(mut stream) = TcpStream::connect(addr).await else {
            attack.connect_errors.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        attack.opened.fetch_add(1, Ordering::Relaxed);
        let mut buf = [0u8; 1024];
        let closed = match kind {
            // Silent: connect and send nothing.
            0 => matches!(stream.read(&mut buf).await, Ok(0) | Err(_)),
            // One byte a second, of the head or of the body.
            slow => {
                let prefix: &[u8] = if slow == 1 { head_slow } else { body_slow };
                let mut closed = stream.write_all(prefix).await.is_err();
                while !closed && !attack.stop.load(Ordering::Relaxed) {
                    tokio::select! {
                        read = stream.read(&mut buf) => closed = matches!(read, Ok(0) | Err(_)),
                        () = tokio::time::sleep(Duration::from_secs(1)) => {
                            closed = stream.write_all(b"a").await.is_err();
                        }
                    }
                }
                closed
            }
        };
        if closed {
            attack.closed_by_server.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One request on a connection: the time to the whole response, or `None` on any failure.
async fn request(stream: &mut TcpStream, request: &[u8]) -> Option<()> {
    stream.write_all(request).await.ok()?;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        got.extend_from_slice(&buf[..n]);
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())?;
            if got.len() >= end + 4 + length {
                return head.starts_with("http/1.1 200").then_some(());
            }
        }
    }
}

#[derive(Default)]
struct Probe {
    health: Vec<Duration>,
    confirm: Vec<Duration>,
    admin: Vec<Duration>,
    health_failed: u64,
    confirm_failed: u64,
    admin_failed: u64,
}

/// Health on a fresh connection: the time to a 200, or `None`.
async fn health(addr: SocketAddr, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    tokio::time::timeout(limit, async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        request(
            &mut stream,
            b"GET /__gazua/health HTTP/1.1\r\nhost: gazua\r\nconnection: close\r\n\r\n",
        )
        .await
    })
    .await
    .ok()
    .flatten()
    .map(|()| start.elapsed())
}

/// Probes every `every` for `duration`: health on a fresh connection (on the PG port, and on
/// the admin port when there is one), confirm on a kept one.
async fn probe(
    addr: SocketAddr,
    admin: Option<SocketAddr>,
    duration: Duration,
    every: Duration,
    limit: Duration,
) -> Probe {
    static N: AtomicU64 = AtomicU64::new(0);
    let mut out = Probe::default();
    let mut kept: Option<TcpStream> = None;
    let end = Instant::now() + duration;
    while Instant::now() < end {
        let round = Instant::now();
        match health(addr, limit).await {
            Some(took) => out.health.push(took),
            None => out.health_failed += 1,
        }
        if let Some(admin) = admin {
            match health(admin, limit).await {
                Some(took) => out.admin.push(took),
                None => out.admin_failed += 1,
            }
        }

        let n = N.fetch_add(1, Ordering::Relaxed);
        let body = format!(
            r#"{{"paymentKey":"pk_probe_{n}_{}","orderId":"order-probe-{n}","amount":15000}}"#,
            std::process::id()
        );
        let confirm = format!(
            "POST /v1/payments/confirm HTTP/1.1\r\nhost: gazua\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let start = Instant::now();
        let answered = tokio::time::timeout(limit, async {
            if kept.is_none() {
                kept = Some(TcpStream::connect(addr).await.ok()?);
            }
            let answer = request(kept.as_mut()?, confirm.as_bytes()).await;
            if answer.is_none() {
                kept = None;
            }
            answer
        })
        .await;
        match answered {
            Ok(Some(())) => out.confirm.push(start.elapsed()),
            _ => {
                kept = None;
                out.confirm_failed += 1;
            }
        }
        tokio::time::sleep(every.saturating_sub(round.elapsed())).await;
    }
    out
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn quantile(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    ms(sorted[((sorted.len() as f64 - 1.0) * q).round() as usize])
}

fn report(phase: &str, probe: &mut Probe) -> (f64, f64) {
    probe.health.sort();
    probe.confirm.sort();
    probe.admin.sort();
    for (name, samples, failed) in [
        ("health", &probe.health, probe.health_failed),
        ("confirm", &probe.confirm, probe.confirm_failed),
        ("admin-health", &probe.admin, probe.admin_failed),
    ] {
        if samples.is_empty() && failed == 0 {
            continue;
        }
        println!(
            "{phase}\t{name}\t{}\t{failed}\t{:.2}\t{:.2}\t{:.2}",
            samples.len(),
            quantile(samples, 0.5),
            quantile(samples, 0.99),
            samples.last().map_or(f64::NAN, |d| ms(*d)),
        );
    }
    (
        quantile(&probe.health, 0.99),
        quantile(&probe.confirm, 0.99),
    )
}

#[tokio::main]
async fn main() {
    let addr: SocketAddr = env("ADDR", "127.0.0.1:18580".parse().unwrap());
    let admin: Option<SocketAddr> = std::env::var("ADMIN").ok().and_then(|a| a.parse().ok());
    let silent: usize = env("SILENT", 10_000);
    let slow: usize = env("SLOW", 2_000);
    let duration = Duration::from_secs(env("DURATION", 30));
    let ramp = Duration::from_secs(env("RAMP", 10));
    let every = Duration::from_millis(env("EVERY_MS", 100));
    let limit = Duration::from_millis(env("PROBE_TIMEOUT_MS", 5000));

    println!("phase\tprobe\tanswered\tfailed\tp50_ms\tp99_ms\tmax_ms");
    let mut alone = probe(addr, admin, duration, every, limit).await;
    let base = report("alone", &mut alone);

    let attack = Arc::new(Attack::default());
    let mut holders = Vec::new();
    for i in 0..silent + slow {
        let kind = if i < silent { 0 } else { 1 + (i - silent) % 2 };
        holders.push(tokio::spawn(hold(addr, attack.clone(), kind)));
        if i % 500 == 499 {
            // Open in waves, so the listen backlog is not the thing measured.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    tokio::time::sleep(ramp).await;
    let mut under = probe(addr, admin, duration, every, limit).await;
    let attacked = report("attack", &mut under);
    attack.stop.store(true, Ordering::Relaxed);
    for holder in holders {
        holder.abort();
    }
    eprintln!(
        "attack: {silent} silent + {slow} slow wanted; {} connections opened, {} closed by gazua, {} connect errors",
        attack.opened.load(Ordering::Relaxed),
        attack.closed_by_server.load(Ordering::Relaxed),
        attack.connect_errors.load(Ordering::Relaxed),
    );
    println!(
        "ratio\tp99 under attack ÷ alone\thealth {:.2}\tconfirm {:.2}",
        attacked.0 / base.0,
        attacked.1 / base.1
    );
}
