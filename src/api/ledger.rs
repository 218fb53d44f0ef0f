//! The ledger: what Gazua remembers of payments and of `Idempotency-Key` answers, behind one
//! trait so that the memory ledger, the stateless one and a shared (Redis) one are
//! interchangeable without touching the routes.
//!
//! The routes never hold a record across calls: they look at one under its lock ([`Ledger::view`])
//! or change it in one step ([`Ledger::modify`]), which a shared ledger implements as
//! read–apply–compare-and-set.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use http::StatusCode;
use xxhash_rust::xxh3::xxh3_64;

use super::ReplyCode;
use crate::directive::CodeName;

/// A payment's lifecycle status (reference §1.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ready,
    InProgress,
    Done,
    Canceled,
    PartialCanceled,
    Aborted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ready => "READY",
            Status::InProgress => "IN_PROGRESS",
            Status::Done => "DONE",
            Status::Canceled => "CANCELED",
            Status::PartialCanceled => "PARTIAL_CANCELED",
            Status::Aborted => "ABORTED",
        }
    }

    /// The inverse of [`Status::as_str`].
    pub fn parse(text: &str) -> Option<Status> {
        [
            Status::Ready,
            Status::InProgress,
            Status::Done,
            Status::Canceled,
            Status::PartialCanceled,
            Status::Aborted,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    /// Approved at some point (money moved).
    pub fn approved(self) -> bool {
        matches!(
            self,
            Status::Done | Status::Canceled | Status::PartialCanceled
        )
    }
}

/// One cancel of a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancel {
    pub amount: u64,
    /// Unix seconds.
    pub at: i64,
    pub reason: Box<str>,
}

/// A payment as the ledger keeps it: compact (the three texts share one allocation, times are
/// seconds), everything else derived when rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct Payment {
    /// `paymentKey`, `orderId` and `orderName` back to back.
    text: Box<str>,
    key_len: u16,
    order_len: u8,
    has_name: bool,
    /// `type: BILLING` rather than `NORMAL`.
    pub billing: bool,
    pub status: Status,
    pub total: u64,
    pub balance: u64,
    /// Unix seconds.
    pub requested_at: i64,
    pub approved_at: Option<i64>,
    /// Why an `ABORTED` payment failed.
    pub failure: Option<CodeName>,
    pub cancels: Vec<Cancel>,
}

impl Payment {
    /// A new payment (`READY`, nothing approved). `key` is at most 200 bytes and `order_id` at
    /// most 64 (the routes validate both).
    pub fn new(key: &str, order_id: &str, order_name: Option<&str>, amount: u64, at: i64) -> Self {
        let key = &key[..floor_char(key, 200)];
        let order_id = &order_id[..floor_char(order_id, 255)];
        let name = order_name.unwrap_or("");
        let mut text = String::with_capacity(key.len() + order_id.len() + name.len());
        text.push_str(key);
        text.push_str(order_id);
        text.push_str(name);
        Payment {
            text: text.into_boxed_str(),
            key_len: key.len() as u16,
            order_len: order_id.len() as u8,
            has_name: order_name.is_some(),
            billing: false,
            status: Status::Ready,
            total: amount,
            balance: amount,
            requested_at: at,
            approved_at: None,
            failure: None,
            cancels: Vec::new(),
        }
    }

    pub fn key(&self) -> &str {
        &self.text[..usize::from(self.key_len)]
    }

    pub fn order_id(&self) -> &str {
        let start = usize::from(self.key_len);
        &self.text[start..start + usize::from(self.order_len)]
    }

    pub fn order_name(&self) -> Option<&str> {
        let start = usize::from(self.key_len) + usize::from(self.order_len);
        self.has_name.then(|| &self.text[start..])
    }
}

fn floor_char(s: &str, max: usize) -> usize {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    end
}

/// A stored answer to an `Idempotency-Key`.
#[derive(Debug, Clone)]
pub struct Stored {
    pub status: StatusCode,
    pub body: Bytes,
    pub code: ReplyCode,
    /// Unix milliseconds at which the first request's answer is due: before it, a repeat is
    /// still "being processed" (409).
    pub ready_at_ms: i64,
    /// Unix seconds of the first use, for the PG's 15-day validity.
    pub stored_at: i64,
}

/// How long the PG honours an `Idempotency-Key`.
pub const IDEMPOTENCY_TTL_SECS: i64 = 15 * 24 * 3600;

/// The seam between the routes and wherever payments are remembered.
pub trait Ledger: Send + Sync {
    /// Whether anything is remembered at all (false for the stateless ledger: the routes then
    /// skip idempotency lookups and order searches).
    fn records(&self) -> bool;

    /// Calls `f` with the payment recorded under `key`, if any.
    fn view(&self, key: &str, f: &mut dyn FnMut(Option<&Payment>));

