//! Phase 3 of `gantry up`: wait until every `wait = true` probe is ready.
//!
//! Owns turning the plan's probe blocks into probes and mapping the wait's outcome to an exit code;
//! the waiting itself (parallel attempts, backoff, progress lines) is `gantry_probes::wait`. Signals
//! arrive from the supervisor's signal loop as numbers: SIGTERM or SIGINT ends the wait at once —
//! nothing has been started yet, so there is nothing to stop.
//!
//! `exec` probes start their command through the [`Reaper`], like every other child of `up`: the
//! reaper's `waitpid(-1)` would otherwise race `tokio::process` for the exit status, and the command
//! would inherit gantry's blocked signal mask.

use std::sync::Arc;
use std::time::Duration;

use gantry_probes::exec::{ExecProbe, Finished, LaunchFuture, Launcher};
use gantry_probes::{
    wait_until_ready, Backend, BoxProbe, Dependency, SpecError, Target, WaitError, WaitOptions,
};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::config::model::CommandSpec;
use crate::config::probe::ProbeBlock;
use crate::exit::PhaseError;
use crate::reaper::Reaper;

/// Runs exec-probe commands as children registered with the reaper.
struct ReaperLauncher(Arc<Reaper>);

impl Launcher for ReaperLauncher {
    fn run<'a>(&'a self, program: &'a str, args: &'a [String]) -> LaunchFuture<'a> {
        Box::pin(async move {
            let spec = CommandSpec::new(program, args.to_vec());
            // Its own process group, killed with everything it started if the attempt times out.
            let out = crate::reaper::run_captured(&self.0, &spec).await?;
            Ok(Finished {
                success: out.status.success(),
                status: out.status.to_string(),
                stdout: out.stdout,
                stderr: out.stderr,
            })
        })
    }
}

/// The probe for one block; exec probes go through `launcher`.
fn build(p: &ProbeBlock, launcher: &Arc<dyn Launcher>) -> Result<BoxProbe, SpecError> {
    let target = p.target.clone();
    match target.backend {
        Backend::Exec(t) => Ok(Box::new(ExecProbe::with_launcher(
            t,
            target.timeout,
            launcher.clone(),
        ))),
        backend => Target {
            backend,
            timeout: target.timeout,
        }
        .into_probe(),
    }
}

/// The probe for `p`, exec probes run through `reaper` (for the API's `/status` and `/readyz`).
pub fn build_with_reaper(p: &ProbeBlock, reaper: &Arc<Reaper>) -> Result<BoxProbe, SpecError> {
    let launcher: Arc<dyn Launcher> = Arc::new(ReaperLauncher(reaper.clone()));
    build(p, &launcher)
}

/// Waits for the `wait = true` probes, keeping each attempt's result in `results` when given.
/// `Err` if gantry must exit instead of starting jobs.
pub async fn wait_for_probes(
    probes: &[ProbeBlock],
    reaper: &Arc<Reaper>,
    deadline: Option<Duration>,
    signals: &mut UnboundedReceiver<i32>,
    results: Option<&crate::api::probes::ProbeSet>,
) -> Result<(), PhaseError> {
    let launcher: Arc<dyn Launcher> = Arc::new(ReaperLauncher(reaper.clone()));
    let mut deps = Vec::new();
    for p in probes.iter().filter(|p| p.wait) {
        match build(p, &launcher) {
            // With the API or status port on, every attempt is kept as the probe's last result.
            Ok(probe) => deps.push(Dependency::new(
                p.name.clone(),
                match results {
                    Some(set) => set.recording(&p.name, probe),
                    None => probe,
                },
            )),
            // Checked when the config was loaded; an environment variable may have gone since.
            Err(e) => {
                tracing::error!("{}: {e}", p.pos);
                return Err(PhaseError::Config);
            }
        }
    }
    if !deps.is_empty() {
        // amqps (lapin) builds its TLS client on the process-wide provider.
        gantry_probes::install_crypto_provider();
    }
    wait_for(deps, deadline, signals).await
}

/// Probes from `--wait URL` options, for a mode that waits before it starts anything (e.g. the
/// flags-only mode). Errors name the URL with its password hidden.
pub fn dependencies_from_urls(
    urls: &[String],
    attempt_timeout: Duration,
) -> Result<Vec<Dependency>, SpecError> {
    gantry_probes::install_crypto_provider();
    urls.iter()
        .map(|url| {
            let mut target = gantry_probes::parse_url(url)?;
            target.timeout = attempt_timeout;
            Ok(Dependency::from_probe(target.into_probe()?))
        })
        .collect()
}

/// Waits until every dependency is ready, with signals from the supervisor's signal loop.
/// `Err`: the deadline passed, or SIGTERM/SIGINT arrived.
pub async fn wait_for(
    deps: Vec<Dependency>,
    deadline: Option<Duration>,
    signals: &mut UnboundedReceiver<i32>,
) -> Result<(), PhaseError> {
    if deps.is_empty() {
        return Ok(());
    }
    let mut stopped_by = 0;
    let cancel = async {
        while let Some(sig) = signals.recv().await {
            if sig == libc::SIGTERM || sig == libc::SIGINT {
                stopped_by = sig;
                return;
            }
        }
        // The signal loop is gone; keep waiting on the probes alone.
        std::future::pending::<()>().await;
    };
    let options = WaitOptions {
        deadline,
        ..WaitOptions::default()
    };
    let outcome = wait_until_ready(deps, &options, cancel).await;
    match outcome {
        Ok(summary) => {
            tracing::info!(
                "probe: all {} ready after {}",
                summary.ready.len(),
                gantry_probes::fmt_duration(summary.elapsed)
            );
            Ok(())
        }
        Err(e @ WaitError::Deadline { .. }) => {
            tracing::error!("probe: {e}; nothing was started");
            Err(PhaseError::ProbeTimeout)
        }
        Err(WaitError::Cancelled { .. }) => {
            tracing::info!(
                "probe: stopped by {} while waiting; nothing was started",
                crate::signals::Name(stopped_by)
            );
            Err(PhaseError::Signal(stopped_by))
        }
    }
}
