//! dinit's command line (`-r CMD ARGS...`, `-primary`, `-start`, `-stop`, `-timeout`, `-submit`),
//! run black-box with gantry as PID 1 of a new PID namespace, as dinit's README describes it.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::*;

/// `gantry ARGS` as PID 1 with `env` added.
fn pid1_env(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = gantry_pid1(args);
    cmd.envs(env.iter().copied());
    cmd
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn the_last_command_is_primary_and_decides_the_exit_code() {
    let started = Instant::now();
    let out = run(gantry_pid1(&[
        "-r",
        "sleep",
        "30",
        "-r",
        "sh",
        "-c",
        "sleep 0.2; exit 7",
    ]));
    assert_eq!(out.code, Some(7), "{}", out.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the sleep was not stopped"
    );

    // A command that is not primary ends without ending anything.
    let out = run(gantry_pid1(&[
        "-r",
        "sh",
        "-c",
        "exit 3",
        "-r",
        "sh",
        "-c",
        "sleep 1; echo primary done",
    ]));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("primary done"), "{}", out.stdout);
}

#[test]
fn primary_makes_every_command_primary() {
    let out = run(gantry_pid1(&[
        "-primary",
        "-r",
        "sh",
        "-c",
        "sleep 0.2; exit 4",
        "-r",
        "sleep",
        "30",
    ]));
    assert_eq!(out.code, Some(4), "{}", out.stderr);
    // Without -primary the first command's end changes nothing: the primary decides.
    let out = run(gantry_pid1(&[
        "-r",
        "sh",
        "-c",
        "exit 4",
        "-r",
        "sh",
        "-c",
        "sleep 0.5; exit 6",
    ]));
    assert_eq!(out.code, Some(6), "{}", out.stderr);
}

/// A job that logs `ready`, then `TERM` when it gets SIGTERM (and exits 0), and the -stop script
/// that logs `stop` (slowly, so that a signal sent at the same time would land first).
fn stop_fixture(dir: &Dir) -> (String, String) {
    let log = dir.join("log");
    let job = format!(
        "trap 'echo TERM >> {l}; exit 0' TERM; echo ready >> {l}; while true; do sleep 0.05; done",
        l = log.display()
    );
    let stop = dir.write(
        "stop.sh",
        &format!("sleep 0.3\necho stop >> {}\n", log.display()),
    );
    (job, format!("/bin/sh {}", stop.display()))
}

#[test]
fn stop_runs_before_the_signal() {
    // On SIGTERM.
    let dir = Dir::new();
    let log = dir.join("log");
    let (job, stop) = stop_fixture(&dir);
    let child = spawn(gantry_pid1(&["-stop", &stop, "-r", "bash", "-c", &job]));
    let pid = inner_pid(child.id());
    wait_until("the job", || read(&log).contains("ready"));
    kill(pid, 15);
    let out = finish(child);
    assert_eq!(read(&log), "ready\nstop\nTERM\n", "{}", out.stderr);
    assert_eq!(out.code, Some(0), "{}", out.stderr);

    // When the primary ends: -stop, then the others get the signal, and the primary's code wins.
    let dir = Dir::new();
    let log = dir.join("log");
    let (job, stop) = stop_fixture(&dir);
    let primary = format!(
        "while [ ! -s {} ]; do sleep 0.05; done; exit 5",
        log.display()
    );
    let out = run(gantry_pid1(&[
        "-stop", &stop, "-r", "bash", "-c", &job, "-r", "sh", "-c", &primary,
    ]));
    assert_eq!(read(&log), "ready\nstop\nTERM\n", "{}", out.stderr);
    assert_eq!(out.code, Some(5), "{}", out.stderr);
}

#[test]
fn start_runs_first_and_its_failure_exits_71() {
    let dir = Dir::new();
    let log = dir.join("log");
    let start = dir.write("start.sh", &format!("echo start >> {}\n", log.display()));
    let out = run(gantry_pid1(&[
        "-start",
        &format!("/bin/sh {}", start.display()),
        "-r",
        "sh",
        "-c",
        &format!("echo run >> {}", log.display()),
    ]));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(read(&log), "start\nrun\n");

    let marker = dir.join("ran");
    let out = run(gantry_pid1(&[
        "-start",
        "/bin/false",
        "-r",
        "touch",
        s(&marker),
    ]));
    assert_eq!(out.code, Some(71), "{}", out.stderr);
    assert!(out.stderr.contains("/bin/false"), "{}", out.stderr);
    assert!(!marker.exists(), "a command ran after -start failed");
}

