//! One function per PG route: read the body as the PG validates it, apply the decided outcome
//! to the ledger in one step, render the answer.

use std::borrow::Cow;
use std::sync::Mutex;

use bytes::Bytes;
use http::StatusCode;
use serde::Deserialize;

use super::checkout;
use super::input::{self, Loose, Problem};
use super::keys::{self, Issued, MintedAccount, MintedPayment};
use super::ledger::{Cancel, Payment, Status};
use super::redis_ledger::LedgerDown;
use super::virtual_account::{self as va, VirtualAccount};
use super::{
    Api, ApiRequest, Lang, Origin, Reply, ReplyCode, code_reply, code_reply_with, known,
    outcome_reply, problem_reply, render, tag_verdict,
};
use crate::directive::{CodeName, CodeRef, Deposit, Outcome, Webhook};
use crate::engine::Decision;
use crate::route::Route;

/// At most this many cancels are kept per payment: partial cancels of one won each would
/// otherwise grow a record without bound.
const MAX_CANCELS: usize = 64;

/// The answer, and — when `keep` asks for it (an `Idempotency-Key` may store the answer) —
/// the payment its 200 shows, so that a replay renders the same object again instead of
/// keeping kilobytes of JSON. `Err` only when the ledger could not be reached.
pub(super) async fn answer(
    api: &Api,
    req: &ApiRequest<'_>,
    decision: &Decision,
    keep: bool,
) -> Result<(Reply, Option<Payment>), LedgerDown> {
    let cx = Cx {
        api,
        req,
        outcome: &decision.outcome,
        deposit: decision.deposit.as_ref(),
        webhook: decision.webhook.as_ref(),
        lang: req.lang,
        now: req.now.as_second(),
        now_ms: req.now.as_millisecond(),
        keep,
        shown: Mutex::new(None),
        changed: Mutex::new(None),
    };
    let result = match req.target.route {
        Route::Create => cx.create().await,
        Route::Confirm => cx.confirm().await,
        Route::Inquiry => cx.inquiry().await,
        Route::Cancel => cx.cancel().await,
        Route::BillingIssue => cx.billing_issue(),
        Route::BillingCharge => cx.billing_charge().await,
        Route::VirtualAccount => cx.virtual_account().await,
        Route::Unknown | Route::Custom => Ok(code_reply(known("NOT_FOUND"), cx.lang)),
    };
    let reply = match result {
        Ok(reply) => reply,
        Err(Fail::Problem(problem)) => problem_reply(&problem, req.lang),
        Err(Fail::Ledger(down)) => return Err(down),
    };
    let changed = cx.changed.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(p) = changed.filter(|_| reply.status == StatusCode::OK) {
        api.changed(&p, decision.webhook.as_ref());
    }
    let shown = cx
        .shown
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .filter(|_| reply.status == StatusCode::OK);
    Ok((reply, shown))
}

/// Why a route gave no answer of its own: bad input (a 400), or the ledger unreachable.
enum Fail {
    Problem(Problem),
    Ledger(LedgerDown),
}

impl From<Problem> for Fail {
    fn from(problem: Problem) -> Fail {
        Fail::Problem(problem)
    }
}

impl From<LedgerDown> for Fail {
    fn from(down: LedgerDown) -> Fail {
        Fail::Ledger(down)
    }
}

struct Cx<'a> {
    api: &'a Api,
    req: &'a ApiRequest<'a>,
    outcome: &'a Outcome,
    /// The decided `deposit=` for a virtual account this request issues.
    deposit: Option<&'a Deposit>,
    /// The decided `webhook=`, kept with a virtual account this request issues.
    webhook: Option<&'a Webhook>,
    lang: Lang,
    /// Unix seconds of arrival.
    now: i64,
    /// Unix milliseconds of arrival (virtual accounts' clocks).
    now_ms: i64,
    /// Keep a copy of the payment a 200 shows (in `shown`).
    keep: bool,
    /// A `Mutex`, not a `Cell`: the ledger closures that fill it are held across a shared
    /// ledger's awaits, so the context must be `Sync` (never contended: one request's).
    shown: Mutex<Option<Payment>>,
    /// The payment a 200 shows in a new status, for the webhooks (only when they are on).
    changed: Mutex<Option<Payment>>,
}

