//! Answers against the OpenAPI document, and arbitrary requests that must get a PG-shaped
//! answer, never a panic or a 500.

use super::*;

mod arbitrary {
    use proptest::prelude::*;

    use super::*;

    fn paths() -> impl Strategy<Value = (Method, String)> {
        prop_oneof![
            Just((Method::POST, "/v1/payments".to_owned())),
            Just((Method::POST, "/v1/payments/confirm".to_owned())),
            Just((Method::POST, "/v1/payments/some-key/cancel".to_owned())),
            Just((Method::POST, "/v1/billing/authorizations/issue".to_owned())),
            Just((Method::POST, "/v1/billing/some-billing-key".to_owned())),
            Just((Method::GET, "/v1/payments/orders/order-0001".to_owned())),
            "[a-z/0-9-]{0,40}".prop_map(|p| (Method::GET, format!("/{p}"))),
        ]
    }

    fn bodies() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..200),
            // JSON-shaped: the fields the routes read, with values of any type.
            (
                proptest::sample::select(vec![
                    "paymentKey",
                    "orderId",
                    "amount",
                    "cancelReason",
                    "cancelAmount",
                    "customerKey",
                    "authKey",
                    "orderName",
                    "method",
                    "successUrl",
                    "failUrl",
                ]),
                prop_oneof![
                    Just("null".to_owned()),
                    any::<i64>().prop_map(|n| n.to_string()),
                    any::<f64>().prop_map(|f| if f.is_finite() {
                        f.to_string()
                    } else {
                        "1e400".into()
                    }),
                    "\\PC{0,80}".prop_map(|s| serde_json::to_string(&s).unwrap()),
                    Just("[1,{\"a\":[]}]".to_owned()),
                    Just("true".to_owned()),
                ],
            )
                .prop_map(|(k, v)| format!(
                    r#"{{"orderId":"order-0001","amount":1000,"{k}":{v}}}"#
                )
                .into_bytes()),
        ]
    }

    proptest! {
        #[test]
        fn any_body_gets_a_pg_shaped_answer((method, path) in paths(), body in bodies()) {
            let api = memory();
            let target = route(&method, &path);
            let headers = HeaderMap::new();
            let req = ApiRequest {
                target: &target,
                method: &method,
                headers: &headers,
                body: &body,
                lang: Lang::Ko,
                now: jiff::Timestamp::from_second(T0).unwrap(),
            };
            let _ = api.request_tag(&target, &body);
            let reply = ready_now(api.answer(&req, &decision(Outcome::Approved)));
            let json: Value = serde_json::from_slice(&reply.body).unwrap();
            prop_assert!(reply.status.as_u16() < 500, "{} {}", reply.status, json);
            if !reply.status.is_success() {
                prop_assert!(json["code"].is_string() && json["message"].is_string());
            }
        }
    }
}

