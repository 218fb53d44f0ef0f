//! Virtual accounts through real sockets: issued `WAITING_FOR_DEPOSIT` with the PG's account
//! object and a `secret`, then deposited (by the directed delay or the harness route), expired
//! or cancelled as the real PG does, with inquiries showing the status the payment has now.

mod common;

use std::time::{Duration, Instant};

use common::{TestServer, send};
use http::StatusCode;
use serde_json::{Value, json};

fn issue_body(order_id: &str) -> String {
    json!({"amount": 30000, "orderId": order_id, "orderName": "겨울 패딩",
           "customerName": "홍길동", "bank": "20"})
    .to_string()
}

async fn issue(server: &TestServer, order_id: &str, directive: &str) -> Value {
    let reply = send(
        server.addr,
        "POST",
        "/v1/virtual-accounts",
        &[("x-gazua", directive)],
        &issue_body(order_id),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.json()
}

async fn inquire(server: &TestServer, key: &str) -> Value {
    let reply = send(server.addr, "GET", &format!("/v1/payments/{key}"), &[], "").await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.json()
}

/// Polls `key` until it shows `DONE`: waiting until then, never before `after` since
/// `issued_at`, and well within 20 s.
async fn deposited_after(
    server: &TestServer,
    key: &str,
    issued_at: Instant,
    after: Duration,
) -> Value {
    let done = loop {
        let now = inquire(server, key).await;
        if now["status"] == "DONE" {
            break now;
        }
        assert_eq!(now["status"], "WAITING_FOR_DEPOSIT");
        assert!(issued_at.elapsed() < Duration::from_secs(20), "no deposit");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(issued_at.elapsed() >= after, "deposited early");
    done
}

async fn deposit(server: &TestServer, key: &str, headers: &[(&str, &str)]) -> common::Reply {
    send(
        server.addr,
        "POST",
        &format!("/__gazua/deposits/{key}"),
        headers,
        "",
    )
    .await
}

#[tokio::test]
async fn an_issued_account_is_complete_and_is_deposited_after_the_directed_delay() {
    let server = TestServer::default().await;
    let issued_at = Instant::now();
    let p = issue(&server, "order-va-delay", "deposit=1s").await;
    assert_eq!(p["status"], "WAITING_FOR_DEPOSIT");
    assert_eq!(p["method"], "가상계좌");
    assert_eq!(p["approvedAt"], Value::Null);
    assert_eq!(p["card"], Value::Null);
    let secret = p["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("ps_"), "{secret}");
    let va = &p["virtualAccount"];
    assert_eq!(va["accountType"], "일반");
    assert_eq!(va["bankCode"], "20");
    assert_eq!(va["customerName"], "홍길동");
    assert_eq!(va["expired"], false);
    assert_eq!(va["settlementStatus"], "INCOMPLETED");
    assert_eq!(va["refundStatus"], "NONE");
    assert_eq!(va["refundReceiveAccount"], Value::Null);
    assert_eq!(va["depositorName"], Value::Null);
    assert_eq!(va["accountNumber"].as_str().unwrap().len(), 14);
    // Due in 7 days by default, in the PG's `+09:00` seconds format.
    let due: jiff::Timestamp = va["dueDate"].as_str().unwrap().parse().unwrap();
    let days = (due - jiff::Timestamp::now())
        .total(jiff::Unit::Hour)
        .unwrap()
        / 24.0;
    assert!((6.99..=7.01).contains(&days), "{days}");
    assert!(va["dueDate"].as_str().unwrap().ends_with("+09:00"));

    let key = p["paymentKey"].as_str().unwrap().to_owned();
    // Polled until the deposit shows: never before the directed second, and well before 20.
    let done = deposited_after(&server, &key, issued_at, Duration::from_secs(1)).await;
    assert_ne!(done["approvedAt"], Value::Null);
    assert_eq!(done["secret"], secret.as_str());
    assert_eq!(done["virtualAccount"]["expired"], false);
    server.shutdown().await;
}

#[tokio::test]
async fn a_checkout_virtual_account_waits_until_the_harness_deposits_it() {
    let server = TestServer::default().await;
    let create = json!({"method": "VIRTUAL_ACCOUNT", "amount": 15000, "orderId": "order-va-co",
                        "orderName": "책 [gazua: deposit=never]", "customerName": "김철수",
                        "successUrl": "https://shop.test/ok", "failUrl": "https://shop.test/fail"});
    let created = common::post_ok(server.addr, "/v1/payments", &create).await;
    assert_eq!(created["status"], "READY");
    let key = created["paymentKey"].as_str().unwrap().to_owned();
    let confirm = json!({"paymentKey": key, "orderId": "order-va-co", "amount": 15000});
    let waiting = common::post_ok(server.addr, "/v1/payments/confirm", &confirm).await;
    assert_eq!(waiting["status"], "WAITING_FOR_DEPOSIT");
    assert_eq!(waiting["virtualAccount"]["customerName"], "김철수");
    assert_eq!(
        inquire(&server, &key).await["status"],
        "WAITING_FOR_DEPOSIT"
    );

    let deposited = deposit(&server, &key, &[]).await;
    assert_eq!(deposited.status, StatusCode::OK, "{:?}", deposited.body);
    assert_eq!(deposited.json()["status"], "DONE");
    let now = inquire(&server, &key).await;
    assert_eq!(now["status"], "DONE");
    assert_eq!(now["secret"], waiting["secret"]);
    // A second deposit finds nothing waiting; an unknown key is the PG's not-found.
    let again = deposit(&server, &key, &[]).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.json()["code"], "NOT_WAITING_FOR_DEPOSIT");
    let unknown = deposit(&server, "no-such-key", &[]).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.json()["code"], "NOT_FOUND_PAYMENT");
    server.shutdown().await;
}

#[tokio::test]
async fn an_account_past_its_due_date_is_expired_and_not_cancelable() {
    let server = TestServer::default().await;
    let p = issue(&server, "order-va-expired", "deposit=expired").await;
    let key = p["paymentKey"].as_str().unwrap();
    let now = inquire(&server, key).await;
    assert_eq!(now["status"], "EXPIRED");
    assert_eq!(now["virtualAccount"]["expired"], true);
    let cancel = json!({"cancelReason": "late"}).to_string();
    let path = format!("/v1/payments/{key}/cancel");
    let refused = send(server.addr, "POST", &path, &[], &cancel).await;
    assert_eq!(refused.json()["code"], "NOT_CANCELABLE_PAYMENT");
    assert_eq!(
        deposit(&server, key, &[]).await.status,
        StatusCode::CONFLICT
    );
    server.shutdown().await;
}

#[tokio::test]
async fn cancels_of_a_waiting_and_of_a_deposited_account_behave_as_the_pgs() {
    let server = TestServer::default().await;
    let waiting = issue(&server, "order-va-cancel-1", "deposit=never").await;
    let key = waiting["paymentKey"].as_str().unwrap();
    let path = format!("/v1/payments/{key}/cancel");
    let partial = json!({"cancelReason": "r", "cancelAmount": 1000}).to_string();
    let refused = send(server.addr, "POST", &path, &[], &partial).await;
    assert_eq!(
        refused.json()["code"],
        "NOT_ALLOWED_PARTIAL_REFUND_WAITING_DEPOSIT"
    );
    let full = json!({"cancelReason": "r"}).to_string();
    let canceled = send(server.addr, "POST", &path, &[], &full).await;
    assert_eq!(canceled.status, StatusCode::OK, "{:?}", canceled.body);
    assert_eq!(canceled.json()["status"], "CANCELED");
    assert_eq!(canceled.json()["virtualAccount"]["refundStatus"], "NONE");

    let paid = issue(&server, "order-va-cancel-2", "deposit=never").await;
    let key = paid["paymentKey"].as_str().unwrap();
    assert_eq!(deposit(&server, key, &[]).await.status, StatusCode::OK);
    let path = format!("/v1/payments/{key}/cancel");
    let no_account = send(server.addr, "POST", &path, &[], &full).await;
    assert_eq!(no_account.json()["code"], "INVALID_REFUND_ACCOUNT_INFO");
    let refund = json!({"cancelReason": "r", "refundReceiveAccount":
        {"bank": "20", "accountNumber": "1002123456789", "holderName": "홍길동"}})
    .to_string();
    let refunded = send(server.addr, "POST", &path, &[], &refund).await;
    assert_eq!(refunded.status, StatusCode::OK, "{:?}", refunded.body);
    assert_eq!(refunded.json()["status"], "CANCELED");
    assert_eq!(
        refunded.json()["virtualAccount"]["refundStatus"],
        "COMPLETED"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn bad_issues_and_bad_deposit_directives_are_refused_by_name() {
    let server = TestServer::default().await;
    let bad = send(
        server.addr,
        "POST",
        "/v1/virtual-accounts",
        &[("x-gazua", "deposit=soon")],
        &issue_body("order-va-bad-1"),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.json()["code"], "GAZUA_INVALID_DIRECTIVE");
    assert!(
        bad.json()["message"].as_str().unwrap().contains("deposit="),
        "{:?}",
        bad.body
    );
    let cases = [
        (
            json!({"amount": 1000, "orderId": "order-va-bad-2", "orderName": "n",
                "customerName": "c"}),
            "bank",
        ),
        (
            json!({"amount": 1000, "orderId": "order-va-bad-3", "orderName": "n",
                "customerName": "c", "bank": "20", "validHours": 24,
                "dueDate": "2099-01-01T00:00:00+09:00"}),
            "validHours and dueDate",
        ),
        (
            json!({"amount": 1000, "orderId": "order-va-bad-4", "orderName": "n",
                "customerName": "c", "bank": "20", "validHours": 721}),
            "validHours",
        ),
    ];
    for (body, named) in cases {
        let reply = send(
            server.addr,
            "POST",
            "/v1/virtual-accounts",
            &[],
            &body.to_string(),
        )
        .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        let message = reply.json()["message"].as_str().unwrap().to_owned();
        assert!(message.contains(named), "{named}: {message}");
    }
    let bank = json!({"amount": 1000, "orderId": "order-va-bad-5", "orderName": "n",
                      "customerName": "c", "bank": "우리은행은행"});
    let reply = send(
        server.addr,
        "POST",
        "/v1/virtual-accounts",
        &[],
        &bank.to_string(),
    )
    .await;
    assert_eq!(reply.json()["code"], "INVALID_BANK");
    // validHours moves the due date.
    let short = json!({"amount": 1000, "orderId": "order-va-hours", "orderName": "n",
                       "customerName": "c", "bank": "88", "validHours": 2});
    let reply = send(
        server.addr,
        "POST",
        "/v1/virtual-accounts",
        &[],
        &short.to_string(),
    )
    .await;
    let due: jiff::Timestamp = reply.json()["virtualAccount"]["dueDate"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let hours = (due - jiff::Timestamp::now())
        .total(jiff::Unit::Hour)
        .unwrap();
    assert!((1.99..=2.01).contains(&hours), "{hours}");
    server.shutdown().await;
}

#[tokio::test]
async fn the_deposit_route_takes_the_admin_token_when_one_is_set() {
    let mut config = common::config();
    config.admin_token = Some("s3cret".to_owned());
    let server = TestServer::start(config).await;
    let p = issue(&server, "order-va-token", "deposit=never").await;
    let key = p["paymentKey"].as_str().unwrap();
    let refused = deposit(&server, key, &[]).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(inquire(&server, key).await["status"], "WAITING_FOR_DEPOSIT");
    let ok = deposit(&server, key, &[("authorization", "Bearer s3cret")]).await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
    assert_eq!(inquire(&server, key).await["status"], "DONE");
    server.shutdown().await;
}

/// `--ledger stateless`: nothing is remembered, so a virtual account's key carries what an
/// instance needs (method, bank, customer, due date; its tag's `deposit=`), and every instance
/// with the same seed computes the same status from it and the clock.
#[tokio::test]
async fn a_stateless_fleet_answers_a_virtual_accounts_status_from_its_key() {
    let stateless = || {
        let mut config = common::config();
        config.ledger = gazua_pay::config::LedgerKind::Stateless;
        config.seed = 11;
        config
    };
    let (a, b) = (
        TestServer::start(stateless()).await,
        TestServer::start(stateless()).await,
    );
    let body = |order: &str, tag: &str| {
        json!({"amount": 30000, "orderId": order, "orderName": format!("패딩 [gazua: {tag}]"),
               "customerName": "홍길동", "bank": "88"})
        .to_string()
    };
    let issued_at = Instant::now();
    let reply = send(
        a.addr,
        "POST",
        "/v1/virtual-accounts",
        &[],
        &body("order-sl-1", "deposit=1s"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let issued = reply.json();
    assert_eq!(issued["status"], "WAITING_FOR_DEPOSIT");
    let key = issued["paymentKey"].as_str().unwrap().to_owned();
    // Another instance, which never saw it: the same account, waiting, then deposited.
    let seen = inquire(&b, &key).await;
    if issued_at.elapsed() < Duration::from_millis(900) {
        assert_eq!(seen["status"], "WAITING_FOR_DEPOSIT");
    }
    assert_eq!(seen["virtualAccount"]["bankCode"], "88");
    assert_eq!(seen["virtualAccount"]["customerName"], "홍길동");
    assert_eq!(
        seen["virtualAccount"]["accountNumber"],
        issued["virtualAccount"]["accountNumber"]
    );
    assert_eq!(
        seen["virtualAccount"]["dueDate"],
        issued["virtualAccount"]["dueDate"]
    );
    assert_eq!(seen["secret"], issued["secret"]);
    let done = deposited_after(&b, &key, issued_at, Duration::from_secs(1)).await;
    assert_ne!(done["approvedAt"], Value::Null);
    assert_eq!(inquire(&a, &key).await["status"], "DONE");
    // Its confirm is refused as the recording ledgers refuse it: it was issued, not created.
    let confirm = json!({"paymentKey": key, "orderId": "order-sl-1", "amount": 30000});
    let again = send(
        b.addr,
        "POST",
        "/v1/payments/confirm",
        &[],
        &confirm.to_string(),
    )
    .await;
    assert_eq!(again.json()["code"], "ALREADY_PROCESSED_PAYMENT");

    // Expired at the directed due date.
    let reply = send(
        a.addr,
        "POST",
        "/v1/virtual-accounts",
        &[],
        &body("order-sl-2", "deposit=expired"),
    )
    .await;
    let key = reply.json()["paymentKey"].as_str().unwrap().to_owned();
    let expired = inquire(&b, &key).await;
    assert_eq!(expired["status"], "EXPIRED");
    assert_eq!(expired["virtualAccount"]["expired"], true);

    // method VIRTUAL_ACCOUNT through create and confirm: a virtual account, not a card.
    let create = json!({"method": "VIRTUAL_ACCOUNT", "amount": 15000, "orderId": "order-sl-3",
                        "orderName": "책 [gazua: deposit=never]", "customerName": "김철수",
                        "successUrl": "https://shop.test/ok", "failUrl": "https://shop.test/fail"});
    let created = common::post_ok(a.addr, "/v1/payments", &create).await;
    let key = created["paymentKey"].as_str().unwrap().to_owned();
    let confirm = json!({"paymentKey": key, "orderId": "order-sl-3", "amount": 15000});
    let confirmed = common::post_ok(b.addr, "/v1/payments/confirm", &confirm).await;
    assert_eq!(confirmed["status"], "WAITING_FOR_DEPOSIT");
    assert_eq!(confirmed["method"], "가상계좌");
    assert_eq!(confirmed["virtualAccount"]["customerName"], "김철수");
    let seen = inquire(&a, &key).await;
    assert_eq!(seen["status"], "WAITING_FOR_DEPOSIT");
    assert_eq!(seen["method"], "가상계좌");
    a.shutdown().await;
    b.shutdown().await;
}
