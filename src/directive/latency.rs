//! Latency expressions (`latency=`): fixed durations, parametric distributions,
//! empirical percentiles and weighted mixtures of them. Parsed once into a [`Latency`] whose
//! `sample` does no parsing and no allocation.

use std::fmt;
use std::time::Duration;

use rand::{Rng, RngExt};
use rand_distr::{Distribution, Exp1, StandardNormal};
use statrs::distribution::{ContinuousCDF, Normal};

use super::cursor::{Cursor, Token, echo, fmt_percent, parse_percent, too_many};
use super::duration::{self, Canonical, from_secs};
use super::mix::WHOLE;
use super::{DirectiveError, MAX_ITEMS, Mix};

/// A compiled latency expression: sampling does no parsing and no allocation.
#[derive(Debug, Clone, PartialEq)]
pub struct Latency {
    expr: Expr,
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    One(Shape),
    /// Never a mix of one shape: that is `One`, so equal expressions compare equal.
    Mixture(Mix<Shape>),
}

/// One distribution. Each keeps the parameters as written (for `Display`) beside what
/// sampling needs, both derived deterministically from the text, so `PartialEq` is sound.
#[derive(Debug, Clone, PartialEq)]
enum Shape {
    Fixed(Duration),
    Uniform {
        lower: Duration,
        upper: Duration,
    },
    /// Truncated at 0 by rejection, so the shape above 0 is the normal's, not a spike at 0.
    Normal {
        mean: Duration,
        sd: Duration,
    },
    LogNormal {
        fit: LogFit,
        /// Mean and standard deviation of `ln(seconds)`.
        mu: f64,
        sigma: f64,
    },
    Exponential {
        mean: Duration,
    },
    Pareto {
        scale: Duration,
        shape: f64,
        dist: rand_distr::Pareto<f64>,
    },
    Weibull {
        scale: Duration,
        shape: f64,
        dist: rand_distr::Weibull<f64>,
    },
    Gamma {
        shape: f64,
        scale: Duration,
        dist: rand_distr::Gamma<f64>,
    },
    Percentiles(Percentiles),
}

/// How a log-normal was given.
#[derive(Debug, Clone, Copy, PartialEq)]
enum LogFit {
    /// Two `(percentile in ppm of 100%, value)` points, lower percentile first.
    Percentiles([(u32, Duration); 2]),
    Median {
        median: Duration,
        sigma: f64,
    },
}

/// An empirical distribution: its quantile function through the given points.
///
/// Below the lowest point: from `min=` when given; else the log-normal through the two lowest
/// points, so the lower tail thins out the way a real PG's does instead of running down to
/// 0 (which no PG answers in); with a single point and no `min=`, linearly from 0.
#[derive(Debug, Clone, PartialEq)]
struct Percentiles {
    /// `(percentile in ppm of 100%, value)`, ascending in both.
    points: Vec<(u32, Duration)>,
    min: Option<Duration>,
    max: Option<Duration>,
    /// `(0, min)` unless the lower tail is log-normal, the points, then `(1, max)` if given:
    /// the quantile function's knots.
    knots: Vec<Knot>,
    /// The log-normal below the lowest knot, when there is one.
    lower: Option<LowerTail>,
}

/// A log-normal through the two lowest points, for the quantiles below the lowest.
#[derive(Debug, Clone, Copy, PartialEq)]
struct LowerTail {
    /// Mean and standard deviation of `ln(seconds)`.
    mu: f64,
    sigma: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Knot {
    /// Cumulative probability, 0..=1.
    u: f64,
    /// Seconds.
    x: f64,
}

impl Latency {
    pub fn parse(text: &str) -> Result<Latency, DirectiveError> {
        super::check_length(text)?;
        let mut c = Cursor::new(text);
        let Some(first_weight) = c.weight()? else {
            let start = c.pos();
            let shape = shape(&mut c)?;
            let end = c.offset();
            if c.peek() == Some('+') {
                return Err(c.error(start, end, MIXTURE_WEIGHT));
            }
            c.finish()?;
            return Ok(Latency {
                expr: Expr::One(shape),
            });
        };
        let mut parts = vec![(first_weight, shape(&mut c)?)];
        while c.eat('+') {
            if parts.len() == MAX_ITEMS {
                let start = c.pos();
                return Err(too_many(&c, start, "parts in a mixture"));
            }
            let weight = c.weight()?.ok_or_else(|| c.error_here(MIXTURE_WEIGHT))?;
            parts.push((weight, shape(&mut c)?));
        }
        c.finish_or("'+' or the end")?;
        let total: u64 = parts.iter().map(|(w, _)| u64::from(*w)).sum();
        if total != u64::from(WHOLE) {
            let shown =
                u32::try_from(total).map_or_else(|_| (total / 10_000).to_string(), fmt_percent);
            return Err(DirectiveError::new(format!(
                "the weights add up to {shown}%; expected exactly 100% in '{}'",
                echo(text)
            )));
        }
        let mix = Mix::from_weights(parts, Shape::Fixed(Duration::ZERO))
            .expect("weights checked to add up to 100%");
        Ok(Latency {
            expr: collapse(mix),
        })
    }

