//! What a job is doing right now, as everyone outside its actor sees it.
//!
//! Each job's actor publishes a [`JobStatus`] on a `tokio::sync::watch` channel every time its
//! [`JobState`] changes; the supervisor, the API and tests read it from there and never ask the actor.
//! This module owns only the vocabulary: the states, which of them count as live, and how they read
//! in logs. The transitions themselves are made by the actor (`job`), and the decision to restart is
//! the pure policy (`policy`).

use std::fmt;

use tokio::time::Instant;

use crate::exit::ExitStatus;

/// The state of one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Never started (a job of a later phase, or one waiting for its first start).
    NotStarted,
    /// A lazy job waiting for its first connection.
    Idle,
    /// Its process is being started.
    Starting,
    /// Its process runs.
    Running { pid: i32, since: Instant },
    /// It ended and will be started again at `until`; `attempt` is the failures in a row so far.
    BackingOff { until: Instant, attempt: u32 },
    /// It was asked to stop and its stop stages are under way.
    Stopping { pid: i32, since: Instant },
    /// It finished successfully and will not run again by itself.
    Completed(ExitStatus),
    /// It failed for good (restart policy exhausted, a boot job failed or timed out).
    Failed(ExitStatus),
    /// It was stopped on request (by gantry's shutdown, the API or a test); `None` when it was not
    /// running at the time. It can be started again.
    Stopped(Option<ExitStatus>),
}

impl JobState {
    /// Whether the job has, or is about to have, a process: it is neither settled nor idle.
    pub fn is_live(&self) -> bool {
        matches!(
            self,
            JobState::Starting
                | JobState::Running { .. }
                | JobState::BackingOff { .. }
                | JobState::Stopping { .. }
        )
    }

    /// The pid of its process, while it has one.
    pub fn pid(&self) -> Option<i32> {
        match self {
            JobState::Running { pid, .. } | JobState::Stopping { pid, .. } => Some(*pid),
            _ => None,
        }
    }

    /// A short name for the state (`running`, `backing-off`, ...), for logs, tables and JSON.
    pub fn name(&self) -> &'static str {
        match self {
            JobState::NotStarted => "not-started",
            JobState::Idle => "idle",
            JobState::Starting => "starting",
            JobState::Running { .. } => "running",
            JobState::BackingOff { .. } => "backing-off",
            JobState::Stopping { .. } => "stopping",
            JobState::Completed(_) => "completed",
            JobState::Failed(_) => "failed",
            JobState::Stopped(_) => "stopped",
        }
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobState::Running { pid, .. } => write!(f, "running (pid {pid})"),
            JobState::Stopping { pid, .. } => write!(f, "stopping (pid {pid})"),
            JobState::BackingOff { until, attempt } => write!(
                f,
                "backing off ({:?} left, failure {attempt})",
                until.saturating_duration_since(Instant::now())
            ),
            JobState::Completed(s) | JobState::Failed(s) => write!(f, "{} ({s})", self.name()),
            JobState::Stopped(Some(s)) => write!(f, "stopped ({s})"),
            other => f.write_str(other.name()),
        }
    }
}

/// A job's state with the counters that outlive a single run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobStatus {
    pub state: JobState,
    /// Processes started so far.
    pub starts: u32,
    /// Starts after the first, for whatever reason (policy, request, watch).
    pub restarts: u32,
    /// How the last process ended.
    pub last_exit: Option<ExitStatus>,
    /// A lazy job's cool-down: while it runs with no connection, when it will be stopped.
    pub cool_down_until: Option<Instant>,
    /// Its process runs and is ready: it passed its `ready` check, sent `READY=1` or its fd line,
    /// or has no readiness check at all.
    pub ready: bool,
}

impl fmt::Display for JobStatus {
    /// The state, and a lazy job's cool-down with the time left (`running (pid 7), cooling down
    /// (299s left)`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.state)?;
        if let Some(until) = self.cool_down_until {
            let left = until.saturating_duration_since(Instant::now());
            // Whole seconds, or milliseconds under one second.
            let left = if left.as_secs() > 0 {
                std::time::Duration::from_secs(left.as_secs())
            } else {
                std::time::Duration::from_millis(left.as_millis() as u64)
            };
            write!(f, ", cooling down ({left:?} left)")?;
        }
        Ok(())
    }
}

impl JobStatus {
    pub fn new() -> Self {
        JobStatus {
            state: JobState::NotStarted,
            starts: 0,
            restarts: 0,
            last_exit: None,
            cool_down_until: None,
            ready: false,
        }
    }
}

impl Default for JobStatus {
    fn default() -> Self {
        JobStatus::new()
    }
}
