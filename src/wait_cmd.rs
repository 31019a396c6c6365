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
use std::time::Duration;

use crate::config::parse_duration;
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
    let outcome = runtime.block_on(async {
        let mut signals = match signal_channel() {
            Ok(rx) => rx,
            Err(e) => {
                tracing::error!("gantry wait: cannot handle SIGTERM/SIGINT: {e}");
                return Err(exit::INTERNAL);
            }
        };
        crate::probe_phase::wait_for(deps, args.timeout, &mut signals).await
    });
    // Nothing of the runtime may linger into CMD.
    drop(runtime);
    if let Err(code) = outcome {
        return code;
    }

    let Some((program, rest)) = args.command.split_first() else {
        return 0;
    };
    // tokio's handlers do not survive exec, so CMD starts with default dispositions.
    exit::exec(program, rest)
}

/// SIGTERM and SIGINT as numbers on a channel, the form `probe_phase::wait_for` takes. `gantry wait`
/// does not use gantry's signalfd loop: CMD is exec'd afterwards and must not inherit a blocked mask.
fn signal_channel() -> std::io::Result<tokio::sync::mpsc::UnboundedReceiver<i32>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let sig = tokio::select! {
                _ = term.recv() => libc::SIGTERM,
                _ = int.recv() => libc::SIGINT,
            };
            if tx.send(sig).is_err() {
                return;
            }
        }
    });
    Ok(rx)
}
