//! gantry as a real PID 1 (a new PID namespace) and as a plain init: reaping, exit codes, signal
//! forwarding, graceful shutdown, and the state a child starts in.

mod support;

use std::path::Path;
use std::time::Duration;

use support::*;

#[test]
fn orphan_storm_leaves_no_zombie_and_keeps_the_exit_code() {
    // The child makes 5000 orphans (their parent exits at once), waits until every other process in
    // the namespace is gone, reports the zombies it saw last, and exits 42.
    let script = r#"
import os, sys, time
pid = os.fork()
if pid == 0:
    for i in range(5000):
        if os.fork() == 0:
            time.sleep(0.5)
            os._exit(0)
    os._exit(0)
os.waitpid(pid, 0)
me = os.getpid()
deadline = time.time() + 50
while True:
    others, zombies = 0, 0
    for p in os.listdir('/proc'):
        if not p.isdigit() or int(p) in (1, me):
            continue
        try:
            stat = open('/proc/%s/stat' % p).read()
        except OSError:
            continue
        others += 1
        if stat[stat.rfind(')') + 2] == 'Z':
            zombies += 1
    if others == 0 or time.time() > deadline:
        break
    time.sleep(0.05)
print('others=%d zombies=%d' % (others, zombies))
sys.exit(42)
"#;
    let out = run(gantry_pid1(&["--", "python3", "-c", script]));
    assert_eq!(
        out.stdout.trim(),
        "others=0 zombies=0",
        "stderr: {}",
        out.stderr
    );
    assert_eq!(out.code, Some(42), "stderr: {}", out.stderr);
}

#[test]
fn every_exit_code_passes_through_as_pid1() {
    for code in 0..=255 {
        let out = run(gantry_pid1(&["--", "sh", "-c", &format!("exit {code}")]));
        assert_eq!(out.code, Some(code), "exit {code}: {}", out.stderr);
    }
}

#[test]
fn death_by_signal_gives_128_plus_n() {
    for (sig, name) in [(9, "KILL"), (10, "USR1"), (11, "SEGV"), (15, "TERM")] {
        let out = run(gantry_pid1(&[
            "--",
            "sh",
            "-c",
            &format!("kill -{name} $$"),
        ]));
        assert_eq!(out.code, Some(128 + sig), "{name}: {}", out.stderr);
    }
}

#[test]
fn commands_that_cannot_run_exit_126_and_127() {
    let out = run(gantry(&["--", "/nonexistent/program"]));
    assert_eq!(out.code, Some(127));
    assert!(
        out.stderr.contains("/nonexistent/program"),
        "{}",
        out.stderr
    );
    let dir = Dir::new();
    let not_executable = dir.write("data.txt", "just text\n");
    let out = run(gantry(&["--", not_executable.to_str().expect("utf-8")]));
    assert_eq!(out.code, Some(126), "{}", out.stderr);
}

fn trap_script(dir: &Dir) -> String {
    let log = dir.join("signals.log");
    format!(
        r#"log={log}
for s in HUP USR1 USR2 WINCH QUIT CONT RTMIN+3; do trap "echo $s >> $log" $s; done
trap 'echo TERM >> {log}; exit 0' TERM
echo ready >> $log
while true; do sleep 0.05; done"#,
        log = log.display()
    )
}

#[test]
fn signals_are_forwarded_to_the_job_as_pid1() {
    let dir = Dir::new();
    let log = dir.join("signals.log");
    let child = spawn(gantry_pid1(&["--", "bash", "-c", &trap_script(&dir)]));
    let pid = inner_pid(child.id());
    wait_until("the trap script", || read(&log).contains("ready"));
    let rtmin3 = 34 + 3; // glibc's SIGRTMIN is 34
    let sent = [
        (1, "HUP"),
        (10, "USR1"),
        (12, "USR2"),
        (28, "WINCH"),
        (3, "QUIT"),
        (rtmin3, "RTMIN+3"),
    ];
    for (sig, name) in sent {
        kill(pid, sig);
        wait_until(name, || read(&log).lines().any(|l| l == name));
    }
    kill(pid, 15);
    let out = finish(child);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(read(&log).lines().any(|l| l == "TERM"));
}

