//! Phase 3 of `gantry up`: wait until every `wait = true` probe is ready.
//!
//! Owns turning the plan's probe blocks into probes and mapping the wait's outcome to an exit code;
//! the waiting itself (parallel attempts, backoff, progress lines) is `gantry_probes::wait`. Signals
//! arrive from the supervisor's signal loop as numbers: SIGTERM or SIGINT ends the wait at once —
//! nothing has been started yet, so there is nothing to stop.

use std::time::Duration;

use gantry_probes::{wait_until_ready, Dependency, WaitError, WaitOptions};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::config::probe::ProbeBlock;
use crate::exit;

/// Waits for the `wait = true` probes. `Err(code)` if gantry must exit instead of starting jobs.
pub async fn wait_for_probes(
    probes: &[ProbeBlock],
    deadline: Option<Duration>,
    signals: &mut UnboundedReceiver<i32>,
) -> Result<(), i32> {
    gantry_probes::install_crypto_provider();
    let mut deps = Vec::new();
    for p in probes.iter().filter(|p| p.wait) {
        match p.build() {
            Ok(probe) => deps.push(Dependency::new(p.name.clone(), probe)),
            // Checked when the config was loaded; an environment variable may have gone since.
            Err(e) => {
                tracing::error!("{}: {e}", p.pos);
                return Err(exit::CONFIG);
            }
        }
    }
    if deps.is_empty() {
        return Ok(());
    }
    let mut stopped_by = 0;
    let cancel = async {
        while let Some(sig) = signals.recv().await {
            if sig == libc::SIGTERM || sig == libc::SIGINT {
                stopped_by = sig;
                return;
            }
        }
        // The signal loop is gone; keep waiting on the probes alone.
        std::future::pending::<()>().await;
    };
    let options = WaitOptions {
        deadline,
        ..WaitOptions::default()
    };
    let outcome = wait_until_ready(deps, &options, cancel).await;
    match outcome {
        Ok(summary) => {
            tracing::info!(
                "probe: all {} ready after {}",
                summary.ready.len(),
                gantry_probes::fmt_duration(summary.elapsed)
            );
            Ok(())
        }
        Err(e @ WaitError::Deadline { .. }) => {
            tracing::error!("probe: {e}; not starting any job");
            Err(exit::PROBE_TIMEOUT)
        }
        Err(WaitError::Cancelled { .. }) => {
            tracing::info!(
                "probe: stopped by signal {stopped_by} while waiting; no job was started"
            );
            Err(128 + stopped_by)
        }
    }
}
