//! The PG's error-code catalog (Toss Payments core API v1, plus Gazua's own few codes): each
//! code's HTTP status, kind and messages in Korean and English, and the code each route answers
//! for an outcome that names none.
//!
//! One language rule: a PG code answers in the client's language (Korean, English with
//! `Accept-Language: en-US`), as the real PG does; Gazua's own `GAZUA_*` codes always answer in
//! English, because they are about the test tool and its directives, read by whoever wrote the
//! load script, never by the system under test's users.

use crate::route::Route;

/// The language of messages: Korean unless the client sends `Accept-Language: en-US`. The
/// catalog owns its languages; `api` answers in them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Ko,
    En,
}

impl Lang {
    pub fn from_headers(headers: &http::HeaderMap) -> Lang {
        let english = headers
            .get(http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.trim_start()
                    .get(..2)
                    .is_some_and(|p| p.eq_ignore_ascii_case("en"))
            });
        if english { Lang::En } else { Lang::Ko }
    }
}

/// What kind of answer a code is; decides the `outcome` metric label of a `TossPayments-Test-Code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeKind {
    /// A card or issuer refusal.
    Declined,
    /// A PG-side or provider failure.
    Error,
    /// Throttling.
    Throttled,
    /// The request was refused as invalid (validation, auth, lifecycle).
    Invalid,
}

#[derive(Debug, PartialEq, Eq)]
pub struct CodeInfo {
    pub name: &'static str,
    pub status: u16,
    pub kind: CodeKind,
    pub ko: &'static str,
    pub en: &'static str,
}

impl CodeInfo {
    /// A code about Gazua itself rather than a PG answer: answered in English only.
    pub fn is_gazuas_own(&self) -> bool {
        self.name.starts_with("GAZUA_")
    }

    /// The message in `lang` (always English for Gazua's own `GAZUA_*` codes).
    pub fn message(&self, lang: Lang) -> &'static str {
        if self.is_gazuas_own() {
            return self.en;
        }
        match lang {
            Lang::Ko => self.ko,
            Lang::En => self.en,
        }
    }
}

