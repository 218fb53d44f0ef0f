//! Transport faults (`fault=`): what happens at the socket instead of, or to, the
//! response.

use std::fmt;

use super::{DirectiveError, Mix};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A normal response.
    None,
    /// TCP RST after the request is read (SO_LINGER 0), no response.
    Reset,
    /// Clean close (FIN) with no response bytes.
    Close,
    /// Nothing until the client gives up or `--max-latency` after arrival, then FIN.
    Hang,
    /// Status line and headers fine, body broken JSON.
    Malformed,
    /// `Content-Length` promises more than is sent, then close.
    Truncated,
    /// Random bytes, then close.
    Garbage,
    /// Status and headers after the latency, then the body at this many bytes per second.
    Dribble { bytes_per_sec: u32 },
}

impl Fault {
    /// Parses a fault mix: `reset`, `0.5% reset, 0.5% hang`, `dribble(1KB/s)`. What the weights
    /// leave is `none`.
    pub fn parse_mix(text: &str) -> Result<Mix<Fault>, DirectiveError> {
        super::cursor::parse_fault_mix(text)
    }

    /// The metrics label of this fault's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::None => "none",
            Fault::Reset => "reset",
            Fault::Close => "close",
            Fault::Hang => "hang",
            Fault::Malformed => "malformed",
            Fault::Truncated => "truncated",
            Fault::Garbage => "garbage",
            Fault::Dribble { .. } => "dribble",
        }
    }
}

/// The directive form; `dribble` prints its rate in bytes per second (`dribble(1000B/s)`).
impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Dribble { bytes_per_sec } => write!(f, "dribble({bytes_per_sec}B/s)"),
            other => f.write_str(other.kind()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn one(text: &str) -> Fault {
        let mix = Fault::parse_mix(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let all: Vec<_> = mix.weights().collect();
        assert_eq!(all.len(), 1, "{text}");
        *all[0].1
    }

    #[test]
    fn every_fault() {
        for (text, fault) in [
            ("none", Fault::None),
            ("reset", Fault::Reset),
            ("close", Fault::Close),
            ("hang", Fault::Hang),
            ("malformed", Fault::Malformed),
            ("truncated", Fault::Truncated),
            ("garbage", Fault::Garbage),
            (
                "dribble(1KB/s)",
                Fault::Dribble {
                    bytes_per_sec: 1000,
                },
            ),
            (
                "dribble( 2KiB/s )",
                Fault::Dribble {
                    bytes_per_sec: 2048,
                },
            ),
            (
                "dribble(1MB/s)",
                Fault::Dribble {
                    bytes_per_sec: 1_000_000,
                },
            ),
            (
                "dribble(1MiB/s)",
                Fault::Dribble {
                    bytes_per_sec: 1_048_576,
                },
            ),
            ("dribble(10B/s)", Fault::Dribble { bytes_per_sec: 10 }),
        ] {
            assert_eq!(one(text), fault, "{text}");
        }
    }

    #[test]
    fn mixes_leave_the_rest_none() {
        let mix = Fault::parse_mix("0.5% reset, 0.5% hang").unwrap();
        let weights: Vec<(u32, Fault)> = mix.weights().map(|(w, f)| (w, *f)).collect();
        assert_eq!(
            weights,
            vec![
                (5_000, Fault::Reset),
                (5_000, Fault::Hang),
                (990_000, Fault::None)
            ]
        );
        for text in [
            "0.5% reset, 0.5% hang",
            "dribble(1000B/s)",
            "50% dribble(3KB/s), 50% close",
        ] {
            let mix = Fault::parse_mix(text).unwrap();
            assert_eq!(Fault::parse_mix(&mix.to_string()).unwrap(), mix, "{text}");
        }
    }

    #[test]
    fn errors_name_the_text_and_what_was_expected() {
        let cases: &[(&str, &str)] = &[
            (
                "rest",
                "expected a fault (none, reset, close, hang, malformed, truncated, garbage or dribble(1KB/s)) at 'rest' in 'rest'",
            ),
            ("", "expected a fault"),
            (
                "dribble",
                "expected '(' and a rate such as dribble(1KB/s) at the end of 'dribble'",
            ),
            (
                "dribble(0B/s)",
                "expected a rate above 0 such as 1KB/s (units B/s, KB/s, KiB/s, MB/s or MiB/s) at '0B/s'",
            ),
            ("dribble(1kb/s)", "at '1kb/s'"),
            ("dribble(100)", "at '100'"),
            (
                "dribble()",
                "expected a rate above 0 such as 1KB/s (units B/s, KB/s, KiB/s, MB/s or MiB/s) at ')'",
            ),
            ("dribble(1KB/s", "expected ')' at the end of"),
            (
                "60% reset, 41% hang",
                "the weights add up to 101%; expected at most 100%",
            ),
            (
                "1% reset, hang",
                "expected a weight such as 5% before every fault of a list at 'hang'",
            ),
        ];
        for (text, expected) in cases {
            let message = Fault::parse_mix(text).unwrap_err().message;
            assert!(message.contains(expected), "{text}: {message}");
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in "\\PC{0,60}") {
            let _ = Fault::parse_mix(&text);
        }

        #[test]
        fn parse_near_grammar_never_panics(
            text in "[0-9A-Za-z/%(),. ]{0,30}",
            word in prop::sample::select(vec!["dribble(", "reset", "1% ", ""]),
        ) {
            let text = format!("{word}{text}");
            if let Ok(mix) = Fault::parse_mix(&text) {
                prop_assert_eq!(Fault::parse_mix(&mix.to_string()).ok(), Some(mix));
            }
        }
    }
}
