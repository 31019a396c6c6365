//! The wait engine against real servers: parallel probes, the deadline report, cancellation, and
//! mittnite probe blocks built through `ProbeSpec`.

use std::time::Duration;

use gantry_probes::spec::{AmqpSpec, CredentialsSpec, DatabaseSpec, HostSpec, RedisSpec};
use gantry_probes::{build_probe, wait_until_ready, Dependency, ProbeSpec, WaitError, WaitOptions};

use crate::databases::{mysql_user, MYSQL_PW};
use crate::{assert_contains, captured_logs, free_port, probe, silent_server};

fn host(name: &str, port: Option<u16>) -> Option<HostSpec> {
    Some(HostSpec {
        hostname: Some(name.into()),
        port: port.map(|p| p.to_string()),
    })
}

#[tokio::test]
async fn mittnite_style_blocks_become_ready_together() {
    captured_logs();
    mysql_user();
    std::env::set_var("GANTRY_ENGINE_TEST_MYSQL_PW", MYSQL_PW);
    let specs = [
        (
            "mysql",
            ProbeSpec::Mysql(DatabaseSpec {
                host: host("127.0.0.1", Some(3306)),
                credentials: Some(CredentialsSpec {
                    user: Some("gantry_app".into()),
                    password: Some("ENV:GANTRY_ENGINE_TEST_MYSQL_PW".into()),
                }),
                database: Some("test".into()),
                ..Default::default()
            }),
        ),
        (
            "redis",
            ProbeSpec::Redis(RedisSpec {
                host: host("127.0.0.1", None),
                ..Default::default()
            }),
        ),
        (
            "amqp",
            ProbeSpec::Amqp(AmqpSpec {
                host: host("127.0.0.1", Some(5672)),
                credentials: Some(CredentialsSpec {
                    user: Some("guest".into()),
                    password: Some("guest".into()),
                }),
                virtualhost: Some("/".into()),
                ..Default::default()
            }),
        ),
        (
            "pg",
            ProbeSpec::Url("postgres://postgres@127.0.0.1/test".into()),
        ),
    ];
    let deps = specs
        .iter()
        .map(|(name, spec)| Dependency::new(*name, build_probe(name, spec).unwrap()))
        .collect();
    let opts = WaitOptions {
        deadline: Some(Duration::from_secs(30)),
        ..Default::default()
    };
    let summary = wait_until_ready(deps, &opts, std::future::pending())
        .await
        .unwrap();
    let names: Vec<&str> = summary.ready.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["mysql", "redis", "amqp", "pg"]);
}

#[tokio::test]
async fn deadline_names_every_probe_that_never_became_ready_with_its_reason() {
    mysql_user();
    let closed = free_port();
    let deps = vec![
        Dependency::new("ok", probe("redis://127.0.0.1:6379")),
        Dependency::new(
            "db",
            probe("mysql://gantry_app:wrong-pw-1@127.0.0.1:3306/test"),
        ),
        Dependency::new("cache", probe(&format!("redis://127.0.0.1:{closed}"))),
    ];
    let opts = WaitOptions {
        deadline: Some(Duration::from_secs(2)),
        ..Default::default()
    };
    let err = wait_until_ready(deps, &opts, std::future::pending())
        .await
        .unwrap_err();
    let WaitError::Deadline { blocking, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(blocking.len(), 2, "{err}");
    let text = err.to_string();
    assert_contains(
        &text,
        "db (mysql 127.0.0.1:3306/test as gantry_app): Access denied for user 'gantry_app'",
    );
    assert_contains(
        &text,
        &format!("cache (redis 127.0.0.1:{closed}/0): connection refused"),
    );
    assert!(!text.contains("ok ("), "{text}");
}

#[tokio::test]
async fn cancel_stops_a_wait_stuck_on_a_silent_server() {
    let port = silent_server();
    // A long attempt timeout: only the cancel can end this promptly.
    let deps = vec![Dependency::new(
        "stuck",
        crate::probe_with_timeout(
            &format!("mysql://root@127.0.0.1:{port}/x"),
            Duration::from_secs(600),
        ),
    )];
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = tx.send(());
    });
    let opts = WaitOptions::default();
    let wait = wait_until_ready(deps, &opts, async {
        let _ = rx.await;
    });
    // The outer timeout is a hang guard only.
    let result = tokio::time::timeout(Duration::from_secs(60), wait)
        .await
        .unwrap_or_else(|_| panic!("the wait ignored its cancel future"));
    let err = result.unwrap_err();
    assert!(matches!(err, WaitError::Cancelled { .. }), "{err}");
    assert_contains(&err.to_string(), "stuck");
}
