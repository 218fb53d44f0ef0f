//! The ledger's data through real sockets: keys longer in bytes than in characters, path
//! parameters that must be percent-decoded, and payment methods Gazua does not model.

mod common;

use common::{TestServer, send};
use http::StatusCode;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::json;

/// Every byte as `%XX`, as a client that escapes everything sends it.
fn escape_all(text: &str) -> String {
    text.bytes().map(|b| format!("%{b:02X}")).collect()
}

fn confirm_body(key: &str, order_id: &str) -> String {
    json!({"paymentKey": key, "orderId": order_id, "amount": 15000}).to_string()
}

#[tokio::test]
async fn a_key_of_a_hundred_hangul_characters_is_confirmed_once() {
    let server = TestServer::default().await;
    // 100 characters, 300 bytes: within the PG's 200-character limit.
    let key = "결".repeat(100);
    let body = confirm_body(&key, "order-hangul-100");
    let first = send(server.addr, "POST", "/v1/payments/confirm", &[], &body).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    assert_eq!(
        first.json()["paymentKey"],
        key.as_str(),
        "the record holds the whole key"
    );
    for _ in 0..2 {
        let again = send(server.addr, "POST", "/v1/payments/confirm", &[], &body).await;
        assert_eq!(again.status, StatusCode::BAD_REQUEST);
        assert_eq!(again.json()["code"], "ALREADY_PROCESSED_PAYMENT");
    }
    // 201 characters are over the limit, counted in characters as the PG counts them.
    let long = confirm_body(&"결".repeat(201), "order-hangul-201");
    let refused = send(server.addr, "POST", "/v1/payments/confirm", &[], &long).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.json()["code"], "INVALID_REQUEST");
    assert!(
        refused.json()["message"]
            .as_str()
            .unwrap()
            .contains("paymentKey"),
        "{:?}",
        refused.json()
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_payment_with_a_hangul_key_is_inquired_and_cancelled_by_its_escaped_path() {
    let server = TestServer::default().await;
    let key = "결제키-한글-0001";
    let order_id = "order-hangul-path";
    let confirmed = send(
        server.addr,
        "POST",
        "/v1/payments/confirm",
        &[],
        &confirm_body(key, order_id),
    )
    .await;
    assert_eq!(confirmed.status, StatusCode::OK);

    let escaped = utf8_percent_encode(key, NON_ALPHANUMERIC).to_string();
    let by_key = send(
        server.addr,
        "GET",
        &format!("/v1/payments/{escaped}"),
        &[],
        "",
    )
    .await;
    assert_eq!(by_key.status, StatusCode::OK, "{:?}", by_key.body);
    assert_eq!(by_key.json()["paymentKey"], key);

    let cancelled = send(
        server.addr,
        "POST",
        &format!("/v1/payments/{escaped}/cancel"),
        &[],
        r#"{"cancelReason":"고객 변심"}"#,
    )
    .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{:?}", cancelled.body);
    assert_eq!(cancelled.json()["status"], "CANCELED");

    // The orderId path is decoded too, even when every byte is escaped.
    let by_order = send(
        server.addr,
        "GET",
        &format!("/v1/payments/orders/{}", escape_all(order_id)),
        &[],
        "",
    )
    .await;
    assert_eq!(by_order.status, StatusCode::OK, "{:?}", by_order.body);
    assert_eq!(by_order.json()["paymentKey"], key);
    assert_eq!(by_order.json()["status"], "CANCELED");
    server.shutdown().await;
}

#[tokio::test]
async fn a_path_key_that_is_not_utf8_names_no_payment() {
    let server = TestServer::default().await;
    for (method, path, body) in [
        ("GET", "/v1/payments/%FF%FE", ""),
        ("GET", "/v1/payments/orders/order%FF1234", ""),
        (
            "POST",
            "/v1/payments/%C3%28/cancel",
            r#"{"cancelReason":"x"}"#,
        ),
    ] {
        let reply = send(server.addr, method, path, &[], body).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(reply.json()["code"], "NOT_FOUND_PAYMENT", "{path}");
    }
    let charge = send(
        server.addr,
        "POST",
        "/v1/billing/%FF",
        &[],
        r#"{"customerKey":"customer-1","amount":1000,"orderId":"order-bill-ff","orderName":"n"}"#,
    )
    .await;
    assert_eq!(charge.status, StatusCode::NOT_FOUND);
    assert_eq!(charge.json()["code"], "NOT_FOUND_BILLING");
    server.shutdown().await;
}

fn create_body(method: &str, order_id: &str) -> String {
    json!({"method": method, "amount": 15000, "orderId": order_id, "orderName": "티셔츠",
           "successUrl": "https://shop.test/success", "failUrl": "https://shop.test/fail"})
    .to_string()
}

#[tokio::test]
async fn a_method_gazua_does_not_model_is_refused_by_name() {
    let server = TestServer::default().await;
    for (i, method) in ["카드", "CARD", "card", "VIRTUAL_ACCOUNT", "가상계좌"]
        .iter()
        .enumerate()
    {
        let body = create_body(method, &format!("order-card-{i}"));
        let reply = send(server.addr, "POST", "/v1/payments", &[], &body).await;
        assert_eq!(reply.status, StatusCode::OK, "{method}: {:?}", reply.body);
        assert_eq!(reply.json()["status"], "READY");
    }
    for (i, method) in ["TRANSFER", "휴대폰", "BITCOIN"].iter().enumerate() {
        let body = create_body(method, &format!("order-other-{i}"));
        let reply = send(server.addr, "POST", "/v1/payments", &[], &body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{method}");
        let json = reply.json();
        assert_eq!(json["code"], "INVALID_REQUEST", "{method}");
        let message = json["message"].as_str().unwrap();
        assert!(message.contains(method), "{method}: {message}");
    }
    // Where a confirm or a billing charge says a method, it is checked the same way (a billing
    // charge is a card's: a virtual account is refused there).
    let confirm = json!({"paymentKey": "pk-method-1", "orderId": "order-method-1",
                         "amount": 15000, "method": "TRANSFER"});
    let reply = send(
        server.addr,
        "POST",
        "/v1/payments/confirm",
        &[("accept-language", "en-US")],
        &confirm.to_string(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let message = reply.json()["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("method 'TRANSFER' is not supported"),
        "{message}"
    );
    let charge = json!({"customerKey": "customer-1", "amount": 1000, "orderId": "order-bill-va",
                        "orderName": "n", "method": "VIRTUAL_ACCOUNT"});
    let reply = send(
        server.addr,
        "POST",
        "/v1/billing/bk_1",
        &[],
        &charge.to_string(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply.json()["message"]
            .as_str()
            .unwrap()
            .contains("VIRTUAL_ACCOUNT")
    );
    server.shutdown().await;
}
