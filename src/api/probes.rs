//! The configured probes as the API and the status port see them: each probe's last result (from
//! the probe phase's attempts and from every later check), its failures and a histogram of how
//! long its checks took (for `/metrics`). `/status` and `/readyz` check on request, all at once,
//! each within a time limit (mittnite's `/status`); `/v2/probes` shows the last results without
//! probing. Messages come from `gantry-probes`, already scrubbed of credentials.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use gantry_probes::{BoxProbe, Probe, ProbeFuture};

/// Upper bounds (seconds) of the check-duration histogram.
pub const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// One probe's outcome.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub name: String,
    pub wait: bool,
    pub ok: bool,
    pub message: String,
    pub duration: Duration,
    pub at: SystemTime,
}

#[derive(Debug, Default)]
struct Hist {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// What is kept of one probe's checks, whoever ran them.
#[derive(Debug)]
struct Record {
    name: String,
    wait: bool,
    last: Mutex<Option<Outcome>>,
    failures: AtomicU64,
    hist: Mutex<Hist>,
}

impl Record {
    fn record(&self, ok: bool, message: String, duration: Duration) {
        if !ok {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        {
            let mut h = self.hist.lock().unwrap_or_else(|p| p.into_inner());
            let secs = duration.as_secs_f64();
            if let Some(i) = BUCKETS.iter().position(|&b| secs <= b) {
                h.counts[i] += 1;
            }
            h.sum += secs;
            h.count += 1;
        }
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(Outcome {
            name: self.name.clone(),
            wait: self.wait,
            ok,
            message,
            duration,
            at: SystemTime::now(),
        });
    }
}

struct Entry {
    probe: Arc<BoxProbe>,
    record: Arc<Record>,
}

/// Every configured probe.
#[derive(Default)]
pub struct ProbeSet {
    entries: Vec<Entry>,
}

/// A snapshot for `/metrics`.
#[derive(Debug, Clone)]
pub struct ProbeMetrics {
    pub name: String,
    pub up: Option<bool>,
    pub failures: u64,
    pub buckets: Vec<(f64, u64)>,
    pub sum: f64,
    pub count: u64,
}

/// A probe whose every attempt is kept as its probe's last result (the probe phase's probes).
struct Recording {
    inner: BoxProbe,
    record: Arc<Record>,
}

/// Records an attempt that was dropped before it finished: past the probe's attempt timeout it
/// timed out; earlier, the wait ended (ready elsewhere, cancelled) and nothing is recorded.
struct Pending<'a> {
    record: &'a Record,
    started: Instant,
    limit: Duration,
    done: bool,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        let took = self.started.elapsed();
        if !self.done && took >= self.limit {
            let e = gantry_probes::ProbeError::TimedOut(self.limit);
            self.record.record(false, e.to_string(), took);
        }
    }
}

impl Probe for Recording {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn attempt_timeout(&self) -> Duration {
        self.inner.attempt_timeout()
    }

    fn check(&self) -> ProbeFuture<'_> {
        Box::pin(async move {
            let mut pending = Pending {
                record: &self.record,
                started: Instant::now(),
                limit: self.inner.attempt_timeout(),
                done: false,
            };
            let result = self.inner.check().await;
            pending.done = true;
            let message = match &result {
                Ok(()) => String::new(),
                Err(e) => e.to_string(),
            };
            self.record
                .record(result.is_ok(), message, pending.started.elapsed());
            result
        })
    }
}

impl ProbeSet {
    /// `(name, wait, probe)` for each probe block.
    pub fn new(probes: Vec<(String, bool, BoxProbe)>) -> Self {
        ProbeSet {
            entries: probes
                .into_iter()
                .map(|(name, wait, probe)| Entry {
                    probe: Arc::new(probe),
                    record: Arc::new(Record {
                        name,
                        wait,
                        last: Mutex::new(None),
                        failures: AtomicU64::new(0),
                        hist: Mutex::new(Hist::default()),
                    }),
                })
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `probe` (the probe phase's own probe for block `name`), keeping each of its attempts as
    /// that probe's last result here. A name that is not configured is returned unchanged.
    pub fn recording(&self, name: &str, probe: BoxProbe) -> BoxProbe {
        match self.entries.iter().find(|e| e.record.name == name) {
            Some(e) => Box::new(Recording {
                inner: probe,
                record: e.record.clone(),
            }),
            None => probe,
        }
    }

    /// Runs every probe (only `wait` ones with `wait_only`) concurrently; a probe not done within
    /// `limit` is cancelled and reported "timed out" (as mittnite's `/status` does).
    pub async fn check(&self, wait_only: bool, limit: Duration) -> Vec<Outcome> {
        let futures = self
            .entries
            .iter()
            .filter(|e| e.record.wait || !wait_only)
            .map(|e| async move {
                let started = Instant::now();
                let result = tokio::time::timeout(limit, gantry_probes::attempt(&**e.probe)).await;
                let duration = started.elapsed();
                let (ok, message) = match result {
                    Ok(Ok(())) => (true, String::new()),
                    Ok(Err(err)) => (false, err.to_string()),
                    Err(_) => (false, "timed out".to_string()),
                };
                e.record.record(ok, message.clone(), duration);
                Outcome {
                    name: e.record.name.clone(),
                    wait: e.record.wait,
                    ok,
                    message,
                    duration,
                    at: SystemTime::now(),
                }
            });
        futures_util::future::join_all(futures).await
    }

    /// Each probe's last outcome (`None` if it was never checked).
    pub fn last(&self) -> Vec<(String, bool, Option<Outcome>)> {
        self.entries
            .iter()
            .map(|e| {
                let r = &e.record;
                let last = r.last.lock().unwrap_or_else(|p| p.into_inner()).clone();
                (r.name.clone(), r.wait, last)
            })
            .collect()
    }

    pub fn metrics(&self) -> Vec<ProbeMetrics> {
        self.entries
            .iter()
            .map(|e| {
                let r = &e.record;
                let h = r.hist.lock().unwrap_or_else(|p| p.into_inner());
                let up = r
                    .last
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .as_ref()
                    .map(|o| o.ok);
                ProbeMetrics {
                    name: r.name.clone(),
                    up,
                    failures: r.failures.load(Ordering::Relaxed),
                    buckets: BUCKETS.iter().copied().zip(h.counts).collect(),
                    sum: h.sum,
                    count: h.count,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(Result<(), gantry_probes::ProbeError>);

    impl Probe for Fixed {
        fn describe(&self) -> String {
            "fixed".into()
        }
        fn check(&self) -> ProbeFuture<'_> {
            let r = self.0.clone();
            Box::pin(async move { r })
        }
    }

    #[tokio::test]
    async fn attempts_of_a_recording_probe_become_its_last_result() {
        let set = ProbeSet::new(vec![(
            "db".into(),
            true,
            Box::new(Fixed(Ok(()))) as BoxProbe,
        )]);
        assert!(set.last()[0].2.is_none());
        let failing: BoxProbe = Box::new(Fixed(Err(gantry_probes::ProbeError::NotReady(
            "password authentication failed".into(),
        ))));
        let wrapped = set.recording("db", failing);
        assert!(wrapped.check().await.is_err());
        let last = set.last()[0].2.clone().expect("recorded");
        assert!(!last.ok);
        assert_eq!(last.message, "password authentication failed");
        assert_eq!(set.metrics()[0].failures, 1);
        assert_eq!(set.metrics()[0].count, 1);
    }
}
