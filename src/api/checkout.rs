//! The checkout window: `GET /v1/payments/{paymentKey}/checkout` serves a small page (amount,
//! order name, "pay" and "cancel") whose outcome follows the directives carried in the minted
//! key, and redirects the browser to the merchant's `successUrl` or `failUrl` as the PG's
//! window does.
//!
//! Where the redirect targets live: a minted key has no room for two URLs of up to 1,000
//! characters (keys stay ≤ 200 characters), and a ledger record would not reach a fleet's other
//! instances. So the `checkout.url` of the create answer carries them in its query, signed with
//! the seed's key (`sig`): every instance with the same seed serves the page, and an edited URL
//! is refused rather than turned into an open redirect. A bare `…/checkout` (as an inquiry
//! renders it) names no targets and is answered 400.
//!
//! The page works with JavaScript off: "pay" and "cancel" are buttons of a plain GET form back
//! to the same URL. `auto=1` skips the page: the server waits the decided latency, then answers
//! 303 at once, so a browser-driven load test runs unattended.

use std::fmt::Write as _;
use std::time::Duration;

use http::StatusCode;
use percent_encoding::{
    AsciiSet, CONTROLS, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode,
};
use rand::Rng;

use super::Lang;
use super::keys::{KeyMint, MintedPayment};
use crate::directive::{CodeName, Directives, Outcome};

/// The path's tail after the key.
const SUFFIX: &str = "/checkout";
const PREFIX: &str = "/v1/payments/";

/// Query values are encoded as `encodeURIComponent` does: everything but `A-Za-z0-9-_.!~*'()`.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// What a merchant's URL may not carry raw in a `Location` header.
const LOOSE: &AsciiSet = &CONTROLS.add(b' ').add(b'"').add(b'<').add(b'>').add(b'`');

/// The paymentKey of a checkout path, percent-decoded; `None` for any other path.
pub fn key_of(path: &str) -> Option<String> {
    let key = path.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    if key.is_empty() || key.contains('/') {
        return None;
    }
    percent_decode_str(key)
        .decode_utf8()
        .ok()
        .map(|k| k.into_owned())
}

/// The `checkout.url` for a created payment: Gazua's own address (as the client reached it,
/// `base` such as `http://127.0.0.1:8080`) with the signed redirect targets.
pub fn url(mint: &KeyMint, base: &str, key: &str, success: &str, fail: &str) -> String {
    let mut url = format!("{base}{PREFIX}{key}{SUFFIX}");
    query(&mut url, "?", &[("successUrl", success), ("failUrl", fail)]);
    let sig = mint.sign_checkout(key, success, fail);
    query(&mut url, "&", &[("sig", &sig)]);
    url
}

/// Appends `pairs` to `url` after `first` (`?` or `&`), each value percent-encoded.
fn query(url: &mut String, first: &str, pairs: &[(&str, &str)]) {
    for (i, (name, value)) in pairs.iter().enumerate() {
        url.push_str(if i == 0 { first } else { "&" });
        let _ = write!(url, "{name}={}", utf8_percent_encode(value, COMPONENT));
    }
}

/// `target` with `pairs` added to its query (before any `#fragment`).
fn redirect_to(target: &str, pairs: &[(&str, &str)]) -> String {
    let (base, fragment) = match target.find('#') {
        Some(at) => target.split_at(at),
        None => (target, ""),
    };
    // A target with spaces or non-ASCII text must still make a valid Location header.
    let mut url = utf8_percent_encode(base, LOOSE).to_string();
    let first = match url.find('?') {
        None => "?",
        // Already ends in a separator: no second one.
        Some(_) if url.ends_with('?') || url.ends_with('&') => "",
        Some(_) => "&",
    };
    query(&mut url, first, pairs);
    url.push_str(fragment);
    url
}

/// What the shopper asked for with the page's buttons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Pay,
    Cancel,
}

/// The checkout URL's query, read once.
#[derive(Debug, Default)]
struct Query {
    success: Option<String>,
    fail: Option<String>,
    sig: Option<String>,
    action: Option<String>,
    auto: Option<String>,
}

impl Query {
    fn parse(raw: &str) -> Query {
        let mut q = Query::default();
        for pair in raw.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            // Forms send spaces as `+`.
            let value = value.replace('+', " ");
            let value = percent_decode_str(&value).decode_utf8_lossy().into_owned();
            let slot = match name {
                "successUrl" => &mut q.success,
                "failUrl" => &mut q.fail,
                "sig" => &mut q.sig,
                "action" => &mut q.action,
                "auto" => &mut q.auto,
                // Other parameters (a cache buster, a tracking id) are the browser's business.
                _ => continue,
            };
            slot.get_or_insert(value);
        }
        q
    }
}

/// The page's answer: a page, or a redirect after the decided wait.
#[derive(Debug, PartialEq)]
pub enum Page {
    Html { status: StatusCode, body: String },
    Redirect { location: String, wait: Duration },
}

/// Anything but `GET`/`HEAD` of a checkout URL.
pub fn method_not_allowed() -> Page {
    error_page(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        "the checkout window answers GET only; expected GET of the checkout.url",
    )
}

