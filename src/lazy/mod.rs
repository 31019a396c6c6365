//! Listeners: lazy jobs started by their first connection, and always-on forwarders.
//!
//! **Theory of operation.** `up` opens every `listen` address ([`open`]) at the start of the run
//! phase, before any job starts, so a client that connects early waits in the backlog instead of
//! being refused; then [`serve`] runs one accept loop per listener and, for each lazy job, one keeper
//! ([`gate`]). A lazy job's actor is told it is on demand (`JobDef::on_demand`): the run phase leaves
//! it idle.
//!
//! Each accepted connection is one task (no thread) that
//! 1. enters the job's gate — the keeper starts the job through the supervisor handle if it does not
//!    run, or refuses the connection if the job has failed for good;
//! 2. waits for the job's process to run and dials the upstream with a fast backoff (2 ms doubling to
//!    10 ms) until it answers or the process has run for `spinUpTimeout`; every connection that
//!    arrives during the spin-up is held the same way. A spin-up that times out closes the held
//!    clients, is logged, and counts as a failed start of the job (its process is stopped);
//! 3. writes the PROXY header if asked, and relays ([`proxy`]) until both sides are done;
//! 4. leaves the gate: after the last connection, the cool-down timer starts.
//!
//! A `listen` block on a job without `lazy` is a plain forwarder: steps 2 (bounded by the default
//! `spinUpTimeout`, in case the job is restarting) and 3 only. `maxConnections` stops accepting while
//! that many connections are open; further clients wait in the kernel's backlog. An accept error
//! (out of file descriptors, say) is logged and retried, never fatal.
//!
//! **Socket activation** (`activation = "socket"`): gantry binds the socket, never accepts on it and
//! never proxies for it. [`serve`] hands it to the job's supervisor entry (`supervisor::process::
//! Sockets`), and the launcher passes it to every process of the job as fd 3 onward
//! (`sys::PassFds`). gantry keeps it open between runs, so a connection that arrives while the job
//! restarts or is idle waits in the backlog. For a lazy job, [`watch_socket`] stands in for the
//! accept loop: while the job is idle it waits until the socket is readable (a connection waits) and
//! starts the job through its gate; while the job runs, each new connection only restarts the
//! cool-down (gantry cannot see the job's connections close). A lazy job that has failed for good
//! accepts nothing: while it stays failed, gantry accepts and resets each waiting connection (one
//! log line per failure), so that clients are refused instead of hanging in the backlog.
//!
//! Everything here lives on `up`'s runtime; when `up` returns, the listeners and every connection are
//! closed, and unix socket files removed.

pub mod gate;
pub mod net;
pub mod proxy;

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::config::lazy::{ListenSpec, DEFAULT_SPIN_UP_TIMEOUT};
use crate::config::{JobSpec, Plan};
use crate::supervisor::{Handle, JobDef, JobState};
use gate::{Gate, Refused};
use net::{Listener, Peer, Stream, UnixPath};

/// The job's definition for the supervisor: on demand when the plan makes it lazy.
pub fn job_def(plan: &Plan, spec: &JobSpec) -> JobDef {
    let def = JobDef::job(spec);
    let lazy = plan
        .listeners
        .iter()
        .any(|l| l.job == spec.name && l.lazy.is_some());
    if lazy {
        def.on_demand()
    } else {
        def
    }
}

/// One bound listener and what it serves.
#[derive(Debug)]
pub struct Bound {
    pub job: String,
    pub spec: ListenSpec,
    pub listener: Listener,
    lazy: Option<(crate::config::lazy::LazySpec, Duration)>,
}

/// The socket-activated listeners of one job, bound.
#[derive(Debug)]
pub struct Passed {
    pub job: String,
    lazy: Option<crate::config::lazy::LazySpec>,
    /// Each socket with its `LISTEN_FDNAMES` name and what the log calls it.
    sockets: Vec<(OwnedFd, String, String)>,
    /// Unix socket files to remove when gantry exits.
    paths: Vec<UnixPath>,
}

/// Every listener of the plan, bound, not accepting yet.
#[derive(Debug, Default)]
pub struct Opened {
    pub bound: Vec<Bound>,
    pub passed: Vec<Passed>,
}

