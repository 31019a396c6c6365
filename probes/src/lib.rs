//! gantry-probes: is a dependency really ready?
//!
//! A [`Probe`] does the handshake a real client would (MySQL: log in and `SELECT 1`; AMQP: open a
//! connection to the virtual host; SMTP: greeting, EHLO, NOOP, QUIT; HTTP: a status in the accepted
//! range) and answers `Ok(())` or a [`ProbeError`] that carries the server's own reason. One module per
//! backend; each heavy driver sits behind a cargo feature (all on by default).
//!
//! How the pieces fit:
//!
//! - [`Target`] is a resolved, ready-to-run description of one probe; [`parse_url`] builds one from a
//!   URL (`mysql://app:pw@db/app`) and [`ProbeSpec::resolve`] from mittnite's HCL probe blocks (the
//!   config loader fills a [`ProbeSpec`]; this crate never sees HCL).
//! - [`Target::into_probe`] (or [`build_probe`] for a spec) gives a boxed [`Probe`].
//! - [`wait::wait_until_ready`] polls many probes in parallel with backoff, a deadline and a cancel
//!   future, and logs progress with `tracing`.
//!
//! Credentials: every description, log line and error this crate produces is free of passwords and
//! tokens. Passwords are held in [`Secret`], URLs are shown through [`redact_url`], and every error
//! text from a driver is passed through [`Secret::scrub`] before it leaves the probe.
//!
//! TLS: every TLS client here uses rustls with the *ring* provider. Call [`install_crypto_provider`]
//! once at start-up (probe constructors call it too; it is idempotent).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub mod duration;
pub mod redact;
pub mod spec;
pub mod target;
pub mod wait;

#[cfg(feature = "amqp")]
pub mod amqp;
pub mod exec;
pub mod filesystem;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "mongodb")]
pub mod mongodb;
#[cfg(feature = "mysql")]
pub mod mysql;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "smtp")]
pub mod smtp;
pub mod tcp;

pub use duration::parse_duration;
pub use redact::{redact_url, ProbeUrl, Secret};
pub use spec::{build_probe, ProbeSpec, SpecError};
pub use target::{parse_url, Backend, Endpoint, Target};
pub use wait::{wait_until_ready, Dependency, WaitError, WaitOptions, WaitSummary};

/// How long one attempt may take before it counts as "not ready: timed out".
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// The future a probe's [`Probe::check`] returns.
pub type ProbeFuture<'a> = Pin<Box<dyn Future<Output = Result<(), ProbeError>> + Send + 'a>>;

/// A boxed probe, as the wait engine takes them.
pub type BoxProbe = Box<dyn Probe>;

/// One readiness check against one dependency.
pub trait Probe: Send + Sync {
    /// What is being checked, for people: `mysql 127.0.0.1:3306/app as app`. Never contains a
    /// password or token.
    fn describe(&self) -> String;

    /// The limit for one attempt; [`attempt`] enforces it.
    fn attempt_timeout(&self) -> Duration {
        DEFAULT_ATTEMPT_TIMEOUT
    }

    /// One attempt. It may hang (a server that accepts and never speaks); callers go through
    /// [`attempt`], which bounds it.
    fn check(&self) -> ProbeFuture<'_>;
}

/// Why a dependency is not ready. The text is the server's own reason where there is one, already
/// scrubbed of credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// Nothing listens there (connection refused). Cheap to retry, so the wait engine retries it
    /// more often than the other kinds.
    #[error("connection refused{}", detail(.0))]
    Refused(String),
    /// The attempt did not finish within its timeout.
    #[error("timed out after {}", fmt_duration(*.0))]
    TimedOut(Duration),
    /// The server answered and said no (bad password, unknown database, wrong status...), or the
    /// connection failed some other way.
    #[error("{0}")]
    NotReady(String),
}

fn detail(s: &str) -> String {
    if s.is_empty() {
        String::new()
    } else {
        format!(" ({s})")
    }
}

impl ProbeError {
    /// Classifies an I/O error from connecting: "refused" is its own kind, the rest keep their text.
    pub fn from_io(err: &std::io::Error, secrets: &[&Secret]) -> ProbeError {
        if err.kind() == std::io::ErrorKind::ConnectionRefused {
            ProbeError::Refused(String::new())
        } else {
            ProbeError::NotReady(Secret::scrub_all(&err.to_string(), secrets))
        }
    }

    /// Builds an error from any error's full `source()` chain, scrubbed of the given secrets. A
    /// chain that ends in "connection refused" becomes [`ProbeError::Refused`].
    pub fn from_chain(err: &(dyn std::error::Error + 'static), secrets: &[&Secret]) -> ProbeError {
        let mut refused = false;
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
        while let Some(e) = cur {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                refused |= io.kind() == std::io::ErrorKind::ConnectionRefused;
            }
            cur = e.source();
        }
        let text = Secret::scrub_all(&error_chain(err), secrets);
        if refused {
            ProbeError::Refused(String::new())
        } else {
            ProbeError::NotReady(text)
        }
    }

    /// True for "connection refused": nothing listens yet.
    pub fn is_refused(&self) -> bool {
        matches!(self, ProbeError::Refused(_))
    }
}

/// `outer: inner: innermost`, skipping a source whose text its parent already contains.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !s.is_empty() && !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = e.source();
    }
    out
}

/// Runs one attempt of `probe` under its own timeout.
pub async fn attempt(probe: &dyn Probe) -> Result<(), ProbeError> {
    let limit = probe.attempt_timeout();
    match tokio::time::timeout(limit, probe.check()).await {
        Ok(result) => result,
        Err(_) => Err(ProbeError::TimedOut(limit)),
    }
}

/// Installs rustls' *ring* provider as the process default. Safe to call any number of times; the
/// first caller wins. Every TLS client in this crate is built on ring, so one provider serves all.
pub fn install_crypto_provider() {
    // Err means a provider is already installed, which is what we want either way.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// `1.2s`, `85ms`, `2m03s` — a duration for log lines.
pub fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        let s = d.as_secs();
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

#[cfg(feature = "redis")]
/// A shared root store for the TLS clients we build ourselves (Redis). Mozilla's roots, compiled in,
/// so a scratch container needs no CA bundle.
pub(crate) fn tls_client_config() -> std::sync::Arc<rustls::ClientConfig> {
    install_crypto_provider();
    let roots = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    std::sync::Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}
