//! Precise waits: an answer leaves at its decided moment, not at tokio's next 1 ms tick.
//!
//! Tokio's timer wheel ticks every millisecond and rounds every deadline up, so a plain
//! `sleep_until` answers 1–1.5 ms late at idle and up to 5 ms late under load. A wait here has
//! two stages. The coarse one sleeps on tokio's timer until [`FINE_SPAN`] before the deadline:
//! cheap, and it keeps the worker out of deep idle. The fine one registers the deadline in a
//! min-heap served by one timerfd per server, registered with the runtime's reactor; a driver
//! task wakes every due waiter when it fires. A timerfd ignores the kernel's timer slack, so it
//! fires within tens of microseconds of its moment.
//!
//! Every distinct wake-up costs CPU (~23 µs on a 2-vCPU VM), and under load nearly every
//! answer has its own deadline. `--timer-precision` is the least gap between two wake-ups of
//! the timerfd while several answers wait: answers due within one gap leave together, at most
//! that much late. A lone waiter is woken at its moment.
//!
//! Never early, by construction: a waiter's real-clock deadline is taken at or after its tokio
//! deadline, the timerfd is armed no sooner than it, and the driver releases only the entries
//! whose deadline the real clock has passed.
//!
//! On tokio's paused clock (tests using `start_paused`) only tokio's own timer follows time:
//! such waits, and every wait when the setting is off, are a plain `sleep_until`.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant as RealInstant};

use rustix::time::{
    Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, timerfd_create,
    timerfd_settime,
};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Where the coarse stage hands over: above tokio's 1 ms tick and its rounding up, with room
/// for a busy worker. It also bounds how long a cancelled wait stays in the heap.
pub const FINE_SPAN: Duration = Duration::from_millis(3);

/// One server's precise timer. Owned by the server's state, not the process: each runtime has
/// its own reactor, and a timer registered with another runtime's reactor never fires.
pub struct Timer {
    fine: Option<Arc<Fine>>,
    driver: Option<JoinHandle<()>>,
}

impl Timer {
    /// A timer whose wake-ups are at least `precision` apart; `None` is tokio's timer alone.
    /// Called inside the runtime that will wait on it. Should the timerfd not be available,
    /// the waits fall back to tokio's timer (logged once).
    pub fn new(precision: Option<Duration>) -> Timer {
        let Some(min_gap) = precision else {
            return Timer::plain();
        };
        match Fine::new(min_gap) {
            Ok(fine) => {
                let fine = Arc::new(fine);
                let driver = tokio::spawn(drive(fine.clone()));
                Timer {
                    fine: Some(fine),
                    driver: Some(driver),
                }
            }
            Err(error) => {
                tracing::warn!(%error, "no timerfd: answers wait on tokio's 1 ms timer");
                Timer::plain()
            }
        }
    }

    fn plain() -> Timer {
        Timer {
            fine: None,
            driver: None,
        }
    }

    /// Whether waits use the fine stage (false when off, or when the timerfd is unavailable).
    pub fn is_precise(&self) -> bool {
        self.fine.is_some()
    }

    /// Deadlines in the fine stage's heap, cancelled ones included until their moment passes.
    pub fn pending(&self) -> usize {
        self.fine.as_ref().map_or(0, |fine| fine.lock().heap.len())
    }

    /// Resolves at `deadline` or later, never sooner. Cancel-safe: a dropped wait leaves at most
    /// a heap entry until its deadline, which wakes no one.
    pub async fn sleep_until(&self, deadline: Instant) {
        let Some(fine) = &self.fine else {
            return tokio::time::sleep_until(deadline).await;
        };
        if let Some(handover) = deadline.checked_sub(FINE_SPAN)
            && handover > Instant::now()
        {
            tokio::time::sleep_until(handover).await;
        }
        let Some(at) = real_deadline(deadline) else {
            return tokio::time::sleep_until(deadline).await;
        };
        if at <= RealInstant::now() {
            return;
        }
        let fired = match fine.register(at) {
            Some(fired) => fired.await.is_ok(),
            None => false,
        };
        if !fired {
            // The fine stage failed (logged once): tokio's timer still keeps the promise.
            tokio::time::sleep_until(deadline).await;
        }
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        if let Some(driver) = &self.driver {
            driver.abort();
        }
    }
}

