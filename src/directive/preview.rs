//! `gazua preview EXPR`: samples a latency expression and describes what it gives, so a
//! person can check an expression before a load test relies on it.

use std::fmt::Write;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;

use super::Latency;
use super::duration::Canonical;

/// Buckets in the histogram.
const BUCKETS: usize = 20;
/// Width of the longest bar, in `#`.
const BAR: usize = 40;
/// Above this ratio of largest to smallest sample (1.5 decades) the buckets are log-spaced,
/// else the tail would squash the body into one bucket.
const LOG_SPAN: f64 = 31.622_776_601_683_793;

/// Percentiles and a text histogram of `samples` draws from `latency` (each clamped to `max`,
/// as serving does), seeded by `seed` so a preview can be repeated.
pub fn preview(latency: &Latency, samples: usize, seed: u64, max: Duration) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "latency  {latency}");
    let _ = writeln!(
        out,
        "samples  {samples} (seed {seed}, each clamped to {})",
        Canonical(max)
    );
    // Where a percentiles(…) goes past its given points is a choice Gazua made: say it.
    for tail in latency.tails() {
        let _ = writeln!(out, "tail     {tail}");
    }
    if samples == 0 {
        return out;
    }
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut ms: Vec<f64> = (0..samples)
        .map(|_| latency.sample(&mut rng).min(max).as_secs_f64() * 1000.0)
        .collect();
    ms.sort_by(f64::total_cmp);
    let clamped = ms
        .iter()
        .rev()
        .take_while(|v| **v >= max.as_secs_f64() * 1000.0)
        .count();

    let mean = ms.iter().sum::<f64>() / ms.len() as f64;
    let _ = writeln!(out);
    for (label, value) in [
        ("min", ms[0]),
        ("mean", mean),
        ("p1", quantile(&ms, 0.01)),
        ("p10", quantile(&ms, 0.1)),
        ("p50", quantile(&ms, 0.5)),
        ("p90", quantile(&ms, 0.9)),
        ("p99", quantile(&ms, 0.99)),
        ("p99.9", quantile(&ms, 0.999)),
        ("max", ms[ms.len() - 1]),
    ] {
        let _ = writeln!(out, "  {label:<6}{value:>12.3} ms");
    }
    if clamped > 0 {
        let _ = writeln!(
            out,
            "  {clamped} samples ({:.2}%) reached the clamp",
            percent(clamped, samples)
        );
    }
    let _ = writeln!(out);
    histogram(&mut out, &ms);
    out
}

/// The nearest-rank quantile of sorted values.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn percent(count: usize, total: usize) -> f64 {
    100.0 * count as f64 / total as f64
}

/// Rows `from – to | bar count percent`; samples of 0 get a row of their own when the
/// buckets are log-spaced (0 has no logarithm).
fn histogram(out: &mut String, sorted: &[f64]) {
    let (lowest, highest) = (sorted[0], sorted[sorted.len() - 1]);
    let zeros = sorted.iter().take_while(|v| **v <= 0.0).count();
    let positive = &sorted[zeros..];
    let log = positive.first().is_some_and(|low| highest / low > LOG_SPAN);

    let mut rows: Vec<(f64, f64, usize)> = Vec::with_capacity(BUCKETS + 1);
    if highest == lowest {
        rows.push((lowest, highest, sorted.len()));
    } else if log {
        if zeros > 0 {
            rows.push((0.0, 0.0, zeros));
        }
        let low = positive[0];
        let step = (highest / low).ln() / BUCKETS as f64;
        let edges: Vec<f64> = (0..=BUCKETS)
            .map(|i| low * (step * i as f64).exp())
            .collect();
        push_rows(&mut rows, &edges, positive);
    } else {
        let step = (highest - lowest) / BUCKETS as f64;
        let edges: Vec<f64> = (0..=BUCKETS).map(|i| lowest + step * i as f64).collect();
        push_rows(&mut rows, &edges, sorted);
    }

    let _ = writeln!(
        out,
        "  histogram ({}, ms)",
        if log { "log-spaced" } else { "linear" }
    );
    let tallest = rows.iter().map(|r| r.2).max().unwrap_or(1).max(1);
    for (from, to, count) in rows {
        let bar = "#".repeat((count * BAR).div_ceil(tallest));
        let _ = writeln!(
            out,
            "  {from:>10.3} – {to:<10.3} |{bar:<BAR$} {count:>8} {:>6.2}%",
            percent(count, sorted.len())
        );
    }
}

