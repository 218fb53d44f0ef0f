//! Serving: the accept loop, connection limits, graceful shutdown. The request lifecycle is in
//! [`lifecycle`], transport faults in [`fault`], the ops routes in [`ops`], HTTPS in [`tls`], the
//! warning about repeated payments in `repeats`.

pub mod fault;
pub mod lifecycle;
pub mod ops;
mod repeats;
pub mod timer;
pub mod tls;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;

use crate::api::{Api, ApiSettings, LedgerChoice};
use crate::config::{Config, LedgerKind};
use crate::engine::Engine;
use crate::metrics::{GaugeGuard, Metrics};
use crate::profile::{ProfileError, Profiles};

/// Largest request head hyper buffers (request line and headers); past it the client gets 431.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Listen backlog; the kernel caps it at `net.core.somaxconn`. Large, so a burst of 10k
/// connections is queued rather than refused.
const BACKLOG: u32 = 65_535;

/// What every request handler shares.
pub struct State {
    pub config: Config,
    pub engine: Engine,
    /// The loaded profiles; reload swaps the whole registry at once.
    pub profiles: ArcSwap<Profiles>,
    pub api: Api,
    pub metrics: Metrics,
    /// False from the moment shutdown starts: `/__gazua/ready` fails.
    pub ready: AtomicBool,
    /// Turns true when shutdown demands that every request still waiting be answered now.
    pub drain: watch::Receiver<bool>,
    /// Waits until a decided moment (`--timer-precision`); this server's own, see [`timer`].
    pub timer: timer::Timer,
}

impl State {
    /// Re-reads the profile files (SIGHUP). A profile that does not load is reported and the
    /// profiles in force keep serving.
    pub fn reload(&self) -> Result<(), Vec<ProfileError>> {
        let mut profiles = Profiles::load(&self.config.load_options())?;
        // A profile switched to through the admin route stays active across a reload.
        let active = self.profiles.load().active().name.clone();
        if let Some(kept) = profiles.with_active(&active) {
            profiles = kept;
        }
        tracing::info!(profile = %profiles.active().name, "profiles reloaded");
        self.profiles.store(Arc::new(profiles));
        Ok(())
    }

    /// Resolves when shutdown demands in-flight requests be answered now; pending while
    /// serving normally. One task flips the flag for all, so a waiting request holds no timer
    /// of its own for it.
    pub async fn drain_deadline(&self) {
        let mut drain = self.drain.clone();
        if drain.wait_for(|now| *now).await.is_err() {
            // The sender is gone only when the server is: nothing left to wait for.
            std::future::pending::<()>().await;
        }
    }
}

/// A bound server, not yet serving.
pub struct Server {
    listener: TcpListener,
    /// `--tls-listen`: the same routes over HTTPS.
    tls: Option<(TcpListener, Arc<tls::Tls>)>,
    /// `--admin-listen`: the ops routes only.
    admin: Option<TcpListener>,
    state: Arc<State>,
    drain_tx: watch::Sender<bool>,
}

