//! The API's routes.
//!
//! **`/v1`: mittnite's, same paths, methods, bodies and status codes**, so mittnitectl and scripts
//! written for it keep working:
//!
//! | route | answer |
//! |---|---|
//! | `GET /v1/jobs` | 200, JSON array of the controllable jobs' names |
//! | `GET /v1/job/{job}/status` | 200, `{"pid","running","phase":{"reason","lastChange"},"config"}` |
//! | `POST /v1/job/{job}/start`, `stop`, `restart` | 200, empty body |
//! | `GET /v1/job/{job}/logs?follow=true&taillen=N` | WebSocket, one text message per line |
//!
//! A path that matches with another method is 405 (before the job is looked at, as gorilla/mux
//! does); an unknown job is 400 `can't find ignition config for job "x"`; a job that is not
//! `controllable` is 404 `job "x" not found or is not controllable`. The job's config in `status`
//! never includes its environment.
//!
//! **`/v2`: gantry's own**, JSON everywhere, every job (boot and non-controllable ones too, read-only):
//! `GET /v2/jobs`, `GET /v2/jobs/{job}` (with a lazy job's connection counters),
//! `POST /v2/jobs/{job}/start|stop|restart`,
//! `POST /v2/jobs/{job}/signal/{SIG}`, `GET /v2/jobs/{job}/logs?follow=true&taillen=N` (NDJSON, or
//! WebSocket when asked to upgrade), `GET /v2/probes` (each probe's last result; `?check=true` checks
//! first), `GET /v2/health`. Errors are
//! `{"error": "..."}` with 404 (no such job), 409 (not controllable, not running), 400 (bad signal),
//! 503 (shutting down).
//!
//! Every request first passes the connection's access check (`listen`): 401 without the TCP token,
//! 403 for a peer that may not use the API or (read-only peers) may not control.

use std::time::{Duration, SystemTime};

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};

use super::listen::{Access, Conn};
use super::{
    empty, json as json_reply, json_bytes, reply, rfc3339, stream, text_error, Body, Shared,
};
use crate::exit::ExitStatus;
use crate::supervisor::{ControlError, JobState, JobSummary, Kind};

