//! A PG's limits, modelled without costing Gazua anything: `capacity` as a virtual M/G/c queue
//! (a request holds a virtual worker for its decided latency and waits for the earliest free
//! one; no thread or task is held), and `rate_limit` as a token bucket.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::directive::{Mix, Outcome};

/// What the virtual queue did with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// The request is served: its response is due `total` after arrival (the time it waits for
    /// a worker, then its own latency).
    Admitted { total: Duration },
    /// More than `queue` requests are already waiting: the request gets `overflow`.
    Overflow,
}

/// `concurrency` virtual workers behind a FIFO queue of at most `queue` waiting requests.
#[derive(Debug)]
pub struct CapacityModel {
    pub concurrency: usize,
    pub queue: usize,
    /// The outcome of a request refused for a full queue.
    pub overflow: Mix<Outcome>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// When each busy worker becomes free; at most `concurrency` entries (a missing entry is a
    /// worker free now).
    busy_until: BinaryHeap<Reverse<Instant>>,
    /// When each waiting request starts service, ascending: in a FIFO multi-server queue start
    /// times never decrease in arrival order, so the front is always the next to start.
    waiting: VecDeque<Instant>,
    /// The latest arrival seen: threads take `now` before the lock, so arrivals may reach it a
    /// hair out of order; the model's clock never goes back.
    clock: Option<Instant>,
}

impl CapacityModel {
    pub fn new(concurrency: usize, queue: usize, overflow: Mix<Outcome>) -> CapacityModel {
        CapacityModel {
            concurrency: concurrency.max(1),
            queue,
            overflow,
            state: Mutex::new(State::default()),
        }
    }

    /// Admits a request arriving at `arrival` whose own latency is `service`: it takes the
    /// earliest free worker, waiting for it if all are busy, unless `queue` requests already
    /// wait. The cost is one short lock and O(log concurrency).
    pub fn admit(&self, arrival: Instant, service: Duration) -> Admission {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = s.clock.map_or(arrival, |c| c.max(arrival));
        s.clock = Some(now);
        while s.waiting.front().is_some_and(|start| *start <= now) {
            s.waiting.pop_front();
        }
        let start = if s.busy_until.len() < self.concurrency {
            now
        } else {
            let Reverse(free_at) = *s.busy_until.peek().expect("concurrency is at least 1");
            free_at.max(now)
        };
        let waits = start > now;
        if waits && s.waiting.len() >= self.queue {
            return Admission::Overflow;
        }
        if s.busy_until.len() >= self.concurrency {
            s.busy_until.pop();
        }
        s.busy_until.push(Reverse(start + service));
        if waits {
            s.waiting.push_back(start);
        }
        Admission::Admitted {
            total: start.saturating_duration_since(arrival) + service,
        }
    }

    /// How many requests wait for a worker at `now` (the `gazua_capacity_queue_depth` gauge).
    pub fn queue_depth(&self, now: Instant) -> usize {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.waiting.len() - s.waiting.partition_point(|start| *start <= now)
    }
}

/// A token bucket of `rps` tokens per second holding at most `burst`, as GCRA on one atomic:
/// lock-free, a load and a compare-exchange per request.
#[derive(Debug)]
pub struct RateLimiter {
    pub rps: f64,
    pub burst: usize,
    /// The outcome of a request over the limit.
    pub outcome: Mix<Outcome>,
    /// Time between two tokens, in nanoseconds.
    interval: u64,
    /// How far ahead of now the theoretical arrival time may run: (burst − 1) intervals.
    tolerance: u64,
    epoch: Instant,
    /// The theoretical arrival time of the next conforming request, in nanoseconds after
    /// `epoch`.
    tat: AtomicU64,
}

impl RateLimiter {
    pub fn new(rps: f64, burst: usize, outcome: Mix<Outcome>, epoch: Instant) -> RateLimiter {
        let interval = ((1e9 / rps).round() as u64).max(1);
        RateLimiter {
            rps,
            burst,
            outcome,
            interval,
            tolerance: interval.saturating_mul(burst.max(1) as u64 - 1),
            epoch,
            tat: AtomicU64::new(0),
        }
    }

