//! Tests of the API through `Api::answer`, with hand-built targets, requests and decisions.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde_json::Value;

use super::*;
use crate::codes::{CATALOG, CodeKind};
use crate::directive::{CodeName, CodeRef, Fault, Outcome};
use crate::engine::{Decision, FieldSources};
use crate::route::route;

/// 2024-02-13T12:18:14+09:00
const T0: i64 = 1_707_794_294;

fn decision(outcome: Outcome) -> Decision {
    Decision {
        outcome,
        latency: Duration::ZERO,
        fault: Fault::None,
        status: None,
        profile: Arc::from("default"),
        phase: None,
        deposit: None,
        webhook: None,
        sources: FieldSources::BUILTIN,
    }
}

fn declined(name: &str) -> Outcome {
    Outcome::Declined(CodeRef {
        code: Some(CodeName::Known(codes::lookup(name).unwrap())),
        status: None,
    })
}

fn error(name: &str) -> Outcome {
    Outcome::Error(CodeRef {
        code: Some(CodeName::Known(codes::lookup(name).unwrap())),
        status: None,
    })
}

struct Call<'a> {
    method: Method,
    path: &'a str,
    headers: Vec<(&'a str, &'a str)>,
    body: &'a str,
    outcome: Outcome,
    at: i64,
    latency: Duration,
}

fn call<'a>(method: Method, path: &'a str, body: &'a str) -> Call<'a> {
    Call {
        method,
        path,
        headers: vec![("content-type", "application/json")],
        body,
        outcome: Outcome::Approved,
        at: T0,
        latency: Duration::ZERO,
    }
}

impl<'a> Call<'a> {
    fn header(mut self, name: &'a str, value: &'a str) -> Self {
        self.headers.push((name, value));
        self
    }

    fn outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }

    fn at(mut self, at: i64) -> Self {
        self.at = at;
        self
    }

    fn send(self, api: &Api) -> (StatusCode, Value, Reply) {
        let target = route(&self.method, self.path);
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        let req = ApiRequest {
            target: &target,
            method: &self.method,
            headers: &headers,
            body: self.body.as_bytes(),
            lang: Lang::from_headers(&headers),
            now: jiff::Timestamp::from_second(self.at).unwrap(),
        };
        let mut d = decision(self.outcome);
        d.latency = self.latency;
        let reply = ready_now(api.answer(&req, &d));
        let json: Value = serde_json::from_slice(&reply.body).expect("every answer is JSON");
        (reply.status, json, reply)
    }
}

fn memory() -> Api {
    Api::new(ApiSettings {
        seed: 42,
        ..ApiSettings::default()
    })
}

fn stateless(seed: u64) -> Api {
    Api::new(ApiSettings {
        seed,
        ledger: LedgerChoice::Stateless,
        ..ApiSettings::default()
    })
}

const CREATE: &str = r#"{"method":"카드","amount":15000,"orderId":"order-0001","orderName":"토스 티셔츠 외 2건","successUrl":"https://shop.example/success","failUrl":"https://shop.example/fail","unknownField":{"x":[1,2]}}"#;

fn create(api: &Api) -> String {
    let (status, json, _) = call(Method::POST, "/v1/payments", CREATE).send(api);
    assert_eq!(status, StatusCode::OK, "{json}");
    json["paymentKey"].as_str().unwrap().to_owned()
}

