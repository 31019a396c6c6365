//! One job as an actor: a task that owns the job's process from start to its final outcome.
//!
//! Nothing else touches a job's process. Others send [`Control`] messages (stop, kill, signal) and
//! receive one [`JobEvent`] when the job is over: completed, failed for good, or stopped on request.
//! Between runs the task applies the restart [`Policy`]; while stopping it walks the stop stages
//! (signal, grace, next signal, ..., SIGKILL). Boot jobs are the same actor with a run-once policy
//! and a timeout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::policy::{Decision, History, Policy};
use crate::config::{CommandSpec, StopSpec};
use crate::exit::{self, ExitStatus};
use crate::output::{self, Copiers};
use crate::reaper::Reaper;
use crate::sys::ChildSetup;

/// What the rest of gantry may ask of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Stop gracefully (stop stages, then SIGKILL) and end.
    Stop,
    /// SIGKILL now (a second SIGTERM during shutdown).
    Kill,
    /// Forward a signal (to the process group or the main process, as `Ctx` says).
    Signal(i32),
    /// Send a signal to the main process only.
    SignalMain(i32),
    /// Stop gracefully, starting with this signal, and start again at once; not a failure.
    Restart(i32),
}

/// How a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Finished successfully.
    Completed(ExitStatus),
    /// Failed for good (restart policy exhausted, or a boot job failed or timed out).
    Failed { status: ExitStatus, timed_out: bool },
    /// Stopped because it was asked to; `None` if it was not running at the time.
    Stopped(Option<ExitStatus>),
}

/// Sent once per job, when it is over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobEvent {
    pub name: String,
    pub outcome: Outcome,
}

/// Shared parts every job needs.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub reaper: Arc<Reaper>,
    pub copiers: Copiers,
    /// Forwarded signals go to the job's process group (default) or only to its main process.
    pub forward_to_group: bool,
    /// Give the job the terminal's foreground (flags-only mode with one command).
    pub foreground: bool,
}

/// How the actor runs one job.
#[derive(Debug, Clone)]
pub struct Actor {
    pub name: String,
    /// "job" or "boot job", for logs.
    pub kind: &'static str,
    pub command: CommandSpec,
    pub policy: Policy,
    pub stop: StopSpec,
    /// Each run may last at most this long (boot jobs).
    pub timeout: Option<Duration>,
    /// Files whose changes reload or restart the job.
    pub watches: Vec<crate::watch::WatchSpec>,
}

/// A handle to a running actor.
#[derive(Debug, Clone)]
pub struct JobHandle {
    pub name: String,
    tx: mpsc::UnboundedSender<Control>,
}

impl JobHandle {
    /// Sends a control message; a job that already ended ignores it.
    pub fn send(&self, control: Control) {
        let _ = self.tx.send(control);
    }
}

/// Starts the actor task.
pub fn spawn(actor: Actor, ctx: Ctx, events: mpsc::UnboundedSender<JobEvent>) -> JobHandle {
    let (tx, rx) = mpsc::unbounded_channel();
    let handle = JobHandle {
        name: actor.name.clone(),
        tx,
    };
    let mut watch_tasks = Vec::new();
    for spec in &actor.watches {
        match crate::watch::job::spawn_watch(spec.clone(), handle.clone(), ctx.reaper.clone()) {
            Ok(task) => watch_tasks.push(task),
            Err(e) => tracing::error!("job {:?}: cannot watch {:?}: {e}", actor.name, spec.path),
        }
    }
    tokio::spawn(async move {
        let name = actor.name.clone();
        let outcome = actor.run(ctx, rx).await;
        for task in watch_tasks {
            task.abort();
        }
        let _ = events.send(JobEvent { name, outcome });
    });
    handle
}

/// A started process of a job.
struct Running {
    pid: i32,
    exit: oneshot::Receiver<ExitStatus>,
}

impl Running {
    async fn wait(&mut self) -> ExitStatus {
        // The reaper only drops a sender after delivering; losing it would be a bug in gantry.
        (&mut self.exit)
            .await
            .unwrap_or(ExitStatus::Code(exit::INTERNAL))
    }

    fn signal(&self, signal: i32, group: bool) {
        crate::reaper::send_or_warn(self.pid, signal, group);
    }

    /// Walks the stop stages, answering `Kill` and forwarding signals meanwhile.
    async fn stop(
        &mut self,
        stop: &StopSpec,
        rx: &mut mpsc::UnboundedReceiver<Control>,
        forward_to_group: bool,
    ) -> ExitStatus {
        let mut killed = false;
        'stages: for &(signal, grace) in &stop.stages {
            self.signal(signal, true);
            let deadline = tokio::time::Instant::now() + grace;
            loop {
                tokio::select! {
                    status = self.wait() => return status,
                    _ = tokio::time::sleep_until(deadline) => continue 'stages,
                    ctl = rx.recv() => match ctl {
                        Some(Control::Kill) => { killed = true; break 'stages; }
                        Some(Control::Signal(n)) => self.signal(n, forward_to_group),
                        Some(Control::SignalMain(n)) => self.signal(n, false),
                        Some(Control::Stop) | Some(Control::Restart(_)) | None => {}
                    },
                }
            }
        }
        if !killed {
            tracing::warn!(
                pid = self.pid,
                "did not stop within {:?}; sending SIGKILL",
                stop.total()
            );
        }
        self.signal(libc::SIGKILL, true);
        self.wait().await
    }
}

