//! One job as an actor: a task that owns the job's processes for as long as gantry runs.
//!
//! Nothing else touches a job's process. Others hold a [`JobHandle`] and send [`Request`]s (start,
//! stop, restart, signal, kill); each request is answered on a oneshot with the state it left the
//! job in, or a [`ControlError`]. The actor publishes every change of [`JobState`] on a watch channel
//! (read through the handle) and reports it to the supervisor.
//!
//! The actor lives through stop → start: when its job has settled (completed, failed, stopped) it
//! waits for the next request instead of ending. Its rules:
//!
//! - **One process at most.** A start while the job is starting, running or stopping creates no
//!   second process: while it runs the start is a no-op, while it stops the job is started again once
//!   it has stopped, and while it backs off it is started now instead of after the delay.
//! - **A stopped job stays stopped.** A job stopped on request is not restarted by its policy.
//! - **A restart is one restart**, however many arrive while the job is stopping for it.
//! - **Stopping** walks the stop stages (signal, grace, next signal, ..., SIGKILL); a `Kill` request
//!   (a second SIGTERM during shutdown) sends SIGKILL at once.
//! - **Between runs** the restart [`Policy`] decides (pure: `policy`), with its backoff.
//!
//! Boot jobs are the same actor with a run-once policy and a timeout per run.
//!
//! **Readiness and liveness.** For each run the actor starts the job's readiness sources
//! (`crate::readiness`: its `ready` probe, its sd_notify socket, its s6 pipe) and, once the job is
//! ready, its `alive` check; they report back as [`Request::Readiness`] tagged with the run's pid.
//! The actor publishes readiness in [`JobStatus::ready`] (a job without a check is ready once it
//! runs), logs the time it took, restarts the job on a missed watchdog or a failed liveness
//! threshold (both count as a failed run for the restart policy), and stops the sources when the
//! run ends.
//!
//! **Lazy jobs** ([`Policy::on_demand`]) are the same actor with three differences: they begin
//! [`JobState::Idle`] instead of not started; a stop (the listener's cool-down, the API, the shutdown)
//! leaves them idle, where their next connection starts them again; and after a run ends the policy's
//! backoff is waited out but the job is not started again by itself — it goes idle unless a start
//! arrived meanwhile (then it starts when the backoff is over, not before). Failures count across
//! those runs, so `maxAttempts` still ends a lazy job that cannot start. [`Request::FailStart`] is how
//! a listener reports a spin-up that timed out: the process is stopped and the run counts as failed.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::policy::{Decision, History, Policy};
use super::process::{Child, Launcher, Sockets};
use super::state::{JobState, JobStatus};
use crate::config::readiness::{AliveAction, Notify, Readiness};
use crate::config::{Attempts, CommandSpec, StopSpec};
use crate::exit::{self, ExitStatus};
use crate::readiness::notify::NotifySocket;
use crate::readiness::{Checks, Event, Watchers};

/// Which phase a job belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Runs to completion before any job starts.
    Boot,
    /// Supervised.
    Job,
}

impl Kind {
    /// How logs name a job of this kind.
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Boot => "boot job",
            Kind::Job => "job",
        }
    }
}

/// Everything the supervisor needs to know to run one job: what to run and under which rules.
#[derive(Debug, Clone)]
pub struct JobDef {
    pub name: String,
    pub kind: Kind,
    pub command: CommandSpec,
    pub policy: Policy,
    pub stop: StopSpec,
    /// Each run may last at most this long (boot jobs).
    pub timeout: Option<Duration>,
    /// Files whose changes reload or restart the job.
    pub watches: Vec<crate::watch::WatchSpec>,
    /// Failing for good does not bring gantry down.
    pub can_fail: bool,
    /// May be controlled through the API.
    pub controllable: bool,
    /// Listening sockets passed to each of its processes (socket activation; usually none).
    pub sockets: Sockets,
    /// Its readiness, liveness and dependencies, as configured.
    pub readiness: Readiness,
    /// The probes of its `ready` and `alive` checks, built by the supervisor.
    pub checks: Checks,
}

