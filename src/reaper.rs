//! The one owner of `waitpid`: spawning children, reaping every exit, and reading signals.
//!
//! **Why one owner.** A process-wide `waitpid(-1)` (needed to reap orphans, which a PID 1 inherits)
//! and a per-child `wait` race for the same exit status; mittnite, go-init-sentinel and dinit all lose
//! exit codes this way. gantry has no per-child wait at all: every child is started through
//! [`Reaper::spawn`], which registers the pid before returning, and a single loop ([`Reaper::reap`],
//! run on every SIGCHLD) collects every exit with `waitpid(-1, WNOHANG)` and hands the status of a
//! registered pid to whoever spawned it. Unregistered pids are adopted orphans: they are reaped and
//! counted. Nothing else in gantry may call `wait`, `std::process::Child::wait` or use
//! `tokio::process`.
//!
//! **No race at registration.** The registry lock is held across `fork`/`exec` and the insertion, so
//! the reaper can never see a pid exit before it is known. (On the current-thread runtime gantry uses,
//! the reaper task cannot even run during a spawn; the lock makes the rule hold regardless.)
//!
//! **Signals** are blocked in every thread and read from one signalfd by [`signal_loop`]: SIGCHLD
//! drives the reaper; SIGTERM and SIGINT go to the supervisor, which owns shutdown; every other signal
//! is forwarded right there to each job process registered as a forwarding target
//! ([`Reaper::spawn_job`]), after which the loop yields the CPU so that a job woken on the same CPU
//! runs before gantry's own bookkeeping. Forwarding from here keeps a signal's path to one `kill`
//! with no task hop in between, and it is race-free for the same reason reaping is: a pid stays in
//! the registry until it has been reaped, so it cannot have been reused by another process.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{mpsc, oneshot, Notify};

use crate::config::CommandSpec;
use crate::exit::ExitStatus;
use crate::sys::{self, ChildSetup};

/// A child that was started and whose exit will be delivered on `exit`.
#[derive(Debug)]
pub struct Spawned {
    pub pid: i32,
    pub exit: oneshot::Receiver<ExitStatus>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

/// A registered child: where its exit status goes, and whether it receives forwarded signals.
#[derive(Debug)]
struct Entry {
    exit: oneshot::Sender<ExitStatus>,
    forward: bool,
}

/// Routes exit statuses to the tasks that own the children.
#[derive(Debug, Default)]
pub struct Reaper {
    waiters: Mutex<HashMap<i32, Entry>>,
    changed: Notify,
}

impl Reaper {
    pub fn new() -> Arc<Self> {
        Arc::new(Reaper::default())
    }

    fn registry(&self) -> MutexGuard<'_, HashMap<i32, Entry>> {
        // A poisoned lock only means another thread panicked while holding it; the map is still
        // consistent (every operation on it is a single insert or remove).
        self.waiters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts `spec` as a child with gantry's process model and registers it for reaping. It does
    /// not receive forwarded signals and reads from /dev/null (helper commands: probes, watch
    /// commands), so that it can never take input meant for a job.
    pub fn spawn(
        &self,
        spec: &CommandSpec,
        setup: ChildSetup,
        stdout: Stdio,
        stderr: Stdio,
    ) -> io::Result<Spawned> {
        self.start(spec, setup, None, stdout, stderr, false)
    }

    /// Like [`Reaper::spawn`], for a job: it receives the signals gantry forwards, and gantry's stdin.
    /// `sockets` (fd and name) are passed to it as fd 3 onward, systemd-style (`sys::PassFds`).
    pub fn spawn_job(
        &self,
        spec: &CommandSpec,
        setup: ChildSetup,
        sockets: &[(i32, &str)],
        stdout: Stdio,
        stderr: Stdio,
    ) -> io::Result<Spawned> {
        let pass = if sockets.is_empty() {
            None
        } else {
            // The whole environment is built here: std's must stay untouched (see `sys`).
            let mut env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
            for (k, v) in &spec.env {
                env.retain(|(key, _)| key.as_os_str() != k.as_str());
                env.push((k.into(), v.into()));
            }
            Some(sys::PassFds::new(sockets, env)?)
        };
        self.start(spec, setup, pass, stdout, stderr, true)
    }

