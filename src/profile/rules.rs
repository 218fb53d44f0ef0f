//! A profile's rules (source 3 of a decision): `{when, then}` pairs, the first whose every
//! condition holds decides. Conditions are compiled at load (regexes, header names, methods);
//! a request's JSON body is parsed at most once, and only when a rule asks for it.

use std::cell::OnceCell;

use http::header::HeaderName;
use http::{HeaderMap, Method};
use regex::Regex;
use serde::Deserialize;
use serde_json::Value;

use super::fields::Fields;
use crate::directive::Directives;
use crate::route::Route;

/// What a rule may look at in one request.
#[derive(Debug, Clone, Copy)]
pub struct RuleInput<'a> {
    pub route: Route,
    pub method: &'a Method,
    pub headers: &'a HeaderMap,
    /// The request body as received (empty when there is none).
    pub body: &'a [u8],
}

/// One rule: when every condition of `when` holds, `then` applies.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawRule")]
pub struct Rule {
    pub when: When,
    pub then: Directives,
}

/// The conditions of a rule; all given ones must hold (an empty `when` matches everything).
#[derive(Debug, Clone)]
pub struct When {
    /// Bit `Route::index()` set for each route named; 0 for any route.
    routes: u8,
    /// Empty for any method.
    methods: Vec<Method>,
    header: Option<HeaderCondition>,
    json: Option<JsonCondition>,
}

#[derive(Debug, Clone)]
struct HeaderCondition {
    name: HeaderName,
    test: HeaderTest,
}

#[derive(Debug, Clone)]
enum HeaderTest {
    Equals(String),
    Regex(Regex),
    Present(bool),
}

#[derive(Debug, Clone)]
struct JsonCondition {
    /// An RFC 6901 JSON pointer such as `/amount`.
    pointer: String,
    /// All must hold; none means "the pointer resolves to a value".
    tests: Vec<JsonTest>,
}

#[derive(Debug, Clone)]
enum JsonTest {
    Equals(Value),
    Regex(Regex),
    Gt(f64),
    Gte(f64),
    Lt(f64),
    Lte(f64),
}

impl Rule {
    /// Whether this rule's conditions hold; `body` parses the request body on first use.
    fn matches(&self, input: &RuleInput<'_>, body: &OnceCell<Option<Value>>) -> bool {
        let w = &self.when;
        if w.routes != 0 && w.routes & (1 << input.route.index()) == 0 {
            return false;
        }
        if !w.methods.is_empty() && !w.methods.contains(input.method) {
            return false;
        }
        if let Some(h) = &w.header
            && !h.holds(input.headers)
        {
            return false;
        }
        if let Some(j) = &w.json {
            let parsed = body.get_or_init(|| serde_json::from_slice(input.body).ok());
            let value = parsed.as_ref().and_then(|v| v.pointer(&j.pointer));
            let Some(value) = value else {
                return false;
            };
            if !j.tests.iter().all(|t| t.holds(value)) {
                return false;
            }
        }
        true
    }
}

/// The directives of the first rule that matches, in file order.
pub(crate) fn first_match<'r>(rules: &'r [Rule], input: &RuleInput<'_>) -> Option<&'r Directives> {
    let body = OnceCell::new();
    rules
        .iter()
        .find(|r| r.matches(input, &body))
        .map(|r| &r.then)
}

impl HeaderCondition {
    fn holds(&self, headers: &HeaderMap) -> bool {
        let mut values = headers.get_all(&self.name).iter();
        match &self.test {
            HeaderTest::Present(present) => values.next().is_some() == *present,
            HeaderTest::Equals(expected) => values.any(|v| v.as_bytes() == expected.as_bytes()),
            HeaderTest::Regex(re) => values.any(|v| v.to_str().is_ok_and(|s| re.is_match(s))),
        }
    }
}