/// What the rest of gantry may ask of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Start the job if it has no process (see the module doc for each state).
    Start,
    /// Stop gracefully (stop stages, then SIGKILL); the job then stays stopped.
    Stop,
    /// SIGKILL now (a second SIGTERM during shutdown).
    Kill,
    /// Stop gracefully, starting with `signal` (the job's own stop signal when `None`), and start
    /// again at once; not a failure. With `only_if_running` (a watch's `restart = true`) a job that
    /// has no process is left as it is.
    Restart {
        signal: Option<i32>,
        only_if_running: bool,
    },
    /// Send a signal to the job's process group (`main_only = false`) or its main process.
    Signal { signal: i32, main_only: bool },
    /// Stop the running process (stop stages, then SIGKILL) and count the run as a failed start,
    /// whatever its exit status: a lazy job whose upstream did not answer within `spinUpTimeout`.
    /// A job without a process is left as it is.
    FailStart,
    /// A lazy job's listeners started (`Some(when it fires)`) or cancelled its cool-down: shown in
    /// its status while the process runs, nothing else.
    CoolDown(Option<Instant>),
    /// A readiness or liveness source (`crate::readiness`) reports about process `pid`; ignored
    /// when that process is no longer the job's.
    Readiness { pid: i32, event: Event },
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    #[error("no job named {0:?}")]
    UnknownJob(String),
    #[error("job {0:?} has no running process")]
    NotRunning(String),
    #[error("gantry is shutting down")]
    ShuttingDown,
    #[error("job {0:?} is no longer supervised")]
    Gone(String),
}

/// A request's answer: the state the request left the job in.
pub type Reply = Result<JobState, ControlError>;

type Envelope = (Request, Option<oneshot::Sender<Reply>>);

/// A cloneable handle to one job's actor.
#[derive(Debug, Clone)]
pub struct JobHandle {
    pub name: String,
    tx: mpsc::UnboundedSender<Envelope>,
    status: watch::Receiver<JobStatus>,
}

impl JobHandle {
    /// Sends a request without waiting for its answer.
    pub fn send(&self, request: Request) {
        let _ = self.tx.send((request, None));
    }

    /// Sends a request and waits for its answer.
    pub async fn request(&self, request: Request) -> Reply {
        let (tx, rx) = oneshot::channel();
        if self.tx.send((request, Some(tx))).is_err() {
            return Err(ControlError::Gone(self.name.clone()));
        }
        rx.await
            .unwrap_or_else(|_| Err(ControlError::Gone(self.name.clone())))
    }

    /// The job's status now.
    pub fn status(&self) -> JobStatus {
        *self.status.borrow()
    }

    /// A receiver that sees every later change of the job's status.
    pub fn subscribe(&self) -> watch::Receiver<JobStatus> {
        self.status.clone()
    }
}

/// What an actor needs besides its definition.
#[derive(Debug, Clone)]
pub struct ActorCtx {
    pub launcher: Arc<dyn Launcher>,
    /// Forwarded signals go to the job's process group (default) or only to its main process.
    pub forward_to_group: bool,
    /// Where an `alive` check with `action = "shutdown"` asks for the shutdown (SIGTERM).
    pub shutdown: Option<mpsc::UnboundedSender<i32>>,
}

/// Starts the actor task of `def`, in [`JobState::NotStarted`]. Every state change is also sent on
/// `events` with the job's name.
pub fn spawn(
    def: JobDef,
    ctx: ActorCtx,
    events: mpsc::UnboundedSender<(String, JobState)>,
) -> JobHandle {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut initial = JobStatus::new();
    if def.policy.on_demand {
        initial.state = JobState::Idle;
    }
    let (status_tx, status_rx) = watch::channel(initial);
    let handle = JobHandle {
        name: def.name.clone(),
        tx,
        status: status_rx,
    };
    let actor = Actor {
        history: History::new(&def.policy),
        mailbox: handle.tx.downgrade(),
        notify: None,
        def,
        ctx,
        rx,
        status: status_tx,
        events,
    };
    tokio::spawn(actor.run());
    handle
}

struct Actor {
    def: JobDef,
    ctx: ActorCtx,
    rx: mpsc::UnboundedReceiver<Envelope>,
    status: watch::Sender<JobStatus>,
    events: mpsc::UnboundedSender<(String, JobState)>,
    history: History,
    /// The actor's own mailbox, for its readiness sources (weak: the actor must still see every
    /// handle go).
    mailbox: mpsc::WeakUnboundedSender<Envelope>,
    /// With `notify = "systemd"`: the job's notify socket, bound at its first start.
    notify: Option<Arc<NotifySocket>>,
}

