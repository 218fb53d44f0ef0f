//! Deciding: route + the request's directives + the profile + an RNG → one [`Decision`], the
//! only value that crosses from deciding to answering. Synchronous and pure given its RNG.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;

use crate::directive::{Fault, Outcome};

/// Which source decided the outcome (SPEC §2.5), reported in `X-Gazua-Decision`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Header,
    Tag,
    Rule,
    Phase,
    Route,
    Profile,
    Flag,
    Builtin,
}

/// Everything decided for one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// `Declined` and `Error` always name their code here (the route's default filled in).
    pub outcome: Outcome,
    /// Total time from arrival to the first response byte, already clamped to `--max-latency`.
    pub latency: Duration,
    /// The transport fault; `lost` outcomes keep theirs inside the outcome.
    pub fault: Fault,
    /// Raw HTTP status override.
    pub status: Option<StatusCode>,
    pub profile: Arc<str>,
    pub phase: Option<Arc<str>>,
    pub source: Source,
}
