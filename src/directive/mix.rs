//! Weighted mixes (`97% approved, 2% declined, 1% error`): the weights are kept as parts per
//! million so that `0.5%` is exact and picking is one integer draw.

use std::fmt;

use rand::{Rng, RngExt};

/// Parts per million in 100%.
pub const WHOLE: u32 = 1_000_000;

/// A weighted choice among values; whatever the weights leave is `rest`.
#[derive(Debug, Clone, PartialEq)]
pub struct Mix<T> {
    /// `(cumulative upper bound in ppm, value)`, ascending; a draw below a bound picks its value.
    entries: Vec<(u32, T)>,
    rest: T,
}

impl<T> Mix<T> {
    /// A mix that always gives `value`.
    pub fn single(value: T) -> Self {
        Mix {
            entries: Vec::new(),
            rest: value,
        }
    }

    /// Builds a mix from `(weight in ppm, value)` pairs; `None` when they add up past 100%.
    pub fn from_weights(weights: Vec<(u32, T)>, rest: T) -> Option<Self> {
        let mut total: u32 = 0;
        let mut entries = Vec::with_capacity(weights.len());
        for (weight, value) in weights {
            total = total.checked_add(weight).filter(|t| *t <= WHOLE)?;
            if weight > 0 {
                entries.push((total, value));
            }
        }
        if total == WHOLE {
            // The last entry takes the whole remainder: `rest` is never picked.
            if let Some((_, value)) = entries.pop() {
                return Some(Mix {
                    entries,
                    rest: value,
                });
            }
        }
        Some(Mix { entries, rest })
    }

    /// Picks one value. A mix of one value draws nothing from `rng`.
    pub fn pick<R: Rng + ?Sized>(&self, rng: &mut R) -> &T {
        if self.entries.is_empty() {
            return &self.rest;
        }
        let draw = rng.random_range(0..WHOLE);
        self.entries
            .iter()
            .find(|(bound, _)| draw < *bound)
            .map_or(&self.rest, |(_, v)| v)
    }

    /// `(weight in ppm, value)` for every value the mix can give, `rest` last.
    pub fn weights(&self) -> impl Iterator<Item = (u32, &T)> {
        let mut previous = 0;
        let last = self.entries.last().map_or(0, |(b, _)| *b);
        self.entries
            .iter()
            .map(move |(bound, value)| {
                let weight = bound - previous;
                previous = *bound;
                (weight, value)
            })
            .chain(std::iter::once((WHOLE - last, &self.rest)))
    }
}

/// The directive form: `97% approved, 3% error`, or the value alone when it is the only one.
/// Parsing the printed text of an outcome or fault mix gives the same mix back.
impl<T: fmt::Display> fmt::Display for Mix<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.entries.is_empty() {
            return self.rest.fmt(f);
        }
        for (i, (weight, value)) in self.weights().filter(|(w, _)| *w > 0).enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}% {value}", super::cursor::fmt_percent(weight))?;
        }
        Ok(())
    }
}
