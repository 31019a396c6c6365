//! The supervisor: one per runtime, owner of every job's actor, boot jobs and jobs alike.
//!
//! **Theory of operation.** [`Supervisor::new`] spawns one actor per [`JobDef`] ([`job`]), each in
//! the state "not started", and hands out a cloneable [`Handle`]. Through the handle anyone (the
//! phases of `up`, the flags-only mode, the signal loop, the API) may list the jobs, read one job's
//! status, subscribe to its changes, start, stop, restart or signal it, and begin the shutdown.
//! Requests that act on a job are answered on a oneshot with the state they left it in; a request
//! for an unknown job, or one made once the shutdown has begun, is a [`ControlError`], never a
//! panic or a silent drop.
//!
//! A phase ([`Supervisor::run_phase`]) starts the jobs of one [`Kind`] and follows every job's
//! state changes until the phase is over. It also owns shutdown: SIGTERM/SIGINT (from the signal
//! loop) or [`Handle::shutdown`], a job that may not fail giving up, or — in the flags-only mode —
//! the first command ending; the shutdown stops every job (its stop stages; a second SIGTERM/SIGINT
//! kills at once). Afterwards [`reap_descendants`] makes sure no descendant is left (adopted orphans
//! included) and [`Report::exit_code`] picks the exit code.
//!
//! **When a phase ends, and so when `up` exits.** A phase ends once none of its jobs is starting,
//! running, backing off or stopping, and
//! - every one of them has ended by itself (completed, or failed): `up` exits with the deciding code
//!   (the first job that failed and may not fail, else 0), as it always has; or
//! - the shutdown has begun: `up` exits once everything has stopped.
//!
//! A job *stopped on request* (not by the shutdown) does not end the phase: gantry keeps running so
//! that the job can be started again, until it is started, or until SIGTERM/SIGINT. A lazy job
//! ([`JobDef::on_demand`]) is not started by the phase: it is idle until its listeners (`crate::lazy`)
//! start it, and idle again after its cool-down; like a stopped job, an idle one keeps gantry up
//! (its listeners keep serving) without counting as live, so it never delays a shutdown. So does a
//! lazy job that failed for good and may fail: its listeners refuse connections, with a log line, and
//! its state says failed (one that may not fail brings gantry down as any job does). With
//! `--keep-running` the run phase lasts until SIGTERM/SIGINT whatever the jobs do.
//!
//! **Dependencies.** A job with `after`/`requires` is not started with its phase: it waits until every
//! job it names is ready ([`JobStatus::ready`]; a `oneTime` job: completed; a lazy job: idle), and
//! the phase starts it then. A job whose required job fails for good is stopped (or never started)
//! and does not hold gantry up; a dependency that fails for good and may not fail brings gantry down
//! before anything waiting for it starts. The shutdown stops a job only once every job that depends
//! on it has stopped (reverse dependency order).
//!
//! Rendering and probing are phases of `up` that do not involve jobs; the `up` module sequences them.

pub mod job;
pub mod policy;
pub mod process;
pub mod reload;
pub mod state;

#[cfg(test)]
mod scripted_tests;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::config::{Attempts, BootJob, JobSpec};
use crate::exit::ExitStatus;
use crate::reaper::Reaper;
pub use crate::runtime::Ctx;
use crate::sys;
pub use job::{ControlError, JobDef, JobHandle, Kind, Reply, Request};
use policy::Policy;
use process::{Launcher, ProcessLauncher};
pub use state::{JobState, JobStatus};

/// Why a phase ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// Every job ended on its own.
    AllEnded,
    /// gantry received SIGTERM or SIGINT (or a shutdown request with that signal).
    Signal(i32),
    /// A job that may not fail gave up.
    JobFailed(String),
    /// In the flags-only mode, the first command to end brings the others down.
    JobEnded(String),
    /// The caller gave up on jobs it had held back (`up`: a probe a boot job waits for was not
    /// ready in time); it knows why.
    Aborted,
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
    /// tini; a lazy job running at the time counts the same, though it ends idle, not stopped);
    /// otherwise 0. Exits caused by gantry's own stop after a job ended are not failures.
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

