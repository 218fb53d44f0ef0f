//! The checkout window through a real socket: the create answer's `checkout.url` serves a page,
//! and its buttons (and `auto=1`) redirect to the merchant's `successUrl` / `failUrl` as the
//! key's directives say, with the PG's query values, percent-encoded.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{Reply, TestServer, send};
use http::StatusCode;

const SUCCESS: &str = "https://shop.example/pay/success?from=checkout";
const FAIL: &str = "https://shop.example/pay/fail";

/// Creates a payment and returns its `checkout.url` as a path and query on the server.
async fn checkout_path(server: &TestServer, order_id: &str, order_name: &str) -> String {
    let body = serde_json::json!({
        "method": "CARD", "amount": 15000, "orderId": order_id, "orderName": order_name,
        "successUrl": SUCCESS, "failUrl": FAIL,
    })
    .to_string();
    let created = send(server.addr, "POST", "/v1/payments", &[], &body).await;
    assert_eq!(created.status, StatusCode::OK, "{:?}", created.body);
    let url = created.json()["checkout"]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let own = format!("http://{}", server.addr);
    url.strip_prefix(&own)
        .unwrap_or_else(|| panic!("checkout.url {url} is not on Gazua ({own})"))
        .to_owned()
}

fn location(reply: &Reply) -> String {
    assert_eq!(
        reply.status,
        StatusCode::SEE_OTHER,
        "{:?}",
        String::from_utf8_lossy(&reply.body)
    );
    reply.headers["location"].to_str().unwrap().to_owned()
}

/// The URL before the query, and the query's values decoded.
fn split(url: &str) -> (String, HashMap<String, String>) {
    let parsed = url::Url::parse(url).unwrap();
    let base = format!(
        "{}://{}{}",
        parsed.scheme(),
        parsed.host_str().unwrap(),
        parsed.path()
    );
    (base, parsed.query_pairs().into_owned().collect())
}

fn key_of(path: &str) -> String {
    path.trim_start_matches("/v1/payments/")
        .split('/')
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_page_shows_the_payment_and_works_without_script() {
    let server = TestServer::default().await;
    let path = checkout_path(&server, "order-page-1", "토스 <티셔츠> & 양말").await;
    let page = send(server.addr, "GET", &path, &[], "").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.headers["content-type"], "text/html; charset=utf-8");
    let html = String::from_utf8(page.body.to_vec()).unwrap();
    assert!(html.contains("15,000원"), "{html}");
    assert!(html.contains("토스 &lt;티셔츠&gt; &amp; 양말"), "{html}");
    // Self-contained and script-free: a plain GET form with the two buttons.
    for absent in ["<script", "src=", "<link", "http://", "https://fonts"] {
        assert!(!html.contains(absent), "{absent} in {html}");
    }
    assert!(html.contains("<form method=\"get\""));
    assert!(html.contains("name=\"action\" value=\"pay\""));
    assert!(html.contains("name=\"action\" value=\"cancel\""));
    server.shutdown().await;
}

#[tokio::test]
async fn pay_redirects_to_success_url_with_the_payment() {
    let server = TestServer::default().await;
    let path = checkout_path(&server, "order-pay-1", "티셔츠").await;
    let key = key_of(&path);
    let reply = send(server.addr, "GET", &format!("{path}&action=pay"), &[], "").await;
    let (base, query) = split(&location(&reply));
    assert_eq!(base, "https://shop.example/pay/success");
    assert_eq!(
        query["from"], "checkout",
        "the successUrl's own query is kept"
    );
    assert_eq!(query["paymentKey"], key);
    assert_eq!(query["orderId"], "order-pay-1");
    assert_eq!(query["amount"], "15000");
    assert_eq!(query["paymentType"], "NORMAL");
    assert_eq!(reply.headers["cache-control"], "no-store");

    // The merchant confirms with exactly those values.
    let confirm = serde_json::json!({
        "paymentKey": query["paymentKey"], "orderId": query["orderId"],
        "amount": query["amount"].parse::<u64>().unwrap(),
    })
    .to_string();
    let done = send(server.addr, "POST", "/v1/payments/confirm", &[], &confirm).await;
    assert_eq!(done.json()["status"], "DONE");
    server.shutdown().await;
}

#[tokio::test]
async fn cancel_redirects_to_fail_url_with_pay_process_canceled() {
    let server = TestServer::default().await;
    let path = checkout_path(&server, "order-cancel-1", "티셔츠").await;
    let reply = send(
        server.addr,
        "GET",
        &format!("{path}&action=cancel"),
        &[],
        "",
    )
    .await;
    let (base, query) = split(&location(&reply));
    assert_eq!(base, FAIL);
    assert_eq!(query["code"], "PAY_PROCESS_CANCELED");
    assert_eq!(query["message"], "사용자에 의해 결제가 취소되었습니다.");
    assert_eq!(query["orderId"], "order-cancel-1");
    assert!(!query.contains_key("paymentKey"));
    server.shutdown().await;
}

