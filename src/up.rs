//! `gantry up` and `gantry check`: the full orchestrator over a configuration directory.
//!
//! This module sequences the phases — render, boot, probe, run, shutdown — over the plan that
//! `config` built. It owns no process logic of its own: each phase is run by the module that owns it.

use std::path::PathBuf;

use tokio::time::Instant;

use crate::config::{self, Plan};
use crate::exit::{self, PhaseError};
use crate::runtime::Options;
use crate::supervisor::{self, Cause, JobDef, Kind, RunOptions, Supervisor};

/// Arguments of `gantry up`.
#[derive(Debug, Clone, clap::Args)]
pub struct UpArgs {
    /// Directory with the *.hcl configuration (read recursively, in lexical order).
    #[arg(short = 'c', long = "config-dir", env = "GANTRY_CONFIG_DIR", default_value = config::DEFAULT_CONFIG_DIR)]
    pub config_dir: PathBuf,
    /// Stay up after every job has ended, until SIGTERM or SIGINT (mittnite's `-k`).
    #[arg(short = 'k', long)]
    pub keep_running: bool,
    /// Give up waiting for `wait = true` probes after this long and exit 75 (default: no limit).
    #[arg(long, value_name = "DURATION", value_parser = config::parse_duration)]
    pub wait_timeout: Option<std::time::Duration>,
    #[command(flatten)]
    pub api: crate::api::ApiArgs,
}

/// Arguments of `gantry check`.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// Directory with the *.hcl configuration.
    #[arg(short = 'c', long = "config-dir", env = "GANTRY_CONFIG_DIR", default_value = config::DEFAULT_CONFIG_DIR)]
    pub config_dir: PathBuf,
}

/// Loads and validates; prints every error on failure.
pub fn load(dir: &std::path::Path) -> Result<Plan, PhaseError> {
    let plan = match config::load(dir) {
        Ok(plan) => plan,
        Err(errors) => {
            exit::print_stderr(&format!("gantry: {errors}"));
            return Err(PhaseError::Config);
        }
    };
    if !plan.pending.is_empty() {
        let mut text =
            String::from("gantry: this build cannot run every block of the configuration yet:\n");
        for p in &plan.pending {
            text.push_str(&format!(
                "  {}: {}: {} blocks are recognised but not supported yet\n",
                p.pos, p.title, p.kind
            ));
        }
        exit::print_stderr(&text);
        return Err(PhaseError::Config);
    }
    Ok(plan)
}

/// `gantry check`: validate and print the plan.
pub fn check(args: &CheckArgs) -> i32 {
    match load(&args.config_dir) {
        Ok(plan) => {
            if let Err(e) = crate::render::check_templates(&plan.files) {
                return e.code();
            }
            let text = format!(
                "configuration in {} is valid\n{}",
                args.config_dir.display(),
                config::describe_plan(&plan)
            );
            exit::print_stdout(&text, 0)
        }
        Err(e) => e.code(),
    }
}

