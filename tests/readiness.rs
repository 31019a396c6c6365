//! Jobs that wait for jobs, with real processes: `after`/`requires` ordering on readiness (HTTP,
//! sd_notify through a real datagram socket, s6's fd), the watchdog, liveness restarts, shutdown in
//! reverse dependency order, and the configuration errors. The jobs are `tests/readiness_helper.py`,
//! which logs every event with a wall-clock time; every run of gantry has a kill-on-timeout guard.

mod support;

use std::path::{Path, PathBuf};
use std::process::Child;

use support::*;

const HELPER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/readiness_helper.py");

/// A gantry that is killed if the test fails before it ends (and whether it runs as PID 1 of a
/// namespace, under `unshare`).
struct Running(Option<Child>, bool);

impl Running {
    /// gantry's own pid (not unshare's).
    fn pid(&self) -> u32 {
        let pid = self.0.as_ref().map_or(0, Child::id);
        if self.1 {
            inner_pid(pid)
        } else {
            pid
        }
    }

    /// SIGTERM, then its output (under the guard).
    fn stop(mut self) -> Output {
        kill(self.pid(), libc::SIGTERM);
        finish(self.0.take().expect("running"))
    }

    fn finish(mut self) -> Output {
        finish(self.0.take().expect("running"))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn start(dir: &Dir, pid1: bool) -> Running {
    let args = ["up", "-c", dir.str()];
    Running(
        Some(spawn(if pid1 {
            gantry_pid1(&args)
        } else {
            gantry(&args)
        })),
        pid1,
    )
}

/// A port nothing listens on right now.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// `python3 HELPER ARGS...` as a job's command and args.
fn helper(args: &[&str]) -> String {
    let mut all = vec![format!("{HELPER:?}")];
    all.extend(args.iter().map(|a| format!("{a:?}")));
    format!("command = \"python3\"\n  args = [{}]", all.join(", "))
}

/// The time (ns) of the first line of `log` that starts with `event`.
fn at(log: &Path, event: &str) -> Option<u128> {
    read(log).lines().find_map(|l| {
        let rest = l.strip_prefix(event)?.strip_prefix(' ')?;
        rest.trim().parse().ok()
    })
}

fn count(log: &Path, event: &str) -> usize {
    read(log)
        .lines()
        .filter(|l| l.starts_with(&format!("{event} ")))
        .count()
}

fn log_path(dir: &Dir) -> (PathBuf, String) {
    let log = dir.join("events.log");
    let s = log.to_str().expect("utf-8").to_string();
    (log, s)
}

#[test]
fn the_worker_never_starts_before_the_api_answers() {
    let dir = Dir::new();
    let (log, l) = log_path(&dir);
    let port = free_port().to_string();
    dir.write(
        "chain.hcl",
        &format!(
            r#"
job "worker" {{
  {worker}
  after = ["api"]
}}
job "api" {{
  {api}
  after = ["migrate"]
  ready {{
    url = "http://127.0.0.1:{port}/health"
  }}
}}
job "migrate" {{
  command = "sh"
  args = ["-c", "echo \"migrate done $(date +%s%N)\" >> {l}"]
  oneTime = true
}}
"#,
            worker = helper(&["record", "worker", &l]),
            api = helper(&["http-after", "0.7", &port, &l]),
        ),
    );
    let gantry = start(&dir, false);
    wait_until("the worker", || at(&log, "worker started").is_some());
    let out = gantry.stop();
    let (migrated, api, answering, worker) = (
        at(&log, "migrate done").expect("migrate ran"),
        at(&log, "api started").expect("api ran"),
        at(&log, "api answering").expect("api answered"),
        at(&log, "worker started").expect("worker ran"),
    );
    assert!(migrated <= api, "api started before migrate completed");
    assert!(answering >= api + 600_000_000, "the api answered too early");
    assert!(
        worker >= answering,
        "worker started {} ms before the api answered",
        (answering - worker) / 1_000_000
    );
    assert!(
        logged(&out.stderr, &["is ready after", "job=api"]),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("starting job \"worker\": api ready"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_failed_migration_stops_the_chain_with_its_exit_code() {
    let dir = Dir::new();
    let (log, l) = log_path(&dir);
    dir.write(
        "chain.hcl",
        &format!(
            r#"
job "migrate" {{
  command = "sh"
  args = ["-c", "exit 7"]
  oneTime = true
  maxAttempts = 1
}}
job "api" {{
  {api}
  after = ["migrate"]
}}
"#,
            api = helper(&["record", "api", &l]),
        ),
    );
    let out = start(&dir, false).finish();
    assert_eq!(out.code, Some(7), "{}", out.stderr);
    assert_eq!(read(&log), "", "api must not start");
}

#[test]
fn sd_notify_ready_through_a_real_socket_and_a_strangers_message_refused() {
    let dir = Dir::new();
    let (log, l) = log_path(&dir);
    let path_file = dir.join("socket-path");
    dir.write(
        "notify.hcl",
        &format!(
            r#"
job "svc" {{
  {svc}
  notify = "systemd"
}}
job "after-svc" {{
  {dep}
  after = ["svc"]
}}
job "silent" {{
  {silent}
  notify = "systemd"
}}
job "after-silent" {{
  {dep2}
  after = ["silent"]
}}
"#,
            svc = helper(&["notify", &l, "0.3"]),
            dep = helper(&["record", "after-svc", &l]),
            silent = helper(&["notify-path", path_file.to_str().expect("utf-8")]),
            dep2 = helper(&["record", "after-silent", &l]),
        ),
    );
    // As PID 1 of its own namespace, where the credentials the kernel passes are translated.
    let gantry = start(&dir, true);
    wait_until("after-svc", || at(&log, "after-svc started").is_some());
    assert!(at(&log, "after-svc started") >= at(&log, "notify ready"));
    // Another process (this test) sends READY=1 on behalf of "silent": refused.
    wait_until("the socket path", || path_file.exists());
    let socket = read(&path_file);
    assert!(!socket.is_empty(), "NOTIFY_SOCKET was not set");
    let client = std::os::unix::net::UnixDatagram::unbound().expect("client");
    client.send_to(b"READY=1", &socket).expect("send");
    std::thread::sleep(std::time::Duration::from_millis(800));
    let out = gantry.stop();
    assert_eq!(
        at(&log, "after-silent started"),
        None,
        "a stranger made the job ready"
    );
    assert!(
        !Path::new(&socket).exists(),
        "the notify socket outlived gantry"
    );
    assert!(
        logged(&out.stderr, &["status: warming up", "job=svc"]),
        "{}",
        out.stderr
    );
    assert!(
        logged(&out.stderr, &["is ready after", "job=svc"]),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("job \"silent\": refused a notify message from pid"),
        "{}",
        out.stderr
    );
}

#[test]
fn s6_fd_readiness() {
    let dir = Dir::new();
    let (log, l) = log_path(&dir);
    dir.write(
        "fd.hcl",
        &format!(
            r#"
job "s6" {{
  {s6}
  notify = "fd:5"
}}
job "next" {{
  {next}
  after = ["s6"]
}}
"#,
            s6 = helper(&["fd", "5", &l, "0.4"]),
            next = helper(&["record", "next", &l]),
        ),
    );
    let gantry = start(&dir, false);
    wait_until("next", || at(&log, "next started").is_some());
    let out = gantry.stop();
    assert!(at(&log, "next started") >= at(&log, "fd ready"));
    assert!(
        logged(&out.stderr, &["is ready after", "job=s6"]),
        "{}",
        out.stderr
    );
}

#[test]
fn a_missed_watchdog_restarts_the_job() {
    let dir = Dir::new();
    let (log, l) = log_path(&dir);
    dir.write(
        "wd.hcl",
        &format!(
            r#"
job "watched" {{
  {w}
  notify = "systemd"
  watchdog = "3s"
  restartDelay = "100ms"
  maxAttempts = -1
}}
"#,
            w = helper(&["notify-no-watchdog", &l]),
        ),
    );
    let gantry = start(&dir, false);
    wait_until("a restart", || count(&log, "watched started") >= 2);
    let out = gantry.stop();
    assert!(
        out.stderr
            .contains("job \"watched\" missed its watchdog (no WATCHDOG=1 for 3s)"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_liveness_check_restarts_a_server_that_starts_failing() {
    let dir = Dir::new();
    let (log, l) = log_path(&dir);
    let trigger = dir.join("fail-now");
    let port = free_port().to_string();
    dir.write(
        "alive.hcl",
        &format!(
            r#"
job "flaky" {{
  {f}
  restartDelay = "100ms"
  ready {{ url = "http://127.0.0.1:{port}/" }}
  alive {{
    http {{ url = "http://127.0.0.1:{port}/" }}
    period = "100ms"
    threshold = 3
  }}
}}
"#,
            f = helper(&["flaky-http", &port, &l, trigger.to_str().expect("utf-8")]),
        ),
    );
    let gantry = start(&dir, false);
    wait_until("the first start", || count(&log, "flaky started") == 1);
    std::thread::sleep(std::time::Duration::from_millis(600));
    assert_eq!(count(&log, "flaky started"), 1, "restarted while healthy");
    std::fs::write(&trigger, "").expect("trigger");
    wait_until("a restart", || count(&log, "flaky started") >= 2);
    // The new process removed the trigger: healthy again, no more restarts.
    std::thread::sleep(std::time::Duration::from_millis(800));
    let out = gantry.stop();
    let starts = count(&log, "flaky started");
    assert!(starts >= 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("job \"flaky\" failed its liveness check 3 times in a row; restarting it"),
        "{}",
        out.stderr
    );
    // One line per failure streak (each ended by a restart), not one per failure.
    assert_eq!(
        out.stderr.matches("liveness check http").count(),
        starts - 1,
        "{}",
        out.stderr
    );
}

#[test]
fn shutdown_runs_in_reverse_dependency_order() {
    let dir = Dir::new();
    let (log, l) = log_path(&dir);
    dir.write(
        "order.hcl",
        &format!(
            r#"
job "db" {{
  {db}
}}
job "api" {{
  {api}
  requires = ["db"]
}}
job "web" {{
  {web}
  after = ["api"]
}}
"#,
            db = helper(&["record", "db", &l]),
            api = helper(&["record", "api", &l]),
            web = helper(&["record", "web", &l]),
        ),
    );
    let gantry = start(&dir, true);
    wait_until("web", || at(&log, "web started").is_some());
    let out = gantry.stop();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let t = |e: &str| at(&log, e).unwrap_or_else(|| panic!("no {e:?} in {}", read(&log)));
    // (Without a readiness check a job is ready once its process exists, so the three may log
    // their start in any order; the stop order is what counts here.)
    // Each stops only once the one that needs it has stopped (each lingers 0.3 s).
    assert!(t("web stopped") <= t("api stopping"), "{}", read(&log));
    assert!(t("api stopped") <= t("db stopping"), "{}", read(&log));
}

#[test]
fn dependency_mistakes_are_reported_at_once_with_file_and_line() {
    let dir = Dir::new();
    dir.write(
        "bad.hcl",
        r#"job "a" {
  command = "true"
  after = ["b"]
}
job "b" {
  command = "true"
  after = ["c"]
}
job "c" {
  command = "true"
  requires = ["a"]
}
job "d" {
  command = "true"
  after = ["nope"]
}
job "e" {
  command = "true"
  ready {
    url = "htp//127.0.0.1:80/"
  }
}
"#,
    );
    let out = run(gantry(&["check", "-c", dir.str()]));
    assert_ne!(out.code, Some(0));
    let file = dir.join("bad.hcl");
    let f = file.display();
    for want in [
        format!("{f}:3:11: job \"a\": dependency cycle: a → b → c → a"),
        format!("{f}:15:11: job \"d\": attribute \"after\": no job named \"nope\""),
        format!("{f}:20:11: ready check of job \"e\": probe URL htp//127.0.0.1:80/"),
    ] {
        assert!(
            out.stderr.contains(&want),
            "missing {want:?} in:\n{}",
            out.stderr
        );
    }
    // gantry up refuses the same configuration before starting anything.
    let up = run(gantry(&["up", "-c", dir.str()]));
    assert_eq!(up.code, out.code);
}

#[test]
fn check_prints_the_start_order_as_layers() {
    let dir = Dir::new();
    dir.write(
        "ok.hcl",
        r#"job "worker" {
  command = "true"
  after = ["api"]
}
job "api" {
  command = "true"
  requires = ["migrate"]
  notify = "systemd"
  watchdog = "30s"
}
job "migrate" {
  command = "true"
  oneTime = true
}
"#,
    );
    let out = run(gantry(&["check", "-c", dir.str()]));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stdout.contains("start order (each layer once the one before is ready):\n     1. migrate\n     2. api\n     3. worker\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("ready on sd_notify READY=1; watchdog 30s"),
        "{}",
        out.stdout
    );
}
