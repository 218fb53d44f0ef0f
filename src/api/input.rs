//! Reading request bodies the way the real PG validates them: every field read as whatever JSON
//! it is (no `Value` trees), then checked, so that a missing or mistyped field gets a 400 naming
//! it. Unknown fields are ignored.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::Lang;

/// The largest amount accepted: exactly representable in a JavaScript number.
pub const MAX_AMOUNT: u64 = (1 << 53) - 1;

/// One JSON value, typed only as far as validation needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Loose<'a> {
    Str(Cow<'a, str>),
    Int(i128),
    Float(f64),
    Bool,
    Array,
    Object,
}

impl Loose<'_> {
    fn type_name(&self) -> &'static str {
        match self {
            Loose::Str(_) => "a string",
            Loose::Int(_) | Loose::Float(_) => "a number",
            Loose::Bool => "a boolean",
            Loose::Array => "an array",
            Loose::Object => "an object",
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Loose<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Loose<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Loose::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Loose::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Loose::Str(Cow::Owned(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Loose::Int(i128::from(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Loose::Int(i128::from(v)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Loose::Float(v))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Loose::Bool)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Loose::Array)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Loose::Object)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// What is wrong with a request, in words that name the field.
#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    NotJson(String),
    NotObject,
    ContentType(String),
    Missing(&'static str),
    WrongType {
        field: &'static str,
        expected: &'static str,
        got: &'static str,
    },
    Empty(&'static str),
    TooLong(&'static str, usize),
    OrderId,
    NotPositive(&'static str),
    NotWhole(&'static str),
    TooLarge(&'static str),
    /// A tag in orderName too long to carry in a paymentKey beside this orderId.
    TagTooLong(usize),
    AmountMismatch {
        expected: u64,
        got: u64,
    },
    /// A payment method Gazua does not model (it models cards), as given (at most 40
    /// characters of it).
    UnsupportedMethod(String),
}

impl Problem {
    pub fn message(&self, lang: Lang) -> String {
        use Problem::*;
        match lang {
            Lang::Ko => match self {
                NotJson(e) => format!("잘못된 요청입니다. JSON 본문을 해석할 수 없습니다: {e}"),
                NotObject => "잘못된 요청입니다. 요청 본문은 JSON 객체여야 합니다.".into(),
                ContentType(got) => format!(
                    "잘못된 요청입니다. Content-Type은 application/json 이어야 합니다. (받은 값: {got})"
                ),
                Missing(f) => format!("잘못된 요청입니다. {f}: 필수 파라미터가 누락되었습니다."),
                WrongType {
                    field, expected, ..
                } => format!(
                    "잘못된 요청입니다. {field}: {} 값이어야 합니다.",
                    if *expected == "a string" { "문자열" } else { "숫자" }
                ),
                Empty(f) => format!("잘못된 요청입니다. {f}: 빈 값일 수 없습니다."),
                TooLong(f, max) => format!("잘못된 요청입니다. {f}: 최대 {max}자까지 입력할 수 있습니다."),
                OrderId => "잘못된 요청입니다. orderId: 영문 대소문자, 숫자, 특수문자 -, _ 로 이루어진 6자 이상 64자 이하의 문자열이어야 합니다.".into(),
                NotPositive(f) => format!("잘못된 요청입니다. {f}: 0보다 커야 합니다."),
                NotWhole(f) => format!("잘못된 요청입니다. {f}: 정수여야 합니다."),
                TooLarge(f) => format!("잘못된 요청입니다. {f}: 허용 범위를 초과했습니다."),
                TagTooLong(room) => format!(
                    "잘못된 요청입니다. orderName: [gazua: …] 태그가 너무 길어 paymentKey에 담을 수 없습니다. (이 orderId와 함께 최대 {room}바이트)"
                ),
                AmountMismatch { expected, got } => format!(
                    "잘못된 요청입니다. amount: 결제 금액({expected})과 요청 금액({got})이 일치하지 않습니다."
                ),
                UnsupportedMethod(m) => format!(
                    "잘못된 요청입니다. method: '{m}' 결제수단은 지원하지 않습니다. (Gazua는 카드 결제만 제공합니다: 카드 또는 CARD)"
                ),
            },
            Lang::En => match self {
                NotJson(e) => format!("The request is invalid: the body is not valid JSON: {e}"),
                NotObject => "The request is invalid: the body must be a JSON object.".into(),
                ContentType(got) => format!(
                    "The request is invalid: Content-Type must be application/json, got '{got}'."
                ),
                Missing(f) => format!("The request is invalid: {f} is required."),
                WrongType {
                    field,
                    expected,
                    got,
                } => format!("The request is invalid: {field} must be {expected}, got {got}."),
                Empty(f) => format!("The request is invalid: {f} must not be empty."),
                TooLong(f, max) => {
                    format!("The request is invalid: {f} must be at most {max} characters.")
                }
                OrderId => "The request is invalid: orderId must be 6 to 64 characters of A-Z, a-z, 0-9, '-' and '_'.".into(),
                NotPositive(f) => format!("The request is invalid: {f} must be greater than 0."),
                NotWhole(f) => format!("The request is invalid: {f} must be a whole number."),
                TooLarge(f) => format!(
                    "The request is invalid: {f} must be at most {MAX_AMOUNT}."
                ),
                TagTooLong(room) => format!(
                    "The request is invalid: orderName: the [gazua: …] tag is too long to carry in a paymentKey beside this orderId (at most {room} bytes)."
                ),
                AmountMismatch { expected, got } => format!(
                    "The request is invalid: amount {got} does not match the payment's amount {expected}."
                ),
                UnsupportedMethod(m) => format!(
                    "The request is invalid: method '{m}' is not supported; Gazua models card payments only (expected 카드 or CARD)."
                ),
            },
        }
    }
}

/// Parses a JSON object body into `T` (whose fields are `Option<Loose>`).
pub fn parse_body<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, Problem> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    match first {
        None => return Err(Problem::NotObject),
        Some(b'{') => {}
        Some(_) => {
            // Say why it is not an object: broken JSON, or JSON of another shape.
            return Err(match serde_json::from_slice::<IgnoredAny>(body) {
                Ok(_) => Problem::NotObject,
                Err(e) => Problem::NotJson(e.to_string()),
            });
        }
    }
    serde_json::from_slice(body).map_err(|e| Problem::NotJson(e.to_string()))
}

/// A required string field, at most `max` characters, not empty.
pub fn text<'a>(
    field: &'static str,
    value: Option<Loose<'a>>,
    max: usize,
) -> Result<Cow<'a, str>, Problem> {
    match optional_text(field, value, max)? {
        Some(s) => Ok(s),
        None => Err(Problem::Missing(field)),
    }
}

/// An optional string field (null is absent), at most `max` characters, not empty if given.
pub fn optional_text<'a>(
    field: &'static str,
    value: Option<Loose<'a>>,
    max: usize,
) -> Result<Option<Cow<'a, str>>, Problem> {
    match value {
        None => Ok(None),
        Some(Loose::Str(s)) => {
            if s.trim().is_empty() {
                Err(Problem::Empty(field))
            } else if s.chars().count() > max {
                Err(Problem::TooLong(field, max))
            } else {
                Ok(Some(s))
            }
        }
        Some(other) => Err(Problem::WrongType {
            field,
            expected: "a string",
            got: other.type_name(),
        }),
    }
}

/// The payment methods Gazua models: cards, by the PG's Korean name or its English one.
/// Anything else — the PG's other methods (`VIRTUAL_ACCOUNT`/가상계좌, `TRANSFER`/계좌이체,
/// `MOBILE_PHONE`/휴대폰, easy pay, gift certificates) included — is refused by name rather
/// than answered with a card payment the SUT did not ask for.
pub const CARD_METHODS: [&str; 2] = ["카드", "CARD"];

/// A `method` field, when the body has one: a card, else [`Problem::UnsupportedMethod`].
pub fn optional_method(value: Option<Loose<'_>>) -> Result<(), Problem> {
    let Some(method) = optional_text("method", value, 40)? else {
        return Ok(());
    };
    let method = method.trim();
    if CARD_METHODS
        .iter()
        .any(|card| method.eq_ignore_ascii_case(card))
    {
        Ok(())
    } else {
        Err(Problem::UnsupportedMethod(method.to_owned()))
    }
}

/// A required `method` field (`POST /v1/payments`): a card.
pub fn method(value: Option<Loose<'_>>) -> Result<(), Problem> {
    match value {
        None => Err(Problem::Missing("method")),
        some => optional_method(some),
    }
}

/// An `orderId`: 6–64 characters of `[A-Za-z0-9_-]`.
pub fn order_id<'a>(value: Option<Loose<'a>>) -> Result<Cow<'a, str>, Problem> {
    let id = match value {
        None => return Err(Problem::Missing("orderId")),
        Some(Loose::Str(s)) => s,
        Some(other) => {
            return Err(Problem::WrongType {
                field: "orderId",
                expected: "a string",
                got: other.type_name(),
            });
        }
    };
    if valid_order_id(&id) {
        Ok(id)
    } else {
        Err(Problem::OrderId)
    }
}

