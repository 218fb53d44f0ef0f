//! Serving: binding, the two ports, graceful shutdown. Connections (accept loop, clocks, cap)
//! are in [`conn`], the protective layers in [`stack`], the request lifecycle in
//! [`lifecycle`], transport faults in [`fault`], the ops routes in [`ops`], the warning about
//! repeated payments in `repeats`, HTTPS in [`tls`].

pub mod conn;
pub mod fault;
pub mod lifecycle;
pub mod ops;
mod repeats;
pub mod stack;
pub mod timer;
pub mod tls;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::api::redis_ledger::{RedisLedger, RedisOptions};
use crate::api::{Api, ApiSettings, LedgerChoice};
use crate::config::{Config, LedgerKind};
use crate::engine::Engine;
use crate::metrics::Metrics;
use crate::profile::{ProfileError, Profiles};

/// The admin port's connection cap: probes and scrapes need a handful; at the cap the oldest
/// silent or idle connection is closed, as on the PG port.
pub const ADMIN_MAX_CONNECTIONS: usize = 256;
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
    pub metrics: Arc<Metrics>,
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
        self.serve(profiles);
        Ok(())
    }

    /// Puts `profiles` in force (a reload, or another profile served through the admin route),
    /// with the served profile's `webhooks` section.
    pub fn serve(&self, profiles: Profiles) {
        self.api.serve_profile(profiles.active());
        self.profiles.store(Arc::new(profiles));
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
        let metrics = Arc::new(Metrics::new());
        let api = Api::new(ApiSettings {
            secret_key: config.secret_key.clone(),
            seed: config.seed,
            ledger: match &config.ledger {
                LedgerKind::Memory => LedgerChoice::Memory {
                    capacity: config.ledger_capacity,
                },
                LedgerKind::Stateless => LedgerChoice::Stateless,
                LedgerKind::Redis { url } => LedgerChoice::Redis(
                    RedisLedger::start(
                        url,
                        RedisOptions {
                            ttl: config.ledger_ttl,
                            timeout: config.ledger_timeout,
                            ca: config.ledger_ca.as_deref(),
                        },
                        metrics.ledger.clone(),
                    )
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?,
                ),
            },
        })
        .with_webhooks(
            crate::webhook::Webhooks::start(
                config.webhooks.clone(),
                profiles.active().webhooks.as_ref(),
                profiles.any_webhook_urls(),
                metrics.webhooks.clone(),
            )
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?,
        );
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

    /// Serves until `shutdown` resolves, then drains: readiness fails, the PG port stops
    /// accepting, every in-flight request is answered within `--shutdown-grace`. The admin
    /// port keeps answering (`/__gazua/ready` 503) until the process exits.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        let Server {
            listener,
            tls,
            admin,
            state,
            drain_tx,
        } = self;
        let config = &state.config;
        let timers = conn::Timers {
            first_request: config.header_timeout,
            idle: config.idle_timeout,
        };
        let builder = Arc::new(stack::builder(config.idle_timeout));
        let (draining_tx, draining) = watch::channel(false);

        let reloader = tokio::spawn(reload_on_sighup(state.clone()));
        let lateness = tokio::spawn(watch_lateness(state.clone()));
        let repeats = tokio::spawn(repeats::watch(state.clone()));
        let admin = admin.map(|admin| {
            let serve = Arc::new(Port {
                state: state.clone(),
                builder: builder.clone(),
                admin: true,
                tls: None,
            });
            tokio::spawn(serve_admin(admin, serve, timers, state.metrics.clone()))
        });
        let tracker = Arc::new(conn::Tracker::new(config.max_connections));
        // `--tls-listen`: its own accept loop, the same cap, clocks and request stack; a
        // connection is handshaken inside its own future (the first-request clock covers it).
        let tls_port = tls.map(|(tls_listener, tls)| {
            let serve = Arc::new(Port {
                state: state.clone(),
                builder: builder.clone(),
                admin: false,
                tls: Some(tls.clone()),
            });
            let (tracker, metrics, draining) =
                (tracker.clone(), state.metrics.clone(), draining.clone());
            let reloader = tokio::spawn(tls::reload_on_sighup(tls));
            let accept = tokio::spawn(async move {
                let mut stop = draining.clone();
                let stop = async move {
                    let _ = stop.wait_for(|draining| *draining).await;
                };
                conn::accept_loop(
                    &tls_listener,
                    &tracker,
                    serve,
                    timers,
                    &metrics,
                    &draining,
                    stop,
                )
                .await;
            });
            (reloader, accept)
        });
        let serve = Arc::new(Port {
            state: state.clone(),
            builder,
            admin: false,
            tls: None,
        });
        conn::accept_loop(
            &listener,
            &tracker,
            serve,
            timers,
            &state.metrics,
            &draining,
            shutdown,
        )
        .await;

        // The PG port stops accepting; open connections finish their requests and close.
        drop(listener);
        state.ready.store(false, Ordering::SeqCst);
        reloader.abort();
        lateness.abort();
        let _ = draining_tx.send(true);
        if let Some((tls_reloader, tls_accept)) = tls_port {
            tls_reloader.abort();
            // Stops accepting at the drain flag, as the PG port has.
            let _ = tls_accept.await;
        }
        repeats.abort();
        let grace = config.shutdown_grace;
        let drain_started = Instant::now();
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
        if tokio::time::timeout(grace, tracker.drained())
            .await
            .is_err()
        {
            tracing::warn!(
                open = tracker.len(),
                "shutdown grace ran out with connections still open"
            );
        }
        tracing::info!("drained");
        // Webhooks still pending get what is left of the grace, then are reported abandoned.
        state
            .api
            .drain_webhooks(grace.saturating_sub(drain_started.elapsed()))
            .await;
        // The admin port answered readiness 503 all along the drain; it ends with the server.
        if let Some(admin) = admin {
            admin.abort();
        }
        Ok(())
    }
}

