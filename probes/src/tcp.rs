//! `tcp://host:port`: ready when a TCP connection opens. Says nothing about the protocol behind it.

use std::time::Duration;

use tokio::net::TcpStream;

use crate::target::Endpoint;
use crate::{Probe, ProbeError, ProbeFuture};

pub struct TcpProbe {
    endpoint: Endpoint,
    timeout: Duration,
}

impl TcpProbe {
    pub fn new(endpoint: Endpoint, timeout: Duration) -> TcpProbe {
        TcpProbe { endpoint, timeout }
    }
}

/// Connects to `endpoint`, mapping "refused" to [`ProbeError::Refused`]. Shared by the backends that
/// speak their protocol over a plain socket themselves.
pub(crate) async fn connect(endpoint: &Endpoint) -> Result<TcpStream, ProbeError> {
    let stream = TcpStream::connect((endpoint.host.as_str(), endpoint.port))
        .await
        .map_err(|e| ProbeError::from_io(&e, &[]))?;
    // Probes send a few small commands and wait for each answer; Nagle would only delay them.
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

impl Probe for TcpProbe {
    fn describe(&self) -> String {
        format!("tcp {}", self.endpoint)
    }

    fn attempt_timeout(&self) -> Duration {
        self.timeout
    }

    fn check(&self) -> ProbeFuture<'_> {
        Box::pin(async move { connect(&self.endpoint).await.map(drop) })
    }
}
