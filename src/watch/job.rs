//! Running a watch under gantry's reaper: watch commands through [`Reaper::spawn`], and the task that
//! drives one watch against any [`ReloadHost`].
//!
//! It must not spawn processes except through the reaper (a `waitpid` of its own would race the
//! reaper for exit statuses) and knows nothing of jobs: the supervisor's `reload` module is the host
//! that turns actions into requests to a job's actor.

use super::reload::{CommandOutput, HelperCommand, ReloadHost, WatchSpec};
use super::{WatchError, Watcher};
use crate::reaper::Reaper;

/// Runs `command` to completion as a child registered with `reaper`, capturing stdout and stderr
/// ([`crate::reaper::run_captured`]).
pub async fn run_with_reaper(
    reaper: &Reaper,
    command: &HelperCommand,
) -> std::io::Result<CommandOutput> {
    let spec = crate::config::CommandSpec::new(command.command.clone(), command.args.clone());
    let out = crate::reaper::run_captured(reaper, &spec).await?;
    Ok(CommandOutput {
        status: out.status,
        stdout: out.stdout,
        stderr: out.stderr,
    })
}

/// Starts watching `spec` and spawns the task that runs the reload sequence against `host` on every
/// change (on the current tokio runtime, for as long as it runs). Each reload is counted under
/// `job` ([`super::stats`]).
pub fn spawn_watch<H: ReloadHost + Send + 'static>(
    job: &str,
    spec: WatchSpec,
    mut host: H,
) -> Result<tokio::task::JoinHandle<()>, WatchError> {
    let watcher = Watcher::start(&[spec.path.as_str()], spec.options())?;
    let job = job.to_string();
    super::stats::register(&job, &spec.path, spec.action());
    Ok(tokio::spawn(async move {
        while let Some(change) = watcher.changed().await {
            // Failures (validate, delivery) are logged by `reload`; the watch carries on.
            let outcome = super::reload(&spec, &change, &mut host).await;
            super::stats::record(&job, &spec.path, &outcome);
        }
    }))
}
