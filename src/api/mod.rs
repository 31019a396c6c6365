//! gantry's run-time control API (`up --api`) and its status, health and metrics port (`up -p`).
//!
//! Off by default: without `--api` and `-p` none of this runs (no thread, task, socket or ring).
//! With them, `up` builds one [`Shared`] over the supervisor's [`Handle`] and starts the servers on
//! its runtime, from the boot phase on.
//!
//! | module | owns |
//! |---|---|
//! | `listen` | the listening sockets: unix socket set-up (mode, group, stale/live), SO_PEERCRED, bearer tokens, accept loops |
//! | `routes` | mittnite's `/v1` routes (paths, bodies, status codes) and gantry's `/v2` routes |
//! | `stream` | following a job's log ring over WebSocket (one text message per line) or as NDJSON |
//! | `probes` | the configured probes, run on request, with their last result and check metrics |
//! | `status` | the `-p` port: mittnite's `/status`, `/healthz`, `/readyz`, `/metrics` |
//!
//! HTTP is hyper's (http/1.1 with upgrades); WebSocket framing is tungstenite's.

pub mod listen;
pub mod probes;
pub mod routes;
pub mod status;
pub mod stream;

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::{Response, StatusCode};

use crate::logring::Rings;
use crate::supervisor::{Handle, JobState};

/// The default API address (mittnite's `unix://` form).
pub const DEFAULT_ADDRESS: &str = "unix:///run/gantry.sock";

/// The port of `-p` given without a value (mittnite's).
pub const DEFAULT_STATUS_PORT: u16 = 9102;

/// The flags of `up` for the API, the status port and the pidfile.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ApiArgs {
    /// Serve the control API (off by default).
    #[arg(long)]
    pub api: bool,
    /// Where the API listens: unix:///PATH (or a plain path) or tcp://HOST:PORT.
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_ADDRESS, env = "GANTRY_API_ADDRESS")]
    pub api_listen_address: String,
    /// Make the API socket 0660 and owned by this group (name or gid); default 0600.
    #[arg(long, value_name = "GROUP")]
    pub api_group: Option<String>,
    /// Uids (comma-separated) that may read through the API (list, status, logs) but not control.
    #[arg(long, value_name = "UIDS", value_delimiter = ',')]
    pub api_read_uids: Vec<u32>,
    /// File with the bearer token a TCP API requires (else env GANTRY_API_TOKEN).
    #[arg(long, value_name = "PATH")]
    pub api_token_file: Option<PathBuf>,
    /// Bytes of output kept per job for `logs` (suffixes K, KiB, M, MiB).
    #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = parse_size)]
    pub api_log_buffer: usize,
    /// Serve /status, /healthz, /readyz and /metrics on this TCP port (9102 when no port is given).
    #[arg(short = 'p', long, value_name = "PORT", num_args = 0..=1, default_missing_value = "9102")]
    pub probe_listen_port: Option<u16>,
    /// Write gantry's pid to this file (a stale one is replaced; a live one refuses to start).
    #[arg(long, value_name = "PATH")]
    pub pidfile: Option<PathBuf>,
}

/// `1MiB`, `512K`, `65536`: a byte count.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: usize = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (for example 1MiB, 512K, 65536)"))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        "g" | "gb" | "gib" => 1024 * 1024 * 1024,
        other => {
            return Err(format!(
                "unknown size unit {other:?} in {s:?} (use K, KiB, M or MiB)"
            ))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size {s:?} is too large"))
}

/// Where the API listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    Unix(PathBuf),
    Tcp(String),
}

impl Address {
    /// `unix:///run/x.sock`, `/run/x.sock`, `tcp://127.0.0.1:8080`.
    pub fn parse(s: &str) -> Result<Address, String> {
        if let Some(path) = s.strip_prefix("unix://") {
            if path.is_empty() {
                return Err(format!("{s:?}: the socket path is missing"));
            }
            Ok(Address::Unix(PathBuf::from(path)))
        } else if let Some(hostport) = s.strip_prefix("tcp://") {
            if hostport
                .rsplit_once(':')
                .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
            {
                return Err(format!("{s:?}: expected tcp://HOST:PORT"));
            }
            Ok(Address::Tcp(hostport.to_string()))
        } else if s.contains("://") {
            Err(format!("{s:?}: expected unix://PATH or tcp://HOST:PORT"))
        } else if s.is_empty() {
            Err("the API address is empty".to_string())
        } else {
            Ok(Address::Unix(PathBuf::from(s)))
        }
    }
}

