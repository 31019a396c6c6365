//! Helpers for the API's black-box tests: a real `gantry up --api` with a kill-on-timeout guard,
//! requests made with curl over the real socket, and free TCP ports.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const GUARD: Duration = Duration::from_secs(120);

pub fn gantry_bin() -> String {
    std::env::var("GANTRY_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_gantry").to_string())
}

/// A running `gantry up`, killed when dropped or when the guard runs out.
pub struct Up {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub sock: PathBuf,
    pub stdout: Arc<Mutex<Vec<u8>>>,
    pub stderr: Arc<Mutex<Vec<u8>>>,
    done: Arc<std::sync::atomic::AtomicBool>,
}

fn collect(mut r: impl Read + Send + 'static) -> Arc<Mutex<Vec<u8>>> {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let b = buf.clone();
    std::thread::spawn(move || {
        let mut chunk = vec![0u8; 64 * 1024];
        while let Ok(n) = r.read(&mut chunk) {
            if n == 0 {
                break;
            }
            b.lock().expect("lock").extend_from_slice(&chunk[..n]);
        }
    });
    buf
}

impl Up {
    /// Writes `config` as `a.hcl` into a fresh directory and starts `gantry up --api` on a socket
    /// in it, with `extra` flags. Does not wait for the socket.
    pub fn spawn(config: &str, extra: &[&str]) -> Up {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::spawn_in(dir, config, extra)
    }

    pub fn spawn_in(dir: tempfile::TempDir, config: &str, extra: &[&str]) -> Up {
        std::fs::create_dir_all(dir.path().join("cfg")).expect("mkdir");
        std::fs::write(dir.path().join("cfg/a.hcl"), config).expect("write config");
        let sock = dir.path().join("gantry.sock");
        let mut cmd = Command::new(gantry_bin());
        cmd.arg("up");
        if !extra.contains(&"--api-listen-address") {
            cmd.arg("--api-listen-address")
                .arg(format!("unix://{}", sock.display()));
        }
        cmd.arg("-c")
            .arg(dir.path().join("cfg"))
            .arg("--api")
            .args(extra)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn gantry");
        let stdout = collect(child.stdout.take().expect("stdout"));
        let stderr = collect(child.stderr.take().expect("stderr"));
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (pid, d) = (child.id(), done.clone());
        std::thread::spawn(move || {
            let start = Instant::now();
            while start.elapsed() < GUARD {
                if d.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        });
        Up {
            child,
            dir,
            sock,
            stdout,
            stderr,
            done,
        }
    }

    /// Starts gantry and waits until its API answers.
    pub fn start(config: &str, extra: &[&str]) -> Up {
        let up = Up::spawn(config, extra);
        up.wait_ready();
        up
    }

    pub fn wait_ready(&self) {
        let start = Instant::now();
        loop {
            if self.sock.exists() && curl(&self.sock, "GET", "/v2/jobs").0 == 200 {
                return;
            }
            if start.elapsed() > Duration::from_secs(30) {
                panic!("the API did not come up; stderr:\n{}", self.stderr_text());
            }
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().expect("lock")).into_owned()
    }

    pub fn stdout_bytes(&self) -> Vec<u8> {
        self.stdout.lock().expect("lock").clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then waits (under the guard) for the exit code.
    pub fn stop(&mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.wait()
    }

    pub fn wait(&mut self) -> Option<i32> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.done.store(true, std::sync::atomic::Ordering::SeqCst);
                // Let the readers drain the pipes.
                std::thread::sleep(Duration::from_millis(100));
                return status.code();
            }
            if start.elapsed() > Duration::from_secs(60) {
                let _ = self.child.kill();
                panic!("gantry did not exit; stderr:\n{}", self.stderr_text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A job's `/v2` view.
    pub fn job(&self, name: &str) -> serde_json::Value {
        let (code, body) = curl(&self.sock, "GET", &format!("/v2/jobs/{name}"));
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).expect("json")
    }

    /// Polls job `name` until `cond` holds.
    pub fn wait_job(
        &self,
        name: &str,
        what: &str,
        cond: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let start = Instant::now();
        loop {
            let j = self.job(name);
            if cond(&j) {
                return j;
            }
            if start.elapsed() > Duration::from_secs(30) {
                panic!("job {name} never became {what}: {j}");
            }
            std::thread::sleep(Duration::from_millis(30));
        }
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        self.done.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// `curl` over the unix socket: (status code, body). 0 when curl could not connect.
pub fn curl(sock: &Path, method: &str, path: &str) -> (u16, String) {
    curl_with(&[], sock, method, path)
}

/// The same, run through `prefix` (e.g. `setpriv ...`).
pub fn curl_with(prefix: &[&str], sock: &Path, method: &str, path: &str) -> (u16, String) {
    let mut cmd = if prefix.is_empty() {
        Command::new("timeout")
    } else {
        let mut c = Command::new(prefix[0]);
        c.args(&prefix[1..]).arg("timeout");
        c
    };
    let out = cmd
        .args(["30", "curl", "-s", "-X", method, "--unix-socket"])
        .arg(sock)
        .args(["-w", "\n%{http_code}"])
        .arg(format!("http://gantry{path}"))
        .output()
        .expect("run curl");
    parse_curl(&out.stdout)
}

/// `curl` over TCP with optional extra headers.
pub fn curl_tcp(url: &str, method: &str, headers: &[&str]) -> (u16, String) {
    let mut cmd = Command::new("timeout");
    cmd.args(["30", "curl", "-s", "-X", method, "-w", "\n%{http_code}"]);
    for h in headers {
        cmd.args(["-H", h]);
    }
    let out = cmd.arg(url).output().expect("run curl");
    parse_curl(&out.stdout)
}

fn parse_curl(stdout: &[u8]) -> (u16, String) {
    let text = String::from_utf8_lossy(stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// Polls `http://127.0.0.1:PORT/PATH` (the status port) until it answers `code` (30 s at most);
/// returns the body.
pub fn wait_for_status(port: u16, path: &str, code: u16) -> String {
    let start = Instant::now();
    loop {
        let (c, body) = curl_tcp(&format!("http://127.0.0.1:{port}{path}"), "GET", &[]);
        if c == code {
            return body;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{path} stayed {c}: {body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A TCP port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// `gantry ctl --api-address SOCK ARGS` under a timeout: (exit code, stdout, stderr).
pub fn ctl(sock: &Path, args: &[&str]) -> (i32, String, String) {
    ctl_with(&[], sock, args)
}

pub fn ctl_with(prefix: &[&str], sock: &Path, args: &[&str]) -> (i32, String, String) {
    let mut cmd = if prefix.is_empty() {
        Command::new("timeout")
    } else {
        let mut c = Command::new(prefix[0]);
        c.args(&prefix[1..]).arg("timeout");
        c
    };
    let out = cmd
        .args(["60", &gantry_bin(), "ctl", "--api-address"])
        .arg(sock)
        .args(args)
        .output()
        .expect("run gantry ctl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs as `nobody` with no supplementary groups.
pub const NOBODY: &[&str] = &[
    "setpriv",
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
];
