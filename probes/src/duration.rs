//! Durations as people write them, for every duration gantry reads — HCL attributes and command-line
//! flags alike: Go's syntax (`"300ms"`, `"1.5h"`, `"1h30m"`, `"0s"`), which mittnite's configuration and
//! go-init-sentinel's flags use, plus bare seconds (`"10"`, `2.5`).
//!
//! It lives in `gantry-probes`, the lowest crate of the workspace, so that a probe URL's `?timeout=`
//! and every HCL attribute and flag of the `gantry` crate (through `config::duration`) share it.
//!
//! Owns the one parser ([`parse_duration`]), the variant that refuses zero ([`parse_interval`], for
//! polling intervals, where zero would spin a core) and the largest duration gantry accepts
//! ([`MAX_DURATION`]). It knows nothing about where a value was written: callers put the attribute or
//! flag name (and the HCL position) in front of the message.
//!
//! **Why a maximum.** A `Duration` can hold far more than a clock can be advanced by: adding
//! `u64::MAX` seconds to an `Instant`, summing kill stages or multiplying a debounce would panic.
//! gantry accepts what Go's `time.ParseDuration` accepts — at most 2^63-1 ns, about 292 years — so that
//! every later use stays in range, and a longer value is an error, never a panic. The arithmetic is
//! exact (integers, no floating point), so `"0.1s"` is exactly 100 ms.

use std::time::Duration;

/// The longest duration gantry accepts: 2^63-1 ns (Go's `time.Duration` maximum), about 292 years.
pub const MAX_DURATION: Duration = Duration::new(9_223_372_036, 854_775_807);

/// [`MAX_DURATION`] as people read it.
const MAX_SHOWN: &str = "2562047h, about 292 years";

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Parses a duration: Go's `"300ms"`, `"1.5h"`, `"1h30m"`, `"2h45m30.5s"`, or bare seconds (`"10"`,
/// `"0.5"`). Units: `ns`, `us` (`µs`), `ms`, `s`, `m`, `h`, `d`. Zero is allowed; negative values and
/// values longer than [`MAX_DURATION`] are errors.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!("invalid duration {text:?} (expected e.g. \"500ms\", \"30s\", \"5m\", \"1h30m\")")
    };
    let s = text.trim();
    let s = s.strip_prefix('+').unwrap_or(s);
    if s.starts_with('-') {
        return Err(format!("invalid duration {text:?}: must not be negative"));
    }
    if s.is_empty() {
        return Err(bad());
    }
    let mut total: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let (number, after) = split_number(rest).ok_or_else(bad)?;
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let unit_nanos: u128 = match unit {
            // Bare seconds, only when the number is all there is.
            "" if rest.len() == s.len() && next.is_empty() => NANOS_PER_SEC,
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => NANOS_PER_SEC,
            "m" => 60 * NANOS_PER_SEC,
            "h" => 3_600 * NANOS_PER_SEC,
            "d" => 86_400 * NANOS_PER_SEC,
            _ => return Err(bad()),
        };
        let nanos = number.nanos(unit_nanos).ok_or_else(|| too_long(text))?;
        total = total.checked_add(nanos).ok_or_else(|| too_long(text))?;
        rest = next;
    }
    from_nanos(total).ok_or_else(|| too_long(text))
}

/// Like [`parse_duration`], for polling intervals: zero is an error (it would poll without pause).
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d.is_zero() {
        return Err(format!(
            "{text:?}: must be longer than 0 (a zero interval would poll without pause)"
        ));
    }
    Ok(d)
}

/// A number of seconds written as a number (HCL `timeout = 30`), checked like a parsed duration.
pub fn duration_from_secs(secs: f64) -> Result<Duration, String> {
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!(
            "invalid duration {secs}: expected a number of seconds ≥ 0"
        ));
    }
    match Duration::try_from_secs_f64(secs) {
        Ok(d) if d <= MAX_DURATION => Ok(d),
        _ => Err(too_long(&secs.to_string())),
    }
}

fn too_long(text: &str) -> String {
    format!("duration {text:?} is too long (at most {MAX_SHOWN})")
}

