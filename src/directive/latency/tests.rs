//! Tests of `directive/latency.rs`.

use super::*;
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// `n` sorted samples in milliseconds, from a fixed seed: the statistical tests below are
/// deterministic, and their bounds are several standard errors wide.
fn samples(text: &str, n: usize) -> Vec<f64> {
    let latency = Latency::parse(text).unwrap();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(0x6a5a);
    let mut v: Vec<f64> = (0..n)
        .map(|_| latency.sample(&mut rng).as_secs_f64() * 1000.0)
        .collect();
    v.sort_by(f64::total_cmp);
    v
}

fn q(sorted: &[f64], p: f64) -> f64 {
    sorted[((p * sorted.len() as f64) as usize).min(sorted.len() - 1)]
}

#[track_caller]
fn near(actual: f64, expected: f64, relative: f64) {
    assert!(
        (actual - expected).abs() <= expected.abs() * relative,
        "{actual} is not within {}% of {expected}",
        relative * 100.0
    );
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn err(text: &str) -> String {
    Latency::parse(text).unwrap_err().message
}

const N: usize = 200_000;

#[test]
fn fixed() {
    assert_eq!(Latency::parse("120ms").unwrap(), Latency::fixed(ms(120)));
    assert_eq!(
        Latency::parse("0").unwrap().as_fixed(),
        Some(Duration::ZERO)
    );
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
    assert_eq!(Latency::parse("1.5s").unwrap().sample(&mut rng), ms(1500));
}

#[test]
fn uniform_covers_its_bounds_evenly() {
    let v = samples("uniform(50ms, 200ms)", N);
    assert!(v[0] >= 50.0 && v[N - 1] <= 200.0);
    near(q(&v, 0.1), 65.0, 0.01);
    near(q(&v, 0.5), 125.0, 0.01);
    near(q(&v, 0.9), 185.0, 0.01);
    assert_eq!(samples("uniform(7ms, 7ms)", 10), vec![7.0; 10]);
}

#[test]
fn normal_matches_its_quantiles() {
    let v = samples("normal(mean=100ms, sd=20ms)", N);
    near(q(&v, 0.5), 100.0, 0.01);
    near(q(&v, 0.841_344_7), 120.0, 0.01);
    near(q(&v, 0.158_655_3), 80.0, 0.015);
}

#[test]
fn normal_is_truncated_at_zero_by_rejection() {
    // Truncation keeps the normal's shape above 0: no spike of zeros.
    let v = samples("normal(mean=10ms, sd=20ms)", N);
    assert!(v[0] >= 0.0);
    let zeros = v.iter().filter(|x| **x == 0.0).count();
    assert!(zeros < 10, "{zeros} zeros");
    let standard = Normal::standard();
    let below = standard.cdf(-0.5);
    for p in [0.25, 0.5, 0.9] {
        let expected = 10.0 + 20.0 * standard.inverse_cdf(below + p * (1.0 - below));
        near(q(&v, p), expected, 0.02);
    }
}

#[test]
fn lognormal_fitted_to_two_percentiles_reproduces_them() {
    let v = samples("lognormal(p50=80ms, p99=900ms)", N);
    near(q(&v, 0.5), 80.0, 0.015);
    near(q(&v, 0.99), 900.0, 0.03);
    // Any two percentiles, in any order.
    let v = samples("lognormal(p99.9=2s, p90=200ms)", N);
    near(q(&v, 0.9), 200.0, 0.015);
    near(q(&v, 0.999), 2000.0, 0.06);
    let v = samples("lognormal(p1=10ms, p99.99=1s)", N);
    near(q(&v, 0.01), 10.0, 0.03);
    let standard = Normal::standard();
    let (z1, z9999) = (standard.inverse_cdf(0.01), standard.inverse_cdf(0.9999));
    near(
        q(&v, 0.5),
        10.0 * (100f64.ln() * -z1 / (z9999 - z1)).exp(),
        0.015,
    );
}

#[test]
fn lognormal_by_median_and_sigma() {
    let v = samples("lognormal(sigma=0.6, median=80ms)", N);
    near(q(&v, 0.5), 80.0, 0.015);
    near(q(&v, 0.841_344_7), 80.0 * 0.6f64.exp(), 0.015);
    assert_eq!(samples("lognormal(median=80ms, sigma=0)", 3), vec![80.0; 3]);
}

#[test]
fn exponential_has_its_mean() {
    let v = samples("exponential(mean=100ms)", N);
    near(mean(&v), 100.0, 0.01);
    near(q(&v, 0.5), 100.0 * 2f64.ln(), 0.015);
    near(q(&v, 0.99), 100.0 * 100f64.ln(), 0.03);
}

#[test]
fn pareto_weibull_gamma_match_their_definitions() {
    let v = samples("pareto(scale=50ms, shape=2.5)", N);
    assert!(v[0] >= 50.0);
    near(q(&v, 0.5), 50.0 * 2f64.powf(1.0 / 2.5), 0.01);
    near(q(&v, 0.9), 50.0 * 10f64.powf(1.0 / 2.5), 0.015);

    let v = samples("weibull(scale=100ms, shape=1.5)", N);
    near(q(&v, 0.5), 100.0 * 2f64.ln().powf(1.0 / 1.5), 0.015);
    near(q(&v, 0.9), 100.0 * 10f64.ln().powf(1.0 / 1.5), 0.015);

    let v = samples("gamma(shape=2, scale=50ms)", N);
    let m = mean(&v);
    near(m, 100.0, 0.01);
    let variance = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64;
    near(variance.sqrt(), (2.0f64).sqrt() * 50.0, 0.02);
}

#[test]
fn percentiles_reproduce_their_quantiles() {
    let text = "percentiles(p50=80ms, p90=200ms, p99=900ms, max=3s)";
    let v = samples(text, N);
    // In rank: the share of samples at or below each point is its percentile, within 5
    // standard errors of a binomial count.
    in_rank(&v, &[(0.5, 80.0), (0.9, 200.0), (0.99, 900.0)]);
    // In value, within 1%. Above p99 the quantile function climbs to max=3s within 1% of
    // rank, so one standard error of p99's rank (0.02%) is 24ms there; the p99.9 of an
    // extra point with a gentler climb is checked instead.
    near(q(&v, 0.5), 80.0, 0.01);
    near(q(&v, 0.9), 200.0, 0.01);
    assert!(v[0] >= 0.0 && v[N - 1] <= 3000.0);
    let v = samples(
        "percentiles(p50=80ms, p90=200ms, p99=900ms, p99.9=1s, max=1.1s)",
        N,
    );
    near(q(&v, 0.99), 900.0, 0.01);
    near(q(&v, 0.999), 1000.0, 0.01);
    // Exactly, at the knots.
    let p = percentiles_of(text);
    assert!((p.quantile(0.5) - 0.080).abs() < 1e-12);
    assert!((p.quantile(0.9) - 0.200).abs() < 1e-12);
    assert!((p.quantile(0.99) - 0.900).abs() < 1e-12);
    assert_eq!(p.quantile(0.0), 0.0);
    assert!((p.quantile(0.995) - 0.9f64.sqrt() * 3f64.sqrt()).abs() < 1e-9);
    // Log-linear between points.
    assert!((p.quantile(0.7) - (0.08f64 * 0.2).sqrt()).abs() < 1e-12);
}

/// The share of sorted samples at or below each `(p, ms)` is `p`, within 5 standard
/// errors of a binomial count.
#[track_caller]
fn in_rank(sorted: &[f64], points: &[(f64, f64)]) {
    let n = sorted.len() as f64;
    for &(p, at) in points {
        let share = sorted.partition_point(|x| *x <= at) as f64 / n;
        let bound = 5.0 * (p * (1.0 - p) / n).sqrt();
        assert!(
            (share - p).abs() <= bound,
            "{share} at {at}ms, expected {p}"
        );
    }
}

fn percentiles_of(text: &str) -> Percentiles {
    match Latency::parse(text).unwrap().expr {
        Expr::One(Shape::Percentiles(p)) => p,
        other => panic!("{other:?} is not percentiles"),
    }
}

/// The log-normal through p50=80ms and p90=200ms: what the lower tail below p50 follows.
fn tail_below_p50(u: f64) -> f64 {
    let standard = Normal::standard();
    let sigma = (200f64 / 80.0).ln() / standard.inverse_cdf(0.9);
    80.0 * (sigma * standard.inverse_cdf(u)).exp()
}

#[test]
fn percentiles_without_min_have_a_log_normal_lower_tail() {
    let text = "percentiles(p50=80ms, p90=200ms, p99=900ms)";
    let v = samples(text, N);
    // Below the lowest point the quantiles are the log-normal's through the two lowest
    // points, within 3% (p0.1 within 10%: 200 samples lie below it).
    for (u, relative) in [(0.4, 0.03), (0.25, 0.03), (0.1, 0.03), (0.01, 0.05)] {
        near(q(&v, u), tail_below_p50(u), relative);
    }
    near(q(&v, 0.001), tail_below_p50(0.001), 0.1);
    // Nothing like the old ramp to 0: the fastest of 200,000 is still milliseconds.
    assert!(v[0] > 2.0, "{}", v[0]);
    // The given quantiles are still reproduced: in rank, within 5 standard errors.
    in_rank(&v, &[(0.5, 80.0), (0.9, 200.0), (0.99, 900.0)]);
    // And exactly, at the knots; the tail meets the lowest point without a jump.
    let p = percentiles_of(text);
    for (u, x) in [(0.5, 0.080), (0.9, 0.200), (0.99, 0.900)] {
        assert!((p.quantile(u) - x).abs() < 1e-12, "{u}");
    }
    assert!((p.quantile(0.499_999_9) - 0.080).abs() < 1e-6);
    assert!((p.quantile(0.25) * 1000.0 - tail_below_p50(0.25)).abs() < 1e-9);

    // min= (even min=0) keeps the documented ramp from min: linear from 0, log-linear
    // from above 0.
    let p = percentiles_of("percentiles(p50=80ms, p90=200ms, min=0)");
    assert!((p.quantile(0.25) - 0.040).abs() < 1e-12);
    let p = percentiles_of("percentiles(p50=80ms, p90=200ms, min=20ms)");
    assert!((p.quantile(0.25) - 0.040).abs() < 1e-12);
}

#[test]
fn percentiles_from_min_and_without_max() {
    let text = "percentiles(p50=80ms, p90=200ms, min=10ms)";
    let v = samples(text, N);
    assert!(v[0] >= 10.0);
    near(q(&v, 0.5), 80.0, 0.01);
    near(q(&v, 0.9), 200.0, 0.01);
    // Without max the last segment's log-slope continues to u = 1.
    let ceiling = 200.0 * (2.5f64.ln() / 0.4 * 0.1).exp();
    assert!(v[N - 1] <= ceiling + 1e-9, "{} > {ceiling}", v[N - 1]);
    near(v[N - 1], ceiling, 0.01);
    // One point: linear from min to it, continued.
    let v = samples("percentiles(p50=100ms)", N);
    near(q(&v, 0.5), 100.0, 0.01);
    assert!(v[N - 1] <= 200.0);
}

#[test]
fn mixtures_keep_their_weights() {
    let v = samples("95% 10ms + 5% 3s", N);
    let slow = v.iter().filter(|x| **x == 3000.0).count();
    near(slow as f64 / N as f64, 0.05, 0.04);
    assert_eq!(v.iter().filter(|x| **x == 10.0).count() + slow, N);
    let v = samples("95% lognormal(p50=80ms, p99=300ms) + 5% 3s", N);
    near(q(&v, 0.5 * 0.95), 80.0, 0.02);
    let v = samples("0.5% 1s + 99.5% 0", N);
    near(
        v.iter().filter(|x| **x > 0.0).count() as f64 / N as f64,
        0.005,
        0.1,
    );
}

#[test]
fn a_mixture_of_one_is_that_shape() {
    assert_eq!(Latency::parse("100% 3s").unwrap(), Latency::fixed(ms(3000)));
    assert_eq!(
        Latency::parse("0% 1s + 100% 3s").unwrap(),
        Latency::fixed(ms(3000))
    );
    assert_eq!(Latency::sometimes(ms(250), WHOLE), Latency::fixed(ms(250)));
    assert_eq!(
        Latency::sometimes(ms(250), 0),
        Latency::fixed(Duration::ZERO)
    );
    assert_eq!(
        Latency::sometimes(ms(250), 300_000),
        Latency::parse("30% 250ms + 70% 0").unwrap()
    );
}

#[test]
fn display_parses_back_to_an_equal_value() {
    for text in [
        "0",
        "120ms",
        "1.5s",
        "250us",
        "uniform(50ms, 200ms)",
        "normal(mean=100ms, sd=20ms)",
        "lognormal(p50=80ms, p99=900ms)",
        "lognormal(p99.99=1s, p1=1ms)",
        "lognormal(median=80ms, sigma=0.6)",
        "exponential(mean=100ms)",
        "pareto(scale=50ms, shape=2.5)",
        "weibull(scale=0.1s, shape=1.5)",
        "gamma(shape=0.25, scale=50ms)",
        "percentiles(p50=80ms, p90=200ms, p99=900ms, max=3s)",
        "percentiles(p99.9999=1s, p0.5=1ms, min=500us)",
        "95% lognormal(p50=80ms, p99=300ms) + 5% 3s",
        "33.3333% 1ms + 33.3333% 2ms + 33.3334% normal(mean=3ms, sd=1ms)",
    ] {
        let parsed = Latency::parse(text).unwrap();
        let shown = parsed.to_string();
        let again = Latency::parse(&shown).unwrap_or_else(|e| panic!("{shown}: {e}"));
        assert_eq!(parsed, again, "{text} → {shown}");
        assert_eq!(shown, again.to_string());
    }
    assert_eq!(
        Latency::parse("lognormal( p99 = 900ms ,p50=80ms )")
            .unwrap()
            .to_string(),
        "lognormal(p50=80ms, p99=900ms)"
    );
    assert_eq!(
        Latency::parse("95%lognormal(p50=80ms,p99=300ms)+5%3s")
            .unwrap()
            .to_string(),
        "95% lognormal(p50=80ms, p99=300ms) + 5% 3s"
    );
}

#[test]
fn errors_name_the_text_and_what_was_expected() {
    assert_eq!(
        err("lognormal(p50=80, p99=900ms)"),
        "expected a duration such as 120ms at 'p50=80' in 'lognormal(p50=80, p99=900ms)'"
    );
    let cases: &[(&str, &str)] = &[
        ("120", "expected a duration such as 120ms at '120'"),
        ("", "expected a latency such as 120ms"),
        ("fast", "expected a latency such as 120ms"),
        ("lognorml(p50=1ms, p99=2ms)", "at 'lognorml'"),
        (
            "uniform",
            "expected arguments in parentheses, as in uniform(50ms, 200ms)",
        ),
        ("uniform(50ms)", "expected two durations"),
        (
            "uniform(200ms, 50ms)",
            "expected the lower bound to be at most the upper at 'uniform(200ms, 50ms)'",
        ),
        ("uniform(lower=1ms, 2ms)", "at 'lower=1ms'"),
        ("uniform(1ms, 2ms", "expected ',' or ')' at the end of"),
        ("uniform(1ms 2ms)", "expected ',' or ')' at '2ms'"),
        (
            "normal(mean=100ms)",
            "expected an argument sd= (as in normal(mean=100ms, sd=20ms)) at 'normal(mean=100ms)'",
        ),
        (
            "normal(mean=1ms, sd=2ms, mean=3ms)",
            "expected mean= only once at 'mean=3ms'",
        ),
        (
            "normal(mean=1ms, deviation=2ms)",
            "expected an argument mean= or sd= (as in normal(mean=100ms, sd=20ms)) at 'deviation=2ms'",
        ),
        (
            "normal(mean=-1ms, sd=2ms)",
            "expected a non-negative duration such as 120ms at 'mean=-1ms'",
        ),
        (
            "normal(mean=, sd=2ms)",
            "expected a value such as 120ms or 2.5 at ','",
        ),
        ("lognormal(p50=80ms)", "expected two percentiles"),
        (
            "lognormal(p50=80ms, p50=90ms)",
            "expected two different percentiles at 'p50=90ms'",
        ),
        (
            "lognormal(p50=900ms, p99=80ms)",
            "expected the higher percentile to have the longer duration",
        ),
        ("lognormal(p50=80ms, p99.999=1s)", "from p1 to p99.99"),
        ("lognormal(p50=80ms, p99.999=1s)", "at 'p99.999=1s'"),
        ("lognormal(p0.5=1ms, p50=2ms)", "at 'p0.5=1ms'"),
        (
            "lognormal(p50=0, p99=1s)",
            "expected a duration above 0 at 'p50=0'",
        ),
        (
            "lognormal(p50=1ms, p90=2ms, p99=3ms)",
            "expected two percentiles",
        ),
        ("lognormal(median=80ms)", "expected an argument sigma="),
        (
            "lognormal(median=80ms, sigma=-1)",
            "expected a number at least 0 such as 0.6 at 'sigma=-1'",
        ),
        ("lognormal(median=80ms, sigma=NaN)", "at 'sigma=NaN'"),
        (
            "lognormal(median=80ms, p99=1s)",
            "expected an argument median= or sigma=",
        ),
        (
            "exponential(mean=1ms, sd=1ms)",
            "expected an argument mean= (as in exponential(mean=100ms)) at 'sd=1ms'",
        ),
        (
            "pareto(scale=50ms, shape=0)",
            "expected a number above 0 such as 2.5 at 'shape=0'",
        ),
        (
            "pareto(scale=0, shape=2)",
            "expected a duration above 0 at 'scale=0'",
        ),
        ("weibull(scale=1ms, shape=1e3)", "at 'shape=1e3'"),
        ("gamma(shape=inf, scale=1ms)", "at 'shape=inf'"),
        ("gamma(scale=1ms)", "expected an argument shape="),
        ("percentiles()", "expected at least one percentile"),
        (
            "percentiles(p50=80ms, p90=70ms)",
            "expected durations that grow with the percentile at 'p90=70ms'",
        ),
        (
            "percentiles(p50=80ms, p50.0=90ms)",
            "expected each percentile only once at 'p50.0=90ms'",
        ),
        (
            "percentiles(p50=80ms, max=1ms)",
            "expected max= to be at least the highest percentile",
        ),
        (
            "percentiles(p50=80ms, min=100ms)",
            "expected min= to be at most the lowest percentile",
        ),
        (
            "percentiles(p100=1s)",
            "expected a percentile such as p50=80ms",
        ),
        ("percentiles(p0=1s)", "at 'p0=1s'"),
        (
            "percentiles(p50=80ms, max=1s, max=2s)",
            "expected max= only once at 'max=2s'",
        ),
        ("percentiles(50=80ms)", "at '50=80ms'"),
        (
            "95% 10ms + 4% 1s",
            "the weights add up to 99%; expected exactly 100%",
        ),
        (
            "95% 10ms + 6% 1s",
            "the weights add up to 101%; expected exactly 100%",
        ),
        (
            "95% 10ms + 1s",
            "expected a weight such as 5% before every part of a mixture at '1s'",
        ),
        (
            "10ms + 5% 1s",
            "expected a weight such as 5% before every part of a mixture at '10ms'",
        ),
        (
            "101% 1s",
            "expected a weight from 0% to 100% with at most 4 decimals",
        ),
        ("0.00001% 1s + 100% 0", "at most 4 decimals"),
        ("50% 50% 1s + 50% 0", "at '50'"),
        ("95% 10ms, 5% 1s", "expected '+' or the end at ', 5% 1s'"),
        ("10ms)", "expected the end at ')'"),
    ];
    for (text, expected) in cases {
        let message = err(text);
        assert!(message.contains(expected), "{text}: {message}");
        assert!(message.contains("expected"), "{text}: {message}");
        assert!(
            message.chars().next().is_some_and(|c| !c.is_uppercase()),
            "{message}"
        );
    }
}

#[test]
fn parsing_is_capped_and_linear() {
    use crate::directive::MAX_ITEMS;
    // 100 arguments parse; the 101st is refused, named with its place in the text.
    let one_more = |n: usize| -> String {
        let args: Vec<String> = (0..n)
            .map(|i| format!("p{}.{:02}={}us", i / 100 + 1, i % 100, i + 1))
            .collect();
        format!("percentiles({})", args.join(","))
    };
    assert!(Latency::parse(&one_more(MAX_ITEMS)).is_ok());
    let e = err(&one_more(MAX_ITEMS + 1));
    assert!(
        e.contains("expected at most 100 arguments in a call (Gazua's cap on items)"),
        "{e}"
    );
    // The argument past the cap is named, with its place in the text.
    assert!(
        e.contains("at 'p2.00=101us'") && e.contains("(byte "),
        "{e}"
    );
    let mixture: Vec<String> = (0..=MAX_ITEMS).map(|_| "1% 1ms".to_owned()).collect();
    let e = err(&mixture.join(" + "));
    assert!(e.contains("at most 100 parts in a mixture"), "{e}");

    // Past the length cap nothing is parsed, and nothing of the text is echoed.
    let huge = format!("percentiles({})", "p50=1ms,".repeat(130_000));
    let e = err(&huge);
    assert!(
        e.starts_with(&format!(
            "the directive is {} bytes long; expected at most 4096 bytes",
            huge.len()
        )),
        "{e}"
    );
    assert!(e.len() < 200, "{e}");

    // A repeated name is found in one pass (no comparison of every pair of arguments).
    let many: Vec<String> = (0..MAX_ITEMS).map(|_| "mean=1ms".to_owned()).collect();
    let e = err(&format!("exponential({})", many.join(",")));
    assert!(e.contains("expected mean= only once at 'mean=1ms'"), "{e}");
}

#[test]
fn long_texts_are_shown_around_the_position() {
    let mut text = "1% 1ms + ".repeat(50);
    text.push_str("50% 2");
    let e = err(&text);
    assert!(e.contains("at '2' in '…"), "{e}");
    assert!(
        e.contains(&format!("' (byte {} of {})", text.len() - 1, text.len())),
        "{e}"
    );
    assert!(e.len() < 400, "{}", e.len());
}

#[test]
fn huge_values_sample_without_panicking() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
    for text in [
        "pareto(scale=1000000m, shape=0.0001)",
        "lognormal(median=100000000m, sigma=1000)",
        "gamma(shape=1000000000000, scale=100000000m)",
        "exponential(mean=100000000m)",
        "percentiles(p0.0001=1ms, p0.0002=100000000m)",
    ] {
        let latency = Latency::parse(text).unwrap();
        for _ in 0..1000 {
            let _ = latency.sample(&mut rng);
        }
    }
}

proptest! {
    #[test]
    fn parse_never_panics(text in "\\PC{0,60}") {
        let _ = Latency::parse(&text);
    }

    #[test]
    fn parse_never_panics_on_near_grammar(
        text in "[0-9a-z%(),.=+ µ-]{0,50}",
        name in prop::sample::select(vec!["uniform(", "normal(", "lognormal(", "percentiles(", "pareto(", "gamma(", "weibull(", "exponential(", "50% ", ""]),
    ) {
        let text = format!("{name}{text}");
        if let Ok(latency) = Latency::parse(&text) {
            let shown = latency.to_string();
            prop_assert_eq!(Latency::parse(&shown).ok(), Some(latency.clone()));
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(9);
            let _ = latency.sample(&mut rng);
        }
    }
}
