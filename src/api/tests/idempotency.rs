//! Idempotency-Key: a repeat replays the first answer, byte for byte, and a key is held,
//! released or reported in flight as the PG does.

use super::*;

#[test]
fn an_idempotency_key_replays_the_first_answer() {
    let api = memory();
    let key = create(&api);
    let body = confirm_body(&key, "order-0001", 15000);
    let first = call(Method::POST, "/v1/payments/confirm", &body)
        .header("idempotency-key", "idem-1")
        .send(&api);
    assert_eq!(first.0, StatusCode::OK);
    // Same key, same path: the first answer again, not ALREADY_PROCESSED_PAYMENT, even with
    // another body and another decision.
    let again = call(Method::POST, "/v1/payments/confirm", r#"{"whatever":1}"#)
        .header("idempotency-key", "idem-1")
        .outcome(error("PROVIDER_ERROR"))
        .at(T0 + 5)
        .send(&api);
    assert_eq!((again.0, &again.1), (StatusCode::OK, &first.1));
    // Another key is processed: the payment is already confirmed.
    let other = call(Method::POST, "/v1/payments/confirm", &body)
        .header("idempotency-key", "idem-2")
        .send(&api);
    assert_eq!(other.1["code"], "ALREADY_PROCESSED_PAYMENT");
    // The scope includes the path: the same key on a cancel is a new request.
    let cancel = call(
        Method::POST,
        &format!("/v1/payments/{key}/cancel"),
        r#"{"cancelReason":"x"}"#,
    )
    .header("idempotency-key", "idem-1")
    .send(&api);
    assert_eq!(cancel.1["status"], "CANCELED");
    // Too long a key.
    let long = "k".repeat(301);
    let (status, json, _) = call(Method::POST, "/v1/payments", CREATE)
        .header("idempotency-key", &long)
        .send(&api);
    assert_eq!(
        (status, &json["code"]),
        (StatusCode::BAD_REQUEST, &"INVALID_IDEMPOTENCY_KEY".into())
    );
}

#[test]
fn a_long_hangul_key_is_approved_once_and_its_confirms_do_not_grow_the_order_index() {
    let ledger = Arc::new(MemoryLedger::new(64));
    let api = Api::new(ApiSettings {
        ledger: LedgerChoice::Shared(ledger.clone()),
        ..ApiSettings::default()
    });
    // 100 characters, 300 bytes.
    let key = "결".repeat(100);
    for i in 0..200 {
        let body = confirm_body(&key, &format!("order-{i:04}"), 15000);
        let (status, json, _) = call(Method::POST, "/v1/payments/confirm", &body).send(&api);
        if i == 0 {
            assert_eq!(status, StatusCode::OK, "{json}");
        } else {
            assert_eq!(json["code"], "ALREADY_PROCESSED_PAYMENT", "confirm {i}");
        }
    }
    for i in 0..500 {
        let body = confirm_body(&format!("{key}{i}"), &format!("order-{i:04}"), 15000);
        call(Method::POST, "/v1/payments/confirm", &body).send(&api);
    }
    assert!(
        ledger.order_index_len() <= 64,
        "{}",
        ledger.order_index_len()
    );
}

#[test]
fn a_replay_is_the_first_answer_byte_for_byte_though_the_payment_moved_since() {
    let api = memory();
    let key = create(&api);
    let body = confirm_body(&key, "order-0001", 15000);
    let confirm = |at| {
        call(Method::POST, "/v1/payments/confirm", &body)
            .header("idempotency-key", "idem-snapshot")
            .at(at)
            .send(&api)
    };
    let first = confirm(T0);
    assert_eq!(first.1["status"], "DONE");
    let cancel = call(
        Method::POST,
        &format!("/v1/payments/{key}/cancel"),
        r#"{"cancelReason":"x","cancelAmount":1000}"#,
    )
    .send(&api);
    assert_eq!(cancel.1["status"], "PARTIAL_CANCELED");
    // The stored answer is a snapshot of the payment at its confirm, rendered again.
    let again = confirm(T0 + 60);
    assert_eq!(again.2.body, first.2.body);
    assert_eq!(again.1["balanceAmount"], 15000);
}

#[test]
fn an_answer_not_kept_releases_its_idempotency_key() {
    let api = memory();
    let key = create(&api);
    let body = confirm_body(&key, "order-0001", 15000);
    let failed = call(Method::POST, "/v1/payments/confirm", &body)
        .header("idempotency-key", "idem-retry")
        .outcome(error("PROVIDER_ERROR"))
        .send(&api);
    assert_eq!(failed.1["code"], "PROVIDER_ERROR");
    // Neither 409 nor the error again: the retry is processed.
    let retried = call(Method::POST, "/v1/payments/confirm", &body)
        .header("idempotency-key", "idem-retry")
        .at(T0 + 1)
        .send(&api);
    assert_eq!(
        (retried.0, &retried.1["status"]),
        (StatusCode::OK, &"DONE".into())
    );
}

#[test]
fn a_repeat_before_the_first_answer_is_due_is_still_processing() {
    let api = memory();
    let mut first = call(Method::POST, "/v1/payments", CREATE).header("idempotency-key", "slow");
    first.latency = Duration::from_secs(3);
    assert_eq!(first.send(&api).0, StatusCode::OK);
    let (status, json, _) = call(Method::POST, "/v1/payments", CREATE)
        .header("idempotency-key", "slow")
        .at(T0 + 1)
        .send(&api);
    assert_eq!(
        (status, &json["code"]),
        (
            StatusCode::CONFLICT,
            &"IDEMPOTENT_REQUEST_PROCESSING".into()
        )
    );
    let (status, _, _) = call(Method::POST, "/v1/payments", CREATE)
        .header("idempotency-key", "slow")
        .at(T0 + 4)
        .send(&api);
    assert_eq!(status, StatusCode::OK);
}