/// gantry as PID 1 with `--stop-timeout grace` over a job that ignores SIGTERM, once the job runs.
/// Returns the unshare child, gantry's pid, and the directory to keep alive.
fn start_job_ignoring_sigterm(grace: &str) -> (std::process::Child, u32, Dir) {
    let dir = Dir::new();
    let started = dir.join("started");
    let script = format!(
        "trap '' TERM; touch {}; while true; do sleep 0.05; done",
        started.display()
    );
    let child = spawn(gantry_pid1(&[
        "--stop-timeout",
        grace,
        "--",
        "sh",
        "-c",
        &script,
    ]));
    let pid = inner_pid(child.id());
    wait_until("the job", || started.exists());
    (child, pid, dir)
}

#[test]
fn sigterm_kills_a_job_that_ignores_it_after_the_grace_period() {
    let (child, pid, _dir) = start_job_ignoring_sigterm("1s");
    kill(pid, 15);
    let out = finish(child);
    assert_eq!(out.code, Some(137), "{}", out.stderr);
    assert!(out.stderr.contains("SIGKILL"), "{}", out.stderr);
}

#[test]
fn a_second_sigterm_kills_at_once() {
    let (child, pid, _dir) = start_job_ignoring_sigterm("1h");
    kill(pid, 15);
    std::thread::sleep(Duration::from_millis(200));
    kill(pid, 15);
    // With a one-hour grace period, only the escalation can end this before the guard.
    let out = finish(child);
    assert_eq!(out.code, Some(137), "{}", out.stderr);
    assert!(out.stderr.contains("again"), "{}", out.stderr);
}

#[test]
fn an_orphan_holding_stdout_does_not_hang_the_exit() {
    // The background sleep keeps the pipe open; gantry must still end it and exit.
    let out = run(gantry_pid1(&[
        "--stop-timeout",
        "2s",
        "--",
        "sh",
        "-c",
        "sleep 1000 & echo started; exit 3",
    ]));
    assert_eq!(out.code, Some(3));
    assert_eq!(out.stdout.trim(), "started");
    let out = run(gantry(&[
        "--stop-timeout",
        "2s",
        "--",
        "sh",
        "-c",
        "sleep 1000 & echo started; exit 4",
    ]));
    assert_eq!(out.code, Some(4));
}

#[test]
fn the_child_starts_with_no_blocked_or_ignored_signals() {
    // gantry's own parent ignores some signals; the child must not inherit that, nor gantry's mask.
    let cmd = format!(
        "trap '' USR1 HUP INT; exec {} -- grep -E '^Sig(Blk|Ign)' /proc/self/status",
        GANTRY.as_str()
    );
    let mut c = std::process::Command::new("unshare");
    c.args(["--pid", "--fork", "--mount-proc", "sh", "-c", &cmd]);
    let out = run(c);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        out.stdout.trim(),
        "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000",
        "{}",
        out.stderr
    );
}

#[test]
fn no_descriptor_above_2_leaks_into_the_child() {
    let cmd = format!(
        "exec 7</dev/null 9>/dev/null; exec {} -- sh -c 'ls /proc/$$/fd'",
        GANTRY.as_str()
    );
    let out = run({
        let mut c = std::process::Command::new("sh");
        c.args(["-c", &cmd]);
        c
    });
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let fds: Vec<&str> = out.stdout.split_whitespace().collect();
    // 0-2, plus the descriptor `ls` opens to read the directory (sh's /proc/$$/fd does not show ls's).
    assert_eq!(fds, vec!["0", "1", "2"], "{}", out.stdout);
}

#[test]
fn the_first_command_to_end_brings_the_others_down() {
    let out = run(gantry(&["--", "sh", "-c", "exit 5", "---", "sleep", "300"]));
    assert_eq!(out.code, Some(5));
    // A clean first exit stops the rest and is not a failure.
    let out = run(gantry(&["---", "true", "---", "sleep", "300"]));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}