/// Which part of `up` is running, for `/readyz` and `/v2/health`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    Boot = 0,
    Probe = 1,
    Run = 2,
    Shutdown = 3,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Boot => "boot",
            Phase::Probe => "probe",
            Phase::Run => "run",
            Phase::Shutdown => "shutdown",
        }
    }
}

/// What every server of this module shares.
pub struct Shared {
    pub handle: Handle,
    /// Every job's log ring (API on), else `None`.
    pub rings: Option<Arc<Rings>>,
    pub probes: probes::ProbeSet,
    phase: AtomicU8,
    /// When each job's state last changed (wall clock), in the handle's list order.
    changes: Vec<Mutex<SystemTime>>,
    /// Static facts about each job that the status routes show (no environment).
    pub facts: Vec<JobFacts>,
    /// Each job's last `/v1` status body and what it was made from, in list order: the body is
    /// served again while those are unchanged (see `routes::v1_status_reply`).
    pub(crate) status_bodies: Vec<Mutex<Option<(routes::StatusKey, Bytes)>>>,
    /// Each lazy job's connection counters, once its listeners are open (run phase).
    lazy: std::sync::OnceLock<Vec<(Arc<str>, Arc<crate::lazy::gate::Counters>)>>,
}

/// What the API may show of a job's configuration: never its environment.
#[derive(Debug, Clone, Default)]
pub struct JobFacts {
    pub name: String,
    pub command: String,
    pub args: Vec<String>,
    pub can_fail: bool,
    pub controllable: bool,
    pub one_time: bool,
    pub max_attempts: Option<i64>,
    pub working_dir: Option<String>,
    pub stdout: Option<String>,
    pub stderr: Option<String>,
    pub timestamps: bool,
}

impl Shared {
    pub fn new(
        handle: Handle,
        rings: Option<Arc<Rings>>,
        probes: probes::ProbeSet,
        facts: Vec<JobFacts>,
    ) -> Arc<Shared> {
        let now = SystemTime::now();
        let n = handle.list().len();
        let shared = Arc::new(Shared {
            handle,
            rings,
            probes,
            phase: AtomicU8::new(Phase::Boot as u8),
            changes: (0..n).map(|_| Mutex::new(now)).collect(),
            status_bodies: (0..n).map(|_| Mutex::new(None)).collect(),
            facts,
            lazy: std::sync::OnceLock::new(),
        });
        // Follow every job's state for its "last change" time.
        for (i, job) in shared.handle.list().iter().enumerate() {
            let Ok(mut rx) = shared.handle.subscribe(&job.name) else {
                continue;
            };
            let weak = Arc::downgrade(&shared);
            tokio::spawn(async move {
                let mut last = rx.borrow().state.name();
                while rx.changed().await.is_ok() {
                    let state = rx.borrow().state.name();
                    if state == last {
                        continue;
                    }
                    last = state;
                    let Some(shared) = weak.upgrade() else { break };
                    if let Some(slot) = shared.changes.get(i) {
                        *slot.lock().unwrap_or_else(|e| e.into_inner()) = SystemTime::now();
                    }
                }
            });
        }
        shared
    }

