//! The "physical limit" baseline for benches/run.sh: a bare hyper 1.x server that does only what
//! any mock must do — read the request, wait on a tokio timer, answer a static JSON body of the
//! same size as Gazua's answer — so that Gazua's cost over hyper itself can be measured.
//!
//! ```text
//! cargo run --release --example bare-hyper -- --listen 127.0.0.1:8090 --body-bytes 1534
//! ```
//!
//! Per request, from the query string or a header (the query wins):
//! - `delay_ms=N` / `x-delay-ms: N`: answer N ms after arrival;
//! - `dist=lognormal&p50=80&p99=400` / `x-delay-dist: lognormal(p50=80,p99=400)`: a lognormal
//!   delay with that median and 99th percentile (ms), the same parametrisation as Gazua's;
//! - `close_pct=1` / `x-close-pct: 1`: that percentage of requests end their connection instead
//!   of answering, so a fault mix costs the baseline the same reconnects as Gazua.
//!
//! `GET /lateness` answers how late the timer fired past each request's target, in Gazua's own
//! `gazua_timer_lateness_seconds` buckets, so both servers' lateness is measured alike.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, LogNormal};
use tokio::net::TcpSocket;
use tokio::time::Instant;

/// Gazua's `LATENESS_BUCKETS` (src/metrics.rs), so the two histograms read alike.
const LATENESS_BUCKETS: [f64; 13] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];
/// The 99th percentile of the standard normal: sigma = ln(p99 / p50) / Z99.
const Z99: f64 = 2.326_347_874_040_841;

/// Lateness counts per bucket (the last slot is `+Inf`), plus the sum in nanoseconds.
struct Lateness {
    buckets: [AtomicU64; LATENESS_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Lateness {
    fn observe(&self, late: Duration) {
        let seconds = late.as_secs_f64();
        let slot = LATENESS_BUCKETS
            .iter()
            .position(|&le| seconds <= le)
            .unwrap_or(LATENESS_BUCKETS.len());
        self.buckets[slot].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos
            .fetch_add(late.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Prometheus text, cumulative buckets, like Gazua's `/metrics`.
    fn render(&self) -> String {
        let mut out = String::new();
        let mut cumulative = 0;
        for (i, le) in LATENESS_BUCKETS.iter().enumerate() {
            cumulative += self.buckets[i].load(Ordering::Relaxed);
            out += &format!("baseline_timer_lateness_seconds_bucket{{le=\"{le}\"}} {cumulative}\n");
        }
        cumulative += self.buckets[LATENESS_BUCKETS.len()].load(Ordering::Relaxed);
        out += &format!("baseline_timer_lateness_seconds_bucket{{le=\"+Inf\"}} {cumulative}\n");
        out += &format!(
            "baseline_timer_lateness_seconds_sum {}\nbaseline_timer_lateness_seconds_count {cumulative}\n",
            self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9
        );
        out
    }
}

struct Shared {
    body: Bytes,
    lateness: Lateness,
}

thread_local! {
    static RNG: RefCell<SmallRng> = RefCell::new(SmallRng::from_rng(&mut rand::rng()));
}

/// What one request asks of the baseline.
#[derive(Default)]
struct Ask {
    delay: Option<Delay>,
    close_pct: f64,
}

enum Delay {
    Fixed(Duration),
    LogNormal(LogNormal<f64>),
}

impl Delay {
    fn sample(&self) -> Duration {
        match self {
            Delay::Fixed(d) => *d,
            Delay::LogNormal(dist) => {
                let ms = RNG.with(|rng| dist.sample(&mut *rng.borrow_mut()));
                Duration::from_secs_f64(ms / 1000.0)
            }
        }
    }
}

fn lognormal(p50: f64, p99: f64) -> Option<Delay> {
    let sigma = (p99 / p50).ln() / Z99;
    LogNormal::new(p50.ln(), sigma).ok().map(Delay::LogNormal)
}

/// Reads the query string first, then the headers.
fn ask(query: Option<&str>, headers: &HeaderMap) -> Ask {
    let mut ask = Ask::default();
    let (mut dist, mut p50, mut p99) = (None, None, None);
    for pair in query.unwrap_or("").split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "delay_ms" => {
                ask.delay = value
                    .parse::<u64>()
                    .ok()
                    .map(|ms| Delay::Fixed(Duration::from_millis(ms)))
            }
            "dist" => dist = Some(value),
            "p50" => p50 = value.parse::<f64>().ok(),
            "p99" => p99 = value.parse::<f64>().ok(),
            "close_pct" => ask.close_pct = value.parse().unwrap_or(0.0),
            _ => {}
        }
    }
    if dist == Some("lognormal") {
        ask.delay = lognormal(p50.unwrap_or(80.0), p99.unwrap_or(400.0));
    }
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if ask.delay.is_none() {
        if let Some(ms) = text("x-delay-ms").and_then(|v| v.trim().parse::<u64>().ok()) {
            ask.delay = Some(Delay::Fixed(Duration::from_millis(ms)));
        } else if let Some(expr) = text("x-delay-dist") {
            // lognormal(p50=80,p99=400), numbers in ms.
            let number = |name: &str| {
                expr.split(['(', ',', ')'])
                    .filter_map(|part| part.trim().strip_prefix(name))
                    .find_map(|v| v.trim_end_matches("ms").parse::<f64>().ok())
            };
            ask.delay = lognormal(
                number("p50=").unwrap_or(80.0),
                number("p99=").unwrap_or(400.0),
            );
        }
    }
    if ask.close_pct == 0.0 {
        ask.close_pct = text("x-close-pct")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0);
    }
    ask
}

#[derive(Debug)]
struct Closed;

impl std::fmt::Display for Closed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection closed on purpose")
    }
}