#[test]
fn staged_kill_signals_are_sent_in_order() {
    let dir = Dir::new();
    let log = dir.join("stages");
    let script = format!(
        "trap 'echo INT >> {l}' INT; trap 'echo USR2 >> {l}' USR2; trap '' TERM; echo up >> {l}; while true; do sleep 0.05; done",
        l = log.display()
    );
    let child = spawn(gantry(&[
        "--kill-stages",
        "INT,USR2,KILL",
        "--stage-timeout",
        "300ms",
        "--",
        "bash",
        "-c",
        &script,
    ]));
    wait_until("the job", || read(&log).contains("up"));
    kill(child.id(), 15);
    let out = finish(child);
    assert_eq!(read(&log), "up\nINT\nUSR2\n");
    assert_eq!(out.code, Some(137));
}

#[test]
fn variables_expand_only_when_asked() {
    let out = run({
        let mut c = gantry(&["-e", "--", "sh", "-c", "echo $0", "$GANTRY_T"]);
        c.env("GANTRY_T", "expanded");
        c
    });
    assert_eq!(out.stdout.trim(), "expanded");
    let out = run({
        let mut c = gantry(&["--", "echo", "$GANTRY_T"]);
        c.env("GANTRY_T", "expanded");
        c
    });
    assert_eq!(out.stdout.trim(), "$GANTRY_T");
}

#[test]
fn go_init_sentinel_watch_flags_signal_the_child_on_change() {
    let dir = Dir::new();
    let cert = dir.write("certs/tls.pem", "one\n");
    let log = dir.join("log");
    let script = format!(
        "trap 'echo hup >> {l}' HUP; echo up >> {l}; while true; do sleep 0.05; done",
        l = log.display()
    );
    let watch = format!("-watch={}:SIGHUP", cert.display());
    let child = spawn(gantry_pid1(&[&watch, "--", "bash", "-c", &script]));
    let pid = inner_pid(child.id());
    wait_until("the child", || read(&log).contains("up"));
    std::thread::sleep(Duration::from_millis(400));
    std::fs::write(&cert, "two\n").expect("rewrite");
    wait_until("a HUP", || read(&log).contains("hup"));
    kill(pid, 15);
    let out = finish(child);
    assert_eq!(read(&log).matches("hup").count(), 1, "{}", out.stderr);
}

#[test]
fn wait_option_holds_the_command_until_the_dependency_is_up() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let url = format!("tcp://127.0.0.1:{port}");
    let dir = Dir::new();
    let marker = dir.join("started");
    let script = format!("touch {}; echo started", marker.display());
    let child = spawn(gantry(&["--wait", &url, "--", "sh", "-c", &script]));
    // Nothing listens yet: the command must not have run.
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !marker.exists(),
        "the command ran before its dependency was up"
    );
    let _listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind");
    let out = finish(child);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout.trim(), "started");
}

#[test]
fn wait_option_gives_up_with_75_and_rejects_bad_urls() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let url = format!("tcp://127.0.0.1:{port}");
    let out = run(gantry(&[
        "--wait",
        &url,
        "--wait-timeout",
        "1s",
        "--",
        "echo",
        "never",
    ]));
    assert_eq!(out.code, Some(75), "{}", out.stderr);
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr.contains(&format!("127.0.0.1:{port}")),
        "{}",
        out.stderr
    );
    let out = run(gantry(&["--wait", "nosuch://x", "--", "echo", "never"]));
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("nosuch"), "{}", out.stderr);
    assert!(out.stdout.is_empty());
}

