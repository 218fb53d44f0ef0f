//! Rendering answers: the PG's Payment object and billing-key object, serialized straight into
//! bytes from structs that borrow the record. Everything not kept in the record (card, approval
//! number, transaction keys, receipt URLs) is derived from the paymentKey, so every instance
//! and every inquiry renders the same values.

use std::fmt;

use serde::Serialize;
use serde::ser::Serializer;
use xxhash_rust::xxh3::{xxh3_64_with_seed, xxh3_128_with_seed};

use super::Lang;
use super::ledger::{Payment, Status};
use super::virtual_account::VirtualAccount;
use crate::directive::CodeName;

/// The merchant id every answer carries.
pub const MID: &str = "gazuapay";
/// The Payment object version rendered (reference §1.7).
pub const VERSION: &str = "2022-11-16";
/// Where receipt URLs (and checkout URLs outside the create answer) point: the real PG's
/// hosts; a SUT only stores these. The create answer's `checkout.url` is Gazua's own window.
const API_HOST: &str = "https://api.tosspayments.com";
const RECEIPT_HOST: &str = "https://dashboard.tosspayments.com";

/// KRW VAT: a tenth of the supplied amount, the total split as the PG does
/// (15000 → 13636 + 1364; 1000 → 909 + 91).
pub fn vat_of(taxable: u64) -> u64 {
    taxable.saturating_add(5) / 11
}

/// A unix time rendered as the PG's `yyyy-MM-ddTHH:mm:ss+09:00`.
#[derive(Clone, Copy)]
pub struct Kst(pub i64);

impl Kst {
    /// `yyyy-MM-ddTHH:mm:ss+09:00`, cached per thread for the last second asked (every answer
    /// of one second shows the same time).
    fn bytes(self) -> [u8; 25] {
        thread_local! {
            static LAST: std::cell::Cell<(i64, [u8; 25])> = const { std::cell::Cell::new((i64::MIN, [0; 25])) };
        }
        LAST.with(|last| {
            let (second, text) = last.get();
            if second == self.0 {
                return text;
            }
            let ts = jiff::Timestamp::from_second(self.0).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
            let dt = jiff::tz::Offset::constant(9).to_datetime(ts);
            let mut b = *b"0000-00-00T00:00:00+09:00";
            digits(&mut b[0..4], dt.year().max(0) as u64);
            digits(&mut b[5..7], dt.month() as u64);
            digits(&mut b[8..10], dt.day() as u64);
            digits(&mut b[11..13], dt.hour() as u64);
            digits(&mut b[14..16], dt.minute() as u64);
            digits(&mut b[17..19], dt.second() as u64);
            last.set((self.0, b));
            b
        })
    }
}

/// `n` as exactly `out.len()` zero-padded decimal digits (the high digits cut).
fn digits(out: &mut [u8], mut n: u64) {
    for b in out.iter_mut().rev() {
        *b = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

fn ascii(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).expect("rendered ASCII")
}

/// `Display` and `Serialize` for a field rendered by its `bytes()` into a fixed ASCII buffer.
macro_rules! ascii_text {
    ($t:ty) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(ascii(&self.bytes()))
            }
        }

        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(ascii(&self.bytes()))
            }
        }
    };
}

ascii_text!(Kst);

/// A transaction key: 32 upper-case hex digits, like the PG's.
#[derive(Clone, Copy)]
pub struct TxKey(u128);

impl TxKey {
    /// The `n`th transaction of a payment: 0 the approval, then one per cancel.
    pub fn of(payment_key: &str, n: usize) -> TxKey {
        TxKey(xxh3_128_with_seed(
            payment_key.as_bytes(),
            0x7478 + n as u64,
        ))
    }

    /// The receipt key of a payment's `n`th cancel (0 the first).
    pub fn receipt(payment_key: &str, n: usize) -> TxKey {
        TxKey(xxh3_128_with_seed(
            payment_key.as_bytes(),
            0x726b + n as u64,
        ))
    }
}

impl TxKey {
    fn bytes(self) -> [u8; 32] {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = HEX[((self.0 >> (124 - 4 * i)) & 0xF) as usize];
        }
        out
    }
}

ascii_text!(TxKey);

