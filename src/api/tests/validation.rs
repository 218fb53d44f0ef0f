//! Bad requests get the PG's answers: validation, authorization, unknown paths, and English
//! under `Accept-Language: en-US`.

use super::*;

#[test]
fn requests_are_validated_like_the_pg() {
    let api = memory();
    let confirm = |body: &str| call(Method::POST, "/v1/payments/confirm", body).send(&api);
    let cases: [(&str, &str); 10] = [
        (r#"{"orderId":"order-0001","amount":1000}"#, "paymentKey"),
        (r#"{"paymentKey":"k","amount":1000}"#, "orderId"),
        (r#"{"paymentKey":"k","orderId":"order-0001"}"#, "amount"),
        (
            r#"{"paymentKey":7,"orderId":"order-0001","amount":1000}"#,
            "paymentKey",
        ),
        (
            r#"{"paymentKey":"k","orderId":"short","amount":1000}"#,
            "orderId",
        ),
        (
            r#"{"paymentKey":"k","orderId":"order.0001","amount":1000}"#,
            "orderId",
        ),
        (
            r#"{"paymentKey":"k","orderId":"order-0001","amount":0}"#,
            "amount",
        ),
        (
            r#"{"paymentKey":"k","orderId":"order-0001","amount":-10}"#,
            "amount",
        ),
        (
            r#"{"paymentKey":"k","orderId":"order-0001","amount":"many"}"#,
            "amount",
        ),
        (
            r#"{"paymentKey":"k","orderId":"order-0001","amount":10.5}"#,
            "amount",
        ),
    ];
    for (body, field) in cases {
        let (status, json, _) = confirm(body);
        assert_eq!(
            (status, &json["code"]),
            (StatusCode::BAD_REQUEST, &"INVALID_REQUEST".into()),
            "{body}"
        );
        assert!(
            json["message"].as_str().unwrap().contains(field),
            "{body}: {json}"
        );
    }
    for body in [
        "",
        "{",
        "[1,2]",
        "null",
        r#"{"paymentKey":"k","paymentKey":"k"}"#,
    ] {
        let (status, json, _) = confirm(body);
        assert_eq!(
            (status, &json["code"]),
            (StatusCode::BAD_REQUEST, &"INVALID_REQUEST".into()),
            "{body:?}"
        );
    }
    let mut plain = call(Method::POST, "/v1/payments/confirm", r#"{"x":1}"#);
    plain.headers = vec![("content-type", "text/plain")];
    let (status, json, _) = plain.send(&api);
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        json["message"].as_str().unwrap().contains("Content-Type"),
        "{json}"
    );
    // The type's parameters are fine; so is no type at all.
    let mut charset = call(Method::POST, "/v1/payments", CREATE);
    charset.headers = vec![("content-type", "Application/JSON; charset=utf-8")];
    assert_eq!(charset.send(&api).0, StatusCode::OK);
    let mut no_type = call(Method::POST, "/v1/payments", CREATE);
    no_type.headers.clear();
    assert_eq!(no_type.send(&api).0, StatusCode::OK);
    let (status, json, _) = call(
        Method::POST,
        "/v1/payments",
        &CREATE.replace("15000", "\"15000\""),
    )
    .send(&api);
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a string amount is mistyped: {json}"
    );
    assert!(json["message"].as_str().unwrap().contains("amount"));
    let (status, json, _) = call(
        Method::POST,
        "/v1/billing/authorizations/issue",
        r#"{"authKey":"a","customerKey":"bad key!"}"#,
    )
    .send(&api);
    assert_eq!(
        (status, &json["code"]),
        (StatusCode::BAD_REQUEST, &"INVALID_CUSTOMER_KEY".into())
    );
    let key = create(&api);
    let (status, json, _) = call(
        Method::POST,
        &format!("/v1/payments/{key}/cancel"),
        r#"{"cancelAmount":10}"#,
    )
    .send(&api);
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(json["message"].as_str().unwrap().contains("cancelReason"));
}

#[test]
fn english_is_answered_to_en_us() {
    let api = memory();
    let (_, json, _) = call(Method::POST, "/v1/payments/confirm", r#"{"amount":1}"#)
        .header("accept-language", "en-US")
        .send(&api);
    assert_eq!(
        json["message"],
        "The request is invalid: paymentKey is required."
    );
    let key = create(&api);
    let (_, done, _) = call(
        Method::POST,
        "/v1/payments/confirm",
        &confirm_body(&key, "order-0001", 15000),
    )
    .header("accept-language", "en-US,en;q=0.9")
    .send(&api);
    assert_eq!(done["method"], "CARD");
    let (_, json, _) = call(Method::GET, "/v1/payments/nope-nope", "")
        .header("accept-language", "en-US")
        .send(&api);
    assert_eq!(json["message"], "The payment does not exist.");
}

#[test]
fn authorization_is_checked_like_the_pg() {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
    let open = memory();
    let locked = Api::new(ApiSettings {
        secret_key: Some("test_sk_abc".into()),
        ..ApiSettings::default()
    });
    let get = |api: &Api, auth: Option<&str>| {
        let mut c = call(Method::GET, "/v1/payments/orders/order-0001", "");
        if let Some(auth) = auth {
            c = c.header("authorization", auth);
        }
        let (status, json, _) = c.send(api);
        (status, json["code"].as_str().unwrap_or("").to_owned())
    };
    let good = format!("Basic {}", STANDARD.encode("test_sk_abc:"));
    let unpadded = format!("Basic {}", STANDARD_NO_PAD.encode("test_sk_abc:"));
    let wrong = format!("Basic {}", STANDARD.encode("test_sk_other:"));
    let no_colon = format!("Basic {}", STANDARD.encode("test_sk_abc"));
    // With a secret key: only it passes (NOT_FOUND_PAYMENT means the request got through).
    assert_eq!(get(&locked, Some(&good)).1, "NOT_FOUND_PAYMENT");
    assert_eq!(get(&locked, Some(&unpadded)).1, "NOT_FOUND_PAYMENT");
    assert_eq!(
        get(&locked, Some(&wrong)),
        (StatusCode::UNAUTHORIZED, "UNAUTHORIZED_KEY".into())
    );
    assert_eq!(
        get(&locked, None),
        (StatusCode::UNAUTHORIZED, "UNAUTHORIZED_KEY".into())
    );
    assert_eq!(
        get(&locked, Some(&no_colon)),
        (StatusCode::FORBIDDEN, "INCORRECT_BASIC_AUTH_FORMAT".into())
    );
    // Without one: the format is still checked, any key passes, no header passes.
    assert_eq!(get(&open, Some(&wrong)).1, "NOT_FOUND_PAYMENT");
    assert_eq!(get(&open, None).1, "NOT_FOUND_PAYMENT");
    assert_eq!(get(&open, Some(&no_colon)).1, "INCORRECT_BASIC_AUTH_FORMAT");
    assert_eq!(
        get(&open, Some("Basic !!!")).1,
        "INCORRECT_BASIC_AUTH_FORMAT"
    );
    assert_eq!(get(&open, Some("Bearer abc")).1, "UNAUTHORIZED_KEY");
}

#[test]
fn unknown_paths_and_wrong_methods_get_pg_errors() {
    let api = memory();
    let (status, json, _) = call(Method::GET, "/v2/nothing", "").send(&api);
    assert_eq!(
        (status, &json["code"]),
        (StatusCode::NOT_FOUND, &"NOT_FOUND".into())
    );
    let (status, json, _) = call(Method::GET, "/v1/payments/confirm/extra/deep", "").send(&api);
    assert_eq!(status, StatusCode::NOT_FOUND, "{json}");
    let (status, json, _) = call(Method::DELETE, "/v1/payments/abc", "").send(&api);
    assert_eq!(
        (status, &json["code"]),
        (StatusCode::METHOD_NOT_ALLOWED, &"METHOD_NOT_ALLOWED".into())
    );
}