    fn start(
        &self,
        spec: &CommandSpec,
        setup: ChildSetup,
        pass: Option<sys::PassFds>,
        stdout: Stdio,
        stderr: Stdio,
        forward: bool,
    ) -> io::Result<Spawned> {
        let mut cmd = Command::new(&spec.program);
        cmd.args(&spec.args);
        // Passed sockets bring their own environment (see `sys::PassFds`).
        if pass.is_none() {
            cmd.envs(spec.env.iter().map(|(k, v)| (k, v)));
        }
        // Until the fork, keep every descriptor below the passed sockets' last number busy, so
        // that std's exec-error pipe cannot be given one that the child's dup2 would replace.
        let mut held = Vec::new();
        // The same for a readiness descriptor's number (s6's notification-fd).
        let end = pass.as_ref().map_or(0, |p| 3 + p.count() as i32);
        let end = end.max(setup.notify_fd.map_or(0, |(_, at)| at + 1));
        if end > 0 {
            loop {
                let f = std::fs::File::open("/dev/null")?;
                if f.as_raw_fd() >= end {
                    break;
                }
                held.push(f);
            }
        }
        cmd.stdin(if forward {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .stdout(stdout)
        .stderr(stderr);
        if let Some(dir) = &spec.working_dir {
            cmd.current_dir(dir);
        }
        sys::prepare_child(&mut cmd, setup, pass);
        let (tx, rx) = oneshot::channel();
        let mut registry = self.registry();
        let mut child = cmd.spawn()?;
        let pid = child.id() as i32;
        registry.insert(pid, Entry { exit: tx, forward });
        drop(registry);
        drop(held);
        let stdout = child.stdout.take().map(OwnedFd::from);
        let stderr = child.stderr.take().map(OwnedFd::from);
        // Dropping `child` does not wait for it; the reaper owns that.
        drop(child);
        Ok(Spawned {
            pid,
            exit: rx,
            stdout,
            stderr,
        })
    }

    /// Reaps every child that has exited. Returns `true` when gantry has no children left at all.
    pub fn reap(&self) -> bool {
        let mut none_left = false;
        loop {
            match sys::reap_one() {
                Ok(sys::Reaped::Exited(pid, code)) => self.deliver(pid, ExitStatus::Code(code)),
                Ok(sys::Reaped::Signaled(pid, sig)) => self.deliver(pid, ExitStatus::Signaled(sig)),
                Ok(sys::Reaped::NotAnExit) => continue,
                Ok(sys::Reaped::NoneReady) => break,
                Ok(sys::Reaped::NoChildren) => {
                    none_left = true;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::error!("waitpid failed: {e}");
                    break;
                }
            }
        }
        self.changed.notify_waiters();
        none_left
    }

    fn deliver(&self, pid: i32, status: ExitStatus) {
        match self.registry().remove(&pid) {
            Some(entry) => {
                // The owner may have gone away (e.g. gantry is exiting); nothing to do then.
                let _ = entry.exit.send(status);
            }
            None => tracing::trace!(pid, %status, "reaped an orphan"),
        }
    }

    /// Sends `signal` to every job process (its process group with `group`). Pids are removed only
    /// when reaped, so none of them can belong to another process.
    pub fn forward(&self, signal: i32, group: bool) {
        for (&pid, entry) in self.registry().iter() {
            if entry.forward {
                send_or_warn(pid, signal, group);
            }
        }
    }

    /// Resolves after the next reaping pass.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }
}

/// Sends `signal` to `pid` (its process group with `group`), logging a failure. ESRCH is not one:
/// the process is already gone, which the reaper reports.
pub fn send_or_warn(pid: i32, signal: i32, group: bool) {
    if let Err(e) = sys::send_signal(pid, signal, group) {
        if e.raw_os_error() != Some(libc::ESRCH) {
            tracing::warn!(pid, "cannot send {}: {e}", crate::signals::Name(signal));
        }
    }
}

/// How much of each output stream of a helper command [`run_captured`] keeps: the first 64 KiB.
/// Enough for any error message a validator or probe prints; the rest is read and dropped, so a
/// command that prints hundreds of megabytes neither blocks on a full pipe nor grows gantry.
pub const CAPTURE_LIMIT: usize = 64 * 1024;

/// What a helper command run by [`run_captured`] printed, and how it ended.
pub struct Captured {
    pub status: ExitStatus,
    /// The first [`CAPTURE_LIMIT`] bytes of stdout; when more was printed, followed by a line
    /// `[gantry: N more bytes not kept]`.
    pub stdout: Vec<u8>,
    /// Likewise for stderr.
    pub stderr: Vec<u8>,
    /// How many bytes of stdout were read past the limit and dropped.
    pub stdout_dropped: u64,
    /// How many bytes of stderr were read past the limit and dropped.
    pub stderr_dropped: u64,
}

/// How long a finished helper command's output may take to reach end-of-file.
const OUTPUT_DRAIN: std::time::Duration = std::time::Duration::from_secs(1);

/// The size of the buffer each stream is read through.
const READ_CHUNK: usize = 16 * 1024;

/// Kills a helper command's process group if its future is dropped before the command exited
/// (a probe attempt that timed out, a watch command past its timeout, a wait that ended).
struct KillGroupOnDrop(Option<i32>);

impl Drop for KillGroupOnDrop {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            let _ = sys::send_signal(pgid, libc::SIGKILL, true);
        }
    }
}

/// The kept head of one output stream and the count of what was dropped after it.
#[derive(Default)]
struct Capture {
    kept: Vec<u8>,
    dropped: u64,
}

impl Capture {
    fn push(&mut self, bytes: &[u8]) {
        let room = CAPTURE_LIMIT.saturating_sub(self.kept.len());
        let (keep, drop) = bytes.split_at(room.min(bytes.len()));
        self.kept.extend_from_slice(keep);
        self.dropped += drop.len() as u64;
    }

