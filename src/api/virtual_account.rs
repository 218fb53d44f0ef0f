//! Virtual accounts (가상계좌): the account a `WAITING_FOR_DEPOSIT` payment waits on, and how
//! it moves on by itself. A payment's record holds when its directed deposit falls due and
//! when the account expires; every reader settles the record against the clock first
//! ([`settle`]), so an inquiry shows the status the payment has *now* without any timer, in
//! the memory ledger and the shared one alike.

use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64_with_seed;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use super::keys::KeyMint;
use super::ledger::{Payment, Status};
use super::redis_ledger::LedgerDown;
use super::store::Store;
use super::{Lang, render};
use crate::directive::{Deposit, Webhook};
use crate::webhook::Webhooks;
use http::StatusCode;

/// The PG's default validity of an issued account: 7 days.
pub const DEFAULT_VALID_HOURS: i64 = 7 * 24;
/// The longest validity the PG allows: 30 days.
pub const MAX_VALID_HOURS: i64 = 30 * 24;
/// The bank of an account issued through `method: VIRTUAL_ACCOUNT` (no bank was named): 우리.
pub const DEFAULT_BANK: &str = "20";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VirtualAccount {
    /// `bankCode`.
    pub bank: Box<str>,
    /// `customerName`.
    pub customer: Box<str>,
    /// Unix milliseconds of the due date; 0 until the account is issued (a payment created
    /// with `method: VIRTUAL_ACCOUNT` gets its account at confirm).
    pub due_ms: i64,
    /// Unix milliseconds at which the directed deposit is made, if one is.
    pub deposit_ms: Option<i64>,
    /// The account was refunded to `refundReceiveAccount` (a cancel after deposit).
    #[serde(default)]
    pub refunded: bool,
    /// The issuing request's `webhook=`: it directs the events of the deposit or expiry too,
    /// which no request makes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<Webhook>,
}

impl VirtualAccount {
    pub fn new(bank: &str, customer: &str) -> Self {
        VirtualAccount {
            bank: bank.into(),
            customer: customer.into(),
            due_ms: 0,
            deposit_ms: None,
            refunded: false,
            webhook: None,
        }
    }
}

/// The account number: 14 digits derived from the paymentKey, so every instance shows the same.
pub fn account_number(key: &str) -> String {
    format!(
        "{:014}",
        xxh3_64_with_seed(key.as_bytes(), 0x7661) % 100_000_000_000_000
    )
}

/// The payment's `secret` (`ps_…`), derived from the paymentKey: the DEPOSIT_CALLBACK carries
/// the same value, which the merchant compares with the one it got at issue.
pub fn secret(key: &str) -> String {
    format!(
        "ps_{:016x}{:08x}",
        xxh3_64_with_seed(key.as_bytes(), 0x5ec2),
        xxh3_64_with_seed(key.as_bytes(), 0x5ec3) as u32
    )
}

/// Issues the account of `p` at `now_ms`: `WAITING_FOR_DEPOSIT` until `due_ms`, with the
/// deposit the decision directs (none by default: the harness route or the due date decides).
/// The deposit delay is drawn from a generator seeded by the paymentKey, so the same key is
/// deposited alike everywhere. The decided `webhook=` is kept for the account's later events.
pub fn issue(
    p: &mut Payment,
    now_ms: i64,
    due_ms: i64,
    deposit: Option<&Deposit>,
    webhook: Option<&Webhook>,
) {
    let key_seed = xxh3_64_with_seed(p.key().as_bytes(), 0xde90);
    let Some(va) = p.va.as_mut() else {
        return;
    };
    va.due_ms = due_ms;
    va.deposit_ms = None;
    va.webhook = webhook.cloned();
    match deposit {
        Some(Deposit::After(latency)) => {
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(key_seed);
            let delay = latency.sample(&mut rng).as_millis() as i64;
            va.deposit_ms = Some(now_ms.saturating_add(delay));
        }
        Some(Deposit::Expired(after)) => va.due_ms = now_ms + after.as_millis() as i64,
        Some(Deposit::Never) | None => {}
    }
    p.status = Status::WaitingForDeposit;
    p.approved_at = None;
}

/// Brings a waiting payment up to `now_ms`: deposited (`DONE`) once its directed deposit is
/// due before the due date, else `EXPIRED` once the due date has passed. Returns the new
/// status when it changed.
pub fn settle(p: &mut Payment, now_ms: i64) -> Option<Status> {
    if p.status != Status::WaitingForDeposit {
        return None;
    }
    let va = p.va.as_ref()?;
    match va.deposit_ms {
        Some(at) if at <= now_ms && at < va.due_ms => {
            deposit(p, at);
            Some(Status::Done)
        }
        _ if va.due_ms <= now_ms => {
            p.status = Status::Expired;
            Some(Status::Expired)
        }
        _ => None,
    }
}

