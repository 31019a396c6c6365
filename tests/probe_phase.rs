//! Phase 3 of `gantry up`: `probe` blocks gate the jobs. Real binary, real servers on loopback
//! (Redis, MariaDB; `.ci/services.sh` makes sure they answer).

mod support;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;

use support::*;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

#[test]
fn seed_probe_examples_load_and_check_lists_them() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mittnite/probes.hcl");
    let out = run(gantry(&["check", "-c", dir.to_str().expect("utf-8")]));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stdout
            .contains("3. probe: wait for 7 probe(s), in parallel, until ready"),
        "{}",
        out.stdout
    );
    for line in [
        "   - redis: redis localhost:6379/0",
        "   - smtp: smtp localhost:25",
        "   - mysql: mysql localhost:3306 as foo",
        "   - amqp: amqp localhost:5672 vhost \"amqp.localhost.com\" as foo",
        "   - mongodb: mongodb mongodb://localhost:27017/mongo",
        "   - http: http GET http://localhost:8080/status",
        "   - some-file: filesystem /path/to/some/dir",
    ] {
        assert!(
            out.stdout.contains(line),
            "{line:?} missing in:\n{}",
            out.stdout
        );
    }
    assert!(
        !out.stdout.contains("secret") && !out.stdout.contains("bar"),
        "{}",
        out.stdout
    );
}

#[test]
fn seed_probe_examples_run_unchanged_and_the_deadline_names_each_with_its_reason() {
    // The examples as written, against this machine: each one is probed for real and none is
    // ready (wrong credentials, nothing on the port, no such path), so the wait times out.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mittnite/probes.hcl");
    let out = run(gantry(&[
        "up",
        "-c",
        dir.to_str().expect("utf-8"),
        "--wait-timeout",
        "2s",
    ]));
    assert_eq!(out.code, Some(75), "{}", out.stderr);
    for needle in [
        "mysql (mysql localhost:3306 as foo): Access denied for user 'foo'",
        "amqp (amqp localhost:5672 vhost \"amqp.localhost.com\" as foo): ",
        "redis (redis localhost:6379/0): ERR AUTH",
        "some-file (filesystem /path/to/some/dir): No such file or directory",
        "nothing was started",
    ] {
        assert!(
            out.stderr.contains(needle),
            "{needle:?} missing in:\n{}",
            out.stderr
        );
    }
    assert!(!out.stderr.contains("secret"), "{}", out.stderr);
}

#[test]
fn jobs_start_only_after_every_waited_probe_is_ready() {
    let dir = Dir::new();
    let port = free_port();
    let marker = dir.join("ready");
    dir.write(
        "a.hcl",
        &format!(
            r#"
probe "cache" {{
  wait = true
  url = "redis://127.0.0.1:6379/0"
}}
probe "late" {{
  wait = true
  tcp {{
    host = {{ hostname = "127.0.0.1", port = {port} }}
  }}
}}
probe "ignored" {{
  wait = false
  filesystem = "/nonexistent/gantry"
}}
job "app" {{
  command = "sh"
  args = ["-c", "test -e {m} && echo app-started-after-probes"]
  oneTime = true
}}
"#,
            m = marker.display()
        ),
    );
    let child = spawn(gantry(&["up", "-c", dir.str()]));
    // The late dependency appears only after the marker exists: if the job ran before the probe
    // was ready, `test -e` would fail.
    std::thread::sleep(std::time::Duration::from_millis(500));
    std::fs::write(&marker, "").expect("marker");
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind late port");
    let out = finish(child);
    drop(listener);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stdout.contains("app-started-after-probes"),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    // The probe's name is a field of its own; the line names what was checked.
    assert!(
        out.stderr.lines().any(|l| l.contains("tcp 127.0.0.1:")
            && l.contains("is ready")
            && l.contains("probe=late")),
        "{}",
        out.stderr
    );
}

#[test]
fn sigterm_while_waiting_exits_143_and_starts_nothing() {
    let dir = Dir::new();
    let marker = dir.join("started");
    dir.write(
        "a.hcl",
        &format!(
            "probe \"never\" {{\n wait = true\n url = \"tcp://127.0.0.1:{}\"\n}}\n\
             job \"app\" {{\n command = \"touch\"\n args = [\"{}\"]\n oneTime = true\n}}\n",
            free_port(),
            marker.display()
        ),
    );
    let mut child = spawn(gantry(&["up", "-c", dir.str()]));
    // Signal only once the wait has begun (before that, gantry has not set up its handling yet).
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap_or_default();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("waiting for") && line.contains("probes=never") {
            break;
        }
    }
    assert!(seen.contains("probes=never"), "{seen}");
    kill(child.id(), 15);
    let drain = std::thread::spawn(move || lines.map_while(Result::ok).count());
    let out = finish(child);
    let _ = drain.join();
    assert_eq!(out.code, Some(143), "{}", out.stderr);
    assert!(
        !marker.exists(),
        "a job started although a probe was not ready"
    );
}