/// Answers one request.
pub async fn handle(conn: Conn, req: Request<Incoming>) -> Response<Body> {
    if !conn.token_ok(
        req.headers()
            .get(hyper::header::AUTHORIZATION)
            .map(|v| v.as_bytes()),
    ) {
        tracing::warn!(
            "API: refused {} {} from {}: missing or wrong bearer token",
            req.method(),
            req.uri().path(),
            conn.peer
        );
        let mut resp = json_reply(
            StatusCode::UNAUTHORIZED,
            &json!({"error": "a bearer token is required (Authorization: Bearer TOKEN)"}),
        );
        resp.headers_mut().insert(
            hyper::header::WWW_AUTHENTICATE,
            hyper::header::HeaderValue::from_static("Bearer"),
        );
        return resp;
    }
    if conn.access == Access::Denied {
        return json_reply(
            StatusCode::FORBIDDEN,
            &json!({"error": format!("permission denied: {} may not use gantry's API (root and gantry's own user may; see --api-read-uids)", conn.peer)}),
        );
    }
    let path = req.uri().path().to_string();
    let segs: Vec<std::borrow::Cow<str>> = path
        .trim_start_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    let segs: Vec<&str> = segs.iter().map(|s| s.as_ref()).collect();
    match segs.as_slice() {
        ["v1", "jobs"] => allow(&req, &[Method::GET]).unwrap_or_else(|| v1_list(&conn.shared)),
        ["v1", "job", job, action] => {
            let method = match *action {
                "start" | "stop" | "restart" => Method::POST,
                "status" | "logs" => Method::GET,
                _ => return not_found(),
            };
            if let Some(resp) = allow(&req, std::slice::from_ref(&method)) {
                return resp;
            }
            if let Some(resp) = control_check(&conn, &method) {
                return resp;
            }
            v1_job(&conn, job, action, req).await
        }
        ["v2", "jobs"] => allow(&req, &[Method::GET]).unwrap_or_else(|| {
            let jobs: Vec<Value> = conn
                .shared
                .handle
                .list()
                .iter()
                .enumerate()
                .map(|(i, j)| job_json(&conn.shared, i, j))
                .collect();
            json_reply(StatusCode::OK, &Value::Array(jobs))
        }),
        ["v2", "jobs", job] => {
            allow(&req, &[Method::GET]).unwrap_or_else(|| match conn.shared.handle.find(job) {
                Some((i, j)) => json_reply(StatusCode::OK, &job_json(&conn.shared, i, &j)),
                None => no_such_job(job),
            })
        }
        ["v2", "jobs", job, action @ ("start" | "stop" | "restart")] => {
            if let Some(resp) = allow(&req, &[Method::POST]) {
                return resp;
            }
            if let Some(resp) = control_check(&conn, &Method::POST) {
                return resp;
            }
            v2_control(&conn.shared, job, action, None).await
        }
        ["v2", "jobs", job, "signal", sig] => {
            if let Some(resp) = allow(&req, &[Method::POST]) {
                return resp;
            }
            if let Some(resp) = control_check(&conn, &Method::POST) {
                return resp;
            }
            match crate::signals::parse(sig) {
                Ok(signal) => v2_control(&conn.shared, job, "signal", Some(signal)).await,
                Err(e) => json_reply(StatusCode::BAD_REQUEST, &json!({"error": e.to_string()})),
            }
        }
        ["v2", "jobs", job, "logs"] => {
            if let Some(resp) = allow(&req, &[Method::GET]) {
                return resp;
            }
            if conn.shared.handle.find(job).is_none() {
                return no_such_job(job);
            }
            let opts = stream::Options::from_query(req.uri().query());
            if stream::is_websocket(&req) {
                stream::websocket(&conn.shared, job, opts, req, conn.slot.clone())
            } else {
                stream::ndjson(&conn.shared, job, opts)
            }
        }
        ["v2", "probes"] => {
            if let Some(resp) = allow(&req, &[Method::GET]) {
                return resp;
            }
            // The last results, from the probe phase and later checks; `?check=true` checks now.
            if query_flag(req.uri().query(), "check") {
                conn.shared
                    .probes
                    .check(false, Duration::from_secs(5))
                    .await;
            }
            let list: Vec<Value> = conn
                .shared
                .probes
                .last()
                .into_iter()
                .map(|(name, wait, last)| match last {
                    Some(o) => json!({
                        "name": name,
                        "wait": wait,
                        "state": if o.ok { "ready" } else { "failing" },
                        "ok": o.ok,
                        "reason": o.message,
                        "message": o.message,
                        "duration_seconds": o.duration.as_secs_f64(),
                        "checked_at": rfc3339(o.at),
                    }),
                    None => json!({
                        "name": name,
                        "wait": wait,
                        "state": "unchecked",
                        "ok": Value::Null,
                        "reason": "not checked yet",
                        "message": "not checked yet",
                        "duration_seconds": Value::Null,
                        "checked_at": Value::Null,
                    }),
                })
                .collect();
            json_reply(StatusCode::OK, &Value::Array(list))
        }
        ["v2", "health"] => {
            if let Some(resp) = allow(&req, &[Method::GET]) {
                return resp;
            }
            let (ready, reason) = conn.shared.ready().await;
            let status = if ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            json_reply(
                status,
                &json!({
                    "alive": true,
                    "ready": ready,
                    "reason": reason,
                    "phase": conn.shared.phase().name(),
                    "shutting_down": conn.shared.handle.is_shutting_down(),
                }),
            )
        }
        _ => not_found(),
    }
}

/// Whether `name=true` (or `name=1`, or a bare `name`) is in the query string.
fn query_flag(query: Option<&str>, name: &str) -> bool {
    query.unwrap_or("").split('&').any(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, "true"));
        k == name && matches!(v, "true" | "1" | "")
    })
}

/// Go's `%XX` decoding of a path segment (job names with spaces and such).
fn percent_decode(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains('%') {
        return s.into();
    }
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned().into()
}

/// mittnite's (gorilla/mux's) 404 for an unknown path.
fn not_found() -> Response<Body> {
    text_error(StatusCode::NOT_FOUND, "404 page not found")
}

