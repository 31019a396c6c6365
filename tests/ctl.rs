//! `gantry ctl` against a live `gantry up --api`: every command, its output, and its exit codes
//! (0 ok, 1 not running, 67 no such job, 69 cannot reach gantry, 77 permission denied).

mod api_support;

use std::os::unix::fs::PermissionsExt;

use api_support::{ctl, ctl_with, Up, NOBODY};

const JOBS: &str = r#"
job "web" {
  command = "/bin/sh"
  args = ["-c", "echo hello from web; echo second line; exec sleep 1000"]
  controllable = true
}
job "quiet" {
  command = "/bin/sleep"
  args = ["1000"]
}
probe "here" {
  wait = false
  exec {
    command = "true"
  }
}
"#;

#[test]
fn every_ctl_command_against_a_live_up() {
    let up = Up::start(JOBS, &[]);
    up.wait_job("web", "running", |j| j["state"] == "running");
    let s = &up.sock;

    let (code, out, _) = ctl(s, &["job", "list"]);
    assert_eq!(code, 0);
    let header = out.lines().next().unwrap_or_default();
    assert!(
        header.starts_with("NAME") && header.contains("STATE"),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("web ") && l.contains("running")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("quiet ") && l.ends_with("no")),
        "{out}"
    );
    let (code, out, _) = ctl(s, &["job", "list", "-j"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v.as_array().map(Vec::len), Some(2));

    // The job name may be left out: "web" is the only controllable job.
    let (code, out, _) = ctl(s, &["job", "status"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("running (pid"), "{out}");
    let (code, out, _) = ctl(s, &["job", "status", "web", "-j", "--exit-with-status"]);
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).expect("json")["state"],
        "running"
    );

    let (code, out, _) = ctl(s, &["job", "logs", "web"]);
    assert_eq!(code, 0);
    assert_eq!(out, "hello from web\nsecond line\n");
    let (code, out, _) = ctl(s, &["job", "logs", "--tail", "1"]);
    assert_eq!((code, out.as_str()), (0, "second line\n"));

    let (code, out, err) = ctl(s, &["job", "stop", "-w"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, _) = ctl(s, &["job", "status", "--exit-with-status"]);
    assert_eq!(code, 1, "not running");
    let (code, _, _) = ctl(s, &["health"]);
    assert_eq!(code, 1, "a stopped job: not ready");
    let (code, out, err) = ctl(s, &["job", "start", "web", "--wait", "--wait-for", "10s"]);
    assert_eq!(code, 0, "{out}{err}");
    let pid = up.job("web")["pid"].clone();
    let (code, out, err) = ctl(s, &["job", "restart", "-w", "--wait-for", "10s"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_ne!(up.job("web")["pid"], pid);
    let (code, out, _) = ctl(s, &["health"]);
    assert_eq!(code, 0, "{out}");

    let (code, out, err) = ctl(s, &["signal", "web", "USR1"]);
    assert_eq!(code, 0, "{out}{err}");
    up.wait_job("web", "ended by SIGUSR1", |j| {
        j["last_exit"]["signal"] == 10
    });

    let (code, out, _) = ctl(s, &["probes"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("here") && l.contains("ok")),
        "{out}"
    );
    let (code, out, _) = ctl(s, &["probes", "-j"]);
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).expect("json")[0]["ok"],
        true
    );
}

#[test]
fn ctl_exit_codes_tell_what_went_wrong() {
    let up = Up::start(JOBS, &[]);
    let s = &up.sock;
    let (code, _, err) = ctl(s, &["job", "status", "nope"]);
    assert_eq!(code, 67, "{err}");
    assert!(err.contains("no such job"), "{err}");
    let (code, _, err) = ctl(s, &["job", "stop", "nope"]);
    assert_eq!(code, 67, "{err}");
    let (code, _, err) = ctl(s, &["job", "stop", "quiet"]);
    assert_eq!(code, 67, "{err}");
    assert!(err.contains("not controllable"), "{err}");
    let (code, _, err) = ctl(s, &["signal", "quiet", "TERM"]);
    assert_eq!(code, 67, "{err}");

    let missing = up.path().join("missing.sock");
    let (code, _, err) = ctl(&missing, &["job", "list"]);
    assert_eq!(code, 69, "{err}");
    assert!(
        err.contains("cannot reach gantry") && err.contains("--api-address"),
        "{err}"
    );

    // nobody cannot connect to the 0600 socket: permission denied.
    std::fs::set_permissions(up.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let (code, _, err) = ctl_with(NOBODY, s, &["job", "list"]);
    assert_eq!(code, 77, "{err}");
    assert!(err.contains("permission denied"), "{err}");
}

#[test]
fn ctl_is_refused_with_77_by_the_peer_credential_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let up = Up::spawn_in(dir, JOBS, &["--api-group", "65534"]);
    up.wait_ready();
    let (code, _, err) = ctl_with(NOBODY, &up.sock, &["job", "stop", "web"]);
    assert_eq!(code, 77, "{err}");
    assert!(err.contains("permission denied"), "{err}");
}