impl JsonTest {
    fn holds(&self, value: &Value) -> bool {
        let number = || value.as_f64();
        match self {
            JsonTest::Equals(expected) => match (expected.as_f64(), value.as_f64()) {
                // 1000000 and 1000000.0 are the same amount.
                (Some(a), Some(b)) => a == b,
                _ => expected == value,
            },
            JsonTest::Regex(re) => match value {
                Value::String(s) => re.is_match(s),
                Value::Number(n) => re.is_match(&n.to_string()),
                Value::Bool(b) => re.is_match(if *b { "true" } else { "false" }),
                _ => false,
            },
            JsonTest::Gt(x) => number().is_some_and(|v| v > *x),
            JsonTest::Gte(x) => number().is_some_and(|v| v >= *x),
            JsonTest::Lt(x) => number().is_some_and(|v| v < *x),
            JsonTest::Lte(x) => number().is_some_and(|v| v <= *x),
        }
    }
}

// ---- the file form ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    when: RawWhen,
    then: Fields,
}

/// `"confirm"` or `["confirm", "cancel"]`.
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a name or a list of names such as [\"confirm\", \"cancel\"]")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(v.to_owned()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<OneOrMany, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = seq.next_element::<String>()? {
                    names.push(name);
                }
                Ok(OneOrMany::Many(names))
            }
        }
        d.deserialize_any(V)
    }
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWhen {
    #[serde(default)]
    route: Option<OneOrMany>,
    #[serde(default)]
    method: Option<OneOrMany>,
    #[serde(default)]
    header: Option<RawHeader>,
    #[serde(default)]
    json: Option<String>,
    #[serde(default)]
    equals: Option<Value>,
    #[serde(default)]
    regex: Option<String>,
    #[serde(default)]
    gt: Option<f64>,
    #[serde(default)]
    gte: Option<f64>,
    #[serde(default)]
    lt: Option<f64>,
    #[serde(default)]
    lte: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeader {
    name: String,
    #[serde(default)]
    equals: Option<String>,
    #[serde(default)]
    regex: Option<String>,
    #[serde(default)]
    present: Option<bool>,
}

/// The route names a rule may name: the PG routes of `Route::ALL`.
const ROUTE_NAMES: &str = "create, confirm, inquiry, cancel, billing_issue, billing_charge";

impl TryFrom<RawRule> for Rule {
    type Error = String;

    fn try_from(raw: RawRule) -> Result<Rule, String> {
        let then = raw.then.into_directives();
        if then.is_empty() {
            return Err(
                "then: expected at least one of outcome, latency, fault, status, deposit, webhook"
                    .into(),
            );
        }
        Ok(Rule {
            when: When::try_from(raw.when)?,
            then,
        })
    }
}

impl TryFrom<RawWhen> for When {
    type Error = String;

    fn try_from(raw: RawWhen) -> Result<When, String> {
        let mut routes = 0u8;
        for name in raw.route.map(OneOrMany::into_vec).unwrap_or_default() {
            let route = Route::ALL
                .iter()
                .find(|r| !matches!(r, Route::Unknown | Route::Custom) && r.name() == name)
                .ok_or_else(|| format!("route: expected one of {ROUTE_NAMES}, got '{name}'"))?;
            routes |= 1 << route.index();
        }
        let methods = raw
            .method
            .map(OneOrMany::into_vec)
            .unwrap_or_default()
            .into_iter()
            .map(|m| {
                Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                    .map_err(|_| format!("method: expected an HTTP method such as POST, got '{m}'"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let header = raw.header.map(HeaderCondition::try_from).transpose()?;

        let mut tests = Vec::new();
        if let Some(v) = raw.equals {
            tests.push(JsonTest::Equals(v));
        }
        if let Some(r) = raw.regex {
            tests.push(JsonTest::Regex(regex(&r)?));
        }
        for (bound, test) in [
            (raw.gt, JsonTest::Gt as fn(f64) -> JsonTest),
            (raw.gte, JsonTest::Gte),
            (raw.lt, JsonTest::Lt),
            (raw.lte, JsonTest::Lte),
        ] {
            if let Some(b) = bound {
                tests.push(test(b));
            }
        }
        let json = match raw.json {
            Some(pointer) => {
                if !(pointer.is_empty() || pointer.starts_with('/')) {
                    return Err(format!(
                        "json: expected a JSON pointer such as /amount, got '{pointer}'"
                    ));
                }
                Some(JsonCondition { pointer, tests })
            }
            None if !tests.is_empty() => {
                return Err(
                    "equals, regex, gt, gte, lt and lte test the value at a JSON pointer; \
                     expected \"json\": \"/field\" beside them"
                        .into(),
                );
            }
            None => None,
        };
        Ok(When {
            routes,
            methods,
            header,
            json,
        })
    }
}

impl TryFrom<RawHeader> for HeaderCondition {
    type Error = String;

    fn try_from(raw: RawHeader) -> Result<HeaderCondition, String> {
        let name = HeaderName::from_bytes(raw.name.as_bytes())
            .map_err(|_| format!("header: expected a header name, got '{}'", raw.name))?;
        let test = match (raw.equals, raw.regex, raw.present) {
            (Some(e), None, None) => HeaderTest::Equals(e),
            (None, Some(r), None) => HeaderTest::Regex(regex(&r)?),
            (None, None, Some(p)) => HeaderTest::Present(p),
            _ => {
                return Err(
                    "header: expected exactly one of equals, regex or present beside name".into(),
                );
            }
        };
        Ok(HeaderCondition { name, test })
    }
}

fn regex(pattern: &str) -> Result<Regex, String> {
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| format!("regex: expected a regular expression: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(json: &str) -> Vec<Rule> {
        serde_json::from_str(json).unwrap()
    }

    fn outcome_of(rules: &[Rule], input: RuleInput<'_>) -> Option<String> {
        first_match(rules, &input).map(|d| d.outcome.as_ref().unwrap().to_string())
    }

    fn input<'a>(
        route: Route,
        method: &'a Method,
        headers: &'a HeaderMap,
        body: &'a str,
    ) -> RuleInput<'a> {
        RuleInput {
            route,
            method,
            headers,
            body: body.as_bytes(),
        }
    }

    #[test]
    fn json_gte_matches_large_amounts_only() {
        let r = rules(
            r#"[{"when": {"json": "/amount", "gte": 1000000},
                 "then": {"outcome": "declined(EXCEED_MAX_AMOUNT, 400)"}}]"#,
        );
        let h = HeaderMap::new();
        let post = Method::POST;
        let big = input(Route::Confirm, &post, &h, r#"{"amount": 1000000}"#);
        assert_eq!(
            outcome_of(&r, big).as_deref(),
            Some("declined(EXCEED_MAX_AMOUNT, 400)")
        );
        let small = input(Route::Confirm, &post, &h, r#"{"amount": 999999}"#);
        assert_eq!(outcome_of(&r, small), None);
        let text = input(Route::Confirm, &post, &h, r#"{"amount": "2000000"}"#);
        assert_eq!(outcome_of(&r, text), None, "a string is not a number");
        let not_json = input(Route::Confirm, &post, &h, "amount=2000000");
        assert_eq!(outcome_of(&r, not_json), None);
    }

    #[test]
    fn first_match_wins_in_file_order() {
        let r = rules(
            r#"[{"when": {"route": ["confirm", "billing_charge"], "json": "/orderId", "regex": "^vip-"},
                 "then": {"outcome": "approved"}},
                {"when": {"route": "confirm"}, "then": {"outcome": "error"}},
                {"when": {}, "then": {"outcome": "throttled"}}]"#,
        );
        let h = HeaderMap::new();
        let post = Method::POST;
        let vip = r#"{"orderId": "vip-1"}"#;
        let plain = r#"{"orderId": "o-1"}"#;
        assert_eq!(
            outcome_of(&r, input(Route::Confirm, &post, &h, vip)).as_deref(),
            Some("approved")
        );
        assert_eq!(
            outcome_of(&r, input(Route::BillingCharge, &post, &h, vip)).as_deref(),
            Some("approved")
        );
        assert_eq!(
            outcome_of(&r, input(Route::Confirm, &post, &h, plain)).as_deref(),
            Some("error")
        );
        assert_eq!(
            outcome_of(&r, input(Route::Cancel, &post, &h, vip)).as_deref(),
            Some("throttled"),
            "cancel is in neither route list: the catch-all decides"
        );
    }

    #[test]
    fn header_and_method_conditions() {
        let r = rules(
            r#"[{"when": {"method": "get", "header": {"name": "X-Tenant", "regex": "^load-[0-9]+$"}},
                 "then": {"outcome": "error"}},
                {"when": {"header": {"name": "x-canary", "present": true}},
                 "then": {"outcome": "throttled"}},
                {"when": {"header": {"name": "x-tier", "equals": "gold"}},
                 "then": {"outcome": "declined"}}]"#,
        );
        let get = Method::GET;
        let post = Method::POST;
        let mut h = HeaderMap::new();
        h.insert("x-tenant", "load-42".parse().unwrap());
        assert_eq!(
            outcome_of(&r, input(Route::Inquiry, &get, &h, "")).as_deref(),
            Some("error")
        );
        assert_eq!(outcome_of(&r, input(Route::Confirm, &post, &h, "")), None);
        h.insert("x-canary", "1".parse().unwrap());
        assert_eq!(
            outcome_of(&r, input(Route::Confirm, &post, &h, "")).as_deref(),
            Some("throttled")
        );
        let mut gold = HeaderMap::new();
        gold.insert("x-tier", "gold".parse().unwrap());
        assert_eq!(
            outcome_of(&r, input(Route::Confirm, &post, &gold, "")).as_deref(),
            Some("declined")
        );
        gold.insert("x-tier", "Gold".parse().unwrap());
        assert_eq!(
            outcome_of(&r, input(Route::Confirm, &post, &gold, "")),
            None
        );
    }

    #[test]
    fn json_bounds_combine_and_equals_compares_numbers_by_value() {
        let r = rules(
            r#"[{"when": {"json": "/amount", "gt": 100, "lte": 200}, "then": {"outcome": "error"}},
                {"when": {"json": "/card/issuer", "equals": "BC"}, "then": {"outcome": "declined"}},
                {"when": {"json": "/amount", "equals": 5000}, "then": {"outcome": "throttled"}}]"#,
        );
        let h = HeaderMap::new();
        let post = Method::POST;
        let at = |body| outcome_of(&r, input(Route::Confirm, &post, &h, body));
        assert_eq!(at(r#"{"amount": 100}"#), None);
        assert_eq!(at(r#"{"amount": 150.5}"#).as_deref(), Some("error"));
        assert_eq!(at(r#"{"amount": 200}"#).as_deref(), Some("error"));
        assert_eq!(at(r#"{"amount": 201}"#), None);
        assert_eq!(
            at(r#"{"card": {"issuer": "BC"}}"#).as_deref(),
            Some("declined")
        );
        assert_eq!(at(r#"{"amount": 5000.0}"#).as_deref(), Some("throttled"));
    }

    #[test]
    fn bad_conditions_are_refused() {
        for (json, expected) in [
            (
                r#"{"when": {"route": "refund"}, "then": {"outcome": "error"}}"#,
                "route: expected one of",
            ),
            (
                r#"{"when": {"gte": 5}, "then": {"outcome": "error"}}"#,
                "expected \"json\"",
            ),
            (
                r#"{"when": {"json": "amount"}, "then": {"outcome": "error"}}"#,
                "JSON pointer",
            ),
            (
                r#"{"when": {"header": {"name": "x", "equals": "a", "present": true}}, "then": {"outcome": "error"}}"#,
                "exactly one",
            ),
            (
                r#"{"when": {"json": "/a", "regex": "("}, "then": {"outcome": "error"}}"#,
                "regex:",
            ),
            (r#"{"when": {}, "then": {}}"#, "then: expected at least one"),
            (
                r#"{"when": {"jsn": "/a"}, "then": {"outcome": "error"}}"#,
                "unknown field `jsn`",
            ),
        ] {
            let e = serde_json::from_str::<Rule>(json).unwrap_err().to_string();
            assert!(e.contains(expected), "{json}: {e}");
        }
    }
}