impl JobDef {
    /// A supervised job of the plan.
    pub fn job(spec: &JobSpec) -> Self {
        JobDef {
            name: spec.name.clone(),
            kind: Kind::Job,
            command: spec.command.clone(),
            policy: Policy {
                initial_backoff: spec.restart_delay.0,
                max_backoff: spec.restart_delay.1,
                ..Policy::new(spec.max_attempts, spec.one_time)
            },
            stop: spec.stop.clone(),
            timeout: None,
            watches: spec.watches.clone(),
            can_fail: spec.can_fail,
            controllable: spec.controllable,
            sockets: Default::default(),
            readiness: spec.readiness.clone(),
            checks: Default::default(),
        }
    }

    /// The same job, started on demand (a lazy job: see [`Policy::on_demand`]). The run phase leaves
    /// it idle; its listeners start it.
    pub fn on_demand(mut self) -> Self {
        self.policy.on_demand = true;
        self
    }

    /// A boot job of the plan: run once, within its timeout.
    pub fn boot(spec: &BootJob) -> Self {
        JobDef {
            name: spec.name.clone(),
            kind: Kind::Boot,
            command: spec.command.clone(),
            policy: Policy::new(Attempts::Limited(1), true),
            stop: spec.stop.clone(),
            timeout: spec.timeout,
            watches: Vec::new(),
            can_fail: spec.can_fail,
            controllable: false,
            sockets: Default::default(),
            readiness: Default::default(),
            checks: Default::default(),
        }
    }
}

/// What the handle knows of one job.
#[derive(Debug, Clone)]
struct Entry {
    handle: JobHandle,
    kind: Kind,
    controllable: bool,
    can_fail: bool,
    /// A lazy job: the run phase does not start it.
    on_demand: bool,
    /// Where the run phase hands over the job's socket-activated listeners.
    sockets: process::Sockets,
    /// The jobs it waits for (`after`, `requires`), by index, and whether each is required.
    deps: Vec<(usize, bool)>,
    /// A `oneTime` job: as a dependency it counts once it has completed.
    one_time: bool,
}

/// One job as [`Handle::list`] and [`Handle::status`] describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSummary {
    pub name: String,
    pub kind: Kind,
    pub controllable: bool,
    pub status: JobStatus,
}

/// A cloneable handle to the supervisor.
#[derive(Debug, Clone)]
pub struct Handle {
    /// In definition order; fixed once the supervisor exists.
    jobs: Arc<Vec<Entry>>,
    index: Arc<HashMap<String, usize>>,
    stop_requests: mpsc::UnboundedSender<i32>,
    shutting_down: Arc<AtomicBool>,
}

impl Handle {
    fn entry(&self, name: &str) -> Result<&Entry, ControlError> {
        self.index
            .get(name)
            .map(|&i| &self.jobs[i])
            .ok_or_else(|| ControlError::UnknownJob(name.to_string()))
    }

    fn summary(entry: &Entry) -> JobSummary {
        JobSummary {
            name: entry.handle.name.clone(),
            kind: entry.kind,
            controllable: entry.controllable,
            status: entry.handle.status(),
        }
    }

    /// Every job, in definition order (boot jobs first).
    pub fn list(&self) -> Vec<JobSummary> {
        self.jobs.iter().map(Self::summary).collect()
    }

    /// One job's status.
    pub fn status(&self, name: &str) -> Result<JobSummary, ControlError> {
        self.entry(name).map(Self::summary)
    }

    /// One job's place in [`Handle::list`] and its status, found by name without listing every job.
    pub fn find(&self, name: &str) -> Option<(usize, JobSummary)> {
        let &i = self.index.get(name)?;
        Some((i, Self::summary(&self.jobs[i])))
    }