fn confirm_body(key: &str, order: &str, amount: u64) -> String {
    format!(r#"{{"paymentKey":"{key}","orderId":"{order}","amount":{amount}}}"#)
}

/// Every field of the reference's Payment object (§1.7).
const PAYMENT_FIELDS: [&str; 37] = [
    "mId",
    "lastTransactionKey",
    "paymentKey",
    "orderId",
    "orderName",
    "taxExemptionAmount",
    "status",
    "requestedAt",
    "approvedAt",
    "useEscrow",
    "cultureExpense",
    "card",
    "virtualAccount",
    "transfer",
    "mobilePhone",
    "giftCertificate",
    "cashReceipt",
    "cashReceipts",
    "discount",
    "cancels",
    "secret",
    "type",
    "easyPay",
    "country",
    "failure",
    "isPartialCancelable",
    "receipt",
    "checkout",
    "currency",
    "totalAmount",
    "balanceAmount",
    "suppliedAmount",
    "vat",
    "taxFreeAmount",
    "metadata",
    "method",
    "version",
];

fn assert_payment_shape(json: &Value) {
    let object = json.as_object().expect("a payment is an object");
    for field in PAYMENT_FIELDS {
        assert!(object.contains_key(field), "missing {field} in {json}");
    }
    assert_eq!(
        object.len(),
        PAYMENT_FIELDS.len(),
        "no extra fields: {json}"
    );
    assert_eq!(json["mId"], "gazuapay");
    assert_eq!(json["version"], "2022-11-16");
    assert_eq!(json["currency"], "KRW");
    assert_eq!(json["country"], "KR");
    let balance = json["balanceAmount"].as_u64().unwrap();
    let supplied = json["suppliedAmount"].as_u64().unwrap();
    let vat = json["vat"].as_u64().unwrap();
    assert_eq!(
        supplied + vat,
        balance,
        "supplied + vat = balance in {json}"
    );
    let kst = |v: &Value| {
        let s = v.as_str().unwrap();
        assert_eq!(s.len(), 25, "{s}");
        assert!(s.ends_with("+09:00") && &s[10..11] == "T", "{s}");
    };
    kst(&json["requestedAt"]);
    if !json["approvedAt"].is_null() {
        kst(&json["approvedAt"]);
    }
}

#[test]
fn the_merchant_flow_runs_like_the_pg() {
    let api = memory();
    // Create: READY with a minted key and a checkout URL.
    let (status, ready, _) = call(Method::POST, "/v1/payments", CREATE).send(&api);
    assert_eq!(status, StatusCode::OK);
    assert_payment_shape(&ready);
    let key = ready["paymentKey"].as_str().unwrap().to_owned();
    assert!(key.len() <= 200);
    assert_eq!(ready["status"], "READY");
    assert_eq!(ready["orderName"], "토스 티셔츠 외 2건");
    assert_eq!(ready["approvedAt"], Value::Null);
    assert_eq!(ready["card"], Value::Null);
    assert_eq!(ready["lastTransactionKey"], Value::Null);
    assert_eq!(ready["type"], "NORMAL");
    // With no Host to name Gazua by, the window is put on the PG's host; its query carries
    // the signed redirect targets (tests/checkout.rs follows it through a socket).
    let checkout = ready["checkout"]["url"].as_str().unwrap();
    let expected = format!(
        "https://api.tosspayments.com/v1/payments/{key}/checkout?successUrl=https%3A%2F%2Fshop.example%2Fsuccess&failUrl=https%3A%2F%2Fshop.example%2Ffail&sig="
    );
    assert!(checkout.starts_with(&expected), "{checkout}");

    // Confirm: DONE, amounts split, card masked, times in KST seconds.
    let body = confirm_body(&key, "order-0001", 15000);
    let (status, done, _) = call(Method::POST, "/v1/payments/confirm", &body)
        .at(T0 + 60)
        .send(&api);
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_payment_shape(&done);
    assert_eq!(done["status"], "DONE");
    assert_eq!(done["method"], "카드");
    assert_eq!(done["totalAmount"], 15000);
    assert_eq!(done["balanceAmount"], 15000);
    assert_eq!(done["suppliedAmount"], 13636);
    assert_eq!(done["vat"], 1364);
    assert_eq!(done["requestedAt"], "2024-02-13T12:18:14+09:00");
    assert_eq!(done["approvedAt"], "2024-02-13T12:19:14+09:00");
    assert_eq!(done["cancels"], Value::Null);
    assert_eq!(done["failure"], Value::Null);
    assert_eq!(done["isPartialCancelable"], true);
    let card = &done["card"];
    let number = card["number"].as_str().unwrap();
    assert_eq!(number.len(), 16);
    assert_eq!(&number[8..12], "****");
    let approve_no = card["approveNo"].as_str().unwrap();
    assert_eq!(approve_no.len(), 8);
    assert!(approve_no.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(card["amount"], 15000);
    assert_eq!(card["installmentPlanMonths"], 0);
    assert_eq!(card["acquireStatus"], "READY");
    assert!(card["issuerCode"].as_str().unwrap().len() == 2);
    let approval_tx = done["lastTransactionKey"].as_str().unwrap().to_owned();
    assert_eq!(approval_tx.len(), 32);
    let receipt = done["receipt"]["url"].as_str().unwrap();
    assert!(
        receipt
            .starts_with("https://dashboard.tosspayments.com/receipt/redirection?transactionId=")
    );

    // Inquiry by key and by orderId: the same payment, the same card.
    let (status, by_key, _) = call(Method::GET, &format!("/v1/payments/{key}"), "").send(&api);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_key, done);
    let (status, by_order, _) = call(Method::GET, "/v1/payments/orders/order-0001", "").send(&api);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_order, done);

    // A second confirm is refused whatever was decided.
    let (status, again, _) = call(Method::POST, "/v1/payments/confirm", &body)
        .outcome(declined("REJECT_CARD_PAYMENT"))
        .send(&api);
    assert_eq!(
        (status, &again["code"]),
        (StatusCode::BAD_REQUEST, &"ALREADY_PROCESSED_PAYMENT".into())
    );

    // Partial cancel: balance and VAT follow, one cancel recorded.
    let cancel_path = format!("/v1/payments/{key}/cancel");
    let (status, partial, _) = call(
        Method::POST,
        &cancel_path,
        r#"{"cancelReason":"고객 변심","cancelAmount":5000}"#,
    )
    .at(T0 + 120)
    .send(&api);
    assert_eq!(status, StatusCode::OK, "{partial}");
    assert_payment_shape(&partial);
    assert_eq!(partial["status"], "PARTIAL_CANCELED");
    assert_eq!(partial["totalAmount"], 15000);
    assert_eq!(partial["balanceAmount"], 10000);
    assert_eq!(partial["vat"], 909);
    let cancels = partial["cancels"].as_array().unwrap();
    assert_eq!(cancels.len(), 1);
    assert_eq!(cancels[0]["cancelAmount"], 5000);
    assert_eq!(cancels[0]["cancelReason"], "고객 변심");
    assert_eq!(cancels[0]["canceledAt"], "2024-02-13T12:20:14+09:00");
    assert_eq!(cancels[0]["cancelStatus"], "DONE");
    assert_eq!(cancels[0]["refundableAmount"], 10000);
    assert_eq!(partial["lastTransactionKey"], cancels[0]["transactionKey"]);
    assert_ne!(partial["lastTransactionKey"], approval_tx.as_str());

    // Beyond the balance: refused, nothing changes.
    let (status, too_much, _) = call(
        Method::POST,
        &cancel_path,
        r#"{"cancelReason":"x","cancelAmount":10001}"#,
    )
    .send(&api);
    assert_eq!(
        (status, &too_much["code"]),
        (StatusCode::FORBIDDEN, &"NOT_CANCELABLE_AMOUNT".into())
    );

    // Full cancel of the rest.
    let (status, canceled, _) = call(
        Method::POST,
        &cancel_path,
        r#"{"cancelReason":"재고 부족"}"#,
    )
    .send(&api);
    assert_eq!(status, StatusCode::OK, "{canceled}");
    assert_eq!(canceled["status"], "CANCELED");
    assert_eq!(canceled["balanceAmount"], 0);
    assert_eq!(canceled["suppliedAmount"], 0);
    assert_eq!(canceled["vat"], 0);
    assert_eq!(canceled["card"]["acquireStatus"], "CANCELED");
    let cancels = canceled["cancels"].as_array().unwrap();
    assert_eq!(cancels.len(), 2);
    assert_eq!(cancels[1]["cancelAmount"], 10000);
    assert_eq!(cancels[1]["refundableAmount"], 0);
    assert_eq!(canceled["lastTransactionKey"], cancels[1]["transactionKey"]);

    // A second cancel is refused.
    let (status, twice, _) =
        call(Method::POST, &cancel_path, r#"{"cancelReason":"again"}"#).send(&api);
    assert_eq!(
        (status, &twice["code"]),
        (StatusCode::BAD_REQUEST, &"ALREADY_CANCELED_PAYMENT".into())
    );
    let (_, after, _) = call(Method::GET, &format!("/v1/payments/{key}"), "").send(&api);
    assert_eq!(after, canceled);
}

#[test]
fn a_stateless_fleet_agrees_on_minted_keys() {
    let (a, b) = (stateless(9), stateless(9));
    let key = create(&a);
    let (status, done, _) = call(
        Method::POST,
        "/v1/payments/confirm",
        &confirm_body(&key, "order-0001", 15000),
    )
    .send(&b);
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["status"], "DONE");
    let (status, seen, _) = call(Method::GET, &format!("/v1/payments/{key}"), "").send(&a);
    assert_eq!(status, StatusCode::OK);
    assert_payment_shape(&seen);
    assert_eq!(seen["status"], "DONE");
    assert_eq!(seen["orderName"], "토스 티셔츠 외 2건");
    for field in [
        "card",
        "lastTransactionKey",
        "receipt",
        "totalAmount",
        "vat",
        "orderId",
    ] {
        assert_eq!(seen[field], done[field], "{field} agrees across instances");
    }
    let (status, canceled, _) = call(
        Method::POST,
        &format!("/v1/payments/{key}/cancel"),
        r#"{"cancelReason":"x","cancelAmount":1000}"#,
    )
    .send(&b);
    assert_eq!(status, StatusCode::OK, "{canceled}");
    assert_eq!(canceled["status"], "PARTIAL_CANCELED");
    assert_eq!(canceled["balanceAmount"], 14000);
    assert_eq!(canceled["card"], done["card"]);

    // A fleet with another seed does not know the key; an unknown key or order is not found.
    let other = stateless(10);
    let (status, json, _) = call(Method::GET, &format!("/v1/payments/{key}"), "").send(&other);
    assert_eq!(
        (status, &json["code"]),
        (StatusCode::NOT_FOUND, &"NOT_FOUND_PAYMENT".into())
    );
    let (status, _, _) = call(Method::GET, "/v1/payments/orders/order-0001", "").send(&a);
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[test]
fn a_lost_payment_is_done_when_looked_up() {
    let api = memory();
    let key = create(&api);
    let (status, json, _) = call(
        Method::POST,
        "/v1/payments/confirm",
        &confirm_body(&key, "order-0001", 15000),
    )
    .outcome(Outcome::Lost(Fault::Hang))
    .send(&api);
    assert_eq!((status, &json["status"]), (StatusCode::OK, &"DONE".into()));
    for path in [
        format!("/v1/payments/{key}"),
        "/v1/payments/orders/order-0001".into(),
    ] {
        let (status, seen, _) = call(Method::GET, &path, "").send(&api);
        assert_eq!(
            (status, &seen["status"]),
            (StatusCode::OK, &"DONE".into()),
            "{path}"
        );
    }
}

#[test]
fn a_declined_confirm_aborts_the_payment_with_its_failure() {
    let api = memory();
    let key = create(&api);
    let body = confirm_body(&key, "order-0001", 15000);
    let (status, json, reply) = call(Method::POST, "/v1/payments/confirm", &body)
        .outcome(declined("EXCEED_MAX_DAILY_PAYMENT_COUNT"))
        .send(&api);
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(json["code"], "EXCEED_MAX_DAILY_PAYMENT_COUNT");
    assert!(
        matches!(reply.code, ReplyCode::Known(c) if c.name == "EXCEED_MAX_DAILY_PAYMENT_COUNT")
    );
    let (_, seen, _) = call(Method::GET, &format!("/v1/payments/{key}"), "").send(&api);
    assert_payment_shape(&seen);
    assert_eq!(seen["status"], "ABORTED");
    assert_eq!(seen["failure"]["code"], "EXCEED_MAX_DAILY_PAYMENT_COUNT");
    assert_eq!(
        seen["failure"]["message"],
        "하루 결제 가능 횟수를 초과했습니다."
    );
    assert_eq!(seen["method"], Value::Null);
    let (status, json, _) = call(
        Method::POST,
        &format!("/v1/payments/{key}/cancel"),
        r#"{"cancelReason":"x"}"#,
    )
    .send(&api);
    assert_eq!(
        (status, &json["code"]),
        (StatusCode::FORBIDDEN, &"NOT_CANCELABLE_PAYMENT".into())
    );
}

#[test]
fn an_errored_confirm_approves_nothing_and_can_be_retried() {
    let api = memory();
    let key = create(&api);
    let body = confirm_body(&key, "order-0001", 15000);
    let (status, json, _) = call(Method::POST, "/v1/payments/confirm", &body)
        .outcome(error("FAILED_INTERNAL_SYSTEM_PROCESSING"))
        .send(&api);
    assert_eq!(
        (status, &json["code"]),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            &"FAILED_INTERNAL_SYSTEM_PROCESSING".into()
        )
    );
    let (_, seen, _) = call(Method::GET, &format!("/v1/payments/{key}"), "").send(&api);
    assert_eq!(seen["status"], "IN_PROGRESS");
    let (status, done, _) = call(Method::POST, "/v1/payments/confirm", &body).send(&api);
    assert_eq!((status, &done["status"]), (StatusCode::OK, &"DONE".into()));
}

