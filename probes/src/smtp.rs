//! `smtp://` / `smtps://`: ready when the server greets, answers EHLO and NOOP, and says goodbye to
//! QUIT; with STARTTLS the session is upgraded (and EHLO repeated) before NOOP. lettre on tokio with
//! rustls (ring). The server's own reply ("421 too busy") is the reason.

use std::time::Duration;

use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;

use crate::target::{SmtpTarget, SmtpTls};
use crate::{Probe, ProbeError, ProbeFuture};

pub struct SmtpProbe {
    target: SmtpTarget,
    timeout: Duration,
}

impl SmtpProbe {
    pub fn new(target: SmtpTarget, timeout: Duration) -> SmtpProbe {
        crate::install_crypto_provider();
        SmtpProbe { target, timeout }
    }

    async fn run(&self) -> Result<(), ProbeError> {
        let t = &self.target;
        let fail = |e: lettre::transport::smtp::Error| ProbeError::from_chain(&e, &[]);
        let tls = || {
            TlsParameters::new(t.endpoint.host.clone())
                .map_err(|e| ProbeError::NotReady(format!("TLS setup: {e}")))
        };
        let hello = hello_name();
        let implicit = match t.tls {
            SmtpTls::Implicit => Some(tls()?),
            _ => None,
        };
        let mut conn = AsyncSmtpConnection::connect_tokio1(
            (t.endpoint.host.as_str(), t.endpoint.port),
            Some(self.timeout),
            &hello,
            implicit,
            None,
        )
        .await
        .map_err(fail)?;
        if t.tls == SmtpTls::StartTls {
            conn.starttls(tls()?, &hello).await.map_err(fail)?;
        }
        // NOOP, with the reply checked (test_connected() would hide the server's answer).
        let noop = conn.command(lettre::transport::smtp::commands::Noop).await;
        let _ = conn.quit().await;
        noop.map(drop).map_err(fail)
    }
}

/// The name sent with EHLO: this machine's host name (a container's is its id), as a real client
/// would send; strict servers refuse made-up names less often than they refuse missing ones.
fn hello_name() -> ClientId {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    if name.is_empty() {
        ClientId::Domain("localhost".into())
    } else {
        ClientId::Domain(name)
    }
}

impl Probe for SmtpProbe {
    fn describe(&self) -> String {
        let t = &self.target;
        match t.tls {
            SmtpTls::None => format!("smtp {}", t.endpoint),
            SmtpTls::StartTls => format!("smtp {} (STARTTLS)", t.endpoint),
            SmtpTls::Implicit => format!("smtps {}", t.endpoint),
        }
    }

    fn attempt_timeout(&self) -> Duration {
        self.timeout
    }

    fn check(&self) -> ProbeFuture<'_> {
        Box::pin(self.run())
    }
}