/// Checks `value` against an OpenAPI 3.0 schema of `openapi.json`: types, nullability, required
/// fields and string patterns of every nested object. Enough to keep the document and the
/// rendered answers from drifting apart.
fn conforms(doc: &Value, schema: &Value, value: &Value, at: &str) {
    let schema = match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => &doc["components"]["schemas"][r.rsplit('/').next().unwrap()],
        None => schema,
    };
    if value.is_null() {
        assert_eq!(schema["nullable"], true, "{at} is null but not nullable");
        return;
    }
    let ty = schema["type"].as_str().unwrap_or("");
    let ok = match ty {
        "string" => value.is_string(),
        "integer" => value.is_u64() || value.is_i64(),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        _ => true,
    };
    assert!(ok, "{at} = {value} is not {ty}");
    if let (Some(pattern), Some(s)) = (schema["pattern"].as_str(), value.as_str()) {
        // The patterns used are simple enough to check by shape: digits, masks and KST times.
        let shape: String = s
            .chars()
            .map(|c| if c.is_ascii_digit() { '9' } else { c })
            .collect();
        match pattern {
            r"^\d{8}$" => assert_eq!(shape, "99999999", "{at}"),
            r"^\d{8}\*{4}\d{3}\*$" => assert_eq!(shape, "99999999****999*", "{at}"),
            p if p.contains("+09:00") => assert_eq!(shape, "9999-99-99T99:99:99+99:99", "{at}"),
            _ => {}
        }
    }
    if let Some(values) = schema["enum"].as_array() {
        assert!(
            values.contains(value),
            "{at} = {value} is not one of {values:?}"
        );
    }
    if let Some(required) = schema["required"].as_array() {
        for field in required {
            let field = field.as_str().unwrap();
            assert!(value.get(field).is_some(), "{at}.{field} is required");
        }
    }
    if let (Some(props), Some(object)) = (schema["properties"].as_object(), value.as_object()) {
        for (name, v) in object {
            let sub = props
                .get(name)
                .unwrap_or_else(|| panic!("{at}.{name} is not documented"));
            conforms(doc, sub, v, &format!("{at}.{name}"));
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, v) in array.iter().enumerate() {
            conforms(doc, items, v, &format!("{at}[{i}]"));
        }
    }
}

#[test]
fn answers_conform_to_the_openapi_document() {
    let doc: Value = serde_json::from_str(include_str!("../../../openapi.json")).unwrap();
    let schema = |name: &str| serde_json::json!({ "$ref": format!("#/components/schemas/{name}") });
    let api = memory();
    let (_, ready, _) = call(Method::POST, "/v1/payments", CREATE).send(&api);
    let key = ready["paymentKey"].as_str().unwrap().to_owned();
    let body = confirm_body(&key, "order-0001", 15000);
    let (_, done, _) = call(Method::POST, "/v1/payments/confirm", &body).send(&api);
    let cancel = format!("/v1/payments/{key}/cancel");
    let (_, partial, _) = call(
        Method::POST,
        &cancel,
        r#"{"cancelReason":"x","cancelAmount":100}"#,
    )
    .send(&api);
    let (_, english, _) = call(Method::GET, &format!("/v1/payments/{key}"), "")
        .header("accept-language", "en-US")
        .send(&api);
    let other = create(&api);
    call(
        Method::POST,
        "/v1/payments/confirm",
        &confirm_body(&other, "order-0001", 15000),
    )
    .outcome(declined("REJECT_CARD_PAYMENT"))
    .send(&api);
    let (_, aborted, _) = call(Method::GET, &format!("/v1/payments/{other}"), "").send(&api);
    for (name, payment) in [
        ("ready", &ready),
        ("done", &done),
        ("partial", &partial),
        ("en", &english),
        ("aborted", &aborted),
    ] {
        conforms(&doc, &schema("Payment"), payment, name);
    }
    let (_, issued, _) = call(
        Method::POST,
        "/v1/billing/authorizations/issue",
        r#"{"authKey":"a","customerKey":"customer-1"}"#,
    )
    .send(&api);
    conforms(&doc, &schema("BillingAuthorization"), &issued, "billing");
    let (_, error, _) = call(Method::GET, "/v1/payments/none-such", "").send(&api);
    conforms(&doc, &schema("Error"), &error, "error");
    // Every route's path and method is documented.
    for (path, method) in [
        ("/v1/payments", "post"),
        ("/v1/payments/confirm", "post"),
        ("/v1/payments/{paymentKey}", "get"),
        ("/v1/payments/orders/{orderId}", "get"),
        ("/v1/payments/{paymentKey}/cancel", "post"),
        ("/v1/billing/authorizations/issue", "post"),
        ("/v1/billing/{billingKey}", "post"),
    ] {
        let op = &doc["paths"][path][method];
        for status in ["200", "400", "401", "403", "404", "405", "500", "default"] {
            assert!(
                op["responses"].get(status).is_some(),
                "{method} {path} documents {status}"
            );
        }
    }
}
