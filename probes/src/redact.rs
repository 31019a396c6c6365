//! Keeping credentials out of everything a person or a log can see.
//!
//! Owns [`Secret`] (a password that will not print) and [`redact_url`] (a URL with its password and
//! secret-looking query values replaced by `***`). Nothing here logs; callers decide what to show.

use std::fmt;

/// A password or token. `Debug` and `Display` print `***`; only [`Secret::expose`] gives the value.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The real value, for handing to a driver. Never format it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Replaces every occurrence of this secret (raw or percent-encoded) in `text` with `***`.
    pub fn scrub(&self, text: &str) -> String {
        Secret::scrub_all(text, &[self])
    }

    /// [`Secret::scrub`] for several secrets at once.
    pub fn scrub_all(text: &str, secrets: &[&Secret]) -> String {
        let mut out = text.to_string();
        for s in secrets {
            // Very short secrets would blank out ordinary words; they still never get printed by
            // us, and a driver quoting a 1-2 character password back is not a leak worth the noise.
            if s.0.len() < 3 {
                continue;
            }
            let encoded =
                percent_encoding::utf8_percent_encode(&s.0, percent_encoding::NON_ALPHANUMERIC)
                    .to_string();
            out = out.replace(&s.0, "***");
            if encoded != s.0 {
                out = out.replace(&encoded, "***");
            }
        }
        out
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Secret {
        Secret(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Secret {
        Secret(s.to_string())
    }
}

/// A URL as a user wrote it, which may hold a password. `Debug` and `Display` show it through
/// [`redact_url`]; [`ProbeUrl::as_str`] gives the real text.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct ProbeUrl(String);

impl ProbeUrl {
    pub fn new(url: impl Into<String>) -> ProbeUrl {
        ProbeUrl(url.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for ProbeUrl {
    fn from(s: String) -> ProbeUrl {
        ProbeUrl(s)
    }
}

impl From<&str> for ProbeUrl {
    fn from(s: &str) -> ProbeUrl {
        ProbeUrl(s.to_string())
    }
}

impl fmt::Debug for ProbeUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", redact_url(&self.0))
    }
}

impl fmt::Display for ProbeUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

/// Query parameters whose values are hidden in [`redact_url`].
fn secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["pass", "token", "secret", "credential"]
        .iter()
        .any(|w| k.contains(w))
        || ["key", "apikey", "api_key", "sig", "signature"].contains(&k.as_str())
}

/// `mysql://app:pw@db:3306/x` → `mysql://app:***@db:3306/x`. Works on anything URL-shaped,
/// including strings the `url` crate rejects (MongoDB's `mongodb://a:1,b:2/`), and on garbage (it
/// only ever removes text). Secret-looking query values (`?password=…`, `?token=…`) become `***`.
pub fn redact_url(raw: &str) -> String {
    let Some(scheme_end) = raw.find("://") else {
        return raw.to_string();
    };
    let (scheme, rest) = raw.split_at(scheme_end + 3);
    // The authority ends at the first '/', '?' or '#'; userinfo is everything before its last '@'.
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(auth_end);
    let authority = match authority.rfind('@') {
        Some(at) => {
            let (userinfo, host) = authority.split_at(at);
            match userinfo.find(':') {
                Some(colon) => format!("{}:***{}", &userinfo[..colon], host),
                None => authority.to_string(),
            }
        }
        None => authority.to_string(),
    };
    let tail = match tail.find('?') {
        Some(q) => {
            let (path, query) = tail.split_at(q + 1);
            let (query, fragment) = match query.find('#') {
                Some(h) => query.split_at(h),
                None => (query, ""),
            };
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) if secret_key(k) => format!("{k}=***"),
                    _ => pair.to_string(),
                })
                .collect();
            format!("{path}{}{fragment}", query.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}{authority}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_in_userinfo_is_hidden() {
        assert_eq!(
            redact_url("mysql://app:s3cret@db:3306/x"),
            "mysql://app:***@db:3306/x"
        );
        assert_eq!(
            redact_url("redis://:s3cret@h:6379/2"),
            "redis://:***@h:6379/2"
        );
    }

    #[test]
    fn at_sign_in_password_does_not_leak_the_rest() {
        assert_eq!(redact_url("amqp://u:p@ss@h/v"), "amqp://u:***@h/v");
    }

    #[test]
    fn user_without_password_and_no_userinfo_are_unchanged() {
        assert_eq!(redact_url("postgres://app@db/x"), "postgres://app@db/x");
        assert_eq!(redact_url("tcp://db:1"), "tcp://db:1");
        assert_eq!(redact_url("not a url"), "not a url");
    }

    #[test]
    fn multi_host_mongodb_and_secret_query_values() {
        assert_eq!(
            redact_url("mongodb://u:pw@a:1,b:2/db?replicaSet=rs&authSource=admin"),
            "mongodb://u:***@a:1,b:2/db?replicaSet=rs&authSource=admin"
        );
        assert_eq!(
            redact_url("https://h/p?x=1&access_token=abc#frag"),
            "https://h/p?x=1&access_token=***#frag"
        );
    }

    #[test]
    fn scrub_hides_raw_and_encoded_forms() {
        let s = Secret::new("p@ss w0rd");
        assert_eq!(s.scrub("a p@ss w0rd b p%40ss%20w0rd"), "a *** b ***");
        assert_eq!(format!("{s:?} {s}"), "*** ***");
    }
}
