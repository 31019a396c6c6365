//! `gantry wait` as a user runs it: the real binary against real listeners and servers.

// The helpers below run only inside tests; a failed unwrap there is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn gantry() -> Command {
    let mut c = Command::new(&*support::GANTRY);
    c.arg("wait").env("NO_COLOR", "1");
    c
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// Waits for the child; kills it and fails the test if it is still running after a minute (a hang
/// guard, not a timing assertion).
fn finish(mut child: Child) -> Output {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("gantry wait did not finish");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn run(args: &[&str]) -> Output {
    finish(
        gantry()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn ready_without_a_command_exits_0() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("tcp://127.0.0.1:{}", l.local_addr().unwrap().port());
    let out = run(&[&url]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("is ready after"), "{}", stderr(&out));
}

#[test]
fn the_command_replaces_gantry_and_keeps_its_pid() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("tcp://127.0.0.1:{}", l.local_addr().unwrap().port());
    let child = gantry()
        .args([url.as_str(), "--", "sh", "-c", "echo $$; exit 7"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = finish(child);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), pid.to_string());
}

#[test]
fn a_dependency_that_starts_late_releases_the_command() {
    let port = free_port();
    let late = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(600));
        let l = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let _ = l.accept();
        std::thread::sleep(Duration::from_millis(200));
    });
    let out = run(&[&format!("tcp://127.0.0.1:{port}"), "--", "echo", "started"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "started");
    late.join().unwrap();
}

#[test]
fn missing_and_non_executable_commands_exit_127_and_126() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("tcp://127.0.0.1:{}", l.local_addr().unwrap().port());
    let out = run(&[&url, "--", "/nonexistent/gantry-test-cmd"]);
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot run /nonexistent/gantry-test-cmd"));

    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("not-executable");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    let out = run(&[&url, "--", script.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(126), "{}", stderr(&out));
}

#[test]
fn timeout_exits_75_naming_each_blocking_dependency_and_its_reason() {
    let closed = free_port();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let open = l.local_addr().unwrap().port();
    let out = run(&[
        "--timeout",
        "1s",
        &format!("tcp://127.0.0.1:{open}"),
        &format!("tcp://127.0.0.1:{closed}"),
        "--",
        "echo",
        "must not run",
    ]);
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("tcp 127.0.0.1:{closed}: connection refused")),
        "{err}"
    );
    assert!(!err.contains(&format!("tcp 127.0.0.1:{open}: ")), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn server_reason_is_shown_and_the_password_is_not() {
    // root has no password on this MariaDB; offering one is refused by the server.
    let secret = "Gantry-Wait-Secret-31";
    let out = run(&[
        "--timeout",
        "1s",
        &format!("mysql://root:{secret}@127.0.0.1:3306/test"),
        &format!("redis://:{secret}@127.0.0.1:6379"),
    ]);
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("Access denied for user 'root'"), "{err}");
    assert!(err.contains("AUTH"), "{err}");
    assert!(!err.contains(secret), "password leaked:\n{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains(secret));
}

#[test]
fn a_bad_url_exits_2_and_hides_its_password() {
    let out = run(&["mysql://app:Gantry-Bad-Url-Pw@db:99999/x"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("mysql://app:***@db:99999/x"), "{err}");
    assert!(!err.contains("Gantry-Bad-Url-Pw"), "{err}");
}

/// Starts a wait that can never finish, waits until it is waiting, sends `signal`.
fn interrupted_by(signal: nix::sys::signal::Signal) -> Output {
    let mut child = gantry()
        .arg(format!("tcp://127.0.0.1:{}", free_port()))
        .args(["--", "echo", "must not run"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        if line.contains("waiting for") {
            break;
        }
    }
    assert!(seen.contains("waiting for"), "{seen}");
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, signal).unwrap();
    let rest = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());
    let out = finish(child);
    let _ = rest.join();
    out
}

#[test]
fn sigterm_during_the_wait_exits_143_without_running_the_command() {
    let out = interrupted_by(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(out.status.code(), Some(143));
    assert!(out.stdout.is_empty());
}

#[test]
fn sigint_during_the_wait_exits_130() {
    let out = interrupted_by(nix::sys::signal::Signal::SIGINT);
    assert_eq!(out.status.code(), Some(130));
}

/// A password as written, and as the byte list a driver's `Debug` of its SASL PLAIN frame prints it
/// (`response: LongString([0, 103, 117, 101, ...])`).
fn password_forms(pw: &str) -> [String; 2] {
    let bytes: Vec<String> = pw.bytes().map(|b| b.to_string()).collect();
    [pw.to_string(), bytes.join(", ")]
}

/// Regression: at trace level the drivers' own events reached gantry's log — lapin's SASL frame with
/// the password in it, and three ERROR lines of its own per refused login (over a thousand lines in
/// 3 s) — instead of gantry's one line per probe and state change.
#[test]
fn at_trace_level_the_drivers_log_no_password_and_no_flood() {
    let secret = "Gantry-Trace-Secret-58";
    let mut cmd = gantry();
    cmd.env("GANTRY_LOG", "trace").args([
        "--timeout",
        "3s",
        // guest/guest is the valid login on this RabbitMQ, and root has no password here.
        &format!("amqp://guest:{secret}@127.0.0.1:5672/%2f"),
        &format!("mysql://root:{secret}@127.0.0.1:3306/test"),
    ]);
    // Reads stderr while gantry runs: a flood must fail the assertions below, not block gantry.
    let out = support::run(cmd);
    let err = out.stderr;
    assert_eq!(out.code, Some(75), "{err}");
    // Both servers really refused the login, so the drivers had something to say.
    assert!(err.contains("ACCESS_REFUSED"), "{err}");
    assert!(err.contains("Access denied for user 'root'"), "{err}");
    for form in password_forms(secret) {
        assert!(!err.contains(&form), "{form:?} leaked:\n{err}");
    }
    // gantry's own: "waiting for", one "not ready" per probe (its reason does not change), the
    // deadline; a progress line only every 5 s.
    let lines = err.lines().count();
    assert!(lines <= 10, "{lines} lines at trace level:\n{err}");
}