    pub fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::SeqCst);
    }

    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::SeqCst) {
            0 => Phase::Boot,
            1 => Phase::Probe,
            2 => Phase::Run,
            _ => Phase::Shutdown,
        }
    }

    /// When job number `i` (list order) last changed state.
    pub fn last_change(&self, i: usize) -> SystemTime {
        self.changes
            .get(i)
            .map(|m| *m.lock().unwrap_or_else(|e| e.into_inner()))
            .unwrap_or(SystemTime::UNIX_EPOCH)
    }

    /// Every lazy job's counters (empty before the run phase opens the listeners).
    pub fn lazy(&self) -> &[(Arc<str>, Arc<crate::lazy::gate::Counters>)] {
        self.lazy.get().map_or(&[], Vec::as_slice)
    }

    /// The counters of lazy job `name`.
    pub fn lazy_counters(&self, name: &str) -> Option<&crate::lazy::gate::Counters> {
        self.lazy()
            .iter()
            .find(|(j, _)| **j == *name)
            .map(|(_, c)| &**c)
    }

    pub fn facts(&self, name: &str) -> Option<&JobFacts> {
        self.facts.iter().find(|f| f.name == name)
    }

    /// Whether `up` is ready: the run phase reached, not shutting down, every job of the run phase
    /// running (and ready) or completed, every lazy job but one failed for good, and every `wait`
    /// probe passing now.
    pub async fn ready(&self) -> (bool, String) {
        if self.phase() != Phase::Run || self.handle.is_shutting_down() {
            return (false, format!("phase {}", self.phase().name()));
        }
        for job in self.handle.list() {
            if job.kind != crate::supervisor::Kind::Job {
                continue;
            }
            // A lazy job is started by a connection and stopped after its cool-down: idle, spinning
            // up for a held client or cooling down, it is as ready as it is meant to be (answering
            // 503 while it spins up would take the container out of service just when traffic
            // comes). Only one that failed for good, whose listeners refuse connections, counts.
            if self.lazy_counters(&job.name).is_some() {
                if let JobState::Failed(status) = &job.status.state {
                    return (
                        false,
                        format!("lazy job {:?} has failed ({status})", job.name),
                    );
                }
                continue;
            }
            if !matches!(
                job.status.state,
                JobState::Running { .. } | JobState::Completed(_) | JobState::Idle
            ) {
                return (
                    false,
                    format!("job {:?} is {}", job.name, job.status.state.name()),
                );
            }
            // A running job counts once its own readiness check says so.
            if matches!(job.status.state, JobState::Running { .. }) && !job.status.ready {
                return (
                    false,
                    format!("job {:?} is running but not ready", job.name),
                );
            }
        }
        let results = self.probes.check(true, Duration::from_secs(1)).await;
        if let Some(bad) = results.iter().find(|r| !r.ok) {
            return (false, format!("probe {:?}: {}", bad.name, bad.message));
        }
        (true, "ready".to_string())
    }
}

/// The body type of every response.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// A complete response.
pub fn reply(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut resp = Response::new(Full::new(body.into()).boxed_unsync());
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    resp
}

/// A JSON response: a `serde_json::Value`, or a typed body serialised without one.
pub fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<Body> {
    match json_bytes(value) {
        Ok(body) => reply(status, "application/json", body),
        Err(e) => text_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// `value` as JSON bytes.
pub fn json_bytes(value: &impl serde::Serialize) -> serde_json::Result<Bytes> {
    // Sized for a job's status at once (serde_json's own start is 128 bytes, then it regrows).
    let mut body = Vec::with_capacity(512);
    serde_json::to_writer(&mut body, value)?;
    Ok(body.into())
}

/// A plain-text error, as Go's `http.Error` writes it (mittnite's v1 bodies).
pub fn text_error(status: StatusCode, message: &str) -> Response<Body> {
    let mut resp = reply(status, "text/plain; charset=utf-8", format!("{message}\n"));
    resp.headers_mut().insert(
        "x-content-type-options",
        hyper::header::HeaderValue::from_static("nosniff"),
    );
    resp
}

/// An empty response.
pub fn empty(status: StatusCode) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::new()).boxed_unsync());
    *resp.status_mut() = status;
    resp
}

