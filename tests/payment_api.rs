//! The payment API through real sockets, as a merchant backend calls it.

mod common;

use common::{Reply, TestServer, send};
use gazua_pay::codes::CATALOG;
use gazua_pay::config::LedgerKind;
use http::StatusCode;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};

async fn post(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: Value,
) -> Reply {
    send(addr, "POST", path, headers, &body.to_string()).await
}

fn create_body(order: &str, amount: u64, name: &str) -> Value {
    json!({"method": "CARD", "amount": amount, "orderId": order, "orderName": name,
           "successUrl": "https://shop.test/success", "failUrl": "https://shop.test/fail"})
}

/// Fields every Payment object carries, `null` where not modelled.
fn assert_payment_shape(p: &Value) {
    for field in [
        "mId",
        "version",
        "paymentKey",
        "type",
        "orderId",
        "orderName",
        "currency",
        "method",
        "status",
        "requestedAt",
        "approvedAt",
        "useEscrow",
        "cultureExpense",
        "isPartialCancelable",
        "lastTransactionKey",
        "totalAmount",
        "balanceAmount",
        "suppliedAmount",
        "vat",
        "taxFreeAmount",
        "taxExemptionAmount",
        "card",
        "easyPay",
        "virtualAccount",
        "transfer",
        "mobilePhone",
        "giftCertificate",
        "cashReceipt",
        "cashReceipts",
        "discount",
        "cancels",
        "secret",
        "country",
        "failure",
        "receipt",
        "checkout",
        "metadata",
    ] {
        assert!(p.get(field).is_some(), "missing {field} in {p}");
    }
    let total = p["totalAmount"].as_u64().unwrap();
    let balance = p["balanceAmount"].as_u64().unwrap();
    assert!(balance <= total);
    assert_eq!(
        p["suppliedAmount"].as_u64().unwrap() + p["vat"].as_u64().unwrap(),
        balance,
        "{p}"
    );
}

fn is_kst_seconds(text: &Value) -> bool {
    let t = text.as_str().unwrap_or_default();
    t.len() == 25 && t.ends_with("+09:00") && t.as_bytes()[10] == b'T'
}

#[tokio::test]
async fn a_merchant_flow_from_create_to_refused_second_cancel() {
    let server = TestServer::default().await;
    let addr = server.addr;

    let created = post(
        addr,
        "/v1/payments",
        &[],
        create_body("order-flow-1", 15000, "양말 2켤레"),
    )
    .await;
    assert_eq!(created.status, StatusCode::OK, "{:?}", created.body);
    let p = created.json();
    assert_eq!(p["status"], "READY");
    let key = p["paymentKey"].as_str().unwrap().to_owned();
    assert!(key.len() <= 200);
    assert!(p["checkout"]["url"].as_str().unwrap().contains(&key));

    let confirmed = post(
        addr,
        "/v1/payments/confirm",
        &[],
        json!({"paymentKey": key, "orderId": "order-flow-1", "amount": 15000}),
    )
    .await;
    assert_eq!(confirmed.status, StatusCode::OK);
    let p = confirmed.json();
    assert_payment_shape(&p);
    assert_eq!(p["status"], "DONE");
    assert_eq!(
        (
            p["totalAmount"].as_u64(),
            p["suppliedAmount"].as_u64(),
            p["vat"].as_u64()
        ),
        (Some(15000), Some(13636), Some(1364))
    );
    assert_eq!(p["orderName"], "양말 2켤레");
    assert!(
        is_kst_seconds(&p["approvedAt"]) && is_kst_seconds(&p["requestedAt"]),
        "{p}"
    );
    let approve_no = p["card"]["approveNo"].as_str().unwrap();
    assert!(approve_no.len() == 8 && approve_no.bytes().all(|b| b.is_ascii_digit()));
    assert!(p["card"]["number"].as_str().unwrap().contains('*'));
    assert!(p["receipt"]["url"].is_string());

    let by_key = send(addr, "GET", &format!("/v1/payments/{key}"), &[], "")
        .await
        .json();
    let by_order = send(addr, "GET", "/v1/payments/orders/order-flow-1", &[], "")
        .await
        .json();
    assert_eq!(by_key, p, "inquiry by key shows the confirmed payment");
    assert_eq!(by_order, p, "inquiry by order shows the confirmed payment");

    let partial = post(
        addr,
        &format!("/v1/payments/{key}/cancel"),
        &[],
        json!({"cancelReason": "one pair back", "cancelAmount": 5000}),
    )
    .await;
    assert_eq!(partial.status, StatusCode::OK);
    let p = partial.json();
    assert_payment_shape(&p);
    assert_eq!(p["status"], "PARTIAL_CANCELED");
    assert_eq!(p["balanceAmount"], 10000);
    assert_eq!(p["totalAmount"], 15000);
    assert_eq!(p["cancels"].as_array().unwrap().len(), 1);
    assert_eq!(p["cancels"][0]["cancelAmount"], 5000);
    assert_eq!(p["lastTransactionKey"], p["cancels"][0]["transactionKey"]);

    let beyond = post(
        addr,
        &format!("/v1/payments/{key}/cancel"),
        &[],
        json!({"cancelReason": "too much", "cancelAmount": 20000}),
    )
    .await;
    assert!(beyond.status.is_client_error());
    assert_eq!(beyond.json()["code"], "NOT_CANCELABLE_AMOUNT");

    let full = post(
        addr,
        &format!("/v1/payments/{key}/cancel"),
        &[],
        json!({"cancelReason": "changed my mind"}),
    )
    .await;
    assert_eq!(full.status, StatusCode::OK);
    let p = full.json();
    assert_eq!(p["status"], "CANCELED");
    assert_eq!(p["balanceAmount"], 0);
    assert_eq!(p["cancels"].as_array().unwrap().len(), 2);
    assert_eq!(p["cancels"][1]["cancelAmount"], 10000);

    let again = post(
        addr,
        &format!("/v1/payments/{key}/cancel"),
        &[],
        json!({"cancelReason": "again"}),
    )
    .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert_eq!(again.json()["code"], "ALREADY_CANCELED_PAYMENT");
}