impl Server {
    /// Binds the listen address; `127.0.0.1:0` picks a free port (see [`Server::local_addr`]).
    pub async fn bind(config: Config) -> io::Result<Server> {
        let listener = listen(config.listen)?;
        let admin = match config.admin_listen {
            Some(addr) => Some(TcpListener::bind(addr).await?),
            None => None,
        };
        let (drain_tx, drain) = watch::channel(false);
        let profiles = Profiles::load(&config.load_options()).map_err(|errors| {
            let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
            io::Error::new(io::ErrorKind::InvalidInput, lines.join("\n"))
        })?;
        let engine = Engine {
            flags: config.flags.clone(),
            seed: config.seed,
            max_latency: config.max_latency,
            boot: SystemTime::now(),
        };
        let api = Api::new(ApiSettings {
            secret_key: config.secret_key.clone(),
            seed: config.seed,
            ledger: match config.ledger {
                LedgerKind::Memory => LedgerChoice::Memory {
                    capacity: config.ledger_capacity,
                },
                LedgerKind::Stateless => LedgerChoice::Stateless,
            },
        });
        let metrics = Metrics::new();
        let tls = match &config.tls {
            Some(settings) => {
                let tls = tls::Tls::load(settings, metrics.registry())?;
                let listener = listen(settings.listen).map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("cannot listen on --tls-listen {}: {e}", settings.listen),
                    )
                })?;
                Some((listener, Arc::new(tls)))
            }
            None => None,
        };
        let timer = timer::Timer::new(config.timer_precision);
        let state = Arc::new(State {
            config,
            engine,
            profiles: ArcSwap::from_pointee(profiles),
            api,
            metrics,
            ready: AtomicBool::new(true),
            drain,
            timer,
        });
        Ok(Server {
            listener,
            tls,
            admin,
            state,
            drain_tx,
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The `--tls-listen` address, when there is one.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    /// The `--admin-listen` address, when there is one.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn state(&self) -> &Arc<State> {
        &self.state
    }

    /// Serves until `shutdown` resolves, then drains: readiness fails, no new connections,
    /// every in-flight request is answered within `--shutdown-grace`.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        let Server {
            listener,
            tls,
            admin,
            state,
            drain_tx,
        } = self;
        let config = &state.config;
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            // hyper's header-read timeout also closes idle keep-alive connections once a timer
            // is set (30 s by default): keep it above load balancers' 60 s idle timeout.
            .header_read_timeout(config.idle_timeout)
            .max_buf_size(MAX_HEAD_BYTES)
            .keep_alive(true);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(MAX_HEAD_BYTES as u32);

        let builder = Arc::new(builder);
        let reloader = tokio::spawn(reload_on_sighup(state.clone()));
        let tls_reloader = tls
            .as_ref()
            .map(|(_, tls)| tokio::spawn(tls::reload_on_sighup(tls.clone())));
        let lateness = tokio::spawn(watch_lateness(state.clone()));
        let repeats = tokio::spawn(repeats::watch(state.clone()));
        let admin = admin.map(|admin| tokio::spawn(serve_admin(admin, state.clone())));
        let limit = Arc::new(Semaphore::new(config.max_connections));
        let graceful = GracefulShutdown::new();
        tokio::pin!(shutdown);

        loop {
            // The permit comes before accept: past the limit, clients wait in the backlog
            // instead of being accepted and starved.
            let permit = tokio::select! {
                permit = limit.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
                () = &mut shutdown => break,
            };
            // Both ports share the limit; a TLS connection is handshaken in its own task.
            let (accepted, over_tls) = tokio::select! {
                accepted = listener.accept() => (accepted, None),
                accepted = accept_tls(&tls) => accepted,
                () = &mut shutdown => break,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors or a connection reset before accept: log,
                    // back off briefly, keep serving.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let conn_guard = GaugeGuard::new(&state.metrics.open_connections);
            let control = fault::Control::default();
            let io = fault::FaultIo::new(stream, control.clone());
            let (state, builder, watcher) = (state.clone(), builder.clone(), graceful.watcher());
            tokio::spawn(async move {
                let _permit = permit;
                let _conn_guard = conn_guard;
                match over_tls {
                    None => serve_connection(&builder, state, control, watcher, io).await,
                    Some(tls) => {
                        // The profile in force when the connection arrives sets its handshake.
                        let knob = state.profiles.load().active().tls.clone();
                        let max = state.config.max_latency;
                        if let Some(io) = tls.handshake(io, knob.as_ref(), max).await {
                            serve_connection(&builder, state, control, watcher, io).await;
                        }
                    }
                }
            });
        }

        state.ready.store(false, Ordering::SeqCst);
        reloader.abort();
        if let Some(tls_reloader) = tls_reloader {
            tls_reloader.abort();
        }
        drop(tls);
        lateness.abort();
        repeats.abort();
        if let Some(admin) = admin {
            admin.abort();
        }
        drop(listener);
        let grace = config.shutdown_grace;
        // Delayed requests are answered a little before the grace ends, so their responses
        // are written before the process exits.
        let answer_by = Instant::now() + grace.saturating_sub(grace / 10);
        tokio::spawn(async move {
            tokio::time::sleep_until(answer_by).await;
            let _ = drain_tx.send(true);
            // Kept open until the process ends, so waiting requests see the flag, not a
            // closed channel.
            std::future::pending::<()>().await;
        });
        tracing::info!(
            in_flight = state.metrics.in_flight.get(),
            ?grace,
            "draining"
        );
        if tokio::time::timeout(grace, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("shutdown grace ran out with connections still open");
        }
        tracing::info!("drained");
        Ok(())
    }
}

