//! The probe phase of `gantry up`: wait until every `wait = true` probe is ready; and, while the
//! boot phase runs, the probes each boot job's `waitFor` names ([`release_boot_jobs`]).
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
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::task::JoinSet;

use crate::config::model::CommandSpec;
use crate::config::probe::ProbeBlock;
use crate::config::BootJob;
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

/// The probe for `target`, exec probes run through `reaper` (a job's `ready` and `alive` checks).
pub fn build_target(target: &Target, reaper: &Arc<Reaper>) -> Result<BoxProbe, SpecError> {
    let launcher: Arc<dyn Launcher> = Arc::new(ReaperLauncher(reaper.clone()));
    match target.clone().backend {
        Backend::Exec(t) => Ok(Box::new(ExecProbe::with_launcher(
            t,
            target.timeout,
            launcher,
        ))),
        _ => target.clone().into_probe(),
    }
}

/// The probe for `p`, exec probes run through `reaper` (for the API's `/status` and `/readyz`).
pub fn build_with_reaper(p: &ProbeBlock, reaper: &Arc<Reaper>) -> Result<BoxProbe, SpecError> {
    let launcher: Arc<dyn Launcher> = Arc::new(ReaperLauncher(reaper.clone()));
    build(p, &launcher)
}

/// Waits for `probes` (the plan's [`crate::config::Plan::phase_probes`], less any already seen
/// ready), keeping each attempt's result in `results` when given. `Err` if gantry must exit
/// instead of going on.
pub async fn wait_for_probes(
    probes: &[&ProbeBlock],
    reaper: &Arc<Reaper>,
    deadline: Option<Duration>,
    signals: &mut UnboundedReceiver<i32>,
    results: Option<&crate::api::probes::ProbeSet>,
) -> Result<(), PhaseError> {
    let launcher: Arc<dyn Launcher> = Arc::new(ReaperLauncher(reaper.clone()));
    let mut deps = Vec::new();
    for p in probes {
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
                tracing::error!(phase = "probe", probe = %p.name, "{}: {e}", p.pos);
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

/// While the boot phase runs: polls every probe a boot job in `boot` names in `waitFor`, each
/// once however many boot jobs name it, and sends a boot job's name on `release` as soon as all
/// of its probes are ready. Returns the names of the probes it saw ready (the probe phase need not
/// wait for them again), or [`PhaseError::ProbeTimeout`] when one was not ready within `deadline`
/// — `release` is dropped either way, which tells the boot phase that nothing more will be
/// released. Cancelled by being dropped (the boot phase ended first: a boot job failed, or
/// SIGTERM/SIGINT).
pub async fn release_boot_jobs(
    boot: &[BootJob],
    probes: &[ProbeBlock],
    reaper: &Arc<Reaper>,
    deadline: Option<Duration>,
    release: UnboundedSender<String>,
) -> Result<Vec<String>, PhaseError> {
    let launcher: Arc<dyn Launcher> = Arc::new(ReaperLauncher(reaper.clone()));
    let mut names: Vec<&str> = Vec::new();
    for b in boot {
        for (name, _) in &b.wait_for {
            if !names.contains(&name.as_str()) {
                names.push(name);
            }
        }
    }
    if !names.is_empty() {
        gantry_probes::install_crypto_provider();
    }
    let options = WaitOptions {
        deadline,
        ..WaitOptions::default()
    };
    let mut waits = JoinSet::new();
    for name in &names {
        // Every name was checked against the probes when the configuration was loaded.
        let Some(p) = probes.iter().find(|p| p.name == *name) else {
            tracing::error!("boot: waitFor names no probe {name:?}");
            return Err(PhaseError::Config);
        };
        let probe = match build(p, &launcher) {
            Ok(probe) => probe,
            Err(e) => {
                tracing::error!("{}: {e}", p.pos);
                return Err(PhaseError::Config);
            }
        };
        let dep = Dependency::new(p.name.clone(), probe);
        let (options, name) = (options.clone(), p.name.clone());
        waits.spawn(async move {
            let outcome = wait_until_ready(vec![dep], &options, std::future::pending()).await;
            (name, outcome)
        });
    }
    let mut ready: Vec<String> = Vec::new();
    let mut pending: Vec<&BootJob> = boot.iter().filter(|b| !b.wait_for.is_empty()).collect();
    while let Some(joined) = waits.join_next().await {
        let (name, outcome) = match joined {
            Ok(done) => done,
            Err(e) => {
                tracing::error!("probe wait ended unexpectedly: {e}");
                return Err(PhaseError::ProbeTimeout);
            }
        };
        if let Err(e) = outcome {
            let held: Vec<&str> = pending.iter().map(|b| b.name.as_str()).collect();
            tracing::error!("probe: {e}; boot job(s) {} not started", held.join(", "));
            return Err(PhaseError::ProbeTimeout);
        }
        ready.push(name);
        pending.retain(|b| {
            let all = b.wait_for.iter().all(|(n, _)| ready.contains(n));
            if all {
                tracing::info!(
                    "boot job {:?}: probe(s) {} ready; starting it",
                    b.name,
                    b.wait_for
                        .iter()
                        .map(|(n, _)| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                let _ = release.send(b.name.clone());
            }
            !all
        });
    }
    Ok(ready)
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
                phase = "probe",
                "all {} ready after {}",
                summary.ready.len(),
                gantry_probes::fmt_duration(summary.elapsed)
            );
            Ok(())
        }
        Err(e @ WaitError::Deadline { .. }) => {
            tracing::error!(phase = "probe", "{e}; nothing was started");
            Err(PhaseError::ProbeTimeout)
        }
        Err(WaitError::Cancelled { .. }) => {
            tracing::info!(
                phase = "probe",
                "stopped by {} while waiting; nothing was started",
                crate::signals::Name(stopped_by)
            );
            Err(PhaseError::Signal(stopped_by))
        }
    }
}
