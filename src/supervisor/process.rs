//! The seam between a job's actor and its operating-system process.
//!
//! The actor never calls the reaper or `kill` itself: it asks a [`Launcher`] to start a command and
//! to signal a pid, and learns of the exit on the [`Child`]'s channel. [`ProcessLauncher`] is the real
//! one (spawn through the reaper, copy output and, with the API on, keep it in the job's log ring,
//! `kill(2)`); the actor's unit tests put a scripted one in
//! its place and drive it with tokio's paused clock, so every timing rule of the actor is tested
//! without processes or waiting.

use std::fmt;
use std::io;
use std::sync::Arc;

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

/// Starts and signals a job's processes.
pub trait Launcher: Send + Sync + fmt::Debug {
    /// Starts job `job`'s `command`; the process gets a process group of its own.
    fn launch(&self, job: &str, command: &CommandSpec) -> io::Result<Child>;
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
    fn launch(&self, job: &str, command: &CommandSpec) -> io::Result<Child> {
        // With the API on, the job's output is also kept in its log ring.
        let prepared = output::prepare(&command.output, self.copiers.ring(job))?;
        let setup = ChildSetup {
            new_process_group: true,
            foreground: self.foreground,
        };
        let spawned = self
            .reaper
            .spawn_job(command, setup, prepared.stdout, prepared.stderr)?;
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