/// The receipt's `transactionId`: `tgaz`, the approval time's KST digits, five digits of the key.
fn receipt_id(key: &str, at: i64) -> [u8; 23] {
    let kst = Kst(at).bytes();
    let mut id = *b"tgaz0000000000000000000";
    id[4..8].copy_from_slice(&kst[0..4]);
    id[8..10].copy_from_slice(&kst[5..7]);
    id[10..12].copy_from_slice(&kst[8..10]);
    id[12..14].copy_from_slice(&kst[11..13]);
    id[14..16].copy_from_slice(&kst[14..16]);
    id[16..18].copy_from_slice(&kst[17..19]);
    digits(
        &mut id[18..],
        xxh3_64_with_seed(key.as_bytes(), 0x7263) % 100_000,
    );
    id
}

/// The PG-style checkout URL of a payment (outside the create answer, which shows Gazua's own
/// window).
fn checkout_url(key: &str) -> String {
    [API_HOST, "/v1/payments/", key, "/checkout"].concat()
}

/// A card derived from a key: the same key always shows the same card.
#[derive(Clone, Copy)]
pub struct CardFacts {
    hash: u64,
}

/// (issuer code, Korean name, English name) of the card companies shown.
const ISSUERS: [(&str, &str, &str); 8] = [
    ("11", "국민", "KOOKMIN"),
    ("41", "신한", "SHINHAN"),
    ("51", "삼성", "SAMSUNG"),
    ("61", "현대", "HYUNDAI"),
    ("71", "롯데", "LOTTE"),
    ("21", "하나", "HANA"),
    ("31", "비씨", "BC"),
    ("91", "농협", "NONGHYEOP"),
];

impl CardFacts {
    pub fn of(key: &str) -> CardFacts {
        CardFacts {
            hash: xxh3_64_with_seed(key.as_bytes(), 0x6361_7264),
        }
    }

    fn issuer(self) -> (&'static str, &'static str, &'static str) {
        ISSUERS[(self.hash % ISSUERS.len() as u64) as usize]
    }

    pub fn issuer_code(self) -> &'static str {
        self.issuer().0
    }

    pub fn company(self, lang: Lang) -> &'static str {
        match lang {
            Lang::Ko => self.issuer().1,
            Lang::En => self.issuer().2,
        }
    }

    /// `12345678****123*`: an 8-digit BIN, then the PG's masking.
    pub fn number(self) -> MaskedNumber {
        MaskedNumber(self.hash)
    }

    /// 8 digits.
    pub fn approve_no(self) -> ApproveNo {
        ApproveNo((self.hash >> 20) % 100_000_000)
    }

    fn credit(self) -> bool {
        !(self.hash >> 50).is_multiple_of(4)
    }

    pub fn card_type(self, lang: Lang) -> &'static str {
        match (self.credit(), lang) {
            (true, Lang::Ko) => "신용",
            (false, Lang::Ko) => "체크",
            (true, Lang::En) => "CREDIT",
            (false, Lang::En) => "DEBIT",
        }
    }
}

pub fn owner_type(lang: Lang) -> &'static str {
    match lang {
        Lang::Ko => "개인",
        Lang::En => "PERSONAL",
    }
}

pub fn card_method(lang: Lang) -> &'static str {
    match lang {
        Lang::Ko => "카드",
        Lang::En => "CARD",
    }
}

#[derive(Clone, Copy)]
pub struct MaskedNumber(u64);

impl MaskedNumber {
    fn bytes(self) -> [u8; 16] {
        let mut b = *b"00000000****000*";
        b[0] = [b'4', b'5', b'9'][(self.0 % 3) as usize];
        digits(&mut b[1..8], (self.0 >> 8) % 10_000_000);
        digits(&mut b[12..15], (self.0 >> 40) % 1000);
        b
    }
}

ascii_text!(MaskedNumber);

#[derive(Clone, Copy)]
pub struct ApproveNo(u64);

impl Serialize for ApproveNo {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut b = [0u8; 8];
        digits(&mut b, self.0);
        s.serialize_str(ascii(&b))
    }
}

/// The message a failure shows: the catalog's, or a plain one for a user-defined code.
pub fn failure_message(code: &CodeName, lang: Lang) -> &'static str {
    match code {
        CodeName::Known(info) => info.message(lang),
        CodeName::Custom(_) => match lang {
            Lang::Ko => "Gazua 지시문으로 요청된 오류입니다.",
            Lang::En => "An error requested by a Gazua directive.",
        },
    }
}

