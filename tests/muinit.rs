//! muinit's command line (`-k SIGS`, `-t SECS`, `-s SIGS`, `---`-separated commands), run black-box
//! with gantry as PID 1 of a new PID namespace, as muinit's documentation describes it.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::*;

/// A bash job that logs `ready`, then the name of every HUP, USR1 and USR2 it gets; SIGTERM ends it.
fn trap_script(log: &Path) -> String {
    format!(
        r#"for s in HUP USR1 USR2; do trap "echo $s >> {l}" $s; done
trap 'exit 0' TERM
echo ready >> {l}
while true; do sleep 0.05; done"#,
        l = log.display()
    )
}

/// Whether gantry has read every signal sent to it (none is pending any more).
fn nothing_pending(pid: u32) -> bool {
    let status = read(Path::new(&format!("/proc/{pid}/status")));
    ["SigPnd:", "ShdPnd:"].iter().all(|field| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .is_some_and(|v| v.trim().trim_start_matches('0').is_empty())
    })
}

/// Runs the trap job under `gantry [s_option] ---`, sends USR2, then HUP and USR1, and returns the
/// signals the job logged.
fn forwarded_with(s_option: &[&str]) -> Vec<String> {
    let dir = Dir::new();
    let log = dir.join("log");
    let mut args = s_option.to_vec();
    let script = trap_script(&log);
    args.extend(["---", "bash", "-c", &script]);
    let child = spawn(gantry_pid1(&args));
    let pid = inner_pid(child.id());
    wait_until("the job", || read(&log).contains("ready"));
    kill(pid, 12);
    // gantry has taken USR2 off its queue (forwarded or not) before HUP is sent.
    wait_until("gantry to read USR2", || nothing_pending(pid));
    for (sig, name) in [(1, "HUP"), (10, "USR1")] {
        kill(pid, sig);
        wait_until(name, || read(&log).lines().any(|l| l == name));
    }
    // The job runs its traps every 50 ms; a forwarded USR2 would be in the log by now.
    std::thread::sleep(Duration::from_millis(500));
    // SIGTERM still stops the job even when it is not in the -s list.
    kill(pid, 15);
    let out = finish(child);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    read(&log)
        .lines()
        .filter(|l| *l != "ready")
        .map(String::from)
        .collect()
}

#[test]
fn s_forwards_only_the_signals_it_names() {
    let got = forwarded_with(&["-s", "1,10"]);
    assert!(got.contains(&"HUP".to_string()), "{got:?}");
    assert!(got.contains(&"USR1".to_string()), "{got:?}");
    assert!(!got.contains(&"USR2".to_string()), "{got:?}");
    // Without -s every signal is forwarded, USR2 included.
    let got = forwarded_with(&[]);
    assert!(got.contains(&"USR2".to_string()), "{got:?}");
}

#[test]
fn k_and_t_give_staged_termination() {
    let dir = Dir::new();
    let log = dir.join("log");
    let script = format!(
        "trap 'echo TERM >> {l}' TERM; echo up >> {l}; while true; do sleep 0.05; done",
        l = log.display()
    );
    let child = spawn(gantry_pid1(&[
        "-k", "15,9", "-t", "1", "---", "bash", "-c", &script,
    ]));
    let pid = inner_pid(child.id());
    wait_until("the job", || read(&log).contains("up"));
    let sent = Instant::now();
    kill(pid, 15);
    let out = finish(child);
    let took = sent.elapsed();
    // Stage one, SIGTERM, is survived; stage two, a second later, is SIGKILL.
    assert_eq!(read(&log), "up\nTERM\n", "{}", out.stderr);
    assert_eq!(out.code, Some(137), "{}", out.stderr);
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert!(took < Duration::from_secs(8), "{took:?}");
}

#[test]
fn the_exit_status_is_that_of_the_first_failed_child() {
    let out = run(gantry_pid1(&[
        "---",
        "sh",
        "-c",
        "sleep 0.3; exit 3",
        "---",
        "sh",
        "-c",
        "sleep 0.6; exit 9",
        "---",
        "sleep",
        "30",
    ]));
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    let out = run(gantry_pid1(&["---", "true", "---", "true"]));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}