fn ok(body: Vec<u8>) -> Reply {
    Reply {
        status: StatusCode::OK,
        body: Bytes::from(body),
        code: ReplyCode::Ok,
        retry_after: None,
        origin: Origin::Decision,
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateBody<'a> {
    #[serde(borrow)]
    method: Option<Loose<'a>>,
    #[serde(borrow)]
    amount: Option<Loose<'a>>,
    #[serde(borrow)]
    order_id: Option<Loose<'a>>,
    #[serde(borrow)]
    order_name: Option<Loose<'a>>,
    #[serde(borrow)]
    success_url: Option<Loose<'a>>,
    #[serde(borrow)]
    fail_url: Option<Loose<'a>>,
    #[serde(borrow)]
    customer_name: Option<Loose<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfirmBody<'a> {
    #[serde(borrow)]
    payment_key: Option<Loose<'a>>,
    #[serde(borrow)]
    order_id: Option<Loose<'a>>,
    #[serde(borrow)]
    amount: Option<Loose<'a>>,
    #[serde(borrow)]
    method: Option<Loose<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CancelBody<'a> {
    #[serde(borrow)]
    cancel_reason: Option<Loose<'a>>,
    #[serde(borrow)]
    cancel_amount: Option<Loose<'a>>,
    #[serde(borrow)]
    refundable_amount: Option<Loose<'a>>,
    #[serde(borrow)]
    tax_free_amount: Option<Loose<'a>>,
    #[serde(borrow)]
    refund_receive_account: Option<Loose<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VirtualAccountBody<'a> {
    #[serde(borrow)]
    amount: Option<Loose<'a>>,
    #[serde(borrow)]
    order_id: Option<Loose<'a>>,
    #[serde(borrow)]
    order_name: Option<Loose<'a>>,
    #[serde(borrow)]
    customer_name: Option<Loose<'a>>,
    #[serde(borrow)]
    bank: Option<Loose<'a>>,
    #[serde(borrow)]
    valid_hours: Option<Loose<'a>>,
    #[serde(borrow)]
    due_date: Option<Loose<'a>>,
    #[serde(borrow)]
    customer_email: Option<Loose<'a>>,
    #[serde(borrow)]
    customer_mobile_phone: Option<Loose<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IssueBody<'a> {
    #[serde(borrow)]
    auth_key: Option<Loose<'a>>,
    #[serde(borrow)]
    customer_key: Option<Loose<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChargeBody<'a> {
    #[serde(borrow)]
    customer_key: Option<Loose<'a>>,
    #[serde(borrow)]
    amount: Option<Loose<'a>>,
    #[serde(borrow)]
    order_id: Option<Loose<'a>>,
    #[serde(borrow)]
    order_name: Option<Loose<'a>>,
    #[serde(borrow)]
    customer_name: Option<Loose<'a>>,
    #[serde(borrow)]
    customer_email: Option<Loose<'a>>,
    #[serde(borrow)]
    tax_free_amount: Option<Loose<'a>>,
    #[serde(borrow)]
    method: Option<Loose<'a>>,
}

/// `customerKey`: 2–255 characters of letters, digits and `- _ = . @`.
fn valid_customer_key(key: &str) -> bool {
    (2..=255).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_=.@".contains(&b))
}

/// What a confirm comes to under the ledger's lock: a refusal or failure, or the approved (or
/// issued) payment's answer, whose payment is noted once the ledger has kept it.
enum Step {
    Answer(Reply),
    Approved(Reply),
}

impl Cx<'_> {
    /// The ledger's refusal with a catalog code: the payment's recorded state, not the
    /// decision, shaped the answer.
    fn refused(&self, name: &str) -> Reply {
        code_reply(known(name), self.lang).by(Origin::Ledger)
    }

    /// A 200 with the payment object.
    fn show(&self, p: &Payment) -> Reply {
        if self.notes_shown() {
            self.note_shown(p.clone());
        }
        ok(render::payment(p, self.lang))
    }

    /// Keeps the payment an answer shows for what follows the answer (the stored
    /// Idempotency-Key answer, the webhook of a change): moved in, copied only when both keep it.
    fn note_shown(&self, p: Payment) {
        // Every 200 with a payment but a create's (READY) and an inquiry's is a change.
        let changed = self.api.webhooks.is_some() && p.status != Status::Ready;
        let slot =
            |m: &Mutex<Option<Payment>>, p| *m.lock().unwrap_or_else(|e| e.into_inner()) = Some(p);
        match (self.keep, changed) {
            (true, true) => {
                slot(&self.changed, p.clone());
                slot(&self.shown, p);
            }
            (true, false) => slot(&self.shown, p),
            (false, true) => slot(&self.changed, p),
            (false, false) => {}
        }
    }

    /// Whether [`Cx::note_shown`] keeps anything: a copy of the record is made only then.
    fn notes_shown(&self) -> bool {
        self.keep || self.api.webhooks.is_some()
    }

    /// A 200 with the created payment, whose `checkout.url` is Gazua's own window. (A replay
    /// of it by `Idempotency-Key` renders the stored payment, with the PG-style URL.)
    fn show_created(&self, p: &Payment, checkout: &str) -> Reply {
        if self.keep {
            *self.shown.lock().unwrap_or_else(|e| e.into_inner()) = Some(p.clone());
        }
        ok(render::payment_with_checkout(p, self.lang, Some(checkout)))
    }

    fn approved(&self) -> bool {
        matches!(self.outcome, Outcome::Approved | Outcome::Lost(_))
    }

    /// `POST /v1/payments`: a `READY` payment with a minted, self-describing paymentKey.
    async fn create(&self) -> Result<Reply, Fail> {
        let body: CreateBody = input::parse_body(self.req.body)?;
        let virtual_account = input::method(body.method)?;
        let amount = input::amount("amount", body.amount)?;
        let order_id = input::order_id(body.order_id)?;
        let order_name = input::text("orderName", body.order_name, 100)?;
        let success_url = input::text("successUrl", body.success_url, 1000)?;
        let fail_url = input::text("failUrl", body.fail_url, 1000)?;
        let customer_name = input::optional_text("customerName", body.customer_name, 100)?;
        if let Outcome::Declined(_) | Outcome::Error(_) = self.outcome {
            return Ok(outcome_reply(Route::Create, self.outcome, self.lang));
        }
        let tag = input::tag_in(&order_name)
            .or_else(|| customer_name.as_deref().and_then(input::tag_in))
            .map(str::to_owned);
        let urls = Some((&*success_url, &*fail_url));
        let customer = customer_name.as_deref().unwrap_or("고객");
        // The key says it is a virtual account's, so an instance with no record confirms it as one.
        let account = virtual_account.then(|| MintedAccount {
            bank: va::DEFAULT_BANK.to_owned(),
            customer: customer.to_owned(),
            issued: None,
        });
        let minted = (tag, account);
        self.mint_and_record(amount, &order_id, &order_name, minted, urls, &|key| {
            let mut p = Payment::new(key, &order_id, Some(&order_name), amount, self.now);
            if virtual_account {
                p.va = Some(Box::new(VirtualAccount::new(va::DEFAULT_BANK, customer)));
            }
            p
        })
        .await
    }

    /// Mints a paymentKey for a new payment (its tag and virtual account carried in it),
    /// records `make(key)` under it and answers it; with the create's `(successUrl, failUrl)`,
    /// its `checkout.url` is Gazua's own window.
    async fn mint_and_record(
        &self,
        amount: u64,
        order_id: &str,
        order_name: &str,
        (tag, account): (Option<String>, Option<MintedAccount>),
        urls: Option<(&str, &str)>,
        make: &(dyn Fn(&str) -> Payment + Sync),
    ) -> Result<Reply, Fail> {
        let minted = MintedPayment {
            billing: false,
            at: self.now,
            amount,
            order_id: order_id.to_owned(),
            order_name: Some(order_name.to_owned()),
            tag,
            account,
        };
        let key = self
            .api
            .mint
            .mint_payment(&minted)
            .map_err(|e| Problem::TagTooLong(e.room))?;
        let checkout = urls.map(|(success_url, fail_url)| {
            checkout::url(
                &self.api.mint,
                &own_base(self.req.headers),
                &key,
                success_url,
                fail_url,
            )
        });
        let mut reply = None;
        self.api
            .ledger
            .modify(&key, &mut |slot| {
                let p = make(&key);
                reply = Some(match &checkout {
                    Some(url) => self.show_created(&p, url),
                    None => self.show(&p),
                });
                *slot = Some(p);
            })
            .await?;
        Ok(reply.unwrap_or_else(|| self.refused("FAILED_INTERNAL_SYSTEM_PROCESSING")))
    }

    /// `POST /v1/payments/confirm`.
    async fn confirm(&self) -> Result<Reply, Fail> {
        let body: ConfirmBody = input::parse_body(self.req.body)?;
        let key = input::text("paymentKey", body.payment_key, keys::MAX_KEY_LEN)?;
        let order_id = input::order_id(body.order_id)?;
        let amount = input::amount("amount", body.amount)?;
        let virtual_account = input::optional_pay_method(body.method)?;
        let minted = self.api.mint.read_payment(&key);
        let (mut reply, mut shown) = (None, None);
        self.api
            .ledger
            .modify(&key, &mut |slot| {
                let payment = slot.get_or_insert_with(|| match &minted {
                    Some(m) => from_key(&key, m),
                    // A key Gazua never minted: the payment is created now, as the PG would have
                    // at checkout, from what the confirm says.
                    None => Payment::new(&key, &order_id, None, amount, self.now),
                });
                if virtual_account && payment.va.is_none() {
                    payment.va = Some(Box::new(VirtualAccount::new(va::DEFAULT_BANK, "고객")));
                }
                // A ledger may run this more than once (Redis: a retried compare-and-set); only
                // the last run's answer and payment count.
                (reply, shown) = match self.confirm_step(payment, &order_id, amount) {
                    Step::Answer(answer) => (Some(answer), None),
                    Step::Approved(answer) => {
                        (Some(answer), self.notes_shown().then(|| payment.clone()))
                    }
                };
            })
            .await?;
        if let Some(p) = shown {
            self.note_shown(p);
        }
        Ok(reply.unwrap_or_else(|| self.refused("FAILED_INTERNAL_SYSTEM_PROCESSING")))
    }

    /// The confirm of `p`, under the ledger's lock. An approved payment is rendered there too:
    /// the template costs less than the copy of the record that rendering after the lock
    /// needed (`benches/instructions.sh`), and 64 shards keep other requests off this lock.
    fn confirm_step(&self, p: &mut Payment, order_id: &str, amount: u64) -> Step {
        if !matches!(p.status, Status::Ready | Status::InProgress) {
            return Step::Answer(self.refused("ALREADY_PROCESSED_PAYMENT"));
        }
        if p.order_id() != order_id {
            return Step::Answer(self.refused("FORBIDDEN_REQUEST"));
        }
        if p.total != amount {
            let problem = Problem::AmountMismatch {
                expected: p.total,
                got: amount,
            };
            return Step::Answer(problem_reply(&problem, self.lang).by(Origin::Ledger));
        }
        match self.outcome {
            Outcome::Declined(code) => {
                if let Some(name) = &code.code {
                    p.status = Status::Aborted;
                    p.failure = Some(name.clone());
                }
                Step::Answer(outcome_reply(Route::Confirm, self.outcome, self.lang))
            }
            Outcome::Error(_) => {
                // A PG-side failure approves nothing: the customer is authenticated and the
                // payment waits for a retried confirm.
                p.status = Status::InProgress;
                Step::Answer(outcome_reply(Route::Confirm, self.outcome, self.lang))
            }
            _ if p.va.is_some() => {
                let due = self.now_ms + va::DEFAULT_VALID_HOURS * 3_600_000;
                va::issue(p, self.now_ms, due, self.deposit, self.webhook);
                Step::Approved(ok(render::payment(p, self.lang)))
            }
            _ => {
                p.status = Status::Done;
                p.approved_at = Some(self.now);
                Step::Approved(ok(render::payment(p, self.lang)))
            }
        }
    }

    /// `GET /v1/payments/{paymentKey}` and `GET /v1/payments/orders/{orderId}`.
    async fn inquiry(&self) -> Result<Reply, Fail> {
        if let Outcome::Declined(_) | Outcome::Error(_) = self.outcome {
            return Ok(outcome_reply(Route::Inquiry, self.outcome, self.lang));
        }
        // A key that is not UTF-8 once percent-decoded names no payment: the request's fault.
        let Some(param) = self.req.target.param.as_deref() else {
            return Ok(code_reply(known("NOT_FOUND_PAYMENT"), self.lang));
        };
        let mut reply = None;
        let now_ms = self.now_ms;
        let mut render = |p: Option<&Payment>| {
            reply = p.map(|p| match p.status {
                // A virtual account is shown as it is now: deposited or expired since.
                Status::WaitingForDeposit => {
                    let mut now = p.clone();
                    va::settle(&mut now, now_ms);
                    ok(render::payment(&now, self.lang))
                }
                _ => ok(render::payment(p, self.lang)),
            });
        };
        if self.req.target.by_order {
            self.api.ledger.view_order(param, &mut render).await?;
        } else {
            self.api.ledger.view(param, &mut render).await?;
            if reply.is_none()
                && let Some(m) = self.api.mint.read_payment(param)
            {
                let seen = seen_from_key(param, &m, now_ms);
                reply = Some(ok(render::payment(&seen, self.lang)));
            }
        }
        Ok(reply.unwrap_or_else(|| self.refused("NOT_FOUND_PAYMENT")))
    }

    /// `POST /v1/payments/{paymentKey}/cancel`, full or partial.
    async fn cancel(&self) -> Result<Reply, Fail> {
        let body: CancelBody = input::parse_body(self.req.body)?;
        let reason = input::text("cancelReason", body.cancel_reason, 200)?;
        let cancel_amount = input::optional_amount("cancelAmount", body.cancel_amount)?;
        let refundable = input::optional_non_negative("refundableAmount", body.refundable_amount)?;
        input::optional_non_negative("taxFreeAmount", body.tax_free_amount)?;
        let refund_account = match body.refund_receive_account {
            None => false,
            Some(Loose::Object) => true,
            Some(other) => {
                return Err(Problem::WrongType {
                    field: "refundReceiveAccount",
                    expected: "an object {bank, accountNumber, holderName}",
                    got: other.type_name(),
                }
                .into());
            }
        };
        // No key (the path's is not UTF-8 once percent-decoded) names no payment.
        let key = self.req.target.param.as_deref().unwrap_or("");
        let minted = self.api.mint.read_payment(key);
        let mut reply = None;
        let mut moved = None;
        self.api
            .ledger
            .modify(key, &mut |slot| {
                moved = None;
                if slot.is_none() {
                    *slot = minted.as_ref().map(|m| seen_from_key(key, m, self.now_ms));
                }
                reply = Some(match slot {
                    None => self.refused("NOT_FOUND_PAYMENT"),
                    Some(p) if p.va.is_some() => {
                        // Past its directed deposit or its due date before its timer came: the
                        // change is this request's to tell, before the cancel's own.
                        moved = va::settled(p, self.now_ms);
                        match self.va_cancel_check(p, cancel_amount, refund_account) {
                            Some(refused) => refused,
                            None => self.cancel_step(p, &reason, cancel_amount, refundable),
                        }
                    }
                    Some(p) => self.cancel_step(p, &reason, cancel_amount, refundable),
                });
            })
            .await?;
        va::tell_settled(self.api.webhooks.as_ref(), moved.as_ref());
        Ok(reply.unwrap_or_else(|| self.refused("NOT_FOUND_PAYMENT")))
    }

    fn cancel_step(
        &self,
        p: &mut Payment,
        reason: &str,
        amount: Option<u64>,
        refundable: Option<u64>,
    ) -> Reply {
        match p.status {
            Status::Canceled => return self.refused("ALREADY_CANCELED_PAYMENT"),
            Status::Done | Status::PartialCanceled | Status::WaitingForDeposit => {}
            _ => return self.refused("NOT_CANCELABLE_PAYMENT"),
        }
        if refundable.is_some_and(|r| r != p.balance) {
            return self.refused("NOT_MATCHES_REFUNDABLE_AMOUNT");
        }
        let amount = amount.unwrap_or(p.balance);
        if amount > p.balance {
            let info = known("NOT_CANCELABLE_AMOUNT");
            let message = match self.lang {
                Lang::Ko => format!(
                    "{} (취소 요청 금액 {amount}원, 취소 가능 금액 {}원)",
                    info.ko, p.balance
                ),
                Lang::En => format!(
                    "{} cancelAmount {amount} exceeds the cancelable balance {}.",
                    info.en, p.balance
                ),
            };
            return code_reply_with(info, &message).by(Origin::Ledger);
        }
        if p.cancels.len() >= MAX_CANCELS {
            let info = known("NOT_CANCELABLE_PAYMENT");
            let message = match self.lang {
                Lang::Ko => format!(
                    "{} (부분 취소는 최대 {MAX_CANCELS}회까지 가능합니다.)",
                    info.ko
                ),
                Lang::En => format!("{} At most {MAX_CANCELS} cancels per payment.", info.en),
            };
            return code_reply_with(info, &message).by(Origin::Ledger);
        }
        if !self.approved() {
            return outcome_reply(Route::Cancel, self.outcome, self.lang);
        }
        p.cancels.push(Cancel {
            amount,
            at: self.now,
            reason: reason.into(),
        });
        p.balance -= amount;
        if let Some(va) = p.va.as_mut() {
            // Money deposited goes back to the refund account; an unpaid account is closed.
            va.refunded = p.status != Status::WaitingForDeposit;
        }
        p.status = if p.balance == 0 {
            Status::Canceled
        } else {
            Status::PartialCanceled
        };
        self.show(p)
    }

    /// What the PG refuses of a virtual account's cancel before the common checks: a partial
    /// cancel while waiting for the deposit, and a refund of a deposit with no account to
    /// refund to.
    fn va_cancel_check(&self, p: &Payment, amount: Option<u64>, refund: bool) -> Option<Reply> {
        match p.status {
            Status::WaitingForDeposit if amount.is_some_and(|a| a < p.balance) => {
                Some(self.refused("NOT_ALLOWED_PARTIAL_REFUND_WAITING_DEPOSIT"))
            }
            Status::Done | Status::PartialCanceled if !refund => {
                Some(self.refused("INVALID_REFUND_ACCOUNT_INFO"))
            }
            _ => None,
        }
    }

    /// `POST /v1/virtual-accounts`: a `WAITING_FOR_DEPOSIT` payment with its account.
    async fn virtual_account(&self) -> Result<Reply, Fail> {
        let body: VirtualAccountBody = input::parse_body(self.req.body)?;
        let amount = input::amount("amount", body.amount)?;
        let order_id = input::order_id(body.order_id)?;
        let order_name = input::text("orderName", body.order_name, 100)?;
        let customer = input::text("customerName", body.customer_name, 100)?;
        let bank = input::text("bank", body.bank, 20)?;
        input::optional_text("customerEmail", body.customer_email, 100)?;
        input::optional_text("customerMobilePhone", body.customer_mobile_phone, 20)?;
        let valid_hours = input::optional_amount("validHours", body.valid_hours)?;
        let due_date = input::optional_text("dueDate", body.due_date, 40)?;
        let due_ms = match (valid_hours, due_date) {
            (Some(_), Some(_)) => {
                return Err(Problem::Custom(
                    "validHours and dueDate: expected one of them, not both",
                )
                .into());
            }
            (Some(h), None) if h as i64 > va::MAX_VALID_HOURS => {
                return Err(
                    Problem::Custom("validHours: expected at most 720 hours (30 days)").into(),
                );
            }
            (Some(h), None) => self.now_ms + h as i64 * 3_600_000,
            (None, Some(text)) => match text.parse::<jiff::Timestamp>() {
                Ok(t)
                    if t.as_millisecond() > self.now_ms
                        && t.as_millisecond() <= self.now_ms + va::MAX_VALID_HOURS * 3_600_000 =>
                {
                    t.as_millisecond()
                }
                _ => {
                    return Err(Problem::Custom(
                        "dueDate: expected a future time within 30 days with an offset, such as 2024-02-20T23:59:59+09:00",
                    )
                    .into());
                }
            },
            (None, None) => self.now_ms + va::DEFAULT_VALID_HOURS * 3_600_000,
        };
        if !bank.bytes().all(|b| b.is_ascii_digit()) || bank.len() != 2 {
            return Ok(self.refused("INVALID_BANK"));
        }
        if let Outcome::Declined(_) | Outcome::Error(_) = self.outcome {
            return Ok(outcome_reply(
                Route::VirtualAccount,
                self.outcome,
                self.lang,
            ));
        }
        let tag = input::tag_in(&order_name)
            .or_else(|| input::tag_in(&customer))
            .map(str::to_owned);
        let account = MintedAccount {
            bank: bank.to_string(),
            customer: customer.to_string(),
            issued: Some(Issued {
                at_ms: (self.now_ms - self.now * 1000).max(0) as u64,
                due_ms: (due_ms - self.now * 1000).max(0) as u64,
            }),
        };
        let minted = (tag, Some(account));
        self.mint_and_record(amount, &order_id, &order_name, minted, None, &|key| {
            let mut p = Payment::new(key, &order_id, Some(&order_name), amount, self.now);
            p.va = Some(Box::new(VirtualAccount::new(&bank, &customer)));
            va::issue(&mut p, self.now_ms, due_ms, self.deposit, self.webhook);
            p
        })
        .await
    }

    /// `POST /v1/billing/authorizations/issue`: a minted billing key for the customer.
    fn billing_issue(&self) -> Result<Reply, Fail> {
        let body: IssueBody = input::parse_body(self.req.body)?;
        input::text("authKey", body.auth_key, 300)?;
        let customer_key = self.customer_key(body.customer_key)?;
        let customer_key = match customer_key {
            Ok(k) => k,
            Err(reply) => return Ok(reply),
        };
        if !self.approved() {
            return Ok(outcome_reply(Route::BillingIssue, self.outcome, self.lang));
        }
        let billing_key = self.api.mint.mint_billing(self.now, &customer_key);
        Ok(ok(render::billing(
            &customer_key,
            &billing_key,
            self.now,
            self.lang,
        )))
    }

    fn customer_key<'b>(
        &self,
        value: Option<Loose<'b>>,
    ) -> Result<Result<Cow<'b, str>, Reply>, Problem> {
        let key = input::text("customerKey", value, 300)?;
        if valid_customer_key(&key) {
            Ok(Ok(key))
        } else {
            Ok(Err(code_reply(known("INVALID_CUSTOMER_KEY"), self.lang)))
        }
    }

    /// `POST /v1/billing/{billingKey}`: a `DONE` payment of type `BILLING`.
    async fn billing_charge(&self) -> Result<Reply, Fail> {
        let body: ChargeBody = input::parse_body(self.req.body)?;
        let customer_key = match self.customer_key(body.customer_key)? {
            Ok(k) => k,
            Err(reply) => return Ok(reply),
        };
        let amount = input::amount("amount", body.amount)?;
        let order_id = input::order_id(body.order_id)?;
        let order_name = input::text("orderName", body.order_name, 100)?;
        input::optional_text("customerName", body.customer_name, 100)?;
        input::optional_text("customerEmail", body.customer_email, 100)?;
        input::optional_non_negative("taxFreeAmount", body.tax_free_amount)?;
        input::optional_method(body.method)?;
        let Some(billing_key) = self.req.target.param.as_deref() else {
            // The path's key is not UTF-8 once percent-decoded: no billing key is.
            return Ok(code_reply(known("NOT_FOUND_BILLING"), self.lang));
        };
        // A billing key Gazua did not mint is accepted as the SUT's own (load scripts replay
        // fixed keys); a minted one must be charged for its customer.
        if let Some(b) = self.api.mint.read_billing(billing_key)
            && b.customer != keys::customer_hash(&customer_key)
        {
            return Ok(self.refused("NOT_MATCHES_CUSTOMER_KEY"));
        }
        if self.api.ledger.records() {
            let mut used = false;
            self.api
                .ledger
                .view_order(&order_id, &mut |p| used = p.is_some())
                .await?;
            if used {
                return Ok(self.refused("DUPLICATED_ORDER_ID"));
            }
        }
        if let Outcome::Error(_) = self.outcome {
            return Ok(outcome_reply(Route::BillingCharge, self.outcome, self.lang));
        }
        let minted = MintedPayment {
            billing: true,
            at: self.now,
            amount,
            order_id: order_id.clone().into_owned(),
            order_name: Some(order_name.clone().into_owned()),
            tag: None,
            account: None,
        };
        let key = self
            .api
            .mint
            .mint_payment(&minted)
            .map_err(|e| Problem::TagTooLong(e.room))?;
        let mut reply = None;
        self.api
            .ledger
            .modify(&key, &mut |slot| {
                let mut p = Payment::new(&key, &order_id, Some(&order_name), amount, self.now);
                p.billing = true;
                if let Outcome::Declined(code) = self.outcome {
                    // Recorded as ABORTED so an inquiry by orderId explains the refusal.
                    match &code.code {
                        Some(name) => {
                            p.status = Status::Aborted;
                            p.failure = Some(name.clone());
                            *slot = Some(p);
                        }
                        None => *slot = None,
                    }
                    reply = Some(outcome_reply(Route::BillingCharge, self.outcome, self.lang));
                    return;
                }
                p.status = Status::Done;
                p.approved_at = Some(self.now);
                reply = Some(self.show(&p));
                *slot = Some(p);
            })
            .await?;
        Ok(reply.unwrap_or_else(|| self.refused("FAILED_INTERNAL_SYSTEM_PROCESSING")))
    }
}