/// s6's readiness pipe for one run: gantry's read end, the child's write end, the fd number.
type NotifyPipe = (OwnedFd, OwnedFd, i32);

/// How one run of the process ended.
enum Ran {
    Exited(ExitStatus),
    /// Stopped for a restart on request: start again at once, without counting a failure.
    Restarted(ExitStatus),
    TimedOut(ExitStatus),
    Stopped(ExitStatus),
    /// Stopped because it did not answer in time (a lazy job's spin-up): a failed start; whether a
    /// start arrived meanwhile.
    FailedStart(ExitStatus, bool),
}

fn answer(reply: Option<oneshot::Sender<Reply>>, value: Reply) {
    if let Some(reply) = reply {
        let _ = reply.send(value);
    }
}

impl Actor {
    fn state(&self) -> JobState {
        self.status.borrow().state
    }

    /// Publishes a new state: logged once at debug level, on the watch channel and to the supervisor.
    fn set(&mut self, state: JobState) {
        let before = self.state();
        if before == state {
            return;
        }
        tracing::debug!(
            kind = %self.def.kind.noun(),
            job = %self.def.name,
            "{} -> {}",
            before.name(),
            state.name()
        );
        let ready_at_start = self.ready_at_start();
        self.status.send_modify(|s| {
            if let JobState::Running { .. } = state {
                s.starts = s.starts.saturating_add(1);
                s.restarts = s.starts.saturating_sub(1);
            }
            // A job without a readiness check is ready once it runs; one with a check when it says so.
            s.ready = matches!(state, JobState::Running { .. }) && ready_at_start;
            s.state = state;
            // A cool-down is about the process that ran; whatever comes next starts without one.
            s.cool_down_until = None;
        });
        let _ = self.events.send((self.def.name.clone(), state));
    }

    /// Whether the job is ready as soon as its process runs (it has no readiness check).
    fn ready_at_start(&self) -> bool {
        self.def.readiness.notify.is_none() && self.def.checks.ready.is_none()
    }

    /// Publishes a change of readiness (the supervisor hears it as a repeat of the state).
    fn set_ready(&mut self, ready: bool) {
        if self.status.borrow().ready == ready {
            return;
        }
        self.status.send_modify(|s| s.ready = ready);
        let _ = self.events.send((self.def.name.clone(), self.state()));
    }

    /// Everything a run needs before its process starts: the command (with `NOTIFY_SOCKET` and
    /// `WATCHDOG_USEC` for sd_notify) and, for s6's protocol, the pipe.
    fn prepare_run(&mut self) -> std::io::Result<(CommandSpec, Option<NotifyPipe>)> {
        let mut command = self.def.command.clone();
        let mut pipe = None;
        match self.def.readiness.notify {
            Some(Notify::Systemd) => {
                let socket = match &self.notify {
                    Some(s) => s.clone(),
                    None => {
                        let s = Arc::new(NotifySocket::bind(&self.def.name)?);
                        self.notify = Some(s.clone());
                        s
                    }
                };
                socket.drain();
                command.env.push((
                    "NOTIFY_SOCKET".to_string(),
                    socket.path().to_string_lossy().into_owned(),
                ));
                if let Some(w) = self.def.readiness.watchdog {
                    command
                        .env
                        .push(("WATCHDOG_USEC".to_string(), w.as_micros().to_string()));
                }
            }
            Some(Notify::Fd(n)) => {
                let (read, write) = crate::sys::notify_pipe()?;
                pipe = Some((read, write, n));
            }
            None => {}
        }
        Ok((command, pipe))
    }

