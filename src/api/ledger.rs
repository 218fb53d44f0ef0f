//! The ledger: what Gazua remembers of payments and of `Idempotency-Key` answers, behind one
//! trait so that the memory ledger, the stateless one and a shared (Redis) one are
//! interchangeable without touching the routes.
//!
//! The routes never hold a record across calls: they look at one under its lock ([`Ledger::view`])
//! or change it in one step ([`Ledger::modify`]), which a shared ledger implements as
//! read–apply–compare-and-set.
//!
//! An `Idempotency-Key` is claimed in one step too ([`Ledger::reserve`]: reserved, in flight,
//! or the stored answer), so that of many requests sharing a key exactly one is processed; a
//! shared ledger implements it as one server-side script (set-if-absent, else return the entry).

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use http::StatusCode;
use xxhash_rust::xxh3::xxh3_64;

use super::{Lang, ReplyCode};
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
    /// A new payment (`READY`, nothing approved). The routes validate `key` (at most 200
    /// characters, so at most 800 bytes) and `order_id` (at most 64 ASCII characters); the
    /// record holds both whole, since every lookup compares the whole key. The cuts below only
    /// keep the length fields honest should a caller skip validation.
    pub fn new(key: &str, order_id: &str, order_name: Option<&str>, amount: u64, at: i64) -> Self {
        let key = &key[..floor_char(key, usize::from(u16::MAX))];
        let order_id = &order_id[..floor_char(order_id, usize::from(u8::MAX))];
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
    pub body: StoredBody,
    pub code: ReplyCode,
    /// Unix milliseconds at which the first request's answer is due: before it, a repeat is
    /// still "being processed" (409), so a replay is never earlier than the original.
    pub ready_at_ms: i64,
    /// Unix seconds of the first use, for the PG's 15-day validity.
    pub stored_at: i64,
}

/// The body of a stored answer, kept compact: a payment object is a snapshot of the record
/// (about a tenth of its JSON) rendered again on replay — rendering is a pure function of the
/// record and the language, so the replay is byte for byte the first answer. A shared ledger
/// may keep either form (rendered bytes are the simpler one to ship).
#[derive(Debug, Clone)]
pub enum StoredBody {
    Payment(Box<Payment>, Lang),
    /// Anything else (short error bodies), as sent.
    Rendered(Bytes),
}

/// What [`Ledger::reserve`] found for an idempotency scope.
#[derive(Debug, Clone)]
pub enum Reservation {
    /// Nothing was there: the caller now holds the scope, and must either
    /// [`remember`](Ledger::remember) its answer or [`release`](Ledger::release) it.
    Reserved,
    /// Another request holds the scope and has not answered yet.
    InFlight,
    /// The first request's answer.
    Stored(Stored),
}

/// A reservation neither kept nor released within this long lapses (a shared ledger's
/// instance that died mid-request must not block the key for 15 days). The memory ledger
/// releases on every path (a drop guard), so this is its backstop only.
pub const RESERVATION_TTL_MS: i64 = 60_000;

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

    /// Claims an idempotency scope at `now_ms` (unix milliseconds), atomically: reserves it
    /// if it is free (never used, its answer past the 15-day validity, or a reservation past
    /// [`RESERVATION_TTL_MS`]), else says who has it.
    fn reserve(&self, scope: u64, now_ms: i64) -> Reservation;

    /// Stores the answer of the request that reserved the scope.
    fn remember(&self, scope: u64, stored: Stored);

    /// Gives a reserved scope up without an answer (the request's answer is not one to
    /// replay, or it never got one), so the next request with the key is processed.
    fn release(&self, scope: u64);
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

    fn reserve(&self, _scope: u64, _now_ms: i64) -> Reservation {
        Reservation::Reserved
    }

    fn remember(&self, _scope: u64, _stored: Stored) {}

    fn release(&self, _scope: u64) {}
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

    /// Inserts an entry, returning the values it displaced: the oldest one evicted to make
    /// room, and the one it replaced under the same hash.
    fn insert(&mut self, hash: u64, value: V) -> [Option<V>; 2] {
        let mut evicted = None;
        if !self.map.contains_key(&hash) {
            // Stale places (removed entries) are skipped; one live entry goes at most.
            while self.map.len() >= self.capacity {
                let Some(old) = self.order.pop_front() else {
                    break;
                };
                evicted = self.map.remove(&old).or(evicted);
            }
            self.order.push_back(hash);
        }
        [evicted, self.map.insert(hash, value)]
    }

    /// Removes an entry. Its place in the insertion order goes stale; once stale places
    /// outnumber live ones the order is compacted, so removals cannot grow it without bound.
    fn remove(&mut self, hash: u64) -> Option<V> {
        let removed = self.map.remove(&hash);
        if self.order.len() > 2 * self.map.len() + 64 {
            let map = &self.map;
            self.order.retain(|h| map.contains_key(h));
        }
        removed
    }
}