    /// Calls `f` with the latest payment recorded for `order_id`, if any.
    fn view_order(&self, order_id: &str, f: &mut dyn FnMut(Option<&Payment>));

    /// Calls `f` with the slot of `key` to change in one atomic step: `None` is an unknown key;
    /// leaving `Some` records the payment (the oldest payments make room), leaving `None` keeps
    /// nothing.
    fn modify(&self, key: &str, f: &mut dyn FnMut(&mut Option<Payment>));

    /// The answer stored for an idempotency scope, if still valid at `now` (unix seconds).
    fn replay(&self, scope: u64, now: i64) -> Option<Stored>;

    /// Stores the first answer for an idempotency scope.
    fn remember(&self, scope: u64, stored: Stored);
}

/// Remembers nothing: every request is judged on its own.
pub struct StatelessLedger;

impl Ledger for StatelessLedger {
    fn records(&self) -> bool {
        false
    }

    fn view(&self, _key: &str, f: &mut dyn FnMut(Option<&Payment>)) {
        f(None)
    }

    fn view_order(&self, _order_id: &str, f: &mut dyn FnMut(Option<&Payment>)) {
        f(None)
    }

    fn modify(&self, _key: &str, f: &mut dyn FnMut(&mut Option<Payment>)) {
        f(&mut None)
    }

    fn replay(&self, _scope: u64, _now: i64) -> Option<Stored> {
        None
    }

    fn remember(&self, _scope: u64, _stored: Stored) {}
}

/// Keys of the shard maps are already xxh3 hashes: one multiply is enough to spread them (the
/// shard is picked by the top bits, which the map would otherwise see constant in its tags).
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed; fold anything else in anyway.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

type FastMap<V> = HashMap<u64, V, BuildHasherDefault<PassThrough>>;

const SHARDS: usize = 64;

/// A bounded map in insertion order: the oldest entry goes when it is full.
struct Bounded<V> {
    map: FastMap<V>,
    order: VecDeque<u64>,
    capacity: usize,
}

