//! Helpers for the black-box tests: run the real `gantry` binary, optionally as PID 1 of a new PID
//! namespace, with a kill-on-timeout guard so a hang fails the test instead of blocking the suite.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The binary under test: this build's, or another build of it named by `GANTRY_TEST_BIN` (`.ci/run`
/// runs the PID-1 tests again against the static musl binary).
pub static GANTRY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    std::env::var("GANTRY_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_gantry").to_string())
});

/// Generous hang guard; no test asserts on timing.
pub const GUARD: Duration = Duration::from_secs(60);

pub struct Output {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// `gantry ARGS` as a plain child of the test.
pub fn gantry(args: &[&str]) -> Command {
    let mut cmd = Command::new(&*GANTRY);
    cmd.args(args);
    cmd
}

/// `gantry ARGS` as PID 1 of a new PID namespace.
pub fn gantry_pid1(args: &[&str]) -> Command {
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--pid",
        "--fork",
        "--mount-proc",
        "--kill-child",
        GANTRY.as_str(),
    ]);
    cmd.args(args);
    cmd
}

pub fn spawn(mut cmd: Command) -> Child {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn")
}

/// Waits for `child` under the guard, collecting its output.
pub fn finish(mut child: Child) -> Output {
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(o) = out.as_mut() {
            let _ = o.read_to_string(&mut s);
        }
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(e) = err.as_mut() {
            let _ = e.read_to_string(&mut s);
        }
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if start.elapsed() > GUARD {
            let _ = child.kill();
            let _ = child.wait();
            panic!("gantry did not exit within {GUARD:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    use std::os::unix::process::ExitStatusExt;
    Output {
        code: status.code(),
        signal: status.signal(),
        stdout: out_t.join().expect("stdout reader"),
        stderr: err_t.join().expect("stderr reader"),
    }
}

pub fn run(cmd: Command) -> Output {
    finish(spawn(cmd))
}

/// Polls `cond` until it holds or the guard runs out (then panics with `what`).
/// Whether one line of gantry's log holds every one of `parts` (a message and its fields, as in
/// `failed (exit code 4)` and `job=bad`: the job's name is a field of its own, not in the message).
#[allow(dead_code)]
pub fn logged(log: &str, parts: &[&str]) -> bool {
    log.lines()
        .any(|line| parts.iter().all(|p| line.contains(p)))
}

pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        if start.elapsed() > GUARD {
            panic!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A field of /proc/PID/status in KiB (`VmRSS`, `VmHWM`), if the process is still there.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    read(Path::new(&format!("/proc/{pid}/status")))
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The pid of gantry itself when started through `unshare --fork` (unshare's only child).
pub fn inner_pid(unshare_pid: u32) -> u32 {
    let mut found = None;
    wait_until("unshare's child", || {
        let path = format!("/proc/{unshare_pid}/task/{unshare_pid}/children");
        found = read(Path::new(&path))
            .split_whitespace()
            .next()
            .and_then(|p| p.parse().ok());
        found.is_some()
    });
    found.expect("child pid")
}

pub fn kill(pid: u32, signal: i32) {
    // SAFETY-free: use the kill(1) binary so the test crate needs no unsafe or extra deps.
    let status = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{signal} {pid}");
}

/// A temporary directory with helpers to write files into it.
pub struct Dir(pub tempfile::TempDir);

impl Dir {
    pub fn new() -> Self {
        Dir(tempfile::tempdir().expect("tempdir"))
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&path, text).expect("write");
        path
    }

    pub fn str(&self) -> &str {
        self.0.path().to_str().expect("utf-8 temp path")
    }
}

/// Runs `body` on a current-thread runtime next to a polling stand-in for the reaper's SIGCHLD loop
/// (a test thread cannot own SIGCHLD). A test binary using it reaps every child of its process, so it
/// must be alone in that binary.
pub fn with_polling_reaper<F, Fut>(body: F) -> Fut::Output
where
    F: FnOnce(std::sync::Arc<gantry::reaper::Reaper>) -> Fut,
    Fut: std::future::Future,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let reaper = gantry::reaper::Reaper::new();
        let r = std::sync::Arc::clone(&reaper);
        tokio::spawn(async move {
            loop {
                r.reap();
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        body(reaper).await
    })
}
