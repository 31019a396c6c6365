//! The status port (`up -p PORT`, plain HTTP on every interface, as mittnite's probe server):
//!
//! | route | answer |
//! |---|---|
//! | `/status` | mittnite's: every probe run at once (1 s in all), `{"probes":{NAME:{"ok","message"}}}`, 200 if all ok else 503 |
//! | `/healthz` | 200 `ok` while gantry's supervisor answers (its runtime is alive) |
//! | `/readyz` | 200 once the run phase is reached, every job of it is running and ready (its own readiness check passed; `docs/readiness.md`) or completed, no lazy job failed for good, and every `wait` probe passes; else 503 with the reason |
//! | `/metrics` | Prometheus text: jobs, probes, reloads per watch, lazy jobs' connections, gantry's own memory and descriptors |
//!
//! Connections are limited as the API's are (`listen`'s module doc).
//!
//! Nothing here shows an environment or a probe's password (probe messages are scrubbed by
//! `gantry-probes`).

use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;

use super::listen::{http1_server, Slots};
use super::{reply, Body, Servers, Shared};
use crate::metrics::{self, Kind as MKind, Text};
use crate::supervisor::JobState;

/// Binds `0.0.0.0:port` (and `[::]` where it can) and serves the routes above.
pub async fn start(port: u16, shared: Arc<Shared>, servers: &mut Servers) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port))
        .await
        .map_err(|e| format!("cannot listen on port {port} for -p/--probe-listen-port: {e}"))?;
    tracing::info!("status, health and metrics on port {port}");
    servers.push(tokio::spawn(async move {
        let mut slots = Slots::new("status port");
        loop {
            let (slot, stream, _) = slots.accept(|| listener.accept()).await;
            let shared = shared.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let shared = shared.clone();
                    async move { Ok::<_, std::convert::Infallible>(handle(&shared, req).await) }
                });
                let _ = http1_server()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
                drop(slot);
            });
        }
    }));
    Ok(())
}

async fn handle(shared: &Shared, req: Request<Incoming>) -> Response<Body> {
    match req.uri().path() {
        "/status" => status(shared).await,
        "/healthz" => reply(StatusCode::OK, "text/plain; charset=utf-8", "ok\n"),
        "/readyz" => {
            let (ready, reason) = shared.ready().await;
            let code = if ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            reply(code, "text/plain; charset=utf-8", format!("{reason}\n"))
        }
        "/metrics" => reply(
            StatusCode::OK,
            metrics::CONTENT_TYPE,
            render_metrics(shared),
        ),
        _ => super::text_error(StatusCode::NOT_FOUND, "404 page not found"),
    }
}

/// mittnite's `/status`.
async fn status(shared: &Shared) -> Response<Body> {
    let results = shared.probes.check(false, Duration::from_secs(1)).await;
    let mut probes = serde_json::Map::new();
    // Go encodes map keys sorted.
    let mut sorted = results.clone();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    for r in &sorted {
        probes.insert(r.name.clone(), json!({"ok": r.ok, "message": r.message}));
    }
    let ok = results.iter().all(|r| r.ok);
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    // json.Encoder ends with a newline.
    reply(
        code,
        "application/json",
        format!("{}\n", json!({"probes": probes})),
    )
}

const STATES: [&str; 9] = [
    "not-started",
    "idle",
    "starting",
    "running",
    "backing-off",
    "stopping",
    "completed",
    "failed",
    "stopped",
];

