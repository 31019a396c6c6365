//! The wait engine: poll many probes in parallel until all are ready, a deadline passes, or the
//! caller cancels.
//!
//! Owns retry timing and progress logging; knows nothing about any backend. Each dependency gets
//! its own task that runs one attempt (bounded by the probe's attempt timeout), then sleeps a
//! jittered, exponentially growing delay before the next. The caller's future only watches: task
//! completions, the deadline, the cancel future and a slow report timer — so nothing spins, and
//! dropping (or cancelling) the wait aborts every attempt in flight.
//!
//! Two retry caps: while a dependency refuses connections (nothing listens yet), a retry costs one
//! SYN/RST pair and no server work, so it is retried at least every `max_retry_refused` (200 ms by
//! default) — that is what makes "noticed soon after it starts listening" true. Once a server
//! answers but is not ready (bad credentials, still starting, timeouts), retries slow down to
//! `max_retry` (1 s) so a struggling server is not hammered.
//!
//! Logging (tracing, target `gantry_probes::wait`): one INFO line when each dependency becomes
//! ready, one INFO line per still-blocking dependency every `report_every` (5 s) with its last
//! reason, attempt count and elapsed time, DEBUG for every failed attempt whose reason changed.
//! Nothing logged here contains a credential: names are the caller's, descriptions and reasons are
//! redacted by the probes.

use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::{attempt, fmt_duration, BoxProbe, ProbeError};

/// A probe with the name people know it by (`db` from `probe "db" {}`, or the redacted URL).
pub struct Dependency {
    pub name: String,
    pub probe: BoxProbe,
}

impl Dependency {
    pub fn new(name: impl Into<String>, probe: BoxProbe) -> Dependency {
        Dependency {
            name: name.into(),
            probe,
        }
    }

    /// Named by its own description: `mysql db:3306/app as app`.
    pub fn from_probe(probe: BoxProbe) -> Dependency {
        Dependency {
            name: probe.describe(),
            probe,
        }
    }

    /// `db (mysql db:3306/app as app)`, or just the description when that is the name.
    pub fn label(&self) -> String {
        let d = self.probe.describe();
        if d == self.name {
            d
        } else {
            format!("{} ({d})", self.name)
        }
    }
}

/// Timing of a wait. `Default` is what `gantry up` and `gantry wait` use.
#[derive(Debug, Clone)]
pub struct WaitOptions {
    /// Give up after this long; `None` waits forever (until cancelled).
    pub deadline: Option<Duration>,
    /// First retry delay; doubles per failed attempt.
    pub first_retry: Duration,
    /// Cap on the retry delay once the server answers but is not ready.
    pub max_retry: Duration,
    /// Cap on the retry delay while connections are refused.
    pub max_retry_refused: Duration,
    /// How often to log the dependencies still blocking.
    pub report_every: Duration,
}

impl Default for WaitOptions {
    fn default() -> Self {
        WaitOptions {
            deadline: None,
            first_retry: Duration::from_millis(25),
            max_retry: Duration::from_secs(1),
            max_retry_refused: Duration::from_millis(200),
            report_every: Duration::from_secs(5),
        }
    }
}

/// One dependency that became ready.
#[derive(Debug, Clone)]
pub struct Ready {
    pub name: String,
    pub attempts: u32,
    pub after: Duration,
}

/// All dependencies ready.
#[derive(Debug, Clone)]
pub struct WaitSummary {
    pub ready: Vec<Ready>,
    pub elapsed: Duration,
}

/// One dependency that was still not ready when the wait ended.
#[derive(Debug, Clone)]
pub struct Blocking {
    /// [`Dependency::label`].
    pub label: String,
    pub attempts: u32,
    /// `None` if the first attempt had not finished yet.
    pub last_error: Option<ProbeError>,
}

impl std::fmt::Display for Blocking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.last_error {
            Some(e) => write!(f, "{}: {e} (attempt {})", self.label, self.attempts),
            None => write!(f, "{}: first attempt still running", self.label),
        }
    }
}

