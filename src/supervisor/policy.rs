//! The restart policy as a pure state machine: (history, how the last run ended) → what to do next.
//!
//! No processes, no clocks: the caller says how long the run lasted, this module says whether the job
//! is complete, should be started again after a delay, or has failed for good. That keeps every rule
//! unit-testable:
//!
//! - `oneTime` and a clean exit (code 0) → complete.
//! - a clean exit of a long-running job → restart; it is not a failure and does not count.
//! - any other exit is a failure; after `maxAttempts` failures in a row the job has failed
//!   (`-1` = never give up).
//! - restarts wait with exponential backoff: 1 s, doubling to a cap (30 s).
//! - a run that lasted at least the stable period (30 s) resets both the failure count and the backoff.
//! - an on-demand job (a lazy job) is never restarted by the policy alone: after the backoff it waits
//!   for its next demand (a connection); the failures still count towards `maxAttempts`.

use std::time::Duration;

use crate::config::Attempts;
use crate::exit::ExitStatus;

/// The rules for one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub max_attempts: Attempts,
    pub one_time: bool,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub stable_after: Duration,
    /// Started by demand (a lazy job's connections), not by the policy: after the backoff the job
    /// waits, idle, for the next start; a stop returns it to idle. The actor reads this.
    pub on_demand: bool,
}

impl Policy {
    pub fn new(max_attempts: Attempts, one_time: bool) -> Self {
        Policy {
            max_attempts,
            one_time,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            stable_after: Duration::from_secs(30),
            on_demand: false,
        }
    }

    /// A command that runs once and is never restarted (the flags-only mode).
    pub fn run_once() -> Self {
        Policy::new(Attempts::Limited(1), true)
    }
}

/// What to do after a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The job is done and successful.
    Complete,
    /// Start it again after this delay.
    Restart { after: Duration },
    /// The job has failed for good.
    GiveUp,
}

/// What the policy remembers between runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct History {
    /// Failures in a row since the last stable run.
    pub failures: u32,
    /// The delay before the next restart.
    pub next_backoff: Duration,
}

impl History {
    pub fn new(policy: &Policy) -> Self {
        History {
            failures: 0,
            next_backoff: policy.initial_backoff,
        }
    }

    /// Records a run that ended with `status` after `ran_for`, and decides.
    pub fn on_exit(&mut self, policy: &Policy, status: ExitStatus, ran_for: Duration) -> Decision {
        if ran_for >= policy.stable_after {
            *self = History::new(policy);
        }
        if status.success() {
            if policy.one_time {
                return Decision::Complete;
            }
        } else {
            self.failures = self.failures.saturating_add(1);
            if let Attempts::Limited(max) = policy.max_attempts {
                if self.failures >= max {
                    return Decision::GiveUp;
                }
            }
        }
        let after = self.next_backoff;
        self.next_backoff = (self.next_backoff * 2).min(policy.max_backoff);
        Decision::Restart { after }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAIL: ExitStatus = ExitStatus::Code(1);
    const OK: ExitStatus = ExitStatus::Code(0);
    const SHORT: Duration = Duration::from_millis(10);

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn max_attempts_counts_failed_runs() {
        let p = Policy::new(Attempts::Limited(3), false);
        let mut h = History::new(&p);
        assert_eq!(
            h.on_exit(&p, FAIL, SHORT),
            Decision::Restart { after: secs(1) }
        );
        assert_eq!(
            h.on_exit(&p, FAIL, SHORT),
            Decision::Restart { after: secs(2) }
        );
        assert_eq!(h.on_exit(&p, FAIL, SHORT), Decision::GiveUp);
    }

    #[test]
    fn one_attempt_means_no_restart() {
        let p = Policy::new(Attempts::Limited(1), false);
        let mut h = History::new(&p);
        assert_eq!(
            h.on_exit(&p, ExitStatus::Signaled(9), SHORT),
            Decision::GiveUp
        );
    }

    #[test]
    fn forever_never_gives_up_and_backoff_is_capped() {
        let p = Policy::new(Attempts::Forever, false);
        let mut h = History::new(&p);
        let delays: Vec<Duration> = (0..10)
            .map(|_| match h.on_exit(&p, FAIL, SHORT) {
                Decision::Restart { after } => after,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        let expected: Vec<Duration> = [1, 2, 4, 8, 16, 30, 30, 30, 30, 30].map(secs).to_vec();
        assert_eq!(delays, expected);
        assert_eq!(h.failures, 10);
    }

    #[test]
    fn one_time_clean_exit_completes() {
        let p = Policy::new(Attempts::Limited(3), true);
        let mut h = History::new(&p);
        assert_eq!(h.on_exit(&p, OK, SHORT), Decision::Complete);
    }

    #[test]
    fn one_time_failure_is_retried_until_max_attempts() {
        let p = Policy::new(Attempts::Limited(2), true);
        let mut h = History::new(&p);
        assert_eq!(
            h.on_exit(&p, FAIL, SHORT),
            Decision::Restart { after: secs(1) }
        );
        assert_eq!(h.on_exit(&p, OK, SHORT), Decision::Complete);
    }

    #[test]
    fn clean_exit_of_long_running_job_restarts_without_counting() {
        let p = Policy::new(Attempts::Limited(2), false);
        let mut h = History::new(&p);
        for _ in 0..5 {
            assert!(matches!(h.on_exit(&p, OK, SHORT), Decision::Restart { .. }));
        }
        assert_eq!(h.failures, 0);
        assert!(matches!(
            h.on_exit(&p, FAIL, SHORT),
            Decision::Restart { .. }
        ));
        assert_eq!(h.on_exit(&p, FAIL, SHORT), Decision::GiveUp);
    }

    #[test]
    fn a_stable_run_resets_failures_and_backoff() {
        let p = Policy::new(Attempts::Limited(3), false);
        let mut h = History::new(&p);
        assert_eq!(
            h.on_exit(&p, FAIL, SHORT),
            Decision::Restart { after: secs(1) }
        );
        assert_eq!(
            h.on_exit(&p, FAIL, SHORT),
            Decision::Restart { after: secs(2) }
        );
        // Ran for the stable period: the slate is clean, so this is failure 1 of 3 again.
        assert_eq!(
            h.on_exit(&p, FAIL, secs(30)),
            Decision::Restart { after: secs(1) }
        );
        assert_eq!(h.failures, 1);
        assert_eq!(
            h.on_exit(&p, FAIL, SHORT),
            Decision::Restart { after: secs(2) }
        );
        assert_eq!(h.on_exit(&p, FAIL, SHORT), Decision::GiveUp);
    }

    #[test]
    fn run_once_never_restarts() {
        let p = Policy::run_once();
        assert_eq!(History::new(&p).on_exit(&p, OK, SHORT), Decision::Complete);
        assert_eq!(History::new(&p).on_exit(&p, FAIL, SHORT), Decision::GiveUp);
    }
}
