//! Running the phases: boot jobs to completion, then supervised jobs, then shutdown and exit code.
//!
//! This module owns the event loop of a running gantry. It starts one actor per job ([`job`]),
//! listens to their outcomes and to SIGTERM/SIGINT (the signal loop forwards the other signals), decides when to
//! shut down (SIGTERM/SIGINT, a job that may not fail gave up, or — in the flags-only mode — the first
//! command ended), walks the shutdown (every job's stop stages; a second SIGTERM/SIGINT kills at once),
//! then makes sure no descendant is left (adopted orphans included) and picks the exit code.
//! Rendering and probing are phases of `up` that run before this loop; the `up` module sequences them.

pub mod job;
pub mod policy;

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::config::{Attempts, BootJob, JobSpec};
use crate::exit::{self, ExitStatus};
use crate::output::Copiers;
use crate::reaper::{self, Reaper};
use crate::sys;
pub use job::{Actor, Control, Ctx, JobEvent, Outcome};
use policy::Policy;

/// Why the run phase ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// Every job ended on its own.
    AllEnded,
    /// gantry received SIGTERM or SIGINT.
    Signal(i32),
    /// A job that may not fail gave up.
    JobFailed(String),
    /// In the flags-only mode, the first command to end brings the others down.
    JobEnded(String),
}

/// What happened in a phase; enough to choose gantry's exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub cause: Cause,
    /// The first job that failed on its own and may not fail, with its status.
    pub failure: Option<(String, ExitStatus)>,
    /// The first non-zero status of a job that gantry stopped.
    pub stopped_nonzero: Option<ExitStatus>,
    /// When the shutdown began (the deadline for leftover descendants counts from here).
    pub shutdown_at: Option<Instant>,
}

impl Report {
    /// gantry's exit code after this phase.
    ///
    /// The job that failed on its own decides; otherwise, after a SIGTERM/SIGINT, the first job that
    /// gantry stopped with a non-zero status (so a lone child that dies of SIGTERM gives 143, as with
    /// tini); otherwise 0. Exits caused by gantry's own stop after a job ended are not failures.
    pub fn exit_code(&self) -> i32 {
        if let Some((_, status)) = &self.failure {
            return status.code().max(1);
        }
        match (&self.cause, self.stopped_nonzero) {
            (Cause::Signal(_), Some(status)) => status.code(),
            _ => 0,
        }
    }
}

/// Options of the run phase.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Stay up after every job ended (until SIGTERM/SIGINT).
    pub keep_running: bool,
    /// The first job to end brings the others down (flags-only mode, as muinit does).
    pub stop_all_when_one_ends: bool,
}

/// Builds the actor of a supervised job.
pub fn job_actor(spec: &JobSpec) -> (Actor, bool) {
    (
        Actor {
            name: spec.name.clone(),
            kind: "job",
            command: spec.command.clone(),
            policy: Policy::new(spec.max_attempts, spec.one_time),
            stop: spec.stop.clone(),
            timeout: None,
            watches: spec.watches.clone(),
        },
        spec.can_fail,
    )
}

/// Builds the actor of a boot job: run once, within its timeout.
pub fn boot_actor(spec: &BootJob) -> (Actor, bool) {
    (
        Actor {
            name: spec.name.clone(),
            kind: "boot job",
            command: spec.command.clone(),
            policy: Policy::new(Attempts::Limited(1), true),
            stop: spec.stop.clone(),
            timeout: spec.timeout,
            watches: Vec::new(),
        },
        spec.can_fail,
    )
}

/// Runs actors until they have all ended (or, with `keep_running`, until a stop signal), handling
/// signals and the shutdown.
pub async fn run_phase(
    actors: Vec<(Actor, bool)>,
    ctx: &Ctx,
    signals: &mut mpsc::UnboundedReceiver<i32>,
    opts: RunOptions,
) -> Report {
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel();
    let mut live: HashMap<String, (job::JobHandle, bool)> = HashMap::new();
    for (actor, can_fail) in actors {
        let name = actor.name.clone();
        live.insert(
            name,
            (job::spawn(actor, ctx.clone(), ev_tx.clone()), can_fail),
        );
    }
    let mut report = Report {
        cause: Cause::AllEnded,
        failure: None,
        stopped_nonzero: None,
        shutdown_at: None,
    };

    let begin_shutdown =
        |report: &mut Report, cause: Cause, live: &HashMap<String, (job::JobHandle, bool)>| {
            if report.shutdown_at.is_some() {
                return;
            }
            if !live.is_empty() {
                tracing::info!("stopping {} job(s)", live.len());
            }
            report.cause = cause;
            report.shutdown_at = Some(Instant::now());
            for (handle, _) in live.values() {
                handle.send(Control::Stop);
            }
        };

    while !live.is_empty() || (opts.keep_running && report.shutdown_at.is_none()) {
        tokio::select! {
            // Only SIGTERM and SIGINT come here; the signal loop forwards the others itself.
            Some(sig) = signals.recv() => {
                if report.shutdown_at.is_some() {
                    tracing::warn!("received {} again: killing every job now", crate::signals::Name(sig));
                    for (handle, _) in live.values() {
                        handle.send(Control::Kill);
                    }
                } else {
                    tracing::info!("received {}: shutting down", crate::signals::Name(sig));
                    begin_shutdown(&mut report, Cause::Signal(sig), &live);
                }
            }
            Some(event) = ev_rx.recv() => {
                let Some((_, can_fail)) = live.remove(&event.name) else { continue };
                match event.outcome {
                    Outcome::Completed(_) => {
                        if opts.stop_all_when_one_ends {
                            begin_shutdown(&mut report, Cause::JobEnded(event.name), &live);
                        }
                    }
                    Outcome::Failed { status, .. } => {
                        if can_fail {
                            tracing::warn!("job {:?} failed ({status}) but may fail; the rest runs on", event.name);
                            if opts.stop_all_when_one_ends {
                                begin_shutdown(&mut report, Cause::JobEnded(event.name), &live);
                            }
                        } else if report.shutdown_at.is_none() {
                            report.failure = Some((event.name.clone(), status));
                            begin_shutdown(&mut report, Cause::JobFailed(event.name), &live);
                        }
                    }
                    Outcome::Stopped(status) => {
                        if let Some(status) = status.filter(|s| !s.success()) {
                            report.stopped_nonzero.get_or_insert(status);
                        }
                    }
                }
            }
            else => break,
        }
    }
    report
}

