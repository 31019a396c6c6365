//! No password or token in any description, error or log line — for every backend, ready or not.

use std::time::Duration;

use gantry_probes::spec::{CredentialsSpec, DatabaseSpec, HostSpec};
use gantry_probes::{build_probe, parse_url, wait_until_ready, Dependency, ProbeSpec, WaitOptions};

use crate::databases::{mysql_user, MYSQL_PW, PG_PW};
use crate::messaging::{redis_user, REDIS_PW};
use crate::{captured_logs, logs_text, silent_server};

#[tokio::test]
async fn no_password_in_logs_descriptions_or_errors() {
    captured_logs();
    mysql_user();
    redis_user();
    let silent = silent_server();
    // Wrong passwords that would be easy to spot, next to the right ones.
    let wrong = "Zq9-wrong-Secret-77";
    let urls = [
        format!("mysql://gantry_app:{MYSQL_PW}@127.0.0.1:3306/test"),
        format!("mysql://gantry_app:{wrong}@127.0.0.1:3306/test"),
        format!("postgres://gantry_pw:{PG_PW}@127.0.0.1/test"),
        format!("postgres://gantry_pw:{wrong}@127.0.0.1/test"),
        format!("redis://gantry_app:{REDIS_PW}@127.0.0.1:6379/1"),
        format!("redis://gantry_app:{wrong}@127.0.0.1:6379/1"),
        format!("redis://:{wrong}@127.0.0.1:6379/1"),
        "amqp://guest:guest@127.0.0.1:5672/%2f".to_string(),
        format!("amqp://guest:{wrong}@127.0.0.1:5672/%2f"),
        format!("mongodb://app:{wrong}@127.0.0.1:{silent}/x"),
        format!("http://user:{wrong}@127.0.0.1:{silent}/x?token={wrong}"),
        format!("mysql://gantry_app:{wrong}@127.0.0.1:{silent}/test"),
    ];
    let mut seen = String::new();
    let mut deps = Vec::new();
    for url in &urls {
        let mut t = parse_url(url).unwrap();
        t.timeout = Duration::from_millis(700);
        let p = t.into_probe().unwrap();
        seen.push_str(&p.describe());
        deps.push(Dependency::from_probe(p));
    }
    // Bad URLs are reported with the password hidden.
    for bad in [
        format!("mysql://app:{wrong}@127.0.0.1:99999/x"),
        format!("redis://app:{wrong}@127.0.0.1/notanumber"),
        format!("gopher://app:{wrong}@h/"),
    ] {
        seen.push_str(&parse_url(&bad).unwrap_err().to_string());
    }
    // An HCL-style block with the password in a field.
    let spec = ProbeSpec::Mysql(DatabaseSpec {
        host: Some(HostSpec {
            hostname: Some("127.0.0.1".into()),
            port: None,
        }),
        credentials: Some(CredentialsSpec {
            user: Some("gantry_app".into()),
            password: Some(wrong.into()),
        }),
        ..Default::default()
    });
    deps.push(Dependency::new("hcl", build_probe("hcl", &spec).unwrap()));
    seen.push_str(&format!("{spec:?}"));

    let opts = WaitOptions {
        deadline: Some(Duration::from_secs(3)),
        report_every: Duration::from_millis(500),
        ..Default::default()
    };
    let err = wait_until_ready(deps, &opts, std::future::pending())
        .await
        .unwrap_err();
    seen.push_str(&err.to_string());
    seen.push_str(&format!("{err:?}"));
    // The failing ones really failed with the server's reasons (so the test saw real errors).
    assert!(seen.contains("Access denied"), "{seen}");
    assert!(seen.contains("WRONGPASS"), "{seen}");
    assert!(seen.contains("ACCESS_REFUSED"), "{seen}");
    let logs = logs_text();
    assert!(
        logs.contains("still waiting for"),
        "no progress lines were logged:\n{logs}"
    );

    for secret in [wrong, MYSQL_PW, PG_PW, REDIS_PW] {
        assert!(!seen.contains(secret), "{secret} leaked into:\n{seen}");
        assert!(
            !logs.contains(secret),
            "{secret} leaked into the logs:\n{logs}"
        );
    }
}
