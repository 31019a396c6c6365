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
use crate::runtime::Options;

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

    let timeout = args.timeout;
    let outcome = crate::runtime::run(Options::without_jobs(), move |_ctx, mut stops| async move {
        match crate::probe_phase::wait_for(deps, timeout, &mut stops).await {
            Ok(()) => 0,
            Err(e) => e.code(),
        }
    });
    if outcome != 0 {
        return outcome;
    }

    let Some((program, rest)) = args.command.split_first() else {
        return 0;
    };
    // tokio's handlers do not survive exec, so CMD starts with default dispositions.
    exit::exec(program, rest)
}