impl std::error::Error for Closed {}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Closed> {
    let arrival = Instant::now();
    let (parts, body) = req.into_parts();
    if parts.uri.path() == "/lateness" {
        return Ok(Response::new(Full::new(Bytes::from(
            shared.lateness.render(),
        ))));
    }
    let ask = ask(parts.uri.query(), &parts.headers);
    // The whole body is read, as Gazua reads it.
    if body.collect().await.is_err() {
        return Err(Closed);
    }
    if let Some(delay) = &ask.delay {
        let target = arrival + delay.sample();
        tokio::time::sleep_until(target).await;
        shared.lateness.observe(Instant::now() - target);
    }
    if ask.close_pct > 0.0
        && RNG.with(|rng| rng.borrow_mut().random::<f64>() * 100.0) < ask.close_pct
    {
        return Err(Closed);
    }
    let mut response = Response::new(Full::new(shared.body.clone()));
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

/// A JSON object of exactly `size` bytes (at least 12): `{"pad":"xxx…"}`.
fn body_of(size: usize) -> Bytes {
    let overhead = r#"{"pad":""}"#.len();
    let pad = "x".repeat(size.saturating_sub(overhead));
    Bytes::from(format!(r#"{{"pad":"{pad}"}}"#))
}

fn main() {
    let mut listen: SocketAddr = "127.0.0.1:8090".parse().expect("a valid default address");
    let mut body_bytes = 300usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next();
        match (arg.as_str(), value) {
            ("--listen", Some(v)) => {
                listen = v
                    .parse()
                    .expect("--listen expects an address like 127.0.0.1:8090")
            }
            ("--body-bytes", Some(v)) => {
                body_bytes = v.parse().expect("--body-bytes expects a number of bytes")
            }
            _ => panic!("usage: bare-hyper --listen ADDR --body-bytes N (got {arg:?})"),
        }
    }
    let shared = Arc::new(Shared {
        body: body_of(body_bytes),
        lateness: Lateness {
            buckets: Default::default(),
            sum_nanos: AtomicU64::new(0),
        },
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(serve(listen, shared));
}

async fn serve(listen: SocketAddr, shared: Arc<Shared>) {
    let socket = TcpSocket::new_v4().expect("a socket");
    socket.set_reuseaddr(true).expect("SO_REUSEADDR");
    socket.bind(listen).expect("the listen address is free");
    // tokio's TcpListener::bind uses a backlog of 1024; 10k clients connect at once.
    let listener = socket.listen(65_535).expect("listen");
    eprintln!(
        "{{\"message\":\"serving\",\"listen\":\"{listen}\",\"body_bytes\":{}}}",
        shared.body.len()
    );
    let builder = auto::Builder::new(TokioExecutor::new());
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler");
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            _ = sigterm.recv() => return,
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let builder = builder.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(shared.clone(), req));
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