pub fn valid_order_id(id: &str) -> bool {
    (6..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A required amount: a whole number of won greater than 0 (a JSON number; `1000.0` is whole, a
/// string is mistyped).
pub fn amount(field: &'static str, value: Option<Loose<'_>>) -> Result<u64, Problem> {
    optional_amount(field, value)?.ok_or(Problem::Missing(field))
}

pub fn optional_amount(
    field: &'static str,
    value: Option<Loose<'_>>,
) -> Result<Option<u64>, Problem> {
    let n: f64 = match value {
        None => return Ok(None),
        Some(Loose::Int(n)) => {
            return if n <= 0 {
                Err(Problem::NotPositive(field))
            } else if n > i128::from(MAX_AMOUNT) {
                Err(Problem::TooLarge(field))
            } else {
                Ok(Some(n as u64))
            };
        }
        Some(Loose::Float(f)) => f,
        Some(other) => {
            return Err(Problem::WrongType {
                field,
                expected: "a number",
                got: other.type_name(),
            });
        }
    };
    if n <= 0.0 {
        Err(Problem::NotPositive(field))
    } else if n.fract() != 0.0 {
        Err(Problem::NotWhole(field))
    } else if n > MAX_AMOUNT as f64 {
        Err(Problem::TooLarge(field))
    } else {
        Ok(Some(n as u64))
    }
}

/// An optional non-negative amount (`taxFreeAmount`, `refundableAmount`): 0 is allowed.
pub fn optional_non_negative(
    field: &'static str,
    value: Option<Loose<'_>>,
) -> Result<Option<u64>, Problem> {
    match value {
        Some(Loose::Int(0)) => Ok(Some(0)),
        Some(Loose::Float(0.0)) => Ok(Some(0)),
        other => optional_amount(field, other),
    }
}

/// `Content-Type`, when present, must be JSON (parameters such as charset are fine). Load
/// scripts often send no type at all; that is accepted.
pub fn check_content_type(headers: &http::HeaderMap) -> Result<(), Problem> {
    let Some(value) = headers.get(http::header::CONTENT_TYPE) else {
        return Ok(());
    };
    let text = value.to_str().unwrap_or("");
    let media = text.split(';').next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        let shown: String = text.chars().take(80).collect();
        Err(Problem::ContentType(shown))
    }
}

/// The inner text of the first `[gazua: …]` tag in `text` (the marker in any case).
pub fn tag_in(text: &str) -> Option<&str> {
    crate::directive::headers::tag_text(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Body<'a> {
        #[serde(borrow)]
        order_id: Option<Loose<'a>>,
        #[serde(borrow)]
        amount: Option<Loose<'a>>,
    }

    #[test]
    fn fields_are_read_whatever_their_type() {
        let b: Body =
            parse_body(br#"{"orderId":"abc-123","amount":[1,{"x":2}],"other":{}}"#).unwrap();
        assert_eq!(b.order_id, Some(Loose::Str("abc-123".into())));
        assert_eq!(b.amount, Some(Loose::Array));
        let b: Body = parse_body(br#"{"orderId":null}"#).unwrap();
        assert_eq!(b.order_id, None, "null is absent");
    }

    #[test]
    fn bodies_that_are_not_objects_say_why() {
        assert_eq!(parse_body::<Body>(b"").err(), Some(Problem::NotObject));
        assert_eq!(parse_body::<Body>(b"[1]").err(), Some(Problem::NotObject));
        assert!(matches!(
            parse_body::<Body>(b"{\"orderId\":").err(),
            Some(Problem::NotJson(_))
        ));
        assert!(matches!(
            parse_body::<Body>(b"nope").err(),
            Some(Problem::NotJson(_))
        ));
    }

    #[test]
    fn amounts_are_whole_positive_numbers() {
        let n = |v| optional_amount("amount", Some(v));
        assert_eq!(n(Loose::Int(15000)), Ok(Some(15000)));
        assert_eq!(n(Loose::Float(1000.0)), Ok(Some(1000)));
        assert_eq!(n(Loose::Int(0)), Err(Problem::NotPositive("amount")));
        assert_eq!(n(Loose::Int(-5)), Err(Problem::NotPositive("amount")));
        assert_eq!(n(Loose::Float(10.5)), Err(Problem::NotWhole("amount")));
        assert_eq!(n(Loose::Int(1 << 60)), Err(Problem::TooLarge("amount")));
        assert!(matches!(
            n(Loose::Str("ten".into())),
            Err(Problem::WrongType { .. })
        ));
        assert!(matches!(n(Loose::Bool), Err(Problem::WrongType { .. })));
    }

    #[test]
    fn order_ids_follow_the_pg_pattern() {
        assert!(valid_order_id("abc_12-3"));
        assert!(!valid_order_id("abc12"));
        assert!(!valid_order_id(&"a".repeat(65)));
        assert!(!valid_order_id("order.123"));
        assert!(!valid_order_id("주문번호123456"));
    }

    #[test]
    fn tags_are_found_inside_text() {
        assert_eq!(
            tag_in("티셔츠 [gazua: outcome=declined] 외"),
            Some("outcome=declined")
        );
        assert_eq!(tag_in("no tag"), None);
        assert_eq!(tag_in("[gazua: unclosed"), None);
    }
}
