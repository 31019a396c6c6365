//! The glue between a job's watches and the supervisor: a [`ReloadHost`] that runs short commands through
//! gantry's single reaper and delivers actions to the job's actor by message, and the task that drives
//! one watch for one job.
//!
//! Owns nothing but that translation. It must not spawn processes except through [`Reaper::spawn`] (a
//! `waitpid` of its own would race the reaper for exit statuses) and must not touch the job's process:
//! only the actor does, on a [`Control`] message.

use std::sync::Arc;

use super::reload::{Action, CommandOutput, CommandSpec, ReloadHost, SignalTarget, WatchSpec};
use super::{WatchError, Watcher};
use crate::exit::ExitStatus;
use crate::reaper::Reaper;
use crate::supervisor::job::{Control, JobHandle};

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

/// A job's side of a reload: actions become [`Control`] messages, commands go through the reaper.
pub struct JobHost {
    pub job: JobHandle,
    pub reaper: Arc<Reaper>,
}

impl ReloadHost for JobHost {
    async fn deliver(&mut self, action: Action) -> Result<(), String> {
        match action {
            // `Control::Signal` goes where the job's forwarded signals go (its process group by
            // default in `up`).
            Action::Signal {
                signal,
                target: SignalTarget::ProcessGroup,
            } => {
                self.job.send(Control::Signal(signal));
                Ok(())
            }
            Action::Signal {
                signal,
                target: SignalTarget::MainProcess,
            } => {
                self.job.send(Control::SignalMain(signal));
                Ok(())
            }
            Action::Restart { stop_signal } => {
                self.job.send(Control::Restart(stop_signal));
                Ok(())
            }
        }
    }

    async fn run_command(&mut self, command: &CommandSpec) -> std::io::Result<CommandOutput> {
        run_with_reaper(&self.reaper, command).await
    }
}

/// Starts watching `spec` for job `job` and spawns the task that reloads it on every change (on the
/// current tokio runtime). The task lives as long as the runtime; once the job's actor has ended its
/// messages are ignored, so abort the task then.
pub fn spawn_watch(
    spec: WatchSpec,
    job: JobHandle,
    reaper: Arc<Reaper>,
) -> Result<tokio::task::JoinHandle<()>, WatchError> {
    let watcher = Watcher::start(&[spec.path.as_str()], spec.options())?;
    Ok(tokio::spawn(async move {
        let mut host = JobHost { job, reaper };
        while let Some(change) = watcher.changed().await {
            // Failures (validate, delivery) are logged by `reload`; the watch carries on.
            let _ = super::reload(&spec, &change, &mut host).await;
        }
    }))
}
