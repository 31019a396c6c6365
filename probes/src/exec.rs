//! `exec { command, args }`: ready when the command exits 0. Its last line of stderr (or stdout) is
//! the reason when it does not. The command is killed if the attempt times out.
//!
//! Arguments may carry credentials: the description names only the program, and every argument read
//! from the environment (`"ENV:TOKEN"`) is replaced by `***` in the reason, since a failing command
//! often prints what it was given (`sh: 1: <token>: not found`, `invalid token <token>`).
//!
//! Starting the command is a [`Launcher`]'s job. The default, [`TokioLauncher`], uses
//! `tokio::process`; a program that owns reaping for the whole process (gantry's `up`, where one
//! `waitpid(-1)` loop collects every child) supplies its own so the exit status is not lost to a
//! race between two waiters.

use std::future::Future;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use crate::target::ExecTarget;
use crate::{Probe, ProbeError, ProbeFuture, Secret};

/// How a finished command ended.
#[derive(Debug, Clone)]
pub struct Finished {
    pub success: bool,
    /// `exit status: 3`, `killed by SIGTERM` — for the reason text.
    pub status: String,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

pub type LaunchFuture<'a> = Pin<Box<dyn Future<Output = std::io::Result<Finished>> + Send + 'a>>;

/// Runs a command to completion for an exec probe. Dropping the future must kill the command.
pub trait Launcher: Send + Sync {
    fn run<'a>(&'a self, program: &'a str, args: &'a [String]) -> LaunchFuture<'a>;
}

/// [`Launcher`] on `tokio::process`, stdin from /dev/null, output captured.
pub struct TokioLauncher;

impl Launcher for TokioLauncher {
    fn run<'a>(&'a self, program: &'a str, args: &'a [String]) -> LaunchFuture<'a> {
        Box::pin(async move {
            let out = tokio::process::Command::new(program)
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                // A timed-out attempt drops this future; the command must not outlive it.
                .kill_on_drop(true)
                .output()
                .await?;
            Ok(Finished {
                success: out.status.success(),
                status: out.status.to_string(),
                stdout: out.stdout,
                stderr: out.stderr,
            })
        })
    }
}

pub struct ExecProbe {
    target: ExecTarget,
    timeout: Duration,
    launcher: Arc<dyn Launcher>,
}

impl ExecProbe {
    pub fn new(target: ExecTarget, timeout: Duration) -> ExecProbe {
        ExecProbe::with_launcher(target, timeout, Arc::new(TokioLauncher))
    }

    pub fn with_launcher(
        target: ExecTarget,
        timeout: Duration,
        launcher: Arc<dyn Launcher>,
    ) -> ExecProbe {
        ExecProbe {
            target,
            timeout,
            launcher,
        }
    }
}

/// The last non-empty line of a command's output, at most 300 characters. Secrets are replaced in
/// the whole output first, so that neither a secret spanning lines nor the cut to length can leave
/// part of one.
fn last_line(bytes: &[u8], secrets: &[&Secret]) -> Option<String> {
    Secret::scrub_all(&String::from_utf8_lossy(bytes), secrets)
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(|l| l.chars().take(300).collect())
}

impl Probe for ExecProbe {
    /// Only the program: arguments may carry credentials (`-p secret`).
    fn describe(&self) -> String {
        format!("exec {}", self.target.program)
    }

    fn attempt_timeout(&self) -> Duration {
        self.timeout
    }

    fn check(&self) -> ProbeFuture<'_> {
        Box::pin(async move {
            let secrets: Vec<&Secret> = self.target.secrets.iter().collect();
            let out = self
                .launcher
                .run(&self.target.program, &self.target.args)
                .await
                .map_err(|e| {
                    ProbeError::NotReady(Secret::scrub_all(
                        &format!("cannot run {}: {e}", self.target.program),
                        &secrets,
                    ))
                })?;
            if out.success {
                return Ok(());
            }
            let why = last_line(&out.stderr, &secrets).or_else(|| last_line(&out.stdout, &secrets));
            Err(ProbeError::NotReady(match why {
                Some(line) => format!("{}: {line}", out.status),
                None => out.status,
            }))
        })
    }
}
