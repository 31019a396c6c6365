//! `gantry up` and `gantry check` on real configuration directories: phases, restart policy, boot
//! failures, configuration errors, output redirection.

mod support;

use std::path::Path;

use support::*;

fn up(dir: &Dir) -> Output {
    run(gantry(&["up", "-c", dir.str()]))
}

#[test]
fn every_mittnite_snippet_in_the_seed_document_parses() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mittnite");
    let files = gantry::config::discover(&dir).expect("fixtures");
    assert_eq!(files.len(), 6);
    let mut errors = gantry::config::Errors::default();
    let blocks = gantry::config::parse_files(&files, &mut errors);
    let plan = gantry::config::build_plan(&blocks, &mut errors);
    assert!(errors.is_empty(), "{errors}");
    assert_eq!(plan.jobs.len(), 10);
    assert_eq!(plan.boot.len(), 1);
}

#[test]
fn boot_jobs_finish_before_any_job_starts_and_their_output_is_kept() {
    let dir = Dir::new();
    let marker = dir.join("booted");
    dir.write(
        "a.hcl",
        &format!(
            r#"
boot "slow" {{
  command = "sh"
  args = ["-c", "echo boot-output; echo boot-error >&2; sleep 0.3; touch {m}"]
}}
job "check" {{
  command = "sh"
  args = ["-c", "test -e {m} && echo saw-boot"]
  oneTime = true
}}
"#,
            m = marker.display()
        ),
    );
    let out = up(&dir);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("boot-output"));
    assert!(out.stderr.contains("boot-error"));
    assert!(out.stdout.contains("saw-boot"), "{}", out.stdout);
}

#[test]
fn a_failing_boot_job_stops_startup_with_exit_71() {
    let dir = Dir::new();
    let never = dir.join("never");
    dir.write(
        "a.hcl",
        &format!(
            "boot \"fail\" {{\n command = \"false\"\n}}\njob \"j\" {{\n command = \"touch\"\n args = [\"{}\"]\n oneTime = true\n}}\n",
            never.display()
        ),
    );
    let out = up(&dir);
    assert_eq!(out.code, Some(71), "{}", out.stderr);
    assert!(!never.exists());
    assert!(
        logged(&out.stderr, &["boot job failed", "job=fail"]),
        "{}",
        out.stderr
    );
}

#[test]
fn a_boot_job_that_times_out_is_stopped_and_fails() {
    let dir = Dir::new();
    dir.write(
        "a.hcl",
        "boot \"hang\" {\n command = \"sleep\"\n args = [\"300\"]\n timeout = \"300ms\"\n}\n",
    );
    let out = up(&dir);
    assert_eq!(out.code, Some(71), "{}", out.stderr);
    assert!(out.stderr.contains("timed out"), "{}", out.stderr);
}

#[test]
fn a_boot_job_that_may_fail_does_not_stop_startup() {
    let dir = Dir::new();
    dir.write(
        "a.hcl",
        "boot \"fail\" {\n command = \"false\"\n canFail = true\n}\njob \"j\" {\n command = \"echo\"\n args = [\"ran\"]\n oneTime = true\n}\n",
    );
    let out = up(&dir);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout.trim(), "ran");
}

#[test]
fn max_attempts_limits_restarts_and_the_job_code_is_the_exit_code() {
    let dir = Dir::new();
    let count = dir.join("count");
    dir.write(
        "a.hcl",
        &format!(
            "job \"flaky\" {{\n command = \"sh\"\n args = [\"-c\", \"echo run >> {}; exit 9\"]\n maxAttempts = 2\n}}\n",
            count.display()
        ),
    );
    let out = up(&dir);
    assert_eq!(out.code, Some(9), "{}", out.stderr);
    assert_eq!(read(&count).lines().count(), 2);
    assert!(out.stderr.contains("restarting in 1s"), "{}", out.stderr);
}

#[test]
fn a_job_that_may_fail_lets_the_rest_run_on() {
    let dir = Dir::new();
    dir.write(
        "a.hcl",
        "job \"bad\" {\n command = \"false\"\n maxAttempts = 1\n canFail = true\n}\njob \"good\" {\n command = \"sh\"\n args = [\"-c\", \"sleep 0.5; echo good-done\"]\n oneTime = true\n}\n",
    );
    let out = up(&dir);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("good-done"));
    assert!(out.stderr.contains("may fail"), "{}", out.stderr);
}