#[test]
fn on_a_terminal_ctrl_c_reaches_the_child_and_the_exit_code_is_130() {
    // gantry runs on a new pseudo-terminal; ^C typed there must go to the child's process group (the
    // terminal's foreground), not to gantry. Were gantry in the foreground instead, it would stop the
    // child with SIGTERM and exit 143.
    let script = r#"
import os, pty, sys, select, time
pid, fd = pty.fork()
if pid == 0:
    # The child is in its final form when it says "ready" (a shell would race a ^C against its fork).
    child = "import time; print('ready', flush=True); time.sleep(100)"
    os.execv(sys.argv[1], [sys.argv[1], "--", sys.executable, "-c", child])
buf = b""
while b"ready" not in buf:
    r, _, _ = select.select([fd], [], [], 30)
    if not r:
        sys.exit("no output from the child")
    buf += os.read(fd, 1024)
os.write(fd, b"\x03")
# Bounded, and a hang says what every process was doing (state, group, the terminal's foreground).
deadline = time.monotonic() + 20
while True:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    if time.monotonic() > deadline:
        def stat(p):
            try:
                with open(f"/proc/{p}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                return f"pid {p} state {fields[0]} pgrp {fields[2]}"
            except OSError as e:
                return f"pid {p}: {e}"
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                kids = f.read().split()
        except OSError:
            kids = []
        try:
            fg = os.tcgetpgrp(fd)
        except OSError as e:
            fg = e
        r, _, _ = select.select([fd], [], [], 0)
        if r:
            buf += os.read(fd, 4096)
        os.kill(pid, 9)
        sys.exit(f"gantry did not exit after ^C: foreground {fg}; gantry {stat(pid)}; "
                 f"children {[stat(k) for k in kids]}; terminal output {buf!r}")
    time.sleep(0.02)
print(os.waitstatus_to_exitcode(status))
"#;
    let out = run({
        let mut c = std::process::Command::new("python3");
        c.args(["-c", script, GANTRY.as_str()]);
        c
    });
    assert_eq!(out.stdout.trim(), "130", "stderr: {}", out.stderr);
}

/// glibc's SIGRTMIN (the kernel's 32 and 33 are reserved by glibc for its threads).
const SIGRTMIN: i32 = 34;

#[test]
fn death_by_a_real_time_signal_gives_128_plus_n_as_pid1_and_as_subreaper() {
    // `nix`'s waitpid turned such a status into EINVAL after reaping it: the exit was lost and gantry
    // never ended.
    for sig in [SIGRTMIN, SIGRTMIN + 3, 64] {
        let script = format!("kill -{sig} $$");
        for pid1 in [true, false] {
            let args = ["--", "sh", "-c", script.as_str()];
            let cmd = if pid1 {
                gantry_pid1(&args)
            } else {
                gantry(&args)
            };
            let out = run(cmd);
            assert_eq!(out.code, Some(128 + sig), "signal {sig}: {}", out.stderr);
            assert!(!out.stderr.contains("waitpid"), "{}", out.stderr);
        }
    }
}

#[test]
fn a_forwarded_real_time_signal_that_kills_the_job_ends_gantry() {
    // The issue's reproduction: a job that does not handle RTMIN+2 dies of it when gantry forwards it.
    let child = spawn(gantry_pid1(&["--stop-timeout", "1s", "--", "sleep", "60"]));
    let pid = inner_pid(child.id());
    wait_until("the job", || {
        read(Path::new(&format!("/proc/{pid}/task/{pid}/children")))
            .split_whitespace()
            .next()
            .is_some()
    });
    kill(pid, SIGRTMIN + 2);
    let out = finish(child);
    assert_eq!(out.code, Some(128 + SIGRTMIN + 2), "{}", out.stderr);
}

#[test]
fn a_real_time_stop_signal_ends_the_job_and_gantry_as_pid1() {
    // systemd's stop signal in a container is SIGRTMIN+3.
    let child = spawn(gantry_pid1(&[
        "--stop-signal",
        "SIGRTMIN+3",
        "--stop-timeout",
        "1h",
        "--",
        "sleep",
        "60",
    ]));
    let pid = inner_pid(child.id());
    wait_until("the job", || {
        read(Path::new(&format!("/proc/{pid}/task/{pid}/children")))
            .split_whitespace()
            .next()
            .is_some()
    });
    kill(pid, 15);
    // With a one-hour grace, only the stop signal's death being seen can end this before the guard.
    let out = finish(child);
    assert_eq!(out.code, Some(128 + SIGRTMIN + 3), "{}", out.stderr);
}