/// `deadline` on the real clock (the timerfd's), or `None` when tokio's clock is paused.
///
/// A paused tokio clock reads the same instant twice with real time passing in between; a
/// running one, on Linux's nanosecond monotonic clock, does not (and should it, the wait is
/// merely tokio's, not wrong). The real reading is taken after the first tokio one, so the
/// returned instant is at or after the deadline, never before.
fn real_deadline(deadline: Instant) -> Option<RealInstant> {
    let before = Instant::now();
    let real = RealInstant::now();
    if Instant::now() == before {
        return None;
    }
    Some(real + deadline.saturating_duration_since(before))
}

/// The fine stage: a timerfd in the reactor and the heap of deadlines it serves.
struct Fine {
    fd: AsyncFd<OwnedFd>,
    min_gap: Duration,
    queue: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    /// A max-heap of reversed entries: the earliest deadline on top.
    heap: BinaryHeap<Entry>,
    next_seq: u64,
    /// When the timerfd will fire, if armed.
    armed: Option<RealInstant>,
    last_wake: Option<RealInstant>,
    /// The timerfd failed: no new entries; waiters fall back to tokio's timer.
    broken: bool,
}

struct Entry {
    at: RealInstant,
    /// Ties broken by arrival, so equal deadlines are released in order.
    seq: u64,
    wake: oneshot::Sender<()>,
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Entry {}

impl Fine {
    fn new(min_gap: Duration) -> io::Result<Fine> {
        let fd = timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )?;
        // `register_with_interest`, the successor of this constructor, is an `unsafe fn` whose
        // contract is that the descriptor stays open and the same while registered — which an
        // `OwnedFd` moved into the `AsyncFd` guarantees. This crate forbids `unsafe`, and for an
        // `OwnedFd` the safe, deprecated constructor upholds the same contract.
        #[allow(deprecated)]
        let fd = AsyncFd::with_interest(fd, Interest::READABLE)?;
        Ok(Fine {
            fd,
            min_gap,
            queue: Mutex::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Nothing panics while holding the lock; a poisoned queue is still consistent.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Enters a deadline; the receiver resolves once the real clock has passed it, or fails
    /// if the timerfd did. `None` when the timerfd has already failed.
    fn register(&self, at: RealInstant) -> Option<oneshot::Receiver<()>> {
        let (wake, fired) = oneshot::channel();
        let mut queue = self.lock();
        if queue.broken {
            return None;
        }
        let seq = queue.next_seq;
        queue.next_seq += 1;
        queue.heap.push(Entry { at, seq, wake });
        let fire = self.fire_at(&queue, at);
        if queue.armed.is_none_or(|armed| fire < armed) {
            self.arm(&mut queue, fire);
        }
        Some(fired)
    }

    /// When the timerfd may fire for a deadline: not before it, and not within the least gap
    /// after the last wake-up — unless the waiter is alone. The gap batches answers that
    /// compete for wake-ups (under load); a lone waiter has no one to share its wake-up with,
    /// and holding it back would only make one client's back-to-back requests late.
    fn fire_at(&self, queue: &Queue, at: RealInstant) -> RealInstant {
        match queue.last_wake {
            Some(last) if queue.heap.len() > 1 => at.max(last + self.min_gap),
            _ => at,
        }
    }

    fn arm(&self, queue: &mut Queue, fire: RealInstant) {
        // Relative to a clock reading taken before the call: the kernel's expiry is at or
        // after `fire`. Zero would disarm, so a due time becomes one nanosecond.
        let delay = fire
            .saturating_duration_since(RealInstant::now())
            .max(Duration::from_nanos(1));
        let spec = Itimerspec {
            it_interval: Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: Timespec::try_from(delay).unwrap_or(Timespec {
                tv_sec: i64::MAX,
                tv_nsec: 0,
            }),
        };
        match timerfd_settime(self.fd.get_ref(), TimerfdTimerFlags::empty(), &spec) {
            Ok(_) => queue.armed = Some(fire),
            Err(error) => Self::fail(queue, error.into()),
        }
    }

    /// The timerfd failed: every waiter, present and future, falls back to tokio's timer.
    fn fail(queue: &mut Queue, error: io::Error) {
        if !queue.broken {
            tracing::error!(%error, "the precise timer failed: answers wait on tokio's 1 ms timer");
        }
        queue.broken = true;
        queue.armed = None;
        // Dropping the senders fails each waiter's receiver.
        queue.heap.clear();
    }

    /// Takes every entry the real clock has passed into `due`, then re-arms for the next one.
    fn take_due(&self, due: &mut Vec<oneshot::Sender<()>>) {
        let now = RealInstant::now();
        let mut queue = self.lock();
        while queue.heap.peek().is_some_and(|entry| entry.at <= now) {
            if let Some(entry) = queue.heap.pop() {
                due.push(entry.wake);
            }
        }
        queue.last_wake = Some(now);
        queue.armed = None;
        if let Some(next) = queue.heap.peek().map(|entry| entry.at) {
            let fire = self.fire_at(&queue, next);
            self.arm(&mut queue, fire);
        }
    }
}

/// The driver: on each expiry of the timerfd, wakes every due waiter (outside the lock, so
/// registering never waits on a wake-up) and re-arms.
async fn drive(fine: Arc<Fine>) {
    let mut due = Vec::new();
    loop {
        let mut ready = match fine.fd.readable().await {
            Ok(ready) => ready,
            Err(error) => return Fine::fail(&mut fine.lock(), error),
        };
        let mut expirations = [0u8; 8];
        match rustix::io::read(fine.fd.get_ref(), &mut expirations) {
            // One-shot: not readable again until re-armed, which happens after this.
            Ok(_) => ready.clear_ready(),
            Err(rustix::io::Errno::AGAIN) => {
                ready.clear_ready();
                continue;
            }
            Err(error) => return Fine::fail(&mut fine.lock(), error.into()),
        }
        fine.take_due(&mut due);
        for wake in due.drain(..) {
            // A dropped receiver is a cancelled wait: nothing to wake.
            let _ = wake.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_earliest_deadline_is_on_top_and_ties_go_in_order() {
        let base = RealInstant::now();
        let mut heap = BinaryHeap::new();
        for (ms, seq) in [(5, 0), (1, 1), (3, 2), (1, 3)] {
            let (wake, _) = oneshot::channel();
            heap.push(Entry {
                at: base + Duration::from_millis(ms),
                seq,
                wake,
            });
        }
        let order: Vec<u64> = std::iter::from_fn(|| heap.pop().map(|e| e.seq)).collect();
        assert_eq!(order, [1, 3, 2, 0]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_gap_holds_back_competing_waiters_but_not_a_lone_one() {
        let gap = Duration::from_millis(3);
        let fine = Fine::new(gap).unwrap();
        let mut queue = fine.lock();
        let last = RealInstant::now();
        queue.last_wake = Some(last);
        let soon = last + Duration::from_micros(250);
        let entry = |seq| Entry {
            at: soon,
            seq,
            wake: oneshot::channel().0,
        };
        queue.heap.push(entry(0));
        assert_eq!(fine.fire_at(&queue, soon), soon);
        queue.heap.push(entry(1));
        assert_eq!(fine.fire_at(&queue, soon), last + gap);
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_paused_clock_is_detected_and_waits_follow_it() {
        assert_eq!(real_deadline(Instant::now()), None);
        let timer = Timer::new(Some(Duration::ZERO));
        assert!(timer.is_precise());
        let start = Instant::now();
        // A minute of paused time passes at once; on the real clock this would hang the test.
        timer.sleep_until(start + Duration::from_secs(60)).await;
        let waited = start.elapsed();
        assert!(waited >= Duration::from_secs(60), "waited {waited:?}");
        assert!(waited < Duration::from_secs(61), "waited {waited:?}");
        assert_eq!(timer.pending(), 0);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_running_clock_maps_the_deadline_no_sooner() {
        let deadline = Instant::now() + Duration::from_millis(10);
        let real = real_deadline(deadline).expect("a running clock");
        assert!(real >= deadline.into_std());
    }
}
