//! The PG's error-code catalog (Toss Payments core API v1): each code's HTTP status, kind and
//! messages in Korean and English. STUB: a few codes; the full list replaces it.

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

pub static CATALOG: &[CodeInfo] = &[
    CodeInfo {
        name: "FAILED_INTERNAL_SYSTEM_PROCESSING",
        status: 500,
        kind: CodeKind::Error,
        ko: "내부 시스템 처리 작업이 실패했습니다. 잠시 후 다시 시도해주세요.",
        en: "Internal system processing failed. Please try again later.",
    },
    CodeInfo {
        name: "FORBIDDEN_CONSECUTIVE_REQUEST",
        status: 403,
        kind: CodeKind::Throttled,
        ko: "반복적인 요청은 허용되지 않습니다. 잠시 후 다시 시도해주세요.",
        en: "Repeated requests are not allowed. Please try again later.",
    },
    CodeInfo {
        name: "INVALID_REQUEST",
        status: 400,
        kind: CodeKind::Invalid,
        ko: "잘못된 요청입니다.",
        en: "The request is invalid.",
    },
    CodeInfo {
        name: "PROVIDER_ERROR",
        status: 400,
        kind: CodeKind::Error,
        ko: "일시적인 오류가 발생했습니다. 잠시 후 다시 시도해주세요.",
        en: "A temporary error occurred. Please try again later.",
    },
    CodeInfo {
        name: "REJECT_CARD_PAYMENT",
        status: 403,
        kind: CodeKind::Declined,
        ko: "한도초과 혹은 잔액부족으로 결제에 실패했습니다.",
        en: "Payment failed: card limit exceeded or insufficient balance.",
    },
];

/// The catalog entry for `name`, if the PG documents it.
pub fn lookup(name: &str) -> Option<&'static CodeInfo> {
    CATALOG.iter().find(|c| c.name == name)
}

/// STUB until the catalog lands.
pub fn default_code(route: crate::route::Route, kind: CodeKind) -> Option<&'static CodeInfo> {
    let _ = route;
    match kind {
        CodeKind::Declined => lookup("REJECT_CARD_PAYMENT"),
        CodeKind::Error => lookup("FAILED_INTERNAL_SYSTEM_PROCESSING"),
        CodeKind::Throttled => lookup("FORBIDDEN_CONSECUTIVE_REQUEST"),
        CodeKind::Invalid => lookup("INVALID_REQUEST"),
    }
}

/// The position of `info` in [`CATALOG`], for per-code metric handles.
pub fn index_of(info: &'static CodeInfo) -> usize {
    (info as *const CodeInfo as usize - CATALOG.as_ptr() as usize) / std::mem::size_of::<CodeInfo>()
}
