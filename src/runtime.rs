//! The one bootstrap of gantry's process model, for every mode that runs a runtime: `up`, the
//! flags-only mode, `wait` and `sidecar`.
//!
//! Owns the order in which things must happen at start: block every caught signal before any thread
//! exists (so that every thread inherits the mask and signals are only read from the signalfd),
//! become a child subreaper when asked and not PID 1, open the signalfd, build the current-thread
//! runtime, start the signal loop (`reaper::signal_loop`: SIGCHLD reaps, SIGTERM/SIGINT become stop
//! requests, the rest is forwarded to jobs), run the mode's body, and let job output drain before
//! the runtime is dropped. The body gets the [`Ctx`] and the receiver of stop requests.
//!
//! A mode that `exec`s a command afterwards (`wait ... -- CMD`) may use it too: the runtime and the
//! signalfd are gone when [`run`] returns, and `exec` gives the new program an empty signal mask.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::exit;
use crate::output::Copiers;
use crate::reaper::{self, Reaper};
use crate::sys;

/// How a mode wants the process model set up.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Become a child subreaper when not PID 1, so that orphans come to gantry (modes that run jobs).
    pub subreaper: bool,
    /// Forwarded signals go to each job's process group (default) or only to its main process.
    pub forward_to_group: bool,
    /// Give a job the terminal's foreground (flags-only mode with one command).
    pub foreground: bool,
    /// The signals the signal loop forwards to jobs: bit N for signal N (see
    /// `reaper::signal_loop`). Every one by default.
    pub forwarded: u128,
}

impl Options {
    /// Forward only the signals in `forwarded` (bit N for signal N).
    pub fn forwarding(self, forwarded: u128) -> Self {
        Options { forwarded, ..self }
    }

    /// For a mode that supervises jobs.
    pub fn supervising(forward_to_group: bool, foreground: bool) -> Self {
        Options {
            subreaper: true,
            forward_to_group,
            foreground,
            forwarded: u128::MAX,
        }
    }

    /// For a mode that starts no job (`wait`, `sidecar`): stop requests only.
    pub fn without_jobs() -> Self {
        Options {
            subreaper: false,
            forward_to_group: true,
            foreground: false,
            forwarded: u128::MAX,
        }
    }
}

/// The runtime's shared parts: the reaper, the output copy tasks, and how jobs are started.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub reaper: Arc<Reaper>,
    pub copiers: Copiers,
    /// Forwarded signals go to the job's process group (default) or only to its main process.
    pub forward_to_group: bool,
    /// Give the job the terminal's foreground (flags-only mode with one command).
    pub foreground: bool,
    /// Where [`Handle::shutdown`] sends its request: the same channel as the signal loop's.
    pub stop_requests: mpsc::UnboundedSender<i32>,
}

/// Sets up the process model as `opts` says, runs `body` on a current-thread runtime, and returns
/// its exit code once job output has drained (at most 2 s) and the runtime is gone.
pub fn run<F, Fut>(opts: Options, body: F) -> i32
where
    F: FnOnce(Ctx, mpsc::UnboundedReceiver<i32>) -> Fut,
    Fut: Future<Output = i32>,
{
    // Before any thread exists, so that every thread inherits the mask.
    if let Err(e) = sys::block_signals() {
        tracing::error!("cannot block signals: {e}");
        return exit::INTERNAL;
    }
    if opts.subreaper && !sys::is_pid1() {
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
    let code = rt.block_on(async move {
        let reaper = Reaper::new();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(reaper::signal_loop(
            fd,
            reaper.clone(),
            tx.clone(),
            opts.forward_to_group,
            opts.forwarded,
        ));
        let ctx = Ctx {
            reaper,
            copiers: Copiers::default(),
            forward_to_group: opts.forward_to_group,
            foreground: opts.foreground,
            stop_requests: tx,
        };
        let copiers = ctx.copiers.clone();
        let code = body(ctx, rx).await;
        copiers.drain(Duration::from_secs(2)).await;
        code
    });
    // Nothing of the runtime lingers (a mode may exec next); output writer threads are plain
    // threads, not the runtime's, and end with the process.
    drop(rt);
    code
}