#[test]
fn a_key_gazua_never_minted_is_created_by_its_confirm() {
    let api = memory();
    let body = confirm_body(
        "5EnNZRJGvaBX7zk2yd8ydw26XvwXkLrx9POLqKQjmAw4b0e1",
        "order-777777",
        1000,
    );
    let (status, json, _) = call(Method::POST, "/v1/payments/confirm", &body).send(&api);
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(
        (json["suppliedAmount"].as_u64(), json["vat"].as_u64()),
        (Some(909), Some(91))
    );
    assert_eq!(json["orderName"], Value::Null);
    let (status, _, _) = call(Method::GET, "/v1/payments/orders/order-777777", "").send(&api);
    assert_eq!(status, StatusCode::OK);
    let (status, json, _) = call(Method::GET, "/v1/payments/never-seen-key", "").send(&api);
    assert_eq!(
        (status, &json["code"]),
        (StatusCode::NOT_FOUND, &"NOT_FOUND_PAYMENT".into())
    );
}

#[test]
fn a_confirm_must_match_the_minted_order_and_amount() {
    let api = stateless(1);
    let key = create(&api);
    let (status, json, _) = call(
        Method::POST,
        "/v1/payments/confirm",
        &confirm_body(&key, "order-0001", 14000),
    )
    .send(&api);
    assert_eq!(
        (status, &json["code"]),
        (StatusCode::BAD_REQUEST, &"INVALID_REQUEST".into())
    );
    assert!(
        json["message"].as_str().unwrap().contains("amount"),
        "{json}"
    );
    let (status, json, _) = call(
        Method::POST,
        "/v1/payments/confirm",
        &confirm_body(&key, "order-0002", 15000),
    )
    .send(&api);
    assert_eq!(
        (status, &json["code"]),
        (StatusCode::FORBIDDEN, &"FORBIDDEN_REQUEST".into())
    );
}