    /// Starts the sources that watch run `pid` (`read`: the s6 pipe's read end).
    fn watch_run(&self, pid: i32, read: Option<OwnedFd>) -> Watchers {
        let mut watchers = Watchers::default();
        let name = self.def.name.clone();
        if let Some(probe) = &self.def.checks.ready {
            watchers.add(tokio::spawn(crate::readiness::probe::until_ready(
                name.clone(),
                probe.clone(),
                self.reporter(pid),
            )));
        }
        if let Some(socket) = &self.notify {
            watchers.add(tokio::spawn(crate::readiness::notify::watch(
                name.clone(),
                socket.clone(),
                pid,
                self.reporter(pid),
            )));
        }
        if let Some(read) = read {
            watchers.add(tokio::spawn(crate::readiness::fd::watch(
                name,
                read,
                self.reporter(pid),
            )));
        }
        watchers
    }

    /// Starts the `alive` check of run `pid`, if the job has one.
    fn watch_alive(&self, pid: i32, watchers: &mut Watchers) {
        if let Some((probe, spec)) = &self.def.checks.alive {
            watchers.add(tokio::spawn(crate::readiness::probe::liveness(
                self.def.name.clone(),
                probe.clone(),
                spec.clone(),
                self.reporter(pid),
            )));
        }
    }

    /// How a source reports about run `pid`: a request to this actor.
    fn reporter(&self, pid: i32) -> crate::readiness::Report {
        let mailbox = self.mailbox.clone();
        Arc::new(move |event| {
            if let Some(tx) = mailbox.upgrade() {
                let _ = tx.send((Request::Readiness { pid, event }, None));
            }
        })
    }

    fn record_exit(&mut self, status: ExitStatus) {
        self.status.send_modify(|s| s.last_exit = Some(status));
    }

    fn not_running(&self) -> ControlError {
        ControlError::NotRunning(self.def.name.clone())
    }

    async fn run(mut self) {
        // Settled (not started, completed, failed, stopped): wait for a request.
        while let Some((request, reply)) = self.rx.recv().await {
            match request {
                Request::Start
                | Request::Restart {
                    only_if_running: false,
                    ..
                } => {
                    // An idle lazy job keeps its failures: its connections start it again and
                    // again, and maxAttempts must still end a job that cannot start.
                    if self.state() != JobState::Idle {
                        self.history = History::new(&self.def.policy);
                    }
                    self.cycle(reply).await;
                }
                Request::Signal { .. } => answer(reply, Err(self.not_running())),
                Request::Stop
                | Request::Kill
                | Request::Restart { .. }
                | Request::FailStart
                | Request::CoolDown(_)
                | Request::Readiness { .. } => answer(reply, Ok(self.state())),
            }
        }
    }