#[test]
fn a_bad_probe_block_is_a_config_error_with_its_place() {
    let dir = Dir::new();
    dir.write(
        "p.hcl",
        "probe \"db\" {\n wait = true\n mysql {\n  host = { hostname = \"db\", port = \"ENV:GANTRY_TEST_UNSET_PORT\" }\n }\n}\n",
    );
    let out = run(gantry(&["check", "-c", dir.str()]));
    assert_eq!(out.code, Some(78), "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "p.hcl:1:1: probe \"db\": host.port: environment variable GANTRY_TEST_UNSET_PORT is not set"
        ),
        "{}",
        out.stderr
    );
}

/// Regression: exec probes used `tokio::process` while `up`'s reaper called `waitpid(-1)`, so some
/// attempts lost their exit status ("No child processes") to the reaper.
#[test]
fn exec_probe_status_is_not_lost_to_the_reaper() {
    let dir = Dir::new();
    dir.write(
        "a.hcl",
        "probe \"cmd\" {\n wait = true\n exec {\n  command = \"sh\"\n  args = [\"-c\", \"echo still booting >&2; exit 3\"]\n }\n}\n",
    );
    let mut cmd = gantry(&["up", "-c", dir.str(), "--wait-timeout", "2s"]);
    cmd.env("GANTRY_LOG", "debug");
    let out = run(cmd);
    assert_eq!(out.code, Some(75), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("cmd (exec sh): exit code 3: still booting"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("No child processes"), "{}", out.stderr);
}

#[test]
fn a_timed_out_exec_probe_is_killed_with_its_children() {
    let dir = Dir::new();
    let marker = dir.join("survived");
    dir.write(
        "a.hcl",
        &format!(
            "probe \"slow\" {{\n wait = true\n exec {{\n  command = \"sh\"\n  args = [\"-c\", \"(sleep 0.5; touch {m}) & sleep 30\"]\n  timeout = \"200ms\"\n }}\n}}\n",
            m = marker.display()
        ),
    );
    // The deadline is well after the first attempt's background child would write the marker, so
    // gantry's clean-up of leftover descendants at the deadline cannot be what stops it.
    let out = run(gantry(&["up", "-c", dir.str(), "--wait-timeout", "3s"]));
    assert_eq!(out.code, Some(75), "{}", out.stderr);
    assert!(
        out.stderr.contains("timed out after 200ms"),
        "{}",
        out.stderr
    );
    assert!(!marker.exists(), "a probe's child outlived the probe");
}

#[test]
fn an_exec_probe_that_exits_is_done_even_if_a_background_child_holds_its_output() {
    let dir = Dir::new();
    dir.write(
        "a.hcl",
        "probe \"daemonizes\" {\n wait = true\n exec {\n  command = \"sh\"\n  args = [\"-c\", \"sleep 30 & exit 0\"]\n  timeout = \"10s\"\n }\n}\njob \"after\" {\n command = \"/bin/echo\"\n args = [\"job ran\"]\n oneTime = true\n}\n",
    );
    let out = run(gantry(&["up", "-c", dir.str(), "--wait-timeout", "5s"]));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("job ran"), "{}", out.stderr);
}

#[test]
fn an_exec_probe_reads_nothing_from_gantrys_stdin() {
    // gantry's stdin stays open and silent (as a container's may). A probe that reads its stdin
    // must get end-of-file at once, not block on input meant for the jobs.
    let dir = Dir::new();
    dir.write(
        "a.hcl",
        "probe \"reader\" {\n wait = true\n exec {\n  command = \"sh\"\n  args = [\"-c\", \"cat >/dev/null\"]\n  timeout = \"1s\"\n }\n}\njob \"after\" {\n command = \"/bin/echo\"\n args = [\"job ran\"]\n oneTime = true\n}\n",
    );
    let mut cmd = gantry(&["up", "-c", dir.str(), "--wait-timeout", "5s"]);
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let stdin = child.stdin.take();
    let out = finish(child);
    drop(stdin);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("job ran"), "{}", out.stderr);
}