/// The `/metrics` text.
pub fn render_metrics(shared: &Shared) -> String {
    let jobs = shared.handle.list();
    let mut t = Text::new();
    t.family(
        "gantry_job_up",
        MKind::Gauge,
        "Whether the job's process is running (1) or not (0).",
    );
    for j in &jobs {
        let up = matches!(j.status.state, JobState::Running { .. });
        t.sample(
            "gantry_job_up",
            &[("job", &j.name)],
            if up { 1.0 } else { 0.0 },
        );
    }
    t.family(
        "gantry_job_ready",
        MKind::Gauge,
        "Whether the job runs and is ready (its ready check passed, READY=1, its fd line; or it has no check).",
    );
    for j in &jobs {
        t.sample(
            "gantry_job_ready",
            &[("job", &j.name)],
            if j.status.ready { 1.0 } else { 0.0 },
        );
    }
    t.family(
        "gantry_job_state",
        MKind::Gauge,
        "The job's state: 1 for the current one.",
    );
    for j in &jobs {
        let now = j.status.state.name();
        for s in STATES {
            t.sample(
                "gantry_job_state",
                &[("job", &j.name), ("state", s)],
                if s == now { 1.0 } else { 0.0 },
            );
        }
    }
    t.family(
        "gantry_job_starts_total",
        MKind::Counter,
        "Processes started for the job.",
    );
    for j in &jobs {
        t.sample(
            "gantry_job_starts_total",
            &[("job", &j.name)],
            j.status.starts as f64,
        );
    }
    t.family(
        "gantry_job_restarts_total",
        MKind::Counter,
        "Starts of the job after its first.",
    );
    for j in &jobs {
        t.sample(
            "gantry_job_restarts_total",
            &[("job", &j.name)],
            j.status.restarts as f64,
        );
    }
    t.family(
        "gantry_job_last_exit_code",
        MKind::Gauge,
        "Exit code of the job's last process (128+N for signal N); absent before its first exit.",
    );
    for j in &jobs {
        if let Some(s) = j.status.last_exit {
            t.sample(
                "gantry_job_last_exit_code",
                &[("job", &j.name)],
                s.code() as f64,
            );
        }
    }
    t.family(
        "gantry_job_uptime_seconds",
        MKind::Gauge,
        "Seconds since the job's current process started (0 when not running).",
    );
    for j in &jobs {
        let up = match j.status.state {
            JobState::Running { since, .. } | JobState::Stopping { since, .. } => {
                since.elapsed().as_secs_f64()
            }
            _ => 0.0,
        };
        t.sample("gantry_job_uptime_seconds", &[("job", &j.name)], up);
    }
    let probes = shared.probes.metrics();
    if !probes.is_empty() {
        t.family(
            "gantry_probe_up",
            MKind::Gauge,
            "Whether the probe's last check passed (absent before its first).",
        );
        for p in &probes {
            if let Some(up) = p.up {
                t.sample(
                    "gantry_probe_up",
                    &[("probe", &p.name)],
                    if up { 1.0 } else { 0.0 },
                );
            }
        }
        t.family(
            "gantry_probe_failures_total",
            MKind::Counter,
            "Failed checks of the probe.",
        );
        for p in &probes {
            t.sample(
                "gantry_probe_failures_total",
                &[("probe", &p.name)],
                p.failures as f64,
            );
        }
        t.family(
            "gantry_probe_check_duration_seconds",
            MKind::Histogram,
            "How long the probe's checks took.",
        );
        for p in &probes {
            t.histogram(
                "gantry_probe_check_duration_seconds",
                &[("probe", &p.name)],
                &p.buckets,
                p.sum,
                p.count,
            );
        }
    }
    let reloads = crate::watch::stats::snapshot();
    if !reloads.is_empty() {
        t.family(
            "gantry_watch_reloads_total",
            MKind::Counter,
            "Changes a watch reloaded its job for, by outcome: signal or restart delivered, or why not (validate_failed, validate_timed_out, validate_not_run, not_delivered).",
        );
        for (job, watch, reason, n) in &reloads {
            t.sample(
                "gantry_watch_reloads_total",
                &[("job", job), ("watch", watch), ("reason", reason)],
                *n as f64,
            );
        }
    }
    lazy_metrics(shared, &mut t);
    t.family(
        "gantry_ready",
        MKind::Gauge,
        "Whether gantry reached its run phase (1) or not (0).",
    );
    t.sample(
        "gantry_ready",
        &[("phase", shared.phase().name())],
        if shared.phase() == super::Phase::Run {
            1.0
        } else {
            0.0
        },
    );
    if let Some(rss) = metrics::resident_bytes() {
        t.family(
            "process_resident_memory_bytes",
            MKind::Gauge,
            "gantry's resident memory in bytes.",
        );
        t.sample("process_resident_memory_bytes", &[], rss as f64);
    }
    if let Some(fds) = metrics::open_fds() {
        t.family(
            "process_open_fds",
            MKind::Gauge,
            "gantry's open file descriptors.",
        );
        t.sample("process_open_fds", &[], fds as f64);
    }
    t.finish()
}

/// The lazy jobs' connection counters.
fn lazy_metrics(shared: &Shared, t: &mut Text) {
    use std::sync::atomic::Ordering::Relaxed;
    let lazy = shared.lazy();
    if lazy.is_empty() {
        return;
    }
    type Get = fn(&crate::lazy::gate::Counters) -> u64;
    let families: [(&str, MKind, &str, Get); 9] = [
        (
            "gantry_lazy_connections_accepted_total",
            MKind::Counter,
            "Connections a lazy job's listeners admitted.",
            |c| c.accepted.load(Relaxed),
        ),
        (
            "gantry_lazy_connections_active",
            MKind::Gauge,
            "Connections open now through a lazy job's listeners.",
            |c| c.active.load(Relaxed),
        ),
        (
            "gantry_lazy_connections_held",
            MKind::Gauge,
            "Connections open now that still wait for the job's upstream to answer.",
            |c| c.held.load(Relaxed),
        ),
        (
            "gantry_lazy_connections_held_total",
            MKind::Counter,
            "Connections that arrived before the job's process answered and were held through its start.",
            |c| c.held_total.load(Relaxed),
        ),
        (
            "gantry_lazy_cold_starts_total",
            MKind::Counter,
            "Starts of a lazy job for a connection, counted when its upstream first answered.",
            |c| c.cold_starts.load(Relaxed),
        ),
        (
            "gantry_lazy_failed_spin_ups_total",
            MKind::Counter,
            "Starts of a lazy job whose upstream did not answer within spinUpTimeout.",
            |c| c.failed_spin_ups.load(Relaxed),
        ),
        (
            "gantry_lazy_cool_down_stops_total",
            MKind::Counter,
            "Stops of a lazy job after coolDownTimeout without a connection.",
            |c| c.cool_down_stops.load(Relaxed),
        ),
        (
            "gantry_lazy_received_bytes_total",
            MKind::Counter,
            "Bytes relayed from clients to a lazy job.",
            |c| c.traffic.up.load(Relaxed),
        ),
        (
            "gantry_lazy_sent_bytes_total",
            MKind::Counter,
            "Bytes relayed from a lazy job to its clients.",
            |c| c.traffic.down.load(Relaxed),
        ),
    ];
    for (name, kind, help, get) in families {
        t.family(name, kind, help);
        for (job, c) in lazy {
            t.sample(name, &[("job", job)], get(c) as f64);
        }
    }
    t.family(
        "gantry_lazy_spin_up_duration_seconds",
        MKind::Histogram,
        "Time from a lazy job's start for a connection to its upstream's first answer.",
    );
    for (job, c) in lazy {
        let (buckets, sum, count) = c.spin_up.snapshot();
        t.histogram(
            "gantry_lazy_spin_up_duration_seconds",
            &[("job", job)],
            &buckets,
            sum,
            count,
        );
    }
}