#[tokio::test]
async fn a_declined_tag_fails_the_window_with_the_checkout_code() {
    let server = TestServer::default().await;
    let cases = [
        ("[gazua: outcome=declined]", "REJECT_CARD_COMPANY"),
        (
            "[gazua: outcome=declined(REJECT_CARD_PAYMENT)]",
            "REJECT_CARD_PAYMENT",
        ),
        (
            "[gazua: outcome=declined(PAY_PROCESS_ABORTED, 400)]",
            "PAY_PROCESS_ABORTED",
        ),
        ("[gazua: outcome=error]", "PAY_PROCESS_ABORTED"),
    ];
    for (i, (tag, code)) in cases.into_iter().enumerate() {
        let order = format!("order-declined-{i}");
        let path = checkout_path(&server, &order, &format!("티셔츠 {tag}")).await;
        let reply = send(server.addr, "GET", &format!("{path}&action=pay"), &[], "").await;
        let (base, query) = split(&location(&reply));
        assert_eq!(base, FAIL, "{tag}");
        assert_eq!(query["code"], code, "{tag}");
        assert!(!query["message"].is_empty(), "{tag}");
        assert_eq!(query["orderId"], order, "{tag}");
    }
    // English messages for an English-speaking browser.
    let path = checkout_path(&server, "order-declined-en", "x [gazua: outcome=declined]").await;
    let reply = send(
        server.addr,
        "GET",
        &format!("{path}&action=pay"),
        &[("accept-language", "en-US")],
        "",
    )
    .await;
    let (_, query) = split(&location(&reply));
    assert!(query["message"].is_ascii(), "{}", query["message"]);
    server.shutdown().await;
}

#[tokio::test]
async fn auto_mode_redirects_after_the_decided_latency_without_a_page() {
    let server = TestServer::default().await;
    let path = checkout_path(&server, "order-auto-1", "티셔츠 [gazua: latency=300ms]").await;
    let started = Instant::now();
    let reply = send(server.addr, "GET", &format!("{path}&auto=1"), &[], "").await;
    let took = started.elapsed();
    let (base, query) = split(&location(&reply));
    assert_eq!(base, "https://shop.example/pay/success");
    assert_eq!(query["orderId"], "order-auto-1");
    // Never before the decided latency (the timer's promise); the upper bound is loose for a
    // loaded machine.
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");

    // Without a latency directive the redirect is immediate.
    let path = checkout_path(&server, "order-auto-2", "티셔츠").await;
    let reply = send(server.addr, "GET", &format!("{path}&auto=1"), &[], "").await;
    assert_eq!(split(&location(&reply)).1["orderId"], "order-auto-2");
    server.shutdown().await;
}

#[tokio::test]
async fn bad_checkout_urls_are_pg_shaped_errors() {
    let server = TestServer::default().await;
    let path = checkout_path(&server, "order-bad-1", "티셔츠").await;
    let key = key_of(&path);
    let error_code = |reply: &Reply| {
        let html = String::from_utf8_lossy(&reply.body).into_owned();
        let json = html
            .split("<pre id=\"error\">")
            .nth(1)
            .and_then(|rest| rest.split("</pre>").next())
            .unwrap_or_else(|| panic!("no error in {html}"))
            .replace("&quot;", "\"");
        let json: serde_json::Value = serde_json::from_str(&json).unwrap();
        json["code"].as_str().unwrap().to_owned()
    };

    let unknown = send(
        server.addr,
        "GET",
        "/v1/payments/gzp0notminted/checkout",
        &[],
        "",
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&unknown), "NOT_FOUND_PAYMENT");

    // The bare URL an inquiry shows names no redirect targets.
    let bare = send(
        server.addr,
        "GET",
        &format!("/v1/payments/{key}/checkout"),
        &[],
        "",
    )
    .await;
    assert_eq!(bare.status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&bare.body).contains("successUrl"));

    // An edited target is no open redirect.
    let edited = path.replace("shop.example", "evil.example");
    let reply = send(server.addr, "GET", &format!("{edited}&action=pay"), &[], "").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&reply), "INVALID_REQUEST");

    let reply = send(server.addr, "GET", &format!("{path}&action=steal"), &[], "").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&reply.body).contains("expected pay or cancel"));

    let reply = send(server.addr, "GET", &format!("{path}&auto=yes"), &[], "").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);

    let reply = send(server.addr, "POST", &path, &[], "").await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.headers["allow"], "GET, HEAD");
    server.shutdown().await;
}
