//! `gantry wait [--timeout D] URL... [-- CMD ARGS...]`: wait until every dependency is ready, then
//! become CMD.
//!
//! Owns the command's arguments, its exit codes and the hand-over to CMD. The probing and the retry
//! timing live in `gantry-probes`; this module only wires them to a runtime, to SIGTERM/SIGINT and to
//! `exec`. CMD replaces gantry (same PID, no supervisor left behind), which is what an init
//! container or a compose `entrypoint:` wants; for supervision use `gantry up` or `gantry -- CMD`.
//!
//! Exit codes (besides CMD's own, once it runs):
//! - 0: every dependency ready and no CMD given;
//! - 2: a URL cannot be used (the message names it, password hidden);
//! - 75 ([`exit::PROBE_TIMEOUT`]): `--timeout` passed; the message names every dependency still not
//!   ready and why;
//! - 126 / 127: CMD could not be executed / was not found;
//! - 130 / 143: SIGINT / SIGTERM arrived while waiting (128 + the signal); nothing was started.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::time::Duration;

use gantry_probes::{parse_duration, Dependency, WaitError, WaitOptions};

use crate::exit;

/// Arguments of `gantry wait`.
#[derive(Debug, Clone, clap::Args)]
pub struct WaitArgs {
    /// Give up after this long and exit 75 (e.g. 30s, 2m). Default: wait until ready.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,

    /// Limit for one attempt of one probe; a server that accepts and never answers fails the
    /// attempt after this long.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub attempt_timeout: Duration,

    /// Dependencies: tcp://HOST:PORT, http(s)://..., mysql://USER:PASS@HOST/DB,
    /// postgres://..., redis(s)://[USER]:PASS@HOST/DB, amqp(s)://USER:PASS@HOST/VHOST,
    /// mongodb://..., smtp://HOST[?starttls=true], smtps://HOST, file:///PATH.
    #[arg(value_name = "URL", required = true)]
    pub urls: Vec<String>,

    /// The command to exec once every dependency is ready (after `--`).
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

/// Runs `gantry wait`; returns the exit code (it does not return at all if CMD is executed).
pub fn run(args: &WaitArgs) -> i32 {
    gantry_probes::install_crypto_provider();

    let deps = match crate::probe_phase::dependencies_from_urls(&args.urls, args.attempt_timeout) {
        Ok(deps) => deps,
        Err(e) => {
            tracing::error!("gantry wait: {e}");
            return exit::USAGE;
        }
    };

    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("gantry wait: cannot start the async runtime: {e}");
            return exit::INTERNAL;
        }
    };
    let options = WaitOptions {
        deadline: args.timeout,
        ..WaitOptions::default()
    };
    let outcome = runtime.block_on(wait(deps, &options));
    // Nothing of the runtime may linger into CMD.
    drop(runtime);

    match outcome {
        Ok(()) => {}
        Err(Stop::Signal(sig)) => {
            tracing::warn!(
                "gantry wait: stopped by signal {sig} before every dependency was ready"
            );
            return 128 + sig;
        }
        Err(Stop::Wait(e @ WaitError::Deadline { .. })) => {
            tracing::error!("gantry wait: {e}");
            return exit::PROBE_TIMEOUT;
        }
        Err(Stop::Wait(e)) => {
            tracing::error!("gantry wait: {e}");
            return exit::INTERNAL;
        }
        Err(Stop::Setup(e)) => {
            tracing::error!("gantry wait: {e}");
            return exit::INTERNAL;
        }
    }

    let Some((program, rest)) = args.command.split_first() else {
        return 0;
    };
    // exec only returns on failure. std resets SIGPIPE and the signal mask for the new program, and
    // tokio's handlers do not survive exec, so CMD starts with default dispositions.
    let err = std::process::Command::new(program).args(rest).exec();
    tracing::error!(
        "gantry wait: cannot run {}: {err}",
        program.to_string_lossy()
    );
    match err.kind() {
        std::io::ErrorKind::NotFound => exit::NOT_FOUND,
        _ => exit::CANNOT_EXECUTE,
    }
}

enum Stop {
    Signal(i32),
    Wait(WaitError),
    Setup(String),
}

async fn wait(deps: Vec<Dependency>, options: &WaitOptions) -> Result<(), Stop> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| Stop::Setup(format!("cannot handle SIGTERM: {e}")))?;
    let mut int = signal(SignalKind::interrupt())
        .map_err(|e| Stop::Setup(format!("cannot handle SIGINT: {e}")))?;
    let received = std::cell::Cell::new(0);
    let cancel = async {
        tokio::select! {
            _ = term.recv() => received.set(libc::SIGTERM),
            _ = int.recv() => received.set(libc::SIGINT),
        }
    };
    match gantry_probes::wait_until_ready(deps, options, cancel).await {
        Ok(summary) => {
            tracing::info!(
                "gantry wait: all {} ready after {}",
                summary.ready.len(),
                gantry_probes::fmt_duration(summary.elapsed)
            );
            Ok(())
        }
        Err(WaitError::Cancelled { .. }) => Err(Stop::Signal(received.get())),
        Err(e) => Err(Stop::Wait(e)),
    }
}
