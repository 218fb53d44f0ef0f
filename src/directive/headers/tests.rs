//! Tests of `directive/headers.rs`.

use super::*;
use http::StatusCode;
use http::header::HeaderName;
use proptest::prelude::*;

fn map(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        headers.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    headers
}

fn ok(pairs: &[(&str, &str)]) -> Directives {
    from_headers(&map(pairs)).unwrap_or_else(|e| panic!("{pairs:?}: {e}"))
}

fn err(pairs: &[(&str, &str)]) -> DirectiveError {
    from_headers(&map(pairs)).unwrap_err()
}

fn known(name: &str) -> CodeRef {
    CodeRef {
        code: Some(CodeName::Known(codes::lookup(name).unwrap())),
        status: None,
    }
}

#[test]
fn every_name_is_read() {
    for name in NAMES {
        let header = Header::from_name(name).unwrap().expect("one of ours");
        assert!(header.display().eq_ignore_ascii_case(name), "{name}");
    }
}

#[test]
fn no_directive_headers_is_empty() {
    let d = ok(&[
        ("content-type", "application/json"),
        ("idempotency-key", "k"),
        ("x-envoy-upstream-service-time", "3"),
        ("x-forwarded-for", "10.0.0.1"),
    ]);
    assert!(d.is_empty());
    assert!(from_headers(&HeaderMap::new()).unwrap().is_empty());
}

