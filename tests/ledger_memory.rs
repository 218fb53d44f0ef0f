//! What the memory ledger costs per payment and per stored `Idempotency-Key` answer, measured as
//! the process's resident memory (Linux `/proc/self/statm`) while `Api::answer` confirms N
//! payments — the figures the README states. Run with more entries and the figures printed:
//!
//! `GAZUA_MEMORY_N=1000000 cargo test --release --test ledger_memory -- --nocapture`
//!
//! (This file holds one test, so no other test shares its process and its memory.)

use std::sync::Arc;
use std::time::Duration;

use gazua_pay::api::{Api, ApiRequest, ApiSettings, Lang, LedgerChoice, ready_now};
use gazua_pay::directive::{Fault, Outcome};
use gazua_pay::engine::{Decision, FieldSources};
use gazua_pay::route::route;
use http::{HeaderMap, HeaderValue, Method, StatusCode};

/// Resident bytes of this process.
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("linux /proc/self/statm");
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// Confirms payments `from..to` (fresh keys), each with its own `Idempotency-Key` when asked.
fn confirm_many(api: &Api, from: usize, to: usize, with_keys: bool) {
    let decision = Decision {
        outcome: Outcome::Approved,
        latency: Duration::ZERO,
        fault: Fault::None,
        status: None,
        profile: Arc::from("default"),
        phase: None,
        deposit: None,
        webhook: None,
        sources: FieldSources::BUILTIN,
    };
    let target = route(&Method::POST, "/v1/payments/confirm");
    let now = jiff::Timestamp::now();
    for i in from..to {
        // A realistic key: about the length of the PG's (50 characters).
        let body = format!(
            r#"{{"paymentKey":"tgen_20261201{i:012}abcdefghijklmnopqrstuvwxyz","orderId":"order-{i:012}","amount":15000}}"#
        );
        let mut headers = HeaderMap::new();
        if with_keys {
            let key = format!("5f0e6c1a-7b2d-4e8f-9a3c-{i:012}");
            headers.insert("idempotency-key", HeaderValue::from_str(&key).unwrap());
        }
        // The memory ledger answers on the first poll: no runtime needed.
        let reply = ready_now(api.answer(
            &ApiRequest {
                target: &target,
                method: &Method::POST,
                headers: &headers,
                body: body.as_bytes(),
                lang: Lang::Ko,
                now,
            },
            &decision,
        ));
        assert_eq!(reply.status, StatusCode::OK);
    }
}

#[test]
fn a_payment_and_a_stored_answer_each_cost_well_under_a_kilobyte() {
    let n: usize = std::env::var("GAZUA_MEMORY_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30_000);
    let api = Api::new(ApiSettings {
        ledger: LedgerChoice::Memory { capacity: 2 * n },
        ..ApiSettings::default()
    });
    // Warm the allocator and the per-request paths before measuring.
    confirm_many(&api, 0, 1000, true);

    let before = rss();
    confirm_many(&api, 1000, 1000 + n, false);
    let payments = rss() - before;

    let before = rss();
    confirm_many(&api, 1000 + n, 1000 + 2 * n, true);
    let with_answers = rss() - before;

    let per_payment = payments as f64 / n as f64;
    let per_answer = (with_answers as f64 - payments as f64) / n as f64;
    println!(
        "ledger memory over {n} confirms: {per_payment:.0} B per payment, \
         {per_answer:.0} B more per stored Idempotency-Key answer"
    );
    // The answer used to be kept as its JSON (about 2 KB with its map entry); a snapshot of
    // the payment is a fraction of that. Bounds are loose: RSS moves in whole pages and maps
    // grow by doubling.
    assert!(per_payment < 700.0, "{per_payment:.0} B per payment");
    assert!(per_answer < 700.0, "{per_answer:.0} B per stored answer");
}