fn from_nanos(total: u128) -> Option<Duration> {
    let secs = u64::try_from(total / NANOS_PER_SEC).ok()?;
    // The remainder is below 10^9, so it fits.
    let nanos = u32::try_from(total % NANOS_PER_SEC).ok()?;
    let d = Duration::new(secs, nanos);
    (d <= MAX_DURATION).then_some(d)
}

/// One number of a duration: `12`, `1.5`, `.5`, `5.` (as Go accepts), kept as exact decimal digits.
struct Number<'a> {
    whole: &'a str,
    fraction: &'a str,
}

impl Number<'_> {
    /// The number times `unit` nanoseconds, truncated to whole nanoseconds; `None` on overflow.
    fn nanos(&self, unit: u128) -> Option<u128> {
        let mut whole: u128 = 0;
        for d in self.whole.bytes() {
            whole = whole.checked_mul(10)?.checked_add(u128::from(d - b'0'))?;
        }
        let mut total = whole.checked_mul(unit)?;
        // Digits beyond the 18th cannot change the result by a nanosecond for any unit up to a day.
        let mut fraction: u128 = 0;
        let mut scale: u128 = 1;
        for d in self.fraction.bytes().take(18) {
            fraction = fraction * 10 + u128::from(d - b'0');
            scale *= 10;
        }
        total = total.checked_add(fraction * unit / scale)?;
        Some(total)
    }
}

/// Splits the leading number off `s`; `None` when `s` does not start with one.
fn split_number(s: &str) -> Option<(Number<'_>, &str)> {
    let whole_len = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (whole, after) = s.split_at(whole_len);
    let (fraction, rest) = match after.strip_prefix('.') {
        Some(frac) => {
            let len = frac
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(frac.len());
            frac.split_at(len)
        }
        None => ("", after),
    };
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    Some((Number { whole, fraction }, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_and_bare_seconds() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0.1s"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration(".5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5.s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration(" 2.5 "), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_duration("+3s"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("250µs"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("7ns"), Ok(Duration::from_nanos(7)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(
            parse_duration("2h45m30.5s"),
            Ok(Duration::from_millis(9_930_500))
        );
    }

    #[test]
    fn malformed_durations_are_errors() {
        for bad in [
            "", " ", "s", "10x", "1..2s", ".", ".s", "1e3", "1 s", "5s10", "inf", "NaN", "--1s",
        ] {
            let err = parse_duration(bad).expect_err(bad);
            assert!(err.contains("invalid duration"), "{bad}: {err}");
        }
        assert!(parse_duration("-1s").unwrap_err().contains("negative"));
    }

    #[test]
    fn durations_longer_than_gos_maximum_are_errors_not_panics() {
        assert_eq!(
            parse_duration("2562047h"),
            Ok(Duration::from_secs(2562047 * 3600))
        );
        assert_eq!(
            parse_duration("9223372036.854775807s"),
            Ok(MAX_DURATION),
            "the maximum itself"
        );
        for long in [
            "99999999999999999999s",
            "2562048h",
            "9223372036.854775808s",
            "18446744073709551616",
            "1000000000000000000000000000000000000000000000h",
            "2562047h2562047h",
        ] {
            let err = parse_duration(long).expect_err(long);
            assert!(err.contains("too long"), "{long}: {err}");
            assert!(err.contains(long), "the message names the value: {err}");
        }
    }

    #[test]
    fn many_fraction_digits_are_truncated_not_overflowed() {
        let text = format!("1.{}s", "9".repeat(200));
        assert_eq!(parse_duration(&text), Ok(Duration::new(1, 999_999_999)));
    }

    #[test]
    fn intervals_must_not_be_zero() {
        assert_eq!(parse_interval("2s"), Ok(Duration::from_secs(2)));
        for zero in ["0", "0s", "0ms", "0.0h"] {
            let err = parse_interval(zero).expect_err(zero);
            assert!(err.contains("longer than 0"), "{err}");
        }
    }

    #[test]
    fn seconds_written_as_numbers() {
        assert_eq!(duration_from_secs(1.5), Ok(Duration::from_millis(1500)));
        assert!(duration_from_secs(-1.0).is_err());
        assert!(duration_from_secs(f64::INFINITY).is_err());
        assert!(duration_from_secs(f64::NAN).is_err());
        assert!(duration_from_secs(1e19).unwrap_err().contains("too long"));
    }
}
