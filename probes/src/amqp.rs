//! `amqp://` / `amqps://`: ready when a connection to the virtual host opens with the credentials
//! (lapin on tokio, rustls/ring for amqps). The broker's own reason ("ACCESS_REFUSED - Login was
//! refused…", "NOT_ALLOWED - vhost x not found") is the reason.

use std::time::Duration;

use lapin::uri::{AMQPAuthority, AMQPQueryString, AMQPScheme, AMQPUri, AMQPUserInfo};

use crate::target::AmqpTarget;
use crate::{Probe, ProbeError, ProbeFuture, Secret};

pub struct AmqpProbe {
    target: AmqpTarget,
    timeout: Duration,
}

impl AmqpProbe {
    pub fn new(target: AmqpTarget, timeout: Duration) -> AmqpProbe {
        crate::install_crypto_provider();
        AmqpProbe { target, timeout }
    }

    fn uri(&self) -> AMQPUri {
        let t = &self.target;
        AMQPUri {
            scheme: if t.tls {
                AMQPScheme::AMQPS
            } else {
                AMQPScheme::AMQP
            },
            authority: AMQPAuthority {
                userinfo: AMQPUserInfo {
                    username: t.user.clone(),
                    password: t.password.expose().to_string(),
                },
                host: t.endpoint.host.clone(),
                port: t.endpoint.port,
            },
            vhost: t.vhost.clone(),
            query: AMQPQueryString {
                connection_timeout: u64::try_from(self.timeout.as_millis()).ok(),
                ..Default::default()
            },
        }
    }

    async fn run(&self) -> Result<(), ProbeError> {
        let secrets = [&self.target.password];
        let conn =
            lapin::Connection::connect_uri(self.uri(), lapin::ConnectionProperties::default())
                .await
                .map_err(|e| fail(e, &secrets))?;
        let _ = conn.close(200, "gantry readiness probe".into()).await;
        Ok(())
    }
}

fn fail(e: lapin::Error, secrets: &[&Secret]) -> ProbeError {
    match e.kind() {
        lapin::ErrorKind::IOError(io) => ProbeError::from_io(io, secrets),
        _ => ProbeError::from_chain(&e, secrets),
    }
}

impl Probe for AmqpProbe {
    fn describe(&self) -> String {
        let t = &self.target;
        let scheme = if t.tls { "amqps" } else { "amqp" };
        format!("{scheme} {} vhost {:?} as {}", t.endpoint, t.vhost, t.user)
    }

    fn attempt_timeout(&self) -> Duration {
        self.timeout
    }

    fn check(&self) -> ProbeFuture<'_> {
        Box::pin(self.run())
    }
}