/// A minted payment as created: `READY`, or a virtual account issued with its key
/// (`WAITING_FOR_DEPOSIT` as issued, with its tag's `deposit=`).
fn from_key(key: &str, m: &MintedPayment) -> Payment {
    let mut p = Payment::new(key, &m.order_id, m.order_name.as_deref(), m.amount, m.at);
    p.billing = m.billing;
    if let Some(a) = &m.account {
        p.va = Some(Box::new(VirtualAccount::new(&a.bank, &a.customer)));
        if let Some(issued) = a.issued {
            let second_ms = m.at * 1000;
            let at_ms = second_ms.saturating_add(issued.at_ms as i64);
            issue_from_tag(
                &mut p,
                m,
                at_ms,
                second_ms.saturating_add(issued.due_ms as i64),
            );
        }
    }
    p
}

/// Issues `p`'s account at `at_ms` as its key's tag directs (`deposit=`, `webhook=`): an
/// instance with no record knows no other directive of the request that issued it.
fn issue_from_tag(p: &mut Payment, m: &MintedPayment, at_ms: i64, due_ms: i64) {
    let tag = m
        .tag
        .as_deref()
        .and_then(|t| super::parse_tag_text(t).ok())
        .unwrap_or_default();
    va::issue(p, at_ms, due_ms, tag.deposit.as_ref(), tag.webhook.as_ref());
}