/// Every code Gazua can answer, sorted by name so that [`lookup`] is a binary search. The Toss
/// codes keep the statuses of the reference's per-API tables; `GAZUA_*` and
/// `METHOD_NOT_ALLOWED` are Gazua's own (the PG documents nothing for them).
pub static CATALOG: &[CodeInfo] = &[
    CodeInfo {
        name: "ALREADY_CANCELED_PAYMENT",
        status: 400,
        kind: CodeKind::Invalid,
        ko: "이미 취소된 결제 입니다.",
        en: "The payment has already been canceled.",
    },
    CodeInfo {
        name: "ALREADY_PROCESSED_PAYMENT",
        status: 400,
        kind: CodeKind::Invalid,
        ko: "이미 처리된 결제 입니다.",
        en: "The payment has already been processed.",
    },
    CodeInfo {
        name: "ALREADY_REFUND_PAYMENT",
        status: 400,
        kind: CodeKind::Invalid,
        ko: "이미 환불된 결제입니다.",
        en: "The payment has already been refunded.",
    },
    CodeInfo {
        name: "BELOW_MINIMUM_AMOUNT",
        status: 400,
        kind: CodeKind::Declined,
        ko: "신용카드는 결제금액이 100원 이상, 계좌는 200원이상부터 결제가 가능합니다.",
        en: "The amount is below the minimum: 100 KRW for cards, 200 KRW for accounts.",
    },
    CodeInfo {
        name: "CARD_PROCESSING_ERROR",
        status: 400,
        kind: CodeKind::Error,
        ko: "카드사에서 오류가 발생했습니다.",
        en: "An error occurred at the card company.",
    },
    CodeInfo {
        name: "COMMON_ERROR",
        status: 500,
        kind: CodeKind::Error,
        ko: "일시적인 오류가 발생했습니다. 잠시 후 다시 시도해주세요.",
        en: "A temporary error occurred. Please try again later.",
    },
    CodeInfo {
        name: "DUPLICATED_ORDER_ID",
        status: 400,
        kind: CodeKind::Invalid,
        ko: "이미 승인 및 취소가 진행된 중복된 주문번호 입니다. 다른 주문번호로 진행해주세요.",
        en: "The orderId has already been used for an approval or a cancel. Use another orderId.",
    },
    CodeInfo {
        name: "EXCEED_CANCEL_AMOUNT_DISCOUNT_AMOUNT",
        status: 400,
        kind: CodeKind::Declined,
        ko: "즉시할인금액보다 적은 금액은 부분취소가 불가능합니다.",
        en: "A partial cancel below the instant discount amount is not possible.",
    },
    CodeInfo {
        name: "EXCEED_CANCEL_LIMIT",
        status: 403,
        kind: CodeKind::Declined,
        ko: "취소 한도 금액을 초과 하였습니다.",
        en: "The cancel limit has been exceeded.",
    },
    CodeInfo {
        name: "EXCEED_MAX_AMOUNT",
        status: 400,
        kind: CodeKind::Declined,
        ko: "거래금액 한도를 초과했습니다.",
        en: "The transaction amount limit has been exceeded.",
    },
    CodeInfo {
        name: "EXCEED_MAX_AUTH_COUNT",
        status: 403,
        kind: CodeKind::Declined,
        ko: "최대 인증 횟수를 초과했습니다. 카드사로 문의해주세요.",
        en: "The maximum number of authentication attempts has been exceeded. Contact the card company.",
    },
    CodeInfo {
        name: "EXCEED_MAX_CARD_INSTALLMENT_PLAN",
        status: 400,
        kind: CodeKind::Declined,
        ko: "설정 가능한 최대 할부 개월 수를 초과했습니다.",
        en: "The maximum number of installment months has been exceeded.",
    },
    CodeInfo {
        name: "EXCEED_MAX_DAILY_PAYMENT_COUNT",
        status: 400,
        kind: CodeKind::Declined,
        ko: "하루 결제 가능 횟수를 초과했습니다.",
        en: "The daily payment count has been exceeded.",
    },
    CodeInfo {
        name: "EXCEED_MAX_MONTHLY_PAYMENT_AMOUNT",
        status: 400,
        kind: CodeKind::Declined,
        ko: "당월 결제 가능금액인 1,000,000원을 초과 하셨습니다.",
        en: "The monthly payment amount limit has been exceeded.",
    },
    CodeInfo {
        name: "EXCEED_MAX_ONE_DAY_AMOUNT",
        status: 403,
        kind: CodeKind::Declined,
        ko: "일일 한도를 초과했습니다.",
        en: "The daily limit has been exceeded.",
    },
    CodeInfo {
        name: "EXCEED_MAX_ONE_DAY_WITHDRAW_AMOUNT",
        status: 400,
        kind: CodeKind::Declined,
        ko: "1일 출금 한도를 초과했습니다.",
        en: "The daily withdrawal limit has been exceeded.",
    },
    CodeInfo {
        name: "EXCEED_MAX_ONE_TIME_WITHDRAW_AMOUNT",
        status: 400,
        kind: CodeKind::Declined,
        ko: "1회 출금 한도를 초과했습니다.",
        en: "The single withdrawal limit has been exceeded.",
    },
    CodeInfo {
        name: "EXCEED_MAX_PAYMENT_AMOUNT",
        status: 400,
        kind: CodeKind::Declined,
        ko: "하루 결제 가능 금액을 초과했습니다.",
        en: "The daily payment amount has been exceeded.",
    },
    CodeInfo {
        name: "EXCEED_MAX_REFUND_DUE",
        status: 403,
        kind: CodeKind::Declined,
        ko: "환불 가능한 기간이 지났습니다.",
        en: "The refund period has passed.",
    },
    CodeInfo {
        name: "FAILED_BILL_KEY_AUTH_CREATION",
        status: 500,
        kind: CodeKind::Error,
        ko: "빌링키 인증 생성에 실패했습니다. 잠시 후 다시 시도해주세요.",
        en: "Creating the billing key authentication failed. Please try again later.",
    },
    CodeInfo {
        name: "FAILED_INTERNAL_SYSTEM_PROCESSING",
        status: 500,
        kind: CodeKind::Error,
        ko: "내부 시스템 처리 작업이 실패했습니다. 잠시 후 다시 시도해주세요.",
        en: "Internal system processing failed. Please try again later.",
    },
    CodeInfo {
        name: "FAILED_METHOD_HANDLING_CANCEL",
        status: 500,
        kind: CodeKind::Error,
        ko: "취소 중 결제 시 사용한 결제 수단 처리과정에서 일시적인 오류가 발생했습니다.",
        en: "A temporary error occurred while handling the payment method during the cancel.",
    },
    CodeInfo {
        name: "FAILED_PARTIAL_REFUND",
        status: 500,
        kind: CodeKind::Error,
        ko: "은행 점검, 해약 계좌 등의 사유로 부분 환불이 실패했습니다.",
        en: "The partial refund failed (bank maintenance, closed account or similar).",
    },
    CodeInfo {
        name: "FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING",
        status: 500,
        kind: CodeKind::Error,
        ko: "결제가 완료되지 않았어요. 다시 시도해주세요.",
        en: "The payment was not completed. Please try again.",
    },
    CodeInfo {
        name: "FAILED_REFUND_PROCESS",
        status: 500,
        kind: CodeKind::Error,
        ko: "은행 응답시간 지연이나 일시적인 오류로 환불요청에 실패했습니다.",
        en: "The refund request failed because of a bank delay or a temporary error.",
    },
    CodeInfo {
        name: "FDS_ERROR",
        status: 403,
        kind: CodeKind::Declined,
        ko: "[토스페이먼츠] 위험거래가 감지되어 결제가 제한됩니다. 발송된 문자에 포함된 링크를 통해 본인인증 후 결제가 가능합니다.",
        en: "A risky transaction was detected and the payment is restricted. Verify your identity through the link sent by text message.",
    },
    CodeInfo {
        name: "FORBIDDEN_BANK_REFUND_REQUEST",
        status: 400,
        kind: CodeKind::Declined,
        ko: "고객 계좌가 입금이 되지 않는 상태입니다.",
        en: "The customer's account cannot receive deposits.",
    },
    CodeInfo {
        name: "FORBIDDEN_CONSECUTIVE_REQUEST",
        status: 403,
        kind: CodeKind::Throttled,
        ko: "반복적인 요청은 허용되지 않습니다. 잠시 후 다시 시도해주세요.",
        en: "Repeated requests are not allowed. Please try again later.",
    },
    CodeInfo {
        name: "FORBIDDEN_REQUEST",
        status: 403,
        kind: CodeKind::Invalid,
        ko: "허용되지 않은 요청입니다.",
        en: "The request is not allowed.",
    },
    CodeInfo {
        name: "GAZUA_BODY_TIMEOUT",
        status: 408,
        kind: CodeKind::Invalid,
        ko: "The request body did not arrive in time.",
        en: "The request body did not arrive in time.",
    },
    CodeInfo {
        name: "GAZUA_BODY_TOO_LARGE",
        status: 413,
        kind: CodeKind::Invalid,
        ko: "The request body is too large.",
        en: "The request body is too large.",
    },
    CodeInfo {
        name: "GAZUA_INVALID_DIRECTIVE",
        status: 400,
        kind: CodeKind::Invalid,
        ko: "The Gazua directive could not be parsed.",
        en: "The Gazua directive could not be parsed.",
    },
    CodeInfo {
        name: "GAZUA_LEDGER_UNAVAILABLE",
        status: 503,
        kind: CodeKind::Error,
        ko: "The shared ledger (Redis) cannot be reached; retry later.",
        en: "The shared ledger (Redis) cannot be reached; retry later.",
    },
    CodeInfo {
        name: "GAZUA_MALFORMED_BODY",
        status: 400,
        kind: CodeKind::Invalid,
        ko: "The request body breaks HTTP framing.",
        en: "The request body breaks HTTP framing.",
    },
    CodeInfo {
        name: "IDEMPOTENT_REQUEST_PROCESSING",
        status: 409,
        kind: CodeKind::Invalid,
        ko: "이전 멱등 요청이 처리중입니다.",
        en: "The previous request with this Idempotency-Key is still being processed.",
    },
    CodeInfo {
        name: "INCORRECT_BASIC_AUTH_FORMAT",
        status: 403,
        kind: CodeKind::Invalid,
        ko: "잘못된 요청입니다. ':' 를 포함해 인코딩해주세요.",
        en: "Invalid request. Encode the key including the ':'.",
    },
    CodeInfo {
        name: "INVALID_ACCOUNT_INFO_RE_REGISTER",
        status: 400,
        kind: CodeKind::Declined,
        ko: "유효하지 않은 계좌입니다. 계좌 재등록 후 시도해주세요.",
        en: "The account is invalid. Register the account again and retry.",
    },
    CodeInfo {
        name: "INVALID_API_KEY",
        status: 400,
        kind: CodeKind::Invalid,
        ko: "잘못된 시크릿키 연동 정보 입니다.",
        en: "The secret key is invalid.",
    },
    CodeInfo {
        name: "INVALID_AUTHORIZE_AUTH",
        status: 400,
        kind: CodeKind::Declined,
        ko: "유효하지 않은 인증 방식입니다.",
        en: "The authentication method is invalid.",
    },
    CodeInfo {
        name: "INVALID_BANK",
        status: 400,
        kind: CodeKind::Declined,
        ko: "유효하지 않은 은행입니다.",
        en: "The bank is invalid.",
    },
    CodeInfo {
        name: "INVALID_BILL_KEY_REQUEST",
        status: 400,
        kind: CodeKind::Invalid,
        ko: "빌링 인증이 완료되지 않았거나 유효하지 않은 빌링 거래입니다.",
        en: "The billing authentication is not complete or the billing transaction is invalid.",
    },
    CodeInfo {
        name: "INVALID_CARD_EXPIRATION",
        status: 400,
        kind: CodeKind::Declined,
        ko: "카드 정보를 다시 확인해주세요. (유효기간)",
        en: "Check the card details again (expiration date).",
    },
    CodeInfo {
        name: "INVALID_CARD_INSTALLMENT_PLAN",
        status: 400,
        kind: CodeKind::Declined,
        ko: "할부 개월 정보가 잘못되었습니다.",
        en: "The installment plan is invalid.",
    },
    CodeInfo {
        name: "INVALID_CARD_LOST_OR_STOLEN",
        status: 400,
        kind: CodeKind::Declined,
        ko: "분실 혹은 도난 카드입니다.",
        en: "The card was reported lost or stolen.",
    },
    CodeInfo {
        name: "INVALID_CARD_NUMBER",
        status: 400,
        kind: CodeKind::Declined,
        ko: "카드번호를 다시 확인해주세요.",
        en: "Check the card number again.",
    },
    CodeInfo {
        name: "INVALID_CUSTOMER_KEY",
        status: 400,
        kind: CodeKind::Invalid,
        ko: "고객 키는 영문 대소문자, 숫자, 특수문자(-, _, =, ., @)로 2자 이상 255자 이하여야 합니다.",
        en: "The customerKey must be 2 to 255 characters of letters, digits and - _ = . @.",
    },
    CodeInfo {
        name: "INVALID_IDEMPOTENCY_KEY",
        status: 400,
        kind: CodeKind::Invalid,
        ko: "멱등키는 최대 300자까지 입력할 수 있습니다.",
        en: "The Idempotency-Key can be at most 300 characters.",
    },
    CodeInfo {
        name: "INVALID_PASSWORD",
        status: 403,
        kind: CodeKind::Declined,
        ko: "결제 비밀번호가 일치하지 않습니다.",
        en: "The payment password does not match.",
    },
    CodeInfo {
        name: "INVALID_REFUND_ACCOUNT_INFO",
        status: 400,
        kind: CodeKind::Declined,
        ko: "환불 계좌번호와 예금주명이 일치하지 않습니다.",
        en: "The refund account number and the holder name do not match.",
    },
    CodeInfo {
        name: "INVALID_REFUND_ACCOUNT_NUMBER",
        status: 400,
        kind: CodeKind::Declined,
        ko: "잘못된 환불 계좌번호입니다.",
        en: "The refund account number is invalid.",
    },
    CodeInfo {
        name: "INVALID_REJECT_CARD",
        status: 400,
        kind: CodeKind::Declined,
        ko: "카드 사용이 거절되었습니다. 카드사 문의가 필요합니다.",
        en: "The card was refused. Contact the card company.",
    },
    CodeInfo {
        name: "INVALID_REQUEST",
        status: 400,
        kind: CodeKind::Invalid,
        ko: "잘못된 요청입니다.",
        en: "The request is invalid.",
    },
    CodeInfo {
        name: "INVALID_STOPPED_CARD",
        status: 400,
        kind: CodeKind::Declined,
        ko: "정지된 카드 입니다.",
        en: "The card is suspended.",
    },
    CodeInfo {
        name: "INVALID_TEST_CODE",
        status: 400,
        kind: CodeKind::Invalid,
        ko: "테스트 코드가 올바르지 않습니다.",
        en: "The test code is invalid.",
    },
    CodeInfo {
        name: "INVALID_UNREGISTERED_SUBMALL",
        status: 400,
        kind: CodeKind::Invalid,
        ko: "등록되지 않은 서브몰입니다. 서브몰이 없는 가맹점이라면 안심클릭이나 ISP 결제가 필요합니다.",
        en: "The sub-mall is not registered.",
    },
    CodeInfo {
        name: "METHOD_NOT_ALLOWED",
        status: 405,
        kind: CodeKind::Invalid,
        ko: "허용되지 않은 HTTP 메서드입니다.",
        en: "The HTTP method is not allowed on this path.",
    },
    CodeInfo {
        name: "NOT_ALLOWED_PARTIAL_REFUND",
        status: 403,
        kind: CodeKind::Declined,
        ko: "에스크로 주문, 현금 카드 결제일 때는 부분 환불이 불가합니다.",
        en: "Partial refunds are not allowed for escrow orders and cash-card payments.",
    },
    CodeInfo {
        name: "NOT_ALLOWED_PARTIAL_REFUND_WAITING_DEPOSIT",
        status: 403,
        kind: CodeKind::Declined,
        ko: "입금 대기중인 결제는 부분 환불이 불가합니다.",
        en: "A payment waiting for its deposit cannot be partially refunded.",
    },
    CodeInfo {
        name: "NOT_ALLOWED_POINT_USE",
        status: 400,
        kind: CodeKind::Declined,
        ko: "포인트 사용이 불가한 카드로 카드 포인트 결제에 실패했습니다.",
        en: "The card does not allow paying with card points.",
    },
    CodeInfo {
        name: "NOT_AVAILABLE_BANK",
        status: 403,
        kind: CodeKind::Declined,
        ko: "은행 서비스 시간이 아닙니다.",
        en: "The bank service is not available at this time.",
    },
    CodeInfo {
        name: "NOT_AVAILABLE_PAYMENT",
        status: 400,
        kind: CodeKind::Declined,
        ko: "결제가 불가능한 시간대입니다.",
        en: "Payments are not available at this time.",
    },
    CodeInfo {
        name: "NOT_CANCELABLE_AMOUNT",
        status: 403,
        kind: CodeKind::Invalid,
        ko: "취소 할 수 없는 금액 입니다.",
        en: "The amount cannot be canceled.",
    },
    CodeInfo {
        name: "NOT_CANCELABLE_PAYMENT",
        status: 403,
        kind: CodeKind::Declined,
        ko: "취소 할 수 없는 결제 입니다.",
        en: "The payment cannot be canceled.",
    },
    CodeInfo {
        name: "NOT_CANCELABLE_PAYMENT_FOR_DORMANT_USER",
        status: 403,
        kind: CodeKind::Declined,
        ko: "휴면 처리된 회원의 결제는 취소할 수 없습니다.",
        en: "A dormant member's payment cannot be canceled.",
    },
    CodeInfo {
        name: "NOT_FOUND",
        status: 404,
        kind: CodeKind::Invalid,
        ko: "존재하지 않는 정보 입니다.",
        en: "The requested resource does not exist.",
    },
    CodeInfo {
        name: "NOT_FOUND_BILLING",
        status: 404,
        kind: CodeKind::Invalid,
        ko: "존재하지 않는 빌링 정보 입니다.",
        en: "The billing key does not exist.",
    },
    CodeInfo {
        name: "NOT_FOUND_PAYMENT",
        status: 404,
        kind: CodeKind::Invalid,
        ko: "존재하지 않는 결제 정보 입니다.",
        en: "The payment does not exist.",
    },
    CodeInfo {
        name: "NOT_FOUND_PAYMENT_SESSION",
        status: 404,
        kind: CodeKind::Invalid,
        ko: "결제 시간이 만료되어 결제 진행 데이터가 존재하지 않습니다.",
        en: "The payment session has expired; no payment data exists.",
    },
    CodeInfo {
        name: "NOT_FOUND_TERMINAL_ID",
        status: 400,
        kind: CodeKind::Error,
        ko: "단말기번호(Terminal Id)가 없습니다. 토스페이먼츠로 문의 바랍니다.",
        en: "The terminal id is missing. Contact the PG.",
    },
    CodeInfo {
        name: "NOT_MATCHES_CUSTOMER_KEY",
        status: 400,
        kind: CodeKind::Invalid,
        ko: "빌링 인증 고객키와 결제 요청 고객키가 일치하지 않습니다.",
        en: "The customerKey does not match the one the billing key was issued for.",
    },
    CodeInfo {
        name: "NOT_MATCHES_REFUNDABLE_AMOUNT",
        status: 400,
        kind: CodeKind::Invalid,
        ko: "잔액 결과가 일치하지 않습니다.",
        en: "The refundable amount does not match the balance.",
    },
    CodeInfo {
        name: "NOT_REGISTERED_BUSINESS",
        status: 400,
        kind: CodeKind::Invalid,
        ko: "등록되지 않은 사업자 번호입니다.",
        en: "The business registration number is not registered.",
    },
    CodeInfo {
        name: "NOT_SUPPORTED_INSTALLMENT_PLAN_CARD_OR_MERCHANT",
        status: 400,
        kind: CodeKind::Declined,
        ko: "할부가 지원되지 않는 카드 또는 가맹점 입니다.",
        en: "Installments are not supported for this card or merchant.",
    },
    CodeInfo {
        name: "NOT_SUPPORTED_MONTHLY_INSTALLMENT_PLAN",
        status: 400,
        kind: CodeKind::Declined,
        ko: "할부가 지원되지 않는 카드입니다.",
        en: "The card does not support installments.",
    },
    CodeInfo {
        name: "NOT_SUPPORTED_MONTHLY_INSTALLMENT_PLAN_BELOW_AMOUNT",
        status: 400,
        kind: CodeKind::Declined,
        ko: "5만원 이하의 결제는 할부가 불가능해서 결제에 실패했습니다.",
        en: "Payments of 50,000 KRW or less cannot use installments.",
    },
    CodeInfo {
        name: "PROVIDER_ERROR",
        status: 400,
        kind: CodeKind::Error,
        ko: "일시적인 오류가 발생했습니다. 잠시 후 다시 시도해주세요.",
        en: "A temporary error occurred. Please try again later.",
    },
    CodeInfo {
        name: "REFUND_REJECTED",
        status: 400,
        kind: CodeKind::Declined,
        ko: "환불이 거절됐습니다. 결제사에 문의 부탁드립니다.",
        en: "The refund was rejected. Contact the payment provider.",
    },
    CodeInfo {
        name: "REJECT_ACCOUNT_PAYMENT",
        status: 403,
        kind: CodeKind::Declined,
        ko: "잔액부족으로 결제에 실패했습니다.",
        en: "The payment failed: insufficient account balance.",
    },
    CodeInfo {
        name: "REJECT_CARD_COMPANY",
        status: 403,
        kind: CodeKind::Declined,
        ko: "결제 승인이 거절되었습니다.",
        en: "The card company refused the payment.",
    },
    CodeInfo {
        name: "REJECT_CARD_PAYMENT",
        status: 403,
        kind: CodeKind::Declined,
        ko: "한도초과 혹은 잔액부족으로 결제에 실패했습니다.",
        en: "Payment failed: card limit exceeded or insufficient balance.",
    },
    CodeInfo {
        name: "REJECT_TOSSPAY_INVALID_ACCOUNT",
        status: 403,
        kind: CodeKind::Declined,
        ko: "선택하신 출금 계좌가 출금이체 등록이 되어 있지 않아요. 계좌를 다시 등록해 주세요.",
        en: "The selected withdrawal account is not registered for transfers. Register the account again.",
    },
    CodeInfo {
        name: "RESTRICTED_TRANSFER_ACCOUNT",
        status: 400,
        kind: CodeKind::Declined,
        ko: "계좌는 등록 후 12시간 뒤부터 결제할 수 있습니다. 관련 정책은 해당 은행으로 문의해주세요.",
        en: "An account can be used for payments 12 hours after it is registered.",
    },
    CodeInfo {
        name: "UNAPPROVED_ORDER_ID",
        status: 400,
        kind: CodeKind::Invalid,
        ko: "아직 승인되지 않은 주문번호입니다.",
        en: "The orderId has not been approved yet.",
    },
    CodeInfo {
        name: "UNAUTHORIZED_KEY",
        status: 401,
        kind: CodeKind::Invalid,
        ko: "인증되지 않은 시크릿 키 혹은 클라이언트 키 입니다.",
        en: "The secret key or client key is not authorized.",
    },
    CodeInfo {
        name: "UNKNOWN_ERROR",
        status: 500,
        kind: CodeKind::Error,
        ko: "알 수 없는 에러가 발생했습니다.",
        en: "An unknown error occurred.",
    },
    CodeInfo {
        name: "UNKNOWN_PAYMENT_ERROR",
        status: 500,
        kind: CodeKind::Error,
        ko: "결제에 실패했어요. 같은 문제가 반복된다면 은행이나 카드사로 문의해주세요.",
        en: "The payment failed. If this keeps happening, contact your bank or card company.",
    },
];