#[tokio::test]
async fn a_second_confirm_is_already_processed() {
    let server = TestServer::default().await;
    let body = json!({"paymentKey": "pk_twice", "orderId": "order-twice", "amount": 1000});
    assert_eq!(
        post(server.addr, "/v1/payments/confirm", &[], body.clone())
            .await
            .status,
        StatusCode::OK
    );
    let second = post(server.addr, "/v1/payments/confirm", &[], body).await;
    assert_eq!(second.status, StatusCode::BAD_REQUEST);
    assert_eq!(second.json()["code"], "ALREADY_PROCESSED_PAYMENT");
}

#[tokio::test]
async fn a_minted_key_is_answered_alike_by_stateless_instances() {
    let config = || {
        let mut config = common::config();
        config.ledger = LedgerKind::Stateless;
        config
    };
    let a = TestServer::start(config()).await;
    let b = TestServer::start(config()).await;
    let created = post(
        a.addr,
        "/v1/payments",
        &[],
        create_body("order-fleet-1", 30000, "fleet order"),
    )
    .await
    .json();
    let key = created["paymentKey"].as_str().unwrap().to_owned();

    let confirmed = post(
        b.addr,
        "/v1/payments/confirm",
        &[],
        json!({"paymentKey": key, "orderId": "order-fleet-1", "amount": 30000}),
    )
    .await;
    assert_eq!(confirmed.status, StatusCode::OK);
    assert_eq!(confirmed.json()["orderName"], "fleet order");

    let seen = send(a.addr, "GET", &format!("/v1/payments/{key}"), &[], "").await;
    assert_eq!(seen.status, StatusCode::OK);
    let seen = seen.json();
    assert_eq!(seen["status"], "DONE");
    assert_eq!(seen["orderId"], "order-fleet-1");
    assert_eq!(seen["totalAmount"], 30000);

    let canceled = post(
        b.addr,
        &format!("/v1/payments/{key}/cancel"),
        &[],
        json!({"cancelReason": "test", "cancelAmount": 10000}),
    )
    .await;
    assert_eq!(canceled.status, StatusCode::OK);
    let canceled = canceled.json();
    assert_eq!(canceled["status"], "PARTIAL_CANCELED");
    assert_eq!(canceled["balanceAmount"], 20000);
    assert_eq!(
        canceled["card"], seen["card"],
        "the same card wherever it is answered"
    );
}

