//! MySQL (the machine's MariaDB) and PostgreSQL.

use std::sync::Once;
use std::time::Duration;

use crate::{assert_contains, check, free_port, reason, sh, silent_server};

pub const MYSQL_PW: &str = "gantry-my-pw";
/// Created by `.ci/services.sh`, the only role here that needs a password.
pub const PG_PW: &str = "gantry-pg-pw";

/// A MySQL user `gantry_app` with a password, allowed into database `test`.
pub fn mysql_user() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let mut sql = String::new();
        for host in ["%", "localhost", "127.0.0.1"] {
            sql.push_str(&format!(
                "CREATE USER IF NOT EXISTS 'gantry_app'@'{host}' IDENTIFIED BY '{MYSQL_PW}'; \
                 ALTER USER 'gantry_app'@'{host}' IDENTIFIED BY '{MYSQL_PW}'; \
                 GRANT ALL ON test.* TO 'gantry_app'@'{host}'; "
            ));
        }
        sh(&format!("mariadb -h 127.0.0.1 -u root -e \"{sql}\""));
    });
}

#[tokio::test]
async fn mysql_ready_with_the_right_password() {
    mysql_user();
    check(&format!(
        "mysql://gantry_app:{MYSQL_PW}@127.0.0.1:3306/test"
    ))
    .await
    .unwrap();
    // Default port, no database.
    check(&format!("mysql://gantry_app:{MYSQL_PW}@127.0.0.1"))
        .await
        .unwrap();
}

#[tokio::test]
async fn mysql_wrong_password_gives_the_servers_reason() {
    mysql_user();
    let r = reason("mysql://gantry_app:not-the-password@127.0.0.1:3306/test").await;
    assert_contains(&r, "Access denied for user 'gantry_app'");
    assert_contains(&r, "MySQL error 1045");
}

#[tokio::test]
async fn mysql_unknown_database_gives_the_servers_reason() {
    mysql_user();
    let r = reason("mysql://root@127.0.0.1:3306/gantry_no_such_db").await;
    assert_contains(&r, "Unknown database 'gantry_no_such_db'");
}

#[tokio::test]
async fn mysql_closed_port_and_silent_server() {
    assert_eq!(
        reason(&format!("mysql://root@127.0.0.1:{}/test", free_port())).await,
        "connection refused"
    );
    let port = silent_server();
    let p = crate::probe_with_timeout(
        &format!("mysql://root@127.0.0.1:{port}/test"),
        Duration::from_millis(500),
    );
    let e = gantry_probes::attempt(p.as_ref()).await.unwrap_err();
    assert_eq!(e.to_string(), "timed out after 500ms");
}

#[tokio::test]
async fn mysql_probe_against_another_protocol_is_not_ready() {
    // Redis answers a MySQL client with an error line, not a handshake.
    let r = reason("mysql://root@127.0.0.1:6379/test").await;
    assert!(!r.is_empty());
}

#[tokio::test]
async fn postgres_ready_with_the_right_password() {
    check(&format!("postgres://gantry_pw:{PG_PW}@127.0.0.1:5432/test"))
        .await
        .unwrap_or_else(|e| panic!("{e} (has .ci/services.sh created role gantry_pw?)"));
    check("postgresql://postgres@127.0.0.1/postgres")
        .await
        .unwrap();
}

#[tokio::test]
async fn postgres_wrong_password_gives_the_servers_reason() {
    let r = reason("postgres://gantry_pw:not-the-password@127.0.0.1/test").await;
    assert_contains(&r, "password authentication failed for user \"gantry_pw\"");
}

#[tokio::test]
async fn postgres_unknown_database_and_role() {
    let r = reason("postgres://postgres@127.0.0.1/gantry_no_such_db").await;
    assert_contains(&r, "database \"gantry_no_such_db\" does not exist");
    let r = reason("postgres://gantry_no_such_role@127.0.0.1/test").await;
    assert_contains(&r, "role \"gantry_no_such_role\" does not exist");
}

#[tokio::test]
async fn postgres_closed_port_and_silent_server() {
    assert_eq!(
        reason(&format!(
            "postgres://postgres@127.0.0.1:{}/test",
            free_port()
        ))
        .await,
        "connection refused"
    );
    let port = silent_server();
    let p = crate::probe_with_timeout(
        &format!("postgres://postgres@127.0.0.1:{port}/test"),
        Duration::from_millis(500),
    );
    let e = gantry_probes::attempt(p.as_ref()).await.unwrap_err();
    assert_eq!(e.to_string(), "timed out after 500ms");
}
