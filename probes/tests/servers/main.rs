//! Probes against real servers on loopback.
//!
//! MariaDB, PostgreSQL, Redis and RabbitMQ are the machine's own (`.ci/services.sh` makes sure they
//! answer and creates the password-protected PostgreSQL role). SMTP (aiosmtpd) and MongoDB
//! (nx-27017, a wire-compatible server) are started by the tests themselves on free ports from the
//! venv `.ci/services.sh` builds; the HTTP server is a small one in the test. The only fake servers
//! are for faults a real server does not show: one that accepts and never says anything.
//!
//! One test binary on purpose: every backend's driver is linked once, not once per file.

mod databases;
mod engine;
mod local;
mod messaging;
mod python;
mod secrets;

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use gantry_probes::{attempt, parse_url, BoxProbe, ProbeError};

/// A probe for `url` with a short attempt timeout, so a silent server fails the test quickly.
pub fn probe(url: &str) -> BoxProbe {
    probe_with_timeout(url, Duration::from_secs(3))
}

pub fn probe_with_timeout(url: &str, timeout: Duration) -> BoxProbe {
    let mut target = parse_url(url).unwrap_or_else(|e| panic!("{e}"));
    target.timeout = timeout;
    target.into_probe().unwrap_or_else(|e| panic!("{e}"))
}

/// One attempt against `url`.
pub async fn check(url: &str) -> Result<(), ProbeError> {
    captured_logs();
    attempt(probe(url).as_ref()).await
}

/// The error text of one failing attempt; fails the test if the attempt succeeds.
pub async fn reason(url: &str) -> String {
    match check(url).await {
        Ok(()) => panic!("{url} was ready, expected not ready"),
        Err(e) => e.to_string(),
    }
}

#[track_caller]
pub fn assert_contains(text: &str, needle: &str) {
    assert!(text.contains(needle), "expected {needle:?} in {text:?}");
}

/// A port on loopback that nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

/// A server that accepts connections and never sends a byte (nor closes them).
pub fn silent_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    std::thread::spawn(move || {
        let mut held: Vec<TcpStream> = Vec::new();
        for conn in listener.incoming().flatten() {
            // Drain whatever the client says in the background, answer nothing.
            if let Ok(mut c) = conn.try_clone() {
                std::thread::spawn(move || {
                    let mut buf = [0u8; 1024];
                    while matches!(c.read(&mut buf), Ok(n) if n > 0) {}
                });
            }
            held.push(conn);
        }
    });
    port
}

/// The venv with aiosmtpd and nx-27017, or `None` (with a loud message) if it is missing.
pub fn venv() -> Option<PathBuf> {
    let dir = PathBuf::from(
        std::env::var("GANTRY_TEST_VENV").unwrap_or_else(|_| "/opt/gantry-test-venv".into()),
    );
    if dir.join("bin/aiosmtpd").exists() && dir.join("bin/nx-27017").exists() {
        Some(dir)
    } else {
        eprintln!(
            "\n!!!!!! SKIPPED: no test venv at {} — run .ci/services.sh to create it !!!!!!\n",
            dir.display()
        );
        None
    }
}

/// Everything logged through `tracing` in this test binary, at DEBUG and above, from every crate.
pub fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = Capture(buf.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        gantry_probes::install_crypto_provider();
        buf
    })
    .clone()
}

pub fn logs_text() -> String {
    let logs = captured_logs();
    let bytes = logs.lock().unwrap_or_else(|p| p.into_inner());
    String::from_utf8_lossy(&bytes).into_owned()
}

#[derive(Clone)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(data);
        // Keep the output visible with --nocapture, too.
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs a shell command for test setup; panics with its output if it fails.
pub fn sh(cmd: &str) -> String {
    let out = std::process::Command::new("sh")
        .args(["-c", cmd])
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
