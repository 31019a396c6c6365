//! The seam between a job's actor and its operating-system process.
//!
//! The actor never calls the reaper or `kill` itself: it asks a [`Launcher`] to start a command and
//! to signal a pid, and learns of the exit on the [`Child`]'s channel. [`ProcessLauncher`] is the real
//! one (spawn through the reaper, copy output and, with the API on, keep it in the job's log ring,
//! `kill(2)`); the actor's unit tests put a scripted one in
//! its place and drive it with tokio's paused clock, so every timing rule of the actor is tested
//! without processes or waiting.
//!
//! A job with socket-activated listeners also has [`Sockets`]: the listening sockets gantry holds
//! for it, which the launcher passes to every process it starts (`sys::PassFds`: fd 3 onward,
//! `LISTEN_FDS`, `LISTEN_PID`, `LISTEN_FDNAMES`).

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, OnceLock};

use tokio::sync::oneshot;

use crate::config::CommandSpec;
use crate::exit::ExitStatus;
use crate::output::{self, Copiers};
use crate::reaper::Reaper;
use crate::sys::ChildSetup;

/// A started process: its pid and where its exit status arrives.
#[derive(Debug)]
pub struct Child {
    pub pid: i32,
    pub exit: oneshot::Receiver<ExitStatus>,
}

/// The listening sockets a job's processes are given (socket activation), with their names, in the
/// order of the job's `listen` blocks. Filled once, when the run phase opens the listeners
/// (`lazy::open`), before the job's first start; for most jobs it stays empty.
#[derive(Debug, Clone, Default)]
pub struct Sockets(Arc<OnceLock<Vec<(OwnedFd, String)>>>);

impl Sockets {
    /// Hands the sockets over; a second call is refused (they are the job's for good).
    pub fn fill(&self, sockets: Vec<(OwnedFd, String)>) -> Result<(), String> {
        self.0
            .set(sockets)
            .map_err(|_| "the job's sockets were opened twice".to_string())
    }

    /// The sockets, if any were handed over.
    pub fn get(&self) -> &[(OwnedFd, String)] {
        self.0.get().map_or(&[], Vec::as_slice)
    }
}

/// Starts and signals a job's processes.
pub trait Launcher: Send + Sync + fmt::Debug {
    /// Starts job `job`'s `command` with `sockets` passed to it and, for s6's readiness protocol,
    /// `notify_fd = Some((descriptor, number))` placed at that number; the process gets a process
    /// group of its own.
    fn launch(
        &self,
        job: &str,
        command: &CommandSpec,
        sockets: &Sockets,
        notify_fd: Option<(i32, i32)>,
    ) -> io::Result<Child>;
    /// Sends `signal` to `pid` (its process group with `group`); a process that is gone is not an error.
    fn signal(&self, pid: i32, signal: i32, group: bool);
}

/// The real launcher: the reaper spawns and reaps, `output` copies, `kill(2)` signals.
#[derive(Debug, Clone)]
pub struct ProcessLauncher {
    pub reaper: Arc<Reaper>,
    pub copiers: Copiers,
    /// Give the process the terminal's foreground (flags-only mode with one command).
    pub foreground: bool,
}

impl Launcher for ProcessLauncher {
    fn launch(
        &self,
        job: &str,
        command: &CommandSpec,
        sockets: &Sockets,
        notify_fd: Option<(i32, i32)>,
    ) -> io::Result<Child> {
        // With the API on, the job's output is also kept in its log ring.
        let prepared = output::prepare(&command.output, self.copiers.ring(job))?;
        let setup = ChildSetup {
            new_process_group: true,
            foreground: self.foreground,
            notify_fd,
        };
        let fds: Vec<(i32, &str)> = sockets
            .get()
            .iter()
            .map(|(fd, name)| (fd.as_raw_fd(), name.as_str()))
            .collect();
        let spawned =
            self.reaper
                .spawn_job(command, setup, &fds, prepared.stdout, prepared.stderr)?;
        prepared
            .copy
            .start(spawned.stdout, spawned.stderr, &self.copiers);
        Ok(Child {
            pid: spawned.pid,
            exit: spawned.exit,
        })
    }

    fn signal(&self, pid: i32, signal: i32, group: bool) {
        crate::reaper::send_or_warn(pid, signal, group);
    }
}
