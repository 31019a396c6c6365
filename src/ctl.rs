//! `gantry ctl`: the command-line client of `up --api`, with mittnitectl's commands and flags.
//!
//! `job list|status|start|stop|restart|logs` as mittnitectl has them (the job name may be left out
//! when exactly one controllable job exists), plus `health` (exit 0 when gantry is ready: a Docker
//! `HEALTHCHECK` line), `signal JOB SIG` and `probes`. Human output is an aligned table; `-j` prints
//! the API's JSON. Control goes through mittnite's `/v1` routes, so `ctl` also drives mittnite;
//! tables and `health`, `signal`, `probes` use gantry's `/v2`.
//!
//! Exit codes ([`code`]): 0 done; 1 the job is not running (`status --exit-with-status`), not ready
//! (`health`), or a wait timed out; 2 usage; 67 no such job (or not controllable); 69 gantry cannot
//! be reached; 77 permission denied; 70 anything else. Every error says what to do.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Empty};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::api::{Address, DEFAULT_ADDRESS};

/// Exit codes of `gantry ctl` (sysexits where one fits).
pub mod code {
    pub const OK: i32 = 0;
    /// Not running (`--exit-with-status`), not ready (`health`), a wait that timed out.
    pub const NOT_RUNNING: i32 = 1;
    /// No such job, or it is not controllable (EX_NOUSER).
    pub const NO_SUCH_JOB: i32 = 67;
    /// gantry cannot be reached: no socket, nobody listening (EX_UNAVAILABLE).
    pub const UNREACHABLE: i32 = 69;
    /// Anything else that went wrong (EX_SOFTWARE).
    pub const OTHER: i32 = 70;
    /// Permission denied: the socket's mode or the API's peer check (EX_NOPERM).
    pub const DENIED: i32 = 77;
}

/// `gantry ctl`'s own command line (parsed apart from gantry's, see `cli::Command::Ctl`).
#[derive(Debug, clap::Parser)]
#[command(
    name = "gantry ctl",
    about = "Control a running `gantry up --api` (mittnitectl's commands)"
)]
pub struct CtlCli {
    #[command(flatten)]
    pub args: CtlArgs,
}

/// Parses `args` (what follows `gantry ctl`) and runs; returns the exit code.
pub fn main(args: &[String]) -> i32 {
    use clap::Parser;
    let argv = std::iter::once("gantry ctl".to_string()).chain(args.iter().cloned());
    match CtlCli::try_parse_from(argv) {
        Ok(cli) => run(&cli.args),
        Err(e) => {
            let _ = e.print();
            if e.use_stderr() {
                crate::exit::USAGE
            } else {
                code::OK
            }
        }
    }
}

/// Arguments of `gantry ctl`.
#[derive(Debug, Clone, clap::Args)]
pub struct CtlArgs {
    /// The API's address: unix:///PATH (or a plain path) or tcp://HOST:PORT.
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_ADDRESS, env = "GANTRY_API_ADDRESS", global = true)]
    pub api_address: String,
    /// File with the bearer token for a TCP API (else env GANTRY_API_TOKEN).
    #[arg(long, value_name = "PATH", global = true)]
    pub api_token_file: Option<PathBuf>,
    #[command(subcommand)]
    pub command: CtlCommand,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum CtlCommand {
    /// Control a job.
    #[command(subcommand)]
    Job(JobCommand),
    /// Exit 0 when gantry is ready (run phase, jobs up, wait probes passing), else 1.
    Health {
        #[arg(short = 'j', long)]
        json: bool,
    },
    /// Send a signal (name or number) to a controllable job.
    Signal { job: String, signal: String },
    /// Run every probe now and show the results.
    Probes {
        #[arg(short = 'j', long)]
        json: bool,
    },
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum JobCommand {
    /// List the jobs.
    List {
        #[arg(short = 'j', long)]
        json: bool,
    },
    /// Show a job's status.
    Status {
        job: Option<String>,
        #[arg(short = 'j', long)]
        json: bool,
        /// Exit 1 if the job is not running.
        #[arg(long)]
        exit_with_status: bool,
    },
    /// Start a job.
    Start(Action),
    /// Stop a job.
    Stop(Action),
    /// Restart a job.
    Restart(Action),
    /// Print a job's output (from gantry's log buffer).
    Logs {
        job: Option<String>,
        /// Keep printing new lines.
        #[arg(short = 'f', long)]
        follow: bool,
        /// Only the last N lines (-1: all).
        #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
        tail: i64,
    },
}

#[derive(Debug, Clone, clap::Args)]
pub struct Action {
    pub job: Option<String>,
    /// Wait for the job to reach the desired state.
    #[arg(short = 'w', long)]
    pub wait: bool,
    /// How long to wait at most.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = gantry_probes::parse_duration)]
    pub wait_for: Duration,
}

/// A failure with its exit code and a message that says what to do.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

fn fail(code: i32, message: impl Into<String>) -> Failure {
    Failure {
        code,
        message: message.into(),
    }
}

/// Runs `gantry ctl`; returns the exit code.
pub fn run(args: &CtlArgs) -> i32 {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gantry ctl: cannot start: {e}");
            return code::OTHER;
        }
    };
    match rt.block_on(dispatch(args)) {
        Ok(code) => code,
        Err(f) => {
            eprintln!("gantry ctl: {}", f.message);
            f.code
        }
    }
}