#[test]
fn a_failed_job_brings_the_others_down() {
    let dir = Dir::new();
    dir.write(
        "a.hcl",
        "job \"bad\" {\n command = \"sh\"\n args = [\"-c\", \"exit 4\"]\n maxAttempts = 1\n}\njob \"long\" {\n command = \"sleep\"\n args = [\"300\"]\n}\n",
    );
    let out = up(&dir);
    assert_eq!(out.code, Some(4), "{}", out.stderr);
    assert!(
        logged(&out.stderr, &["stopped", "job=long"]),
        "{}",
        out.stderr
    );
}

#[test]
fn sigterm_stops_every_job_gracefully() {
    let dir = Dir::new();
    let log = dir.join("log");
    for name in ["a", "b"] {
        dir.write(
            &format!("{name}.hcl"),
            &format!(
                "job \"{name}\" {{\n command = \"sh\"\n args = [\"-c\", \"trap 'echo {name}-term >> {l}; exit 0' TERM; echo {name}-up >> {l}; while true; do sleep 0.05; done\"]\n}}\n",
                l = log.display()
            ),
        );
    }
    let child = spawn(gantry(&["up", "-c", dir.str()]));
    wait_until("both jobs", || {
        read(&log).contains("a-up") && read(&log).contains("b-up")
    });
    kill(child.id(), 15);
    let out = finish(child);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let text = read(&log);
    assert!(text.contains("a-term") && text.contains("b-term"), "{text}");
}

#[test]
fn keep_running_waits_for_a_signal_after_every_job_ended() {
    let dir = Dir::new();
    let marker = dir.join("ran");
    dir.write(
        "a.hcl",
        &format!(
            "job \"once\" {{\n command = \"touch\"\n args = [\"{}\"]\n oneTime = true\n}}\n",
            marker.display()
        ),
    );
    let mut child = spawn(gantry(&["up", "--keep-running", "-c", dir.str()]));
    wait_until("the job to run", || marker.exists());
    // Without --keep-running gantry exits as soon as the job has completed; give it time to do so.
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "gantry exited although --keep-running was given"
    );
    kill(child.id(), 15);
    let out = finish(child);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        logged(&out.stderr, &["completed", "job=once"]),
        "{}",
        out.stderr
    );
}

#[test]
fn output_goes_to_files_with_timestamps() {
    let dir = Dir::new();
    let out_file = dir.join("logs/deep/out.log");
    let err_file = dir.join("logs/err.log");
    dir.write(
        "a.hcl",
        &format!(
            "job \"j\" {{\n command = \"sh\"\n args = [\"-c\", \"echo one; echo two; printf partial; echo oops >&2\"]\n stdout = \"{}\"\n stderr = \"{}\"\n enableTimestamps = true\n customTimestampFormat = \"2006-01-02\"\n oneTime = true\n}}\n",
            out_file.display(),
            err_file.display()
        ),
    );
    std::fs::create_dir_all(dir.join("logs")).expect("mkdir");
    std::fs::write(&err_file, "earlier\n").expect("seed");
    let out = up(&dir);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let lines: Vec<String> = read(&out_file).lines().map(String::from).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    let today = lines[0].split(' ').next().expect("stamp").to_string();
    assert_eq!(today.len(), 10, "{lines:?}");
    assert_eq!(
        lines,
        vec![
            format!("{today} one"),
            format!("{today} two"),
            format!("{today} partial")
        ]
    );
    assert_eq!(read(&err_file), format!("earlier\n{today} oops\n"));
}

