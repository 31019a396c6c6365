//! tcp, http, filesystem and exec: servers and commands the test makes itself.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gantry_probes::spec::{ExecSpec, HttpSpec};
use gantry_probes::{build_probe, wait_until_ready, Dependency, ProbeSpec, WaitOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{assert_contains, check, free_port, reason, silent_server};

/// A small HTTP/1.1 server: `/ok` 200 "hello world", `/down` 503, `/moved` 302, `/empty` 204,
/// `/auth` 200 only with `Authorization: Bearer t0ken-xyz`, else 401.
async fn serve_http(listener: tokio::net::TcpListener) {
    loop {
        let Ok((mut conn, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(async move {
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let req = String::from_utf8_lossy(&req).to_string();
            let path = req.split_whitespace().nth(1).unwrap_or("/").to_string();
            let authorized = req
                .lines()
                .any(|l| l.eq_ignore_ascii_case("authorization: Bearer t0ken-xyz"));
            let (status, body) = match path.as_str() {
                "/ok" => ("200 OK", "hello world"),
                "/down" => ("503 Service Unavailable", "starting"),
                "/moved" => ("302 Found", ""),
                "/empty" => ("204 No Content", ""),
                "/auth" if authorized => ("200 OK", "welcome"),
                "/auth" => ("401 Unauthorized", ""),
                _ => ("404 Not Found", ""),
            };
            let resp = format!(
                "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(resp.as_bytes()).await;
        });
    }
}

async fn http_server() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
    tokio::spawn(serve_http(l));
    port
}

fn opts() -> WaitOptions {
    WaitOptions {
        // A guard against a hang, not a timing assertion.
        deadline: Some(Duration::from_secs(30)),
        ..Default::default()
    }
}

#[tokio::test]
async fn tcp_ready_refused_and_late_listener() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    check(&format!("tcp://127.0.0.1:{port}")).await.unwrap();
    drop(l);
    let r = reason(&format!("tcp://127.0.0.1:{}", free_port())).await;
    assert_eq!(r, "connection refused");

    // Bound only after the wait has started.
    let port = free_port();
    let late = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(700));
        let l = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        for c in l.incoming().take(3) {
            drop(c);
        }
    });
    let deps = vec![Dependency::from_probe(crate::probe(&format!(
        "tcp://127.0.0.1:{port}"
    )))];
    let summary = wait_until_ready(deps, &opts(), std::future::pending())
        .await
        .unwrap();
    assert!(
        summary.ready[0].attempts > 1,
        "it was ready before it was bound?"
    );
    drop(late);
}

#[tokio::test]
async fn http_status_range_body_and_headers() {
    let port = http_server().await;
    let base = format!("http://127.0.0.1:{port}");
    check(&format!("{base}/ok")).await.unwrap();
    check(&format!("{base}/moved")).await.unwrap();
    assert_contains(
        &reason(&format!("{base}/down")).await,
        "HTTP 503 Service Unavailable",
    );
    assert_contains(
        &reason(&format!("{base}/nope")).await,
        "HTTP 404 Not Found (accepted 200-399)",
    );
    assert_eq!(
        reason(&format!("http://127.0.0.1:{}/ok", free_port())).await,
        "connection refused"
    );

    let spec =
        |path: &str, status: Option<&str>, body: Option<&str>, headers: Vec<(&str, &str)>| {
            ProbeSpec::Http(HttpSpec {
                url: Some(format!("{base}{path}").into()),
                status: status.map(Into::into),
                body_contains: body.map(Into::into),
                headers: headers
                    .into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
                ..Default::default()
            })
        };
    let run = |s: ProbeSpec| async move {
        let p = build_probe("web", &s).unwrap();
        gantry_probes::attempt(p.as_ref()).await
    };
    run(spec("/empty", Some("204"), None, vec![]))
        .await
        .unwrap();
    let e = run(spec("/ok", Some("204"), None, vec![]))
        .await
        .unwrap_err();
    assert_contains(&e.to_string(), "HTTP 200 OK (accepted 204)");
    run(spec("/ok", None, Some("hello"), vec![])).await.unwrap();
    let e = run(spec("/ok", None, Some("ready"), vec![]))
        .await
        .unwrap_err();
    assert_contains(&e.to_string(), "the body does not contain \"ready\"");
    run(spec(
        "/auth",
        None,
        None,
        vec![("Authorization", "Bearer t0ken-xyz")],
    ))
    .await
    .unwrap();
    let e = run(spec("/auth", None, None, vec![])).await.unwrap_err();
    assert_contains(&e.to_string(), "HTTP 401");
}

/// A server whose every answer is `200 OK` with a chunked body that never ends: `prefix`, then 64 KiB
/// chunks of `x`. Returns the port and the number of body bytes the server managed to send.
///
/// After [`ENDLESS_STALL_AFTER`] bytes on one connection it stops sending but keeps the body open, so
/// a client that reads everything hangs until its timeout instead of exhausting the test machine's
/// memory. (gantry's black-box test in `tests/probe_phase.rs` uses a server that never stalls.)
async fn endless_body_server(prefix: &'static str) -> (u16, Arc<AtomicUsize>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = sent.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = l.accept().await else {
                return;
            };
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = conn.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{prefix}\r\n",
                    prefix.len()
                );
                if conn.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let mut chunk = format!("{:x}\r\n", 64 * 1024).into_bytes();
                chunk.extend_from_slice(&[b'x'; 64 * 1024]);
                chunk.extend_from_slice(b"\r\n");
                let mut total = 0;
                while total < ENDLESS_STALL_AFTER {
                    if conn.write_all(&chunk).await.is_err() {
                        return;
                    }
                    total += 64 * 1024;
                    counter.fetch_add(64 * 1024, Ordering::SeqCst);
                }
                // Stall: the body stays open, nothing more comes.
                let _ = conn.read(&mut buf).await;
            });
        }
    });
    (port, sent)
}