    pub fn fixed(duration: Duration) -> Latency {
        Latency {
            expr: Expr::One(Shape::Fixed(duration)),
        }
    }

    /// `percent`% of `duration`, else 0: Envoy's delay with its `-percentage` companion.
    pub fn sometimes(duration: Duration, percent_ppm: u32) -> Latency {
        let percent_ppm = percent_ppm.min(WHOLE);
        let mix = Mix::from_weights(
            vec![
                (percent_ppm, Shape::Fixed(duration)),
                (WHOLE - percent_ppm, Shape::Fixed(Duration::ZERO)),
            ],
            Shape::Fixed(Duration::ZERO),
        )
        .expect("weights add up to 100%");
        Latency {
            expr: collapse(mix),
        }
    }

    /// One sample. The caller clamps it to `--max-latency`.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Duration {
        match &self.expr {
            Expr::One(shape) => shape.sample(rng),
            Expr::Mixture(mix) => mix.pick(rng).sample(rng),
        }
    }

    /// How each `percentiles(…)` in the expression continues below its lowest and above its
    /// highest point, one line each, for `gazua preview`.
    pub fn tails(&self) -> Vec<String> {
        let shapes: Vec<&Shape> = match &self.expr {
            Expr::One(shape) => vec![shape],
            Expr::Mixture(mix) => mix.weights().map(|(_, s)| s).collect(),
        };
        shapes
            .into_iter()
            .filter_map(|s| match s {
                Shape::Percentiles(p) => Some(p.tails()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    /// The duration every sample gives, if it is fixed.
    pub fn as_fixed(&self) -> Option<Duration> {
        match self.expr {
            Expr::One(Shape::Fixed(d)) => Some(d),
            _ => None,
        }
    }
}

/// A mixture whose every weight went to one shape is that shape.
fn collapse(mix: Mix<Shape>) -> Expr {
    if mix.weights().count() == 1 {
        let shape = mix.weights().next().expect("one shape").1.clone();
        Expr::One(shape)
    } else {
        Expr::Mixture(mix)
    }
}

const MIXTURE_WEIGHT: &str = "a weight such as 5% before every part of a mixture";

const LATENCY_EXPECTED: &str = "a latency such as 120ms, uniform(50ms, 200ms), \
     normal(mean=, sd=), lognormal(p50=, p99=), exponential(mean=), pareto(scale=, shape=), \
     weibull(scale=, shape=), gamma(shape=, scale=) or percentiles(p50=, p99=, max=)";

/// One argument of a call: `name=value`, or a bare `value`.
struct Arg<'a> {
    name: Option<&'a str>,
    value: Token<'a>,
    start: usize,
    end: usize,
}

/// A call `name(args)` under parse, for error messages that point at an argument or at the
/// whole call.
struct Call<'c, 'a> {
    c: &'c Cursor<'a>,
    start: usize,
    end: usize,
    args: Vec<Arg<'a>>,
    /// A correct example, such as `normal(mean=100ms, sd=20ms)`.
    example: &'static str,
}

impl<'a> Call<'_, 'a> {
    fn error_in_call(&self, expected: &str) -> DirectiveError {
        self.c.error(self.start, self.end, expected)
    }

    fn error_at(&self, arg: &Arg<'a>, expected: &str) -> DirectiveError {
        self.c.error(arg.start, arg.end, expected)
    }

    /// Every argument is named, known and given once. One pass: each argument is looked up
    /// among the (at most a few) known names, never compared with the other arguments.
    fn check_named(&self, known: &[&str]) -> Result<(), DirectiveError> {
        let mut seen = [false; 4];
        debug_assert!(known.len() <= seen.len());
        for arg in &self.args {
            let name = arg.name.unwrap_or("");
            let Some(k) = known.iter().position(|n| *n == name) else {
                return Err(self.error_at(
                    arg,
                    &format!("an argument {} (as in {})", names(known), self.example),
                ));
            };
            if std::mem::replace(&mut seen[k], true) {
                return Err(self.error_at(arg, &format!("{name}= only once")));
            }
        }
        Ok(())
    }

    fn get(&self, name: &str) -> Result<&Arg<'a>, DirectiveError> {
        self.args
            .iter()
            .find(|a| a.name == Some(name))
            .ok_or_else(|| {
                self.error_in_call(&format!("an argument {name}= (as in {})", self.example))
            })
    }

    fn duration(&self, arg: &Arg<'a>) -> Result<Duration, DirectiveError> {
        duration::parse_token(arg.value.text).map_err(|e| self.error_at(arg, e))
    }

    fn duration_above_zero(&self, arg: &Arg<'a>) -> Result<Duration, DirectiveError> {
        match self.duration(arg)? {
            Duration::ZERO => Err(self.error_at(arg, "a duration above 0")),
            d => Ok(d),
        }
    }

    /// The `scale=` (a duration above 0) and `shape=` (a number above 0) of a heavy tail;
    /// `names` lists both in the order the form's example gives them.
    fn scale_and_shape(&self, names: &[&str; 2]) -> Result<(Duration, f64), DirectiveError> {
        self.check_named(names)?;
        let scale = self.duration_above_zero(self.get("scale")?)?;
        let shape = self.positive(self.get("shape")?)?;
        Ok((scale, shape))
    }

    /// A plain decimal number above 0 (`shape=2.5`).
    fn positive(&self, arg: &Arg<'a>) -> Result<f64, DirectiveError> {
        match number(arg.value.text) {
            Some(n) if n > 0.0 => Ok(n),
            _ => Err(self.error_at(arg, "a number above 0 such as 2.5")),
        }
    }
}

const SCALE_AND_SHAPE: &str = "a scale and a shape above 0";

/// `mean= or sd=`.
fn names(known: &[&str]) -> String {
    let named: Vec<String> = known.iter().map(|n| format!("{n}=")).collect();
    match named.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// A plain decimal `2` or `2.5`: no sign, exponent, `inf` or `NaN`.
fn number(text: &str) -> Option<f64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !digits(fraction) {
        return None;
    }
    text.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// One shape: a duration or a call.
fn shape(c: &mut Cursor<'_>) -> Result<Shape, DirectiveError> {
    let name = c.token();
    if name.text.is_empty() {
        return Err(c.error_here(LATENCY_EXPECTED));
    }
    if c.peek() != Some('(') {
        if let Some(example) = example(name.text) {
            return Err(c.error(
                name.start,
                name.end,
                &format!("arguments in parentheses, as in {example}"),
            ));
        }
        return match duration::parse_token(name.text) {
            Ok(d) => Ok(Shape::Fixed(d)),
            // A word that is neither a duration nor a call: say every form.
            Err(e)
                if name
                    .text
                    .starts_with(|ch: char| ch.is_ascii_digit() || ch == '-') =>
            {
                Err(c.error(name.start, name.end, e))
            }
            Err(_) => Err(c.error(name.start, name.end, LATENCY_EXPECTED)),
        };
    }
    let Some(example) = example(name.text) else {
        return Err(c.error(name.start, name.end, LATENCY_EXPECTED));
    };
    c.eat('(');
    let args = arguments(c)?;
    let call = Call {
        start: name.start,
        end: c.offset(),
        c,
        args,
        example,
    };
    build(name.text, &call)
}

fn example(name: &str) -> Option<&'static str> {
    Some(match name {
        "uniform" => "uniform(50ms, 200ms)",
        "normal" => "normal(mean=100ms, sd=20ms)",
        "lognormal" => "lognormal(p50=80ms, p99=900ms) or lognormal(median=80ms, sigma=0.6)",
        "exponential" => "exponential(mean=100ms)",
        "pareto" => "pareto(scale=50ms, shape=2.5)",
        "weibull" => "weibull(scale=100ms, shape=1.5)",
        "gamma" => "gamma(shape=2, scale=50ms)",
        "percentiles" => "percentiles(p50=80ms, p90=200ms, p99=900ms, max=3s)",
        _ => return None,
    })
}

/// The arguments after `(`, through the closing `)`.
fn arguments<'a>(c: &mut Cursor<'a>) -> Result<Vec<Arg<'a>>, DirectiveError> {
    let mut args = Vec::new();
    if c.eat(')') {
        return Ok(args);
    }
    loop {
        let start = c.pos();
        if args.len() == MAX_ITEMS {
            return Err(too_many(c, start, "arguments in a call"));
        }
        let first = c.token();
        let (name, value) = if c.eat('=') {
            (Some(first.text), c.token())
        } else {
            (None, first)
        };
        if value.text.is_empty() {
            return Err(c.error_here(match name {
                Some(_) => "a value such as 120ms or 2.5",
                None => "an argument such as 120ms or name=value",
            }));
        }
        args.push(Arg {
            name,
            value,
            start,
            end: value.end,
        });
        if c.eat(')') {
            return Ok(args);
        }
        c.expect(',', "',' or ')'")?;
    }
}