    /// The slot for one job's socket-activated listeners (see [`process::Sockets`]).
    pub fn sockets(&self, name: &str) -> Result<process::Sockets, ControlError> {
        Ok(self.entry(name)?.sockets.clone())
    }

    /// Every later change of one job's status.
    pub fn subscribe(&self, name: &str) -> Result<watch::Receiver<JobStatus>, ControlError> {
        Ok(self.entry(name)?.handle.subscribe())
    }

    /// Sends `request` to job `name` and waits for the answer. Refused once the shutdown has begun.
    pub async fn request(&self, name: &str, request: Request) -> Reply {
        let entry = self.entry(name)?;
        if self.shutting_down.load(Ordering::SeqCst) {
            return Err(ControlError::ShuttingDown);
        }
        entry.handle.request(request).await
    }

    pub async fn start(&self, name: &str) -> Reply {
        self.request(name, Request::Start).await
    }

    pub async fn stop(&self, name: &str) -> Reply {
        self.request(name, Request::Stop).await
    }

    pub async fn restart(&self, name: &str) -> Reply {
        self.request(
            name,
            Request::Restart {
                signal: None,
                only_if_running: false,
            },
        )
        .await
    }

    /// Sends `signal` where the job's forwarded signals go.
    pub async fn signal(&self, name: &str, signal: i32) -> Reply {
        self.request(
            name,
            Request::Signal {
                signal,
                main_only: false,
            },
        )
        .await
    }

    /// Begins the shutdown as SIGTERM/SIGINT `signal` would (a second call escalates to SIGKILL).
    pub fn shutdown(&self, signal: i32) {
        let _ = self.stop_requests.send(signal);
    }

    /// Whether the shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }
}

impl Ctx {
    /// The launcher of real processes over this runtime's reaper.
    pub fn launcher(&self) -> Arc<dyn Launcher> {
        Arc::new(ProcessLauncher {
            reaper: self.reaper.clone(),
            copiers: self.copiers.clone(),
            foreground: self.foreground,
        })
    }
}

/// The owner of every job's actor (see the module doc).
pub struct Supervisor {
    handle: Handle,
    /// Each job's state as the phase loop last saw it, in definition order.
    states: Vec<JobState>,
    events: mpsc::UnboundedReceiver<(String, JobState)>,
    stops: mpsc::UnboundedReceiver<i32>,
    /// Jobs that will not run because a job they require failed for good.
    doomed: Vec<bool>,
    /// Jobs the shutdown has asked to stop.
    stop_sent: Vec<bool>,
}

/// How a dependency looks to the jobs that wait for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DepState {
    /// Ready (a `oneTime` job: completed; a lazy job: idle or ready).
    Ready,
    Waiting,
    /// It failed for good (or will never run because of its own requirements).
    Failed,
}

