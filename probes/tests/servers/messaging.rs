//! Redis and RabbitMQ (AMQP 0-9-1), the machine's own servers.

use std::sync::Once;
use std::time::Duration;

use crate::{assert_contains, check, free_port, reason, sh, silent_server};

pub const REDIS_PW: &str = "gantry-redis-pw";

/// A Redis ACL user `gantry_app` with a password; the default user stays password-less.
pub fn redis_user() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        sh(&format!(
            "redis-cli -h 127.0.0.1 ACL SETUSER gantry_app reset on '>{REDIS_PW}' '~*' '&*' '+@all'"
        ));
    });
}

#[tokio::test]
async fn redis_ready_with_user_password_and_db() {
    redis_user();
    check(&format!("redis://gantry_app:{REDIS_PW}@127.0.0.1:6379/2"))
        .await
        .unwrap();
    check("redis://127.0.0.1").await.unwrap();
}

#[tokio::test]
async fn redis_wrong_password_gives_the_servers_reason() {
    redis_user();
    let r = reason("redis://gantry_app:not-the-password@127.0.0.1:6379").await;
    assert_contains(&r, "WRONGPASS");
    // A password for a user that has none configured: Redis says so.
    let r = reason("redis://:not-the-password@127.0.0.1:6379").await;
    assert_contains(&r, "AUTH");
}

#[tokio::test]
async fn redis_unknown_database_gives_the_servers_reason() {
    let r = reason("redis://127.0.0.1:6379/999").await;
    assert_contains(&r, "DB index is out of range");
}

#[tokio::test]
async fn redis_closed_port_silent_server_and_wrong_protocol() {
    assert_eq!(
        reason(&format!("redis://127.0.0.1:{}", free_port())).await,
        "connection refused"
    );
    let port = silent_server();
    let p = crate::probe_with_timeout(
        &format!("redis://127.0.0.1:{port}"),
        Duration::from_millis(500),
    );
    let e = gantry_probes::attempt(p.as_ref()).await.unwrap_err();
    assert_eq!(e.to_string(), "timed out after 500ms");
    // PostgreSQL does not speak RESP; it hangs up on the garbage.
    let r = reason("redis://127.0.0.1:5432").await;
    assert!(!r.is_empty());
}

#[tokio::test]
async fn rediss_to_a_plain_server_fails_the_tls_handshake() {
    // PostgreSQL reads the TLS ClientHello as a bad startup packet and hangs up. (Redis itself would
    // wait for a newline that never comes: the attempt timeout covers that.)
    let r = reason("rediss://127.0.0.1:5432").await;
    assert_contains(&r, "TLS handshake");
}

#[tokio::test]
async fn amqp_ready_on_the_default_vhost() {
    check("amqp://guest:guest@127.0.0.1:5672/%2f")
        .await
        .unwrap();
    check("amqp://127.0.0.1").await.unwrap();
}

#[tokio::test]
async fn amqp_wrong_password_gives_the_brokers_reason() {
    let r = reason("amqp://guest:not-the-password@127.0.0.1:5672/%2f").await;
    assert_contains(&r, "ACCESS_REFUSED");
}

#[tokio::test]
async fn amqp_unknown_vhost_gives_the_brokers_reason() {
    let r = reason("amqp://guest:guest@127.0.0.1:5672/gantry-no-such-vhost").await;
    assert_contains(&r, "gantry-no-such-vhost");
}

#[tokio::test]
async fn amqp_closed_port_and_silent_server() {
    assert_eq!(
        reason(&format!("amqp://127.0.0.1:{}", free_port())).await,
        "connection refused"
    );
    let port = silent_server();
    let p = crate::probe_with_timeout(
        &format!("amqp://127.0.0.1:{port}"),
        Duration::from_millis(500),
    );
    let e = gantry_probes::attempt(p.as_ref()).await.unwrap_err();
    assert_eq!(e.to_string(), "timed out after 500ms");
}
