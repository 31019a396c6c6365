//! What happens after a change: the reload sequence a `watch` block ([`WatchSpec`], read by
//! `config::watch`) asks for ([`reload`]): splay, validate, pre-command, signal or restart, post-command.
//!
//! Owns the order of those steps, their time limit and their error reporting. It must not own, spawn or
//! signal the job's process: the supervisor does that, behind [`ReloadHost::deliver`]. Short commands
//! (validate, pre, post) are also run through the host ([`ReloadHost::run_command`]), because under
//! gantry's process-wide reaper a `waitpid` of our own would race it for the exit status (under `up`,
//! [`crate::supervisor::reload::JobHost`] runs them with [`crate::reaper::run_captured`]).
//!
//! Each command may run for [`WatchSpec::command_timeout`] (`timeout` in the `watch` block, default
//! [`DEFAULT_COMMAND_TIMEOUT`]); past it, its future is dropped, which makes the host kill it (its
//! whole process group, under `up`). A validator that hangs therefore costs one reload, logged once,
//! and the watch carries on with the next change.

use std::future::Future;
use std::time::Duration;

use super::engine::{Change, WatchOptions, DEFAULT_FALLBACK_POLL};
pub use crate::config::watch::{
    HelperCommand, SignalTarget, WatchSpec, DEFAULT_COMMAND_TIMEOUT, DEFAULT_DEBOUNCE,
};
use crate::exit::ExitStatus;
use crate::signals;

impl WatchSpec {
    /// The detection options for [`super::Watcher::start`].
    pub fn options(&self) -> WatchOptions {
        WatchOptions {
            debounce: self.debounce,
            poll: self.poll,
            fallback_poll: DEFAULT_FALLBACK_POLL,
        }
    }

    /// What the supervisor is asked to do for one change.
    pub fn action(&self) -> Action {
        if self.restart {
            Action::Restart {
                stop_signal: self.signal,
            }
        } else {
            Action::Signal {
                signal: self.signal,
                target: self.target,
            }
        }
    }
}

/// What the supervisor must do to the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send `signal` to the job (its group or its main process).
    Signal { signal: i32, target: SignalTarget },
    /// Stop gracefully with `stop_signal` (then grace, then SIGKILL) and start again at once; a restart
    /// asked for by a watch is not a failure and must not count against the restart policy.
    Restart { stop_signal: i32 },
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Signal { signal, target } => {
                let who = match target {
                    SignalTarget::ProcessGroup => "process group",
                    SignalTarget::MainProcess => "main process",
                };
                write!(f, "send {} to the {who}", signals::Name(*signal))
            }
            Action::Restart { stop_signal } => {
                write!(f, "restart (stop with {})", signals::Name(*stop_signal))
            }
        }
    }
}

/// How a short command ended.
#[derive(Debug, Clone)]
pub struct CommandOutput {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Why a reload did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("validate command `{command}` failed ({status}); nothing was sent: {stderr}")]
    ValidateFailed {
        command: String,
        status: ExitStatus,
        stderr: String,
    },
    #[error(
        "validate command `{command}` did not finish within {timeout:?} and was killed; nothing was sent"
    )]
    ValidateTimedOut { command: String, timeout: Duration },
    #[error("validate command `{command}` could not be run; nothing was sent: {source}")]
    ValidateSpawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("could not {action}: {reason}")]
    Deliver { action: Action, reason: String },
}

/// The supervisor's side of a reload.
pub trait ReloadHost {
    /// Performs `action` on the job. `Err` carries a reason for the log.
    fn deliver(&mut self, action: Action) -> impl Future<Output = Result<(), String>> + Send;

    /// Runs a short command to completion, capturing its output, through whatever reaps the host's
    /// children (see the module docs). The future is dropped when the command's time limit passes:
    /// the host must then stop the command (and what it started) rather than let it run on.
    fn run_command(
        &mut self,
        command: &HelperCommand,
    ) -> impl Future<Output = std::io::Result<CommandOutput>> + Send;
}

/// A delay drawn uniformly from `[0, max]`.
pub fn splay_delay(max: Duration, rng: &mut fastrand::Rng) -> Duration {
    let nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(rng.u64(0..=nanos))
}

