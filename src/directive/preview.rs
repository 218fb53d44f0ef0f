//! `gazua preview EXPR`: samples a latency expression and describes what it gives. STUB.

use super::Latency;

/// Percentiles and a text histogram of `samples` draws from `latency`, seeded by `seed`.
pub fn preview(latency: &Latency, samples: usize, seed: u64, max: std::time::Duration) -> String {
    let _ = (samples, seed, max);
    format!("{latency}\n")
}