/// Builds and validates the shape `name(args)`.
fn build(name: &str, call: &Call<'_, '_>) -> Result<Shape, DirectiveError> {
    match name {
        "uniform" => {
            let [lower, upper] = &call.args[..] else {
                return Err(call.error_in_call("two durations, as in uniform(50ms, 200ms)"));
            };
            for arg in [lower, upper] {
                if arg.name.is_some() {
                    return Err(call.error_at(arg, "a duration such as 120ms (uniform takes two bounds, as in uniform(50ms, 200ms))"));
                }
            }
            let (lower, upper) = (call.duration(lower)?, call.duration(upper)?);
            if lower > upper {
                return Err(call.error_in_call("the lower bound to be at most the upper"));
            }
            Ok(Shape::Uniform { lower, upper })
        }
        "normal" => {
            call.check_named(&["mean", "sd"])?;
            let mean = call.duration(call.get("mean")?)?;
            let sd = call.duration(call.get("sd")?)?;
            Ok(Shape::Normal { mean, sd })
        }
        "lognormal" => lognormal(call),
        "exponential" => {
            call.check_named(&["mean"])?;
            let mean = call.duration(call.get("mean")?)?;
            Ok(Shape::Exponential { mean })
        }
        "pareto" => {
            let (scale, shape) = call.scale_and_shape(&["scale", "shape"])?;
            let dist = rand_distr::Pareto::new(scale.as_secs_f64(), shape)
                .map_err(|_| call.error_in_call(SCALE_AND_SHAPE))?;
            Ok(Shape::Pareto { scale, shape, dist })
        }
        "weibull" => {
            let (scale, shape) = call.scale_and_shape(&["scale", "shape"])?;
            let dist = rand_distr::Weibull::new(scale.as_secs_f64(), shape)
                .map_err(|_| call.error_in_call(SCALE_AND_SHAPE))?;
            Ok(Shape::Weibull { scale, shape, dist })
        }
        "gamma" => {
            let (scale, shape) = call.scale_and_shape(&["shape", "scale"])?;
            let dist = rand_distr::Gamma::new(shape, scale.as_secs_f64())
                .map_err(|_| call.error_in_call(SCALE_AND_SHAPE))?;
            Ok(Shape::Gamma { shape, scale, dist })
        }
        "percentiles" => percentiles(call).map(Shape::Percentiles),
        _ => unreachable!("shape() only builds names that example() knows"),
    }
}

