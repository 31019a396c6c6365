//! A job's own readiness and liveness while one of its processes runs: the sources that tell the
//! job's actor "ready", "reloading", "watchdog" or "not alive".
//!
//! Each source is a task started by the actor for one run of the job and aborted when the run ends
//! ([`Watchers`]). Every source reports by sending [`Request::Readiness`] to the job's own actor,
//! tagged with the pid of the run it watches, so a late report about an earlier process is ignored
//! and the actor's paused-clock tests can play the part of any source. The sources:
//!
//! - [`probe`]: a `ready { ... }` probe polled with the probe backoff from the moment the process
//!   starts, and the `alive { ... }` check (period, threshold, one log line per failure streak);
//! - [`notify`]: systemd's `sd_notify` datagrams on a socket of the job's own (`NOTIFY_SOCKET`), the
//!   sender's pid checked with `SO_PASSCRED` against the job's main process and its descendants;
//! - [`fd`]: s6's notification-fd, a line on a pipe whose write end the process gets at fd N.
//!
//! What the reports do (mark the job ready, restart it on a missed watchdog, ...) is the actor's.

pub mod fd;
pub mod notify;
pub mod probe;

use std::sync::Arc;

use gantry_probes::{BoxProbe, Probe, SpecError, Target};

use crate::config::readiness::{AliveSpec, Readiness};
use crate::reaper::Reaper;

/// What a readiness or liveness source reports about the running process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The job is ready (`READY=1`, its fd line, its `ready` probe passed).
    Ready,
    /// `RELOADING=1`: not ready until the next `READY=1`.
    Reloading,
    /// `STOPPING=1`: the job is on its way out; not ready.
    Stopping,
    /// `WATCHDOG=1`: the job is alive; the watchdog starts over.
    Watchdog,
    /// `MAINPID=`: the job's main process is now this one (its notify messages are accepted).
    MainPid(i32),
    /// The `alive` check failed `threshold` times in a row (reported once per streak).
    NotAlive,
}

/// The probes of one job's checks, built once (exec probes run through the reaper).
#[derive(Clone, Default)]
pub struct Checks {
    pub ready: Option<Arc<dyn Probe>>,
    pub alive: Option<(Arc<dyn Probe>, AliveSpec)>,
}

impl std::fmt::Debug for Checks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checks")
            .field("ready", &self.ready.as_ref().map(|p| p.describe()))
            .field("alive", &self.alive.as_ref().map(|(p, _)| p.describe()))
            .finish()
    }
}

impl Checks {
    /// Builds the probes of `readiness`; exec probes go through `reaper`.
    pub fn build(readiness: &Readiness, reaper: &Arc<Reaper>) -> Result<Checks, SpecError> {
        let build = |t: &Target| -> Result<Arc<dyn Probe>, SpecError> {
            let probe: BoxProbe = crate::probe_phase::build_target(t, reaper)?;
            Ok(Arc::from(probe))
        };
        Ok(Checks {
            ready: readiness.ready.as_ref().map(build).transpose()?,
            alive: match &readiness.alive {
                Some(a) => Some((build(&a.target)?, a.clone())),
                None => None,
            },
        })
    }
}

/// The tasks watching one run of a job; dropping it stops them.
#[derive(Debug, Default)]
pub struct Watchers(Vec<tokio::task::AbortHandle>);

impl Watchers {
    pub fn add(&mut self, task: tokio::task::JoinHandle<()>) {
        self.0.push(task.abort_handle());
    }
}

impl Drop for Watchers {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// Where a source sends its reports: the job's own actor.
pub type Report = Arc<dyn Fn(Event) + Send + Sync>;