    /// Runs the job from its start until it settles, restarting it as the policy and requests say.
    /// `reply` is answered once the first process has started (or could not be).
    async fn cycle(&mut self, mut reply: Option<oneshot::Sender<Reply>>) {
        let (name, kind) = (self.def.name.clone(), self.def.kind.noun());
        // An on-demand job: a start is waiting for the backoff to end.
        let mut wanted = false;
        loop {
            self.set(JobState::Starting);
            let started = Instant::now();
            let launched = self.prepare_run().and_then(|(command, pipe)| {
                let (read, write, at) = match pipe {
                    Some((read, write, at)) => (Some(read), Some(write), at),
                    None => (None, None, 0),
                };
                let notify_fd = write.as_ref().map(|w| (w.as_raw_fd(), at));
                let child = self.ctx.launcher.launch(
                    &self.def.name,
                    &command,
                    &self.def.sockets,
                    notify_fd,
                )?;
                // The process has its copy of the write end; ours must go, so that the pipe ends
                // when the process does.
                drop(write);
                Ok((child, read))
            });
            let status = match launched {
                Ok((child, read)) => {
                    tracing::info!(kind = %kind, job = %name, pid = child.pid, "started");
                    self.set(JobState::Running {
                        pid: child.pid,
                        since: started,
                    });
                    answer(reply.take(), Ok(self.state()));
                    let mut watchers = self.watch_run(child.pid, read);
                    if self.ready_at_start() {
                        self.watch_alive(child.pid, &mut watchers);
                    }
                    match self.supervise(child, watchers, started).await {
                        Ran::Exited(status) => status,
                        Ran::TimedOut(status) => {
                            self.record_exit(status);
                            tracing::error!(
                                kind = %kind,
                                job = %name,
                                "timed out after {:?} ({status})",
                                self.def.timeout.unwrap_or_default()
                            );
                            self.set(JobState::Failed(status));
                            return;
                        }
                        Ran::Stopped(status) => {
                            self.record_exit(status);
                            tracing::info!(kind = %kind, job = %name, "stopped ({status})");
                            self.set(if self.def.policy.on_demand {
                                JobState::Idle
                            } else {
                                JobState::Stopped(Some(status))
                            });
                            return;
                        }
                        Ran::FailedStart(status, again) => {
                            self.record_exit(status);
                            wanted = again;
                            if status.success() {
                                ExitStatus::Code(1)
                            } else {
                                status
                            }
                        }
                        Ran::Restarted(status) => {
                            self.record_exit(status);
                            tracing::info!(kind = %kind, job = %name, "restarting on request ({status})");
                            continue;
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(
                        kind = %kind,
                        job = %name,
                        "cannot start {:?}: {e}",
                        self.def.command.program
                    );
                    ExitStatus::from_spawn_error(&e)
                }
            };
            self.record_exit(status);
            let decision = self
                .history
                .on_exit(&self.def.policy, status, started.elapsed());
            let after = match decision {
                Decision::Complete => {
                    tracing::info!(kind = %kind, job = %name, "completed");
                    self.set(JobState::Completed(status));
                    answer(reply.take(), Ok(self.state()));
                    return;
                }
                Decision::GiveUp => {
                    if self.def.policy == Policy::run_once() {
                        // Run-once commands (flags mode, boot jobs) report through their caller.
                        tracing::info!(kind = %kind, job = %name, "exited ({status})");
                    } else {
                        tracing::error!(
                            kind = %kind,
                            job = %name,
                            "failed ({status}) after {} attempt(s)",
                            self.history.failures
                        );
                    }
                    self.set(JobState::Failed(status));
                    answer(reply.take(), Ok(self.state()));
                    return;
                }
                Decision::Restart { after } => after,
            };
            if status.success() {
                tracing::info!(
                    kind = %kind,
                    job = %name,
                    "exited ({status}); restarting in {after:?}"
                );
            } else {
                tracing::warn!(
                    kind = %kind,
                    job = %name,
                    "exited ({status}); restarting in {after:?} (failure {} of {})",
                    self.history.failures,
                    match self.def.policy.max_attempts {
                        Attempts::Forever => "unlimited".to_string(),
                        Attempts::Limited(n) => n.to_string(),
                    }
                );
            }
            let until = Instant::now() + after;
            self.set(JobState::BackingOff {
                until,
                attempt: self.history.failures,
            });
            answer(reply.take(), Ok(self.state()));
            if self.def.policy.on_demand {
                if !self
                    .back_off_on_demand(until, std::mem::take(&mut wanted))
                    .await
                {
                    self.set(JobState::Idle);
                    return;
                }
                continue;
            }
            if !self.back_off(until).await {
                self.set(JobState::Stopped(None));
                return;
            }
        }
    }

    /// Waits out a backoff. Returns `false` when the job was stopped meanwhile, `true` to start it
    /// (the delay passed, or a start or restart asked for it now).
    async fn back_off(&mut self, until: Instant) -> bool {
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => return true,
                envelope = self.rx.recv() => {
                    let Some((request, reply)) = envelope else { return false };
                    match request {
                        Request::Start | Request::Restart { only_if_running: false, .. } => {
                            answer(reply, Ok(JobState::Starting));
                            return true;
                        }
                        Request::Stop | Request::Kill => {
                            answer(reply, Ok(JobState::Stopped(None)));
                            return false;
                        }
                        Request::Restart { .. } | Request::FailStart | Request::CoolDown(_) | Request::Readiness { .. } => answer(reply, Ok(self.state())),
                        Request::Signal { .. } => answer(reply, Err(self.not_running())),
                    }
                }
            }
        }
    }

