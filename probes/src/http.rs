//! `http://` and `https://`: ready when a request gets a status in the accepted range (default
//! 200–399; redirects are not followed, a 3xx counts as an answer), and the body contains the
//! expected text if one is set. reqwest over rustls (ring).
//!
//! `bodyContains` reads the body as a stream and stops as soon as the text is found, or after the
//! first [`BODY_SCAN_LIMIT`] bytes (1 MiB): a health endpoint that streams without end (or a huge
//! page) fails the attempt with a clear reason instead of filling gantry's memory. The text is looked
//! for as UTF-8 bytes in the raw body (no charset decoding, no decompression).

use std::time::Duration;

use memchr::memmem;
use reqwest::header::{HeaderName, HeaderValue};

use crate::redact::{redact_url, Secret};
use crate::spec::SpecError;
use crate::target::HttpTarget;
use crate::{Probe, ProbeError, ProbeFuture};

/// How much of a body `bodyContains` looks at before it gives up: 1 MiB. A readiness page that
/// needs more than this to say "ready" is not one.
pub const BODY_SCAN_LIMIT: usize = 1024 * 1024;

/// Looks for a needle in a body fed chunk by chunk, keeping only the last `needle.len() - 1` bytes
/// between chunks (so a match that spans two chunks is found) and stopping at a byte limit.
pub struct BodyScan {
    finder: memmem::Finder<'static>,
    /// The tail of the bytes seen so far, then the new chunk.
    window: Vec<u8>,
    seen: usize,
    limit: usize,
}

/// Where a [`BodyScan`] stands after a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scan {
    Found,
    /// Not found yet; feed the next chunk.
    More,
    /// Not found in the first `limit` bytes; the rest is not read.
    LimitReached,
}

impl BodyScan {
    pub fn new(needle: &str, limit: usize) -> BodyScan {
        BodyScan {
            finder: memmem::Finder::new(needle.as_bytes()).into_owned(),
            window: Vec::new(),
            seen: 0,
            limit,
        }
    }

    /// Feeds the next chunk of the body; only the part within the limit is looked at.
    pub fn feed(&mut self, chunk: &[u8]) -> Scan {
        let take = chunk.len().min(self.limit - self.seen);
        self.seen += take;
        self.window.extend_from_slice(&chunk[..take]);
        if self.finder.find(&self.window).is_some() {
            return Scan::Found;
        }
        if self.seen >= self.limit {
            return Scan::LimitReached;
        }
        let keep = self.finder.needle().len().saturating_sub(1);
        let drop = self.window.len().saturating_sub(keep);
        self.window.drain(..drop);
        Scan::More
    }

    /// The whole body has been fed: was the needle in it? (An empty needle is in every body.)
    pub fn finish(&self) -> bool {
        self.finder.find(&self.window).is_some()
    }
}

pub struct HttpProbe {
    target: HttpTarget,
    client: reqwest::Client,
    method: reqwest::Method,
    headers: reqwest::header::HeaderMap,
    timeout: Duration,
}

