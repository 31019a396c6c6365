//! Timestamps prefixed to job output lines (`enableTimestamps`).
//!
//! mittnite takes Go time layouts (`timestampFormat = "RFC3339"`, `customTimestampFormat =
//! "2006-01-02 15:04:05"`), so this module owns the translation from Go's reference-time layouts to
//! chrono's strftime, and the names Go gives its standard layouts.

use chrono::{DateTime, Local};

/// A compiled timestamp format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimestampFormat {
    strftime: String,
}

const NAMED: &[(&str, &str)] = &[
    ("ANSIC", "Mon Jan _2 15:04:05 2006"),
    ("UnixDate", "Mon Jan _2 15:04:05 MST 2006"),
    ("RubyDate", "Mon Jan 02 15:04:05 -0700 2006"),
    ("RFC822", "02 Jan 06 15:04 MST"),
    ("RFC822Z", "02 Jan 06 15:04 -0700"),
    ("RFC850", "Monday, 02-Jan-06 15:04:05 MST"),
    ("RFC1123", "Mon, 02 Jan 2006 15:04:05 MST"),
    ("RFC1123Z", "Mon, 02 Jan 2006 15:04:05 -0700"),
    ("RFC3339", "2006-01-02T15:04:05Z07:00"),
    ("RFC3339Nano", "2006-01-02T15:04:05.999999999Z07:00"),
    ("Kitchen", "3:04PM"),
    ("Stamp", "Jan _2 15:04:05"),
    ("StampMilli", "Jan _2 15:04:05.000"),
    ("StampMicro", "Jan _2 15:04:05.000000"),
    ("StampNano", "Jan _2 15:04:05.000000000"),
    ("DateTime", "2006-01-02 15:04:05"),
    ("DateOnly", "2006-01-02"),
    ("TimeOnly", "15:04:05"),
];

/// Go layout tokens, longest first so that `2006` wins over `2` and `.000000` over `.000`.
const TOKENS: &[(&str, &str)] = &[
    (".999999999", "%.f"),
    (".000000000", "%.9f"),
    (".000000", "%.6f"),
    (".000", "%.3f"),
    ("January", "%B"),
    ("Monday", "%A"),
    ("Z07:00", "%:z"),
    ("-07:00", "%:z"),
    ("Z0700", "%z"),
    ("-0700", "%z"),
    ("2006", "%Y"),
    ("MST", "%Z"),
    ("Jan", "%b"),
    ("Mon", "%a"),
    ("_2", "%e"),
    ("01", "%m"),
    ("02", "%d"),
    ("03", "%I"),
    ("04", "%M"),
    ("05", "%S"),
    ("06", "%y"),
    ("15", "%H"),
    ("PM", "%p"),
    ("pm", "%P"),
    ("1", "%-m"),
    ("2", "%-d"),
    ("3", "%-I"),
    ("4", "%-M"),
    ("5", "%-S"),
];

impl TimestampFormat {
    /// A Go standard layout by name (`RFC3339`, `Kitchen`, ...), case-insensitive.
    pub fn named(name: &str) -> Result<Self, String> {
        NAMED
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.trim()))
            .map(|(_, layout)| Self::go_layout(layout))
            .ok_or_else(|| {
                let names: Vec<&str> = NAMED.iter().map(|(n, _)| *n).collect();
                format!(
                    "unknown timestamp format {name:?} (known: {}; or set customTimestampFormat)",
                    names.join(", ")
                )
            })
    }

    /// A Go reference-time layout such as `"2006-01-02 15:04:05.000"`.
    pub fn go_layout(layout: &str) -> Self {
        let mut out = String::with_capacity(layout.len() * 2);
        let mut rest = layout;
        'outer: while let Some(c) = rest.chars().next() {
            for (token, spec) in TOKENS {
                if let Some(after) = rest.strip_prefix(token) {
                    out.push_str(spec);
                    rest = after;
                    continue 'outer;
                }
            }
            if c == '%' {
                out.push_str("%%");
            } else {
                out.push(c);
            }
            rest = &rest[c.len_utf8()..];
        }
        TimestampFormat { strftime: out }
    }

    pub fn format(&self, t: &DateTime<Local>) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        // chrono reports an invalid specifier as a fmt error; fall back to RFC 3339 rather than panic.
        if write!(s, "{}", t.format(&self.strftime)).is_err() {
            s = t.to_rfc3339();
        }
        s
    }

    pub fn now(&self) -> String {
        self.format(&Local::now())
    }
}

impl Default for TimestampFormat {
    fn default() -> Self {
        Self::go_layout("2006-01-02T15:04:05Z07:00")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at() -> DateTime<Local> {
        Local
            .with_ymd_and_hms(2024, 3, 5, 14, 7, 9)
            .single()
            .expect("unambiguous test time")
    }

    #[test]
    fn go_layouts_translate() {
        let f = TimestampFormat::go_layout("2006-01-02 15:04:05");
        assert_eq!(f.format(&at()), "2024-03-05 14:07:09");
        let f = TimestampFormat::go_layout("02/01/06 3:04PM");
        assert_eq!(f.format(&at()), "05/03/24 2:07PM");
        let f = TimestampFormat::go_layout("99% Jan _2");
        assert_eq!(f.format(&at()), "99% Mar  5");
    }

    #[test]
    fn named_layouts() {
        assert!(TimestampFormat::named("rfc3339").is_ok());
        assert_eq!(
            TimestampFormat::named("Kitchen").map(|f| f.format(&at())),
            Ok("2:07PM".to_string())
        );
        let err = TimestampFormat::named("iso").unwrap_err();
        assert!(err.contains("RFC3339"), "{err}");
    }
}
