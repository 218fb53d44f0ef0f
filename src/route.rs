//! The closed set of routes Gazua answers: the metrics' `route` label, the profile's
//! `routes.*` keys and part of the determinism seed all come from here, never from request text.

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
}

impl Route {
    pub const ALL: [Route; 7] = [
        Route::Create,
        Route::Confirm,
        Route::Inquiry,
        Route::Cancel,
        Route::BillingIssue,
        Route::BillingCharge,
        Route::Unknown,
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
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// Money-moving routes take the profile's defaults; the others only what is asked of them
    /// specifically (SPEC §3).
    pub fn moves_money(self) -> bool {
        matches!(self, Route::Confirm | Route::Cancel | Route::BillingCharge)
    }
}

/// A matched request target: the route and the path's one parameter, if it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target<'a> {
    pub route: Route,
    /// `paymentKey`, `orderId` or `billingKey` taken from the path.
    pub param: Option<&'a str>,
    /// The inquiry is by `orderId` rather than by `paymentKey`.
    pub by_order: bool,
    /// The path exists but not for this method.
    pub wrong_method: bool,
}

/// Matches a method and path against the PG API.
pub fn route<'a>(method: &Method, path: &'a str) -> Target<'a> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let (route, param, by_order, expected) = match segments.as_slice() {
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
        param,
        by_order,
        wrong_method,
    }
}