#[tokio::test]
async fn a_lost_confirm_is_approved_and_shows_done_on_inquiry() {
    let server = TestServer::default().await;
    let body = r#"{"paymentKey":"pk_lost_1","orderId":"order-lost-1","amount":5000}"#;
    let request = format!(
        "POST /v1/payments/confirm HTTP/1.1\r\nhost: gazua\r\ncontent-type: application/json\r\nx-gazua-outcome: lost(close)\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let end = common::raw(server.addr, &request).await;
    assert!(end.bytes.is_empty(), "the client never gets the answer");
    let inquiry = send(
        server.addr,
        "GET",
        "/v1/payments/orders/order-lost-1",
        &[],
        "",
    )
    .await;
    assert_eq!(inquiry.status, StatusCode::OK);
    assert_eq!(inquiry.json()["status"], "DONE");
    assert_eq!(inquiry.json()["paymentKey"], "pk_lost_1");
}

#[tokio::test]
async fn every_code_reachable_by_the_test_code_header_has_its_documented_status() {
    let server = TestServer::default().await;
    let mut checked = 0;
    for info in CATALOG.iter().filter(|c| !c.name.starts_with("GAZUA_")) {
        let body = common::fresh_confirm_body();
        let reply = send(
            server.addr,
            "POST",
            "/v1/payments/confirm",
            &[("tosspayments-test-code", info.name)],
            &body,
        )
        .await;
        assert_eq!(reply.status.as_u16(), info.status, "{}", info.name);
        assert_eq!(reply.json()["code"], info.name);
        checked += 1;
    }
    assert!(checked > 50, "only {checked} codes");
    let unknown = send(
        server.addr,
        "POST",
        "/v1/payments/confirm",
        &[("tosspayments-test-code", "NO_SUCH_CODE")],
        &common::fresh_confirm_body(),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert_eq!(unknown.json()["code"], "INVALID_TEST_CODE");
}

#[tokio::test]
async fn messages_are_english_with_accept_language_en_us() {
    let server = TestServer::default().await;
    let body = common::fresh_confirm_body();
    let ko = send(
        server.addr,
        "POST",
        "/v1/payments/confirm",
        &[("x-gazua-outcome", "declined")],
        &body,
    )
    .await
    .json();
    let body = common::fresh_confirm_body();
    let en = send(
        server.addr,
        "POST",
        "/v1/payments/confirm",
        &[
            ("x-gazua-outcome", "declined"),
            ("accept-language", "en-US"),
        ],
        &body,
    )
    .await
    .json();
    assert_eq!(ko["code"], en["code"]);
    assert!(!ko["message"].as_str().unwrap().is_ascii());
    assert!(en["message"].as_str().unwrap().is_ascii());
}

#[tokio::test]
async fn validation_errors_are_the_pgs_400s_naming_the_field() {
    let server = TestServer::default().await;
    for (body, field) in [
        (r#"{"orderId":"order-0001","amount":1000}"#, "paymentKey"),
        (
            r#"{"paymentKey":"pk","orderId":"abc","amount":1000}"#,
            "orderId",
        ),
        (
            r#"{"paymentKey":"pk","orderId":"order 0001!","amount":1000}"#,
            "orderId",
        ),
        (
            r#"{"paymentKey":"pk","orderId":"order-0001","amount":0}"#,
            "amount",
        ),
        (
            r#"{"paymentKey":"pk","orderId":"order-0001","amount":"1000"}"#,
            "amount",
        ),
        (r#"{"paymentKey":"pk","orderId":"#, "JSON"),
    ] {
        let reply = send(server.addr, "POST", "/v1/payments/confirm", &[], body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        let json = reply.json();
        assert!(json["code"].is_string());
        // The field is named in the Korean message or, at least, in the English one.
        let english = send(
            server.addr,
            "POST",
            "/v1/payments/confirm",
            &[("accept-language", "en-US")],
            body,
        )
        .await
        .json();
        let message = format!("{} {}", json["message"], english["message"]);
        assert!(message.contains(field), "{body}: {message}");
    }
    let unknown = send(server.addr, "GET", "/v1/no/such/thing", &[], "").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(unknown.json()["code"].is_string());
    let wrong = send(server.addr, "GET", "/v1/payments/confirm", &[], "").await;
    assert_eq!(wrong.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_request_of_any_shape_gets_a_5xx_or_a_dropped_connection() {
    let server = TestServer::default().await;
    let mut rng = rand::rngs::SmallRng::seed_from_u64(11);
    let paths = [
        "/v1/payments",
        "/v1/payments/confirm",
        "/v1/payments/pk_1",
        "/v1/payments/orders/order-0001",
        "/v1/payments/pk_1/cancel",
        "/v1/billing/authorizations/issue",
        "/v1/billing/bk_1",
        "/v1/x",
    ];
    let methods = ["GET", "POST", "PUT", "DELETE", "PATCH"];
    let fields = [
        "paymentKey",
        "orderId",
        "amount",
        "cancelReason",
        "cancelAmount",
        "customerKey",
        "authKey",
        "orderName",
        "method",
    ];
    for _ in 0..400 {
        let mut body = serde_json::Map::new();
        for _ in 0..rng.random_range(0..6) {
            let field = fields[rng.random_range(0..fields.len())];
            let value = match rng.random_range(0..6) {
                0 => json!(rng.random_range(-5i64..100_000)),
                1 => json!("x".repeat(rng.random_range(0..300))),
                2 => json!(null),
                3 => json!([1, 2]),
                4 => json!({"a": 1}),
                _ => json!("order-0001"),
            };
            body.insert(field.to_owned(), value);
        }
        let body = if rng.random_bool(0.1) {
            "{not json".to_owned()
        } else {
            Value::Object(body).to_string()
        };
        let path = paths[rng.random_range(0..paths.len())];
        let method = methods[rng.random_range(0..methods.len())];
        let auth = [
            "",
            "Basic dGVzdF9za186",
            "Basic bm9jb2xvbg==",
            "Bearer x",
            "Basic !!!",
        ][rng.random_range(0..5)];
        let headers: Vec<(&str, &str)> = if auth.is_empty() {
            vec![]
        } else {
            vec![("authorization", auth)]
        };
        let reply = send(server.addr, method, path, &headers, &body).await;
        assert!(
            reply.status.as_u16() < 500,
            "{method} {path} {body} → {}",
            reply.status
        );
        assert!(
            reply.json()["code"].is_string() || reply.status.is_success(),
            "{method} {path} {body}"
        );
    }
}