pub fn va_method(lang: Lang) -> &'static str {
    match lang {
        Lang::Ko => "가상계좌",
        Lang::En => "VIRTUAL_ACCOUNT",
    }
}

/// The JSON of `p` as the PG renders it.
pub fn payment(p: &Payment, lang: Lang) -> Vec<u8> {
    payment_with_checkout(p, lang, None)
}

/// The JSON of `p` with `checkout` as its `checkout.url` (else the PG-style bare URL).
///
/// Written as a template: the Payment object is one fixed shape of 37 fields, so its field
/// names and constant values are written as the literal JSON below, and only the per-payment
/// values are formatted, every caller-supplied text through sonic-rs's string escaping. A
/// serializer derived for the same shape spends most of a confirm's CPU on field-by-field
/// dispatch (`benches/instructions.sh`, BENCHMARKS.md). The derived description is kept as the
/// reference (`reference::payment`): every debug build checks each rendered payment against it.
pub fn payment_with_checkout(p: &Payment, lang: Lang, checkout: Option<&str>) -> Vec<u8> {
    let key = p.key();
    let approved = p.status.approved();
    let vat = vat_of(p.balance);
    let text = key.len() + p.order_id().len() + p.order_name().map_or(0, str::len);
    let mut d = Doc(Vec::with_capacity(1600 + 2 * text + 560 * p.cancels.len()));
    d.raw(r#"{"mId":"#)
        .ascii(MID.as_bytes())
        .raw(r#","lastTransactionKey":"#);
    match approved {
        true => d.ascii(&TxKey::of(key, p.cancels.len()).bytes()),
        false => d.null(),
    };
    d.raw(r#","paymentKey":"#).text(key);
    d.raw(r#","orderId":"#).text(p.order_id());
    d.raw(r#","orderName":"#).opt_text(p.order_name());
    d.raw(r#","taxExemptionAmount":0,"status":"#)
        .ascii(p.status.as_str().as_bytes());
    d.raw(r#","requestedAt":"#)
        .ascii(&Kst(p.requested_at).bytes());
    d.raw(r#","approvedAt":"#);
    match p.approved_at.filter(|_| approved) {
        Some(at) => d.ascii(&Kst(at).bytes()),
        None => d.null(),
    };
    d.raw(r#","useEscrow":false,"cultureExpense":false,"card":"#);
    match approved && p.va.is_none() {
        true => card(&mut d, p, lang),
        false => d.null(),
    };
    d.raw(r#","virtualAccount":"#);
    match p.va.as_deref() {
        Some(va) => virtual_account(&mut d, p, va),
        None => d.null(),
    };
    d.raw(concat!(
        r#","transfer":null,"mobilePhone":null,"giftCertificate":null,"cashReceipt":null"#,
        r#","cashReceipts":null,"discount":null,"cancels":"#
    ));
    match p.cancels.is_empty() {
        true => d.null(),
        false => cancels(&mut d, p),
    };
    d.raw(r#","secret":"#);
    match p.va {
        Some(_) => d.ascii(super::virtual_account::secret(key).as_bytes()),
        None => d.null(),
    };
    d.raw(match p.billing {
        true => r#","type":"BILLING","easyPay":null,"country":"KR","failure":"#,
        false => r#","type":"NORMAL","easyPay":null,"country":"KR","failure":"#,
    });
    match &p.failure {
        Some(code) => d
            .raw(r#"{"code":"#)
            .text(code.as_str())
            .raw(r#","message":"#)
            .text(failure_message(code, lang))
            .raw("}"),
        None => d.null(),
    };
    d.raw(r#","isPartialCancelable":"#).bool(approved);
    d.raw(r#","receipt":"#);
    match approved {
        true => d
            .raw(r#"{"url":""#)
            .raw(RECEIPT_HOST)
            .raw("/receipt/redirection?transactionId=")
            .raw(ascii(&receipt_id(
                key,
                p.approved_at.unwrap_or(p.requested_at),
            )))
            .raw(r#"&ref=PX"}"#),
        false => d.null(),
    };
    d.raw(r#","checkout":"#);
    match (p.billing, checkout) {
        (true, _) => d.null(),
        (false, Some(url)) => d.raw(r#"{"url":"#).text(url).raw("}"),
        (false, None) => d.raw(r#"{"url":"#).text(&checkout_url(key)).raw("}"),
    };
    d.raw(r#","currency":"KRW","totalAmount":"#).num(p.total);
    d.raw(r#","balanceAmount":"#).num(p.balance);
    d.raw(r#","suppliedAmount":"#).num(p.balance - vat);
    d.raw(r#","vat":"#).num(vat);
    d.raw(r#","taxFreeAmount":0,"metadata":null,"method":"#);
    // The PG shows no method for a payment that failed or never got one.
    match (p.status, &p.va) {
        (Status::Aborted, _) => d.null(),
        (_, Some(_)) => d.text(va_method(lang)),
        (_, None) => d.text(card_method(lang)),
    };
    d.raw(r#","version":"#).ascii(VERSION.as_bytes()).raw("}");
    #[cfg(debug_assertions)]
    debug_assert_eq!(
        String::from_utf8_lossy(&d.0),
        String::from_utf8_lossy(&reference::payment(p, lang, checkout)),
        "the payment template departed from the derived Payment object"
    );
    d.0
}

/// `card` of an approved card payment.
fn card<'d>(d: &'d mut Doc, p: &Payment, lang: Lang) -> &'d mut Doc {
    let card = CardFacts::of(p.key());
    let mut approve_no = [0u8; 8];
    digits(&mut approve_no, card.approve_no().0);
    d.raw(r#"{"issuerCode":"#)
        .ascii(card.issuer_code().as_bytes());
    d.raw(r#","acquirerCode":"#)
        .ascii(card.issuer_code().as_bytes());
    d.raw(r#","number":"#).ascii(&card.number().bytes());
    d.raw(r#","installmentPlanMonths":0,"isInterestFree":false,"interestPayer":null"#);
    d.raw(r#","approveNo":"#).ascii(&approve_no);
    d.raw(r#","useCardPoint":false,"cardType":"#)
        .text(card.card_type(lang));
    d.raw(r#","ownerType":"#).text(owner_type(lang));
    d.raw(match p.status {
        Status::Canceled => r#","acquireStatus":"CANCELED","amount":"#,
        _ => r#","acquireStatus":"READY","amount":"#,
    });
    d.num(p.total).raw("}")
}

/// `virtualAccount` of a virtual-account payment.
fn virtual_account<'d>(d: &'d mut Doc, p: &Payment, va: &VirtualAccount) -> &'d mut Doc {
    d.raw(r#"{"accountType":"일반","accountNumber":"#);
    d.ascii(super::virtual_account::account_number(p.key()).as_bytes());
    d.raw(r#","bankCode":"#).text(&va.bank);
    d.raw(r#","customerName":"#).text(&va.customer);
    d.raw(r#","dueDate":"#)
        .ascii(&Kst(va.due_ms.div_euclid(1000)).bytes());
    d.raw(match va.refunded {
        true => r#","refundStatus":"COMPLETED","expired":"#,
        false => r#","refundStatus":"NONE","expired":"#,
    });
    d.bool(p.status == Status::Expired);
    d.raw(concat!(
        r#","settlementStatus":"INCOMPLETED","refundReceiveAccount":null"#,
        r#","depositorName":null}"#
    ))
}

/// `cancels`: one entry per cancel, oldest first, each with the balance left after it.
fn cancels<'d>(d: &'d mut Doc, p: &Payment) -> &'d mut Doc {
    let mut left = p.total;
    for (i, c) in p.cancels.iter().enumerate() {
        left = left.saturating_sub(c.amount);
        d.raw(if i == 0 { "[" } else { "," });
        d.raw(r#"{"transactionKey":"#)
            .ascii(&TxKey::of(p.key(), i + 1).bytes());
        d.raw(r#","cancelReason":"#).text(&c.reason);
        d.raw(r#","taxExemptionAmount":0,"canceledAt":"#)
            .ascii(&Kst(c.at).bytes());
        d.raw(r#","transferDiscountAmount":0,"easyPayDiscountAmount":0,"receiptKey":"#);
        d.ascii(&TxKey::receipt(p.key(), i).bytes());
        d.raw(r#","cancelAmount":"#).num(c.amount);
        d.raw(r#","taxFreeAmount":0,"refundableAmount":"#).num(left);
        d.raw(r#","cancelStatus":"DONE","cancelRequestId":null}"#);
    }
    d.raw("]")
}

/// A JSON document written front to back: the fixed parts as given, values formatted.
struct Doc(Vec<u8>);

impl Doc {
    /// JSON written as is: punctuation, field names, constant values.
    fn raw(&mut self, json: &str) -> &mut Self {
        self.0.extend_from_slice(json.as_bytes());
        self
    }

    /// A text as a JSON string, escaped by sonic-rs.
    fn text(&mut self, text: &str) -> &mut Self {
        use serde::Serializer as _;
        // Writing into a Vec cannot fail.
        let _ = sonic_rs::Serializer::new(&mut self.0).serialize_str(text);
        self
    }

    fn opt_text(&mut self, text: Option<&str>) -> &mut Self {
        match text {
            Some(text) => self.text(text),
            None => self.null(),
        }
    }

    /// Rendered ASCII that needs no escaping (digits, hex, fixed codes), quoted.
    fn ascii(&mut self, text: &[u8]) -> &mut Self {
        debug_assert!(
            text.iter()
                .all(|b| b.is_ascii_graphic() && !b"\"\\".contains(b))
        );
        self.0.push(b'"');
        self.0.extend_from_slice(text);
        self.0.push(b'"');
        self
    }

    fn num(&mut self, n: u64) -> &mut Self {
        self.raw(itoa::Buffer::new().format(n))
    }

    fn bool(&mut self, b: bool) -> &mut Self {
        self.raw(if b { "true" } else { "false" })
    }

    fn null(&mut self) -> &mut Self {
        self.raw("null")
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BillingCardJson {
    issuer_code: &'static str,
    acquirer_code: &'static str,
    number: MaskedNumber,
    card_type: &'static str,
    owner_type: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BillingJson<'a> {
    m_id: &'static str,
    customer_key: &'a str,
    authenticated_at: Kst,
    method: &'static str,
    billing_key: &'a str,
    card: BillingCardJson,
    card_company: &'static str,
    card_number: MaskedNumber,
}

/// The answer of `POST /v1/billing/authorizations/issue`.
pub fn billing(customer_key: &str, billing_key: &str, at: i64, lang: Lang) -> Vec<u8> {
    let card = CardFacts::of(billing_key);
    to_vec(&BillingJson {
        m_id: MID,
        customer_key,
        authenticated_at: Kst(at),
        method: card_method(lang),
        billing_key,
        card: BillingCardJson {
            issuer_code: card.issuer_code(),
            acquirer_code: card.issuer_code(),
            number: card.number(),
            card_type: card.card_type(lang),
            owner_type: owner_type(lang),
        },
        card_company: card.company(lang),
        card_number: card.number(),
    })
}

/// The answer's JSON, written by sonic-rs: the same bytes as serde_json's compact writer (every
/// test checks it in debug builds), but it scans strings for escapes a vector at a time where
/// serde_json goes byte by byte, field names included — most of a payment's render
/// (`benches/instructions.sh`; BENCHMARKS.md).
fn to_vec<T: Serialize>(value: &T) -> Vec<u8> {
    // Writing plain structs cannot fail; an empty object would still be JSON.
    let out = sonic_rs::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    #[cfg(debug_assertions)]
    debug_assert_eq!(
        String::from_utf8_lossy(&out),
        serde_json::to_string(value).unwrap_or_else(|_| "{}".to_owned()),
        "sonic-rs departed from serde_json's output"
    );
    out
}

/// The key of a payment's latest transaction (its `lastTransactionKey`), for the
/// `transactionKey` of a DEPOSIT_CALLBACK.
pub fn transaction_key(p: &Payment) -> String {
    String::from_utf8_lossy(&TxKey::of(p.key(), p.cancels.len()).bytes()).into_owned()
}

/// The Payment object as a serde-derived struct, serialized by serde_json: the reference every
/// debug build and the unit tests check the template of [`payment_with_checkout`] against, byte
/// for byte.
#[cfg(any(test, debug_assertions))]
mod reference {
    use std::fmt;

    use serde::Serialize;
    use serde::ser::{SerializeSeq, Serializer};

    use super::*;

    struct Url<'a>(UrlKind<'a>);

    enum UrlKind<'a> {
        Checkout(&'a str),
        /// A URL made elsewhere: the create answer's own checkout window.
        Given(&'a str),
        Receipt {
            key: &'a str,
            at: i64,
        },
    }

    impl fmt::Display for Url<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self.0 {
                UrlKind::Checkout(key) => f.write_str(&checkout_url(key)),
                UrlKind::Given(url) => f.write_str(url),
                UrlKind::Receipt { key, at } => {
                    f.write_str(RECEIPT_HOST)?;
                    f.write_str("/receipt/redirection?transactionId=")?;
                    f.write_str(ascii(&receipt_id(key, at)))?;
                    f.write_str("&ref=PX")
                }
            }
        }
    }

    #[derive(Serialize)]
    struct UrlObject<'a> {
        url: Collect<Url<'a>>,
    }

    /// Serializes a `Display` value as a JSON string without building a `String`.
    struct Collect<T>(T);

    impl<T: fmt::Display> Serialize for Collect<T> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_str(&self.0)
        }
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct CardJson {
        issuer_code: &'static str,
        acquirer_code: &'static str,
        number: MaskedNumber,
        installment_plan_months: u32,
        is_interest_free: bool,
        interest_payer: (),
        approve_no: ApproveNo,
        use_card_point: bool,
        card_type: &'static str,
        owner_type: &'static str,
        acquire_status: &'static str,
        amount: u64,
    }

    #[derive(Serialize)]
    struct FailureJson<'a> {
        code: &'a str,
        message: &'a str,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct CancelJson<'a> {
        transaction_key: TxKey,
        cancel_reason: &'a str,
        tax_exemption_amount: u64,
        canceled_at: Kst,
        transfer_discount_amount: u64,
        easy_pay_discount_amount: u64,
        receipt_key: TxKey,
        cancel_amount: u64,
        tax_free_amount: u64,
        refundable_amount: u64,
        cancel_status: &'static str,
        cancel_request_id: (),
    }

    struct Cancels<'a>(&'a Payment);

    impl Serialize for Cancels<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let p = self.0;
            let mut seq = s.serialize_seq(Some(p.cancels.len()))?;
            let mut left = p.total;
            for (i, c) in p.cancels.iter().enumerate() {
                left = left.saturating_sub(c.amount);
                let tx = TxKey::of(p.key(), i + 1);
                seq.serialize_element(&CancelJson {
                    transaction_key: tx,
                    cancel_reason: &c.reason,
                    tax_exemption_amount: 0,
                    canceled_at: Kst(c.at),
                    transfer_discount_amount: 0,
                    easy_pay_discount_amount: 0,
                    receipt_key: TxKey::receipt(p.key(), i),
                    cancel_amount: c.amount,
                    tax_free_amount: 0,
                    refundable_amount: left,
                    cancel_status: "DONE",
                    cancel_request_id: (),
                })?;
            }
            seq.end()
        }
    }

    /// The Payment object, every documented field present (`null` where Gazua models nothing).
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct PaymentJson<'a> {
        m_id: &'static str,
        last_transaction_key: Option<TxKey>,
        payment_key: &'a str,
        order_id: &'a str,
        order_name: Option<&'a str>,
        tax_exemption_amount: u64,
        status: &'static str,
        requested_at: Kst,
        approved_at: Option<Kst>,
        use_escrow: bool,
        culture_expense: bool,
        card: Option<CardJson>,
        virtual_account: Option<VaJson<'a>>,
        transfer: (),
        mobile_phone: (),
        gift_certificate: (),
        cash_receipt: (),
        cash_receipts: (),
        discount: (),
        cancels: Option<Cancels<'a>>,
        secret: Option<String>,
        #[serde(rename = "type")]
        kind: &'static str,
        easy_pay: (),
        country: &'static str,
        failure: Option<FailureJson<'a>>,
        is_partial_cancelable: bool,
        receipt: Option<UrlObject<'a>>,
        checkout: Option<UrlObject<'a>>,
        currency: &'static str,
        total_amount: u64,
        balance_amount: u64,
        supplied_amount: u64,
        vat: u64,
        tax_free_amount: u64,
        metadata: (),
        method: Option<&'static str>,
        version: &'static str,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct VaJson<'a> {
        account_type: &'static str,
        account_number: String,
        bank_code: &'a str,
        customer_name: &'a str,
        due_date: Kst,
        refund_status: &'static str,
        expired: bool,
        settlement_status: &'static str,
        refund_receive_account: (),
        depositor_name: (),
    }

    pub fn payment(p: &Payment, lang: Lang, checkout: Option<&str>) -> Vec<u8> {
        let key = p.key();
        let approved = p.status.approved();
        let card = CardFacts::of(key);
        let vat = vat_of(p.balance);
        let last_tx = approved.then(|| TxKey::of(key, p.cancels.len()));
        let json = PaymentJson {
            m_id: MID,
            last_transaction_key: last_tx,
            payment_key: key,
            order_id: p.order_id(),
            order_name: p.order_name(),
            tax_exemption_amount: 0,
            status: p.status.as_str(),
            requested_at: Kst(p.requested_at),
            approved_at: p.approved_at.filter(|_| approved).map(Kst),
            use_escrow: false,
            culture_expense: false,
            card: (approved && p.va.is_none()).then(|| CardJson {
                issuer_code: card.issuer_code(),
                acquirer_code: card.issuer_code(),
                number: card.number(),
                installment_plan_months: 0,
                is_interest_free: false,
                interest_payer: (),
                approve_no: card.approve_no(),
                use_card_point: false,
                card_type: card.card_type(lang),
                owner_type: owner_type(lang),
                acquire_status: if p.status == Status::Canceled {
                    "CANCELED"
                } else {
                    "READY"
                },
                amount: p.total,
            }),
            virtual_account: p.va.as_deref().map(|va| VaJson {
                account_type: "일반",
                account_number: crate::api::virtual_account::account_number(key),
                bank_code: &va.bank,
                customer_name: &va.customer,
                due_date: Kst(va.due_ms.div_euclid(1000)),
                refund_status: if va.refunded { "COMPLETED" } else { "NONE" },
                expired: p.status == Status::Expired,
                settlement_status: "INCOMPLETED",
                refund_receive_account: (),
                depositor_name: (),
            }),
            transfer: (),
            mobile_phone: (),
            gift_certificate: (),
            cash_receipt: (),
            cash_receipts: (),
            discount: (),
            cancels: (!p.cancels.is_empty()).then_some(Cancels(p)),
            secret: p
                .va
                .as_ref()
                .map(|_| crate::api::virtual_account::secret(key)),
            kind: if p.billing { "BILLING" } else { "NORMAL" },
            easy_pay: (),
            country: "KR",
            failure: p.failure.as_ref().map(|code| FailureJson {
                code: code.as_str(),
                message: failure_message(code, lang),
            }),
            is_partial_cancelable: approved,
            receipt: approved.then(|| UrlObject {
                url: Collect(Url(UrlKind::Receipt {
                    key,
                    at: p.approved_at.unwrap_or(p.requested_at),
                })),
            }),
            checkout: (!p.billing).then_some(UrlObject {
                url: Collect(Url(checkout.map_or(UrlKind::Checkout(key), UrlKind::Given))),
            }),
            currency: "KRW",
            total_amount: p.total,
            balance_amount: p.balance,
            supplied_amount: p.balance - vat,
            vat,
            tax_free_amount: 0,
            metadata: (),
            // The PG shows no method for a payment that failed or never got one.
            method: (p.status != Status::Aborted).then(|| match p.va {
                Some(_) => va_method(lang),
                None => card_method(lang),
            }),
            version: VERSION,
        };
        serde_json::to_vec(&json).expect("plain structs serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vat_splits_like_the_pg() {
        assert_eq!((15000 - vat_of(15000), vat_of(15000)), (13636, 1364));
        assert_eq!((1000 - vat_of(1000), vat_of(1000)), (909, 91));
        assert_eq!(vat_of(0), 0);
        assert_eq!(vat_of(u64::MAX), u64::MAX / 11);
    }

    #[test]
    fn times_are_kst_seconds() {
        // 2024-02-13T03:18:14Z
        assert_eq!(Kst(1_707_794_294).to_string(), "2024-02-13T12:18:14+09:00");
    }

    /// Every shape of the Payment object — READY, DONE, partly and wholly canceled, ABORTED with
    /// a catalog and a user-defined code, billing, virtual accounts waiting, expired and refunded,
    /// with and without an order name, texts that need escaping, both languages, a given and a
    /// derived checkout URL — renders byte for byte as the serde-derived reference.
    #[test]
    fn the_template_renders_what_the_derived_payment_object_does() {
        use crate::api::ledger::Cancel;
        use crate::directive::CodeName;
        let texts = [
            ("pk_plain_1", "order-1", Some("티셔츠 외 2건")),
            (
                "pk_\"quoted\"\\",
                "order\t2",
                Some("line\nbreak \u{1} \u{7f} 🎉"),
            ),
            ("pk_none", "order-3", None),
        ];
        let mut shapes = Vec::new();
        for (key, order, name) in texts {
            let ready = Payment::new(key, order, name, 15_000, 1_707_794_294);
            let mut done = ready.clone();
            done.status = Status::Done;
            done.approved_at = Some(1_707_794_300);
            let mut partly = done.clone();
            partly.status = Status::PartialCanceled;
            partly.balance = 5_000;
            partly.cancels = vec![
                Cancel {
                    amount: 4_000,
                    at: 1_707_794_400,
                    reason: "고객 변심".into(),
                },
                Cancel {
                    amount: 6_000,
                    at: 1_707_794_500,
                    reason: "a \"reason\"\r".into(),
                },
            ];
            let mut canceled = partly.clone();
            canceled.status = Status::Canceled;
            canceled.balance = 0;
            let mut aborted = ready.clone();
            aborted.status = Status::Aborted;
            aborted.failure = Some(CodeName::Known(
                crate::codes::lookup("REJECT_CARD_COMPANY").unwrap(),
            ));
            let mut custom = aborted.clone();
            custom.failure = Some(CodeName::Custom("MY_\"CODE\"".into()));
            let mut billing = done.clone();
            billing.billing = true;
            let mut waiting = ready.clone();
            waiting.status = Status::WaitingForDeposit;
            let mut va = VirtualAccount::new("88", name.unwrap_or("홍길동"));
            va.due_ms = 1_707_880_694_123;
            waiting.va = Some(Box::new(va));
            let mut deposited = waiting.clone();
            deposited.status = Status::Done;
            deposited.approved_at = Some(1_707_800_000);
            let mut expired = waiting.clone();
            expired.status = Status::Expired;
            let mut refunded = deposited.clone();
            refunded.status = Status::Canceled;
            refunded.balance = 0;
            refunded.cancels = vec![Cancel {
                amount: 15_000,
                at: 1_707_900_000,
                reason: "환불".into(),
            }];
            refunded.va.as_mut().unwrap().refunded = true;
            shapes.extend([
                ready, done, partly, canceled, aborted, custom, billing, waiting, deposited,
                expired, refunded,
            ]);
        }
        for p in &shapes {
            for lang in [Lang::Ko, Lang::En] {
                for checkout in [None, Some("http://127.0.0.1:1/checkout/pk_\"x\"?a=1&b=\\")] {
                    let rendered = payment_with_checkout(p, lang, checkout);
                    let reference = reference::payment(p, lang, checkout);
                    assert_eq!(
                        String::from_utf8_lossy(&rendered),
                        String::from_utf8_lossy(&reference),
                        "status {:?}, lang {lang:?}, checkout {checkout:?}",
                        p.status
                    );
                    serde_json::from_slice::<serde_json::Value>(&rendered).expect("valid JSON");
                }
            }
        }
    }

    #[test]
    fn card_facts_are_stable_and_well_formed() {
        let a = CardFacts::of("some-key");
        let number = a.number().to_string();
        assert_eq!(number.len(), 16);
        assert!(number[..8].bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(&number[8..12], "****");
        assert!(number.ends_with('*'));
        let approve = serde_json::to_string(&a.approve_no()).unwrap();
        assert_eq!(approve.len(), 10, "{approve}");
        assert_eq!(CardFacts::of("some-key").number().to_string(), number);
        assert_eq!(TxKey::of("k", 0).to_string().len(), 32);
    }
}