/// Runs the reload sequence for one change: splay delay, validate (must exit 0, else nothing is sent and a
/// loud error names the exit status and stderr), pre-command, the action, post-command. A failing pre- or
/// post-command is logged and does not stop the reload (mittnite's behaviour; `validate` is the gate).
/// Returns the action that was delivered.
pub async fn reload<H: ReloadHost>(
    spec: &WatchSpec,
    change: &Change,
    host: &mut H,
) -> Result<Action, ReloadError> {
    if let Some(max) = spec.splay.filter(|d| !d.is_zero()) {
        let delay = splay_delay(max, &mut fastrand::Rng::new());
        tracing::info!(watch = %spec.path, ?delay, "splay before reload");
        tokio::time::sleep(delay).await;
    }
    if let Some(validate) = &spec.validate {
        let limit = spec.command_timeout;
        match tokio::time::timeout(limit, host.run_command(validate)).await {
            Ok(Ok(out)) if out.status.success() => {
                tracing::debug!(watch = %spec.path, command = %validate, "validate passed");
            }
            Ok(Ok(out)) => {
                let err = ReloadError::ValidateFailed {
                    command: validate.to_string(),
                    status: out.status,
                    stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
                };
                tracing::error!(watch = %spec.path, changed = %change, "{err}");
                return Err(err);
            }
            Ok(Err(source)) => {
                let err = ReloadError::ValidateSpawn {
                    command: validate.to_string(),
                    source,
                };
                tracing::error!(watch = %spec.path, changed = %change, "{err}");
                return Err(err);
            }
            Err(_elapsed) => {
                let err = ReloadError::ValidateTimedOut {
                    command: validate.to_string(),
                    timeout: limit,
                };
                tracing::error!(watch = %spec.path, changed = %change, "{err}");
                return Err(err);
            }
        }
    }
    if let Some(pre) = &spec.pre_command {
        run_hook(host, "preCommand", pre, spec).await;
    }
    let action = spec.action();
    tracing::info!(watch = %spec.path, changed = %change, "{action}");
    if let Err(reason) = host.deliver(action).await {
        let err = ReloadError::Deliver { action, reason };
        tracing::error!(watch = %spec.path, "{err}");
        return Err(err);
    }
    if let Some(post) = &spec.post_command {
        run_hook(host, "postCommand", post, spec).await;
    }
    Ok(action)
}

