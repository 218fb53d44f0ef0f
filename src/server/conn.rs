//! Connections: the accept loop, the deadlines of a connection's life, and the cap.
//!
//! A connection's life has three clocks, chosen so that no client can hold a slot for nothing
//! while a real client (or a load balancer's idle pool) is never cut short:
//!
//! - **first request** (`--header-timeout`, from accept): a connection that has not sent one
//!   complete request head by then is closed. This also covers hyper-util's HTTP/1-vs-HTTP/2
//!   detection, where no hyper timer runs.
//! - **idle between requests** (`--idle-timeout`, 90 s): above common load balancers' 60 s
//!   idle timeout; the watch below closes the connection gracefully (HTTP/2: a GOAWAY), for
//!   both protocols, since HTTP/2 has no timer of hyper's for it.
//! - **the request body** (`--body-timeout`, from the head's arrival) is the request's own
//!   clock, in `lifecycle::read_body`.
//!
//! **The cap.** Every connection is accepted: a permit taken before `accept` left the health
//! check in the backlog behind thousands of silent clients. At the cap, room is made by
//! closing the oldest connection that has never sent a complete request head, else the oldest
//! idle keep-alive connection; only when every connection is mid-request does the newcomer
//! wait (and further clients wait in the backlog) — then Gazua is really full.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use crate::metrics::{CloseReason, GaugeGuard, Metrics};

/// The clocks of a connection (see the module doc).
#[derive(Debug, Clone, Copy)]
pub struct Timers {
    pub first_request: Duration,
    pub idle: Duration,
}

/// One open connection, as the cap and the clocks see it.
pub struct Conn {
    id: u64,
    /// A complete request head has arrived at least once.
    seen_request: AtomicBool,
    in_flight: AtomicU32,
    /// When the last request ended, in ns since the tracker's epoch.
    idle_since_ns: AtomicU64,
    epoch: Instant,
    /// Told to close at once (shed at the cap).
    shed: Notify,
}

impl Conn {
    /// Marks a request as started on this connection until the guard drops.
    pub fn request(self: &Arc<Conn>) -> RequestGuard {
        self.seen_request.store(true, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        RequestGuard(self.clone())
    }

    /// `None` while a request is in flight.
    fn idle_since(&self) -> Option<Instant> {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return None;
        }
        Some(self.epoch + Duration::from_nanos(self.idle_since_ns.load(Ordering::Relaxed)))
    }
}

/// Held by a request for as long as its handler runs.
pub struct RequestGuard(Arc<Conn>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let conn = &self.0;
        let now = Instant::now().saturating_duration_since(conn.epoch);
        conn.idle_since_ns
            .store(now.as_nanos() as u64, Ordering::Relaxed);
        conn.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The open connections of one listener, oldest first.
pub struct Tracker {
    open: Mutex<BTreeMap<u64, Arc<Conn>>>,
    next_id: AtomicU64,
    /// A connection ended: room for a waiting newcomer, or the drain may be over.
    freed: Notify,
    cap: usize,
    epoch: Instant,
}

impl Tracker {
    pub fn new(cap: usize) -> Tracker {
        Tracker {
            open: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(0),
            freed: Notify::new(),
            cap: cap.max(1),
            epoch: Instant::now(),
        }
    }

    pub fn len(&self) -> usize {
        self.open.lock().expect("tracker lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn register(self: &Arc<Tracker>) -> Registered {
        let conn = Arc::new(Conn {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            seen_request: AtomicBool::new(false),
            in_flight: AtomicU32::new(0),
            idle_since_ns: AtomicU64::new(0),
            epoch: self.epoch,
            shed: Notify::new(),
        });
        self.open
            .lock()
            .expect("tracker lock")
            .insert(conn.id, conn.clone());
        Registered {
            tracker: self.clone(),
            conn,
        }
    }

    /// Closes the oldest connection that never sent a request head, else the oldest idle one.
    /// Linear in the open connections, and only run at the cap.
    fn shed_one(&self) -> Option<CloseReason> {
        let mut open = self.open.lock().expect("tracker lock");
        let silent = open
            .values()
            .find(|c| !c.seen_request.load(Ordering::Relaxed))
            .map(|c| (c.id, CloseReason::ShedSilent));
        let victim = silent.or_else(|| {
            open.values()
                .find(|c| c.in_flight.load(Ordering::Relaxed) == 0)
                .map(|c| (c.id, CloseReason::ShedIdle))
        });
        let (id, reason) = victim?;
        if let Some(conn) = open.remove(&id) {
            conn.shed.notify_one();
        }
        Some(reason)
    }

    /// Waits until the cap has room for one more connection, shedding if it can.
    async fn make_room(&self, metrics: &Metrics) {
        while self.len() >= self.cap {
            if let Some(reason) = self.shed_one() {
                metrics.closed(reason);
                continue;
            }
            self.freed.notified().await;
        }
    }

    /// Resolves once every connection has ended.
    pub async fn drained(&self) {
        while !self.is_empty() {
            self.freed.notified().await;
        }
    }
}

/// Removes its connection from the tracker when the connection's task ends.
struct Registered {
    tracker: Arc<Tracker>,
    conn: Arc<Conn>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.tracker
            .open
            .lock()
            .expect("tracker lock")
            .remove(&self.conn.id);
        self.tracker.freed.notify_one();
    }
}

/// What the accept loop needs to serve one accepted stream.
pub trait ServeConn: Send + Sync + 'static {
    /// The connection's future; it must resolve when the connection ends.
    fn serve(&self, stream: TcpStream, conn: Arc<Conn>) -> Connection;
}

