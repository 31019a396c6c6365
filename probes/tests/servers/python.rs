//! SMTP (aiosmtpd) and MongoDB (nx-27017, wire-compatible; no real mongod installs on these
//! machines) — started here on free ports from the test venv.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gantry_probes::{wait_until_ready, Dependency, WaitOptions};

use crate::{assert_contains, check, free_port, reason, silent_server, venv};

/// A server process, killed when dropped.
pub struct Server(Option<Child>);

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn spawn(cmd: &mut Command) -> Server {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    Server(Some(child))
}

fn smtp_cmd(venv: &Path, port: u16) -> Command {
    let mut c = Command::new(venv.join("bin/python"));
    c.args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")]);
    c
}

fn mongo_cmd(venv: &Path, port: u16) -> Command {
    let mut c = Command::new(venv.join("bin/nx-27017"));
    // nx-27017 refuses to start while another instance's pid file exists: one file per server.
    let pid_file = std::env::temp_dir().join(format!("gantry-test-nx-27017-{port}.pid"));
    c.args([
        "--db",
        "memory",
        "--host",
        "127.0.0.1",
        "-p",
        &port.to_string(),
    ])
    .arg("--pid-file")
    .arg(pid_file);
    c
}

fn guard() -> WaitOptions {
    WaitOptions {
        // Guards against a hang; not a timing assertion.
        deadline: Some(Duration::from_secs(30)),
        ..Default::default()
    }
}

/// Waits until `url` is ready (through the engine, as gantry does).
async fn until_ready(url: &str) {
    let deps = vec![Dependency::from_probe(crate::probe(url))];
    if let Err(e) = wait_until_ready(deps, &guard(), std::future::pending()).await {
        panic!("{e}");
    }
}

/// Starts `cmd` after `delay`, on another thread; the server is killed when the returned handle
/// is dropped.
fn start_late(mut cmd: Command, delay: Duration) -> Arc<Mutex<Option<Server>>> {
    let slot = Arc::new(Mutex::new(None));
    let s = slot.clone();
    std::thread::spawn(move || {
        std::thread::sleep(delay);
        let server = spawn(&mut cmd);
        *s.lock().unwrap_or_else(|p| p.into_inner()) = Some(server);
    });
    slot
}

#[tokio::test]
async fn smtp_ready_closed_and_silent() {
    let Some(venv) = venv() else { return };
    let port = free_port();
    let _server = spawn(&mut smtp_cmd(&venv, port));
    until_ready(&format!("smtp://127.0.0.1:{port}")).await;
    check(&format!("smtp://127.0.0.1:{port}")).await.unwrap();

    assert_eq!(
        reason(&format!("smtp://127.0.0.1:{}", free_port())).await,
        "connection refused"
    );
    let silent = silent_server();
    let p = crate::probe_with_timeout(
        &format!("smtp://127.0.0.1:{silent}"),
        Duration::from_millis(500),
    );
    let e = gantry_probes::attempt(p.as_ref()).await.unwrap_err();
    assert_eq!(e.to_string(), "timed out after 500ms");
}

#[tokio::test]
async fn smtp_starttls_asked_of_a_server_without_it_is_not_ready() {
    let Some(venv) = venv() else { return };
    let port = free_port();
    let _server = spawn(&mut smtp_cmd(&venv, port));
    until_ready(&format!("smtp://127.0.0.1:{port}")).await;
    let r = reason(&format!("smtp://127.0.0.1:{port}?starttls=true")).await;
    assert_contains(&r, "STARTTLS is not supported");
}

#[tokio::test]
async fn smtp_server_refusal_is_the_reason() {
    let Some(venv) = venv() else { return };
    // The real aiosmtpd, with a handler that answers NOOP like a server about to shut down.
    let dir = std::env::temp_dir().join(format!("gantry-smtp-busy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("gantry_busy.py"),
        "class Busy:\n    async def handle_NOOP(self, server, session, envelope, arg):\n        \
         return '421 4.3.2 gantry-test is shutting down'\n",
    )
    .unwrap();
    let port = free_port();
    let mut cmd = smtp_cmd(&venv, port);
    cmd.args(["-c", "gantry_busy.Busy"]).env("PYTHONPATH", &dir);
    let _server = spawn(&mut cmd);
    let url = format!("smtp://127.0.0.1:{port}");
    // Not ready either way, so wait for the greeting with a plain TCP probe first.
    until_ready(&format!("tcp://127.0.0.1:{port}")).await;
    let mut r = reason(&url).await;
    for _ in 0..50 {
        if r.contains("421") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        r = reason(&url).await;
    }
    assert_contains(&r, "gantry-test is shutting down");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn smtp_server_that_starts_late_is_noticed() {
    let Some(venv) = venv() else { return };
    let port = free_port();
    let _late = start_late(smtp_cmd(&venv, port), Duration::from_millis(500));
    until_ready(&format!("smtp://127.0.0.1:{port}")).await;
}

#[tokio::test]
async fn mongodb_ready_closed_and_silent() {
    let Some(venv) = venv() else { return };
    let port = free_port();
    let _server = spawn(&mut mongo_cmd(&venv, port));
    until_ready(&format!("mongodb://127.0.0.1:{port}/app")).await;
    check(&format!("mongodb://127.0.0.1:{port}/"))
        .await
        .unwrap();

    let closed = reason(&format!("mongodb://127.0.0.1:{}/", free_port())).await;
    assert_eq!(closed, "connection refused");
    let silent = silent_server();
    let p = crate::probe_with_timeout(
        &format!("mongodb://127.0.0.1:{silent}/"),
        Duration::from_millis(800),
    );
    let e = gantry_probes::attempt(p.as_ref()).await.unwrap_err();
    // The driver's own server-selection timeout (90 % of the attempt) or ours, whichever fires.
    let e = e.to_string();
    assert!(
        e.contains("timed out") || e.contains("Server selection timeout"),
        "{e}"
    );
}

#[tokio::test]
async fn mongodb_server_that_starts_late_is_noticed() {
    let Some(venv) = venv() else { return };
    let port = free_port();
    let _late = start_late(mongo_cmd(&venv, port), Duration::from_millis(500));
    until_ready(&format!("mongodb://127.0.0.1:{port}/")).await;
}
