//! The async seam between the routes and the ledger: an in-process ledger answers at once (its
//! future completes on the first poll, nothing boxed), a networked one is awaited. The routes
//! see one interface either way and a failed ledger call as [`LedgerDown`].

use std::sync::Arc;

use super::ledger::{Ledger, Payment, Reservation, Stored};
use super::redis_ledger::{LedgerDown, RedisLedger};

pub enum Store {
    /// The memory or stateless ledger (or any synchronous one).
    Local(Arc<dyn Ledger>),
    Redis(Arc<RedisLedger>),
}

impl Store {
    pub fn records(&self) -> bool {
        match self {
            Store::Local(l) => l.records(),
            Store::Redis(_) => true,
        }
    }

    /// Whether the ledger can serve now (readiness): always for an in-process one.
    pub fn healthy(&self) -> bool {
        match self {
            Store::Local(_) => true,
            Store::Redis(r) => r.healthy(),
        }
    }

    /// Calls `f` with the payment recorded under `key`, if any.
    pub async fn view(
        &self,
        key: &str,
        f: &mut (dyn FnMut(Option<&Payment>) + Send),
    ) -> Result<(), LedgerDown> {
        match self {
            Store::Local(l) => l.view(key, f),
            Store::Redis(r) => f(r.view(key).await?.as_ref()),
        }
        Ok(())
    }

    /// Calls `f` with the latest payment recorded for `order_id`, if any.
    pub async fn view_order(
        &self,
        order_id: &str,
        f: &mut (dyn FnMut(Option<&Payment>) + Send),
    ) -> Result<(), LedgerDown> {
        match self {
            Store::Local(l) => l.view_order(order_id, f),
            Store::Redis(r) => f(r.view_order(order_id).await?.as_ref()),
        }
        Ok(())
    }

    /// Changes the slot of `key` in one atomic step (see [`Ledger::modify`]). A shared ledger
    /// may call `f` more than once, each time on the record then stored: `f` must only
    /// compute from its argument.
    pub async fn modify(
        &self,
        key: &str,
        f: &mut (dyn FnMut(&mut Option<Payment>) + Send),
    ) -> Result<(), LedgerDown> {
        match self {
            Store::Local(l) => {
                l.modify(key, f);
                Ok(())
            }
            Store::Redis(r) => r.modify(key, f).await,
        }
    }

    /// Claims an idempotency scope (see [`Ledger::reserve`]).
    pub async fn reserve(&self, scope: u64, now_ms: i64) -> Result<Reservation, LedgerDown> {
        match self {
            Store::Local(l) => Ok(l.reserve(scope, now_ms)),
            Store::Redis(r) => r.reserve(scope).await,
        }
    }

    pub async fn remember(&self, scope: u64, stored: Stored) -> Result<(), LedgerDown> {
        match self {
            Store::Local(l) => {
                l.remember(scope, stored);
                Ok(())
            }
            Store::Redis(r) => r.remember(scope, &stored).await,
        }
    }

    /// Gives a reserved scope up. Called from a drop guard, so it cannot wait: a shared ledger
    /// releases in a task of its own (and, should that fail, the reservation lapses by itself).
    pub fn release(&self, scope: u64) {
        match self {
            Store::Local(l) => l.release(scope),
            Store::Redis(r) => {
                let r = r.clone();
                tokio::spawn(async move { r.release(scope).await });
            }
        }
    }
}

/// The output of a future that an in-process ledger completes on its first poll, as the
/// memory and stateless ledgers' answers do: for callers outside a runtime (tests,
/// micro-benchmarks). Panics if the future is not ready, which only a networked ledger causes.
pub fn ready_now<F: Future>(future: F) -> F::Output {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match std::pin::pin!(future).poll(&mut cx) {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => panic!("an in-process ledger's answer must not wait"),
    }
}