    /// The kept bytes, with a note of what was dropped.
    fn finish(mut self) -> (Vec<u8>, u64) {
        if self.dropped > 0 {
            if self.kept.last() != Some(&b'\n') {
                self.kept.push(b'\n');
            }
            let note = format!("[gantry: {} more bytes not kept]\n", self.dropped);
            self.kept.extend_from_slice(note.as_bytes());
        }
        (self.kept, self.dropped)
    }
}

/// Runs a helper command (exec probe, watch command) to completion in its own process group through
/// `reaper`, capturing the first [`CAPTURE_LIMIT`] bytes of stdout and of stderr and draining the
/// rest. A background process the command leaves behind may hold the pipes open: once the command
/// has exited, its output gets a moment to drain and no more. Dropping the future before the command
/// exited (a timeout) kills its process group. The caller's runtime must be driving the reaper
/// (SIGCHLD → [`Reaper::reap`]).
pub async fn run_captured(reaper: &Reaper, spec: &CommandSpec) -> io::Result<Captured> {
    let setup = ChildSetup {
        new_process_group: true,
        foreground: false,
        ..Default::default()
    };
    let spawned = reaper.spawn(spec, setup, Stdio::piped(), Stdio::piped())?;
    let mut guard = KillGroupOnDrop(Some(spawned.pid));
    let (mut stdout, mut stderr) = (Capture::default(), Capture::default());
    let mut exit = spawned.exit;
    let status = {
        let reading = async {
            tokio::join!(
                read_into(spawned.stdout, &mut stdout),
                read_into(spawned.stderr, &mut stderr)
            )
        };
        tokio::pin!(reading);
        let mut read_all = false;
        let status = loop {
            tokio::select! {
                status = &mut exit => break status,
                _ = &mut reading, if !read_all => read_all = true,
            }
        };
        if !read_all {
            let _ = tokio::time::timeout(OUTPUT_DRAIN, &mut reading).await;
        }
        status
    };
    guard.0 = None;
    let status =
        status.map_err(|_| io::Error::other("the reaper dropped this command's exit status"))?;
    let (stdout, stdout_dropped) = stdout.finish();
    let (stderr, stderr_dropped) = stderr.finish();
    Ok(Captured {
        status,
        stdout,
        stderr,
        stdout_dropped,
        stderr_dropped,
    })
}

/// Reads the pipe until end-of-file into `capture`, which keeps the head and counts the rest; what
/// was read stays there even if the caller stops waiting.
async fn read_into(fd: Option<OwnedFd>, capture: &mut Capture) {
    use tokio::io::AsyncReadExt;
    let Some(fd) = fd else { return };
    let mut pipe = match tokio::net::unix::pipe::Receiver::from_owned_fd(fd) {
        Ok(pipe) => pipe,
        Err(e) => {
            tracing::warn!("cannot read a command's output: {e}");
            return;
        }
    };
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) => return,
            Ok(n) => capture.push(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::debug!("reading a command's output: {e}");
                return;
            }
        }
    }
}