struct Client {
    address: Address,
    token: Option<String>,
}

/// One HTTP response, read whole.
struct Reply {
    status: StatusCode,
    body: Bytes,
}

impl Reply {
    fn json(&self) -> Result<Value, Failure> {
        serde_json::from_slice(&self.body).map_err(|e| {
            fail(
                code::OTHER,
                format!("gantry sent something that is not JSON: {e}"),
            )
        })
    }

    fn text(&self) -> String {
        let raw = String::from_utf8_lossy(&self.body);
        match serde_json::from_str::<Value>(&raw) {
            Ok(v) => v["error"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| raw.trim().to_string()),
            Err(_) => raw.trim().to_string(),
        }
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

impl Client {
    fn new(args: &CtlArgs) -> Result<Client, Failure> {
        let address = Address::parse(&args.api_address)
            .map_err(|e| fail(crate::exit::USAGE, format!("--api-address {e}")))?;
        let token = match &args.api_token_file {
            Some(p) => Some(
                std::fs::read_to_string(p)
                    .map_err(|e| {
                        fail(
                            code::OTHER,
                            format!("cannot read --api-token-file {}: {e}", p.display()),
                        )
                    })?
                    .trim()
                    .to_string(),
            ),
            None => std::env::var("GANTRY_API_TOKEN")
                .ok()
                .map(|t| t.trim().to_string()),
        };
        Ok(Client { address, token })
    }

    fn where_(&self) -> String {
        match &self.address {
            Address::Unix(p) => format!("unix://{}", p.display()),
            Address::Tcp(h) => format!("tcp://{h}"),
        }
    }

    async fn connect(&self) -> Result<Box<dyn Io>, Failure> {
        let result: std::io::Result<Box<dyn Io>> = match &self.address {
            Address::Unix(p) => tokio::net::UnixStream::connect(p)
                .await
                .map(|s| Box::new(s) as Box<dyn Io>),
            Address::Tcp(h) => tokio::net::TcpStream::connect(h.as_str())
                .await
                .map(|s| Box::new(s) as Box<dyn Io>),
        };
        result.map_err(|e| match e.kind() {
            std::io::ErrorKind::PermissionDenied => fail(
                code::DENIED,
                format!(
                    "permission denied connecting to {} ({e}); run as root or gantry's user, or start gantry with --api-group",
                    self.where_()
                ),
            ),
            _ => fail(
                code::UNREACHABLE,
                format!(
                    "cannot reach gantry at {} ({e}); is `gantry up --api` running there? (set --api-address)",
                    self.where_()
                ),
            ),
        })
    }

    fn request(
        &self,
        method: Method,
        path: &str,
    ) -> Result<hyper::http::request::Builder, Failure> {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, "gantry");
        if let Some(t) = &self.token {
            b = b.header(hyper::header::AUTHORIZATION, format!("Bearer {t}"));
        }
        Ok(b)
    }

    async fn call(&self, method: Method, path: &str) -> Result<Reply, Failure> {
        let io = self.connect().await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| {
                fail(
                    code::UNREACHABLE,
                    format!("cannot talk to gantry at {}: {e}", self.where_()),
                )
            })?;
        tokio::spawn(conn);
        let req = self
            .request(method, path)?
            .body(Empty::<Bytes>::new())
            .map_err(|e| fail(code::OTHER, e.to_string()))?;
        let resp = sender.send_request(req).await.map_err(|e| {
            fail(
                code::UNREACHABLE,
                format!("gantry at {} did not answer: {e}", self.where_()),
            )
        })?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| fail(code::OTHER, format!("reading gantry's answer: {e}")))?
            .to_bytes();
        let reply = Reply { status, body };
        match status {
            StatusCode::UNAUTHORIZED => Err(fail(
                code::DENIED,
                format!(
                    "{}: give the token with --api-token-file or GANTRY_API_TOKEN",
                    reply.text()
                ),
            )),
            StatusCode::FORBIDDEN => Err(fail(code::DENIED, reply.text())),
            _ => Ok(reply),
        }
    }

    /// The job to act on: the one given, else the only controllable job.
    async fn job_name(&self, given: &Option<String>) -> Result<String, Failure> {
        if let Some(j) = given {
            return Ok(j.clone());
        }
        let reply = self.call(Method::GET, "/v1/jobs").await?;
        let names: Vec<String> = serde_json::from_slice(&reply.body).unwrap_or_default();
        match names.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(fail(
                code::NO_SUCH_JOB,
                "no controllable job found; name a job (see `gantry ctl job list`)",
            )),
            _ => Err(fail(
                code::NO_SUCH_JOB,
                format!(
                    "more than one job found ({}); please provide a job name as argument",
                    names.join(", ")
                ),
            )),
        }
    }

    /// The `/v2` view of one job, with 404 mapped to "no such job".
    async fn job(&self, name: &str) -> Result<Value, Failure> {
        let reply = self
            .call(Method::GET, &format!("/v2/jobs/{}", encode(name)))
            .await?;
        match reply.status {
            StatusCode::OK => reply.json(),
            StatusCode::NOT_FOUND => Err(no_such_job(name)),
            s => Err(fail(
                code::OTHER,
                format!("gantry answered {s}: {}", reply.text()),
            )),
        }
    }
}