/// After the jobs: signals every remaining descendant (adopted orphans included) with SIGTERM, waits
/// for them until `deadline`, then SIGKILLs what is left and waits for that too.
pub async fn reap_descendants(reaper: &Reaper, deadline: Instant) {
    if reaper.reap() {
        return;
    }
    tracing::debug!("waiting for remaining descendants");
    for (signal, until) in [
        (libc::SIGTERM, deadline),
        (
            libc::SIGKILL,
            Instant::now().max(deadline) + Duration::from_secs(5),
        ),
    ] {
        let mut signalled = Vec::new();
        loop {
            signal_descendants(signal, &mut signalled);
            let changed = reaper.changed();
            if reaper.reap() {
                return;
            }
            tokio::select! {
                _ = changed => {}
                // Grandchildren become ours only when their parent dies; look again now and then.
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = tokio::time::sleep_until(until) => break,
            }
            if reaper.reap() {
                return;
            }
        }
    }
    tracing::warn!("some descendants did not exit even after SIGKILL");
}

/// Sends `signal` to every descendant not yet signalled.
fn signal_descendants(signal: i32, signalled: &mut Vec<i32>) {
    if sys::is_pid1() {
        if signalled.is_empty() {
            let _ = sys::signal_all_as_pid1(signal);
            signalled.push(-1);
        }
        return;
    }
    let me = std::process::id() as i32;
    for pid in children_of(me) {
        if !signalled.contains(&pid) {
            let _ = sys::send_signal(pid, signal, false);
            signalled.push(pid);
        }
    }
}

/// The pids whose parent is `parent`, from /proc.
fn children_of(parent: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    // The command name may contain spaces and parentheses; fields resume after the last ')'.
                    let rest = &stat[stat.rfind(')')? + 1..];
                    rest.split_whitespace().nth(1)?.parse::<i32>().ok()
                })
                == Some(parent)
        })
        .collect()
}

/// Sets up the process model (blocked signals read from a signalfd, subreaper when not PID 1, the
/// reaper), runs `body` on a current-thread runtime, and returns its exit code.
pub fn with_runtime<F, Fut>(forward_to_group: bool, foreground: bool, body: F) -> i32
where
    F: FnOnce(Ctx, mpsc::UnboundedReceiver<i32>) -> Fut,
    Fut: Future<Output = i32>,
{
    // Before any thread exists, so that every thread inherits the mask.
    if let Err(e) = sys::block_signals() {
        tracing::error!("cannot block signals: {e}");
        return exit::INTERNAL;
    }
    if !sys::is_pid1() {
        if let Err(e) = sys::set_child_subreaper() {
            tracing::warn!("cannot become a child subreaper ({e}); orphans will not be reaped");
        }
    }
    let fd = match sys::open_signalfd() {
        Ok(fd) => fd,
        Err(e) => {
            tracing::error!("cannot open a signalfd: {e}");
            return exit::INTERNAL;
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the runtime: {e}");
            return exit::INTERNAL;
        }
    };
    rt.block_on(async move {
        let reaper = Reaper::new();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(reaper::signal_loop(
            fd,
            reaper.clone(),
            tx,
            forward_to_group,
        ));
        let ctx = Ctx {
            reaper,
            copiers: Copiers::default(),
            forward_to_group,
            foreground,
        };
        let copiers = ctx.copiers.clone();
        let code = body(ctx, rx).await;
        copiers.drain(Duration::from_secs(2)).await;
        code
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(cause: Cause) -> Report {
        Report {
            cause,
            failure: None,
            stopped_nonzero: None,
            shutdown_at: None,
        }
    }

    #[test]
    fn the_failed_job_decides() {
        let mut r = report(Cause::JobFailed("a".into()));
        r.failure = Some(("a".into(), ExitStatus::Code(3)));
        r.stopped_nonzero = Some(ExitStatus::Signaled(15));
        assert_eq!(r.exit_code(), 3);
        r.failure = Some(("a".into(), ExitStatus::Signaled(9)));
        assert_eq!(r.exit_code(), 137);
    }

    #[test]
    fn after_a_signal_the_stopped_jobs_status_passes_through() {
        let mut r = report(Cause::Signal(libc::SIGTERM));
        assert_eq!(r.exit_code(), 0);
        r.stopped_nonzero = Some(ExitStatus::Signaled(libc::SIGTERM));
        assert_eq!(r.exit_code(), 143);
    }

    #[test]
    fn jobs_gantry_stopped_after_one_ended_are_not_failures() {
        let mut r = report(Cause::JobEnded("a".into()));
        r.stopped_nonzero = Some(ExitStatus::Signaled(libc::SIGTERM));
        assert_eq!(r.exit_code(), 0);
    }
}