/// A percentile label `p50`, `p99.9`: its percentile in ppm of 100%, strictly inside 0..100.
fn percentile_label(name: &str) -> Option<u32> {
    let ppm = parse_percent(name.strip_prefix('p')?)?;
    (ppm > 0 && ppm < WHOLE).then_some(ppm)
}

/// Percentiles that a log-normal may be fitted to: p1 to p99.99.
const LOGNORMAL_LOWEST: u32 = 10_000;
const LOGNORMAL_HIGHEST: u32 = 999_900;

fn lognormal(call: &Call<'_, '_>) -> Result<Shape, DirectiveError> {
    if call
        .args
        .iter()
        .any(|a| matches!(a.name, Some("median" | "sigma")))
    {
        call.check_named(&["median", "sigma"])?;
        let median = call.duration_above_zero(call.get("median")?)?;
        let sigma_arg = call.get("sigma")?;
        let sigma = number(sigma_arg.value.text)
            .ok_or_else(|| call.error_at(sigma_arg, "a number at least 0 such as 0.6"))?;
        return Ok(Shape::LogNormal {
            fit: LogFit::Median { median, sigma },
            mu: median.as_secs_f64().ln(),
            sigma,
        });
    }
    let mut points = Vec::with_capacity(2);
    for arg in &call.args {
        let p = arg.name.and_then(percentile_label);
        let Some(p) = p.filter(|p| (LOGNORMAL_LOWEST..=LOGNORMAL_HIGHEST).contains(p)) else {
            return Err(call.error_at(
                arg,
                "two percentiles from p1 to p99.99 such as p50=80ms, or median= and sigma=",
            ));
        };
        if points.iter().any(|(q, _)| *q == p) {
            return Err(call.error_at(arg, "two different percentiles"));
        }
        if points.len() == 2 {
            return Err(call.error_in_call(&format!("two percentiles, as in {}", call.example)));
        }
        points.push((p, call.duration_above_zero(arg)?));
    }
    let [a, b] = points[..] else {
        return Err(call.error_in_call(&format!("two percentiles, as in {}", call.example)));
    };
    let (lo, hi) = if a.0 < b.0 { (a, b) } else { (b, a) };
    if lo.1 >= hi.1 {
        return Err(call.error_in_call("the higher percentile to have the longer duration"));
    }
    let standard = Normal::standard();
    let z_lo = standard.inverse_cdf(ppm_to_unit(lo.0));
    let z_hi = standard.inverse_cdf(ppm_to_unit(hi.0));
    let (ln_lo, ln_hi) = (lo.1.as_secs_f64().ln(), hi.1.as_secs_f64().ln());
    let sigma = (ln_hi - ln_lo) / (z_hi - z_lo);
    let mu = ln_lo - sigma * z_lo;
    if !(sigma.is_finite() && mu.is_finite()) {
        return Err(call.error_in_call("percentiles a log-normal can be fitted to"));
    }
    Ok(Shape::LogNormal {
        fit: LogFit::Percentiles([lo, hi]),
        mu,
        sigma,
    })
}

