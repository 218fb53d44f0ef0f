//! Durations (SPEC §2.1). STUB.

use std::time::Duration;

use super::DirectiveError;

pub fn parse_duration(text: &str) -> Result<Duration, DirectiveError> {
    let t = text.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else {
        return Err(DirectiveError::new(format!(
            "expected a duration such as 120ms at '{t}'"
        )));
    };
    let n: f64 = num
        .parse()
        .map_err(|_| DirectiveError::new(format!("expected a duration such as 120ms at '{t}'")))?;
    Ok(Duration::from_secs_f64(n * scale))
}