/// Binds a listening socket: address reuse, a large backlog.
fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// The next connection on `--tls-listen`, with the TLS side to handshake it; pending forever
/// without one.
async fn accept_tls(
    tls: &Option<(TcpListener, Arc<tls::Tls>)>,
) -> (
    io::Result<(tokio::net::TcpStream, SocketAddr)>,
    Option<Arc<tls::Tls>>,
) {
    match tls {
        Some((listener, tls)) => (listener.accept().await, Some(tls.clone())),
        None => std::future::pending().await,
    }
}

/// Serves one connection's requests, plain TCP or the TLS stream over it, until it closes or
/// the graceful shutdown closes it.
async fn serve_connection<I>(
    builder: &auto::Builder<TokioExecutor>,
    state: Arc<State>,
    control: fault::Control,
    watcher: Watcher,
    io: I,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| lifecycle::handle(state.clone(), control.clone(), req));
    let connection = builder.serve_connection(TokioIo::new(io), service);
    if let Err(error) = watcher.watch(connection.into_owned()).await {
        tracing::debug!(%error, "connection ended with an error");
    }
}

/// Reloads the profiles on every SIGHUP, without touching a connection.
async fn reload_on_sighup(state: Arc<State>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP: profiles reload only through the admin route");
        return;
    };
    while hangups.recv().await.is_some() {
        if let Err(errors) = state.reload() {
            for error in errors {
                tracing::error!(%error, "profile reload refused; the profiles in force keep serving");
            }
        }
    }
}

/// The `--admin-listen` port: the ops routes only, one short connection at a time in practice
/// (probes, scrapes). Stopped when shutdown starts; readiness is failing by then.
async fn serve_admin(listener: TcpListener, state: Arc<State>) {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(admin = %addr, "serving the ops routes");
    }
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "admin accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let handler_state = state.clone();
        let service = service_fn(move |req| lifecycle::handle_ops(handler_state.clone(), req));
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        tokio::spawn(async move {
            let _ = connection.await;
        });
    }
}

/// Every 10 s, warns when answers ran late past their decided moment (p99 over
/// `--lateness-warn`): then the process is short of CPU, and Gazua, not the PG it plays,
/// shapes the latency the client sees.
async fn watch_lateness(state: Arc<State>) {
    const WINDOW: Duration = Duration::from_secs(10);
    let threshold = state.config.lateness_warn.as_secs_f64();
    let mut earlier = state.metrics.lateness();
    loop {
        tokio::time::sleep(WINDOW).await;
        let now = state.metrics.lateness();
        if let Some(p99) = now.p99_since(&earlier, 100)
            && p99 > threshold
        {
            tracing::warn!(
                p99_lateness_ms = p99 * 1000.0,
                threshold_ms = threshold * 1000.0,
                answers = now.count - earlier.count,
                "answers are running late past their decided latency: this Gazua process is short of CPU and shapes the latency clients see (the bottleneck); scale it out or give it more CPU"
            );
        }
        earlier = now;
    }
}