    /// Waits out the backoff of an on-demand job. Returns `true` to start it when the backoff is
    /// over (a start arrived meanwhile), `false` to leave it idle (none did, or a stop did).
    async fn back_off_on_demand(&mut self, until: Instant, mut wanted: bool) -> bool {
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => return wanted,
                envelope = self.rx.recv() => {
                    let Some((request, reply)) = envelope else { return false };
                    match request {
                        Request::Start | Request::Restart { only_if_running: false, .. } => {
                            wanted = true;
                            answer(reply, Ok(self.state()));
                        }
                        Request::Stop | Request::Kill => {
                            answer(reply, Ok(JobState::Idle));
                            return false;
                        }
                        Request::Restart { .. } | Request::FailStart | Request::CoolDown(_) | Request::Readiness { .. } => answer(reply, Ok(self.state())),
                        Request::Signal { .. } => answer(reply, Err(self.not_running())),
                    }
                }
            }
        }
    }

    /// Waits for the run to end, for a request, for the timeout, or for the job's readiness and
    /// liveness sources (`watchers`) to report.
    async fn supervise(
        &mut self,
        mut child: Child,
        mut watchers: Watchers,
        started: Instant,
    ) -> Ran {
        let name = self.def.name.clone();
        let watchdog = self.def.readiness.watchdog;
        let mut watchdog_at = watchdog.map(|w| started + w);
        // The `alive` check runs once the job is ready (at once for a job without a ready check).
        let mut alive_on = self.ready_at_start();
        let timeout = self.def.timeout;
        let timeout = async {
            match timeout {
                Some(t) => tokio::time::sleep(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(timeout);
        loop {
            let watchdog_due = async {
                match watchdog_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                status = wait(&mut child) => return Ran::Exited(status),
                _ = watchdog_due => {
                    tracing::error!(
                        "job {name:?} missed its watchdog (no WATCHDOG=1 for {:?}); restarting it",
                        watchdog.unwrap_or_default()
                    );
                    let stop = self.def.stop.clone();
                    let (status, again) = self.stop(&mut child, &stop, false).await;
                    return Ran::FailedStart(status, again);
                }
                _ = &mut timeout => {
                    let stop = self.def.stop.clone();
                    let (status, _) = self.stop(&mut child, &stop, false).await;
                    return Ran::TimedOut(status);
                }
                envelope = self.rx.recv() => {
                    let Some((request, reply)) = envelope else {
                        // Every handle is gone: gantry is ending; stop the process on the way out.
                        let stop = self.def.stop.clone();
                        return Ran::Stopped(self.stop(&mut child, &stop, false).await.0);
                    };
                    match request {
                        Request::Start => answer(reply, Ok(self.state())),
                        Request::Stop => {
                            let stop = self.def.stop.clone();
                            answer(reply, Ok(JobState::Stopping { pid: child.pid, since: Instant::now() }));
                            return match self.stop(&mut child, &stop, false).await {
                                (status, true) => Ran::Restarted(status),
                                (status, false) => Ran::Stopped(status),
                            };
                        }
                        Request::Kill => {
                            self.set(JobState::Stopping { pid: child.pid, since: Instant::now() });
                            self.ctx.launcher.signal(child.pid, libc::SIGKILL, true);
                            answer(reply, Ok(self.state()));
                            return Ran::Stopped(wait(&mut child).await);
                        }
                        Request::Signal { signal, main_only } => {
                            let group = !main_only && self.ctx.forward_to_group;
                            self.ctx.launcher.signal(child.pid, signal, group);
                            answer(reply, Ok(self.state()));
                        }
                        Request::CoolDown(until) => {
                            self.status.send_modify(|s| s.cool_down_until = until);
                            answer(reply, Ok(self.state()));
                        }
                        Request::Readiness { pid, event } => {
                            answer(reply, Ok(self.state()));
                            if pid != child.pid {
                                continue;
                            }
                            match event {
                                Event::Ready => {
                                    if !self.status.borrow().ready {
                                        tracing::info!(job = %name, "is ready after {:?}", started.elapsed());
                                        self.set_ready(true);
                                        if !alive_on {
                                            alive_on = true;
                                            self.watch_alive(pid, &mut watchers);
                                        }
                                    }
                                }
                                Event::Reloading => {
                                    tracing::info!(job = %name, "is reloading");
                                    self.set_ready(false);
                                }
                                Event::Stopping => {
                                    tracing::info!(job = %name, "is stopping");
                                    self.set_ready(false);
                                }
                                Event::Watchdog => {
                                    watchdog_at = watchdog.map(|w| Instant::now() + w);
                                }
                                Event::MainPid(main) => {
                                    tracing::debug!(job = %name, "main process is now {main}");
                                }
                                Event::NotAlive => {
                                    let Some((_, spec)) = &self.def.checks.alive else { continue };
                                    match spec.action {
                                        AliveAction::Restart => {
                                            tracing::error!(
                                                "job {name:?} failed its liveness check {} times in a row; restarting it",
                                                spec.threshold
                                            );
                                            let stop = self.def.stop.clone();
                                            let (status, again) = self.stop(&mut child, &stop, false).await;
                                            return Ran::FailedStart(status, again);
                                        }
                                        AliveAction::Shutdown => {
                                            tracing::error!(
                                                "job {name:?} failed its liveness check {} times in a row; shutting gantry down",
                                                spec.threshold
                                            );
                                            if let Some(tx) = &self.ctx.shutdown {
                                                let _ = tx.send(libc::SIGTERM);
                                            }
                                        }
                                        AliveAction::Ignore => {}
                                    }
                                }
                            }
                        }
                        Request::FailStart => {
                            let stop = self.def.stop.clone();
                            answer(reply, Ok(JobState::Stopping { pid: child.pid, since: Instant::now() }));
                            // A start that arrived meanwhile is served once the backoff is over.
                            let (status, again) = self.stop(&mut child, &stop, false).await;
                            return Ran::FailedStart(status, again);
                        }
                        Request::Restart { signal, .. } => {
                            let mut stop = self.def.stop.clone();
                            if let (Some(signal), Some(first)) = (signal, stop.stages.first_mut()) {
                                first.0 = signal;
                            }
                            answer(reply, Ok(JobState::Stopping { pid: child.pid, since: Instant::now() }));
                            return match self.stop(&mut child, &stop, true).await {
                                (status, true) => Ran::Restarted(status),
                                (status, false) => Ran::Stopped(status),
                            };
                        }
                    }
                }
            }
        }
    }

    /// Walks the stop stages until the process exits. Requests meanwhile: `Kill` sends SIGKILL at
    /// once, signals are forwarded, a start or restart means "start again once stopped", a stop
    /// cancels that. Returns the exit status and whether to start again (`again` at first).
    async fn stop(
        &mut self,
        child: &mut Child,
        stop: &StopSpec,
        mut again: bool,
    ) -> (ExitStatus, bool) {
        self.set(JobState::Stopping {
            pid: child.pid,
            since: Instant::now(),
        });
        let mut killed = false;
        let mut closed = false;
        'stages: for &(signal, grace) in &stop.stages {
            self.ctx.launcher.signal(child.pid, signal, true);
            let deadline = Instant::now() + grace;
            loop {
                tokio::select! {
                    status = wait(child) => return (status, again),
                    _ = tokio::time::sleep_until(deadline) => continue 'stages,
                    envelope = self.rx.recv(), if !closed => {
                        let Some((request, reply)) = envelope else {
                            closed = true;
                            continue;
                        };
                        match request {
                            Request::Kill => {
                                answer(reply, Ok(self.state()));
                                killed = true;
                                break 'stages;
                            }
                            Request::Signal { signal, main_only } => {
                                let group = !main_only && self.ctx.forward_to_group;
                                self.ctx.launcher.signal(child.pid, signal, group);
                                answer(reply, Ok(self.state()));
                            }
                            Request::Start | Request::Restart { only_if_running: false, .. } => {
                                again = true;
                                answer(reply, Ok(self.state()));
                            }
                            Request::Stop => {
                                again = false;
                                answer(reply, Ok(self.state()));
                            }
                            Request::Restart { .. } | Request::FailStart | Request::CoolDown(_) | Request::Readiness { .. } => answer(reply, Ok(self.state())),
                        }
                    }
                }
            }
        }
        if !killed {
            tracing::warn!(
                kind = %self.def.kind.noun(),
                job = %self.def.name,
                pid = child.pid,
                "did not stop within {:?}; sending SIGKILL",
                stop.total()
            );
        }
        self.ctx.launcher.signal(child.pid, libc::SIGKILL, true);
        (wait(child).await, again)
    }
}

async fn wait(child: &mut Child) -> ExitStatus {
    // The reaper only drops a sender after delivering; losing it would be a bug in gantry.
    (&mut child.exit)
        .await
        .unwrap_or(ExitStatus::Code(exit::INTERNAL))
}
