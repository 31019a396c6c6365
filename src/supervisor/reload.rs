//! A job's watches, seen from the supervisor: the [`ReloadHost`] that turns a watch's actions into
//! requests to the job's actor and runs its commands through gantry's single reaper.
//!
//! The watch module knows nothing of jobs or actors; this is the only place where the two meet, so
//! that `watch` never imports `supervisor`.

use std::sync::Arc;

use super::job::{JobHandle, Request};
use crate::reaper::Reaper;
use crate::watch::{
    Action, CommandOutput, HelperCommand, ReloadHost, SignalTarget, WatchError, WatchSpec,
};

/// A job's side of a reload: actions become [`Request`]s, commands go through the reaper.
pub struct JobHost {
    pub job: JobHandle,
    pub reaper: Arc<Reaper>,
}

impl ReloadHost for JobHost {
    async fn deliver(&mut self, action: Action) -> Result<(), String> {
        let request = match action {
            // A signal goes where the job's forwarded signals go (its process group by default).
            Action::Signal { signal, target } => Request::Signal {
                signal,
                main_only: target == SignalTarget::MainProcess,
            },
            // A job that has no process (stopped on request, backing off) is left as it is.
            Action::Restart { stop_signal } => Request::Restart {
                signal: Some(stop_signal),
                only_if_running: true,
            },
        };
        match self.job.request(request).await {
            Ok(_) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn run_command(&mut self, command: &HelperCommand) -> std::io::Result<CommandOutput> {
        crate::watch::job::run_with_reaper(&self.reaper, command).await
    }
}

/// Starts watching `spec` for the job behind `job` and spawns the task that reloads it on every
/// change (on the current runtime, for as long as it runs).
pub fn spawn_watch(
    spec: WatchSpec,
    job: JobHandle,
    reaper: Arc<Reaper>,
) -> Result<tokio::task::JoinHandle<()>, WatchError> {
    let name = job.name.clone();
    crate::watch::job::spawn_watch(&name, spec, JobHost { job, reaper })
}
