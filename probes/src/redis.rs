//! `redis://` / `rediss://`: ready when `AUTH` (if credentials are given), `SELECT` (if the database
//! is not 0) and `PING` all succeed. The three commands are spoken directly in RESP over tokio (and
//! tokio-rustls for `rediss://`), so the Redis backend needs no driver; the server's own error line
//! ("WRONGPASS invalid username-password pair…", "LOADING Redis is loading the dataset in memory") is
//! the reason.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

use crate::target::RedisTarget;
use crate::{Probe, ProbeError, ProbeFuture, Secret};

/// Longest reply line we read; PING/AUTH/SELECT replies are a few bytes.
const MAX_LINE: u64 = 64 * 1024;

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub struct RedisProbe {
    target: RedisTarget,
    timeout: Duration,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl RedisProbe {
    pub fn new(target: RedisTarget, timeout: Duration) -> RedisProbe {
        let tls = target.tls.then(crate::tls_client_config);
        RedisProbe {
            target,
            timeout,
            tls,
        }
    }

    async fn open(&self) -> Result<Box<dyn Io>, ProbeError> {
        let tcp = crate::tcp::connect(&self.target.endpoint).await?;
        let Some(config) = &self.tls else {
            return Ok(Box::new(tcp));
        };
        let name = rustls::pki_types::ServerName::try_from(self.target.endpoint.host.clone())
            .map_err(|e| ProbeError::NotReady(format!("TLS server name: {e}")))?;
        let tls = tokio_rustls::TlsConnector::from(config.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| ProbeError::NotReady(format!("TLS handshake: {e}")))?;
        Ok(Box::new(tls))
    }

    async fn run(&self) -> Result<(), ProbeError> {
        let secrets: Vec<&Secret> = self.target.password.iter().collect();
        let mut conn = BufReader::new(self.open().await?);
        if let Some(pw) = &self.target.password {
            let mut auth = vec!["AUTH"];
            if let Some(user) = &self.target.user {
                auth.push(user);
            }
            auth.push(pw.expose());
            command(&mut conn, &auth, &secrets).await?;
        }
        if self.target.db != 0 {
            let db = self.target.db.to_string();
            command(&mut conn, &["SELECT", &db], &secrets).await?;
        }
        let pong = command(&mut conn, &["PING"], &secrets).await?;
        if pong != "PONG" {
            return Err(ProbeError::NotReady(format!(
                "unexpected answer to PING: {pong:?}"
            )));
        }
        Ok(())
    }
}

/// Sends one command and reads a one-line reply: `+…` is success, `-…` the server's error.
async fn command(
    conn: &mut BufReader<Box<dyn Io>>,
    args: &[&str],
    secrets: &[&Secret],
) -> Result<String, ProbeError> {
    let mut buf = format!("*{}\r\n", args.len());
    for a in args {
        buf.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    let io_err = |e: std::io::Error| ProbeError::from_io(&e, secrets);
    conn.get_mut()
        .write_all(buf.as_bytes())
        .await
        .map_err(io_err)?;
    conn.get_mut().flush().await.map_err(io_err)?;
    let mut line = Vec::new();
    (&mut *conn)
        .take(MAX_LINE)
        .read_until(b'\n', &mut line)
        .await
        .map_err(io_err)?;
    if line.is_empty() {
        return Err(ProbeError::NotReady(
            "the server closed the connection without answering".into(),
        ));
    }
    let text = String::from_utf8_lossy(&line).trim_end().to_string();
    let text = Secret::scrub_all(&text, secrets);
    match text.split_at_checked(1) {
        Some(("+", rest)) => Ok(rest.to_string()),
        Some(("-", rest)) => Err(ProbeError::NotReady(rest.to_string())),
        _ => Err(ProbeError::NotReady(format!(
            "not a Redis server? it answered {:?}",
            text.chars().take(80).collect::<String>()
        ))),
    }
}

impl Probe for RedisProbe {
    fn describe(&self) -> String {
        let t = &self.target;
        let scheme = if t.tls { "rediss" } else { "redis" };
        let mut s = format!("{scheme} {}/{}", t.endpoint, t.db);
        if let Some(u) = &t.user {
            s.push_str(" as ");
            s.push_str(u);
        }
        s
    }

    fn attempt_timeout(&self) -> Duration {
        self.timeout
    }

    fn check(&self) -> ProbeFuture<'_> {
        Box::pin(self.run())
    }
}
