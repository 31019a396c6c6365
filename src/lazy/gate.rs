//! The gate of one lazy job: counts its connections, starts it, notices a spin-up that timed out, and
//! stops it after an exact cool-down.
//!
//! One task per lazy job (the keeper) owns this state; every listener of the job talks to it through
//! a [`Gate`]. The rules:
//!
//! - **Entering** (a connection was accepted): the cool-down is cancelled and, unless the job is
//!   running, it is started through the supervisor handle (a job that is stopping is started again
//!   once stopped; one backing off after a crash is started when the backoff ends). A job that has
//!   failed for good is not started: the connection is refused, with one log line per failure.
//! - **Answered** (a held connection reached the upstream): the first after a start logs the cold
//!   start with its spin-up time.
//! - **No answer** (the upstream of a freshly started process did not answer within
//!   `spinUpTimeout`): logged, and reported to the job as a failed start ([`Request::FailStart`]),
//!   once per process.
//! - **Leaving** (a connection closed): when it was the last, the cool-down timer starts. When it
//!   fires with no connection, the job gets its normal stop (stop signal, grace, SIGKILL) and returns
//!   to idle. A job that starts running with no connection (its clients gave up, or the API started
//!   it) cools down the same way.
//! - **Activity** (a connection arrived on a socket-activated listener, which the job accepts
//!   itself): gantry cannot see those connections close, so a running cool-down starts over at
//!   each new one; the job is stopped `coolDownTimeout` after the last.
//!
//! The cool-down, while it runs, is shown in the job's status ([`Request::CoolDown`]).
//!
//! The job's state is read from its watch channel; the keeper never waits on the job while holding
//! anyone up, except for the start request itself (the actor answers once the process is spawned).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::config::lazy::LazySpec;
use crate::supervisor::{Handle, JobState, JobStatus, Request};

/// Why a connection is not served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The job failed for good.
    Failed,
    /// gantry is shutting down (or the job is gone).
    Closing,
}

#[derive(Debug)]
enum Msg {
    Enter(oneshot::Sender<Result<(), Refused>>),
    /// A connection closed; `waiting` if it never reached the upstream.
    Leave {
        waiting: bool,
    },
    Answered {
        pid: i32,
    },
    NoAnswer {
        pid: i32,
        listener: String,
    },
    /// A new connection arrived on a socket the running job accepts on itself.
    Activity,
}

/// Upper bounds (seconds) of the spin-up histogram.
pub const SPIN_UP_BUCKETS: [f64; 12] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Counters of one lazy job, for `/metrics` and the API's job view.
#[derive(Debug)]
pub struct Counters {
    /// Connections admitted.
    pub accepted: AtomicU64,
    /// Connections open now.
    pub active: AtomicU64,
    /// Connections open now and still held (not yet through to the upstream).
    pub held: AtomicU64,
    /// Connections that arrived before the job's current process answered (held through its start).
    pub held_total: AtomicU64,
    /// Starts of the job for a connection that ended with the upstream answering.
    pub cold_starts: AtomicU64,
    pub cool_down_stops: AtomicU64,
    pub failed_spin_ups: AtomicU64,
    /// Bytes relayed client → job, and job → client.
    pub traffic: super::proxy::Traffic,
    /// Time from the start request to the upstream's first answer.
    pub spin_up: crate::metrics::Histogram,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            accepted: AtomicU64::new(0),
            active: AtomicU64::new(0),
            held: AtomicU64::new(0),
            held_total: AtomicU64::new(0),
            cold_starts: AtomicU64::new(0),
            cool_down_stops: AtomicU64::new(0),
            failed_spin_ups: AtomicU64::new(0),
            traffic: super::proxy::Traffic::default(),
            spin_up: crate::metrics::Histogram::new(&SPIN_UP_BUCKETS),
        }
    }
}

/// A listener's way to one lazy job's keeper.
#[derive(Debug, Clone)]
pub struct Gate {
    pub job: Arc<str>,
    pub lazy: LazySpec,
    tx: mpsc::UnboundedSender<Msg>,
    status: watch::Receiver<JobStatus>,
    pub counters: Arc<Counters>,
}

/// Held by a connection while it is open; dropping it tells the keeper it left.
#[derive(Debug)]
pub struct Ticket {
    tx: Option<mpsc::UnboundedSender<Msg>>,
    /// Still waiting for the upstream (held).
    waiting: bool,
}

impl Ticket {
    /// The connection reached the upstream of process `pid`: it is no longer held.
    pub fn answered(&mut self, pid: i32) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Msg::Answered { pid });
        }
        self.waiting = false;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Msg::Leave {
                waiting: self.waiting,
            });
        }
    }
}