fn ppm_to_unit(ppm: u32) -> f64 {
    f64::from(ppm) / f64::from(WHOLE)
}

fn percentiles(call: &Call<'_, '_>) -> Result<Percentiles, DirectiveError> {
    let mut points: Vec<(u32, Duration, usize)> = Vec::new();
    let (mut min, mut max) = (None, None);
    // One pass; a repeated percentile is found once they are sorted, never by comparing
    // every pair of arguments.
    for (i, arg) in call.args.iter().enumerate() {
        let name = arg.name.unwrap_or("");
        let bound = match name {
            "min" => &mut min,
            "max" => &mut max,
            _ => match percentile_label(name) {
                Some(p) => {
                    points.push((p, call.duration(arg)?, i));
                    continue;
                }
                None => {
                    return Err(call.error_at(
                        arg,
                        "a percentile such as p50=80ms (p0.0001 to p99.9999), min= or max=",
                    ));
                }
            },
        };
        if bound.is_some() {
            return Err(call.error_at(arg, &format!("{name}= only once")));
        }
        *bound = Some(call.duration(arg)?);
    }
    if points.is_empty() {
        return Err(call.error_in_call(&format!("at least one percentile, as in {}", call.example)));
    }
    points.sort_by_key(|(p, _, _)| *p);
    for pair in points.windows(2) {
        let ((p, lower, _), (q, higher, i)) = (pair[0], pair[1]);
        if p == q {
            return Err(call.error_at(&call.args[i], "each percentile only once"));
        }
        if lower >= higher {
            return Err(call.error_at(&call.args[i], "durations that grow with the percentile"));
        }
    }
    let (_, lowest, _) = points[0];
    let (_, highest, _) = points[points.len() - 1];
    if min.is_some_and(|min| min > lowest) {
        return Err(call.error_in_call("min= to be at most the lowest percentile"));
    }
    if max.is_some_and(|max| max < highest) {
        return Err(call.error_in_call("max= to be at least the highest percentile"));
    }
    let points: Vec<(u32, Duration)> = points.into_iter().map(|(p, d, _)| (p, d)).collect();
    let lower = match (min, &points[..]) {
        (None, [a, b, ..]) => lower_tail(*a, *b),
        _ => None,
    };
    let mut knots = Vec::with_capacity(points.len() + 2);
    if lower.is_none() {
        knots.push(Knot {
            u: 0.0,
            x: min.unwrap_or(Duration::ZERO).as_secs_f64(),
        });
    }
    knots.extend(points.iter().map(|(p, d)| Knot {
        u: ppm_to_unit(*p),
        x: d.as_secs_f64(),
    }));
    if let Some(max) = max {
        knots.push(Knot {
            u: 1.0,
            x: max.as_secs_f64(),
        });
    }
    Ok(Percentiles {
        points,
        min,
        max,
        knots,
        lower,
    })
}