/// Binds every `listen` address of the plan. The error names the block and the address.
pub async fn open(plan: &Plan) -> Result<Opened, String> {
    let mut opened = Opened::default();
    for jl in &plan.listeners {
        let stop_total = plan
            .jobs
            .iter()
            .find(|j| j.name == jl.job)
            .map_or(Duration::ZERO, |j| j.stop.total());
        for spec in &jl.listen {
            let listener = net::bind(&spec.address).await.map_err(|e| {
                format!(
                    "{}: job {:?}: cannot listen on {}: {e}",
                    spec.pos, jl.job, spec.address
                )
            })?;
            opened.bound.push(Bound {
                job: jl.job.clone(),
                spec: spec.clone(),
                listener,
                lazy: jl.lazy.map(|l| (l, gate::hold_limit(&l, stop_total))),
            });
        }
        if jl.sockets.is_empty() {
            continue;
        }
        let mut passed = Passed {
            job: jl.job.clone(),
            lazy: jl.lazy,
            sockets: Vec::new(),
            paths: Vec::new(),
        };
        for spec in &jl.sockets {
            let (fd, path, addr) = net::bind_passed(&spec.address).await.map_err(|e| {
                format!(
                    "{}: job {:?}: cannot listen on {}: {e}",
                    spec.pos, jl.job, spec.address
                )
            })?;
            let what = match addr {
                Some(addr) => format!("tcp {addr}"),
                None => spec.address.to_string(),
            };
            passed.sockets.push((fd, spec.name.clone(), what));
            passed.paths.extend(path);
        }
        opened.passed.push(passed);
    }
    Ok(opened)
}

/// Starts the keepers and accept loops on the current runtime. Returns the gates of the lazy jobs.
pub fn serve(opened: Opened, handle: &Handle) -> Result<Vec<Gate>, String> {
    let mut gates: Vec<Gate> = Vec::new();
    for bound in opened.bound {
        let gate = match bound.lazy {
            Some((lazy, hold)) => {
                let gate = match gates.iter().find(|g| *g.job == *bound.job) {
                    Some(g) => g.clone(),
                    None => {
                        let g = Gate::spawn(&bound.job, lazy, handle.clone())?;
                        gates.push(g.clone());
                        g
                    }
                };
                Some((gate, hold))
            }
            None => None,
        };
        let what = match bound.listener.local_addr() {
            Some(addr) => format!("tcp {addr}"),
            None => bound.spec.address.to_string(),
        };
        tracing::info!(
            job = %bound.job,
            "listening on {what}, forwarding to {}{}",
            bound.spec.forward,
            if gate.is_some() { " (lazy)" } else { "" }
        );
        tokio::spawn(accept_loop(
            bound.listener,
            Arc::new(bound.spec),
            gate,
            what,
        ));
    }
    for passed in opened.passed {
        let slot = handle
            .sockets(&passed.job)
            .map_err(|e| format!("listener of job {:?}: {e}", passed.job))?;
        let gate = match passed.lazy {
            Some(lazy) => Some(match gates.iter().find(|g| *g.job == *passed.job) {
                Some(g) => g.clone(),
                None => {
                    let g = Gate::spawn(&passed.job, lazy, handle.clone())?;
                    gates.push(g.clone());
                    g
                }
            }),
            None => None,
        };
        let mut fds = Vec::new();
        for (i, (fd, name, what)) in passed.sockets.into_iter().enumerate() {
            tracing::info!(
                job = %passed.job,
                "listening on {what}, passed to the job as fd {} (socket activation){}",
                3 + i,
                if gate.is_some() { " (lazy)" } else { "" }
            );
            if let Some(gate) = &gate {
                let watched = fd
                    .try_clone()
                    .map_err(|e| format!("job {:?}: {what}: {e}", passed.job))?;
                tokio::spawn(watch_socket(watched, gate.clone(), what));
            }
            fds.push((fd, name));
        }
        slot.fill(fds)
            .map_err(|e| format!("job {:?}: {e}", passed.job))?;
        // The socket files go when the runtime ends (this task is dropped with it).
        let paths = passed.paths;
        tokio::spawn(async move {
            let _paths = paths;
            std::future::pending::<()>().await
        });
    }
    Ok(gates)
}