/// The catalog entry for `name`, if the PG documents it.
pub fn lookup(name: &str) -> Option<&'static CodeInfo> {
    CATALOG
        .binary_search_by(|c| c.name.cmp(name))
        .ok()
        .map(|i| &CATALOG[i])
}

/// A catalog entry by a name known to be in it (checked by the tests).
fn known(name: &str) -> &'static CodeInfo {
    match lookup(name) {
        Some(info) => info,
        None => unreachable!("code {name} is missing from the catalog"),
    }
}

/// The code `route` answers for an outcome of `kind` that names none; `None` where that outcome
/// does not apply to the route (an inquiry or a create cannot be declined; unknown routes answer
/// 404/405 whatever was decided). Follows the reference's per-route tables.
pub fn default_code(route: Route, kind: CodeKind) -> Option<&'static CodeInfo> {
    let name = match (route, kind) {
        (Route::Unknown | Route::Custom, _) | (_, CodeKind::Invalid) => return None,
        (_, CodeKind::Throttled) => "FORBIDDEN_CONSECUTIVE_REQUEST",
        (Route::Confirm | Route::BillingCharge, CodeKind::Declined) => "REJECT_CARD_PAYMENT",
        // Registering a card is refused by the card company; limits and balance do not apply.
        (Route::BillingIssue, CodeKind::Declined) => "REJECT_CARD_COMPANY",
        (Route::Cancel, CodeKind::Declined) => "NOT_CANCELABLE_PAYMENT",
        (Route::Create | Route::Inquiry | Route::VirtualAccount, CodeKind::Declined) => {
            return None;
        }
        // The inquiry table lists only this 500.
        (Route::Inquiry, CodeKind::Error) => "FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING",
        (_, CodeKind::Error) => "FAILED_INTERNAL_SYSTEM_PROCESSING",
    };
    Some(known(name))
}