/// The log-normal through the two lowest points `a` < `b`; none when `a` is 0 (then nothing
/// lies below it but 0).
fn lower_tail(a: (u32, Duration), b: (u32, Duration)) -> Option<LowerTail> {
    let (xa, xb) = (a.1.as_secs_f64(), b.1.as_secs_f64());
    if xa <= 0.0 {
        return None;
    }
    let standard = Normal::standard();
    let (za, zb) = (
        standard.inverse_cdf(ppm_to_unit(a.0)),
        standard.inverse_cdf(ppm_to_unit(b.0)),
    );
    let sigma = (xb.ln() - xa.ln()) / (zb - za);
    let mu = xa.ln() - sigma * za;
    (sigma.is_finite() && mu.is_finite() && sigma > 0.0).then_some(LowerTail { mu, sigma })
}

impl Percentiles {
    /// The quantile function at `u` in [0, 1): the lower tail below the lowest knot,
    /// log-linear between knots (linear where one side is 0), the last segment continued
    /// above the highest knot.
    fn quantile(&self, u: f64) -> f64 {
        let knots = &self.knots;
        if let Some(tail) = self.lower
            && u < knots[0].u
        {
            // u = 0 gives -inf and so 0 seconds: never NaN.
            let z = Normal::standard().inverse_cdf(u);
            return (tail.mu + tail.sigma * z).exp();
        }
        let i = knots
            .iter()
            .position(|k| k.u > u)
            .unwrap_or(knots.len() - 1)
            .max(1);
        let (a, b) = (knots[i - 1], knots[i]);
        let t = (u - a.u) / (b.u - a.u);
        if a.x > 0.0 && b.x > 0.0 {
            (a.x.ln() + t * (b.x.ln() - a.x.ln())).exp()
        } else {
            a.x + t * (b.x - a.x)
        }
    }

    /// How the quantile function continues past the given points, for `gazua preview`.
    fn tails(&self) -> [String; 2] {
        let (p, lowest) = self.points[0];
        let below = format!("below p{}={}", fmt_percent(p), Canonical(lowest));
        let lower = match (self.min, self.lower) {
            (Some(min), _) => format!("{below}: from min={} up", Canonical(min)),
            (None, Some(_)) => {
                let (q, _) = self.points[1];
                // Two quantiles inside the tail: a tenth and a hundredth of the lowest's rank.
                let inside: Vec<String> = [p / 10, p / 100]
                    .into_iter()
                    .filter(|r| *r > 0)
                    .map(|r| {
                        let x = self.quantile(ppm_to_unit(r));
                        format!("p{} {}", fmt_percent(r), shown_ms(x))
                    })
                    .collect();
                format!(
                    "{below}: log-normal through p{} and p{} ({})",
                    fmt_percent(p),
                    fmt_percent(q),
                    inside.join(", ")
                )
            }
            (None, None) => format!(
                "{below}: linear from 0 (one percentile and no min=: give a second percentile \
                 or min=)"
            ),
        };
        let (p, highest) = self.points[self.points.len() - 1];
        let above = format!("above p{}={}", fmt_percent(p), Canonical(highest));
        let upper = match self.max {
            Some(max) => format!("{above}: up to max={}", Canonical(max)),
            None => {
                format!("{above}: the last segment continued (no max=), capped by --max-latency")
            }
        };
        [lower, upper]
    }
}