impl Supervisor {
    /// Spawns the actor of every job in `defs` (not started yet) on the current runtime. Stop
    /// requests (SIGTERM/SIGINT from the signal loop, [`Handle::shutdown`]) arrive on `stops`.
    pub fn new(
        defs: Vec<JobDef>,
        launcher: Arc<dyn Launcher>,
        forward_to_group: bool,
        reaper: Arc<Reaper>,
        stops: (mpsc::UnboundedSender<i32>, mpsc::UnboundedReceiver<i32>),
    ) -> Self {
        let (ev_tx, events) = mpsc::unbounded_channel();
        let actor_ctx = job::ActorCtx {
            launcher,
            forward_to_group,
            shutdown: Some(stops.0.clone()),
        };
        let mut jobs = Vec::with_capacity(defs.len());
        let mut index = HashMap::new();
        // Dependencies by name, resolved to indices once every job is known.
        let names: HashMap<String, usize> = defs
            .iter()
            .enumerate()
            .map(|(i, d)| (d.name.clone(), i))
            .collect();
        for mut def in defs {
            let (kind, controllable, can_fail) = (def.kind, def.controllable, def.can_fail);
            let on_demand = def.policy.on_demand;
            let one_time = def.policy.one_time;
            let sockets = def.sockets.clone();
            let watches = def.watches.clone();
            let deps: Vec<(usize, bool)> = def
                .readiness
                .deps()
                .into_iter()
                .filter_map(|d| {
                    Some((
                        *names.get(d)?,
                        def.readiness.requires.iter().any(|r| r == d),
                    ))
                })
                .collect();
            if def.checks.ready.is_none() && def.checks.alive.is_none() {
                match crate::readiness::Checks::build(&def.readiness, &reaper) {
                    Ok(checks) => def.checks = checks,
                    // Resolved when the configuration was loaded; an environment variable may
                    // have gone since.
                    Err(e) => tracing::error!("job {:?}: {e}", def.name),
                }
            }
            let handle = job::spawn(def, actor_ctx.clone(), ev_tx.clone());
            for spec in watches {
                let path = spec.path.clone();
                if let Err(e) = reload::spawn_watch(spec, handle.clone(), reaper.clone()) {
                    tracing::error!(job = %handle.name, "cannot watch {path:?}: {e}");
                }
            }
            index.insert(handle.name.clone(), jobs.len());
            jobs.push(Entry {
                handle,
                kind,
                controllable,
                can_fail,
                on_demand,
                sockets,
                deps,
                one_time,
            });
        }
        let states = vec![JobState::NotStarted; jobs.len()];
        Supervisor {
            handle: Handle {
                jobs: Arc::new(jobs),
                index: Arc::new(index),
                stop_requests: stops.0,
                shutting_down: Arc::new(AtomicBool::new(false)),
            },
            doomed: vec![false; states.len()],
            stop_sent: vec![false; states.len()],
            states,
            events,
            stops: stops.1,
        }
    }

    /// A supervisor over real processes in `ctx`'s runtime.
    pub fn over(ctx: &Ctx, defs: Vec<JobDef>, stops: mpsc::UnboundedReceiver<i32>) -> Self {
        Supervisor::new(
            defs,
            ctx.launcher(),
            ctx.forward_to_group,
            ctx.reaper.clone(),
            (ctx.stop_requests.clone(), stops),
        )
    }

    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Stop requests for a phase that runs no job (the probe phase waits on them).
    pub fn stop_requests(&mut self) -> &mut mpsc::UnboundedReceiver<i32> {
        &mut self.stops
    }

    fn begin_shutdown(&mut self, report: &mut Report, cause: Cause) {
        if report.shutdown_at.is_some() {
            return;
        }
        self.handle.shutting_down.store(true, Ordering::SeqCst);
        let live = self.states.iter().filter(|s| s.is_live()).count();
        if live > 0 {
            tracing::info!(phase = "shutdown", "stopping {live} job(s)");
        }
        report.cause = cause;
        report.shutdown_at = Some(Instant::now());
        self.stop_in_order();
    }

    /// During the shutdown: asks every job to stop whose dependents (the jobs that wait for it)
    /// have all stopped, so that a job stops only after everything that needs it.
    fn stop_in_order(&mut self) {
        let jobs = self.handle.jobs.clone();
        for i in 0..jobs.len() {
            if self.stop_sent[i] {
                continue;
            }
            let needed = jobs
                .iter()
                .enumerate()
                .any(|(j, e)| self.states[j].is_live() && e.deps.iter().any(|&(d, _)| d == i));
            if !needed {
                self.stop_sent[i] = true;
                jobs[i].handle.send(Request::Stop);
            }
        }
    }

    /// How job `d` looks to the jobs that wait for it, now.
    fn dep_state(&self, d: usize) -> DepState {
        if self.doomed[d] {
            return DepState::Failed;
        }
        let entry = &self.handle.jobs[d];
        let status = entry.handle.status();
        match status.state {
            JobState::Completed(_) => DepState::Ready,
            // One that may not fail brings gantry down: nothing waiting for it starts meanwhile.
            JobState::Failed(_) if entry.can_fail => DepState::Failed,
            JobState::Idle => DepState::Ready,
            JobState::Running { .. } if status.ready && !entry.one_time => DepState::Ready,
            _ => DepState::Waiting,
        }
    }

