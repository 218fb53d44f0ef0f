//! Answers for a profile's custom routes: the other dependencies of a payment flow (points,
//! coupons, a second PG) mocked beside the PG API, with the same directives. Approved answers
//! render the route's template; the other outcomes answer in a generic error shape, and
//! `throttled` is a 429 with `Retry-After`, as generic HTTP services throttle.

use std::time::SystemTime;

use http::{HeaderMap, StatusCode};

use super::{Lang, Origin, Reply, ReplyCode, code_ref_reply, error_reply};
use crate::codes::CodeKind;
use crate::directive::{CodeRef, Outcome};
use crate::engine::Decision;
use crate::profile::CustomRoute;
use crate::route::Route;

/// The answer of a custom route for `decision`.
pub fn custom_reply(
    route: &CustomRoute,
    params: &[(&str, &str)],
    body: &[u8],
    headers: &HeaderMap,
    decision: &Decision,
    lang: Lang,
) -> Reply {
    match &decision.outcome {
        // A lost answer is rendered too: the server replaces it with its fault.
        Outcome::Approved | Outcome::Lost(_) => Reply {
            status: route.status,
            body: route.render(params, body, headers, SystemTime::now()),
            code: ReplyCode::Ok,
            retry_after: None,
            origin: Origin::Decision,
        },
        Outcome::Throttled => {
            let mut reply = error_reply(
                StatusCode::TOO_MANY_REQUESTS,
                ReplyCode::Custom(CodeKind::Throttled),
                "TOO_MANY_REQUESTS",
                message(
                    lang,
                    "요청이 너무 많습니다. 잠시 후 다시 시도해주세요.",
                    "Too many requests. Please retry later.",
                ),
            );
            reply.retry_after = Some(1);
            reply
        }
        Outcome::Declined(code) => generic(
            code,
            "declined",
            StatusCode::PAYMENT_REQUIRED,
            "DECLINED",
            lang,
        ),
        Outcome::Error(code) => generic(
            code,
            "error",
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            lang,
        ),
    }
}

/// A named code answers as the PG code it is; an unnamed one in the generic shape.
fn generic(code: &CodeRef, word: &str, status: StatusCode, name: &str, lang: Lang) -> Reply {
    if code.code.is_some() {
        return code_ref_reply(Route::Custom, word, code, lang);
    }
    let text = match word {
        "declined" => message(lang, "요청이 거절되었습니다.", "The request was declined."),
        _ => message(
            lang,
            "일시적인 오류가 발생했습니다.",
            "A temporary error occurred.",
        ),
    };
    let kind = match word {
        "declined" => CodeKind::Declined,
        _ => CodeKind::Error,
    };
    error_reply(
        code.status.unwrap_or(status),
        ReplyCode::Custom(kind),
        name,
        text,
    )
}

fn message(lang: Lang, ko: &'static str, en: &'static str) -> &'static str {
    match lang {
        Lang::Ko => ko,
        Lang::En => en,
    }
}