/// A served connection with the handle to end it gracefully.
pub struct Connection {
    pub future: std::pin::Pin<Box<dyn Future<Output = ()> + Send>>,
    /// Asks the connection to finish its requests and close (HTTP/2: GOAWAY).
    pub graceful: Box<dyn FnOnce() + Send>,
}

/// Accepts until `stop` resolves: never ends on an accept error, makes room at the cap.
pub async fn accept_loop(
    listener: &TcpListener,
    tracker: &Arc<Tracker>,
    serve: Arc<dyn ServeConn>,
    timers: Timers,
    metrics: &Arc<Metrics>,
    draining: &watch::Receiver<bool>,
    stop: impl Future<Output = ()>,
) {
    let mut stop = pin!(stop);
    let mut backoff = Backoff::default();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    backoff.succeeded();
                    stream
                }
                Err(error) => {
                    // Out of file descriptors (EMFILE) or a connection reset before accept:
                    // back off, keep serving.
                    tokio::select! {
                        () = backoff.failed(&error) => continue,
                        () = &mut stop => return,
                    }
                }
            },
            () = &mut stop => return,
        };
        tokio::select! {
            () = tracker.make_room(metrics) => {}
            () = &mut stop => return,
        }
        let _ = stream.set_nodelay(true);
        let registered = tracker.register();
        let connection = serve.serve(stream, registered.conn.clone());
        let guard = GaugeGuard::new(&metrics.open_connections);
        let metrics = metrics.clone();
        let draining = draining.clone();
        tokio::spawn(async move {
            let _guard = guard;
            let reason = watch_connection(connection, &registered.conn, timers, draining).await;
            if let Some(reason) = reason {
                metrics.closed(reason);
            }
            drop(registered);
        });
    }
}

/// Drives one connection under its clocks; says why Gazua closed it, if Gazua did.
///
/// The connection's task wakes for every read and write of its traffic, and re-polling the
/// watchers (a `Notify` and a `watch` each take a lock to re-register, the clock a timer
/// entry) on each of those wake-ups cost more than a request's metrics. So the connection is
/// polled first, and the watchers, behind [`WhenWoken`], only when one of them was woken.
async fn watch_connection(
    connection: Connection,
    conn: &Conn,
    timers: Timers,
    draining: watch::Receiver<bool>,
) -> Option<CloseReason> {
    let Connection { future, graceful } = connection;
    // Set by the watchers when they close an idle connection: reported once it has ended.
    let idle_closed = AtomicBool::new(false);
    let watchers = pin!(watchers(conn, timers, draining, graceful, &idle_closed));
    tokio::select! {
        biased;
        () = future => idle_closed.load(Ordering::Relaxed).then_some(CloseReason::IdleTimeout),
        closed = WhenWoken::new(watchers) => closed,
    }
}

/// The clocks, the shed and the drain of one connection. Resolves only when the connection
/// is to be dropped at once (shed, or no first request in time); a graceful close (drain, idle)
/// is asked through `graceful`, and an idle one marked in `idle_closed`.
async fn watchers(
    conn: &Conn,
    timers: Timers,
    mut draining: watch::Receiver<bool>,
    graceful: Box<dyn FnOnce() + Send>,
    idle_closed: &AtomicBool,
) -> Option<CloseReason> {
    let mut graceful = Some(graceful);
    let mut closing = false;
    let check = tokio::time::sleep(timers.first_request);
    let mut check = pin!(check);
    loop {
        tokio::select! {
            () = conn.shed.notified() => return None,
            Ok(_) = draining.wait_for(|d| *d), if !closing => {
                closing = true;
                if let Some(graceful) = graceful.take() {
                    graceful();
                }
            }
            () = check.as_mut(), if !closing => {
                if !conn.seen_request.load(Ordering::Relaxed) {
                    return Some(CloseReason::FirstRequestTimeout);
                }
                match conn.idle_since() {
                    Some(since) if since + timers.idle <= Instant::now() => {
                        closing = true;
                        idle_closed.store(true, Ordering::Relaxed);
                        if let Some(graceful) = graceful.take() {
                            graceful();
                        }
                    }
                    Some(since) => check.as_mut().reset(since + timers.idle),
                    None => check.as_mut().reset(Instant::now() + timers.idle),
                }
            }
        }
    }
}