/// The default ledger: each instance remembers up to `capacity` payments, oldest evicted first
/// (per shard, so "oldest" is approximate across shards), behind 64 locks so that concurrent
/// requests rarely meet.
pub struct MemoryLedger {
    payments: Vec<Shard<Bounded<Payment>>>,
    /// `hash(orderId)` → `hash(paymentKey)` of its latest payment.
    orders: Vec<Shard<FastMap<u64>>>,
    answers: Vec<Shard<Bounded<Answer>>>,
}

/// An idempotency scope's entry: reserved by a request in flight, or its stored answer.
enum Answer {
    /// Reserved at this unix millisecond.
    InFlight(i64),
    Stored(Stored),
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
            let taken = std::mem::replace(record, Payment::new("", "", None, 0, 0));
            let order_hash = xxh3_64(taken.order_id().as_bytes());
            let mut slot = Some(taken);
            f(&mut slot);
            match slot {
                Some(p) => {
                    let new_order = xxh3_64(p.order_id().as_bytes());
                    *record = p;
                    if new_order != order_hash {
                        // The routes never move a payment to another order; should one, the
                        // index follows it.
                        drop(shard);
                        self.forget_order(order_hash, hash);
                        lock(&self.orders[Self::shard(new_order)]).insert(new_order, hash);
                    }
                }
                None => {
                    shard.remove(hash);
                    drop(shard);
                    self.forget_order(order_hash, hash);
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
        // Whatever the new record displaces (the oldest, or another key with the same hash)
        // leaves the order index with it: the index never outgrows the payments.
        let displaced = shard.insert(hash, payment);
        drop(shard);
        // Lock order is always payments → orders, never the reverse while holding both.
        self.forget_orders(displaced);
        lock(&self.orders[Self::shard(order_hash)]).insert(order_hash, hash);
    }

    fn reserve(&self, scope: u64, now_ms: i64) -> Reservation {
        let mut shard = lock(&self.answers[Self::shard(scope)]);
        let found = match shard.map.get(&scope) {
            Some(Answer::InFlight(since)) if now_ms - since < RESERVATION_TTL_MS => {
                Reservation::InFlight
            }
            Some(Answer::Stored(s)) if now_ms / 1000 - s.stored_at < IDEMPOTENCY_TTL_SECS => {
                Reservation::Stored(s.clone())
            }
            _ => Reservation::Reserved,
        };
        if let Reservation::Reserved = found {
            shard.insert(scope, Answer::InFlight(now_ms));
        }
        found
    }

    fn remember(&self, scope: u64, stored: Stored) {
        lock(&self.answers[Self::shard(scope)]).insert(scope, Answer::Stored(stored));
    }

    fn release(&self, scope: u64) {
        let mut shard = lock(&self.answers[Self::shard(scope)]);
        if let Some(Answer::InFlight(_)) = shard.map.get(&scope) {
            shard.remove(scope);
        }
    }
}

impl MemoryLedger {
    /// Drops the order-index entries that still point at payments no longer recorded.
    fn forget_orders(&self, gone: [Option<Payment>; 2]) {
        for old in gone.into_iter().flatten() {
            let order_hash = xxh3_64(old.order_id().as_bytes());
            self.forget_order(order_hash, xxh3_64(old.key().as_bytes()));
        }
    }