/// Serves one listener's connections through the request stack.
struct Port {
    state: Arc<State>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    /// The `--admin-listen` port: ops routes only.
    admin: bool,
    /// `--tls-listen`: each connection is handshaken first.
    tls: Option<Arc<tls::Tls>>,
}

impl conn::ServeConn for Port {
    fn serve(&self, stream: TcpStream, conn: Arc<conn::Conn>) -> conn::Connection {
        let control = fault::Control::default();
        let io = fault::FaultIo::new(stream, control.clone());
        // One graceful signal for the whole connection, the handshake included: asked during
        // the handshake, it is seen as soon as the requests start being served.
        let (graceful_tx, graceful_rx) = tokio::sync::oneshot::channel::<()>();
        let future: std::pin::Pin<Box<dyn Future<Output = ()> + Send>> = match self.tls.clone() {
            None => Box::pin(self.serve_io(io, control, conn, graceful_rx)),
            Some(tls) => {
                // The handshake first (the profile in force when the connection arrives sets
                // its delay and refusal), then the same serving as plain TCP over the TLS
                // stream.
                let port = Port {
                    state: self.state.clone(),
                    builder: self.builder.clone(),
                    admin: self.admin,
                    tls: None,
                };
                Box::pin(async move {
                    let knob = port.state.profiles.load().active().tls.clone();
                    let max = port.state.config.max_latency;
                    let Some(io) = tls.handshake(io, knob.as_ref(), max).await else {
                        return;
                    };
                    port.serve_io(io, control, conn, graceful_rx).await;
                })
            }
        };
        conn::Connection {
            future,
            graceful: Box::new(move || {
                let _ = graceful_tx.send(());
            }),
        }
    }
}

impl Port {
    /// Serves one connection's requests, plain TCP or the TLS stream over it, until it ends;
    /// `graceful` asks it to finish its requests and close.
    fn serve_io<I>(
        &self,
        io: I,
        control: fault::Control,
        conn: Arc<conn::Conn>,
        mut graceful: tokio::sync::oneshot::Receiver<()>,
    ) -> impl Future<Output = ()> + Send + 'static
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let state = self.state.clone();
        let admin = self.admin;
        let io = TokioIo::new(io);
        let handler = tower::service_fn(move |req| {
            // Marks the connection busy (not idle, not silent) while the request lives.
            let request = conn.request();
            let (state, control) = (state.clone(), control.clone());
            async move {
                let _request = request;
                if admin {
                    lifecycle::handle_ops(state, req).await
                } else {
                    lifecycle::handle(state, control, req).await
                }
            }
        });
        let service =
            TowerToHyperService::new(stack::layered(handler, self.state.metrics.panics.clone()));
        let connection = self.builder.serve_connection(io, service).into_owned();
        async move {
            let mut connection = std::pin::pin!(connection);
            // The connection first; the graceful signal only when it fired (see `WhenWoken`).
            let result = tokio::select! {
                biased;
                result = connection.as_mut() => result,
                Ok(()) = conn::WhenWoken::new(&mut graceful) => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = result {
                tracing::debug!(%error, "connection ended with an error");
            }
        }
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

/// The `--admin-listen` port: the ops routes only, with the same clocks as the PG port and a
/// small cap of its own ([`ADMIN_MAX_CONNECTIONS`]), so a flood of the PG port never reaches
/// the probes. It serves until the server ends — through the drain, so readiness is seen
/// failing.
async fn serve_admin(
    listener: TcpListener,
    serve: Arc<Port>,
    timers: conn::Timers,
    metrics: Arc<Metrics>,
) {
    let tracker = Arc::new(conn::Tracker::new(ADMIN_MAX_CONNECTIONS));
    // Never told to drain: the admin port lives until the process ends.
    let (_never, draining) = watch::channel(false);
    conn::accept_loop(
        &listener,
        &tracker,
        serve,
        timers,
        &metrics,
        &draining,
        std::future::pending(),
    )
    .await;
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