const ENDLESS_STALL_AFTER: usize = 128 << 20;

fn body_contains_probe(port: u16, needle: &str) -> gantry_probes::BoxProbe {
    build_probe(
        "stream",
        &ProbeSpec::Http(HttpSpec {
            url: Some(format!("http://127.0.0.1:{port}/").into()),
            body_contains: Some(needle.into()),
            // A hang guard far beyond what reading 1 MiB from loopback takes.
            timeout: Some("20s".into()),
            ..Default::default()
        }),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn body_contains_stops_reading_an_endless_body_at_the_limit() {
    let (port, sent) = endless_body_server("starting...").await;
    let e = gantry_probes::attempt(body_contains_probe(port, "status: up").as_ref())
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "HTTP 200 OK, but the first 1 MiB of the body do not contain \"status: up\" \
         (bodyContains reads no further)"
    );
    // The client hung up: beyond the limit the server could only fill the socket buffers.
    let sent = sent.load(Ordering::SeqCst);
    assert!(sent < 32 << 20, "the server sent {sent} bytes");
}

#[tokio::test]
async fn body_contains_found_early_in_an_endless_body_is_ready() {
    let (port, _) = endless_body_server("<html>status: up</html>").await;
    gantry_probes::attempt(body_contains_probe(port, "status: up").as_ref())
        .await
        .unwrap();
}

#[tokio::test]
async fn http_silent_server_times_out_per_attempt() {
    let port = silent_server();
    let p = crate::probe_with_timeout(
        &format!("http://127.0.0.1:{port}/"),
        Duration::from_millis(500),
    );
    let e = gantry_probes::attempt(p.as_ref()).await.unwrap_err();
    assert_eq!(e.to_string(), "timed out after 500ms");
}

#[tokio::test]
async fn http_server_that_starts_late_is_noticed() {
    let port = free_port();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let l = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        serve_http(l).await;
    });
    let deps = vec![Dependency::new(
        "web",
        crate::probe(&format!("http://127.0.0.1:{port}/ok")),
    )];
    let summary = wait_until_ready(deps, &opts(), std::future::pending())
        .await
        .unwrap();
    assert_eq!(summary.ready[0].name, "web");
}

#[tokio::test]
async fn filesystem_path_must_exist_and_be_readable() {
    let dir = std::env::temp_dir().join(format!("gantry-fs-probe-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let url = format!("file://{}", dir.display());
    assert_contains(&reason(&url).await, "No such file or directory");
    std::fs::create_dir_all(&dir).unwrap();
    check(&url).await.unwrap();
    let file = dir.join("ready");
    std::fs::write(&file, "x").unwrap();
    check(&format!("file://{}", file.display())).await.unwrap();
    let p = build_probe("fs", &ProbeSpec::Filesystem(dir.display().to_string())).unwrap();
    gantry_probes::attempt(p.as_ref()).await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn exec_exit_code_reason_and_timeout() {
    let exec = |command: &str, args: &[&str], timeout: Option<&str>| {
        build_probe(
            "cmd",
            &ProbeSpec::Exec(ExecSpec {
                command: command.into(),
                args: args.iter().map(|a| a.to_string()).collect(),
                timeout: timeout.map(Into::into),
            }),
        )
        .unwrap()
    };
    gantry_probes::attempt(exec("true", &[], None).as_ref())
        .await
        .unwrap();
    let e =
        gantry_probes::attempt(exec("sh", &["-c", "echo db is down >&2; exit 3"], None).as_ref())
            .await
            .unwrap_err();
    assert_eq!(e.to_string(), "exit status: 3: db is down");
    let e = gantry_probes::attempt(exec("/nonexistent/gantry-cmd", &[], None).as_ref())
        .await
        .unwrap_err();
    assert_contains(&e.to_string(), "cannot run /nonexistent/gantry-cmd");
    let e = gantry_probes::attempt(exec("sleep", &["30"], Some("300ms")).as_ref())
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "timed out after 300ms");
}

#[tokio::test]
async fn exec_arguments_from_the_environment_are_hidden_in_reasons_and_debug() {
    let token = "exec-env-Token-2207";
    std::env::set_var("GANTRY_PROBE_TEST_EXEC_TOKEN", token);
    let spec = ProbeSpec::Exec(ExecSpec {
        command: "sh".into(),
        // The command echoes the token it was given, on stderr and stdout, split over lines.
        args: vec![
            "-c".into(),
            "echo \"bad token $0\"; echo \"rejected $0\" >&2; exit 1".into(),
            "ENV:GANTRY_PROBE_TEST_EXEC_TOKEN".into(),
        ],
        timeout: None,
    });
    let target = spec.resolve("tok").unwrap();
    assert!(!format!("{target:?}").contains(token), "{target:?}");
    let probe = target.into_probe().unwrap();
    let e = gantry_probes::attempt(probe.as_ref()).await.unwrap_err();
    assert_eq!(e.to_string(), "exit status: 1: rejected ***");
    assert!(!probe.describe().contains(token));
    // Arguments written in the file are not secrets: the reason may quote them.
    let e = gantry_probes::attempt(
        exec_probe("sh", &["-c", "echo \"bad token $0\" >&2; exit 1", token]).as_ref(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.to_string(), format!("exit status: 1: bad token {token}"));
}

fn exec_probe(command: &str, args: &[&str]) -> gantry_probes::BoxProbe {
    build_probe(
        "cmd",
        &ProbeSpec::Exec(ExecSpec {
            command: command.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            timeout: None,
        }),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}
