//! Warns when the ledger refuses repeats of payments it already processed for most of the
//! money-moving answers: the mark of a load script that sends one fixed body, whose every
//! confirm after the first is the PG's `ALREADY_PROCESSED_PAYMENT`. The answers stay the PG's
//! own (a SUT must see what the real PG would say); one log line per window says why and how
//! to fix the script.

use std::sync::Arc;
use std::time::Duration;

use super::State;
use crate::api::{Origin, ReplyCode};
use crate::codes;
use crate::metrics::Metrics;
use crate::route::Route;

/// One warning at most per window.
pub const WINDOW: Duration = Duration::from_secs(10);
/// Fewer repeats than this in a window are a test of the refusal itself, not a mistake.
const MIN_REPEATS: u64 = 10;
/// The ledger's refusals of a repeated payment, cancel or order.
const REPEAT_CODES: [&str; 3] = [
    "ALREADY_PROCESSED_PAYMENT",
    "ALREADY_CANCELED_PAYMENT",
    "DUPLICATED_ORDER_ID",
];
/// The routes whose requests can repeat a payment.
const ROUTES: [Route; 3] = [Route::Confirm, Route::Cancel, Route::BillingCharge];

/// Repeats refused and answers given on the routes that can repeat, as counted so far.
#[derive(Clone, Copy)]
struct Tally {
    repeats: u64,
    answers: u64,
}

impl Tally {
    fn of(metrics: &Metrics) -> Tally {
        Tally {
            repeats: REPEAT_CODES
                .iter()
                .filter_map(|name| codes::lookup(name))
                .map(|info| metrics.overrides_with(Origin::Ledger, ReplyCode::Known(info)))
                .sum(),
            answers: ROUTES.iter().map(|r| metrics.answers_on(*r)).sum(),
        }
    }
}

/// Every [`WINDOW`], warns once when at least half of the confirms, cancels and billing
/// charges answered in it were refused as repeats.
pub async fn watch(state: Arc<State>) {
    let mut earlier = Tally::of(&state.metrics);
    loop {
        tokio::time::sleep(WINDOW).await;
        let now = Tally::of(&state.metrics);
        let repeats = now.repeats - earlier.repeats;
        let answers = now.answers - earlier.answers;
        if repeats >= MIN_REPEATS && repeats * 2 >= answers {
            tracing::warn!(
                repeats,
                answers,
                window_s = WINDOW.as_secs(),
                "the ledger refused most payments in this window as repeats of one already processed (ALREADY_PROCESSED_PAYMENT, ALREADY_CANCELED_PAYMENT, DUPLICATED_ORDER_ID), as the real PG would: a load script that sends one fixed body confirms the same payment again and again. Give each request its own paymentKey and orderId, or run with --ledger stateless to judge every request on its own"
            );
        }
        earlier = now;
    }
}