/// Reads signals from the signalfd until gantry exits: SIGCHLD reaps, SIGTERM/SIGINT go to
/// `to_supervisor`, every other signal is forwarded to the jobs (to their process groups with
/// `forward_to_group`) right here, after which the loop yields the CPU to them.
pub async fn signal_loop(
    fd: OwnedFd,
    reaper: Arc<Reaper>,
    to_supervisor: mpsc::UnboundedSender<i32>,
    forward_to_group: bool,
    forwarded: u128,
) {
    let afd = match sys::async_signalfd(fd) {
        Ok(afd) => afd,
        Err(e) => {
            tracing::error!("cannot poll the signalfd: {e}");
            return;
        }
    };
    // Children may have exited before the loop started.
    reaper.reap();
    loop {
        let mut guard = match afd.readable().await {
            Ok(g) => g,
            Err(e) => {
                tracing::error!("signalfd: {e}");
                return;
            }
        };
        loop {
            match sys::read_signal(guard.get_inner()) {
                Ok(Some(libc::SIGCHLD)) => {
                    reaper.reap();
                }
                Ok(Some(sig)) if sig == libc::SIGTERM || sig == libc::SIGINT => {
                    let _ = to_supervisor.send(sig);
                }
                // Not among the signals to forward (muinit's -s): dropped.
                Ok(Some(sig)) if forwarded & 1u128.checked_shl(sig as u32).unwrap_or(0) == 0 => {
                    tracing::debug!("not forwarding {}", crate::signals::Name(sig));
                }
                Ok(Some(sig)) => {
                    reaper.forward(sig, forward_to_group);
                    // A job woken by the signal often lands on this CPU and would wait for gantry
                    // to finish its own bookkeeping and go back to sleep; let it handle the signal
                    // first. (Measured when introduced, three interleaved runs of the forwarding
                    // part of bench/init.sh: p50 went from 1.22-1.27x tini's to 0.89-0.99x.)
                    let _ = nix::sched::sched_yield();
                    tracing::debug!("forwarded {}", crate::signals::Name(sig));
                }
                Ok(None) => {
                    guard.clear_ready();
                    break;
                }
                Err(e) => {
                    tracing::error!("reading the signalfd: {e}");
                    guard.clear_ready();
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_head_and_counts_the_rest() {
        let mut c = Capture::default();
        c.push(&vec![b'a'; CAPTURE_LIMIT - 1]);
        c.push(b"bcd");
        c.push(&vec![b'x'; 1000]);
        let (kept, dropped) = c.finish();
        assert_eq!(dropped, 1002);
        let note = b"\n[gantry: 1002 more bytes not kept]\n";
        assert_eq!(kept.len(), CAPTURE_LIMIT + note.len());
        assert!(kept.starts_with(&vec![b'a'; CAPTURE_LIMIT - 1]));
        assert!(kept.ends_with(note));
        assert_eq!(kept[CAPTURE_LIMIT - 1], b'b');
    }

    #[test]
    fn short_output_is_kept_whole_without_a_note() {
        let mut c = Capture::default();
        c.push(b"ok\n");
        assert_eq!(c.finish(), (b"ok\n".to_vec(), 0));
    }
}
