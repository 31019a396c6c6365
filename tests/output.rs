//! Job output through gantry's copy tasks (timestamps on): a destination nobody reads must not stop
//! the supervisor, and an endless line must not grow gantry's memory.

mod support;

use std::io::Read;
use std::time::{Duration, Instant};

use support::*;

#[test]
fn a_stdout_nobody_reads_does_not_stop_signals_or_shutdown() {
    let dir = Dir::new();
    let started = dir.join("started");
    dir.write(
        "a.hcl",
        &format!(
            r#"
job "chatty" {{
  command = "sh"
  args = ["-c", "touch {}; exec yes"]
  enableTimestamps = true
  stopTimeout = "2s"
}}
"#,
            started.display()
        ),
    );
    // stdout is a pipe the test never reads: it fills within milliseconds.
    let mut child = gantry(&["up", "-c", dir.str()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stderr = child.stderr.take().expect("stderr");
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    wait_until("the job", || started.exists());
    std::thread::sleep(Duration::from_millis(500));
    kill(child.id(), 15);
    let begin = Instant::now();
    // Grace 2 s + the 2 s output drain; a frozen supervisor never gets here.
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if begin.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("gantry did not end within 30 s of SIGTERM while its stdout was full");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = err_reader.join().expect("stderr");
    assert!(stderr.contains("shutting down"), "{stderr}");
    // `yes` dies of the stop signal.
    assert_eq!(status.code(), Some(143), "{stderr}");
    drop(child.stdout.take());
}

#[test]
fn an_endless_line_does_not_grow_gantrys_memory() {
    let dir = Dir::new();
    let total: u64 = 300 * 1024 * 1024;
    dir.write(
        "a.hcl",
        &format!(
            r#"
job "one-line" {{
  command = "sh"
  args = ["-c", "head -c {total} /dev/zero | tr '\\0' a; sleep 60"]
  enableTimestamps = true
  stopTimeout = "1s"
}}
"#
        ),
    );
    let mut child = gantry(&["up", "-c", dir.str()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let mut stdout = child.stdout.take().expect("stdout");
    let mut seen: u64 = 0;
    let mut peak = 0;
    let mut buf = vec![0u8; 1 << 16];
    let begin = Instant::now();
    while seen < total {
        let n = stdout.read(&mut buf).expect("read");
        assert!(n > 0, "gantry's stdout ended after {seen} bytes");
        seen += buf[..n].iter().filter(|&&b| b == b'a').count() as u64;
        peak = peak.max(status_kib(pid, "VmHWM").unwrap_or(0));
        if begin.elapsed() > GUARD {
            let _ = child.kill();
            panic!("only {seen} of {total} bytes arrived");
        }
    }
    kill(pid, 15);
    let out = finish(child);
    assert_eq!(out.code, Some(143), "{}", out.stderr);
    // Every byte arrived, and gantry held at most a few lines of it (64 KiB each).
    eprintln!("peak RSS {peak} KiB");
    assert!(peak > 0 && peak < 48 * 1024, "peak RSS {peak} KiB");
}
