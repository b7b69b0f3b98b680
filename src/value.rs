//! Typed errors for values read from text: command-line arguments, config
//! values and experiment settings. Every parser outside the consensus code
//! answers with a [`ValueError`], so clap, the config loader and tests see
//! one error type with its source instead of a bare message.

use std::num::{ParseFloatError, ParseIntError};
use std::str::FromStr;

/// The most characters of a rejected value an error repeats.
pub const MAX_ECHO_CHARS: usize = 64;

/// A value that does not parse or is out of its range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Not a decimal number.
    #[error("{given:?} is not a number: {source}")]
    Float {
        /// The text (at most [`MAX_ECHO_CHARS`]).
        given: String,
        /// Why not.
        #[source]
        source: ParseFloatError,
    },
    /// Not a whole number (or too large for its type).
    #[error("{given:?} is not a whole number: {source}")]
    Int {
        /// The text (at most [`MAX_ECHO_CHARS`]).
        given: String,
        /// Why not.
        #[source]
        source: ParseIntError,
    },
    /// Not of the accepted form.
    #[error("{given:?}: expected {expected}")]
    Form {
        /// The text (at most [`MAX_ECHO_CHARS`]).
        given: String,
        /// The accepted forms, e.g. `START:END seconds`.
        expected: &'static str,
    },
    /// A well-formed value outside its range.
    #[error("{given:?}: {rule}")]
    Range {
        /// The text (at most [`MAX_ECHO_CHARS`]).
        given: String,
        /// The rule broken, e.g. `every value must be in [0, 1]`.
        rule: &'static str,
    },
}

fn echo(s: &str) -> String {
    s.chars().take(MAX_ECHO_CHARS).collect()
}

impl ValueError {
    /// `given` is not of the form `expected`.
    #[must_use]
    pub fn form(given: &str, expected: &'static str) -> ValueError {
        ValueError::Form {
            given: echo(given),
            expected,
        }
    }

    /// `given` breaks `rule`.
    #[must_use]
    pub fn range(given: &str, rule: &'static str) -> ValueError {
        ValueError::Range {
            given: echo(given),
            rule,
        }
    }
}

/// A decimal number (surrounding spaces allowed).
///
/// # Errors
/// [`ValueError::Float`].
pub fn float(s: &str) -> Result<f64, ValueError> {
    s.trim().parse().map_err(|source| ValueError::Float {
        given: echo(s),
        source,
    })
}

/// A finite number above zero (`inf`, `NaN`, 0 and negatives refused):
/// durations, rates, bandwidths.
///
/// # Errors
/// [`ValueError::Float`] or [`ValueError::Range`].
pub fn positive(s: &str) -> Result<f64, ValueError> {
    let v = float(s)?;
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(ValueError::range(s, "a finite number above 0"))
    }
}

/// A whole number of type `T` (surrounding spaces allowed).
///
/// # Errors
/// [`ValueError::Int`].
pub fn int<T: FromStr<Err = ParseIntError>>(s: &str) -> Result<T, ValueError> {
    s.trim().parse().map_err(|source| ValueError::Int {
        given: echo(s),
        source,
    })
}

/// `text` safe to print on a terminal: control characters (ESC, CSI, BEL,
/// CR...) are escaped as Rust escapes them (`\u{1b}`), so a miner id or
/// a peer's string cannot plant ANSI/OSC sequences in an operator's
/// terminal. Text without them is borrowed unchanged.
#[must_use]
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if text.chars().any(char::is_control) {
        let mut out = String::with_capacity(text.len() + 8);
        for c in text.chars() {
            if c.is_control() {
                out.extend(c.escape_default());
            } else {
                out.push(c);
            }
        }
        std::borrow::Cow::Owned(out)
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// `--allow-host NAME`: a DNS name (letters, digits, `-`, `.`; at most
/// 253 bytes), the form [`crate::api::host::HostRule`] takes.
///
/// # Errors
/// [`ValueError`] for anything else.
pub fn host_name(s: &str) -> Result<String, ValueError> {
    crate::api::host::HostRule::with_names(&[s])
        .map(|_| s.to_string())
        .map_err(|_| ValueError::form(s, "a host name: letters, digits, '-' and '.'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positive_refuses_infinity_nan_and_zero() {
        assert_eq!(positive("600").unwrap(), 600.0);
        assert_eq!(positive(" 0.5 ").unwrap(), 0.5);
        for bad in ["inf", "-inf", "NaN", "0", "-1", "x"] {
            assert!(positive(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn control_characters_are_escaped_for_terminals() {
        assert_eq!(printable("alice.rig1"), "alice.rig1");
        let evil = "m\u{1b}]0;pwned\u{7}\u{1b}[2J\r";
        let shown = printable(evil);
        assert!(!shown.chars().any(char::is_control), "{shown}");
        assert_eq!(shown, "m\\u{1b}]0;pwned\\u{7}\\u{1b}[2J\\r");
    }

    #[test]
    fn errors_carry_their_source_and_a_bounded_echo() {
        let e = int::<u32>("12x").unwrap_err();
        assert!(matches!(e, ValueError::Int { .. }));
        assert!(std::error::Error::source(&e).is_some());
        let long = "9".repeat(1000);
        let ValueError::Int { given, .. } = int::<u8>(&long).unwrap_err() else {
            panic!("an Int error")
        };
        assert_eq!(given.len(), MAX_ECHO_CHARS);
        assert_eq!(float(" 0.25 ").unwrap(), 0.25);
        assert!(float("x").is_err());
    }
}
