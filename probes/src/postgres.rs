//! `postgres://` / `postgresql://`: ready when a client can authenticate to the database and run
//! `SELECT 1`. tokio-postgres without TLS; the server's own error ("password authentication failed
//! for user …", "database … does not exist", "the database system is starting up") is the reason.

use std::time::Duration;

use crate::target::DbTarget;
use crate::{Probe, ProbeError, ProbeFuture, Secret};

/// libpq falls back to the OS user; in a container that is usually root, which rarely exists as a
/// role. `postgres` is the role every server has.
const DEFAULT_USER: &str = "postgres";

pub struct PostgresProbe {
    target: DbTarget,
    timeout: Duration,
}

impl PostgresProbe {
    pub fn new(target: DbTarget, timeout: Duration) -> PostgresProbe {
        PostgresProbe { target, timeout }
    }

    fn fail(&self, e: tokio_postgres::Error) -> ProbeError {
        let secrets: Vec<&Secret> = self.target.password.iter().collect();
        match e.as_db_error() {
            Some(db) => ProbeError::NotReady(Secret::scrub_all(
                &format!("{} (PostgreSQL {})", db.message(), db.code().code()),
                &secrets,
            )),
            None => ProbeError::from_chain(&e, &secrets),
        }
    }

    async fn run(&self) -> Result<(), ProbeError> {
        let t = &self.target;
        let mut config = tokio_postgres::Config::new();
        config
            .host(&t.endpoint.host)
            .port(t.endpoint.port)
            .user(t.user.as_deref().unwrap_or(DEFAULT_USER))
            .application_name("gantry-probe")
            .connect_timeout(self.timeout);
        if let Some(p) = &t.password {
            config.password(p.expose());
        }
        if let Some(db) = &t.database {
            config.dbname(db);
        }
        let (client, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|e| self.fail(e))?;
        // The connection object does the I/O; it ends when `client` is dropped below.
        let io = tokio::spawn(connection);
        let result = client
            .simple_query("SELECT 1")
            .await
            .map(drop)
            .map_err(|e| self.fail(e));
        drop(client);
        let _ = io.await;
        result
    }
}

impl Probe for PostgresProbe {
    fn describe(&self) -> String {
        let mut t = self.target.clone();
        t.user.get_or_insert_with(|| DEFAULT_USER.to_string());
        t.describe("postgres")
    }

    fn attempt_timeout(&self) -> Duration {
        self.timeout
    }

    fn check(&self) -> ProbeFuture<'_> {
        Box::pin(self.run())
    }
}