#[test]
fn config_errors_are_all_reported_with_file_line_and_exit_78() {
    let dir = Dir::new();
    dir.write("a.hcl", "job \"a\" {\n  comand = \"x\"\n}\n");
    dir.write(
        "sub/b.hcl",
        "job \"b\" {\n  command = \"x\"\n  maxAttempts = \"lots\"\n}\n",
    );
    dir.write("c.hcl", "job \"a\" {\n  command = \"y\"\n}\n");
    let out = run(gantry(&["check", "-c", dir.str()]));
    assert_eq!(out.code, Some(78));
    let a = dir.join("a.hcl");
    let b = dir.join("sub/b.hcl");
    let c = dir.join("c.hcl");
    for expected in [
        format!("{}:2:3: job \"a\": unknown attribute \"comand\" (did you mean \"command\"?)", a.display()),
        format!("{}:3:17: job \"b\": attribute \"maxAttempts\": expected a whole number, found \"lots\"", b.display()),
        format!("{}:1:1: job \"a\" is defined twice (first at {}:1:1)", c.display(), a.display()),
    ] {
        assert!(out.stderr.contains(&expected), "missing {expected:?} in:\n{}", out.stderr);
    }
    let out = run(gantry(&["up", "-c", dir.str()]));
    assert_eq!(out.code, Some(78));
    let out = run(gantry(&["check", "-c", "/nonexistent/dir"]));
    assert_eq!(out.code, Some(78));
    assert!(out.stderr.contains("/nonexistent/dir"), "{}", out.stderr);
}

#[test]
fn check_prints_the_plan() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello");
    let out = run(gantry(&["check", "-c", dir.to_str().expect("utf-8")]));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("2. boot: 1 job(s)"), "{}", out.stdout);
    assert!(out.stdout.contains("- greeter:"), "{}", out.stdout);
    assert!(out.stdout.contains("up to 3 attempt(s)"), "{}", out.stdout);
}

#[test]
fn a_kubernetes_configmap_mount_is_loaded_once() {
    let dir = Dir::new();
    let ts = dir.join("..2024_01_01_00_00_00.000");
    std::fs::create_dir_all(&ts).expect("mkdir");
    std::fs::write(
        ts.join("jobs.hcl"),
        "job \"a\" {\n command = \"echo\"\n args = [\"once\"]\n oneTime = true\n}\n",
    )
    .expect("write");
    std::os::unix::fs::symlink("..2024_01_01_00_00_00.000", dir.join("..data")).expect("symlink");
    std::os::unix::fs::symlink("..data/jobs.hcl", dir.join("jobs.hcl")).expect("symlink");
    let out = up(&dir);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout.trim(), "once");
}