/// A future polled only on its first poll and after its own waker fired: inside a `select!`
/// beside a busy future, it costs one atomic load on the wake-ups that are not its own.
pub struct WhenWoken<F> {
    future: F,
    woken: Arc<Woken>,
    /// The task's waker as last handed to `woken`, compared here without taking its lock.
    task: Option<Waker>,
}

impl<F> WhenWoken<F> {
    pub fn new(future: F) -> WhenWoken<F> {
        WhenWoken {
            future,
            woken: Arc::new(Woken {
                woken: AtomicBool::new(true),
                task: Mutex::new(None),
            }),
            task: None,
        }
    }
}

/// The waker a [`WhenWoken`] gives its future: marks it woken, then wakes the task.
struct Woken {
    woken: AtomicBool,
    task: Mutex<Option<Waker>>,
}

impl Wake for Woken {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        if let Some(task) = &*self.task.lock().expect("waker lock") {
            task.wake_by_ref();
        }
    }
}

impl<F: Future + Unpin> Future for WhenWoken<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        if !this.task.as_ref().is_some_and(|t| t.will_wake(cx.waker())) {
            *this.woken.task.lock().expect("waker lock") = Some(cx.waker().clone());
            this.task = Some(cx.waker().clone());
        }
        if !this.woken.woken.load(Ordering::Acquire) {
            return Poll::Pending;
        }
        // Cleared before the poll: a wake-up during it is seen by the poll or sets it again.
        this.woken.woken.store(false, Ordering::Release);
        let waker = Waker::from(this.woken.clone());
        Pin::new(&mut this.future).poll(&mut Context::from_waker(&waker))
    }
}

/// Accept errors: exponential backoff from 5 ms to 1 s, and at most one log line per 10 s
/// saying how many failed since the last one (EMFILE otherwise logs dozens of lines a second).
pub struct Backoff {
    delay: Duration,
    failures: u64,
    logged_at: Option<Instant>,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            delay: Backoff::FIRST,
            failures: 0,
            logged_at: None,
        }
    }
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(5);
    const MAX: Duration = Duration::from_secs(1);
    const LOG_EVERY: Duration = Duration::from_secs(10);

    pub fn succeeded(&mut self) {
        self.delay = Backoff::FIRST;
    }

    /// Logs (rate-limited) and sleeps; the returned future owns no borrow of `error`.
    pub fn failed(&mut self, error: &std::io::Error) -> impl Future<Output = ()> + use<> {
        self.failures += 1;
        let now = Instant::now();
        if self
            .logged_at
            .is_none_or(|at| now.duration_since(at) >= Backoff::LOG_EVERY)
        {
            tracing::warn!(
                %error,
                failures = self.failures,
                retry_in_ms = self.delay.as_millis() as u64,
                "accept failed; backing off (at most one such line per 10 s, with the count since the last)"
            );
            self.logged_at = Some(now);
            self.failures = 0;
        }
        let delay = self.delay;
        self.delay = (self.delay * 2).min(Backoff::MAX);
        tokio::time::sleep(delay)
    }

    /// The delay the next failure will wait.
    pub fn next_delay(&self) -> Duration {
        self.delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn accept_errors_back_off_exponentially_and_log_once_per_window() {
        let mut backoff = Backoff::default();
        let error = std::io::Error::other("too many open files");
        let mut waits = Vec::new();
        for _ in 0..10 {
            waits.push(backoff.next_delay().as_millis());
            backoff.failed(&error).await;
        }
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        // One line at the first failure; the next ones are counted until 10 s have passed.
        assert_eq!(backoff.failures, 9);
        backoff.succeeded();
        assert_eq!(backoff.next_delay(), Duration::from_millis(5));
    }

    #[tokio::test(start_paused = true)]
    async fn at_the_cap_a_silent_connection_goes_first_then_an_idle_one_never_a_busy_one() {
        let metrics = Metrics::new();
        let open = |tracker: &Tracker, conn: &Arc<Conn>| {
            tracker.open.lock().unwrap().contains_key(&conn.id)
        };
        let tracker = Arc::new(Tracker::new(3));
        let busy = tracker.register();
        let _request = busy.conn.request();
        let idle = tracker.register();
        drop(idle.conn.request());
        let silent = tracker.register();
        tracker.make_room(&metrics).await;
        assert!(!open(&tracker, &silent.conn), "the silent one goes first");
        assert!(open(&tracker, &idle.conn) && open(&tracker, &busy.conn));

        let tracker = Arc::new(Tracker::new(2));
        let busy = tracker.register();
        let _request = busy.conn.request();
        let idle = tracker.register();
        drop(idle.conn.request());
        tracker.make_room(&metrics).await;
        assert!(
            !open(&tracker, &idle.conn),
            "with no silent one, the idle one goes"
        );
        assert!(
            open(&tracker, &busy.conn),
            "a connection mid-request is never shed"
        );
    }
}