/// 405 unless the request's method is one of `methods`.
fn allow(req: &Request<Incoming>, methods: &[Method]) -> Option<Response<Body>> {
    if methods.contains(req.method()) {
        return None;
    }
    let mut resp = empty(StatusCode::METHOD_NOT_ALLOWED);
    let allowed = methods
        .iter()
        .map(Method::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if let Ok(v) = hyper::header::HeaderValue::from_str(&allowed) {
        resp.headers_mut().insert(hyper::header::ALLOW, v);
    }
    Some(resp)
}

/// 403 for a read-only peer asking to control.
fn control_check(conn: &Conn, method: &Method) -> Option<Response<Body>> {
    if *method == Method::POST && conn.access != Access::Control {
        return Some(json_reply(
            StatusCode::FORBIDDEN,
            &json!({"error": format!("permission denied: {} may read but not control (only root and gantry's own user may)", conn.peer)}),
        ));
    }
    None
}

fn no_such_job(name: &str) -> Response<Body> {
    json_reply(
        StatusCode::NOT_FOUND,
        &json!({"error": format!("no such job: {name:?}")}),
    )
}

fn v1_list(shared: &Shared) -> Response<Body> {
    let names: Vec<String> = shared
        .handle
        .list()
        .into_iter()
        .filter(|j| j.kind == Kind::Job && j.controllable)
        .map(|j| j.name)
        .collect();
    json_reply(StatusCode::OK, &json!(names))
}

async fn v1_job(conn: &Conn, name: &str, action: &str, req: Request<Incoming>) -> Response<Body> {
    let shared = &conn.shared;
    let Some((i, job)) = shared
        .handle
        .find(name)
        .filter(|(_, j)| j.kind == Kind::Job)
    else {
        return text_error(
            StatusCode::BAD_REQUEST,
            &format!("can't find ignition config for job {name:?}"),
        );
    };
    if !job.controllable {
        return text_error(
            StatusCode::NOT_FOUND,
            &format!("job {name:?} not found or is not controllable"),
        );
    }
    match action {
        "start" | "restart" | "stop" => {
            let result = match action {
                "start" if is_running(&job.status.state) => Ok(job.status.state),
                "start" => shared.handle.start(name).await,
                "restart" => shared.handle.restart(name).await,
                _ => shared.handle.stop(name).await,
            };
            match result {
                Ok(_) => empty(StatusCode::OK),
                Err(e) => control_error(e),
            }
        }
        "status" => v1_status_reply(shared, i, &job),
        _ => {
            if !stream::is_websocket(&req) {
                return text_error(StatusCode::BAD_REQUEST, "Bad Request");
            }
            stream::websocket(
                shared,
                name,
                stream::Options::from_query(req.uri().query()),
                req,
                conn.slot.clone(),
            )
        }
    }
}

fn control_error(e: ControlError) -> Response<Body> {
    let status = match e {
        ControlError::UnknownJob(_) => StatusCode::NOT_FOUND,
        ControlError::NotRunning(_) => StatusCode::CONFLICT,
        ControlError::ShuttingDown | ControlError::Gone(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    json_reply(status, &json!({"error": e.to_string()}))
}

fn is_running(state: &JobState) -> bool {
    matches!(state, JobState::Running { .. } | JobState::Stopping { .. })
}

/// mittnite's phase reason for a state.
fn reason(state: &JobState) -> &'static str {
    match state {
        JobState::NotStarted => "awaitingReadiness",
        JobState::Idle => "awaitingConnection",
        JobState::Starting | JobState::Running { .. } => "started",
        JobState::BackingOff { .. } => "crashLooping",
        JobState::Stopping { .. } | JobState::Stopped(_) => "stopped",
        JobState::Completed(_) => "completed",
        JobState::Failed(_) => "failed",
    }
}

/// mittnite's `CommonJobStatus`, serialised straight from borrowed fields (no intermediate JSON
/// value: this answers the busiest route). Field order is mittnite's, as Go marshals structs.
#[derive(serde::Serialize)]
struct V1Status<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pid: Option<i32>,
    running: bool,
    phase: V1Phase,
    config: V1Config<'a>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct V1Phase {
    reason: &'static str,
    last_change: String,
}

/// The job's configuration as mittnite's `JobConfig` marshals it, without `env`; only the name when
/// gantry has no facts about the job.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum V1Config<'a> {
    Full(V1JobConfig<'a>),
    Name { name: &'a str },
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct V1JobConfig<'a> {
    name: &'a str,
    command: &'a str,
    args: &'a [String],
    can_fail: bool,
    controllable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    working_directory: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stdout: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stderr: Option<&'a str>,
    enable_timestamps: bool,
    timestamp_format: &'static str,
    custom_timestamp_format: &'static str,
    watch: Option<()>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_attempts: Option<i64>,
    one_time: bool,
    lazy: Option<()>,
    listen: Option<()>,
}

/// What a job's `/v1` status body is made of besides its static configuration: while these are
/// unchanged, the body last serialised is served again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StatusKey {
    pid: Option<i32>,
    running: bool,
    reason: &'static str,
    last_change: SystemTime,
}

/// `GET /v1/job/{job}/status`: the body of [`v1_status`], from the job's cache slot when the
/// [`StatusKey`] is the one it was made from.
fn v1_status_reply(shared: &Shared, i: usize, job: &JobSummary) -> Response<Body> {
    let key = StatusKey {
        pid: job.status.state.pid(),
        running: is_running(&job.status.state),
        reason: reason(&job.status.state),
        last_change: shared.last_change(i),
    };
    let Some(slot) = shared.status_bodies.get(i) else {
        return json_reply(StatusCode::OK, &v1_status(shared, job, key));
    };
    let mut cached = slot.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, body)) = cached.as_ref().filter(|(k, _)| *k == key) {
        return reply(StatusCode::OK, "application/json", body.clone());
    }
    match json_bytes(&v1_status(shared, job, key)) {
        Ok(body) => {
            *cached = Some((key, body.clone()));
            reply(StatusCode::OK, "application/json", body)
        }
        Err(e) => text_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// The body made from `key` (what changes) and the job's facts (what does not).
fn v1_status<'a>(shared: &'a Shared, job: &'a JobSummary, key: StatusKey) -> V1Status<'a> {
    let config = match shared.facts(&job.name) {
        None => V1Config::Name { name: &job.name },
        Some(f) => V1Config::Full(V1JobConfig {
            name: &f.name,
            command: &f.command,
            args: &f.args,
            can_fail: f.can_fail,
            controllable: f.controllable,
            working_directory: f.working_dir.as_deref(),
            stdout: f.stdout.as_deref(),
            stderr: f.stderr.as_deref(),
            enable_timestamps: f.timestamps,
            timestamp_format: "",
            custom_timestamp_format: "",
            watch: None,
            max_attempts: f.max_attempts,
            one_time: f.one_time,
            lazy: None,
            listen: None,
        }),
    };
    V1Status {
        pid: key.pid,
        running: key.running,
        phase: V1Phase {
            reason: key.reason,
            last_change: rfc3339(key.last_change),
        },
        config,
    }
}

fn exit_json(s: Option<ExitStatus>) -> Value {
    match s {
        None => Value::Null,
        Some(s) => json!({
            "code": s.code(),
            "signal": match s { ExitStatus::Signaled(n) => json!(n), _ => Value::Null },
            "text": s.to_string(),
        }),
    }
}

/// One job as `/v2` shows it.
pub fn job_json(shared: &Shared, i: usize, job: &JobSummary) -> Value {
    let st = &job.status;
    let uptime = match st.state {
        JobState::Running { since, .. } | JobState::Stopping { since, .. } => {
            json!(since.elapsed().as_secs_f64())
        }
        _ => Value::Null,
    };
    json!({
        "name": job.name,
        "kind": match job.kind { Kind::Boot => "boot", Kind::Job => "job" },
        "controllable": job.controllable && job.kind == Kind::Job,
        "state": st.state.name(),
        "description": st.state.to_string(),
        "pid": st.state.pid(),
        "running": is_running(&st.state),
        "ready": st.ready,
        "starts": st.starts,
        "restarts": st.restarts,
        "last_exit": exit_json(st.last_exit),
        "uptime_seconds": uptime,
        "last_change": rfc3339(shared.last_change(i)),
        "lazy": lazy_json(shared, &job.name),
    })
}

/// A lazy job's connection counters, `null` for other jobs.
fn lazy_json(shared: &Shared, name: &str) -> Value {
    use std::sync::atomic::Ordering::Relaxed;
    let Some(c) = shared.lazy_counters(name) else {
        return Value::Null;
    };
    let (_, sum, count) = c.spin_up.snapshot();
    json!({
        "connections_accepted": c.accepted.load(Relaxed),
        "connections_active": c.active.load(Relaxed),
        "connections_held": c.held.load(Relaxed),
        "connections_held_total": c.held_total.load(Relaxed),
        "cold_starts": c.cold_starts.load(Relaxed),
        "failed_spin_ups": c.failed_spin_ups.load(Relaxed),
        "cool_down_stops": c.cool_down_stops.load(Relaxed),
        "received_bytes": c.traffic.up.load(Relaxed),
        "sent_bytes": c.traffic.down.load(Relaxed),
        "spin_up_seconds_total": sum,
        "spin_up_count": count,
    })
}

async fn v2_control(
    shared: &Shared,
    name: &str,
    action: &str,
    signal: Option<i32>,
) -> Response<Body> {
    let Some((i, job)) = shared.handle.find(name) else {
        return no_such_job(name);
    };
    if !(job.controllable && job.kind == Kind::Job) {
        return json_reply(
            StatusCode::CONFLICT,
            &json!({"error": format!("job {name:?} is not controllable (set controllable = true in its job block)")}),
        );
    }
    let result = match (action, signal) {
        ("start", _) if is_running(&job.status.state) => Ok(job.status.state),
        ("start", _) => shared.handle.start(name).await,
        ("stop", _) => shared.handle.stop(name).await,
        ("restart", _) => shared.handle.restart(name).await,
        (_, Some(sig)) => shared.handle.signal(name, sig).await,
        _ => return not_found(),
    };
    match result {
        Ok(_) => match shared.handle.status(name) {
            Ok(now) => json_reply(StatusCode::OK, &job_json(shared, i, &now)),
            Err(e) => control_error(e),
        },
        Err(e) => control_error(e),
    }
}
