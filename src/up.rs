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
    /// Stay up after every job has ended, until SIGTERM or SIGINT.
    #[arg(long)]
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

            // Phase 2, boot: every boot job to completion, in parallel.
            if !plan.boot.is_empty() {
                tracing::info!("boot: running {} boot job(s)", plan.boot.len());
                let report = supervisor
                    .run_phase(Kind::Boot, RunOptions::default())
                    .await;
                let code = match (&report.cause, &report.failure) {
                    (_, Some((name, status))) => {
                        tracing::error!(
                            "boot job {name:?} failed ({status}); not starting any job"
                        );
                        Some(PhaseError::BootFailed)
                    }
                    (Cause::Signal(sig), None) => Some(PhaseError::Signal(*sig)),
                    _ => None,
                };
                if let Some(e) = code {
                    let deadline = report.shutdown_at.unwrap_or_else(Instant::now) + grace;
                    supervisor::reap_descendants(&ctx.reaper, deadline).await;
                    return e.code();
                }
            }

            // Phase 3, probe: wait until every `wait = true` probe is ready.
            crate::api::set_phase(&api, crate::api::Phase::Probe);
            if let Err(e) = crate::probe_phase::wait_for_probes(
                &plan.probes,
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
            let code = report.exit_code();
            tracing::info!("exiting with code {code}");
            code
        },
    )
}
