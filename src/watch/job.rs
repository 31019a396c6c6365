//! Running a watch under gantry's reaper: watch commands through [`Reaper::spawn`], and the task that
//! drives one watch against any [`ReloadHost`].
//!
//! It must not spawn processes except through the reaper (a `waitpid` of its own would race the
//! reaper for exit statuses) and knows nothing of jobs: the supervisor's `reload` module is the host
//! that turns actions into requests to a job's actor.

use super::reload::{CommandOutput, CommandSpec, ReloadHost, WatchSpec};
use super::{WatchError, Watcher};
use crate::exit::ExitStatus;
use crate::reaper::Reaper;

/// Runs `command` to completion as a child registered with `reaper`, capturing stdout and stderr
/// ([`crate::reaper::run_captured`]).
pub async fn run_with_reaper(
    reaper: &Reaper,
    command: &CommandSpec,
) -> std::io::Result<CommandOutput> {
    let spec = crate::config::CommandSpec::new(command.command.clone(), command.args.clone());
    let out = crate::reaper::run_captured(reaper, &spec).await?;
    Ok(CommandOutput {
        status: to_std(out.status),
        stdout: out.stdout,
        stderr: out.stderr,
    })
}

/// gantry's exit status as the `std` type `CommandOutput` carries (a raw wait status underneath).
fn to_std(status: ExitStatus) -> std::process::ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    match status {
        ExitStatus::Code(c) => std::process::ExitStatus::from_raw((c & 0xff) << 8),
        ExitStatus::Signaled(s) => std::process::ExitStatus::from_raw(s & 0x7f),
    }
}

/// Starts watching `spec` and spawns the task that runs the reload sequence against `host` on every
/// change (on the current tokio runtime, for as long as it runs).
pub fn spawn_watch<H: ReloadHost + Send + 'static>(
    spec: WatchSpec,
    mut host: H,
) -> Result<tokio::task::JoinHandle<()>, WatchError> {
    let watcher = Watcher::start(&[spec.path.as_str()], spec.options())?;
    Ok(tokio::spawn(async move {
        while let Some(change) = watcher.changed().await {
            // Failures (validate, delivery) are logged by `reload`; the watch carries on.
            let _ = super::reload(&spec, &change, &mut host).await;
        }
    }))
}