/// `gantry up`: run every phase.
pub fn up(args: &UpArgs) -> i32 {
    let plan = match load(&args.config_dir) {
        Ok(plan) => plan,
        Err(e) => return e.code(),
    };
    // Phase 1, render: before the runtime starts, so a failed render stops gantry before any boot job.
    if let Err(e) = crate::render::render_phase(&plan.files) {
        return e.code();
    }
    let keep_running = args.keep_running;
    let wait_timeout = args.wait_timeout;
    let api_args = args.api.clone();
    crate::runtime::run(
        Options::supervising(true, false),
        move |ctx, stops| async move {
            let grace = plan
                .jobs
                .iter()
                .map(|j| j.stop.total())
                .chain(plan.boot.iter().map(|b| b.stop.total()))
                .max()
                .unwrap_or(config::model::DEFAULT_STOP_TIMEOUT);
            let defs = plan
                .boot
                .iter()
                .map(JobDef::boot)
                .chain(plan.jobs.iter().map(|j| crate::lazy::job_def(&plan, j)))
                .collect();
            let mut supervisor = Supervisor::over(&ctx, defs, stops);
            // The API and status port (off unless asked for), from the boot phase on; dropping
            // `_servers` stops them and removes the socket and pidfile.
            let (_servers, api) =
                match crate::api::start_for_up(&api_args, &plan, &ctx, supervisor.handle()).await {
                    Ok(started) => started,
                    Err(e) => {
                        tracing::error!("{e}");
                        return exit::CONFIG;
                    }
                };

            // Phases 2 and 3, boot and probe, in the plan's order.
            if plan.order == config::Order::ProbesFirst {
                // mittnite's order: every probe ready before any boot job starts.
                crate::api::set_phase(&api, crate::api::Phase::Probe);
                let probes = plan.phase_probes();
                if let Err(e) = crate::probe_phase::wait_for_probes(
                    &probes,
                    &ctx.reaper,
                    wait_timeout,
                    supervisor.stop_requests(),
                    api.as_deref().map(|s| &s.probes),
                )
                .await
                {
                    supervisor::reap_descendants(&ctx.reaper, Instant::now() + grace).await;
                    return e.code();
                }
                crate::api::set_phase(&api, crate::api::Phase::Boot);
                if let Err(e) = boot_phase(&plan, &ctx, &mut supervisor, wait_timeout, grace).await
                {
                    return e.code();
                }
            } else {
                // gantry's order: boot jobs first (those with `waitFor` once their probes are
                // ready), then the remaining `wait = true` probes.
                let ready =
                    match boot_phase(&plan, &ctx, &mut supervisor, wait_timeout, grace).await {
                        Ok(ready) => ready,
                        Err(e) => return e.code(),
                    };
                crate::api::set_phase(&api, crate::api::Phase::Probe);
                let probes: Vec<_> = plan
                    .phase_probes()
                    .into_iter()
                    .filter(|p| !ready.contains(&p.name))
                    .collect();
                if let Err(e) = crate::probe_phase::wait_for_probes(
                    &probes,
                    &ctx.reaper,
                    wait_timeout,
                    supervisor.stop_requests(),
                    api.as_deref().map(|s| &s.probes),
                )
                .await
                {
                    supervisor::reap_descendants(&ctx.reaper, Instant::now() + grace).await;
                    return e.code();
                }
            }

            // Phase 4, run. Listeners first, so that an early client waits instead of being refused.
            if !plan.listeners.is_empty() {
                let served = match crate::lazy::open(&plan).await {
                    Ok(opened) => crate::lazy::serve(opened, &supervisor.handle()),
                    Err(e) => Err(e),
                };
                match served {
                    Ok(gates) => crate::api::set_lazy(&api, &gates),
                    Err(e) => {
                        tracing::error!("{e}");
                        supervisor::reap_descendants(&ctx.reaper, Instant::now() + grace).await;
                        return exit::CONFIG;
                    }
                }
            }
            let opts = RunOptions {
                keep_running,
                stop_all_when_one_ends: false,
            };
            crate::api::set_phase(&api, crate::api::Phase::Run);
            let report = supervisor.run_phase(Kind::Job, opts).await;
            crate::api::set_phase(&api, crate::api::Phase::Shutdown);

            // Phase 5, shutdown: what the jobs left behind.
            let deadline = report.shutdown_at.unwrap_or_else(Instant::now) + grace;
            supervisor::reap_descendants(&ctx.reaper, deadline).await;
            crate::readiness::notify::remove_socket_dir();
            let code = report.exit_code();
            tracing::info!("exiting with code {code}");
            code
        },
    )
}

/// The boot phase: every boot job to completion, in parallel; a boot job with `waitFor` starts once
/// its probes are ready (polled meanwhile by `probe_phase::release_boot_jobs`). Returns the probes
/// seen ready on the way. On `Err` every descendant has been reaped and gantry must exit.
async fn boot_phase(
    plan: &Plan,
    ctx: &crate::runtime::Ctx,
    supervisor: &mut Supervisor,
    wait_timeout: Option<std::time::Duration>,
    grace: std::time::Duration,
) -> Result<Vec<String>, PhaseError> {
    if plan.boot.is_empty() {
        return Ok(Vec::new());
    }
    tracing::info!(phase = "boot", "running {} boot job(s)", plan.boot.len());
    // In mittnite's order every probe is ready by now: nothing is held.
    let held: Vec<String> = match plan.order {
        config::Order::ProbesFirst => Vec::new(),
        config::Order::BootFirst => plan
            .boot
            .iter()
            .filter(|b| !b.wait_for.is_empty())
            .map(|b| b.name.clone())
            .collect(),
    };
    let (release, released) = tokio::sync::mpsc::unbounded_channel();
    let gated: &[config::BootJob] = if held.is_empty() { &[] } else { &plan.boot };
    let mut gate = Box::pin(crate::probe_phase::release_boot_jobs(
        gated,
        &plan.probes,
        &ctx.reaper,
        wait_timeout,
        release,
    ));
    let phase = supervisor.run_phase_held(Kind::Boot, RunOptions::default(), &held, released);
    tokio::pin!(phase);
    let mut outcome: Option<Result<Vec<String>, PhaseError>> = None;
    let report = loop {
        tokio::select! {
            report = &mut phase => break report,
            done = &mut gate, if outcome.is_none() => outcome = Some(done),
        }
    };
    let code = match (&report.cause, &report.failure, &outcome) {
        (_, Some((name, status)), _) => {
            tracing::error!(
                phase = "boot",
                kind = "boot",
                job = %name,
                "boot job failed ({status}); not starting any job"
            );
            Some(PhaseError::BootFailed)
        }
        (Cause::Signal(sig), None, _) => Some(PhaseError::Signal(*sig)),
        (Cause::Aborted, None, Some(Err(e))) => Some(*e),
        (Cause::Aborted, None, _) => Some(PhaseError::ProbeTimeout),
        _ => None,
    };
    if let Some(e) = code {
        let deadline = report.shutdown_at.unwrap_or_else(Instant::now) + grace;
        supervisor::reap_descendants(&ctx.reaper, deadline).await;
        return Err(e);
    }
    Ok(match outcome {
        Some(Ok(ready)) => ready,
        _ => Vec::new(),
    })
}