fn list(blocking: &[Blocking]) -> String {
    blocking
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why a wait ended without every dependency ready.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WaitError {
    #[error("not ready after {}: {}", fmt_duration(*.after), list(.blocking))]
    Deadline {
        after: Duration,
        blocking: Vec<Blocking>,
    },
    #[error("wait cancelled; still not ready: {}", list(.blocking))]
    Cancelled { blocking: Vec<Blocking> },
}

impl WaitError {
    pub fn blocking(&self) -> &[Blocking] {
        match self {
            WaitError::Deadline { blocking, .. } | WaitError::Cancelled { blocking } => blocking,
        }
    }
}

struct Status {
    label: String,
    attempts: u32,
    last_error: Option<ProbeError>,
    ready_after: Option<Duration>,
}

type Shared = Arc<Mutex<Vec<Status>>>;

// A poisoned lock only means a probe task panicked mid-update; the counters are still usable.
fn lock(s: &Shared) -> MutexGuard<'_, Vec<Status>> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

/// Waits until every dependency is ready.
///
/// Returns early with [`WaitError::Cancelled`] as soon as `cancel` resolves (pass
/// `std::future::pending()` for "never"), and with [`WaitError::Deadline`] when
/// `options.deadline` passes. Attempts in flight are aborted either way. Must run inside a tokio
/// runtime (current-thread is fine).
pub async fn wait_until_ready(
    deps: Vec<Dependency>,
    options: &WaitOptions,
    cancel: impl Future<Output = ()>,
) -> Result<WaitSummary, WaitError> {
    let start = Instant::now();
    let deps: Vec<Arc<Dependency>> = deps.into_iter().map(Arc::new).collect();
    let status: Shared = Arc::new(Mutex::new(
        deps.iter()
            .map(|d| Status {
                label: d.label(),
                attempts: 0,
                last_error: None,
                ready_after: None,
            })
            .collect(),
    ));
    if !deps.is_empty() {
        tracing::info!(
            probes = %deps.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", "),
            "waiting for {}",
            deps.iter()
                .map(|d| d.probe.describe())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }

    let mut tasks = JoinSet::new();
    let mut task_index = std::collections::HashMap::new();
    for (i, dep) in deps.iter().enumerate() {
        let h = tasks.spawn(poll(
            i,
            dep.clone(),
            options.clone(),
            status.clone(),
            start,
            Duration::ZERO,
        ));
        task_index.insert(h.id(), i);
    }

    let deadline = async {
        match options.deadline {
            Some(d) => tokio::time::sleep_until(start + d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(deadline, cancel);
    let every = options.report_every.max(Duration::from_millis(100));
    let mut report = tokio::time::interval_at(start + every, every);
    report.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    loop {
        tokio::select! {
            biased;
            () = &mut cancel => {
                return Err(WaitError::Cancelled { blocking: blocking(&status) });
            }
            () = &mut deadline => {
                return Err(WaitError::Deadline { after: start.elapsed(), blocking: blocking(&status) });
            }
            joined = tasks.join_next_with_id() => match joined {
                None => break,
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    // A driver panicked inside an attempt. Keep waiting on that dependency: the next
                    // attempt gets a fresh connection.
                    let Some(i) = task_index.remove(&e.id()) else { continue };
                    tracing::error!(probe = %deps[i].name, "failed unexpectedly ({e}); retrying");
                    let h = tasks.spawn(poll(
                        i,
                        deps[i].clone(),
                        options.clone(),
                        status.clone(),
                        start,
                        options.max_retry,
                    ));
                    task_index.insert(h.id(), i);
                }
            },
            _ = report.tick() => {
                let now = start.elapsed();
                for (s, dep) in lock(&status).iter().zip(deps.iter()).filter(|(s, _)| s.ready_after.is_none()) {
                    match &s.last_error {
                        Some(e) => tracing::info!(
                            probe = %dep.name,
                            "still waiting for {}: {e} (attempt {}, {})",
                            dep.probe.describe(), s.attempts, fmt_duration(now)
                        ),
                        None => tracing::info!(
                            probe = %dep.name,
                            "still waiting for {}: first attempt running ({})",
                            dep.probe.describe(), fmt_duration(now)
                        ),
                    }
                }
            }
        }
    }

    let ready = deps
        .iter()
        .zip(lock(&status).iter())
        .map(|(d, s)| Ready {
            name: d.name.clone(),
            attempts: s.attempts,
            after: s.ready_after.unwrap_or_default(),
        })
        .collect();
    Ok(WaitSummary {
        ready,
        elapsed: start.elapsed(),
    })
}

fn blocking(status: &Shared) -> Vec<Blocking> {
    lock(status)
        .iter()
        .filter(|s| s.ready_after.is_none())
        .map(|s| Blocking {
            label: s.label.clone(),
            attempts: s.attempts,
            last_error: s.last_error.clone(),
        })
        .collect()
}

/// One dependency's retry loop; returns when it is ready.
async fn poll(
    index: usize,
    dep: Arc<Dependency>,
    options: WaitOptions,
    status: Shared,
    start: Instant,
    initial_delay: Duration,
) {
    tokio::time::sleep(initial_delay).await;
    let mut jitter = Jitter::new(index);
    let mut step = options.first_retry;
    loop {
        let result = attempt(dep.probe.as_ref()).await;
        let refused = {
            let mut all = lock(&status);
            let s = &mut all[index];
            s.attempts += 1;
            match result {
                Ok(()) => {
                    let after = start.elapsed();
                    s.ready_after = Some(after);
                    tracing::info!(
                        probe = %dep.name,
                        "{} is ready after {} (attempt {})",
                        dep.probe.describe(),
                        fmt_duration(after),
                        s.attempts
                    );
                    return;
                }
                Err(e) => {
                    if s.last_error.as_ref() != Some(&e) {
                        tracing::debug!(probe = %dep.name, "{} not ready: {e}", dep.probe.describe());
                    }
                    let refused = e.is_refused();
                    s.last_error = Some(e);
                    refused
                }
            }
        };
        let cap = if refused {
            options.max_retry_refused
        } else {
            options.max_retry
        };
        step = step.min(cap);
        tokio::time::sleep(jitter.spread(step)).await;
        step = (step * 2).min(cap);
    }
}

/// Spreads retries of many dependencies (and many gantry instances) so they do not move in lock
/// step: a delay `d` becomes a value in `[d/2, d]`. xorshift64, seeded per task; not for secrets.
struct Jitter(u64);

impl Jitter {
    fn new(index: usize) -> Jitter {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_usize(index);
        Jitter(h.finish() | 1)
    }

    fn spread(&mut self, d: Duration) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let frac = (self.0 >> 11) as f64 / (1u64 << 53) as f64;
        d.mul_f64(0.5 + frac / 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Probe, ProbeFuture};
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Not ready for the first `fail` attempts, then ready. A stand-in for the engine's own
    /// logic only; the backends are tested against real servers.
    struct Countdown {
        fail: u32,
        seen: AtomicU32,
    }

    impl Probe for Countdown {
        fn describe(&self) -> String {
            "countdown".into()
        }
        fn check(&self) -> ProbeFuture<'_> {
            Box::pin(async move {
                if self.seen.fetch_add(1, Ordering::SeqCst) < self.fail {
                    Err(ProbeError::Refused(String::new()))
                } else {
                    Ok(())
                }
            })
        }
    }

    fn countdown(fail: u32) -> BoxProbe {
        Box::new(Countdown {
            fail,
            seen: AtomicU32::new(0),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn retries_until_ready_and_counts_attempts() {
        let deps = vec![
            Dependency::new("a", countdown(3)),
            Dependency::new("b", countdown(0)),
        ];
        let summary = wait_until_ready(deps, &WaitOptions::default(), std::future::pending())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let attempts: Vec<u32> = summary.ready.iter().map(|r| r.attempts).collect();
        assert_eq!(attempts, vec![4, 1]);
    }

    #[tokio::test(start_paused = true)]
    async fn deadline_names_every_blocking_dependency() {
        let deps = vec![
            Dependency::new("never", countdown(u32::MAX)),
            Dependency::new("soon", countdown(1)),
        ];
        let opts = WaitOptions {
            deadline: Some(Duration::from_secs(3)),
            ..Default::default()
        };
        let err = wait_until_ready(deps, &opts, std::future::pending())
            .await
            .err()
            .unwrap_or_else(|| panic!("a never-ready probe passed"));
        let WaitError::Deadline { blocking, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!(blocking.len(), 1);
        assert!(
            err.to_string()
                .contains("never (countdown): connection refused"),
            "{err}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_is_capped_while_refused() {
        // With the refused cap at 200 ms, 10 s of paused time allows at least 50 attempts; an
        // uncapped doubling backoff would manage about 9.
        let seen = Arc::new(AtomicU32::new(0));
        struct Count(Arc<AtomicU32>);
        impl Probe for Count {
            fn describe(&self) -> String {
                "count".into()
            }
            fn check(&self) -> ProbeFuture<'_> {
                self.0.fetch_add(1, Ordering::SeqCst);
                Box::pin(async { Err(ProbeError::Refused(String::new())) })
            }
        }
        let opts = WaitOptions {
            deadline: Some(Duration::from_secs(10)),
            ..Default::default()
        };
        let deps = vec![Dependency::new("c", Box::new(Count(seen.clone())))];
        let _ = wait_until_ready(deps, &opts, std::future::pending()).await;
        assert!(
            seen.load(Ordering::SeqCst) >= 50,
            "{}",
            seen.load(Ordering::SeqCst)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn cancel_future_ends_the_wait() {
        let deps = vec![Dependency::new("never", countdown(u32::MAX))];
        let cancel = tokio::time::sleep(Duration::from_secs(2));
        let err = wait_until_ready(deps, &WaitOptions::default(), cancel).await;
        assert!(matches!(err, Err(WaitError::Cancelled { .. })), "{err:?}");
    }

    #[test]
    fn jitter_stays_within_half_to_full() {
        let mut j = Jitter::new(7);
        for _ in 0..1000 {
            let d = j.spread(Duration::from_millis(100));
            assert!(
                d >= Duration::from_millis(50) && d <= Duration::from_millis(100),
                "{d:?}"
            );
        }
    }
}