/// Starts a lazy job when a connection waits on one of its passed sockets, without accepting it
/// (the job does); while the job runs, each new connection restarts its cool-down.
async fn watch_socket(fd: OwnedFd, gate: Gate, what: String) {
    let socket = match crate::sys::async_readable(fd) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("{what}: cannot watch the socket: {e}; the job is not started by it");
            return;
        }
    };
    let mut status = gate.subscribe();
    let mut refused = 0usize;
    loop {
        let state = status.borrow_and_update().state;
        // Failed for good: nothing will accept these clients; refuse them rather than let them
        // hang in the backlog, until the job is started again (through the API).
        if let JobState::Failed(exit) = state {
            if net::pending(socket.get_ref().as_fd()) {
                match net::refuse_pending(socket.get_ref().as_fd()) {
                    Ok(n) if n > 0 => {
                        if refused == 0 {
                            tracing::error!(
                                "job {:?} has failed ({exit}); refusing connections on {what} until it is started again",
                                &*gate.job
                            );
                        }
                        refused += n;
                        tracing::debug!("{what}: {refused} connection(s) refused so far");
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!("{what}: cannot refuse the waiting connections: {e}");
                        return;
                    }
                }
            }
        } else {
            refused = 0;
        }
        // Idle (or stopped, or backed off into idle) with a connection waiting: start the job. A
        // level check, so a connection left in the backlog by the last run is seen too.
        if !state.is_live()
            && !matches!(state, JobState::Failed(_))
            && net::pending(socket.get_ref().as_fd())
        {
            match gate.enter().await {
                // The job runs (or will): its accept is what serves the connection.
                Ok(ticket) => drop(ticket),
                Err(Refused::Closing) => return,
                // Logged by the gate; wait for the state to change.
                Err(Refused::Failed) => {}
            }
            continue;
        }
        tokio::select! {
            ready = socket.readable() => match ready {
                Ok(mut guard) => {
                    if state.is_live() {
                        gate.activity();
                    }
                    // Edge-triggered: cleared here, the next connection wakes this loop again,
                    // and the level check above decides.
                    guard.clear_ready();
                }
                Err(e) => {
                    tracing::error!("{what}: cannot watch the socket: {e}");
                    return;
                }
            },
            changed = status.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

/// Accepts until the runtime ends; each connection is a task of its own.
async fn accept_loop(
    listener: Listener,
    spec: Arc<ListenSpec>,
    gate: Option<(Gate, Duration)>,
    what: String,
) {
    let limit = spec.max_connections.map(|n| Arc::new(Semaphore::new(n)));
    let mut failing = false;
    loop {
        // At the limit, stop accepting: the next clients wait in the backlog.
        let permit = match &limit {
            Some(sem) => match sem.clone().acquire_owned().await {
                Ok(p) => Some(p),
                Err(_) => return,
            },
            None => None,
        };
        match listener.accept().await {
            Ok((stream, peer)) => {
                failing = false;
                tracing::debug!("{what}: connection from {peer}");
                let spec = spec.clone();
                let gate = gate.clone();
                tokio::spawn(async move {
                    match gate {
                        Some((gate, hold)) => serve_lazy(stream, peer, &spec, &gate, hold).await,
                        None => serve_plain(stream, peer, &spec).await,
                    }
                    drop(permit);
                });
            }
            Err(e) if transient(&e) => {}
            Err(e) => {
                if !failing {
                    tracing::warn!("{what}: cannot accept connections ({e}); retrying");
                    failing = true;
                }
                drop(permit);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Accept errors about one connection that went away before it was accepted.
fn transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

async fn serve_plain(client: Stream, peer: Peer, spec: &ListenSpec) {
    let deadline = Instant::now() + DEFAULT_SPIN_UP_TIMEOUT;
    match proxy::dial_until(&spec.forward, deadline, || None).await {
        Ok(upstream) => forward(client, upstream, peer, spec, None).await,
        Err(e) => {
            tracing::warn!(
                "connection from {peer}: {} did not answer ({e}); closing it",
                spec.forward
            );
            close(client).await;
        }
    }
}

async fn serve_lazy(client: Stream, peer: Peer, spec: &ListenSpec, gate: &Gate, hold: Duration) {
    let arrived = Instant::now();
    let mut ticket = match gate.enter().await {
        Ok(ticket) => ticket,
        Err(Refused::Failed) => return client.reset(),
        Err(Refused::Closing) => return close(client).await,
    };
    let hold_until = arrived + hold;
    let upstream = loop {
        let running = tokio::time::timeout_at(hold_until, gate.running()).await;
        let Ok(Some((pid, since))) = running else {
            tracing::warn!(
                job = %&*gate.job,
                "connection from {peer} closed: the job did not start running"
            );
            return close(client).await;
        };
        let deadline = (since + gate.lazy.spin_up_timeout).min(hold_until);
        let gone = || (!gate.still_running(pid)).then(|| io::Error::other("the process exited"));
        match proxy::dial_until(&spec.forward, deadline, gone).await {
            Ok(upstream) => {
                ticket.answered(pid);
                break upstream;
            }
            // The process ended while we dialled: wait for the next one.
            Err(_) if !gate.still_running(pid) => continue,
            Err(e) => {
                gate.no_answer(pid, spec.forward.to_string());
                tracing::debug!(
                    job = %&*gate.job,
                    "connection from {peer} closed: {} did not answer ({e})",
                    spec.forward
                );
                return close(client).await;
            }
        }
    };
    forward(client, upstream, peer, spec, Some(&gate.counters.traffic)).await;
    drop(ticket);
}

/// PROXY header (if asked), then the relay.
async fn forward(
    client: Stream,
    mut upstream: Stream,
    peer: Peer,
    spec: &ListenSpec,
    traffic: Option<&proxy::Traffic>,
) {
    if let Some(version) = spec.proxy_protocol {
        if let Err(e) = proxy::send_header(&mut upstream, version, &peer).await {
            tracing::debug!("connection from {peer}: cannot send the PROXY header: {e}");
            return client.reset();
        }
    }
    let ended = proxy::relay(client, upstream, traffic).await;
    tracing::debug!("connection from {peer} ended: {ended:?}");
}

/// Closes a client that will not be served with a FIN (not a reset).
async fn close(mut client: Stream) {
    let _ = client.shutdown().await;
}