/// What the window decided: where the browser goes and after how long.
struct Verdict {
    fail: Option<(&'static str, String)>,
    latency: Duration,
}

/// Answers a `GET` of a checkout URL for `key` with the raw `query`. `rng` draws a mixed
/// outcome or a latency distribution (keyed by the paymentKey, so every instance agrees);
/// waits are capped at `max_latency`.
pub fn answer<R: Rng + ?Sized>(
    mint: &KeyMint,
    key: &str,
    raw_query: &str,
    lang: Lang,
    max_latency: Duration,
    rng: &mut R,
) -> Page {
    let Some(payment) = mint.read_payment(key).filter(|p| !p.billing) else {
        return error_page(
            StatusCode::NOT_FOUND,
            "NOT_FOUND_PAYMENT",
            &format!(
                "no payment Gazua minted has the paymentKey '{}'; expected the checkout.url of a POST /v1/payments answer",
                key.chars().take(200).collect::<String>()
            ),
        );
    };
    let q = Query::parse(raw_query);
    let (Some(success), Some(fail)) = (q.success.as_deref(), q.fail.as_deref()) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "this checkout url names no successUrl and failUrl; expected the checkout.url of the POST /v1/payments answer, which carries them",
        );
    };
    if q.sig.as_deref() != Some(mint.sign_checkout(key, success, fail).as_str()) {
        return error_page(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "the checkout url's successUrl, failUrl or sig was edited; expected the checkout.url exactly as POST /v1/payments answered it",
        );
    }
    let auto = match q.auto.as_deref() {
        None | Some("0") => false,
        Some("1") => true,
        Some(other) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST",
                &format!("auto: expected 0 or 1, got '{other}'"),
            );
        }
    };
    let action = match q.action.as_deref() {
        None if auto => Action::Pay,
        None => {
            return Page::Html {
                status: StatusCode::OK,
                body: page(&payment, key, success, fail, q.sig.as_deref().unwrap_or("")),
            };
        }
        Some("pay") => Action::Pay,
        Some("cancel") => Action::Cancel,
        Some(other) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST",
                &format!("action: expected pay or cancel, got '{other}'"),
            );
        }
    };
    let verdict = match action {
        Action::Cancel => Verdict {
            fail: Some((
                "PAY_PROCESS_CANCELED",
                message("PAY_PROCESS_CANCELED", lang),
            )),
            latency: Duration::ZERO,
        },
        Action::Pay => match decide(&payment, lang, rng) {
            Ok(verdict) => verdict,
            Err(error) => {
                return error_page(StatusCode::BAD_REQUEST, error.code, &error.message);
            }
        },
    };
    let amount = payment.amount.to_string();
    let location = match &verdict.fail {
        None => redirect_to(
            success,
            &[
                ("paymentType", "NORMAL"),
                ("orderId", &payment.order_id),
                ("paymentKey", key),
                ("amount", &amount),
            ],
        ),
        Some((code, message)) => redirect_to(
            fail,
            &[
                ("code", code),
                ("message", message),
                ("orderId", &payment.order_id),
            ],
        ),
    };
    Page::Redirect {
        location,
        wait: verdict.latency.min(max_latency),
    }
}

/// The window's outcome from the key's tag: what would make the payment fail fails it here
/// already (a declined card never reaches the confirm); approved and `lost` (an answer lost on
/// the way back from the confirm) send the shopper on to `successUrl`.
fn decide<R: Rng + ?Sized>(
    payment: &MintedPayment,
    lang: Lang,
    rng: &mut R,
) -> Result<Verdict, crate::directive::DirectiveError> {
    let directives = match &payment.tag {
        Some(tag) => super::parse_tag_text(tag).map_err(|e| e.within("paymentKey tag"))?,
        None => Directives::default(),
    };
    let outcome = directives
        .outcome
        .as_ref()
        .map_or(Outcome::Approved, |mix| mix.pick(rng).clone());
    let fail = match outcome {
        Outcome::Approved | Outcome::Lost(_) => None,
        Outcome::Declined(code) => Some(match code.code {
            Some(CodeName::Known(info)) => (info.name, info.message(lang).to_owned()),
            Some(CodeName::Custom(name)) => {
                let name: &'static str = checkout_code(&name).unwrap_or("REJECT_CARD_COMPANY");
                (name, message(name, lang))
            }
            None => ("REJECT_CARD_COMPANY", message("REJECT_CARD_COMPANY", lang)),
        }),
        Outcome::Error(_) | Outcome::Throttled => {
            Some(("PAY_PROCESS_ABORTED", message("PAY_PROCESS_ABORTED", lang)))
        }
    };
    let latency = directives
        .latency
        .as_ref()
        .map_or(Duration::ZERO, |l| l.sample(rng));
    Ok(Verdict { fail, latency })
}

/// The window-only codes (not in the API's catalog), as a directive may name them.
fn checkout_code(name: &str) -> Option<&'static str> {
    ["PAY_PROCESS_CANCELED", "PAY_PROCESS_ABORTED"]
        .into_iter()
        .find(|c| *c == name)
}