impl Gate {
    /// Starts the keeper of `job` on the current runtime.
    pub fn spawn(job: &str, lazy: LazySpec, handle: Handle) -> Result<Gate, String> {
        let status = handle
            .subscribe(job)
            .map_err(|e| format!("listener of job {job:?}: {e}"))?;
        let (tx, rx) = mpsc::unbounded_channel();
        let counters = Arc::new(Counters::default());
        let keeper = Keeper {
            job: job.to_string(),
            lazy,
            handle,
            status: status.clone(),
            rx,
            active: 0,
            waiting: 0,
            cool_down_at: None,
            cold_start_at: None,
            answered: None,
            failed_pid: None,
            published: None,
            refusal_logged: false,
            counters: counters.clone(),
        };
        tokio::spawn(keeper.run());
        Ok(Gate {
            job: job.into(),
            lazy,
            tx,
            status,
            counters,
        })
    }

    /// Admits a new connection (starting the job if needed), or refuses it.
    pub async fn enter(&self) -> Result<Ticket, Refused> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Msg::Enter(tx)).map_err(|_| Refused::Closing)?;
        // The ticket exists from here on: if this connection is dropped meanwhile, it still leaves.
        let mut ticket = Ticket {
            tx: Some(self.tx.clone()),
            waiting: true,
        };
        match rx.await {
            Ok(Ok(())) => Ok(ticket),
            Ok(Err(r)) => {
                ticket.tx = None; // refused: never counted in
                Err(r)
            }
            Err(_) => {
                ticket.tx = None; // the keeper is gone
                Err(Refused::Closing)
            }
        }
    }

    /// Waits until the job runs and returns its pid and since when, or `None` when it will not
    /// (idle, failed, stopped, shutting down).
    pub async fn running(&self) -> Option<(i32, Instant)> {
        let mut rx = self.status.clone();
        let state = rx
            .wait_for(|s| {
                !matches!(
                    s.state,
                    JobState::Starting | JobState::Stopping { .. } | JobState::BackingOff { .. }
                )
            })
            .await
            .ok()?
            .state;
        match state {
            JobState::Running { pid, since } => Some((pid, since)),
            _ => None,
        }
    }

    /// Whether the job still runs process `pid`.
    pub fn still_running(&self, pid: i32) -> bool {
        matches!(self.status.borrow().state, JobState::Running { pid: p, .. } if p == pid)
    }

    pub fn no_answer(&self, pid: i32, listener: String) {
        let _ = self.tx.send(Msg::NoAnswer { pid, listener });
    }

    /// A connection arrived on a socket the running job accepts on itself: a running cool-down
    /// starts over.
    pub fn activity(&self) {
        let _ = self.tx.send(Msg::Activity);
    }

    /// A receiver of the job's state changes.
    pub fn subscribe(&self) -> watch::Receiver<JobStatus> {
        self.status.clone()
    }
}

struct Keeper {
    job: String,
    lazy: LazySpec,
    handle: Handle,
    status: watch::Receiver<JobStatus>,
    rx: mpsc::UnboundedReceiver<Msg>,
    /// Connections admitted and not yet closed.
    active: usize,
    /// Of those, the ones still held (not yet through to the upstream).
    waiting: usize,
    /// When the cool-down stops the job (only while it runs with no connection).
    cool_down_at: Option<Instant>,
    /// When the current cold start was asked for (until its first answer).
    cold_start_at: Option<Instant>,
    /// The process whose upstream has answered at least once.
    answered: Option<i32>,
    /// The process already reported as a failed start.
    failed_pid: Option<i32>,
    /// The cool-down the job's status shows.
    published: Option<Instant>,
    refusal_logged: bool,
    counters: Arc<Counters>,
}

impl Keeper {
    fn state(&self) -> JobState {
        self.status.borrow().state
    }