/// The deposit of the exact amount at `at_ms`: `DONE`, approved then.
pub fn deposit(p: &mut Payment, at_ms: i64) {
    p.status = Status::Done;
    p.approved_at = Some(at_ms.div_euclid(1000));
    if let Some(va) = p.va.as_mut() {
        va.deposit_ms = Some(at_ms);
    }
}

/// Waiting accounts' next moments (the directed deposit or the due date), all in one bounded
/// set served by one task: when one comes, the account is settled and its change told to the
/// webhooks. Only the webhooks need these timers (an inquiry settles a record against the
/// clock by itself), so the set exists only with them, and it is bounded like their outbox:
/// each timer becomes at most two events there, so a longer set would only feed events a full
/// outbox drops (the ledger's capacity bounds the memory ledger but not the shared one). When it
/// is full the timer due last is dropped (counted `dropped`): its account still deposits or
/// expires on inquiry, only its webhook is lost. A request that meets an account past its moment
/// before the timer does (a cancel, the harness deposit) settles it and tells the change itself
/// ([`settled`]); the timer then finds nothing to tell.
///
/// Under a ledger that records nothing (`--ledger stateless`) the timer has no record to look
/// up: it rebuilds the account from its minted key, as an inquiry does, and tells what that
/// shows ([`Timers::settle_and_tell`]). Only the instance that issued the account holds its
/// timer, so a fleet tells each deposit or expiry once; no request tells it there.
pub(super) struct Timers {
    /// By (unix ms due, arrival): the first is the next to settle.
    due: Mutex<BTreeMap<(i64, u64), Due>>,
    capacity: usize,
    seq: AtomicU64,
    ready: Notify,
    /// The mint whose keys the accounts are rebuilt from, when the ledger records nothing.
    stateless: Option<KeyMint>,
}

/// One waiting account's timer.
pub(super) struct Due {
    key: Box<str>,
    /// The `webhook=` the account was issued with, kept only when the ledger records nothing:
    /// the key's tag is all a rebuilt account knows, and the issue may have been directed by a
    /// header or a profile rule instead.
    webhook: Option<Webhook>,
}

impl Timers {
    /// The timer set and its task (inside the tokio runtime). `stateless`: the ledger records
    /// nothing, and the accounts are rebuilt from the keys this mint signed.
    pub(super) fn start(store: Store, hooks: Webhooks, stateless: Option<KeyMint>) -> Arc<Timers> {
        let timers = Arc::new(Timers {
            due: Mutex::new(BTreeMap::new()),
            capacity: hooks.capacity(),
            seq: AtomicU64::new(0),
            ready: Notify::new(),
            stateless,
        });
        tokio::spawn(timers.clone().run(store, hooks));
        timers
    }

    /// A timer for the moment of `p`, a waiting account ([`moment`]).
    fn add_for(&self, p: &Payment, hooks: &Webhooks) {
        let Some(at_ms) = moment(p) else {
            return;
        };
        let due = Due {
            key: p.key().into(),
            webhook: self
                .stateless
                .as_ref()
                .and_then(|_| issued_with(p).cloned()),
        };
        self.add(at_ms, due, hooks);
    }

    fn add(&self, at_ms: i64, entry: Due, hooks: &Webhooks) {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let full = {
            let mut due = self.due.lock().unwrap_or_else(|e| e.into_inner());
            due.insert((at_ms, n), entry);
            (due.len() > self.capacity)
                .then(|| due.pop_last())
                .flatten()
        };
        if let Some((_, Due { key, .. })) = full {
            hooks.count_dropped();
            tracing::warn!(
                payment_key = %key,
                "a virtual account's deposit or expiry webhook was dropped: more accounts wait \
                 than --webhook-outbox"
            );
        }
        self.ready.notify_one();
    }