/// The position of `info` in [`CATALOG`], for per-code metric handles resolved at start. Found
/// from the entry's address, so nothing is hashed per request; an entry that is not part of the
/// catalog (impossible for one obtained from [`lookup`]) gives `CATALOG.len()`.
pub fn index_of(info: &'static CodeInfo) -> usize {
    let base = CATALOG.as_ptr() as usize;
    let at = info as *const CodeInfo as usize;
    let size = std::mem::size_of::<CodeInfo>();
    match at.checked_sub(base) {
        Some(offset) if offset % size == 0 && offset / size < CATALOG.len() => offset / size,
        _ => CATALOG.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gazuas_own_codes_answer_in_english_whatever_the_language() {
        let own: Vec<&CodeInfo> = CATALOG.iter().filter(|c| c.is_gazuas_own()).collect();
        assert!(
            own.len() >= 2,
            "GAZUA_BODY_TOO_LARGE and GAZUA_INVALID_DIRECTIVE"
        );
        for code in own {
            assert_eq!(code.message(Lang::Ko), code.en, "{}", code.name);
            assert!(code.en.is_ascii(), "{}: {}", code.name, code.en);
        }
    }

    #[test]
    fn catalog_is_sorted_and_unique() {
        for pair in CATALOG.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} before {}",
                pair[0].name,
                pair[1].name
            );
        }
    }

    #[test]
    fn every_code_is_found_at_its_index() {
        for (i, info) in CATALOG.iter().enumerate() {
            let found = lookup(info.name).expect("listed code is found");
            assert!(std::ptr::eq(found, info));
            assert_eq!(index_of(found), i);
            assert!((400..=599).contains(&info.status), "{}", info.name);
            assert!(!info.ko.is_empty() && !info.en.is_empty());
        }
        assert!(lookup("NO_SUCH_CODE").is_none());
        static STRAY: CodeInfo = CodeInfo {
            name: "STRAY",
            status: 400,
            kind: CodeKind::Invalid,
            ko: "x",
            en: "x",
        };
        assert_eq!(index_of(&STRAY), CATALOG.len());
    }

    #[test]
    fn route_defaults_follow_the_reference() {
        let name = |r, k| default_code(r, k).map(|c| (c.name, c.status));
        use CodeKind::*;
        assert_eq!(
            name(Route::Confirm, Declined),
            Some(("REJECT_CARD_PAYMENT", 403))
        );
        assert_eq!(
            name(Route::Confirm, Error),
            Some(("FAILED_INTERNAL_SYSTEM_PROCESSING", 500))
        );
        assert_eq!(
            name(Route::Confirm, Throttled),
            Some(("FORBIDDEN_CONSECUTIVE_REQUEST", 403))
        );
        assert_eq!(
            name(Route::Cancel, Declined),
            Some(("NOT_CANCELABLE_PAYMENT", 403))
        );
        assert_eq!(name(Route::Inquiry, Declined), None);
        assert_eq!(name(Route::Create, Declined), None);
        assert_eq!(
            name(Route::Inquiry, Error),
            Some(("FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING", 500))
        );
        assert_eq!(
            name(Route::BillingCharge, Declined),
            Some(("REJECT_CARD_PAYMENT", 403))
        );
        assert_eq!(
            name(Route::BillingIssue, Declined),
            Some(("REJECT_CARD_COMPANY", 403))
        );
        for kind in [Declined, Error, Throttled, Invalid] {
            assert_eq!(name(Route::Unknown, kind), None);
        }
        for route in Route::ALL {
            assert_eq!(default_code(route, Invalid), None);
        }
    }
}