/// The message the window sends with a code.
fn message(code: &str, lang: Lang) -> String {
    let (ko, en) = match code {
        "PAY_PROCESS_CANCELED" => (
            "사용자에 의해 결제가 취소되었습니다.",
            "The payment was canceled by the user.",
        ),
        "PAY_PROCESS_ABORTED" => (
            "결제 진행 중 승인에 실패하여 결제가 중단되었습니다.",
            "The payment was aborted: approval failed while it was in progress.",
        ),
        other => {
            return crate::codes::lookup(other)
                .map_or_else(|| other.to_owned(), |c| c.message(lang).to_owned());
        }
    };
    match lang {
        Lang::Ko => ko.to_owned(),
        Lang::En => en.to_owned(),
    }
}

/// HTML text with `& < > " '` escaped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `15000` → `15,000`.
fn grouped(amount: u64) -> String {
    let digits = amount.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f2f4f6;margin:0;\
display:flex;min-height:100vh;align-items:center;justify-content:center}\
main{background:#fff;border-radius:16px;box-shadow:0 4px 24px rgba(0,0,0,.08);padding:32px;\
width:340px}h1{font-size:16px;color:#4e5968;margin:0 0 24px}\
.name{font-size:18px;color:#191f28;margin:0 0 8px}\
.amount{font-size:32px;font-weight:700;color:#191f28;margin:0 0 32px}\
form{display:flex;gap:8px}button{flex:1;font-size:16px;padding:14px;border:0;\
border-radius:10px;cursor:pointer}\
.pay{background:#3182f6;color:#fff}.cancel{background:#e8f3ff;color:#1b64da}\
.order{font-size:12px;color:#8b95a1;margin:24px 0 0}";

/// The window itself: no script, no external asset.
fn page(p: &MintedPayment, key: &str, success: &str, fail: &str, sig: &str) -> String {
    let name = escape(p.order_name.as_deref().unwrap_or(""));
    let action = format!("{PREFIX}{}{SUFFIX}", utf8_percent_encode(key, COMPONENT));
    format!(
        "<!doctype html>\n<html lang=\"ko\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>Gazua PAY checkout</title><style>{STYLE}</style></head><body><main>\
<h1>Gazua PAY checkout</h1>\
<p class=\"name\" id=\"order-name\">{name}</p>\
<p class=\"amount\" id=\"amount\">{amount}원</p>\
<form method=\"get\" action=\"{action}\">\
<input type=\"hidden\" name=\"successUrl\" value=\"{success}\">\
<input type=\"hidden\" name=\"failUrl\" value=\"{fail}\">\
<input type=\"hidden\" name=\"sig\" value=\"{sig}\">\
<button class=\"pay\" id=\"pay\" name=\"action\" value=\"pay\">pay</button>\
<button class=\"cancel\" id=\"cancel\" name=\"action\" value=\"cancel\">cancel</button>\
</form><p class=\"order\">orderId {order}</p></main></body></html>\n",
        amount = grouped(p.amount),
        action = escape(&action),
        success = escape(success),
        fail = escape(fail),
        sig = escape(sig),
        order = escape(&p.order_id),
    )
}

/// A PG-shaped error as a page: the code and message, also in a `<pre>` of the PG's JSON.
fn error_page(status: StatusCode, code: &str, message: &str) -> Page {
    let json = serde_json::json!({ "code": code, "message": message }).to_string();
    Page::Html {
        status,
        body: format!(
            "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{code}</title>\
<style>body{{font-family:system-ui,sans-serif;margin:40px}}</style></head><body>\
<h1>{code}</h1><p>{message}</p><pre id=\"error\">{json}</pre></body></html>\n",
            code = escape(code),
            message = escape(message),
            json = escape(&json),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkout_paths_name_their_key() {
        assert_eq!(
            key_of("/v1/payments/gzp0abc/checkout").as_deref(),
            Some("gzp0abc")
        );
        assert_eq!(
            key_of("/v1/payments/a%20b/checkout").as_deref(),
            Some("a b")
        );
        assert_eq!(key_of("/v1/payments//checkout"), None);
        assert_eq!(key_of("/v1/payments/a/b/checkout"), None);
        assert_eq!(key_of("/v1/payments/abc"), None);
    }

    #[test]
    fn redirects_keep_the_targets_query_and_fragment() {
        let pairs = [("code", "A B&C"), ("message", "결제")];
        assert_eq!(
            redirect_to("https://s.example/f", &pairs),
            "https://s.example/f?code=A%20B%26C&message=%EA%B2%B0%EC%A0%9C"
        );
        assert_eq!(
            redirect_to("https://s.example/f?x=1#top", &pairs[..1]),
            "https://s.example/f?x=1&code=A%20B%26C#top"
        );
        assert_eq!(
            redirect_to("https://s.example/f?", &pairs[..1]),
            "https://s.example/f?code=A%20B%26C"
        );
    }

    #[test]
    fn amounts_are_grouped_by_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(15000), "15,000");
        assert_eq!(grouped(1234567), "1,234,567");
    }
}