fn no_such_job(name: &str) -> Failure {
    fail(
        code::NO_SUCH_JOB,
        format!("no such job: {name:?} (see `gantry ctl job list`)"),
    )
}

/// Percent-encodes a path segment.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Maps a `/v1` control answer to success or a [`Failure`].
fn v1_outcome(name: &str, reply: &Reply) -> Result<(), Failure> {
    match reply.status {
        StatusCode::OK => Ok(()),
        StatusCode::BAD_REQUEST => Err(no_such_job(name)),
        StatusCode::NOT_FOUND => Err(fail(
            code::NO_SUCH_JOB,
            format!("job {name:?} is not controllable (set controllable = true in its job block)"),
        )),
        s => Err(fail(
            code::OTHER,
            format!("gantry answered {s}: {}", reply.text()),
        )),
    }
}

fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// Prints `rows` as an aligned table under `header`.
fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.iter().map(|s| s.to_string()).collect());
    for r in rows {
        line(r.clone());
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn uptime(v: &Value) -> String {
    match v.as_f64() {
        None => "-".into(),
        Some(s) if s < 60.0 => format!("{s:.0}s"),
        Some(s) if s < 3600.0 => format!("{}m{}s", (s / 60.0) as u64, (s % 60.0) as u64),
        Some(s) => format!("{}h{}m", (s / 3600.0) as u64, ((s % 3600.0) / 60.0) as u64),
    }
}

async fn dispatch(args: &CtlArgs) -> Result<i32, Failure> {
    let client = Client::new(args)?;
    match &args.command {
        CtlCommand::Job(JobCommand::List { json }) => {
            let jobs = client.call(Method::GET, "/v2/jobs").await?.json()?;
            if *json {
                print_json(&jobs);
                return Ok(code::OK);
            }
            let rows: Vec<Vec<String>> = jobs
                .as_array()
                .into_iter()
                .flatten()
                .map(|j| {
                    vec![
                        show(&j["name"]),
                        show(&j["kind"]),
                        show(&j["state"]),
                        show(&j["pid"]),
                        uptime(&j["uptime_seconds"]),
                        show(&j["restarts"]),
                        j["last_exit"]["text"].as_str().unwrap_or("-").to_string(),
                        if j["controllable"].as_bool() == Some(true) {
                            "yes"
                        } else {
                            "no"
                        }
                        .into(),
                    ]
                })
                .collect();
            table(
                &[
                    "NAME",
                    "KIND",
                    "STATE",
                    "PID",
                    "UPTIME",
                    "RESTARTS",
                    "LAST EXIT",
                    "CONTROLLABLE",
                ],
                &rows,
            );
            Ok(code::OK)
        }
        CtlCommand::Job(JobCommand::Status {
            job,
            json,
            exit_with_status,
        }) => {
            let name = client.job_name(job).await?;
            let j = client.job(&name).await?;
            if *json {
                print_json(&j);
            } else {
                let rows = vec![
                    vec!["name".into(), show(&j["name"])],
                    vec!["state".into(), show(&j["description"])],
                    vec!["ready".into(), show(&j["ready"])],
                    vec!["pid".into(), show(&j["pid"])],
                    vec!["uptime".into(), uptime(&j["uptime_seconds"])],
                    vec!["starts".into(), show(&j["starts"])],
                    vec!["restarts".into(), show(&j["restarts"])],
                    vec![
                        "last exit".into(),
                        j["last_exit"]["text"].as_str().unwrap_or("-").into(),
                    ],
                    vec!["controllable".into(), show(&j["controllable"])],
                    vec!["last change".into(), show(&j["last_change"])],
                ];
                table(&["FIELD", "VALUE"], &rows);
            }
            if *exit_with_status && j["running"].as_bool() != Some(true) {
                return Ok(code::NOT_RUNNING);
            }
            Ok(code::OK)
        }
        CtlCommand::Job(
            cmd @ (JobCommand::Start(a) | JobCommand::Stop(a) | JobCommand::Restart(a)),
        ) => {
            let action = match cmd {
                JobCommand::Start(_) => "start",
                JobCommand::Stop(_) => "stop",
                _ => "restart",
            };
            let name = client.job_name(&a.job).await?;
            let before = if action == "restart" && a.wait {
                client
                    .job(&name)
                    .await
                    .ok()
                    .and_then(|j| j["starts"].as_u64())
            } else {
                None
            };
            let reply = client
                .call(Method::POST, &format!("/v1/job/{}/{action}", encode(&name)))
                .await?;
            v1_outcome(&name, &reply)?;
            println!("{action} {name}: done");
            if !a.wait {
                return Ok(code::OK);
            }
            let deadline = Instant::now() + a.wait_for;
            loop {
                let j = client.job(&name).await?;
                let running = j["running"].as_bool() == Some(true) && j["state"] == "running";
                let reached = match action {
                    "stop" => j["running"].as_bool() == Some(false),
                    "restart" => running && j["starts"].as_u64() > before,
                    _ => running,
                };
                if reached {
                    println!("{name}: {}", show(&j["description"]));
                    return Ok(code::OK);
                }
                if Instant::now() >= deadline {
                    return Err(fail(
                        code::NOT_RUNNING,
                        format!(
                            "timeout waiting for job {name} to {action} (it is {}); wait longer with --wait-for",
                            show(&j["description"])
                        ),
                    ));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        CtlCommand::Job(JobCommand::Logs { job, follow, tail }) => {
            let name = client.job_name(job).await?;
            logs(&client, &name, *follow, *tail).await
        }
        CtlCommand::Health { json } => {
            let reply = client.call(Method::GET, "/v2/health").await?;
            let v = reply.json()?;
            if *json {
                print_json(&v);
            } else {
                println!("{} (phase {})", show(&v["reason"]), show(&v["phase"]));
            }
            Ok(if reply.status == StatusCode::OK {
                code::OK
            } else {
                code::NOT_RUNNING
            })
        }
        CtlCommand::Signal { job, signal } => {
            let reply = client
                .call(
                    Method::POST,
                    &format!("/v2/jobs/{}/signal/{}", encode(job), encode(signal)),
                )
                .await?;
            match reply.status {
                StatusCode::OK => {
                    println!("sent {signal} to {job}");
                    Ok(code::OK)
                }
                StatusCode::NOT_FOUND => Err(no_such_job(job)),
                StatusCode::BAD_REQUEST => Err(fail(crate::exit::USAGE, reply.text())),
                StatusCode::CONFLICT if reply.text().contains("not controllable") => {
                    Err(fail(code::NO_SUCH_JOB, reply.text()))
                }
                StatusCode::CONFLICT => Err(fail(code::NOT_RUNNING, reply.text())),
                s => Err(fail(
                    code::OTHER,
                    format!("gantry answered {s}: {}", reply.text()),
                )),
            }
        }
        CtlCommand::Probes { json } => {
            let v = client
                .call(Method::GET, "/v2/probes?check=true")
                .await?
                .json()?;
            if *json {
                print_json(&v);
                return Ok(code::OK);
            }
            let rows: Vec<Vec<String>> = v
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    vec![
                        show(&p["name"]),
                        if p["wait"].as_bool() == Some(true) {
                            "yes"
                        } else {
                            "no"
                        }
                        .into(),
                        if p["ok"].as_bool() == Some(true) {
                            "ok"
                        } else {
                            "failing"
                        }
                        .into(),
                        format!("{:.3}s", p["duration_seconds"].as_f64().unwrap_or(0.0)),
                        show(&p["message"]),
                    ]
                })
                .collect();
            table(&["NAME", "WAIT", "RESULT", "TOOK", "MESSAGE"], &rows);
            Ok(
                if v.as_array()
                    .into_iter()
                    .flatten()
                    .all(|p| p["ok"].as_bool() == Some(true))
                {
                    code::OK
                } else {
                    code::NOT_RUNNING
                },
            )
        }
    }
}

/// `job logs`: mittnite's WebSocket route, one message per line.
async fn logs(client: &Client, name: &str, follow: bool, tail: i64) -> Result<i32, Failure> {
    // Look the job up first, for a clear error (the WebSocket route can only refuse the upgrade).
    client.job(name).await?;
    let io = client.connect().await?;
    let mut path = format!("ws://gantry/v2/jobs/{}/logs?taillen={tail}", encode(name));
    if follow {
        path.push_str("&follow=true");
    }
    let mut req =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(path)
            .map_err(|e| fail(code::OTHER, e.to_string()))?;
    if let Some(t) = &client.token {
        if let Ok(v) = hyper::header::HeaderValue::from_str(&format!("Bearer {t}")) {
            req.headers_mut().insert(hyper::header::AUTHORIZATION, v);
        }
    }
    let (mut ws, _) = tokio_tungstenite::client_async(req, io)
        .await
        .map_err(|e| {
            fail(
                code::OTHER,
                format!("cannot follow the logs of {name}: {e}"),
            )
        })?;
    use std::io::Write;
    let stdout = std::io::stdout();
    while let Some(msg) = ws.next().await {
        match msg {
            Ok(tokio_tungstenite::tungstenite::Message::Text(t)) => {
                let mut out = stdout.lock();
                if writeln!(out, "{}", t.as_str()).is_err() {
                    return Ok(code::OK);
                }
            }
            Ok(tokio_tungstenite::tungstenite::Message::Close(_)) => break,
            Ok(_) => {}
            Err(e) => {
                return Err(fail(
                    code::UNREACHABLE,
                    format!("the log stream of {name} broke off: {e}"),
                ))
            }
        }
    }
    Ok(code::OK)
}
