//! `exec { command, args }`: ready when the command exits 0. Its last line of stderr (or stdout) is
//! the reason when it does not. The command is killed if the attempt times out.

use std::process::Stdio;
use std::time::Duration;

use crate::target::ExecTarget;
use crate::{Probe, ProbeError, ProbeFuture};

pub struct ExecProbe {
    target: ExecTarget,
    timeout: Duration,
}

impl ExecProbe {
    pub fn new(target: ExecTarget, timeout: Duration) -> ExecProbe {
        ExecProbe { target, timeout }
    }
}

fn last_line(bytes: &[u8]) -> Option<String> {
    String::from_utf8_lossy(bytes)
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
            let out = tokio::process::Command::new(&self.target.program)
                .args(&self.target.args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                // A timed-out attempt drops this future; the command must not outlive it.
                .kill_on_drop(true)
                .output()
                .await
                .map_err(|e| {
                    ProbeError::NotReady(format!("cannot run {}: {e}", self.target.program))
                })?;
            if out.status.success() {
                return Ok(());
            }
            let why = last_line(&out.stderr).or_else(|| last_line(&out.stdout));
            Err(ProbeError::NotReady(match why {
                Some(line) => format!("{}: {line}", out.status),
                None => out.status.to_string(),
            }))
        })
    }
}