/// Counts sorted `values` into the buckets between consecutive `edges`; the last bucket
/// includes its upper edge.
fn push_rows(rows: &mut Vec<(f64, f64, usize)>, edges: &[f64], values: &[f64]) {
    let mut start = 0;
    for (i, pair) in edges.windows(2).enumerate() {
        let last = i == edges.len() - 2;
        let end = if last {
            values.len()
        } else {
            start + values[start..].partition_point(|v| *v < pair[1])
        };
        rows.push((pair[0], pair[1], end - start));
        start = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(text: &str) -> usize {
        text.lines()
            .filter(|l| l.contains('|'))
            .map(|l| {
                l.split_whitespace()
                    .rev()
                    .nth(1)
                    .and_then(|n| n.parse::<usize>().ok())
                    .expect("a count")
            })
            .sum()
    }

    #[test]
    fn shows_percentiles_and_a_histogram_of_every_sample() {
        let latency = Latency::parse("lognormal(p50=80ms, p99=900ms)").unwrap();
        let text = preview(&latency, 10_000, 7, Duration::from_secs(60));
        for label in [
            "min",
            "mean",
            "p50",
            "p90",
            "p99",
            "p99.9",
            "max",
            "log-spaced",
        ] {
            assert!(text.contains(label), "{label} missing in\n{text}");
        }
        assert_eq!(counts(&text), 10_000, "{text}");
        let rows = text.lines().filter(|l| l.contains('|')).count();
        assert_eq!(rows, BUCKETS);
        // The same seed gives the same preview.
        assert_eq!(text, preview(&latency, 10_000, 7, Duration::from_secs(60)));
    }

    #[test]
    fn shows_how_percentiles_continue_past_their_points() {
        let latency = Latency::parse("percentiles(p50=80ms, p90=200ms, p99=900ms)").unwrap();
        let text = preview(&latency, 10_000, 7, Duration::from_secs(60));
        assert!(
            text.contains("tail     below p50=80ms: log-normal through p50 and p90 (p5 "),
            "{text}"
        );
        assert!(
            text.contains("tail     above p99=900ms: the last segment continued (no max=)"),
            "{text}"
        );
        // The sampled minimum is a believable latency, not a microsecond.
        let min: f64 = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("min"))
            .and_then(|v| v.trim().strip_suffix(" ms"))
            .and_then(|v| v.trim().parse().ok())
            .expect("a min row");
        assert!(min > 2.0, "{text}");

        let latency = Latency::parse("percentiles(p50=80ms, min=10ms, max=1s)").unwrap();
        let text = preview(&latency, 0, 7, Duration::from_secs(60));
        assert!(text.contains("below p50=80ms: from min=10ms up"), "{text}");
        assert!(text.contains("above p50=80ms: up to max=1s"), "{text}");
        let text = preview(
            &Latency::parse("120ms").unwrap(),
            0,
            7,
            Duration::from_secs(1),
        );
        assert!(!text.contains("tail"), "{text}");
    }

    #[test]
    fn narrow_ranges_are_linear_and_zeros_get_a_row() {
        let latency = Latency::parse("uniform(100ms, 120ms)").unwrap();
        let text = preview(&latency, 1000, 1, Duration::from_secs(60));
        assert!(text.contains("linear"), "{text}");
        assert_eq!(counts(&text), 1000);

        let latency = Latency::parse("50% 0 + 50% exponential(mean=100ms)").unwrap();
        let text = preview(&latency, 1000, 1, Duration::from_secs(60));
        assert!(text.contains("log-spaced"), "{text}");
        assert_eq!(counts(&text), 1000);
    }

    #[test]
    fn clamps_like_serving_and_handles_constants() {
        let latency = Latency::parse("5s").unwrap();
        let text = preview(&latency, 100, 1, Duration::from_secs(2));
        assert!(text.contains("2000.000 ms"), "{text}");
        assert!(
            text.contains("100 samples (100.00%) reached the clamp"),
            "{text}"
        );
        assert_eq!(counts(&text), 100);
        assert!(preview(&latency, 0, 1, Duration::from_secs(2)).contains("samples  0"));
    }
}