    /// Starts every waiting job whose dependencies are ready, and gives up on (or stops) the jobs
    /// that require one that failed for good.
    fn release(&mut self, waiting: &mut [bool]) {
        let jobs = self.handle.jobs.clone();
        loop {
            let mut changed = false;
            for (i, entry) in jobs.iter().enumerate() {
                if self.doomed[i] || entry.deps.is_empty() {
                    continue;
                }
                let states: Vec<(usize, bool, DepState)> = entry
                    .deps
                    .iter()
                    .map(|&(d, required)| (d, required, self.dep_state(d)))
                    .collect();
                let lost = states
                    .iter()
                    .find(|(_, required, st)| *required && *st == DepState::Failed);
                if let Some(&(d, _, _)) = lost {
                    self.doomed[i] = true;
                    changed = true;
                    let (name, dep) = (&entry.handle.name, &jobs[d].handle.name);
                    if waiting[i] {
                        waiting[i] = false;
                        tracing::warn!(
                            "job {name:?} will not start: it requires {dep:?}, which failed"
                        );
                    } else if self.states[i].is_live() {
                        tracing::warn!("stopping job {name:?}: it requires {dep:?}, which failed");
                        entry.handle.send(Request::Stop);
                    }
                    continue;
                }
                if !waiting[i] || states.iter().any(|(_, _, st)| *st == DepState::Waiting) {
                    continue;
                }
                waiting[i] = false;
                changed = true;
                let names: Vec<String> = states
                    .iter()
                    .map(|&(d, _, st)| {
                        let name = &jobs[d].handle.name;
                        if st == DepState::Failed {
                            format!("{name} (failed)")
                        } else {
                            name.clone()
                        }
                    })
                    .collect();
                tracing::info!(
                    "starting job {:?}: {} ready",
                    entry.handle.name,
                    names.join(", ")
                );
                entry.handle.send(Request::Start);
                self.states[i] = JobState::Starting;
            }
            if !changed {
                return;
            }
        }
    }

    /// Starts every job of `kind` and follows them until the phase is over (see the module doc).
    pub async fn run_phase(&mut self, kind: Kind, opts: RunOptions) -> Report {
        let (_, never) = mpsc::unbounded_channel();
        self.run_phase_held(kind, opts, &[], never).await
    }

