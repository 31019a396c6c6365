//! systemd's notify protocol (`sd_notify(3)`): each job with `notify = "systemd"` gets a datagram
//! socket of its own, bound once for the job's lifetime; every process of the job finds its path in
//! `NOTIFY_SOCKET` and sends newline-separated `KEY=VALUE` assignments.
//!
//! The socket has `SO_PASSCRED` on, so the kernel stamps every datagram with the sender's pid, and a
//! message is accepted only from the job's main process (the one gantry started, or the one a
//! `MAINPID=` named) or a process descending from it. Anything else is refused with a log line: no
//! other process can declare the job ready. The check reads /proc at the time the datagram is read,
//! so a helper that sends and exits at once (`systemd-notify` in a shell script) may already be
//! gone and be refused; send from the job's process itself (or `exec` the sender), as systemd
//! recommends for `NotifyAccess=main`.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use tokio::io::Interest;
use tokio::net::UnixDatagram;

use super::{Event, Report};
use crate::sys;

/// A job's notify socket; the socket file is removed when it is dropped.
#[derive(Debug)]
pub struct NotifySocket {
    sock: UnixDatagram,
    path: PathBuf,
}

/// Where gantry puts its notify sockets: a directory of its own under /run when /run is writable,
/// else under the temporary directory; named after gantry's pid and a random word, since two
/// gantries may both be PID 1 (of different namespaces) over one /run. Short, because a socket path
/// has room for 107 bytes.
static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Removes gantry's notify socket directory, if it made one (at exit: the jobs' actors, which own
/// the sockets, are not dropped when the process ends).
pub fn remove_socket_dir() {
    if let Some(dir) = DIR.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

fn socket_dir() -> PathBuf {
    DIR.get_or_init(|| {
        let name = format!("gantry-{}-{:08x}", std::process::id(), fastrand::u32(..));
        let run = Path::new("/run").join(&name);
        if std::fs::create_dir_all(&run).is_ok() {
            return run;
        }
        std::env::temp_dir().join(name)
    })
    .clone()
}

impl NotifySocket {
    /// Binds a new socket for job `job` (in a tokio runtime).
    pub fn bind(job: &str) -> io::Result<NotifySocket> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = socket_dir();
        std::fs::create_dir_all(&dir)?;
        let short: String = job
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .take(32)
            .collect();
        let path = dir.join(format!(
            "{}-{short}.notify",
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&path);
        let sock = UnixDatagram::bind(&path)?;
        sys::pass_credentials(&sock)?;
        Ok(NotifySocket { sock, path })
    }

    /// The value of `NOTIFY_SOCKET` for the job's processes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Discards what is queued (messages of an earlier run, or sent between runs).
    pub fn drain(&self) {
        // Non-blocking reads (MSG_DONTWAIT) until nothing is left; tokio's idea of readiness is
        // corrected by the watcher's next `try_io`.
        let mut buf = [0u8; 4096];
        while sys::recv_with_pid(&self.sock, &mut buf).is_ok() {}
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        if let Some(dir) = self.path.parent() {
            // Only goes once the last socket of this gantry is gone.
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// What one datagram says, in order: the events it carries and its `STATUS=` text, if any.
pub fn parse(text: &str) -> (Vec<Event>, Option<String>) {
    let mut events = Vec::new();
    let mut status = None;
    for line in text.split('\n') {
        match line.split_once('=') {
            Some(("READY", "1")) => events.push(Event::Ready),
            Some(("RELOADING", "1")) => events.push(Event::Reloading),
            Some(("STOPPING", "1")) => events.push(Event::Stopping),
            Some(("WATCHDOG", "1")) => events.push(Event::Watchdog),
            Some(("MAINPID", pid)) => {
                if let Ok(pid) = pid.trim().parse::<i32>() {
                    if pid > 0 {
                        events.push(Event::MainPid(pid));
                    }
                }
            }
            Some(("STATUS", text)) => status = Some(text.to_string()),
            _ => {}
        }
    }
    (events, status)
}

/// Reads `socket` for one run of job `job` whose process is `pid`, until aborted: accepted
/// messages become reports, `STATUS=` text is logged, messages from other processes are refused.
pub async fn watch(job: String, socket: Arc<NotifySocket>, pid: i32, report: Report) {
    let mut main = pid;
    let mut buf = vec![0u8; 4096];
    loop {
        let got = match socket.sock.readable().await {
            Ok(()) => socket.sock.try_io(Interest::READABLE, || {
                sys::recv_with_pid(&socket.sock, &mut buf)
            }),
            Err(e) => Err(e),
        };
        let (n, sender) = match got {
            Ok(got) => got,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => {
                tracing::error!(job = %job, "cannot read its notify socket: {e}");
                return;
            }
        };
        let text = String::from_utf8_lossy(&buf[..n]);
        let trusted = sender.is_some_and(|s| {
            sys::is_same_or_descendant(s, main) || sys::is_same_or_descendant(s, pid)
        });
        if !trusted {
            tracing::warn!(
                "job {job:?}: refused a notify message from pid {} (not the job's main process {main} or one of its descendants)",
                sender.map_or_else(|| "unknown".to_string(), |p| p.to_string())
            );
            continue;
        }
        let (events, status) = parse(&text);
        if let Some(status) = status {
            tracing::info!(job = %job, "status: {status}");
        }
        for event in events {
            if let Event::MainPid(p) = event {
                main = p;
            }
            report(event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_datagram_carries_several_assignments() {
        let (events, status) =
            parse("STATUS=warming up\nMAINPID=42\nREADY=1\nWATCHDOG=1\nBOGUS=1\nREADY=0");
        assert_eq!(
            events,
            vec![Event::MainPid(42), Event::Ready, Event::Watchdog]
        );
        assert_eq!(status.as_deref(), Some("warming up"));
        assert_eq!(
            parse("RELOADING=1\nSTOPPING=1\nMAINPID=x").0,
            vec![Event::Reloading, Event::Stopping]
        );
    }

    #[tokio::test]
    async fn only_the_jobs_own_processes_are_heard() {
        let socket = Arc::new(NotifySocket::bind("unit test/job").expect("bind"));
        assert!(socket
            .path()
            .to_string_lossy()
            .ends_with("unit_test_job.notify"));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let report: Report = Arc::new(move |e| {
            let _ = tx.send(e);
        });
        // This test's own process is "the job": its datagram is accepted...
        let me = std::process::id() as i32;
        let task = tokio::spawn(watch("t".into(), socket.clone(), me, report.clone()));
        let client = std::os::unix::net::UnixDatagram::unbound().expect("client");
        client.send_to(b"READY=1\n", socket.path()).expect("send");
        assert_eq!(rx.recv().await, Some(Event::Ready));
        task.abort();
        let _ = task.await;
        // ...but not when the job is some other process (a child of this test, which the test is
        // not a descendant of).
        let mut other = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep");
        let task = tokio::spawn(watch("t".into(), socket.clone(), other.id() as i32, report));
        client.send_to(b"READY=1\n", socket.path()).expect("send");
        let quiet = tokio::time::timeout(std::time::Duration::from_millis(200), rx.recv()).await;
        let _ = other.kill();
        let _ = other.wait();
        assert!(
            quiet.is_err(),
            "a stranger's READY=1 was accepted: {quiet:?}"
        );
        task.abort();
        let path = socket.path().to_path_buf();
        drop(socket);
        let _ = task.await;
        assert!(!path.exists());
    }
}