    async fn run(self: Arc<Self>, store: Store, hooks: Webhooks) {
        loop {
            let now_ms = jiff::Timestamp::now().as_millisecond();
            match self.take_due(now_ms) {
                Ok(due) => self.settle_and_tell(&store, &hooks, due, now_ms).await,
                // `notify_one` keeps a permit when nobody waits: an earlier timer added between
                // the look and the wait is not missed.
                Err(Some(wait)) => {
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(wait as u64)) => {}
                        () = self.ready.notified() => {}
                    }
                }
                Err(None) => self.ready.notified().await,
            }
        }
    }

    /// The next account due by `now_ms`, taken out of the set; else the milliseconds until the
    /// first one is due (`None`: the set is empty). Apart from `run` so that a test can play
    /// a timer at a moment of its choosing.
    pub(super) fn take_due(&self, now_ms: i64) -> Result<Due, Option<i64>> {
        let mut due = self.due.lock().unwrap_or_else(|e| e.into_inner());
        match due.first_key_value() {
            Some((&(at, _), _)) if at <= now_ms => due.pop_first().map(|(_, k)| k).ok_or(None),
            Some((&(at, _), _)) => Err(Some(at - now_ms)),
            None => Err(None),
        }
    }

    /// A timer's moment: the account settled at `now_ms` and its change told — unless a
    /// request settled it first (and told it, see [`settled`]): then there is nothing to tell.
    /// With no ledger record ([`Timers::rebuild_and_tell`]), the account as its key shows it.
    pub(super) async fn settle_and_tell(
        &self,
        store: &Store,
        hooks: &Webhooks,
        due: Due,
        now_ms: i64,
    ) {
        if let Some(mint) = &self.stateless {
            return self.rebuild_and_tell(mint, hooks, due, now_ms);
        }
        let key = &*due.key;
        let mut changed = None;
        let stored = store
            .modify(key, &mut |slot| {
                changed = slot.as_mut().and_then(|p| settled(p, now_ms));
            })
            .await;
        match stored {
            Ok(()) => tell_settled(Some(hooks), changed.as_ref()),
            Err(_) => tracing::warn!(
                payment_key = %key,
                "a virtual account's deposit or expiry was not recorded: the ledger is unreachable"
            ),
        }
    }

    /// The stateless timer's moment: the account rebuilt from its key as any instance's
    /// inquiry shows it, settled at `now_ms` and told as it was issued (`webhook=`). The key
    /// knows only its tag's `deposit=` and, for an account issued at a confirm, its create's
    /// time: an account the key shows still waiting (its deposit was directed by a header)
    /// gets a timer for the moment the key shows instead, so the webhooks tell what inquiries
    /// show, when they show it. A cancel is not recorded, so it stops nothing here either.
    fn rebuild_and_tell(&self, mint: &KeyMint, hooks: &Webhooks, due: Due, now_ms: i64) {
        // A key Gazua did not mint (a confirm creates its payment) cannot be rebuilt: no
        // instance shows it, and nothing is told.
        let Some(minted) = mint.read_payment(&due.key) else {
            return;
        };
        let mut p = super::routes::unsettled_from_key(&due.key, &minted);
        if let Some(va) = p.va.as_mut() {
            va.webhook = due.webhook;
        }
        match settled(&mut p, now_ms) {
            Some(p) => tell_settled(Some(hooks), Some(&p)),
            None if p.status == Status::WaitingForDeposit => self.add_for(&p, hooks),
            None => {}
        }
    }
}

/// The `webhook=` of the request that issued a virtual account: it directs the events of the
/// changes no request makes (the deposit, the expiry, the harness route's deposit).
fn issued_with(p: &Payment) -> Option<&Webhook> {
    p.va.as_ref().and_then(|va| va.webhook.as_ref())
}

/// When a waiting account `p` moves on by itself: its directed deposit, if that comes before
/// its due date, else its due date. `None` for any other payment.
fn moment(p: &Payment) -> Option<i64> {
    let va =
        p.va.as_deref()
            .filter(|_| p.status == Status::WaitingForDeposit)?;
    Some(
        va.deposit_ms
            .filter(|&d| d < va.due_ms)
            .unwrap_or(va.due_ms),
    )
}

/// [`settle`] inside a ledger change, by the timer or by a request that finds the account past
/// its moment first (a cancel, the harness deposit): the payment as settled, when it changed,
/// to be told with [`tell_settled`] once the change is stored. Whoever settles tells: the
/// ledger changes a record atomically, so exactly one of them sees the account move, and the
/// others (the timer coming later) find nothing to tell.
pub(super) fn settled(p: &mut Payment, now_ms: i64) -> Option<Payment> {
    settle(p, now_ms).map(|_| p.clone())
}

/// Tells the webhooks (when there are any) a deposit or expiry [`settled`] found, or the harness
/// route's deposit, as the account's issue directed (`webhook=`): no request's own directive
/// is about these changes.
pub(super) fn tell_settled(hooks: Option<&Webhooks>, p: Option<&Payment>) {
    if let (Some(hooks), Some(p)) = (hooks, p) {
        hooks.payment_changed(p, issued_with(p));
    }
}

