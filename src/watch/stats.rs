//! How many reloads each watch caused, and how they ended, for `/metrics`
//! (`gantry_watch_reloads_total{job,watch,reason}`).
//!
//! Owns only the counts: one process-wide table, written once per reload by the task that drives a
//! watch ([`super::job::spawn_watch`]) and read when `/metrics` is rendered. Nothing is allocated
//! for a process without watches. It knows nothing of jobs beyond the label it is given.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::reload::{Action, ReloadError};

/// `(job, watch path, reason)` → reloads.
type Table = BTreeMap<(String, String, &'static str), u64>;

static RELOADS: Mutex<Table> = Mutex::new(BTreeMap::new());

fn table() -> std::sync::MutexGuard<'static, Table> {
    // A panic while a count was being added leaves the table usable.
    RELOADS.lock().unwrap_or_else(|p| p.into_inner())
}

/// The `reason` label of a reload's outcome: what was delivered (`signal`, `restart`), or why
/// nothing was (`validate_failed`, `validate_timed_out`, `validate_not_run`, `not_delivered`).
pub fn reason(outcome: &Result<Action, ReloadError>) -> &'static str {
    match outcome {
        Ok(Action::Signal { .. }) => "signal",
        Ok(Action::Restart { .. }) => "restart",
        Err(ReloadError::ValidateFailed { .. }) => "validate_failed",
        Err(ReloadError::ValidateTimedOut { .. }) => "validate_timed_out",
        Err(ReloadError::ValidateSpawn { .. }) => "validate_not_run",
        Err(ReloadError::Deliver { .. }) => "not_delivered",
    }
}

/// Makes the series of a watch that has not reloaded yet visible at 0 (for its normal outcome).
pub fn register(job: &str, watch: &str, action: Action) {
    let r = reason(&Ok(action));
    table()
        .entry((job.to_string(), watch.to_string(), r))
        .or_insert(0);
}

/// Counts one reload of `watch` of `job`.
pub fn record(job: &str, watch: &str, outcome: &Result<Action, ReloadError>) {
    *table()
        .entry((job.to_string(), watch.to_string(), reason(outcome)))
        .or_insert(0) += 1;
}

/// Every count, sorted by job, watch and reason.
pub fn snapshot() -> Vec<(String, String, &'static str, u64)> {
    table()
        .iter()
        .map(|((j, w, r), n)| (j.clone(), w.clone(), *r, *n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::SignalTarget;

    #[test]
    fn outcomes_are_counted_per_job_watch_and_reason() {
        let sig = Action::Signal {
            signal: libc::SIGHUP,
            target: SignalTarget::ProcessGroup,
        };
        register("stats-test", "/a", sig);
        record("stats-test", "/a", &Ok(sig));
        record("stats-test", "/a", &Ok(sig));
        let failed = Err(ReloadError::ValidateTimedOut {
            command: "x".into(),
            timeout: std::time::Duration::from_secs(1),
        });
        record("stats-test", "/a", &failed);
        let mine: Vec<_> = snapshot()
            .into_iter()
            .filter(|(j, ..)| j == "stats-test")
            .map(|(_, w, r, n)| (w, r, n))
            .collect();
        assert_eq!(
            mine,
            vec![
                ("/a".to_string(), "signal", 2),
                ("/a".to_string(), "validate_timed_out", 1)
            ]
        );
    }
}
