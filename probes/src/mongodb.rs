//! `mongodb://`: ready when the official driver connects and `ping` succeeds on the `admin`
//! database. Server selection is bounded by the attempt timeout so a dead server fails the attempt
//! rather than waiting for the driver's 30 s default.
//!
//! Before the driver is involved, one plain TCP connect per listed host: if every host refuses, the
//! attempt ends at once as "connection refused". Otherwise a driver that first saw a refused port
//! would only look again at its next heartbeat (500 ms at the soonest), and a MongoDB that comes up
//! would be noticed late; building a client for a port nobody listens on is also the costliest
//! way to find out.

use std::time::Duration;

use mongodb::bson::doc;
use mongodb::options::{ClientOptions, ServerAddress};

use crate::redact::redact_url;
use crate::target::MongodbTarget;
use crate::{Probe, ProbeError, ProbeFuture, Secret};

pub struct MongodbProbe {
    target: MongodbTarget,
    timeout: Duration,
}

impl MongodbProbe {
    pub fn new(target: MongodbTarget, timeout: Duration) -> MongodbProbe {
        crate::install_crypto_provider();
        MongodbProbe { target, timeout }
    }

    async fn run(&self) -> Result<(), ProbeError> {
        let secrets: Vec<&Secret> = self.target.password.iter().collect();
        let fail = |e: mongodb::error::Error| {
            ProbeError::NotReady(Secret::scrub_all(&e.to_string(), &secrets))
        };
        let mut opts = ClientOptions::parse(&self.target.url).await.map_err(fail)?;
        let mut refused = None;
        for addr in &opts.hosts {
            let ServerAddress::Tcp { host, port } = addr else {
                refused = None;
                break;
            };
            match tokio::net::TcpStream::connect((host.as_str(), port.unwrap_or(27017))).await {
                Ok(_) => {
                    refused = None;
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => refused = Some(e),
                // Unreachable for another reason: let the driver say so in its own words.
                Err(_) => {
                    refused = None;
                    break;
                }
            }
        }
        if let Some(e) = refused {
            return Err(ProbeError::from_io(&e, &secrets));
        }
        // Leave a little of the attempt for the ping itself.
        let select = self.timeout.mul_f64(0.9);
        opts.server_selection_timeout = Some(select);
        opts.connect_timeout = Some(select);
        opts.app_name = Some("gantry-probe".into());
        let client = mongodb::Client::with_options(opts).map_err(fail)?;
        let result = client
            .database("admin")
            .run_command(doc! { "ping": 1 })
            .await
            .map(drop)
            .map_err(fail);
        client.shutdown().await;
        result
    }
}

impl Probe for MongodbProbe {
    fn describe(&self) -> String {
        format!("mongodb {}", redact_url(&self.target.url))
    }

    fn attempt_timeout(&self) -> Duration {
        self.timeout
    }

    fn check(&self) -> ProbeFuture<'_> {
        Box::pin(self.run())
    }
}