    async fn run(mut self) {
        loop {
            let cool_down = self.cool_down_at;
            tokio::select! {
                msg = self.rx.recv() => match msg {
                    Some(msg) => self.on_msg(msg).await,
                    None => return,
                },
                changed = self.status.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    self.on_state().await;
                }
                _ = sleep_until(cool_down) => self.cool_down().await,
            }
            self.counters
                .active
                .store(self.active as u64, Ordering::Relaxed);
            self.counters
                .held
                .store(self.waiting as u64, Ordering::Relaxed);
            self.publish().await;
        }
    }

    /// Shows the cool-down in the job's status (the actor drops it once the process is gone).
    async fn publish(&mut self) {
        if self.cool_down_at == self.published {
            return;
        }
        self.published = self.cool_down_at;
        if matches!(self.state(), JobState::Running { .. }) || self.cool_down_at.is_none() {
            let _ = self
                .handle
                .request(&self.job, Request::CoolDown(self.cool_down_at))
                .await;
        }
    }

    async fn on_msg(&mut self, msg: Msg) {
        match msg {
            Msg::Enter(reply) => {
                // Held: the job's current process (if any) has not answered yet.
                let cold = !matches!(self.state(), JobState::Running { pid, .. } if self.answered == Some(pid));
                let admitted = self.admit().await;
                if admitted.is_ok() {
                    self.active += 1;
                    self.waiting += 1;
                    self.cool_down_at = None;
                    self.counters.accepted.fetch_add(1, Ordering::Relaxed);
                    if cold {
                        self.counters.held_total.fetch_add(1, Ordering::Relaxed);
                    }
                }
                // A connection that went away meanwhile sends its Leave anyway (its ticket was
                // dropped, not disarmed): count it in so that the Leave balances.
                if reply.send(admitted.clone()).is_err() && admitted.is_err() {
                    self.active += 1;
                    self.waiting += 1;
                }
            }
            Msg::Leave { waiting } => {
                self.active = self.active.saturating_sub(1);
                if waiting {
                    self.waiting = self.waiting.saturating_sub(1);
                }
                self.arm_cool_down();
            }
            Msg::Answered { pid } => {
                self.waiting = self.waiting.saturating_sub(1);
                if self.answered != Some(pid) {
                    self.answered = Some(pid);
                    if let Some(asked) = self.cold_start_at.take() {
                        self.counters.cold_starts.fetch_add(1, Ordering::Relaxed);
                        self.counters.spin_up.observe(asked.elapsed());
                        tracing::info!(
                            job = %self.job,
                            pid,
                            "cold start answered after {} ms",
                            asked.elapsed().as_millis()
                        );
                    }
                }
            }
            Msg::NoAnswer { pid, listener } => {
                let running_it =
                    matches!(self.state(), JobState::Running { pid: p, .. } if p == pid);
                if !running_it || self.answered == Some(pid) || self.failed_pid == Some(pid) {
                    return;
                }
                self.failed_pid = Some(pid);
                self.cold_start_at = None;
                self.counters
                    .failed_spin_ups
                    .fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    job = %self.job,
                    pid,
                    "did not answer at {listener} within spinUpTimeout {:?}; closing the held \
                     connections and counting a failed start",
                    self.lazy.spin_up_timeout
                );
                let _ = self.handle.request(&self.job, Request::FailStart).await;
            }
            Msg::Activity => {
                if self.cool_down_at.is_some() {
                    self.cool_down_at = Some(Instant::now() + self.lazy.cool_down_timeout);
                }
            }
        }
    }

    /// Starts the job unless it runs; refuses when it failed for good or gantry is closing.
    async fn admit(&mut self) -> Result<(), Refused> {
        match self.state() {
            JobState::Running { .. } | JobState::Starting => return Ok(()),
            JobState::Failed(status) => {
                if !self.refusal_logged {
                    self.refusal_logged = true;
                    tracing::error!(
                        job = %self.job,
                        "failed ({status}); its listeners refuse connections until it is started again"
                    );
                }
                return Err(Refused::Failed);
            }
            _ => {}
        }
        if self.handle.is_shutting_down() {
            return Err(Refused::Closing);
        }
        if self.cold_start_at.is_none() {
            self.cold_start_at = Some(Instant::now());
        }
        match self.handle.start(&self.job).await {
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::debug!(job = %self.job, "not started for a connection: {e}");
                Err(Refused::Closing)
            }
        }
    }

    async fn on_state(&mut self) {
        let state = self.state();
        match state {
            JobState::Running { .. } => {
                self.refusal_logged = false;
                self.arm_cool_down();
            }
            // A crash while connections are held: they are demand, start it after the backoff.
            // (Connections that were through to the crashed process are gone with it.)
            JobState::BackingOff { .. } if self.waiting > 0 => {
                if !self.handle.is_shutting_down() {
                    let _ = self.handle.start(&self.job).await;
                }
            }
            _ => {
                self.cool_down_at = None;
            }
        }
        if !state.is_live() {
            self.cold_start_at = None;
        }
    }

    /// Starts the cool-down if the job runs and nobody is connected.
    fn arm_cool_down(&mut self) {
        if self.active == 0 && matches!(self.state(), JobState::Running { .. }) {
            if self.cool_down_at.is_none() {
                self.cool_down_at = Some(Instant::now() + self.lazy.cool_down_timeout);
            }
        } else if self.active > 0 {
            self.cool_down_at = None;
        }
    }

    async fn cool_down(&mut self) {
        self.cool_down_at = None;
        if self.active > 0 || !matches!(self.state(), JobState::Running { .. }) {
            return;
        }
        self.counters
            .cool_down_stops
            .fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            job = %self.job,
            "no connection for {:?} (coolDownTimeout); stopping it",
            self.lazy.cool_down_timeout
        );
        if let Err(e) = self.handle.stop(&self.job).await {
            tracing::debug!(job = %self.job, "cool-down stop: {e}");
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// How long a held connection may wait in all, across a stop, a backoff and a spin-up.
pub fn hold_limit(lazy: &LazySpec, stop_total: Duration) -> Duration {
    // The longest backoff of the restart policy is 30 s.
    lazy.spin_up_timeout + stop_total + Duration::from_secs(30)
}