/// A job that ignores SIGTERM (its children too) once it has written `ready`.
fn stubborn(dir: &Dir) -> String {
    format!(
        "trap '' TERM; echo ready > {}; while true; do sleep 0.05; done",
        dir.join("ready").display()
    )
}

#[test]
fn timeout_escalates_to_sigkill() {
    for (args, env) in [
        (vec!["-timeout", "1"], vec![]),
        (vec![], vec![("DINIT_TIMEOUT", "1")]),
    ] {
        let dir = Dir::new();
        let job = stubborn(&dir);
        let mut all: Vec<&str> = args.clone();
        all.extend(["-r", "sh", "-c", &job]);
        let child = spawn(pid1_env(&all, &env));
        let pid = inner_pid(child.id());
        wait_until("the job", || dir.join("ready").exists());
        let sent = Instant::now();
        kill(pid, 15);
        let out = finish(child);
        let took = sent.elapsed();
        assert_eq!(out.code, Some(137), "{args:?} {env:?}: {}", out.stderr);
        // SIGKILL came after the timeout, and long before the 10 s default.
        assert!(
            took >= Duration::from_millis(900),
            "{args:?} {env:?}: {took:?}"
        );
        assert!(took < Duration::from_secs(8), "{args:?} {env:?}: {took:?}");
    }
}

#[test]
fn variables_expand_by_default_and_backslash_r_is_a_literal_r() {
    let out = run(pid1_env(
        &["-r", "/bin/echo", "$DINIT_T", "${DINIT_T}x", "\\-r", "-n"],
        &[("DINIT_T", "val")],
    ));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, "val valx -r -n\n");
}

/// A running instance with its socket at `dir/sock`: its primary ends once `dir/done` exists.
fn instance(dir: &Dir) -> std::process::Child {
    let sock = dir.join("sock");
    let primary = format!(
        "while [ ! -e {} ]; do sleep 0.05; done",
        dir.join("done").display()
    );
    let child = spawn(gantry_pid1(&[
        "-socket",
        s(&sock),
        "-r",
        "sh",
        "-c",
        &primary,
    ]));
    wait_until("the socket", || sock.exists());
    child
}

/// `gantry -submit` of a script that writes its parent's pid to `dir/parent`.
fn submission(dir: &Dir) -> Vec<String> {
    let script = dir.write(
        "submitted.sh",
        &format!(
            "echo $PPID > {}\nexec sleep 30\n",
            dir.join("parent").display()
        ),
    );
    [
        "-submit",
        "-socket",
        s(&dir.join("sock")),
        "-r",
        "/bin/sh",
        s(&script),
    ]
    .map(String::from)
    .to_vec()
}

#[test]
fn submit_starts_a_process_in_the_running_instance() {
    let dir = Dir::new();
    let child = instance(&dir);
    let sock = dir.join("sock");
    let mode = std::fs::metadata(&sock)
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "socket mode {mode:o}");

    let args = submission(&dir);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(gantry(&args));
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.starts_with("ok: pid "), "{}", out.stdout);
    // Its parent is the instance, PID 1 of the namespace.
    wait_until("the submitted process", || {
        !read(&dir.join("parent")).is_empty()
    });
    assert_eq!(read(&dir.join("parent")).trim(), "1");

    // The primary's end stops the submitted process too, and the socket goes away.
    std::fs::write(dir.join("done"), "").expect("write");
    let out = finish(child);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(!sock.exists(), "the socket was left behind");
}

#[test]
fn submit_is_refused_for_a_non_root_client() {
    let dir = Dir::new();
    // Let uid 65534 reach the socket's directory, so that only the socket itself stands in its way.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let child = instance(&dir);
    let args = submission(&dir);
    let as_nobody = || {
        let mut cmd = Command::new("setpriv");
        cmd.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            GANTRY.as_str(),
        ]);
        cmd.args(&args);
        run(cmd)
    };

    // The socket is root's, mode 0600: the client cannot even connect.
    let out = as_nobody();
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("only root may submit"),
        "{}",
        out.stderr
    );

    // Opened up by mistake, it still refuses: the server checks the peer's credentials.
    let sock = dir.join("sock");
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let out = as_nobody();
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("refused: only root may submit (you are uid 65534)"),
        "{}{}",
        out.stdout,
        out.stderr
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(!dir.join("parent").exists(), "a refused submission ran");

    // root may.
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(gantry(&args));
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    wait_until("the submitted process", || {
        !read(&dir.join("parent")).is_empty()
    });

    std::fs::write(dir.join("done"), "").expect("write");
    let out = finish(child);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}