    fn forget_order(&self, order_hash: u64, key_hash: u64) {
        let mut orders = lock(&self.orders[Self::shard(order_hash)]);
        if orders.get(&order_hash) == Some(&key_hash) {
            orders.remove(&order_hash);
        }
    }

    /// Entries in the order index (bounded by the payments recorded).
    #[cfg(test)]
    pub(super) fn order_index_len(&self) -> usize {
        self.orders.iter().map(|o| lock(o).len()).sum()
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
    fn a_key_longer_in_bytes_than_200_is_recorded_whole_and_found_again() {
        let ledger = MemoryLedger::new(SHARDS);
        // 100 characters, 300 bytes: the routes accept up to 200 characters.
        let key = "결".repeat(100);
        let mut created = 0;
        for i in 0..500 {
            // A confirm's step: create only when the key is unknown.
            ledger.modify(&key, &mut |slot| {
                if slot.is_none() {
                    created += 1;
                    *slot = Some(Payment::new(&key, &format!("order-{i}"), None, 1000, 0));
                }
            });
        }
        assert_eq!(created, 1, "the second lookup finds the first record");
        let mut found = None;
        ledger.view(&key, &mut |p| found = p.map(|p| p.key().len()));
        assert_eq!(found, Some(300));
        assert_eq!(ledger.order_index_len(), 1);
    }

    #[test]
    fn the_order_index_never_outgrows_the_payments() {
        let ledger = MemoryLedger::new(SHARDS);
        for i in 0..2000 {
            put(&ledger, &format!("key-{i}"), &format!("order-{i}"));
            // A record replaced under its key by one of another order...
            ledger.modify(&format!("key-{i}"), &mut |slot| {
                *slot = Some(Payment::new(&format!("key-{i}"), "order-x", None, 1, 0))
            });
            // ...and records removed take their index entries with them.
            if i % 3 == 0 {
                ledger.modify(&format!("key-{i}"), &mut |slot| *slot = None);
            }
        }
        assert!(ledger.order_index_len() <= SHARDS);
        let places: usize = ledger.payments.iter().map(|s| lock(s).order.len()).sum();
        assert!(
            places <= 3 * SHARDS + 64 * SHARDS,
            "insertion order bounded: {places}"
        );
    }

    #[test]
    fn one_request_reserves_a_scope_the_others_wait_then_replay() {
        let ledger = MemoryLedger::new(100);
        assert!(matches!(ledger.reserve(7, 1_000), Reservation::Reserved));
        assert!(matches!(ledger.reserve(7, 1_001), Reservation::InFlight));
        ledger.release(7);
        assert!(matches!(ledger.reserve(7, 1_002), Reservation::Reserved));
        let stored = Stored {
            status: StatusCode::OK,
            body: StoredBody::Rendered(Bytes::from_static(b"{}")),
            code: ReplyCode::Ok,
            ready_at_ms: 1_300,
            stored_at: 1,
        };
        ledger.remember(7, stored);
        ledger.release(7); // too late to release: the answer stays
        assert!(matches!(
            ledger.reserve(7, 1_003),
            Reservation::Stored(s) if s.ready_at_ms == 1_300
        ));
        // A reservation nobody kept or released lapses.
        assert!(matches!(ledger.reserve(8, 0), Reservation::Reserved));
        assert!(matches!(
            ledger.reserve(8, RESERVATION_TTL_MS),
            Reservation::Reserved
        ));
        // An answer past the PG's 15-day validity is replaced.
        let later = (1 + IDEMPOTENCY_TTL_SECS) * 1000;
        assert!(matches!(ledger.reserve(7, later), Reservation::Reserved));
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