#[test]
fn the_compound_header_sets_every_field() {
    let d = ok(&[(
        "X-Gazua",
        "outcome=declined; latency=2s; fault=reset; status=503; profile=peak-sale; key=abc",
    )]);
    assert_eq!(
        d.outcome,
        Some(Mix::single(Outcome::Declined(CodeRef::DEFAULT)))
    );
    assert_eq!(d.latency, Some(Latency::fixed(Duration::from_secs(2))));
    assert_eq!(d.fault, Some(Mix::single(Fault::Reset)));
    assert_eq!(d.status, Some(StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(d.profile.as_deref(), Some("peak-sale"));
    assert_eq!(d.key.as_deref(), Some("abc"));
}

#[test]
fn per_field_headers_any_case() {
    let d = ok(&[
        ("x-gazua-latency", "lognormal(p50=80ms, p99=900ms)"),
        ("X-GAZUA-OUTCOME", "97% approved, 3% error(PROVIDER_ERROR)"),
        ("X-Gazua-Fault", "dribble(1KB/s)"),
        ("X-Gazua-Status", " 418 "),
        ("X-Gazua-Profile", "peak_sale-2"),
        ("X-Gazua-Key", "order-42/a"),
    ]);
    assert_eq!(
        d.latency.unwrap().to_string(),
        "lognormal(p50=80ms, p99=900ms)"
    );
    assert_eq!(
        d.outcome.unwrap().to_string(),
        "97% approved, 3% error(PROVIDER_ERROR)"
    );
    assert_eq!(
        d.fault,
        Some(Mix::single(Fault::Dribble {
            bytes_per_sec: 1000
        }))
    );
    assert_eq!(d.status, Some(StatusCode::IM_A_TEAPOT));
    assert_eq!(d.profile.as_deref(), Some("peak_sale-2"));
    assert_eq!(d.key.as_deref(), Some("order-42/a"));
    // The compound header and per-field headers that set different fields combine.
    let d = ok(&[("X-Gazua", "outcome=error"), ("X-Gazua-Latency", "5ms")]);
    assert_eq!(
        d.outcome,
        Some(Mix::single(Outcome::Error(CodeRef::DEFAULT)))
    );
    assert_eq!(d.latency, Some(Latency::fixed(Duration::from_millis(5))));
}

#[test]
fn errors_are_prefixed_with_the_header() {
    assert_eq!(
        err(&[("X-Gazua-Latency", "lognormal(p50=80, p99=900ms)")]).message,
        "X-Gazua-Latency: expected a duration such as 120ms at 'p50=80' in \
         'lognormal(p50=80, p99=900ms)'"
    );
    let e = err(&[("X-Gazua", "outcome=declined; latency=2")]);
    assert_eq!(e.code, "GAZUA_INVALID_DIRECTIVE");
    assert_eq!(
        e.message,
        "X-Gazua: latency=: expected a duration such as 120ms at '2' in '2'"
    );
    for (pairs, expected) in [
        (
            &[("X-Gazua-Status", "600")][..],
            "X-Gazua-Status: expected an HTTP status from 200 to 599 at '600'",
        ),
        (
            &[("X-Gazua-Status", "200 ok")],
            "X-Gazua-Status: expected the end at 'ok'",
        ),
        (
            &[("X-Gazua-Profile", "Peak")],
            "X-Gazua-Profile: expected a profile name such as peak-sale",
        ),
        (
            &[("X-Gazua-Profile", "-peak")],
            "X-Gazua-Profile: expected a profile name",
        ),
        (
            &[("X-Gazua-Profile", &"p".repeat(65))],
            "X-Gazua-Profile: expected a profile name",
        ),
        (
            &[("X-Gazua-Key", "a b")],
            "X-Gazua-Key: expected a key of 1 to 256 visible ASCII characters at 'a b'",
        ),
        (
            &[("X-Gazua-Key", &"k".repeat(257))],
            "X-Gazua-Key: expected a key of 1 to 256",
        ),
        (&[("X-Gazua-Key", "")], "X-Gazua-Key: expected a key"),
        (
            &[("X-Gazua-Outcome", "aproved")],
            "X-Gazua-Outcome: expected an outcome",
        ),
        (
            &[("X-Gazua-Fault", "rest")],
            "X-Gazua-Fault: expected a fault",
        ),
        (
            &[("X-Gazua", "outcome")],
            "X-Gazua: expected a field such as outcome=declined at 'outcome'",
        ),
        (
            &[("X-Gazua", "")],
            "X-Gazua: expected at least one field such as outcome=declined",
        ),
        (
            &[("X-Gazua", "outcome=error; outcome=declined")],
            "X-Gazua: expected each field once, but outcome= is repeated",
        ),
        (
            &[("X-Gazua", "latncy=2s")],
            "X-Gazua: expected a field outcome=, latency=, fault=, status=, profile=, key=, deposit= or webhook= at 'latncy=2s'",
        ),
    ] {
        let message = err(pairs).message;
        assert!(message.starts_with(expected), "{pairs:?}: {message}");
    }
}

#[test]
fn unknown_gazua_headers_are_errors() {
    let e = err(&[("X-Gazua-Latncy", "2s")]);
    assert_eq!(
        e.message,
        "x-gazua-latncy: unknown header (did you mean X-Gazua-Latency?); expected one of \
         X-Gazua, X-Gazua-Latency, X-Gazua-Outcome, X-Gazua-Fault, X-Gazua-Status, \
         X-Gazua-Profile, X-Gazua-Key"
    );
    let e = err(&[("x-gazua-something-else", "1")]);
    assert!(
        e.message
            .starts_with("x-gazua-something-else: unknown header; expected one of X-Gazua,"),
        "{e}"
    );
    assert!(
        err(&[("x-gazuax", "1")])
            .message
            .starts_with("x-gazuax: unknown header")
    );
}

#[test]
fn repeats_and_conflicts_name_both_sources() {
    let e = err(&[("X-Gazua-Latency", "1s"), ("x-gazua-latency", "2s")]);
    assert_eq!(
        e.message,
        "X-Gazua-Latency: the header is sent more than once; expected it once"
    );
    let e = err(&[("X-Gazua", "latency=1s"), ("X-Gazua-Latency", "2s")]);
    assert_eq!(
        e.message,
        "latency is set by both X-Gazua (latency=) and X-Gazua-Latency; expected one of them"
    );
    let e = err(&[
        ("X-Gazua-Outcome", "error"),
        ("TossPayments-Test-Code", "PROVIDER_ERROR"),
    ]);
    assert!(e.message.contains("X-Gazua-Outcome"), "{e}");
    assert!(e.message.contains("TossPayments-Test-Code"), "{e}");
    let e = err(&[
        ("X-Gazua-Latency", "1s"),
        ("x-envoy-fault-delay-request", "10"),
    ]);
    assert!(
        e.message
            .contains("X-Gazua-Latency and x-envoy-fault-delay-request"),
        "{e}"
    );
    let e = err(&[
        ("X-Gazua", "fault=reset"),
        ("x-envoy-fault-throughput-response", "1"),
    ]);
    assert!(e.message.contains("X-Gazua (fault=) and x-envoy"), "{e}");
    let e = err(&[("X-Gazua", "key=a"), ("X-Gazua-Key", "b")]);
    assert!(e.message.starts_with("key is set by both"), "{e}");
}

#[test]
fn values_must_be_text() {
    let mut headers = HeaderMap::new();
    headers.insert(
        HeaderName::from_static("x-gazua-latency"),
        HeaderValue::from_bytes(b"1\xffs").unwrap(),
    );
    let e = from_headers(&headers).unwrap_err();
    assert_eq!(
        e.message,
        "X-Gazua-Latency: expected UTF-8 text, got other bytes"
    );
    headers.insert(
        HeaderName::from_static("x-gazua-latency"),
        HeaderValue::from_bytes("250µs".as_bytes()).unwrap(),
    );
    let d = from_headers(&headers).unwrap();
    assert_eq!(d.latency, Some(Latency::fixed(Duration::from_micros(250))));
    headers.insert(
        HeaderName::from_static("x-gazua-latency"),
        HeaderValue::from_bytes("1s\u{85}".as_bytes()).unwrap(),
    );
    let e = from_headers(&headers).unwrap_err();
    assert!(e.message.contains("control characters"), "{e}");
}

#[test]
fn envoy_aliases() {
    let d = ok(&[("x-envoy-fault-delay-request", "250")]);
    assert_eq!(d.latency, Some(Latency::fixed(Duration::from_millis(250))));
    let d = ok(&[
        ("x-envoy-fault-delay-request", "250"),
        ("x-envoy-fault-delay-request-percentage", "30"),
    ]);
    assert_eq!(
        d.latency,
        Some(Latency::parse("30% 250ms + 70% 0").unwrap())
    );

    let d = ok(&[
        ("x-envoy-fault-abort-request", "503"),
        ("x-envoy-fault-abort-request-percentage", "12.5"),
    ]);
    let error = Outcome::Error(CodeRef {
        code: None,
        status: Some(StatusCode::SERVICE_UNAVAILABLE),
    });
    assert_eq!(
        d.outcome,
        Mix::from_weights(vec![(125_000, error.clone())], Outcome::Approved)
    );
    let d = ok(&[("x-envoy-fault-abort-request", "503")]);
    assert_eq!(d.outcome, Some(Mix::single(error)));

    let d = ok(&[
        ("x-envoy-fault-throughput-response", "4"),
        ("x-envoy-fault-throughput-response-percentage", "50"),
    ]);
    let dribble = Fault::Dribble {
        bytes_per_sec: 4096,
    };
    assert_eq!(
        d.fault,
        Mix::from_weights(vec![(500_000, dribble)], Fault::None)
    );

    for (pairs, expected) in [
        (
            &[("x-envoy-fault-delay-request", "1s")][..],
            "x-envoy-fault-delay-request: expected a delay in milliseconds such as 250 at '1s'",
        ),
        (
            &[("x-envoy-fault-abort-request", "99")],
            "x-envoy-fault-abort-request: expected an HTTP status from 200 to 599 at '99'",
        ),
        (
            &[("x-envoy-fault-throughput-response", "0")],
            "x-envoy-fault-throughput-response: expected a rate in KiB/s above 0",
        ),
        (
            &[
                ("x-envoy-fault-delay-request", "5"),
                ("x-envoy-fault-delay-request-percentage", "101"),
            ],
            "x-envoy-fault-delay-request-percentage: expected a percentage from 0 to 100",
        ),
        (
            &[("x-envoy-fault-abort-request-percentage", "5")],
            "x-envoy-fault-abort-request-percentage: expected it only with x-envoy-fault-abort-request",
        ),
        (
            &[
                ("x-envoy-fault-delay-request", "5"),
                ("x-envoy-fault-delay-request", "6"),
            ],
            "x-envoy-fault-delay-request: the header is sent more than once",
        ),
    ] {
        let message = err(pairs).message;
        assert!(message.starts_with(expected), "{pairs:?}: {message}");
    }
}

#[test]
fn toss_test_codes() {
    let d = ok(&[("TossPayments-Test-Code", "REJECT_CARD_PAYMENT")]);
    assert_eq!(
        d.outcome,
        Some(Mix::single(Outcome::Declined(known("REJECT_CARD_PAYMENT"))))
    );
    let d = ok(&[("tosspayments-test-code", "PROVIDER_ERROR")]);
    assert_eq!(
        d.outcome,
        Some(Mix::single(Outcome::Error(known("PROVIDER_ERROR"))))
    );
    let d = ok(&[("TossPayments-Test-Code", "FORBIDDEN_CONSECUTIVE_REQUEST")]);
    assert_eq!(d.outcome, Some(Mix::single(Outcome::Throttled)));
    let d = ok(&[("TossPayments-Test-Code", "INVALID_REQUEST")]);
    assert_eq!(
        d.outcome,
        Some(Mix::single(Outcome::Error(known("INVALID_REQUEST"))))
    );
    let e = err(&[("TossPayments-Test-Code", "NO_SUCH_CODE")]);
    assert_eq!(e.code, "INVALID_TEST_CODE");
    assert!(e.message.contains("'NO_SUCH_CODE'"), "{e}");
}

#[test]
fn compound_grammar() {
    let d = parse_compound(" outcome = 3% error ; latency=95% 1ms + 5% 1s;").unwrap();
    assert_eq!(d.outcome.unwrap().to_string(), "3% error, 97% approved");
    assert_eq!(d.latency.unwrap().to_string(), "95% 1ms + 5% 1s");
    assert!(parse_compound(";;").is_err());
}

#[test]
fn body_tags() {
    let body = br#"{"orderId":"o1","amount":1000,"orderName":"shoes [gazua: outcome=declined; latency=2s] x","customerName":"[gazua: outcome=error]"}"#;
    let d = find_tag(body).unwrap().unwrap();
    assert_eq!(
        d.outcome,
        Some(Mix::single(Outcome::Declined(CodeRef::DEFAULT)))
    );
    assert_eq!(d.latency, Some(Latency::fixed(Duration::from_secs(2))));

    // Document order, through nested arrays and objects, past other value types.
    let body =
        br#"{"a":[1,-2,3.5,true,null,{"k":"[gazua: fault=reset]"}],"b":"[gazua: fault=hang]"}"#;
    assert_eq!(
        find_tag(body).unwrap().unwrap().fault,
        Some(Mix::single(Fault::Reset))
    );

    // Keys are not values; a tag outside strings, or a body that is not JSON, is no tag.
    assert!(find_tag(br#"{"[gazua: outcome=error]":1}"#).is_none());
    assert!(find_tag(b"[gazua: outcome=error]").is_none());
    assert!(find_tag(br#"{"a":"[gazua: outcome=error]""#).is_none());
    assert!(find_tag(br#"{"a":"[gazua: outcome=error]"} trailing"#).is_none());
    assert!(find_tag(br#"{"a":"no tag"}"#).is_none());
    // Escapes are decoded before looking.
    let d = find_tag(br#"{"a":"x\"y [gazua: key=k\u0031]"}"#)
        .unwrap()
        .unwrap();
    assert_eq!(d.key.as_deref(), Some("k1"));

    let e = find_tag(br#"{"a":"[gazua: latency=5]"}"#)
        .unwrap()
        .unwrap_err();
    assert_eq!(
        e.message,
        "[gazua: …] tag: latency=: expected a duration such as 120ms at '5' in '5'"
    );
    let e = find_tag(br#"{"a":"[gazua: latency=5ms"}"#)
        .unwrap()
        .unwrap_err();
    assert!(e.message.contains("expected ']' to close the tag"), "{e}");
}

#[test]
fn the_marker_is_matched_in_any_case() {
    for body in [
        br#"{"orderName":"[Gazua: outcome=declined]"}"#.as_slice(),
        br#"{"orderName":"socks [GAZUA: outcome=declined]"}"#,
        br#"{"orderName":"[gAzUa:outcome=declined]"}"#,
    ] {
        let d = find_tag(body).unwrap().unwrap();
        assert_eq!(
            d.outcome,
            Some(Mix::single(Outcome::Declined(CodeRef::DEFAULT)))
        );
    }
    assert_eq!(tag_text("x [Gazua: key=k1] y"), Some("key=k1"));
}

#[test]
fn near_misses_of_the_marker_are_errors() {
    for text in [
        "[gazau: outcome=declined]",
        "[gazua outcome=declined]",
        "[ gazua: latency=2s]",
        "[gazua : fault=reset]",
        "[Gaza: OUTCOME = declined]",
        "socks [gzua: key=k]",
    ] {
        let body = format!(r#"{{"orderName":"{text}"}}"#);
        assert!(may_hold_tag(body.as_bytes()), "{text}");
        let e = find_tag(body.as_bytes()).unwrap().unwrap_err();
        assert!(
            e.message.starts_with(
                "[gazua: …] tag: expected the marker '[gazua:' (any case) such as \
                 [gazua: outcome=declined] at '["
            ),
            "{text}: {e}"
        );
    }
    // Text that merely looks alike is no tag and no error.
    for text in [
        "[Gazua Store] socks",
        "[gaza: news] key=value",
        "[gazua] outcome",
        "[sale: outcome=good]",
        "[outcome=declined]",
        "[gazette: key=1]",
        "[",
        "[gazua",
    ] {
        let body = format!(r#"{{"orderName":"{text}"}}"#);
        assert!(find_tag(body.as_bytes()).is_none(), "{text}");
    }
    // A near miss outside any string value is not a tag either.
    assert!(find_tag(br#"{"[gazau: outcome=declined]":1}"#).is_none());
}

#[test]
fn long_directives_are_refused_by_the_cap_without_echo() {
    let huge = format!("percentiles({})", "p50=1ms,".repeat(125_000));
    let e = err(&[("X-Gazua-Latency", &huge)]);
    assert_eq!(
        e.message,
        format!(
            "X-Gazua-Latency: the directive is {} bytes long; expected at most 4096 bytes \
             (Gazua's directive length cap)",
            huge.len()
        )
    );
    let body = format!(r#"{{"orderName":"[gazua: latency={huge}]"}}"#);
    let e = find_tag(body.as_bytes()).unwrap().unwrap_err();
    let expected = format!(
        "[gazua: …] tag: the directive is {} bytes long; expected at most 4096",
        " latency=".len() + huge.len()
    );
    assert!(e.message.starts_with(&expected), "{e}");
    // Every message that shows input shows at most a window of it.
    let long = "x".repeat(3000);
    for pairs in [
        vec![("X-Gazua", long.as_str())],
        vec![("X-Gazua-Profile", long.as_str())],
        vec![("TossPayments-Test-Code", long.as_str())],
        vec![("x-envoy-fault-delay-request", long.as_str())],
        vec![(&*format!("x-gazua-{long}"), "1")],
    ] {
        let e = err(&pairs);
        assert!(e.message.len() < 600, "{}", e.message.len());
    }
}

#[test]
fn tags_in_a_single_string() {
    let d = parse_tag_in("tgen_20240101abc[gazua: outcome=lost(reset)]")
        .unwrap()
        .unwrap();
    assert_eq!(d.outcome, Some(Mix::single(Outcome::Lost(Fault::Reset))));
    assert!(parse_tag_in("tgen_20240101abc").is_none());
    assert!(parse_tag_in("[gazua:]").unwrap().is_err());
}

fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select([&NAMES[..], &["content-type"]].concat()).prop_map(str::to_owned),
        "x-gazua[a-z0-9-]{0,8}",
    ]
}

proptest! {
    #[test]
    fn from_headers_never_panics(
        pairs in prop::collection::vec((header_name(), prop::collection::vec(any::<u8>(), 0..40)), 0..6)
    ) {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(&value)) {
                headers.append(name, value);
            }
        }
        let _ = from_headers(&headers);
    }

    #[test]
    fn from_headers_never_panics_on_near_grammar(
        name in header_name(),
        value in "[ -~]{0,40}",
    ) {
        let headers = map(&[(&name, &value)]);
        let _ = from_headers(&headers);
    }

    #[test]
    fn compound_and_tags_never_panic(text in "\\PC{0,80}") {
        let _ = parse_compound(&text);
        let _ = parse_tag_in(&text);
        let _ = find_tag(text.as_bytes());
        let _ = find_tag(format!("{{\"a\":\"[gazua:{text}\"}}").as_bytes());
    }
}
