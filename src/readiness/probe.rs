//! Polled checks: a job's `ready { ... }` probe until it passes, and its `alive { ... }` check for as
//! long as the run lasts.

use std::sync::Arc;
use std::time::Duration;

use gantry_probes::{attempt, Probe, WaitOptions};
use tokio::time::Instant;

use super::{Event, Report};
use crate::config::readiness::AliveSpec;

/// The delay after `failed` attempts in a row: the probe backoff of the wait phase (25 ms doubling,
/// capped at 200 ms while connections are refused and at 1 s once something answers).
pub fn backoff(failed: u32, refused: bool) -> Duration {
    let o = WaitOptions::default();
    let cap = if refused {
        o.max_retry_refused
    } else {
        o.max_retry
    };
    o.first_retry
        .saturating_mul(1u32 << failed.min(16))
        .min(cap)
}

/// Polls `probe` from now until it passes, then reports [`Event::Ready`]. Logs the first failure
/// reason and then every change of it at debug level.
pub async fn until_ready(job: String, probe: Arc<dyn Probe>, report: Report) {
    let mut failed = 0u32;
    let mut last: Option<String> = None;
    loop {
        match attempt(probe.as_ref()).await {
            Ok(()) => {
                report(Event::Ready);
                return;
            }
            Err(e) => {
                let text = e.to_string();
                if last.as_deref() != Some(&text) {
                    tracing::debug!(job = %job, "not ready yet: {}: {text}", probe.describe());
                    last = Some(text);
                }
                tokio::time::sleep(backoff(failed, e.is_refused())).await;
                failed = failed.saturating_add(1);
            }
        }
    }
}

/// Checks `probe` every `spec.period` (the first check one period after the job became ready).
/// Logs one line when a failure streak begins and one when it ends; reports [`Event::NotAlive`]
/// once per streak, when it reaches `spec.threshold`.
pub async fn liveness(job: String, probe: Arc<dyn Probe>, spec: AliveSpec, report: Report) {
    let mut streak = 0u32;
    let mut next = Instant::now() + spec.period;
    loop {
        tokio::time::sleep_until(next).await;
        next += spec.period;
        match attempt(probe.as_ref()).await {
            Ok(()) => {
                if streak > 0 {
                    tracing::info!(
                        "job {job:?} is alive again after {streak} failed liveness check(s)"
                    );
                }
                streak = 0;
            }
            Err(e) => {
                streak = streak.saturating_add(1);
                if streak == 1 {
                    tracing::warn!(
                        "job {job:?}: liveness check {} failed: {e} (action {} after {} in a row)",
                        probe.describe(),
                        spec.action.name(),
                        spec.threshold
                    );
                }
                if streak == spec.threshold {
                    report(Event::NotAlive);
                }
            }
        }
        // A check slower than the period must not make the next ones pile up.
        let now = Instant::now();
        if next < now {
            next = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_is_the_wait_phases() {
        let ms = Duration::from_millis;
        let seq: Vec<Duration> = (0..8).map(|n| backoff(n, false)).collect();
        assert_eq!(
            seq,
            [25, 50, 100, 200, 400, 800, 1000, 1000].map(ms).to_vec()
        );
        assert_eq!(backoff(5, true), ms(200));
        assert_eq!(backoff(40, false), ms(1000));
    }
}
