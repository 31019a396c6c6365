//! `mysql://`: ready when a client can authenticate, select the database (if one is given) and run
//! `SELECT 1`. mysql_async over TCP; the server's own error text ("Access denied for user 'app'…",
//! "Unknown database 'x'") is the reason.

use std::time::Duration;

use mysql_async::prelude::Queryable;

use crate::target::DbTarget;
use crate::{Probe, ProbeError, ProbeFuture, Secret};

pub struct MysqlProbe {
    target: DbTarget,
    timeout: Duration,
}

impl MysqlProbe {
    pub fn new(target: DbTarget, timeout: Duration) -> MysqlProbe {
        crate::install_crypto_provider();
        MysqlProbe { target, timeout }
    }

    fn fail(&self, e: mysql_async::Error) -> ProbeError {
        let secrets: Vec<&Secret> = self.target.password.iter().collect();
        match e {
            // The server's message is the reason; the code helps people search for it.
            mysql_async::Error::Server(s) => ProbeError::NotReady(Secret::scrub_all(
                &format!("{} (MySQL error {})", s.message, s.code),
                &secrets,
            )),
            other => ProbeError::from_chain(&other, &secrets),
        }
    }

    async fn run(&self) -> Result<(), ProbeError> {
        let t = &self.target;
        let opts = mysql_async::OptsBuilder::default()
            .ip_or_hostname(t.endpoint.host.clone())
            .tcp_port(t.endpoint.port)
            .user(t.user.clone())
            .pass(t.password.as_ref().map(|p| p.expose().to_string()))
            .db_name(t.database.clone())
            // A probe on 127.0.0.1 must test the TCP port, not sneak through the unix socket.
            .prefer_socket(false);
        let mut conn = mysql_async::Conn::new(opts)
            .await
            .map_err(|e| self.fail(e))?;
        let result = conn.query_drop("SELECT 1").await.map_err(|e| self.fail(e));
        // Say goodbye so the server does not log an aborted connection for every probe.
        let _ = conn.disconnect().await;
        result
    }
}

impl Probe for MysqlProbe {
    fn describe(&self) -> String {
        self.target.describe("mysql")
    }

    fn attempt_timeout(&self) -> Duration {
        self.timeout
    }

    fn check(&self) -> ProbeFuture<'_> {
        Box::pin(self.run())
    }
}