async fn run_hook<H: ReloadHost>(
    host: &mut H,
    which: &str,
    command: &HelperCommand,
    spec: &WatchSpec,
) {
    let limit = spec.command_timeout;
    match tokio::time::timeout(limit, host.run_command(command)).await {
        Ok(Ok(out)) if out.status.success() => {
            tracing::debug!(watch = %spec.path, which, command = %command, "ran");
        }
        Ok(Ok(out)) => tracing::warn!(
            watch = %spec.path,
            which,
            command = %command,
            status = %out.status,
            stderr = %String::from_utf8_lossy(&out.stderr).trim(),
            "command failed; reloading anyway"
        ),
        Ok(Err(err)) => tracing::warn!(
            watch = %spec.path,
            which,
            command = %command,
            %err,
            "command could not be run; reloading anyway"
        ),
        Err(_elapsed) => tracing::warn!(
            watch = %spec.path,
            which,
            command = %command,
            "command did not finish within {limit:?} and was killed; reloading anyway"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// Records every delivered action into the same file the test's commands append to, so the order of
    /// commands and actions is observable in one place.
    struct Recorder {
        log: PathBuf,
        delivered: Vec<Action>,
    }

    impl ReloadHost for Recorder {
        fn deliver(&mut self, action: Action) -> impl Future<Output = Result<(), String>> + Send {
            self.delivered.push(action);
            let res = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(&self.log)
                .and_then(|mut f| std::io::Write::write_all(&mut f, b"action\n"))
                .map_err(|e| e.to_string());
            async move { res }
        }

        /// Nothing else reaps in these tests, so `std::process` may wait for its own child.
        fn run_command(
            &mut self,
            command: &HelperCommand,
        ) -> impl Future<Output = std::io::Result<CommandOutput>> + Send {
            let command = command.clone();
            async move {
                let joined = tokio::task::spawn_blocking(move || {
                    std::process::Command::new(&command.command)
                        .args(&command.args)
                        .stdin(std::process::Stdio::null())
                        .output()
                })
                .await;
                let out = joined.map_err(std::io::Error::other)??;
                Ok(CommandOutput {
                    status: crate::exit::ExitStatus::from_std(out.status),
                    stdout: out.stdout,
                    stderr: out.stderr,
                })
            }
        }
    }

    fn sh(script: &str) -> HelperCommand {
        HelperCommand {
            command: "sh".into(),
            args: vec!["-c".into(), script.into()],
        }
    }

    fn change() -> Change {
        Change {
            paths: vec![PathBuf::from("/etc/app.conf")],
        }
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    #[test]
    fn validate_pre_action_post_run_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let l = log.display();
        let mut spec = WatchSpec::new("/etc/app.conf", libc::SIGUSR2);
        spec.validate = Some(sh(&format!("echo validate >> {l}")));
        spec.pre_command = Some(sh(&format!("echo pre >> {l}")));
        spec.post_command = Some(sh(&format!("echo post >> {l}")));
        let mut host = Recorder {
            log: log.clone(),
            delivered: vec![],
        };
        let action = rt().block_on(reload(&spec, &change(), &mut host)).unwrap();
        assert_eq!(
            action,
            Action::Signal {
                signal: libc::SIGUSR2,
                target: SignalTarget::ProcessGroup
            }
        );
        let lines = std::fs::read_to_string(&log).unwrap();
        assert_eq!(lines, "validate\npre\naction\npost\n");
    }

    #[test]
    fn failing_validate_sends_nothing_and_reports_status_and_stderr() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let mut spec = WatchSpec::new("/etc/app.conf", libc::SIGHUP);
        spec.validate = Some(sh("echo 'syntax error in line 3' >&2; exit 3"));
        spec.pre_command = Some(sh(&format!("echo pre >> {}", log.display())));
        let mut host = Recorder {
            log: log.clone(),
            delivered: vec![],
        };
        let err = rt()
            .block_on(reload(&spec, &change(), &mut host))
            .unwrap_err();
        assert!(host.delivered.is_empty());
        assert!(!log.exists(), "the pre-command must not run either");
        let text = err.to_string();
        assert!(text.contains("exit code 3"), "{text}");
        assert!(text.contains("syntax error in line 3"), "{text}");
    }

    #[test]
    fn missing_validate_command_sends_nothing() {
        let mut spec = WatchSpec::new("/x", libc::SIGHUP);
        spec.validate = Some(HelperCommand {
            command: "/nonexistent/gantry-validate".into(),
            args: vec![],
        });
        let mut host = Recorder {
            log: PathBuf::from("/nonexistent/log"),
            delivered: vec![],
        };
        let err = rt()
            .block_on(reload(&spec, &change(), &mut host))
            .unwrap_err();
        assert!(matches!(err, ReloadError::ValidateSpawn { .. }));
        assert!(host.delivered.is_empty());
    }

    #[test]
    fn failing_pre_command_still_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = WatchSpec::new("/x", libc::SIGHUP);
        spec.pre_command = Some(sh("exit 1"));
        let mut host = Recorder {
            log: dir.path().join("log"),
            delivered: vec![],
        };
        rt().block_on(reload(&spec, &change(), &mut host)).unwrap();
        assert_eq!(host.delivered.len(), 1);
    }

    #[test]
    fn restart_asks_for_a_restart_with_the_stop_signal() {
        let mut spec = WatchSpec::new("/x", libc::SIGTERM);
        spec.restart = true;
        assert_eq!(
            spec.action(),
            Action::Restart {
                stop_signal: libc::SIGTERM
            }
        );
        spec.restart = false;
        spec.target = SignalTarget::MainProcess;
        assert_eq!(
            spec.action(),
            Action::Signal {
                signal: libc::SIGTERM,
                target: SignalTarget::MainProcess
            }
        );
    }

    #[test]
    fn splay_stays_within_bounds_and_spreads() {
        let mut rng = fastrand::Rng::with_seed(7);
        let max = Duration::from_millis(500);
        let draws: Vec<Duration> = (0..2000).map(|_| splay_delay(max, &mut rng)).collect();
        assert!(draws.iter().all(|d| *d <= max));
        assert!(draws.iter().any(|d| *d < max / 10));
        assert!(draws.iter().any(|d| *d > max * 9 / 10));
        assert_eq!(splay_delay(Duration::ZERO, &mut rng), Duration::ZERO);
    }

    #[test]
    fn splay_delays_the_reload_but_not_beyond_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = WatchSpec::new("/x", libc::SIGHUP);
        spec.splay = Some(Duration::from_millis(200));
        let mut host = Recorder {
            log: dir.path().join("log"),
            delivered: vec![],
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        let elapsed = runtime.block_on(async {
            let start = tokio::time::Instant::now();
            reload(&spec, &change(), &mut host).await.unwrap();
            start.elapsed()
        });
        // Paused clock: the elapsed time is exactly the drawn delay, no scheduling noise.
        assert!(elapsed > Duration::ZERO, "no delay at all: splay ignored");
        assert!(elapsed <= Duration::from_millis(200), "{elapsed:?}");
        assert_eq!(host.delivered.len(), 1);
    }
}