impl<V> Bounded<V> {
    fn new(capacity: usize) -> Self {
        Bounded {
            map: FastMap::default(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Inserts a new entry, returning the one evicted to make room.
    fn insert(&mut self, hash: u64, value: V) -> Option<V> {
        let mut evicted = None;
        if !self.map.contains_key(&hash) {
            while self.map.len() >= self.capacity {
                let Some(old) = self.order.pop_front() else {
                    break;
                };
                evicted = self.map.remove(&old).or(evicted);
            }
            self.order.push_back(hash);
        }
        self.map.insert(hash, value);
        evicted
    }
}

/// The default ledger: each instance remembers up to `capacity` payments, oldest evicted first
/// (per shard, so "oldest" is approximate across shards), behind 64 locks so that concurrent
/// requests rarely meet.
pub struct MemoryLedger {
    payments: Vec<Shard<Bounded<Payment>>>,
    /// `hash(orderId)` → `hash(paymentKey)` of its latest payment.
    orders: Vec<Shard<FastMap<u64>>>,
    answers: Vec<Shard<Bounded<Stored>>>,
}

/// One shard's lock on a cache line of its own: neighbouring shards locked by two cores at
/// once would otherwise bounce one line between them.
#[repr(align(128))]
struct Shard<T>(Mutex<T>);

impl<T> std::ops::Deref for Shard<T> {
    type Target = Mutex<T>;

    fn deref(&self) -> &Mutex<T> {
        &self.0
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a shard cannot leave a record half-written in a way that matters
    // more than refusing every later request; keep serving.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl MemoryLedger {
    pub fn new(capacity: usize) -> Self {
        let per_shard = capacity.div_ceil(SHARDS).max(1);
        MemoryLedger {
            payments: (0..SHARDS)
                .map(|_| Shard(Mutex::new(Bounded::new(per_shard))))
                .collect(),
            orders: (0..SHARDS)
                .map(|_| Shard(Mutex::new(FastMap::default())))
                .collect(),
            answers: (0..SHARDS)
                .map(|_| Shard(Mutex::new(Bounded::new(per_shard))))
                .collect(),
        }
    }

    fn shard(hash: u64) -> usize {
        // The top bits pick the shard; the map spreads the whole hash again.
        (hash >> 58) as usize % SHARDS
    }
}

impl Ledger for MemoryLedger {
    fn records(&self) -> bool {
        true
    }

    fn view(&self, key: &str, f: &mut dyn FnMut(Option<&Payment>)) {
        let hash = xxh3_64(key.as_bytes());
        let shard = lock(&self.payments[Self::shard(hash)]);
        f(shard.map.get(&hash).filter(|p| p.key() == key))
    }

    fn view_order(&self, order_id: &str, f: &mut dyn FnMut(Option<&Payment>)) {
        let order_hash = xxh3_64(order_id.as_bytes());
        let key_hash = lock(&self.orders[Self::shard(order_hash)])
            .get(&order_hash)
            .copied();
        let Some(key_hash) = key_hash else {
            return f(None);
        };
        let shard = lock(&self.payments[Self::shard(key_hash)]);
        f(shard
            .map
            .get(&key_hash)
            .filter(|p| p.order_id() == order_id))
    }

    fn modify(&self, key: &str, f: &mut dyn FnMut(&mut Option<Payment>)) {
        let hash = xxh3_64(key.as_bytes());
        let mut shard = lock(&self.payments[Self::shard(hash)]);
        let existing = shard.map.get_mut(&hash).filter(|p| p.key() == key);
        if let Some(record) = existing {
            // Take it out of the map only for the call; nearly always it stays.
            let mut slot = Some(std::mem::replace(record, Payment::new("", "", None, 0, 0)));
            f(&mut slot);
            match slot {
                Some(p) => *record = p,
                None => {
                    shard.map.remove(&hash);
                }
            }
            return;
        }
        let mut slot = None;
        f(&mut slot);
        let Some(payment) = slot else {
            return;
        };
        let order_hash = xxh3_64(payment.order_id().as_bytes());
        let evicted = shard.insert(hash, payment);
        drop(shard);
        // Lock order is always payments → orders, never the reverse while holding both.
        if let Some(old) = evicted {
            let old_order = xxh3_64(old.order_id().as_bytes());
            let old_key = xxh3_64(old.key().as_bytes());
            let mut orders = lock(&self.orders[Self::shard(old_order)]);
            if orders.get(&old_order) == Some(&old_key) {
                orders.remove(&old_order);
            }
        }
        lock(&self.orders[Self::shard(order_hash)]).insert(order_hash, hash);
    }

    fn replay(&self, scope: u64, now: i64) -> Option<Stored> {
        let shard = lock(&self.answers[Self::shard(scope)]);
        shard
            .map
            .get(&scope)
            .filter(|s| now - s.stored_at < IDEMPOTENCY_TTL_SECS)
            .cloned()
    }

    fn remember(&self, scope: u64, stored: Stored) {
        lock(&self.answers[Self::shard(scope)]).insert(scope, stored);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(ledger: &MemoryLedger, key: &str, order: &str) {
        ledger.modify(key, &mut |slot| {
            *slot = Some(Payment::new(key, order, Some("name"), 1000, 0))
        });
    }

    fn has(ledger: &MemoryLedger, key: &str) -> bool {
        let mut found = false;
        ledger.view(key, &mut |p| found = p.is_some());
        found
    }

    #[test]
    fn the_texts_share_one_box_and_read_back() {
        let p = Payment::new("key-1", "order-1", Some("티셔츠"), 1000, 5);
        assert_eq!(
            (p.key(), p.order_id(), p.order_name()),
            ("key-1", "order-1", Some("티셔츠"))
        );
        assert_eq!(Payment::new("k", "o", None, 1, 0).order_name(), None);
    }

    #[test]
    fn the_oldest_payments_are_evicted_and_their_orders_forgotten() {
        let ledger = MemoryLedger::new(SHARDS); // one payment per shard
        for i in 0..2000 {
            put(&ledger, &format!("key-{i}"), &format!("order-{i}"));
        }
        let kept = (0..2000)
            .filter(|i| has(&ledger, &format!("key-{i}")))
            .count();
        assert!(kept <= SHARDS, "kept {kept}");
        assert!(has(&ledger, "key-1999"), "the newest is kept");
        let mut found = None;
        ledger.view_order("order-1999", &mut |p| found = p.map(|p| p.key().to_owned()));
        assert_eq!(found.as_deref(), Some("key-1999"));
        let orders: usize = ledger.orders.iter().map(|o| lock(o).len()).sum();
        assert!(orders <= SHARDS, "order index bounded too: {orders}");
    }

    #[test]
    fn modify_sees_and_changes_the_record() {
        let ledger = MemoryLedger::new(100);
        put(&ledger, "k", "order-1");
        ledger.modify("k", &mut |slot| slot.as_mut().unwrap().balance = 1);
        let mut balance = 0;
        ledger.view("k", &mut |p| balance = p.unwrap().balance);
        assert_eq!(balance, 1);
        ledger.modify("k", &mut |slot| *slot = None);
        assert!(!has(&ledger, "k"));
    }

    #[test]
    fn concurrent_writers_do_not_lose_updates() {
        let ledger = std::sync::Arc::new(MemoryLedger::new(1000));
        put(&ledger, "k", "order-1");
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let ledger = ledger.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        ledger.modify("k", &mut |slot| slot.as_mut().unwrap().balance += 1);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let mut balance = 0;
        ledger.view("k", &mut |p| balance = p.unwrap().balance);
        assert_eq!(balance, 1000 + 4000);
    }
}