/// A minted payment as an instance with no record of it presents it at `now_ms`: how its
/// confirm most likely ended (see the module documentation of `api`), and a virtual account's
/// deposit or expiry since, computed from the key alone.
fn seen_from_key(key: &str, m: &MintedPayment, now_ms: i64) -> Payment {
    let mut p = unsettled_from_key(key, m);
    va::settle(&mut p, now_ms);
    p
}

/// [`seen_from_key`] before a virtual account's deposit or expiry: what the timer of an account
/// this instance issued settles at its moment when no ledger records it (`--ledger stateless`).
pub(super) fn unsettled_from_key(key: &str, m: &MintedPayment) -> Payment {
    let verdict = m
        .tag
        .as_deref()
        .and_then(|t| super::parse_tag_text(t).ok())
        .and_then(|d| d.outcome);
    seen_as(key, m, verdict.as_ref().and_then(tag_verdict))
}

/// A minted payment shown as `verdict` (its tag's only outcome) says its confirm ended. A
/// virtual account confirmed is waiting for its deposit, issued (as far as the key knows) when
/// it was created.
pub(super) fn seen_as(key: &str, m: &MintedPayment, verdict: Option<&Outcome>) -> Payment {
    let mut p = from_key(key, m);
    if p.status == Status::WaitingForDeposit {
        return p;
    }
    match verdict {
        Some(Outcome::Declined(code)) => {
            p.status = Status::Aborted;
            p.failure = Some(declined_code(code));
        }
        Some(Outcome::Error(_)) => p.status = Status::InProgress,
        _ if p.va.is_some() => {
            let at_ms = m.at * 1000;
            let due_ms = at_ms + va::DEFAULT_VALID_HOURS * 3_600_000;
            issue_from_tag(&mut p, m, at_ms, due_ms);
        }
        _ => {
            p.status = Status::Done;
            p.approved_at = Some(m.at);
        }
    }
    p
}

/// The code a declined confirm carries: the one named, else the route's default.
fn declined_code(code: &CodeRef) -> CodeName {
    code.code
        .clone()
        .unwrap_or(CodeName::Known(known("REJECT_CARD_PAYMENT")))
}

/// Gazua's own address as the client reached it (`http://` + `Host`), where the checkout
/// window is served; the PG's host when the request names none fit for a URL.
fn own_base(headers: &http::HeaderMap) -> String {
    let host = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
        });
    match host {
        Some(host) => format!("http://{host}"),
        None => "https://api.tosspayments.com".to_owned(),
    }
}
