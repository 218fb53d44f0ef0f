//! The closed set of routes Gazua answers: the metrics' `route` label, the profile's
//! `routes.*` keys and part of the determinism seed all come from here, never from request text.

use std::borrow::Cow;

use http::Method;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// `POST /v1/payments`
    Create,
    /// `POST /v1/payments/confirm`
    Confirm,
    /// `GET /v1/payments/{paymentKey}` and `GET /v1/payments/orders/{orderId}`
    Inquiry,
    /// `POST /v1/payments/{paymentKey}/cancel`
    Cancel,
    /// `POST /v1/billing/authorizations/issue`
    BillingIssue,
    /// `POST /v1/billing/{billingKey}`
    BillingCharge,
    /// Anything else: answered with the PG's not-found or method-not-allowed error.
    Unknown,
    /// A route the active profile defines (`custom_routes`), beside the PG API.
    Custom,
}

impl Route {
    pub const ALL: [Route; 8] = [
        Route::Create,
        Route::Confirm,
        Route::Inquiry,
        Route::Cancel,
        Route::BillingIssue,
        Route::BillingCharge,
        Route::Unknown,
        Route::Custom,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Route::Create => "create",
            Route::Confirm => "confirm",
            Route::Inquiry => "inquiry",
            Route::Cancel => "cancel",
            Route::BillingIssue => "billing_issue",
            Route::BillingCharge => "billing_charge",
            Route::Unknown => "unknown",
            Route::Custom => "custom",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// The one method the route answers (for the `Allow` header of a 405).
    pub fn method(self) -> &'static str {
        match self {
            Route::Inquiry | Route::Unknown | Route::Custom => "GET",
            _ => "POST",
        }
    }

    /// Money-moving routes take the profile's defaults; the others only what is asked of them
    /// specifically.
    pub fn moves_money(self) -> bool {
        matches!(self, Route::Confirm | Route::Cancel | Route::BillingCharge)
    }
}

/// A matched request target: the route and the path's one parameter, if it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target<'a> {
    pub route: Route,
    /// `paymentKey`, `orderId` or `billingKey` taken from the path, percent-decoded (a key
    /// such as `결제-1` arrives as `%EA%B2%B0%EC%A0%9C-1`). `None` where the route has no
    /// parameter, or where the decoded bytes are not UTF-8: such a path names no payment, and
    /// the route answers as the PG does for an unknown one.
    pub param: Option<Cow<'a, str>>,
    /// The inquiry is by `orderId` rather than by `paymentKey`.
    pub by_order: bool,
    /// The path exists but not for this method.
    pub wrong_method: bool,
}

/// Matches a method and path against the PG API.
pub fn route<'a>(method: &Method, path: &'a str) -> Target<'a> {
    // At most five segments matter; a longer path is no route of ours. No allocation.
    let mut parts = path.trim_end_matches('/').split('/').skip(1);
    let mut segments = [""; 6];
    let mut count = 0;
    for (slot, part) in segments.iter_mut().zip(&mut parts) {
        *slot = part;
        count += 1;
    }
    let (route, param, by_order, expected) = match &segments[..count] {
        ["v1", "payments"] => (Route::Create, None, false, Method::POST),
        ["v1", "payments", "confirm"] => (Route::Confirm, None, false, Method::POST),
        ["v1", "payments", "orders", order] => (Route::Inquiry, Some(*order), true, Method::GET),
        ["v1", "payments", key, "cancel"] => (Route::Cancel, Some(*key), false, Method::POST),
        ["v1", "payments", key] => (Route::Inquiry, Some(*key), false, Method::GET),
        ["v1", "billing", "authorizations", "issue"] => {
            (Route::BillingIssue, None, false, Method::POST)
        }
        ["v1", "billing", key] => (Route::BillingCharge, Some(*key), false, Method::POST),
        _ => (Route::Unknown, None, false, Method::GET),
    };
    let wrong_method = route != Route::Unknown && method != expected;
    Target {
        route,
        param: param.and_then(decode),
        by_order,
        wrong_method,
    }
}

/// A path segment percent-decoded; borrowed when it has no escapes. `None` when the decoded
/// bytes are not UTF-8.
fn decode(segment: &str) -> Option<Cow<'_, str>> {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pg_path_is_routed_with_its_parameter() {
        let cases = [
            ("POST", "/v1/payments", Route::Create, None, false),
            ("POST", "/v1/payments/confirm", Route::Confirm, None, false),
            (
                "GET",
                "/v1/payments/pk_1",
                Route::Inquiry,
                Some("pk_1"),
                false,
            ),
            (
                "GET",
                "/v1/payments/orders/order-1",
                Route::Inquiry,
                Some("order-1"),
                true,
            ),
            (
                "POST",
                "/v1/payments/pk_1/cancel",
                Route::Cancel,
                Some("pk_1"),
                false,
            ),
            (
                "POST",
                "/v1/billing/authorizations/issue",
                Route::BillingIssue,
                None,
                false,
            ),
            (
                "POST",
                "/v1/billing/bk_1",
                Route::BillingCharge,
                Some("bk_1"),
                false,
            ),
            ("GET", "/v1/payments/confirm/", Route::Confirm, None, false),
            (
                "GET",
                "/v1/payments/a/b/c/d/e/f",
                Route::Unknown,
                None,
                false,
            ),
            ("GET", "/", Route::Unknown, None, false),
        ];
        for (method, path, route_, param, by_order) in cases {
            let target = route(&method.parse().unwrap(), path);
            assert_eq!(
                (target.route, target.param.as_deref(), target.by_order),
                (route_, param, by_order),
                "{path}"
            );
        }
        assert!(route(&Method::GET, "/v1/payments/confirm").wrong_method);
        assert!(!route(&Method::POST, "/v1/payments/confirm").wrong_method);
    }

    #[test]
    fn path_parameters_are_percent_decoded() {
        let target = route(&Method::GET, "/v1/payments/%EA%B2%B0%EC%A0%9C-1");
        assert_eq!(target.param.as_deref(), Some("결제-1"));
        let target = route(&Method::POST, "/v1/payments/a%2Fb%20c/cancel");
        assert_eq!(
            (target.route, target.param.as_deref()),
            (Route::Cancel, Some("a/b c"))
        );
        // Not UTF-8 once decoded: the route stands, naming no payment.
        let target = route(&Method::GET, "/v1/payments/orders/%FF%FEorder");
        assert_eq!((target.route, target.param), (Route::Inquiry, None));
        // No escapes: borrowed, no allocation.
        let target = route(&Method::GET, "/v1/payments/pk_1");
        assert!(matches!(target.param, Some(Cow::Borrowed("pk_1"))));
    }
}