    /// [`Supervisor::run_phase`], except that the jobs named in `held` are not started with the
    /// others: each starts when its name arrives on `release` (a boot job waiting for probes). A
    /// held job keeps the phase open until it has started and ended. If `release` closes while
    /// jobs are still held, the caller has given up on them: the phase shuts down
    /// ([`Cause::Aborted`]) and they never start. After the shutdown has begun, releases are
    /// ignored.
    pub async fn run_phase_held(
        &mut self,
        kind: Kind,
        opts: RunOptions,
        held: &[String],
        mut release: mpsc::UnboundedReceiver<String>,
    ) -> Report {
        let members: Vec<usize> = (0..self.states.len())
            .filter(|&i| self.handle.jobs[i].kind == kind)
            .collect();
        // Boot jobs held back until their probes are ready (`waitFor`).
        let mut held_back: Vec<usize> = members
            .iter()
            .copied()
            .filter(|&i| held.contains(&self.handle.jobs[i].handle.name))
            .collect();
        let mut releasing = !held_back.is_empty();
        // Jobs that wait for others (`after`, `requires`) start once those are ready.
        let mut waiting = vec![false; self.states.len()];
        for &i in &members {
            let entry = &self.handle.jobs[i];
            if held_back.contains(&i) {
                continue;
            }
            if entry.on_demand {
                // A lazy job: its listeners start it on the first connection (maybe already).
                self.states[i] = entry.handle.status().state;
                continue;
            }
            if !entry.deps.is_empty() {
                waiting[i] = true;
                continue;
            }
            entry.handle.send(Request::Start);
            // Until its actor reports, the job counts as starting: the phase is not over.
            self.states[i] = JobState::Starting;
        }
        let mut report = Report {
            cause: Cause::AllEnded,
            failure: None,
            stopped_nonzero: None,
            shutdown_at: None,
        };
        loop {
            let shutting_down = report.shutdown_at.is_some();
            if shutting_down {
                self.stop_in_order();
            } else {
                self.release(&mut waiting);
            }
            let live = members.iter().any(|&i| self.states[i].is_live())
                || (!shutting_down && !held_back.is_empty());
            // A job stopped on request, or a lazy job (idle, or failed and refusing connections
            // with a log line), holds gantry up.
            let held = members.iter().any(|&i| match self.states[i] {
                // ...but not one stopped because a job it requires failed.
                JobState::Stopped(_) | JobState::Idle => !self.doomed[i],
                JobState::Failed(_) => self.handle.jobs[i].on_demand,
                _ => false,
            });
            if !live && (shutting_down || !(held || opts.keep_running)) {
                break;
            }
            tokio::select! {
                released = release.recv(), if releasing => match released {
                    Some(name) => {
                        let found = held_back.iter().position(|&i| self.handle.jobs[i].handle.name == name);
                        if let (Some(at), false) = (found, shutting_down) {
                            let i = held_back.remove(at);
                            self.handle.jobs[i].handle.send(Request::Start);
                            self.states[i] = JobState::Starting;
                        }
                    }
                    None => {
                        releasing = false;
                        if !held_back.is_empty() && !shutting_down {
                            self.begin_shutdown(&mut report, Cause::Aborted);
                        }
                    }
                },
                Some(sig) = self.stops.recv() => {
                    if shutting_down {
                        tracing::warn!("received {} again: killing every job now", crate::signals::Name(sig));
                        for entry in self.handle.jobs.iter() {
                            entry.handle.send(Request::Kill);
                        }
                    } else {
                        tracing::info!("received {}: shutting down", crate::signals::Name(sig));
                        self.begin_shutdown(&mut report, Cause::Signal(sig));
                    }
                }
                Some((name, state)) = self.events.recv() => {
                    let Some(&i) = self.handle.index.get(&name) else { continue };
                    let before = std::mem::replace(&mut self.states[i], state);
                    if !members.contains(&i) {
                        continue;
                    }
                    let can_fail = self.handle.jobs[i].can_fail;
                    match state {
                        JobState::Completed(_) if opts.stop_all_when_one_ends => {
                            self.begin_shutdown(&mut report, Cause::JobEnded(name));
                        }
                        JobState::Failed(status) => {
                            if can_fail {
                                tracing::warn!(kind = %kind.noun(), job = %name, "failed ({status}) but may fail; the rest runs on");
                                if opts.stop_all_when_one_ends {
                                    self.begin_shutdown(&mut report, Cause::JobEnded(name));
                                }
                            } else if !shutting_down {
                                report.failure = Some((name.clone(), status));
                                self.begin_shutdown(&mut report, Cause::JobFailed(name));
                            }
                        }
                        JobState::Stopped(Some(status)) if shutting_down && !status.success() => {
                            report.stopped_nonzero.get_or_insert(status);
                        }
                        // A lazy job the shutdown stopped goes back to idle rather than stopped;
                        // its process's status counts the same. (Idle after a backoff had no
                        // process to stop, like Stopped(None).)
                        JobState::Idle if shutting_down && before.pid().is_some() => {
                            let last = self.handle.jobs[i].handle.status().last_exit;
                            if let Some(status) = last.filter(|s| !s.success()) {
                                report.stopped_nonzero.get_or_insert(status);
                            }
                        }
                        _ => {}
                    }
                }
                else => break,
            }
        }
        report
    }
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
