//! `--log-format json`: the job name, pid, probe name and phase of gantry's own events are JSON
//! fields of their own, not text inside `message`, so that a log pipeline can select on them.

mod support;

use serde_json::Value;
use support::*;

/// Every stderr line that is a JSON object (job output passes through as it is).
fn events(stderr: &str) -> Vec<Value> {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(Value::is_object)
        .collect()
}

fn field<'a>(event: &'a Value, name: &str) -> Option<&'a Value> {
    event["fields"].get(name)
}

/// The first event whose `message` is `message` and whose field `key` is `value`.
fn find<'a>(events: &'a [Value], message: &str, key: &str, value: &str) -> &'a Value {
    events
        .iter()
        .find(|e| {
            field(e, "message").and_then(Value::as_str) == Some(message)
                && field(e, key).and_then(Value::as_str) == Some(value)
        })
        .unwrap_or_else(|| panic!("no {message:?} event with {key}={value:?} in {events:#?}"))
}

#[test]
fn job_pid_probe_and_phase_are_fields_of_their_own() {
    // A dependency that is ready: a listener on loopback.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let dir = Dir::new();
    let out_file = dir.join("rendered.txt");
    dir.write(
        "gantry.hcl",
        &format!(
            r#"
file "{}" {{
  content = "hello\n"
}}
boot "prepare" {{
  command = "/bin/true"
}}
probe "db" {{
  wait = true
  url  = "tcp://127.0.0.1:{port}"
}}
job "web" {{
  command = "/bin/sh"
  args    = ["-c", "echo $$ > {}/web.pid"]
  oneTime = true
}}
"#,
            out_file.display(),
            dir.str()
        ),
    );
    let out = run(gantry(&["--log-format", "json", "up", "-c", dir.str()]));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let events = events(&out.stderr);

    let started = find(&events, "started", "job", "web");
    assert_eq!(field(started, "kind").and_then(Value::as_str), Some("job"));
    let pid = field(started, "pid")
        .and_then(Value::as_u64)
        .expect("pid is a number");
    let written: u64 = read(&dir.join("web.pid"))
        .trim()
        .parse()
        .expect("the job's pid");
    assert_eq!(pid, written, "the pid field is the job's pid");
    find(&events, "completed", "job", "web");

    let boot = find(&events, "started", "job", "prepare");
    assert_eq!(
        field(boot, "kind").and_then(Value::as_str),
        Some("boot job")
    );

    let ready = events
        .iter()
        .find(|e| {
            field(e, "probe").and_then(Value::as_str) == Some("db")
                && field(e, "message")
                    .and_then(Value::as_str)
                    .is_some_and(|m| m.contains("is ready after"))
        })
        .unwrap_or_else(|| panic!("no ready event for probe db: {events:#?}"));
    // The message says what was checked (the probe's target), the field which probe it was.
    let message = field(ready, "message")
        .and_then(Value::as_str)
        .unwrap_or("");
    assert!(
        message.contains(&format!("tcp 127.0.0.1:{port}")),
        "{ready}"
    );

    for phase in ["render", "boot", "probe"] {
        assert!(
            events
                .iter()
                .any(|e| field(e, "phase").and_then(Value::as_str) == Some(phase)),
            "no event of phase {phase}: {events:#?}"
        );
    }

    // No message repeats a job's or probe's name or a pid: they are in their fields.
    for e in &events {
        let message = field(e, "message").and_then(Value::as_str).unwrap_or("");
        for needle in ["\"web\"", "\"prepare\"", "\"db\"", &pid.to_string()] {
            assert!(!message.contains(needle), "{needle} inside message: {e}");
        }
    }
}

#[test]
fn the_text_format_shows_the_same_fields_readably() {
    let dir = Dir::new();
    dir.write(
        "gantry.hcl",
        "job \"web\" {\n  command = \"/bin/true\"\n  oneTime = true\n}\n",
    );
    let mut cmd = gantry(&["up", "-c", dir.str()]);
    cmd.env("GANTRY_LOG_FORMAT", "text");
    let out = run(cmd);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains(" started"))
        .unwrap_or_else(|| panic!("no started line: {}", out.stderr));
    assert!(
        line.contains("kind=job") && line.contains("job=web") && line.contains("pid="),
        "{line}"
    );
    assert!(!line.contains('{'), "text, not JSON: {line}");
}