#[test]
fn a_lazy_block_without_a_listener_is_refused_not_ignored() {
    let dir = Dir::new();
    // Nothing would ever start the job: refused with its place (tests/lazy.rs runs lazy jobs).
    dir.write(
        "a.hcl",
        "job \"web\" {\n command = \"true\"\n lazy {\n  spinUpTimeout = \"5s\"\n }\n}\n",
    );
    let out = run(gantry(&["up", "-c", dir.str()]));
    assert_eq!(out.code, Some(78));
    assert!(
        out.stderr
            .contains("a.hcl:3:2: job \"web\": a lazy job needs at least one listen block"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_watch_signals_the_job_once_per_change_and_restart_gives_a_new_pid() {
    let dir = Dir::new();
    let conf = dir.write("watched/app.conf", "v1\n");
    let other = dir.write("watched/other.conf", "a\n");
    let log = dir.join("log");
    dir.write(
        "a.hcl",
        &format!(
            r#"
job "app" {{
  command = "bash"
  args = ["-c", "trap 'echo hup >> {l}' HUP; echo \"up $$\" >> {l}; while true; do sleep 0.05; done"]
  watch "{conf}" {{
    signal = "HUP"
  }}
  watch "{other}" {{
    signal = 15
    restart = true
  }}
}}
"#,
            l = log.display(),
            conf = conf.display(),
            other = other.display()
        ),
    );
    let child = spawn(gantry(&["up", "-c", dir.str()]));
    wait_until("the job", || read(&log).contains("up "));
    // No signal at start-up, even with two watches.
    std::thread::sleep(std::time::Duration::from_millis(600));
    assert!(!read(&log).contains("hup"), "{}", read(&log));
    std::fs::write(&conf, "v2\n").expect("write");
    wait_until("one HUP", || read(&log).contains("hup"));
    std::fs::write(&other, "b\n").expect("write");
    wait_until("a restart", || {
        read(&log).lines().filter(|l| l.starts_with("up ")).count() == 2
    });
    kill(child.id(), 15);
    let out = finish(child);
    let text = read(&log);
    assert_eq!(text.lines().filter(|l| *l == "hup").count(), 1, "{text}");
    let pids: Vec<&str> = text.lines().filter(|l| l.starts_with("up ")).collect();
    assert_ne!(pids[0], pids[1]);
    assert!(
        out.stderr.contains("restarting on request"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("failure 1"), "{}", out.stderr);
    // The job has no TERM trap: it dies of the SIGTERM that stopped it.
    assert_eq!(out.code, Some(143), "{}", out.stderr);
}

#[test]
fn signals_reach_every_job_under_up() {
    let dir = Dir::new();
    let log = dir.join("log");
    for name in ["a", "b"] {
        dir.write(
            &format!("{name}.hcl"),
            &format!(
                "job \"{name}\" {{\n command = \"bash\"\n args = [\"-c\", \"trap 'echo {name}-usr1 >> {l}' USR1; echo {name}-up >> {l}; while true; do sleep 0.05; done\"]\n}}\n",
                l = log.display()
            ),
        );
    }
    let child = spawn(gantry(&["up", "-c", dir.str()]));
    wait_until("both jobs", || {
        read(&log).contains("a-up") && read(&log).contains("b-up")
    });
    kill(child.id(), 10);
    wait_until("USR1 in both jobs", || {
        read(&log).contains("a-usr1") && read(&log).contains("b-usr1")
    });
    kill(child.id(), 15);
    let out = finish(child);
    assert_eq!(read(&log).matches("usr1").count(), 2, "{}", out.stderr);
}

#[test]
fn check_lists_each_jobs_watches() {
    let dir = Dir::new();
    dir.write(
        "a.hcl",
        "job \"a\" {\n command = \"x\"\n watch \"/etc/a.conf\" { signal = \"HUP\" }\n watch \"/etc/b/*.conf\" {\n signal = 15\n restart = true\n }\n}\n",
    );
    let out = run(gantry(&["check", "-c", dir.str()]));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stdout
            .contains("watch /etc/a.conf: send SIGHUP to the process group"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("watch /etc/b/*.conf: restart (stop with SIGTERM)"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_closed_stdout_is_reported_once_and_gantrys_sigpipe_is_not_forwarded() {
    // gantry copies timestamped output to its own stdout. When that pipe's reader goes away, the
    // failed write raises SIGPIPE in gantry itself: it must not be forwarded to the job, and the
    // failure is reported once, not once per line.
    let dir = Dir::new();
    let trap = dir.join("trap.log");
    dir.write(
        "a.hcl",
        &format!(
            r#"
job "talker" {{
  command = "/bin/sh"
  args = ["-c", "trap 'echo got-pipe >> {}' PIPE; i=0; while [ $i -lt 50 ]; do echo line $i; i=$((i+1)); sleep 0.01; done"]
  enableTimestamps = true
  oneTime = true
}}
"#,
            trap.display()
        ),
    );
    let mut child = spawn(gantry(&["up", "-c", dir.str()]));
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut first).expect("first line");
    assert!(first.contains("line 0"), "{first}");
    drop(stdout);
    let out = finish(child);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        !trap.exists(),
        "the job received SIGPIPE {} time(s)",
        std::fs::read_to_string(&trap)
            .unwrap_or_default()
            .lines()
            .count()
    );
    assert_eq!(
        out.stderr.matches("cannot write a job's output").count(),
        1,
        "{}",
        out.stderr
    );
}

#[test]
fn duration_flags_too_long_for_a_clock_are_usage_errors_naming_the_flag() {
    // Each duration flag of each mode, with a value no clock can be advanced by: a usage error that
    // names the flag, never a panic.
    let huge = "99999999999999999999s";
    let dir = Dir::new();
    dir.write("a.hcl", "job \"a\" {\n command = \"true\"\n}\n");
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("--stop-timeout", vec!["--stop-timeout", huge, "--", "true"]),
        (
            "--stage-timeout",
            vec!["--stage-timeout", huge, "--", "true"],
        ),
        ("--wait-timeout", vec!["--wait-timeout", huge, "--", "true"]),
        ("--interval", vec!["--interval", huge, "--", "true"]),
        ("--splay", vec!["--splay", huge, "--", "true"]),
        (
            "--wait-timeout",
            vec!["up", "-c", dir.str(), "--wait-timeout", huge],
        ),
        (
            "--timeout",
            vec!["wait", "--timeout", huge, "tcp://127.0.0.1:1"],
        ),
        (
            "--attempt-timeout",
            vec!["wait", "--attempt-timeout", huge, "tcp://127.0.0.1:1"],
        ),
        (
            "--debounce",
            vec![
                "sidecar",
                "--config-dir",
                dir.str(),
                "--process-name",
                "x",
                "--debounce",
                huge,
            ],
        ),
        (
            "--poll",
            vec![
                "sidecar",
                "--config-dir",
                dir.str(),
                "--process-name",
                "x",
                "--poll",
                huge,
            ],
        ),
    ];
    for (flag, args) in cases {
        let out = run(gantry(&args));
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert!(!out.stderr.contains("panicked"), "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains(flag) && out.stderr.contains("too long"),
            "{args:?}: {}",
            out.stderr
        );
    }
}

#[test]
fn zero_polling_intervals_are_rejected_not_spun() {
    let dir = Dir::new();
    for args in [
        vec![
            "--watch",
            "/etc/hostname:HUP",
            "--interval",
            "0s",
            "--",
            "true",
        ],
        vec![
            "sidecar",
            "--config-dir",
            dir.str(),
            "--process-name",
            "x",
            "--poll",
            "0s",
        ],
    ] {
        let out = run(gantry(&args));
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("longer than 0"),
            "{args:?}: {}",
            out.stderr
        );
    }
    // The environment variable goes through the same parser.
    let mut cmd = gantry(&["sidecar", "--config-dir", dir.str(), "--process-name", "x"]);
    cmd.env("RELOAD_POLL", "0");
    let out = run(cmd);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("longer than 0"), "{}", out.stderr);
}

#[test]
fn fifo_config_file_is_an_error_not_a_hang() {
    let dir = Dir::new();
    dir.write("a.hcl", "job \"a\" {\n command = \"true\"\n}\n");
    let fifo = dir.join("b.hcl");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(status.success());
    for mode in ["check", "up"] {
        // Hang guard: `run` kills gantry and fails the test after support::GUARD.
        let out = run(gantry(&[mode, "-c", dir.str()]));
        assert_eq!(out.code, Some(78), "{mode}: {}", out.stderr);
        let expected = format!("{}:1:1: cannot read: it is a FIFO", fifo.display());
        assert!(out.stderr.contains(&expected), "{mode}: {}", out.stderr);
    }
    // Named directly with -c, too.
    let out = run(gantry(&["check", "-c", fifo.to_str().expect("utf-8")]));
    assert_eq!(out.code, Some(78), "{}", out.stderr);
    assert!(out.stderr.contains("FIFO"), "{}", out.stderr);
}

#[test]
fn config_symlink_to_dev_zero_is_an_error_not_a_memory_hog() {
    let dir = Dir::new();
    let zero = dir.join("x.hcl");
    std::os::unix::fs::symlink("/dev/zero", &zero).expect("symlink");
    let out = run(gantry(&["check", "-c", dir.str()]));
    assert_eq!(out.code, Some(78), "{}", out.stderr);
    let expected = format!(
        "{}:1:1: cannot read: it is a character device",
        zero.display()
    );
    assert!(out.stderr.contains(&expected), "{}", out.stderr);
}

#[test]
fn config_file_over_four_mib_is_an_error_naming_it() {
    let dir = Dir::new();
    let big = dir.join("big.hcl");
    // Valid HCL (comments), so only the size can be the problem.
    let line = format!("# {}\n", "x".repeat(1021));
    std::fs::write(&big, line.repeat(4 * 1024 + 1)).expect("write");
    let out = run(gantry(&["check", "-c", dir.str()]));
    assert_eq!(out.code, Some(78), "{}", out.stderr);
    let expected = format!(
        "{}:1:1: cannot read: it is larger than 4 MiB",
        big.display()
    );
    assert!(out.stderr.contains(&expected), "{}", out.stderr);
}

#[test]
fn check_rejects_nul_bytes_and_wrong_types_with_file_line_and_attribute() {
    let dir = Dir::new();
    let file = dir.write(
        "a.hcl",
        "job \"a\" {\n command = \"sleep\\u00001\"\n}\njob \"b\" {\n command = 5\n args = \"x\"\n}\n",
    );
    let out = run(gantry(&["check", "-c", dir.str()]));
    assert_eq!(out.code, Some(78), "{}", out.stderr);
    let f = file.display();
    for expected in [
        format!("{f}:2:12: job \"a\": attribute \"command\": must not contain a NUL byte"),
        format!(
            "{f}:5:12: job \"b\": attribute \"command\": expected a string, found a number (5)"
        ),
        format!(
            "{f}:6:9: job \"b\": attribute \"args\": expected a list of strings, found a string"
        ),
    ] {
        assert!(
            out.stderr.contains(&expected),
            "missing {expected:?} in:\n{}",
            out.stderr
        );
    }
}

#[test]
fn a_validate_command_printing_hundreds_of_mb_keeps_gantrys_memory_bounded() {
    // Measured once when written (debug build, /proc/PID/status): VmHWM 17.5 MiB with the bounded
    // capture; 305 MiB before it, when the 300 MB of output were kept whole.
    const BOUND_KIB: u64 = 64 * 1024;
    let dir = Dir::new();
    let conf = dir.write("watched/app.conf", "v1\n");
    let ready = dir.join("ready");
    let done = dir.join("validate-done");
    dir.write(
        "a.hcl",
        &format!(
            r#"
job "app" {{
  command = "sh"
  args = ["-c", "echo > {ready}; exec sleep 1000"]
  watch "{conf}" {{
    signal = "HUP"
    debounce = "50ms"
    validate {{
      command = "sh"
      args = ["-c", "head -c 300000000 /dev/zero; head -c 200000 /dev/zero | tr '\\0' e >&2; echo > {done}; exit 1"]
    }}
  }}
}}
"#,
            ready = ready.display(),
            conf = conf.display(),
            done = done.display()
        ),
    );
    let child = spawn(gantry(&["up", "-c", dir.str()]));
    let pid = child.id();
    wait_until("the job", || ready.exists());
    let mut max_rss = 0;
    let mut version = 2;
    let start = std::time::Instant::now();
    // The watch may not have taken its baseline yet: change the file again until the validator runs.
    wait_until("the validate command to finish", || {
        if start.elapsed() >= std::time::Duration::from_secs(5 * (version - 2)) {
            std::fs::write(&conf, format!("v{version}\n")).expect("write");
            version += 1;
        }
        max_rss = max_rss.max(status_kib(pid, "VmRSS").unwrap_or(0));
        done.exists()
    });
    for _ in 0..25 {
        max_rss = max_rss.max(status_kib(pid, "VmRSS").unwrap_or(0));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let peak = status_kib(pid, "VmHWM").expect("gantry is running");
    kill(pid, 15);
    let out = finish(child);
    assert!(max_rss > 0, "VmRSS was never read");
    assert!(
        max_rss < BOUND_KIB && peak < BOUND_KIB,
        "gantry grew to VmRSS {max_rss} KiB, VmHWM {peak} KiB (bound {BOUND_KIB} KiB)"
    );
    // The failure is still reported, with the head of stderr and how much was left out.
    assert!(out.stderr.contains("validate command"), "{}", out.stderr);
    assert!(out.stderr.contains("eeee"), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "[gantry: {} more bytes not kept]",
            200_000 - 64 * 1024
        )),
        "{}",
        &out.stderr[out.stderr.len().saturating_sub(500)..]
    );
}

/// Whether `pid` is a live process (not gone, not a zombie).
fn alive(pid: &str) -> bool {
    let stat = read(Path::new(&format!("/proc/{}/stat", pid.trim())));
    match stat.rsplit_once(')') {
        Some((_, rest)) => !rest.trim_start().starts_with('Z'),
        None => false,
    }
}

#[test]
fn a_hanging_validate_command_is_killed_after_its_timeout_and_the_watch_keeps_working() {
    let dir = Dir::new();
    let conf = dir.write("watched/app.conf", "ok v1\n");
    let log = dir.join("log");
    let ready = dir.join("ready");
    let hung = dir.join("hung.pid");
    let background = dir.join("background.pid");
    dir.write(
        "a.hcl",
        &format!(
            r#"
job "app" {{
  command = "bash"
  args = ["-c", "trap 'echo hup >> {log}' HUP; echo > {ready}; while true; do sleep 0.05; done"]
  watch "{conf}" {{
    signal = "HUP"
    debounce = "50ms"
    timeout = "1s"
    validate {{
      command = "sh"
      args = ["-c", "if grep -q hang {conf}; then sleep 300 & echo $! > {background}; echo $$ > {hung}; exec sleep 300; fi"]
    }}
  }}
}}
"#,
            log = log.display(),
            ready = ready.display(),
            conf = conf.display(),
            hung = hung.display(),
            background = background.display(),
        ),
    );
    let child = spawn(gantry(&["up", "-c", dir.str()]));
    wait_until("the job", || ready.exists());
    std::thread::sleep(std::time::Duration::from_millis(500));
    std::fs::write(&conf, "hang\n").expect("write");
    wait_until("the validator to hang", || {
        !read(&hung).is_empty() && !read(&background).is_empty()
    });
    // Past its timeout the validator's whole process group is killed, and it is not reloaded.
    wait_until(
        "the validator and its background child to be killed",
        || !alive(&read(&hung)) && !alive(&read(&background)),
    );
    assert!(!read(&log).contains("hup"), "{}", read(&log));
    // The watch still works: the next change is validated and delivered.
    std::fs::write(&conf, "ok v2\n").expect("write");
    wait_until("the reload after the hang", || read(&log).contains("hup"));
    kill(child.id(), 15);
    let out = finish(child);
    assert_eq!(
        out.stderr
            .matches("did not finish within 1s and was killed; nothing was sent")
            .count(),
        1,
        "{}",
        out.stderr
    );
}

/// `gantry ARGS` with stdout (or stderr) a pipe whose reader is already gone, so that every write
/// fails with EPIPE, as under `gantry check | head -1` once head has exited.
fn with_closed_pipe(args: &[&str], close_stderr: bool) -> Output {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let mut cmd = gantry(args);
    cmd.stdin(std::process::Stdio::null());
    if close_stderr {
        cmd.stdout(std::process::Stdio::piped()).stderr(writer);
    } else {
        cmd.stdout(writer).stderr(std::process::Stdio::piped());
    }
    finish(cmd.spawn().expect("spawn"))
}

#[test]
fn stdout_closed_by_its_reader_ends_output_quietly_without_a_panic() {
    let hello = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello");
    let hello = hello.to_str().expect("utf-8");
    for args in [vec!["check", "-c", hello], vec!["version"], vec!["--help"]] {
        let out = with_closed_pipe(&args, false);
        assert_eq!(out.code, Some(0), "{args:?}: {}", out.stderr);
        assert!(out.stderr.is_empty(), "{args:?}: {}", out.stderr);
    }
    // Configuration errors go to stderr; a closed stderr is no panic either (101 would be).
    let dir = Dir::new();
    dir.write("a.hcl", "job \"a\" {\n comand = \"x\"\n}\n");
    let out = with_closed_pipe(&["check", "-c", dir.str()], true);
    assert_eq!(out.code, Some(78));
}

#[test]
fn global_options_work_before_the_subcommand_as_well_as_after_it() {
    let dir = Dir::new();
    dir.write(
        "a.hcl",
        "job \"a\" {\n command = \"true\"\n oneTime = true\n}\n",
    );
    for args in [
        vec!["--log-format", "json", "up", "-c", dir.str()],
        vec!["up", "--log-format", "json", "-c", dir.str()],
        vec!["--log-format=json", "up", "-c", dir.str()],
    ] {
        let out = run(gantry(&args));
        assert_eq!(out.code, Some(0), "{args:?}: {}", out.stderr);
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert!(!lines.is_empty(), "{args:?}: up logs at info");
        for line in lines {
            let parsed: Result<serde_json::Value, _> = serde_json::from_str(line);
            assert!(parsed.is_ok(), "{args:?}: not JSON: {line}");
        }
    }
    let out = run(gantry(&["--log-format", "json", "check", "-c", dir.str()]));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    // The flags-only mode's own options still do not mix with a subcommand.
    let out = run(gantry(&["--stop-timeout", "5s", "up", "-c", dir.str()]));
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("--stop-timeout"), "{}", out.stderr);
}

#[test]
fn a_probe_timeout_too_long_for_a_clock_is_a_config_error_not_a_panic() {
    let dir = Dir::new();
    dir.write(
        "a.hcl",
        "probe \"x\" {\n wait = true\n tcp {\n  host = { hostname = \"127.0.0.1\", port = 1 }\n  timeout = \"10000000000000000000s10000000000000000000s\"\n }\n}\n",
    );
    let out = run(gantry(&["check", "-c", dir.str()]));
    assert_eq!(out.code, Some(78), "{}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    assert!(out.stderr.contains("timeout"), "{}", out.stderr);
}