impl super::Api {
    /// A payment's change, told to the webhooks (when there are any) as the request's
    /// `webhook=` directs; a virtual account left waiting gets a timer for its directed deposit
    /// or its due date, whose change is told too.
    pub(super) fn changed(&self, p: &Payment, webhook: Option<&Webhook>) {
        let (Some(hooks), Some(timers)) = (&self.webhooks, &self.timers) else {
            return;
        };
        hooks.payment_changed(p, webhook);
        timers.add_for(p, hooks);
    }

    /// `POST /__gazua/deposits/{paymentKey}`: the test console's "deposit" button. A waiting
    /// account is deposited now (`DONE`, answered with the payment); any other payment is
    /// refused with what it is, an unknown key with the PG's not-found. `Err` only when the
    /// ledger could not be reached.
    pub async fn deposit_now(
        &self,
        key: &str,
        now: jiff::Timestamp,
        lang: Lang,
    ) -> Result<(StatusCode, Vec<u8>), LedgerDown> {
        let now_ms = now.as_millisecond();
        let mut answer = None;
        let mut deposited = None;
        let mut moved = None;
        self.ledger
            .modify(key, &mut |slot| {
                deposited = None;
                moved = None;
                answer = Some(match slot {
                    None => (
                        StatusCode::NOT_FOUND,
                        super::known("NOT_FOUND_PAYMENT").message(lang).to_owned(),
                        None,
                    ),
                    Some(p) => {
                        // Past its directed deposit or its due date before its timer came: the
                        // change is this request's to tell.
                        moved = settled(p, now_ms);
                        if p.va.is_none() || p.status != Status::WaitingForDeposit {
                            let what = if p.va.is_none() {
                                "a card payment"
                            } else {
                                p.status.as_str()
                            };
                            (
                                StatusCode::CONFLICT,
                                format!(
                                    "the payment is {what}; expected a virtual account \
                                     WAITING_FOR_DEPOSIT"
                                ),
                                None,
                            )
                        } else {
                            deposit(p, now_ms);
                            deposited = Some(p.clone());
                            (
                                StatusCode::OK,
                                String::new(),
                                Some(render::payment(p, lang)),
                            )
                        }
                    }
                });
            })
            .await?;
        tell_settled(self.webhooks.as_ref(), moved.as_ref());
        tell_settled(self.webhooks.as_ref(), deposited.as_ref());
        Ok(match answer {
            Some((_, _, Some(body))) => (StatusCode::OK, body),
            Some((status, message, None)) => {
                let code = if status == StatusCode::NOT_FOUND {
                    "NOT_FOUND_PAYMENT"
                } else {
                    "NOT_WAITING_FOR_DEPOSIT"
                };
                let body = serde_json::json!({ "code": code, "message": message });
                (status, body.to_string().into_bytes())
            }
            None => (StatusCode::NOT_FOUND, Vec::new()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting(deposit: Option<&Deposit>) -> Payment {
        let mut p = Payment::new("pk-va-1", "order-va-1", Some("n"), 1000, 1);
        p.va = Some(Box::new(VirtualAccount::new("20", "홍길동")));
        issue(&mut p, 1_000, 10_000, deposit, None);
        p
    }

    #[test]
    fn a_waiting_account_is_deposited_when_directed_and_expires_at_its_due_date() {
        let after = Deposit::After(crate::directive::Latency::parse("2s").unwrap());
        let mut p = waiting(Some(&after));
        assert_eq!(p.status, Status::WaitingForDeposit);
        assert_eq!(settle(&mut p, 2_999), None);
        assert_eq!(settle(&mut p, 3_000), Some(Status::Done));
        assert_eq!(p.approved_at, Some(3));

        let mut p = waiting(None);
        assert_eq!(settle(&mut p, 9_999), None);
        assert_eq!(settle(&mut p, 10_000), Some(Status::Expired));

        let mut p = waiting(Some(&Deposit::Expired(Duration::from_secs(1))));
        assert_eq!(settle(&mut p, 2_000), Some(Status::Expired));

        // A deposit directed after the due date never comes: the account expires first.
        let late = Deposit::After(crate::directive::Latency::parse("20s").unwrap());
        let mut p = waiting(Some(&late));
        assert_eq!(settle(&mut p, 30_000), Some(Status::Expired));
    }

    #[test]
    fn number_and_secret_are_stable_per_key() {
        assert_eq!(account_number("a").len(), 14);
        assert_eq!(secret("a"), secret("a"));
        assert_ne!(secret("a"), secret("b"));
        assert!(secret("a").starts_with("ps_"));
    }
}