    /// Whether a request arriving at `now` is within the limit (and takes a token if so).
    pub fn admit(&self, now: Instant) -> bool {
        let t =
            u64::try_from(now.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX);
        let mut tat = self.tat.load(Ordering::Relaxed);
        loop {
            let from = tat.max(t);
            if from - t > self.tolerance {
                return false;
            }
            match self.tat.compare_exchange_weak(
                tat,
                from.saturating_add(self.interval),
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(current) => tat = current,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(concurrency: usize, queue: usize) -> CapacityModel {
        CapacityModel::new(concurrency, queue, Mix::single(Outcome::Throttled))
    }

    /// Offers `rps` requests per second of `service` each, evenly spaced, for `secs` seconds;
    /// returns the mean total latency of the admitted, the largest, and the overflow count.
    fn offer(
        m: &CapacityModel,
        rps: u64,
        secs: u64,
        service: Duration,
    ) -> (Duration, Duration, usize) {
        let t0 = Instant::now();
        let gap = Duration::from_nanos(1_000_000_000 / rps);
        let (mut sum, mut max, mut n, mut overflow) = (Duration::ZERO, Duration::ZERO, 0u32, 0);
        for i in 0..rps * secs {
            match m.admit(t0 + gap * i as u32, service) {
                Admission::Admitted { total } => {
                    sum += total;
                    max = max.max(total);
                    n += 1;
                }
                Admission::Overflow => overflow += 1,
            }
        }
        (sum / n.max(1), max, overflow)
    }

    #[test]
    fn under_capacity_latency_is_the_service_time() {
        // 50 workers × 100 ms serve up to 500 rps; 200 rps uses 40% of them.
        let m = model(50, 100);
        let (mean, max, overflow) = offer(&m, 200, 10, Duration::from_millis(100));
        assert_eq!(mean, Duration::from_millis(100));
        assert_eq!(max, Duration::from_millis(100));
        assert_eq!(overflow, 0);
    }

    #[test]
    fn at_saturation_the_queue_grows_then_overflows() {
        // 800 rps against 500 rps of capacity: the queue grows by 300 a second until it holds
        // 1000, and the wait then settles at 1000 / 500 rps = 2 s on top of the service.
        let m = model(50, 1000);
        let t0 = Instant::now();
        let service = Duration::from_millis(100);
        let gap = Duration::from_micros(1250);
        let mut first_overflow = None;
        let mut totals = Vec::new();
        for i in 0..8000u32 {
            let now = t0 + gap * i;
            match m.admit(now, service) {
                Admission::Admitted { total } => totals.push((i, total)),
                Admission::Overflow => {
                    first_overflow.get_or_insert(i);
                }
            }
        }
        // Latency grows with the backlog: after 1 s of 300 excess rps, ~300 wait → ~0.7 s.
        let at = |i: u32| totals.iter().find(|(j, _)| *j >= i).unwrap().1;
        let one_second = at(800);
        assert!(
            (Duration::from_millis(650)..Duration::from_millis(750)).contains(&one_second),
            "{one_second:?}"
        );
        // The queue fills after about 1000 / 300 = 3.33 s = arrival ~2667.
        let first = first_overflow.expect("the queue overflows");
        assert!((2600..2750).contains(&first), "first overflow at {first}");
        // From then on the admitted wait is bounded by the queue: ~1000 / 500 s + service.
        let late = totals.last().unwrap().1;
        assert!(
            (Duration::from_millis(2000)..=Duration::from_millis(2150)).contains(&late),
            "{late:?}"
        );
        // Throughput is capped at capacity: ~500 of the 800 offered per second are admitted.
        let admitted_last_2s = totals.iter().filter(|(i, _)| *i >= 6400).count();
        assert!(
            (950..=1050).contains(&admitted_last_2s),
            "{admitted_last_2s}"
        );
        assert!(m.queue_depth(t0 + gap * 7999) >= 990);
    }

    #[test]
    fn a_zero_queue_refuses_as_soon_as_all_workers_are_busy() {
        let m = model(2, 0);
        let now = Instant::now();
        let s = Duration::from_millis(100);
        assert_eq!(m.admit(now, s), Admission::Admitted { total: s });
        assert_eq!(m.admit(now, s), Admission::Admitted { total: s });
        assert_eq!(m.admit(now, s), Admission::Overflow);
        // When a worker frees up, the next request is served at once.
        assert_eq!(m.admit(now + s, s), Admission::Admitted { total: s });
        assert_eq!(m.queue_depth(now + s), 0);
    }

    #[test]
    fn a_queued_request_waits_for_the_earliest_free_worker() {
        let m = model(2, 5);
        let now = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(
            m.admit(now, ms(300)),
            Admission::Admitted { total: ms(300) }
        );
        assert_eq!(
            m.admit(now, ms(100)),
            Admission::Admitted { total: ms(100) }
        );
        // Both busy: the next starts when the 100 ms one ends.
        assert_eq!(m.admit(now, ms(50)), Admission::Admitted { total: ms(150) });
        assert_eq!(m.admit(now, ms(50)), Admission::Admitted { total: ms(200) });
        assert_eq!(m.queue_depth(now), 2);
        assert_eq!(m.queue_depth(now + ms(120)), 1);
        assert_eq!(m.queue_depth(now + ms(150)), 0);
    }

    #[test]
    fn the_rate_limiter_allows_a_burst_then_the_rate() {
        let t0 = Instant::now();
        let limiter = RateLimiter::new(100.0, 10, Mix::single(Outcome::Throttled), t0);
        // A burst of 10 at once, then nothing until the next token.
        assert_eq!((0..15).filter(|_| limiter.admit(t0)).count(), 10);
        assert!(!limiter.admit(t0 + Duration::from_millis(5)));
        assert!(limiter.admit(t0 + Duration::from_millis(10)));
        // Sustained 1000 rps offered for 10 s: about 100 rps pass.
        let gap = Duration::from_millis(1);
        let passed = (0..10_000u32)
            .filter(|i| limiter.admit(t0 + Duration::from_secs(1) + gap * *i))
            .count();
        assert!((1000..=1011).contains(&passed), "{passed}");
    }

    #[test]
    fn the_rate_limiter_is_shared_safely_between_threads() {
        let t0 = Instant::now();
        let limiter = RateLimiter::new(1.0, 100, Mix::single(Outcome::Throttled), t0);
        let passed: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| s.spawn(|| (0..1000).filter(|_| limiter.admit(t0)).count()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(
            passed, 100,
            "exactly the burst passes, whatever the interleaving"
        );
    }
}
