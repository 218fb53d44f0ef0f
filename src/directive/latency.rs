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
mod tests {
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
}