#[test]
fn every_answer_names_what_shaped_it() {
    let api = memory();
    let key = create(&api);
    let confirm = |body: &str, outcome: Outcome| {
        call(Method::POST, "/v1/payments/confirm", body)
            .outcome(outcome)
            .send(&api)
    };
    let mut seen = Vec::new();
    let mut record = |(_, json, reply): (StatusCode, Value, Reply)| {
        let code = json["code"].as_str().unwrap_or("OK").to_owned();
        seen.push((code, reply.origin));
    };
    record(confirm(
        &confirm_body(&key, "order-0002", 15000),
        Outcome::Approved,
    ));
    record(confirm(
        &confirm_body(&key, "order-0001", 14000),
        Outcome::Approved,
    ));
    record(confirm(
        &confirm_body(&key, "order-0001", 15000),
        declined("REJECT_CARD_PAYMENT"),
    ));
    record(confirm(
        &confirm_body(&key, "order-0001", 15000),
        Outcome::Approved,
    ));
    let cancel = |key: &str, body: &str| {
        call(Method::POST, &format!("/v1/payments/{key}/cancel"), body).send(&api)
    };
    record(cancel(&key, r#"{"cancelReason":"x"}"#));
    record(confirm(
        &confirm_body("pk_other", "order-0003", 15000),
        Outcome::Approved,
    ));
    record(cancel(
        "pk_other",
        r#"{"cancelReason":"x","refundableAmount":1}"#,
    ));
    record(cancel("pk_other", r#"{"cancelReason":"x"}"#));
    record(cancel("pk_other", r#"{"cancelReason":"x"}"#));
    record(call(Method::GET, "/v1/payments/pk_unknown", "").send(&api));
    record(confirm(r#"{"paymentKey":"pk_1"}"#, Outcome::Approved));
    record(
        call(Method::POST, "/v1/payments/confirm", "{}")
            .outcome(Outcome::Throttled)
            .send(&api),
    );
    let expected = [
        ("FORBIDDEN_REQUEST", Origin::Ledger),
        ("INVALID_REQUEST", Origin::Ledger),
        ("REJECT_CARD_PAYMENT", Origin::Decision),
        ("ALREADY_PROCESSED_PAYMENT", Origin::Ledger),
        ("NOT_CANCELABLE_PAYMENT", Origin::Ledger),
        ("OK", Origin::Decision),
        ("NOT_MATCHES_REFUNDABLE_AMOUNT", Origin::Ledger),
        ("OK", Origin::Decision),
        ("ALREADY_CANCELED_PAYMENT", Origin::Ledger),
        ("NOT_FOUND_PAYMENT", Origin::Ledger),
        ("INVALID_REQUEST", Origin::Validation),
        ("FORBIDDEN_CONSECUTIVE_REQUEST", Origin::Decision),
    ];
    let seen: Vec<(&str, Origin)> = seen.iter().map(|(c, o)| (c.as_str(), *o)).collect();
    assert_eq!(seen, expected);
}

/// A valid request for each route of a payment `key` (DONE) and a billing key.
fn requests(key: &str, billing_key: &str) -> Vec<(Route, Method, String, String)> {
    vec![
        (Route::Create, Method::POST, "/v1/payments".into(), CREATE.replace("order-0001", "order-9999")),
        (Route::Confirm, Method::POST, "/v1/payments/confirm".into(), confirm_body(key, "order-0001", 15000)),
        (Route::Inquiry, Method::GET, format!("/v1/payments/{key}"), String::new()),
        (Route::Cancel, Method::POST, format!("/v1/payments/{key}/cancel"), r#"{"cancelReason":"x"}"#.into()),
        (
            Route::BillingIssue,
            Method::POST,
            "/v1/billing/authorizations/issue".into(),
            r#"{"authKey":"auth-1","customerKey":"customer-1"}"#.into(),
        ),
        (
            Route::BillingCharge,
            Method::POST,
            format!("/v1/billing/{billing_key}"),
            r#"{"customerKey":"customer-1","amount":4900,"orderId":"billing-0001","orderName":"정기 구독"}"#.into(),
        ),
    ]
}

#[test]
fn every_declined_or_error_code_renders_with_its_documented_status() {
    // Stateless, so every request starts from the same state: the confirm's key is READY
    // (from the key) and the cancel's is DONE.
    let api = stateless(5);
    let key = create(&api);
    let billing_key = {
        let (_, json, _) = call(
            Method::POST,
            "/v1/billing/authorizations/issue",
            r#"{"authKey":"a","customerKey":"customer-1"}"#,
        )
        .send(&api);
        json["billingKey"].as_str().unwrap().to_owned()
    };
    for (route, method, path, body) in requests(&key, &billing_key) {
        for info in CATALOG
            .iter()
            .filter(|c| matches!(c.kind, CodeKind::Declined | CodeKind::Error))
        {
            let outcome = if info.kind == CodeKind::Declined {
                declined(info.name)
            } else {
                error(info.name)
            };
            let (status, json, reply) = call(method.clone(), &path, &body)
                .outcome(outcome)
                .send(&api);
            assert_eq!(
                status.as_u16(),
                info.status,
                "{} on {route:?}: {json}",
                info.name
            );
            assert_eq!(json["code"], info.name);
            assert_eq!(json["message"], info.ko);
            assert_eq!(reply.code, ReplyCode::Known(info));
        }
        for kind in [CodeKind::Declined, CodeKind::Error] {
            let Some(info) = codes::default_code(route, kind) else {
                continue;
            };
            let outcome = if kind == CodeKind::Declined {
                declined(info.name)
            } else {
                error(info.name)
            };
            let (status, _, _) = call(method.clone(), &path, &body)
                .outcome(outcome)
                .send(&api);
            assert_eq!(status.as_u16(), info.status);
        }
        let (status, json, _) = call(method.clone(), &path, &body)
            .outcome(Outcome::Throttled)
            .send(&api);
        assert_eq!(
            (status, &json["code"]),
            (
                StatusCode::FORBIDDEN,
                &"FORBIDDEN_CONSECUTIVE_REQUEST".into()
            ),
            "{route:?}"
        );
        let (status, json, _) = call(method.clone(), &path, &body).send(&api);
        assert_eq!(status, StatusCode::OK, "approved {route:?}: {json}");
    }
}

#[test]
fn custom_codes_and_explicit_statuses_are_rendered_as_asked() {
    let api = stateless(5);
    let key = create(&api);
    let body = confirm_body(&key, "order-0001", 15000);
    let custom = Outcome::Error(CodeRef {
        code: Some(CodeName::Custom(Arc::from("MY_CODE"))),
        status: Some(StatusCode::BAD_GATEWAY),
    });
    let (status, json, reply) = call(Method::POST, "/v1/payments/confirm", &body)
        .outcome(custom)
        .send(&api);
    assert_eq!(
        (status, &json["code"]),
        (StatusCode::BAD_GATEWAY, &"MY_CODE".into())
    );
    assert_eq!(reply.code, ReplyCode::Custom(CodeKind::Error));
    let overridden = Outcome::Declined(CodeRef {
        code: Some(CodeName::Known(
            codes::lookup("REJECT_CARD_PAYMENT").unwrap(),
        )),
        status: Some(StatusCode::PAYMENT_REQUIRED),
    });
    let (status, _, _) = call(Method::POST, "/v1/payments/confirm", &body)
        .outcome(overridden)
        .send(&api);
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
}

#[test]
fn an_outcome_the_route_has_no_answer_for_is_a_directive_error() {
    let api = memory();
    let key = create(&api);
    for (method, path) in [
        (Method::GET, format!("/v1/payments/{key}")),
        (Method::POST, "/v1/payments".into()),
    ] {
        let body = if method == Method::GET { "" } else { CREATE };
        let (status, json, _) = call(method, &path, body)
            .outcome(Outcome::Declined(CodeRef::DEFAULT))
            .send(&api);
        assert_eq!(
            (status, &json["code"]),
            (StatusCode::BAD_REQUEST, &"GAZUA_INVALID_DIRECTIVE".into())
        );
        let message = json["message"].as_str().unwrap();
        assert!(
            message.contains("does not apply") && message.contains("confirm"),
            "{message}"
        );
    }
}

#[test]
fn billing_keys_charge_billing_payments() {
    let api = memory();
    let (status, issued, _) = call(
        Method::POST,
        "/v1/billing/authorizations/issue",
        r#"{"authKey":"auth-1","customerKey":"customer-1"}"#,
    )
    .send(&api);
    assert_eq!(status, StatusCode::OK, "{issued}");
    for field in [
        "mId",
        "customerKey",
        "authenticatedAt",
        "method",
        "billingKey",
        "card",
        "cardCompany",
        "cardNumber",
    ] {
        assert!(issued.get(field).is_some(), "{field}");
    }
    let billing_key = issued["billingKey"].as_str().unwrap();
    let path = format!("/v1/billing/{billing_key}");
    let charge = r#"{"customerKey":"customer-1","amount":1000,"orderId":"billing-0001","orderName":"정기 구독"}"#;
    let (status, paid, _) = call(Method::POST, &path, charge).send(&api);
    assert_eq!(status, StatusCode::OK, "{paid}");
    assert_payment_shape(&paid);
    assert_eq!(
        (&paid["type"], &paid["status"]),
        (&"BILLING".into(), &"DONE".into())
    );
    assert_eq!(paid["checkout"], Value::Null);
    let (_, again, _) = call(Method::POST, &path, charge).send(&api);
    assert_eq!(again["code"], "DUPLICATED_ORDER_ID");
    let stranger = charge
        .replace("customer-1", "customer-2")
        .replace("0001", "0002");
    let (status, json, _) = call(Method::POST, &path, &stranger).send(&api);
    assert_eq!(
        (status, &json["code"]),
        (StatusCode::BAD_REQUEST, &"NOT_MATCHES_CUSTOMER_KEY".into())
    );
    let declined_charge = charge.replace("0001", "0003");
    let (status, _, _) = call(Method::POST, &path, &declined_charge)
        .outcome(declined("REJECT_CARD_PAYMENT"))
        .send(&api);
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, seen, _) = call(Method::GET, "/v1/payments/orders/billing-0003", "").send(&api);
    assert_eq!(
        (&seen["status"], &seen["failure"]["code"]),
        (&"ABORTED".into(), &"REJECT_CARD_PAYMENT".into())
    );
}

#[test]
fn a_tag_given_at_create_travels_in_the_key() {
    let api = stateless(3);
    let tagged = CREATE.replace(
        "토스 티셔츠 외 2건",
        "티셔츠 [gazua: outcome=declined; latency=2s]",
    );
    let (status, json, _) = call(Method::POST, "/v1/payments", &tagged).send(&api);
    assert_eq!(status, StatusCode::OK);
    let key = json["paymentKey"].as_str().unwrap();
    assert!(key.starts_with(keys::TAGGED_PAYMENT_PREFIX));
    let expected =
        crate::directive::headers::parse_compound("outcome=declined; latency=2s").unwrap();
    let body = confirm_body(key, "order-0001", 15000);
    let confirm = route(&Method::POST, "/v1/payments/confirm");
    assert_eq!(
        api.request_tag(&confirm, body.as_bytes()),
        Some(Ok(expected.clone()))
    );
    let path = format!("/v1/payments/{key}");
    let inquiry = route(&Method::GET, &path);
    assert_eq!(
        api.request_tag(&inquiry, b""),
        Some(Ok(latency_only(expected)))
    );
    let untagged = create(&api);
    let body = confirm_body(&untagged, "order-0001", 15000);
    assert_eq!(api.request_tag(&confirm, body.as_bytes()), None);
}

#[test]
fn an_unrecorded_key_shows_what_its_tag_asked_of_the_confirm() {
    let m = keys::MintedPayment {
        billing: false,
        at: T0,
        amount: 1000,
        order_id: "order-0001".into(),
        order_name: None,
        tag: None,
        account: None,
    };
    let done = routes::seen_as("k", &m, None);
    assert_eq!(
        (done.status, done.approved_at),
        (ledger::Status::Done, Some(T0))
    );
    let declined = routes::seen_as("k", &m, Some(&Outcome::Declined(CodeRef::DEFAULT)));
    assert_eq!(declined.status, ledger::Status::Aborted);
    assert_eq!(declined.failure.unwrap().as_str(), "REJECT_CARD_PAYMENT");
    let errored = routes::seen_as("k", &m, Some(&error("PROVIDER_ERROR")));
    assert_eq!(errored.status, ledger::Status::InProgress);
    let mix =
        crate::directive::Mix::from_weights(vec![(500_000, Outcome::Throttled)], Outcome::Approved)
            .unwrap();
    assert_eq!(tag_verdict(&mix), None, "a mix says nothing certain");
    assert_eq!(
        tag_verdict(&crate::directive::Mix::single(Outcome::Approved)),
        Some(&Outcome::Approved)
    );
}

mod conformance;
mod idempotency;
mod va_webhooks;
mod validation;