impl Actor {
    fn start(&self, ctx: &Ctx) -> std::io::Result<Running> {
        let prepared = output::prepare(&self.command.output)?;
        let setup = ChildSetup {
            new_process_group: true,
            foreground: ctx.foreground,
        };
        let spawned =
            ctx.reaper
                .spawn_job(&self.command, setup, prepared.stdout, prepared.stderr)?;
        prepared
            .copy
            .start(spawned.stdout, spawned.stderr, &ctx.copiers);
        Ok(Running {
            pid: spawned.pid,
            exit: spawned.exit,
        })
    }

    async fn run(self, ctx: Ctx, mut rx: mpsc::UnboundedReceiver<Control>) -> Outcome {
        let mut history = History::new(&self.policy);
        let (name, kind) = (self.name.as_str(), self.kind);
        loop {
            let started = Instant::now();
            let (status, timed_out) = match self.start(&ctx) {
                Ok(mut running) => {
                    tracing::info!("{kind} {name:?} started (pid {})", running.pid);
                    match self.supervise(&mut running, &ctx, &mut rx).await {
                        Ran::Exited(status) => (status, false),
                        Ran::TimedOut(status) => (status, true),
                        Ran::Stopped(status) => {
                            tracing::info!("{kind} {name:?} stopped ({status})");
                            return Outcome::Stopped(Some(status));
                        }
                        Ran::Restarted(status) => {
                            tracing::info!("{kind} {name:?} restarting on request ({status})");
                            continue;
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(
                        "{kind} {name:?}: cannot start {:?}: {e}",
                        self.command.program
                    );
                    (ExitStatus::from_spawn_error(&e), false)
                }
            };
            if timed_out {
                tracing::error!(
                    "{kind} {name:?} timed out after {:?} ({status})",
                    self.timeout.unwrap_or_default()
                );
                return Outcome::Failed {
                    status,
                    timed_out: true,
                };
            }
            match history.on_exit(&self.policy, status, started.elapsed()) {
                Decision::Complete => {
                    tracing::info!("{kind} {name:?} completed");
                    return Outcome::Completed(status);
                }
                Decision::GiveUp if self.policy == Policy::run_once() => {
                    // Run-once commands (flags mode, boot jobs) report through their caller.
                    tracing::info!("{kind} {name:?} exited ({status})");
                    return Outcome::Failed {
                        status,
                        timed_out: false,
                    };
                }
                Decision::GiveUp => {
                    tracing::error!(
                        "{kind} {name:?} failed ({status}) after {} attempt(s)",
                        history.failures
                    );
                    return Outcome::Failed {
                        status,
                        timed_out: false,
                    };
                }
                Decision::Restart { after } => {
                    if status.success() {
                        tracing::info!(
                            "{kind} {name:?} exited ({status}); restarting in {after:?}"
                        );
                    } else {
                        tracing::warn!(
                            "{kind} {name:?} exited ({status}); restarting in {after:?} (failure {} of {})",
                            history.failures,
                            match self.policy.max_attempts {
                                crate::config::Attempts::Forever => "unlimited".to_string(),
                                crate::config::Attempts::Limited(n) => n.to_string(),
                            }
                        );
                    }
                    let deadline = tokio::time::Instant::now() + after;
                    loop {
                        tokio::select! {
                            _ = tokio::time::sleep_until(deadline) => break,
                            ctl = rx.recv() => match ctl {
                                Some(Control::Stop) | Some(Control::Kill) | None => {
                                    return Outcome::Stopped(None);
                                }
                                Some(Control::Restart(_)) => break, // start now
                                Some(Control::Signal(_)) | Some(Control::SignalMain(_)) => {} // nothing to signal
                            },
                        }
                    }
                }
            }
        }
    }

    /// Waits for the run to end, for a stop request, or for the timeout.
    async fn supervise(
        &self,
        running: &mut Running,
        ctx: &Ctx,
        rx: &mut mpsc::UnboundedReceiver<Control>,
    ) -> Ran {
        let timeout = async {
            match self.timeout {
                Some(t) => tokio::time::sleep(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(timeout);
        loop {
            tokio::select! {
                status = running.wait() => return Ran::Exited(status),
                _ = &mut timeout => {
                    let status = running.stop(&self.stop, rx, ctx.forward_to_group).await;
                    return Ran::TimedOut(status);
                }
                ctl = rx.recv() => match ctl {
                    Some(Control::Stop) | None => {
                        let status = running.stop(&self.stop, rx, ctx.forward_to_group).await;
                        return Ran::Stopped(status);
                    }
                    Some(Control::Kill) => {
                        running.signal(libc::SIGKILL, true);
                        return Ran::Stopped(running.wait().await);
                    }
                    Some(Control::Signal(n)) => running.signal(n, ctx.forward_to_group),
                    Some(Control::SignalMain(n)) => running.signal(n, false),
                    Some(Control::Restart(signal)) => {
                        let mut stop = self.stop.clone();
                        if let Some(first) = stop.stages.first_mut() {
                            first.0 = signal;
                        }
                        let status = running.stop(&stop, rx, ctx.forward_to_group).await;
                        return Ran::Restarted(status);
                    }
                },
            }
        }
    }
}

enum Ran {
    Exited(ExitStatus),
    /// Stopped for a restart on request: start again at once, without counting a failure.
    Restarted(ExitStatus),
    TimedOut(ExitStatus),
    Stopped(ExitStatus),
}