impl HttpProbe {
    pub fn new(target: HttpTarget, timeout: Duration) -> Result<HttpProbe, SpecError> {
        crate::install_crypto_provider();
        let bad = |reason: String| SpecError::Url {
            url: redact_url(&target.url),
            reason,
        };
        let method = reqwest::Method::from_bytes(target.method.as_bytes())
            .map_err(|_| bad(format!("{:?} is not an HTTP method", target.method)))?;
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in &target.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| bad(format!("{name:?} is not a header name")))?;
            let mut value = HeaderValue::from_str(value.expose())
                .map_err(|_| bad(format!("the value of header {name} is not valid")))?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout)
            .build()
            .map_err(|e| bad(e.to_string()))?;
        Ok(HttpProbe {
            target,
            client,
            method,
            headers,
            timeout,
        })
    }

    fn secrets(&self) -> Vec<Secret> {
        let mut s: Vec<Secret> = self.target.headers.iter().map(|(_, v)| v.clone()).collect();
        if let Ok(u) = url::Url::parse(&self.target.url) {
            if let Some(p) = u.password() {
                // As written (percent-encoded) and as the server would quote it back.
                let decoded = percent_encoding::percent_decode_str(p).decode_utf8_lossy();
                if decoded != p {
                    s.push(Secret::new(decoded.into_owned()));
                }
                s.push(Secret::new(p));
            }
        }
        s
    }

    async fn run(&self) -> Result<(), ProbeError> {
        let secrets = self.secrets();
        let secrets: Vec<&Secret> = secrets.iter().collect();
        let fail = |e: reqwest::Error| ProbeError::from_chain(&e.without_url(), &secrets);
        let mut resp = self
            .client
            .request(self.method.clone(), &self.target.url)
            .headers(self.headers.clone())
            .send()
            .await
            .map_err(fail)?;
        let status = resp.status();
        let (lo, hi) = self.target.status;
        if !(lo..=hi).contains(&status.as_u16()) {
            return Err(ProbeError::NotReady(format!(
                "HTTP {status} (accepted {})",
                if lo == hi {
                    lo.to_string()
                } else {
                    format!("{lo}-{hi}")
                }
            )));
        }
        if let Some(needle) = &self.target.body_contains {
            let mut scan = BodyScan::new(needle, BODY_SCAN_LIMIT);
            let found = loop {
                match resp.chunk().await.map_err(fail)? {
                    None => break scan.finish(),
                    Some(chunk) => match scan.feed(&chunk) {
                        Scan::Found => break true,
                        Scan::More => {}
                        Scan::LimitReached => {
                            // Dropping the response closes the connection: nothing more is read.
                            return Err(ProbeError::NotReady(format!(
                                "HTTP {status}, but the first {} of the body do not contain \
                                 {needle:?} (bodyContains reads no further)",
                                fmt_size(BODY_SCAN_LIMIT)
                            )));
                        }
                    },
                }
            };
            if !found {
                return Err(ProbeError::NotReady(format!(
                    "HTTP {status}, but the body does not contain {needle:?}"
                )));
            }
        }
        Ok(())
    }
}

/// `1 MiB`, `64 KiB`, `100 bytes`.
fn fmt_size(n: usize) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} bytes")
    }
}

impl Probe for HttpProbe {
    fn describe(&self) -> String {
        format!("http {} {}", self.method, redact_url(&self.target.url))
    }

    fn attempt_timeout(&self) -> Duration {
        self.timeout
    }

    fn check(&self) -> ProbeFuture<'_> {
        Box::pin(self.run())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(needle: &str, limit: usize, chunks: &[&str]) -> (Vec<Scan>, bool) {
        let mut s = BodyScan::new(needle, limit);
        let steps = chunks.iter().map(|c| s.feed(c.as_bytes())).collect();
        (steps, s.finish())
    }

    #[test]
    fn a_needle_split_across_chunks_is_found() {
        let (steps, _) = scan("ready", 100, &["status: re", "ad", "y!"]);
        assert_eq!(steps, [Scan::More, Scan::More, Scan::Found]);
    }

    #[test]
    fn the_window_between_chunks_stays_small() {
        let mut s = BodyScan::new("needle", usize::MAX);
        for _ in 0..1000 {
            assert_eq!(s.feed(&[b'x'; 4096]), Scan::More);
        }
        assert!(s.window.len() < "needle".len(), "{}", s.window.len());
    }

    #[test]
    fn only_the_first_limit_bytes_are_searched() {
        // "ok" starts at byte 9, within a 10-byte limit only half of it is.
        let (steps, _) = scan("ok", 10, &["xxxxxxxxx", "ok"]);
        assert_eq!(steps, [Scan::More, Scan::LimitReached]);
        let (steps, _) = scan("ok", 11, &["xxxxxxxxx", "ok"]);
        assert_eq!(steps, [Scan::More, Scan::Found]);
    }

    #[test]
    fn a_body_that_ends_short_of_the_limit_is_judged_whole() {
        assert_eq!(scan("up", 100, &["all u"]), (vec![Scan::More], false));
        assert_eq!(scan("", 100, &[]), (vec![], true));
    }

    #[test]
    fn sizes() {
        assert_eq!(fmt_size(BODY_SCAN_LIMIT), "1 MiB");
        assert_eq!(fmt_size(64 << 10), "64 KiB");
        assert_eq!(fmt_size(100), "100 bytes");
    }
}
