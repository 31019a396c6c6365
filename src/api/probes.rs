//! The configured probes as the API and the status port run them: on request, all at once, each
//! within a time limit, keeping each probe's last result, its failures and a histogram of how long
//! its checks took (for `/metrics`). Messages come from `gantry-probes`, already scrubbed of
//! credentials.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use gantry_probes::BoxProbe;

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

struct Entry {
    name: String,
    wait: bool,
    probe: Arc<BoxProbe>,
    last: Mutex<Option<Outcome>>,
    failures: AtomicU64,
    hist: Mutex<Hist>,
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

impl ProbeSet {
    /// `(name, wait, probe)` for each probe block.
    pub fn new(probes: Vec<(String, bool, BoxProbe)>) -> Self {
        ProbeSet {
            entries: probes
                .into_iter()
                .map(|(name, wait, probe)| Entry {
                    name,
                    wait,
                    probe: Arc::new(probe),
                    last: Mutex::new(None),
                    failures: AtomicU64::new(0),
                    hist: Mutex::new(Hist::default()),
                })
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Runs every probe (only `wait` ones with `wait_only`) concurrently; a probe not done within
    /// `limit` is cancelled and reported "timed out" (as mittnite's `/status` does).
    pub async fn check(&self, wait_only: bool, limit: Duration) -> Vec<Outcome> {
        let futures = self
            .entries
            .iter()
            .filter(|e| e.wait || !wait_only)
            .map(|e| async move {
                let started = Instant::now();
                let result = tokio::time::timeout(limit, gantry_probes::attempt(&**e.probe)).await;
                let duration = started.elapsed();
                let (ok, message) = match result {
                    Ok(Ok(())) => (true, String::new()),
                    Ok(Err(err)) => (false, err.to_string()),
                    Err(_) => (false, "timed out".to_string()),
                };
                let outcome = Outcome {
                    name: e.name.clone(),
                    wait: e.wait,
                    ok,
                    message,
                    duration,
                    at: SystemTime::now(),
                };
                self.record(e, &outcome);
                outcome
            });
        futures_util::future::join_all(futures).await
    }

    fn record(&self, e: &Entry, outcome: &Outcome) {
        if !outcome.ok {
            e.failures.fetch_add(1, Ordering::Relaxed);
        }
        {
            let mut h = e.hist.lock().unwrap_or_else(|p| p.into_inner());
            let secs = outcome.duration.as_secs_f64();
            if let Some(i) = BUCKETS.iter().position(|&b| secs <= b) {
                h.counts[i] += 1;
            }
            h.sum += secs;
            h.count += 1;
        }
        *e.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(outcome.clone());
    }

    /// Each probe's last outcome (`None` if it never ran through the API).
    pub fn last(&self) -> Vec<(String, bool, Option<Outcome>)> {
        self.entries
            .iter()
            .map(|e| {
                let last = e.last.lock().unwrap_or_else(|p| p.into_inner()).clone();
                (e.name.clone(), e.wait, last)
            })
            .collect()
    }

    pub fn metrics(&self) -> Vec<ProbeMetrics> {
        self.entries
            .iter()
            .map(|e| {
                let h = e.hist.lock().unwrap_or_else(|p| p.into_inner());
                let up = e
                    .last
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .as_ref()
                    .map(|o| o.ok);
                ProbeMetrics {
                    name: e.name.clone(),
                    up,
                    failures: e.failures.load(Ordering::Relaxed),
                    buckets: BUCKETS.iter().copied().zip(h.counts).collect(),
                    sum: h.sum,
                    count: h.count,
                }
            })
            .collect()
    }
}