/// Regression: an `exec` probe's argument read from the environment (`"ENV:TOKEN"`) came back in its
/// reason — in the "still waiting" line, the per-attempt debug line and the deadline's error — when
/// the command printed what it was given.
#[test]
fn an_exec_probes_env_argument_never_appears_in_gantrys_output() {
    let token = "Gantry-Exec-Token-4711";
    let dir = Dir::new();
    dir.write(
        "a.hcl",
        "probe \"tok\" {\n wait = true\n exec {\n  command = \"sh\"\n  args = [\"-c\", \"echo rejected token $0 >&2; exit 1\", \"ENV:GANTRY_TEST_EXEC_TOKEN\"]\n }\n}\n",
    );
    // Past the first 5 s progress report, so the "still waiting" line is in the output.
    let mut cmd = gantry(&["up", "-c", dir.str(), "--wait-timeout", "6s"]);
    cmd.env("GANTRY_LOG", "debug")
        .env("GANTRY_TEST_EXEC_TOKEN", token);
    let out = run(cmd);
    assert_eq!(out.code, Some(75), "{}", out.stderr);
    // The command really printed the token: its reason is there, with the token hidden.
    assert!(
        out.stderr
            .contains("still waiting for exec sh: exit code 1: rejected token ***"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains(token) && !out.stdout.contains(token),
        "the token leaked:\n{}",
        out.stderr
    );
}

/// An HTTP server on loopback whose every answer is `200 OK` with a chunked body that never ends
/// (64 KiB chunks of `x`, for as long as the client reads).
fn endless_body_server() -> u16 {
    use std::io::{Read, Write};
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut conn = conn;
                let mut buf = [0u8; 1024];
                let _ = conn.read(&mut buf);
                let mut chunk = format!("{:x}\r\n", 64 * 1024).into_bytes();
                chunk.extend_from_slice(&[b'x'; 64 * 1024]);
                chunk.extend_from_slice(b"\r\n");
                if conn
                    .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
                    .is_err()
                {
                    return;
                }
                // Ends when gantry hangs up.
                while conn.write_all(&chunk).is_ok() {}
            });
        }
    });
    port
}

/// Regression: `bodyContains` read the whole body into memory, and a body that never ends grew
/// gantry by gigabytes in one attempt. Now each attempt reads at most the first 1 MiB.
#[test]
fn body_contains_on_an_endless_body_keeps_gantrys_memory_bounded() {
    // Generous: gantry itself needs a few MiB, one attempt's 1 MiB of body plus buffers on top.
    const BOUND_KIB: u64 = 64 * 1024;
    let port = endless_body_server();
    let dir = Dir::new();
    dir.write(
        "a.hcl",
        &format!(
            "probe \"stream\" {{\n wait = true\n http {{\n  url = \"http://127.0.0.1:{port}/\"\n  bodyContains = \"status: up\"\n }}\n}}\n"
        ),
    );
    let child = spawn(gantry(&["up", "-c", dir.str(), "--wait-timeout", "4s"]));
    let pid = child.id();
    // Sample while it polls; stop it at once if it passes the bound, before it takes the machine.
    let sampler = std::thread::spawn(move || {
        let mut peak = 0;
        while let Some(kib) = status_kib(pid, "VmRSS") {
            peak = peak.max(kib);
            if kib > BOUND_KIB {
                let _ = std::process::Command::new("kill")
                    .args(["-9", &pid.to_string()])
                    .status();
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        peak
    });
    let out = finish(child);
    let peak = sampler.join().expect("sampler");
    assert!(
        peak <= BOUND_KIB,
        "gantry grew to {peak} KiB reading an endless body:\n{}",
        out.stderr
    );
    assert_eq!(out.code, Some(75), "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "stream (http GET http://127.0.0.1:{port}/): HTTP 200 OK, but the first 1 MiB of the body do not contain \"status: up\""
                .replace("{port}", &port.to_string())
                .as_str()
        ),
        "{}",
        out.stderr
    );
    eprintln!("peak RSS while polling an endless body: {peak} KiB");
}

/// Regression: lapin's own events (its SASL frame with the password as a byte list, three ERROR lines
/// per refused login) reached `gantry up`'s log at trace level, in either log format.
#[test]
fn an_amqp_probe_at_trace_level_logs_only_gantrys_lines_and_no_password() {
    let secret = "Gantry-Amqp-Secret-93";
    let dir = Dir::new();
    dir.write(
        "a.hcl",
        "probe \"mq\" {\n wait = true\n amqp {\n  host = { hostname = \"127.0.0.1\" }\n  credentials = { user = \"guest\", password = \"ENV:GANTRY_TEST_AMQP_PW\" }\n }\n}\n",
    );
    for format in ["text", "json"] {
        let mut cmd = gantry(&[
            "up",
            "-c",
            dir.str(),
            "--wait-timeout",
            "3s",
            "--log-format",
            format,
        ]);
        cmd.env("GANTRY_LOG", "trace")
            .env("GANTRY_TEST_AMQP_PW", secret);
        let out = run(cmd);
        assert_eq!(out.code, Some(75), "{}", out.stderr);
        // guest/guest is the valid login: the broker refused this one.
        assert!(out.stderr.contains("ACCESS_REFUSED"), "{}", out.stderr);
        let bytes: Vec<String> = secret.bytes().map(|b| b.to_string()).collect();
        for form in [secret.to_string(), bytes.join(", ")] {
            assert!(
                !out.stderr.contains(&form),
                "{format}: {form:?} leaked:\n{}",
                out.stderr
            );
        }
        // gantry's own: the phase, "waiting for", one "not ready", the deadline, nothing started.
        let lines = out.stderr.lines().count();
        assert!(
            lines <= 10,
            "{format}: {lines} lines at trace level:\n{}",
            out.stderr
        );
    }
}