/// Seconds as `12.345ms`.
fn shown_ms(seconds: f64) -> String {
    format!("{:.3}ms", seconds * 1000.0)
}

impl Shape {
    #[inline]
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Duration {
        match self {
            Shape::Fixed(d) => *d,
            Shape::Uniform { lower, upper } => {
                let (lo, hi) = (lower.as_secs_f64(), upper.as_secs_f64());
                from_secs(lo + (hi - lo) * rng.random::<f64>())
            }
            Shape::Normal { mean, sd } => {
                let (mean, sd) = (mean.as_secs_f64(), sd.as_secs_f64());
                // mean ≥ 0, so each draw is kept with probability ≥ 1/2: 64 misses in a row
                // happen once in 2^64 samples, and then the mean is a fine answer.
                for _ in 0..64 {
                    let z: f64 = StandardNormal.sample(rng);
                    let x = mean + sd * z;
                    if x >= 0.0 {
                        return from_secs(x);
                    }
                }
                from_secs(mean)
            }
            Shape::LogNormal { mu, sigma, .. } => {
                let z: f64 = StandardNormal.sample(rng);
                from_secs((mu + sigma * z).exp())
            }
            Shape::Exponential { mean } => {
                let e: f64 = Exp1.sample(rng);
                from_secs(mean.as_secs_f64() * e)
            }
            Shape::Pareto { dist, .. } => from_secs(dist.sample(rng)),
            Shape::Weibull { dist, .. } => from_secs(dist.sample(rng)),
            Shape::Gamma { dist, .. } => from_secs(dist.sample(rng)),
            Shape::Percentiles(p) => from_secs(p.quantile(rng.random::<f64>())),
        }
    }
}

/// The canonical text: parsing it gives an equal `Latency`.
impl fmt::Display for Latency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.expr {
            Expr::One(shape) => shape.fmt(f),
            Expr::Mixture(mix) => {
                for (i, (weight, shape)) in mix.weights().filter(|(w, _)| *w > 0).enumerate() {
                    if i > 0 {
                        f.write_str(" + ")?;
                    }
                    write!(f, "{}% {shape}", fmt_percent(weight))?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shape::Fixed(d) => write!(f, "{}", Canonical(*d)),
            Shape::Uniform { lower, upper } => {
                write!(f, "uniform({}, {})", Canonical(*lower), Canonical(*upper))
            }
            Shape::Normal { mean, sd } => {
                write!(
                    f,
                    "normal(mean={}, sd={})",
                    Canonical(*mean),
                    Canonical(*sd)
                )
            }
            Shape::LogNormal {
                fit: LogFit::Percentiles([(p, a), (q, b)]),
                ..
            } => write!(
                f,
                "lognormal(p{}={}, p{}={})",
                fmt_percent(*p),
                Canonical(*a),
                fmt_percent(*q),
                Canonical(*b)
            ),
            Shape::LogNormal {
                fit: LogFit::Median { median, sigma },
                ..
            } => write!(f, "lognormal(median={}, sigma={sigma})", Canonical(*median)),
            Shape::Exponential { mean } => write!(f, "exponential(mean={})", Canonical(*mean)),
            Shape::Pareto { scale, shape, .. } => {
                write!(f, "pareto(scale={}, shape={shape})", Canonical(*scale))
            }
            Shape::Weibull { scale, shape, .. } => {
                write!(f, "weibull(scale={}, shape={shape})", Canonical(*scale))
            }
            Shape::Gamma { shape, scale, .. } => {
                write!(f, "gamma(shape={shape}, scale={})", Canonical(*scale))
            }
            Shape::Percentiles(p) => {
                f.write_str("percentiles(")?;
                for (i, (q, d)) in p.points.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "p{}={}", fmt_percent(*q), Canonical(*d))?;
                }
                if let Some(min) = p.min {
                    write!(f, ", min={}", Canonical(min))?;
                }
                if let Some(max) = p.max {
                    write!(f, ", max={}", Canonical(max))?;
                }
                f.write_str(")")
            }
        }
    }
}

#[cfg(test)]
mod tests;