/// RFC 3339 in UTC with nanoseconds, as Go's `time.Time` marshals.
pub fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// The running servers; [`Servers::close`] removes the unix socket and the pidfile.
#[derive(Debug, Default)]
pub struct Servers {
    pub socket: Option<PathBuf>,
    pub pidfile: Option<PathBuf>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Servers {
    pub fn push(&mut self, task: tokio::task::JoinHandle<()>) {
        self.tasks.push(task);
    }

    /// Stops accepting, and removes what `up` created on disk.
    pub fn close(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
        if let Some(path) = self.socket.take() {
            let _ = std::fs::remove_file(&path);
        }
        if let Some(path) = self.pidfile.take() {
            crate::pidfile::remove(&path);
        }
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        self.close();
    }
}

/// Starts what `args` asks for over `shared`: the API (with `--api`) and the status port (with
/// `-p`). Errors are for people: what failed and what to do.
pub async fn start(
    args: &ApiArgs,
    shared: &Arc<Shared>,
    servers: &mut Servers,
) -> Result<(), String> {
    if args.api {
        let address = Address::parse(&args.api_listen_address)
            .map_err(|e| format!("--api-listen-address {e}"))?;
        listen::start_api(&address, args, shared.clone(), servers).await?;
    }
    if let Some(port) = args.probe_listen_port {
        status::start(port, shared.clone(), servers).await?;
    }
    Ok(())
}

/// Everything `up` starts for `args` (nothing at all when none of the flags is given): the pidfile,
/// the log rings, the API and the status port. The servers stop, and the socket and pidfile are
/// removed, when the returned [`Servers`] is dropped.
pub async fn start_for_up(
    args: &ApiArgs,
    plan: &crate::config::Plan,
    ctx: &crate::supervisor::Ctx,
    handle: Handle,
) -> Result<(Servers, Option<Arc<Shared>>), String> {
    let mut servers = Servers::default();
    if let Some(path) = &args.pidfile {
        crate::pidfile::acquire(path)?;
        servers.pidfile = Some(path.clone());
    }
    if !args.api && args.probe_listen_port.is_none() {
        return Ok((servers, None));
    }
    let rings = if args.api {
        let names = handle
            .list()
            .into_iter()
            .map(|j| j.name)
            .collect::<Vec<_>>();
        let rings = Arc::new(Rings::new(
            names.iter().map(String::as_str),
            args.api_log_buffer,
        ));
        ctx.copiers.enable_rings(rings.clone());
        Some(rings)
    } else {
        None
    };
    let mut probes = Vec::new();
    for p in &plan.probes {
        match crate::probe_phase::build_with_reaper(p, &ctx.reaper) {
            Ok(probe) => probes.push((p.name.clone(), p.wait, probe)),
            Err(e) => return Err(format!("{}: {e}", p.pos)),
        }
    }
    if !probes.is_empty() {
        gantry_probes::install_crypto_provider();
    }
    let facts = plan
        .boot
        .iter()
        .map(|b| facts(&b.name, &b.command, b.can_fail, false, true, None))
        .chain(plan.jobs.iter().map(|j| {
            let attempts = match j.max_attempts {
                crate::config::Attempts::Limited(n) => i64::from(n),
                crate::config::Attempts::Forever => -1,
            };
            facts(
                &j.name,
                &j.command,
                j.can_fail,
                j.controllable,
                j.one_time,
                Some(attempts),
            )
        }))
        .collect();
    let shared = Shared::new(handle, rings, probes::ProbeSet::new(probes), facts);
    start(args, &shared, &mut servers).await?;
    Ok((servers, Some(shared)))
}

fn facts(
    name: &str,
    command: &crate::config::CommandSpec,
    can_fail: bool,
    controllable: bool,
    one_time: bool,
    max_attempts: Option<i64>,
) -> JobFacts {
    let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
    JobFacts {
        name: name.to_string(),
        command: command.program.clone(),
        args: command.args.clone(),
        can_fail,
        controllable,
        one_time,
        max_attempts,
        working_dir: path(&command.working_dir),
        stdout: path(&command.output.stdout),
        stderr: path(&command.output.stderr),
        timestamps: command.output.timestamps.is_some(),
    }
}

/// Shows the lazy jobs' counters (from their gates) in `/metrics` and `/v2` (nothing when the
/// servers are off).
pub fn set_lazy(shared: &Option<Arc<Shared>>, gates: &[crate::lazy::gate::Gate]) {
    if let Some(s) = shared {
        let _ = s.lazy.set(
            gates
                .iter()
                .map(|g| (g.job.clone(), g.counters.clone()))
                .collect(),
        );
    }
}

/// Tells the servers which phase `up` is in (nothing when they are off).
pub fn set_phase(shared: &Option<Arc<Shared>>, phase: Phase) {
    if let Some(s) = shared {
        s.set_phase(phase);
    }
}
