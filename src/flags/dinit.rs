//! dinit's command line in the flags-only mode: `gantry [-primary] [-start CMD] [-stop CMD]
//! [-timeout D] -r CMD ARGS... [-r CMD ARGS...]`, and `gantry -submit -r CMD ARGS...`.
//!
//! This module owns that form: recognising it ([`is_dinit_form`]), reading it ([`parse`]), running
//! its processes under the supervisor with dinit's rules ([`main`]), the hooks `-start`/`-stop`,
//! and the submission socket (server and the `-submit` client).
//!
//! **Rules.** Each `-r` starts a command that runs until the next `-r` (`\-r` is a literal `-r`);
//! `$VAR` and `${VAR}` are expanded in every command, as dinit does. The last command is the
//! primary one (`-primary`: every one is): when a primary process ends on its own, or any process
//! cannot be started, gantry runs `-stop`, stops the others and exits with that process's code
//! (128+N after signal N). A non-primary process that ends changes nothing. On SIGTERM/SIGINT,
//! `-stop` runs first, then every process gets SIGTERM, and SIGKILL after `-timeout` (default
//! `DINIT_TIMEOUT`, else 10 s; bare numbers are seconds). `-start` runs before anything; if it
//! fails, gantry exits 71 without starting a process. `-start`/`-stop` are one string each, split
//! on whitespace (`DINIT_START`/`DINIT_STOP` are their defaults).
//!
//! **Submission.** Only this form listens, on a unix socket (`-socket`, default `/tmp/dinit.sock`,
//! mode 0600): a client sends one line of at most 512 bytes, `-r CMD ARGS...`, and each command
//! starts as a non-primary process of the running instance. The socket being root's, only root
//! can connect; the peer's credentials (`SO_PEERCRED`) are checked too, and anyone else is refused
//! with an error line. `gantry -submit -r CMD ARGS...` is that client.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::config::{parse_duration, Attempts, CommandSpec, JobSpec, StopSpec};
use crate::exit::{self, ExitStatus};
use crate::reaper::Reaper;
use crate::runtime::Options;
use crate::supervisor::process::{Launcher, Sockets};
use crate::supervisor::{self, JobDef, JobState, Kind, RunOptions, Supervisor};
use crate::sys::ChildSetup;

/// The longest submission line, newline included (dinit's limit).
pub const MAX_LINE: usize = 512;

/// dinit's options, as written (`-timeout 5`, `-timeout=5`, `--timeout 5`).
const OPTIONS: &[&str] = &[
    "r",
    "primary",
    "start",
    "stop",
    "timeout",
    "submit",
    "socket",
    "maxproc",
    "core-fraction",
];

/// Options that take a value.
const VALUED: &[&str] = &[
    "start",
    "stop",
    "timeout",
    "socket",
    "maxproc",
    "core-fraction",
];

/// The option name of `word` if it is one of dinit's (`-timeout=5` gives `timeout`).
fn option_name(word: &str) -> Option<&str> {
    let bare = word.strip_prefix("--").or_else(|| word.strip_prefix('-'))?;
    let name = bare.split_once('=').map_or(bare, |(n, _)| n);
    OPTIONS.contains(&name).then_some(name)
}

/// Whether the command line is dinit's: its first argument is one of dinit's options. (gantry's
/// own options are long, or one letter that no dinit option is, so the two cannot be confused.)
pub fn is_dinit_form(argv: &[String]) -> bool {
    argv.get(1).and_then(|a| option_name(a)).is_some()
}

/// The options before the first `-r`.
#[derive(Debug, clap::Parser)]
#[command(
    name = "gantry",
    disable_version_flag = true,
    override_usage = "gantry [-primary] [-start CMD] [-stop CMD] [-timeout D] -r CMD [ARGS...] [-r CMD [ARGS...]]...\n       gantry -submit [-socket PATH] -r CMD [ARGS...]"
)]
struct Opts {
    /// Every command is primary: when any of them ends, the others are stopped.
    #[arg(long)]
    primary: bool,
    /// Run this command (one string, split on whitespace) before the others; exit 71 if it fails.
    #[arg(
        long,
        env = "DINIT_START",
        value_name = "CMD",
        allow_hyphen_values = true
    )]
    start: Option<String>,
    /// Run this command (one string, split on whitespace) at teardown, before the stop signal.
    #[arg(
        long,
        env = "DINIT_STOP",
        value_name = "CMD",
        allow_hyphen_values = true
    )]
    stop: Option<String>,
    /// Time between SIGTERM and SIGKILL (bare numbers are seconds).
    #[arg(long, env = "DINIT_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,
    /// Send the commands to a running instance instead of running them.
    #[arg(long)]
    submit: bool,
    /// The submission socket.
    #[arg(
        long,
        env = "DINIT_SOCKET",
        value_name = "PATH",
        default_value = "/tmp/dinit.sock"
    )]
    socket: PathBuf,
    /// Set GOMAXPROCS for the commands to the number of CPUs times this (0: leave it unset; an
    /// existing GOMAXPROCS wins).
    #[arg(long, visible_alias = "core-fraction", default_value_t = 0.0)]
    maxproc: f64,
}

/// A dinit command line, read.
#[derive(Debug, Clone, PartialEq)]
pub struct Dinit {
    /// The `-r` commands, as written (not expanded).
    pub commands: Vec<Vec<String>>,
    pub all_primary: bool,
    pub start: Option<Vec<String>>,
    pub stop: Option<Vec<String>>,
    pub timeout: Duration,
    pub submit: bool,
    pub socket: PathBuf,
    pub maxproc: f64,
}

/// Splits `-r a x -r b \-r y` into commands (`\-r` is a literal `-r`). `words` starts with `-r`.
pub fn split_commands(words: &[String]) -> Result<Vec<Vec<String>>, String> {
    let mut commands: Vec<Vec<String>> = Vec::new();
    for w in words {
        match w.as_str() {
            "-r" => commands.push(Vec::new()),
            _ => {
                let Some(last) = commands.last_mut() else {
                    return Err(format!("{w:?} before the first -r"));
                };
                last.push(if w == "\\-r" {
                    "-r".to_string()
                } else {
                    w.clone()
                });
            }
        }
    }
    if commands.is_empty() {
        return Err("no command given (-r CMD [ARGS...])".to_string());
    }
    if commands.iter().any(Vec::is_empty) {
        return Err("-r needs a command after it".to_string());
    }
    Ok(commands)
}

/// Reads a dinit command line (`argv[0]` included). Errors are clap's, ready to print.
pub fn parse(argv: &[String]) -> Result<Dinit, clap::Error> {
    // The options end at the first `-r` that is not an option's value.
    let mut end = argv.len();
    let mut value_follows = false;
    let mut options = Vec::with_capacity(argv.len());
    for (i, w) in argv.iter().enumerate() {
        if i == 0 {
            options.push(w.clone());
            continue;
        }
        if value_follows {
            value_follows = false;
            options.push(w.clone());
            continue;
        }
        if w == "-r" {
            end = i;
            break;
        }
        match option_name(w) {
            // Go's flag package reads `-name` and `--name`; clap reads `--name`.
            Some(name) => {
                value_follows = VALUED.contains(&name) && !w.contains('=');
                options.push(format!("--{}", w.trim_start_matches('-')));
            }
            None => options.push(w.clone()),
        }
    }
    let mut command = Opts::command();
    let matches = command.try_get_matches_from_mut(options)?;
    let opts = Opts::from_arg_matches(&matches).map_err(|e| e.format(&mut command))?;
    let usage = |msg: String| command.error(clap::error::ErrorKind::InvalidValue, msg);
    let commands = split_commands(&argv[end..]).map_err(usage)?;
    let split = |s: &Option<String>| {
        s.as_ref()
            .map(|s| s.split_whitespace().map(String::from).collect::<Vec<_>>())
            .filter(|w| !w.is_empty())
    };
    Ok(Dinit {
        commands,
        all_primary: opts.primary,
        start: split(&opts.start),
        stop: split(&opts.stop),
        timeout: opts.timeout,
        submit: opts.submit,
        socket: opts.socket,
        maxproc: opts.maxproc,
    })
}

/// The dinit form's entry point: run, or submit with `-submit`.
pub fn main(argv: &[String]) -> i32 {
    let args = match parse(argv) {
        Ok(args) => args,
        Err(e) => e.exit(),
    };
    if args.submit {
        submit(&args)
    } else {
        run(args)
    }
}

/// `words` with `$VAR`/`${VAR}` expanded from the environment, as a command (`words` is not empty).
fn command(words: &[String], env: &[(String, String)]) -> CommandSpec {
    let mut words: Vec<String> = words
        .iter()
        .map(|w| super::expand_vars(w, |name| std::env::var(name).ok()))
        .collect();
    let program = words.remove(0);
    let mut spec = CommandSpec::new(program, words);
    spec.env = env.to_vec();
    spec
}

/// The environment dinit's `-maxproc` adds.
fn extra_env(maxproc: f64) -> Vec<(String, String)> {
    if maxproc <= 0.0 || std::env::var_os("GOMAXPROCS").is_some() {
        return Vec::new();
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let procs = ((cpus as f64 * maxproc).floor() as usize).max(1);
    vec![("GOMAXPROCS".to_string(), procs.to_string())]
}

fn base_name(program: &str) -> String {
    Path::new(program)
        .file_name()
        .map_or_else(|| program.to_string(), |n| n.to_string_lossy().into_owned())
}

/// The teardown that runs once, before the stop signal: `-stop`, then SIGTERM to the submitted
/// processes (the supervisor's own jobs get theirs from its shutdown right after).
struct Teardown {
    stop: Option<CommandSpec>,
    timeout: Duration,
    reaper: Arc<Reaper>,
    done: tokio::sync::Mutex<bool>,
    /// The submitted processes still running.
    submitted: Mutex<Vec<i32>>,
}

impl Teardown {
    async fn run_once(&self) {
        let mut done = self.done.lock().await;
        if *done {
            return;
        }
        *done = true;
        if let Some(stop) = &self.stop {
            match run_hook(&self.reaper, stop, Some(self.timeout)).await {
                Ok(status) if status.success() => {}
                Ok(status) => tracing::warn!("-stop {:?} failed ({status})", stop.display()),
                Err(e) => tracing::warn!("-stop {:?}: {e}", stop.display()),
            }
        }
        for &pid in self.submitted().iter() {
            crate::reaper::send_or_warn(pid, libc::SIGTERM, true);
        }
    }

    fn submitted(&self) -> std::sync::MutexGuard<'_, Vec<i32>> {
        self.submitted.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn closing(&self) -> bool {
        self.done.try_lock().map_or(true, |done| *done)
    }
}

/// Runs a hook with gantry's output, killing it (and its group) after `limit`.
async fn run_hook(
    reaper: &Reaper,
    spec: &CommandSpec,
    limit: Option<Duration>,
) -> std::io::Result<ExitStatus> {
    let setup = ChildSetup {
        new_process_group: true,
        foreground: false,
        notify_fd: None,
    };
    let spawned = reaper.spawn(spec, setup, Stdio::inherit(), Stdio::inherit())?;
    let mut exit = spawned.exit;
    let closed = || std::io::Error::other("its exit status was lost");
    let Some(limit) = limit else {
        return exit.await.map_err(|_| closed());
    };
    tokio::select! {
        status = &mut exit => status.map_err(|_| closed()),
        _ = tokio::time::sleep(limit) => {
            tracing::warn!("{:?} still runs after {limit:?}: killing it", spec.display());
            crate::reaper::send_or_warn(spawned.pid, libc::SIGKILL, true);
            exit.await.map_err(|_| closed())
        }
    }
}

/// Runs the dinit form.
fn run(args: Dinit) -> i32 {
    let env = extra_env(args.maxproc);
    let stop = StopSpec::new(libc::SIGTERM, args.timeout);
    let jobs: Vec<JobSpec> = args
        .commands
        .iter()
        .enumerate()
        .map(|(i, words)| {
            let command = command(words, &env);
            JobSpec {
                name: format!("{}#{}", base_name(&command.program), i + 1),
                command,
                // The primaries' ends are watched here, so that -stop runs before the signal.
                can_fail: true,
                max_attempts: Attempts::Limited(1),
                restart_delay: crate::config::model::DEFAULT_RESTART_DELAY,
                one_time: true,
                readiness: Default::default(),
                controllable: false,
                stop: stop.clone(),
                watches: Vec::new(),
                origin: None,
            }
        })
        .collect();
    let primaries: Vec<String> = if args.all_primary {
        jobs.iter().map(|j| j.name.clone()).collect()
    } else {
        jobs.iter().rev().take(1).map(|j| j.name.clone()).collect()
    };
    let start = args.start.as_deref().map(|w| command(w, &env));
    let stop_hook = args.stop.as_deref().map(|w| command(w, &env));
    let timeout = args.timeout;
    let socket = args.socket.clone();
    crate::runtime::run(
        Options::supervising(true, false),
        move |ctx, mut stops| async move {
            if let Some(start) = &start {
                tokio::select! {
                    status = run_hook(&ctx.reaper, start, None) => match status {
                        Ok(status) if status.success() => {}
                        Ok(status) => {
                            tracing::error!("-start {:?} failed ({status})", start.display());
                            return exit::BOOT_FAILED;
                        }
                        Err(e) => {
                            tracing::error!("-start {:?}: {e}", start.display());
                            return exit::BOOT_FAILED;
                        }
                    },
                    Some(sig) = stops.recv() => {
                        supervisor::reap_descendants(&ctx.reaper, Instant::now() + timeout).await;
                        return 128 + sig;
                    }
                }
            }
            let teardown = Arc::new(Teardown {
                stop: stop_hook,
                timeout,
                reaper: ctx.reaper.clone(),
                done: tokio::sync::Mutex::new(false),
                submitted: Mutex::new(Vec::new()),
            });
            // The supervisor hears of SIGTERM/SIGINT only once -stop has run.
            let (to_supervisor, supervisor_stops) = mpsc::unbounded_channel();
            tokio::spawn(stop_after_teardown(
                stops,
                to_supervisor.clone(),
                teardown.clone(),
            ));
            let defs = jobs.iter().map(JobDef::job).collect();
            let mut supervisor = Supervisor::new(
                defs,
                ctx.launcher(),
                ctx.forward_to_group,
                ctx.reaper.clone(),
                (to_supervisor, supervisor_stops),
            );
            let handle = supervisor.handle();
            let listening = match listen(&socket) {
                Ok(listener) => {
                    let server = serve(listener, ctx.launcher(), teardown.clone(), env.clone());
                    Some(tokio::spawn(server))
                }
                Err(e) => {
                    tracing::warn!("cannot listen on {socket:?} ({e}): -submit will not work");
                    None
                }
            };
            let mut ended = first_to_end(&handle, &primaries, &jobs);
            let opts = RunOptions {
                keep_running: false,
                stop_all_when_one_ends: false,
            };
            let phase = supervisor.run_phase(Kind::Job, opts);
            tokio::pin!(phase);
            let mut decided = None;
            let report = tokio::select! {
                biased;
                Some((name, status)) = ended.recv() => {
                    tracing::info!("{name:?} ended ({status}): stopping the others");
                    decided = Some(status);
                    teardown.run_once().await;
                    handle.shutdown(libc::SIGTERM);
                    phase.await
                }
                report = &mut phase => report,
            };
            // Every job ended by itself: the primary's end may not have been seen above.
            let decided = decided.or_else(|| ended.try_recv().ok().map(|(_, status)| status));
            teardown.run_once().await;
            if let Some(server) = listening {
                server.abort();
                let _ = std::fs::remove_file(&socket);
            }
            let deadline = report.shutdown_at.unwrap_or_else(Instant::now) + timeout;
            supervisor::reap_descendants(&ctx.reaper, deadline).await;
            decided.map_or_else(|| report.exit_code(), ExitStatus::code)
        },
    )
}

/// Reports the first job that decides gantry's exit: a primary that ended on its own, or any job
/// whose process could not be started.
fn first_to_end(
    handle: &supervisor::Handle,
    primaries: &[String],
    jobs: &[JobSpec],
) -> mpsc::UnboundedReceiver<(String, ExitStatus)> {
    let (tx, rx) = mpsc::unbounded_channel();
    for job in jobs {
        let primary = primaries.contains(&job.name);
        let Ok(mut changes) = handle.subscribe(&job.name) else {
            continue;
        };
        let tx = tx.clone();
        let name = job.name.clone();
        tokio::spawn(async move {
            loop {
                let status = *changes.borrow_and_update();
                match status.state {
                    JobState::Completed(s) | JobState::Failed(s)
                        if primary || status.starts == 0 =>
                    {
                        let _ = tx.send((name, s));
                        return;
                    }
                    JobState::Completed(_) | JobState::Failed(_) | JobState::Stopped(_) => return,
                    _ => {}
                }
                if changes.changed().await.is_err() {
                    return;
                }
            }
        });
    }
    rx
}

/// Passes SIGTERM/SIGINT on to the supervisor once the teardown (-stop) has run.
async fn stop_after_teardown(
    mut stops: mpsc::UnboundedReceiver<i32>,
    to_supervisor: mpsc::UnboundedSender<i32>,
    teardown: Arc<Teardown>,
) {
    while let Some(sig) = stops.recv().await {
        teardown.run_once().await;
        if to_supervisor.send(sig).is_err() {
            return;
        }
    }
}

/// Binds the submission socket, mode 0600 (a stale socket file is replaced).
fn listen(path: &Path) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if meta.file_type().is_socket() {
            std::fs::remove_file(path)?;
        }
    }
    let listener = UnixListener::bind(path)?;
    // Until this chmod the socket has the umask's mode; the peer check below covers that moment.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

async fn serve(
    listener: UnixListener,
    launcher: Arc<dyn Launcher>,
    teardown: Arc<Teardown>,
    env: Vec<(String, String)>,
) {
    let mut count = 0usize;
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!("submission socket: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        count += 1;
        let (launcher, teardown, env) = (launcher.clone(), teardown.clone(), env.clone());
        tokio::spawn(async move {
            let reply = accept(stream, &launcher, &teardown, &env, count).await;
            if let Some((mut stream, reply)) = reply {
                let _ = tokio::time::timeout(
                    Duration::from_secs(5),
                    stream.write_all(reply.as_bytes()),
                )
                .await;
            }
        });
    }
}

/// Reads, checks and starts one submission; the reply to send.
async fn accept(
    stream: UnixStream,
    launcher: &Arc<dyn Launcher>,
    teardown: &Arc<Teardown>,
    env: &[(String, String)],
    n: usize,
) -> Option<(UnixStream, String)> {
    // The line is read first, whoever sent it, so that a refused client reads the refusal rather
    // than a broken pipe.
    let mut reader = tokio::io::BufReader::new(stream);
    let mut line = Vec::new();
    let mut limited = (&mut reader).take(MAX_LINE as u64);
    let read = limited.read_until(b'\n', &mut line);
    let complete = matches!(
        tokio::time::timeout(Duration::from_secs(5), read).await,
        Ok(Ok(_))
    ) && line.ends_with(b"\n");
    let stream = reader.into_inner();
    match stream.peer_cred() {
        Ok(cred) if cred.uid() == 0 => {}
        Ok(cred) => {
            tracing::warn!("refused a submission from uid {}", cred.uid());
            let msg = format!(
                "error: refused: only root may submit (you are uid {})\n",
                cred.uid()
            );
            return Some((stream, msg));
        }
        Err(e) => {
            tracing::warn!("refused a submission: cannot read the peer's credentials: {e}");
            return Some((stream, "error: refused: unknown peer\n".to_string()));
        }
    }
    if !complete {
        let msg = if line.len() >= MAX_LINE {
            format!("error: the command line is longer than {MAX_LINE} bytes\n")
        } else {
            "error: expected one line: -r CMD [ARGS...]\n".to_string()
        };
        return Some((stream, msg));
    }
    let text = String::from_utf8_lossy(&line);
    let words: Vec<String> = text.split_whitespace().map(String::from).collect();
    let commands = match split_commands(&words) {
        Ok(commands) => commands,
        Err(e) => return Some((stream, format!("error: {e}\n"))),
    };
    if teardown.closing() {
        return Some((stream, "error: shutting down\n".to_string()));
    }
    let mut reply = String::new();
    for (i, words) in commands.iter().enumerate() {
        let spec = command(words, env);
        let name = format!("submitted{}.{}:{}", n, i + 1, base_name(&spec.program));
        match launcher.launch(&name, &spec, &Sockets::default(), None) {
            Ok(child) => {
                tracing::info!("{name:?} started (pid {}): {}", child.pid, spec.display());
                reply.push_str(&format!(
                    "ok: pid {} started: {}\n",
                    child.pid,
                    spec.display()
                ));
                teardown.submitted().push(child.pid);
                let (pid, teardown) = (child.pid, teardown.clone());
                tokio::spawn(async move {
                    if let Ok(status) = child.exit.await {
                        tracing::info!("{name:?} (pid {pid}) exited ({status})");
                    }
                    teardown.submitted().retain(|p| *p != pid);
                });
            }
            Err(e) => reply.push_str(&format!("error: {}: {e}\n", spec.display())),
        }
    }
    Some((stream, reply))
}

/// `-submit`: sends the commands to the running instance and prints its answer. Exits 0 when
/// every command started, 1 otherwise.
fn submit(args: &Dinit) -> i32 {
    let mut line = String::new();
    for words in &args.commands {
        line.push_str("-r");
        for w in words {
            line.push(' ');
            line.push_str(if w == "-r" { "\\-r" } else { w });
        }
        line.push(' ');
    }
    let line = format!("{}\n", line.trim_end());
    if line.len() > MAX_LINE {
        eprintln!("gantry: -submit: the command line is longer than {MAX_LINE} bytes");
        return exit::USAGE;
    }
    let path = &args.socket;
    let mut stream = match std::os::unix::net::UnixStream::connect(path) {
        Ok(s) => s,
        Err(e) => {
            let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
                " (the socket is root's: only root may submit)"
            } else {
                ""
            };
            eprintln!(
                "gantry: -submit: cannot connect to {}: {e}{hint}",
                path.display()
            );
            return 1;
        }
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let sent = stream.write_all(line.as_bytes());
    let mut reply = String::new();
    let read = stream.read_to_string(&mut reply);
    if let Err(e) = sent.and(read) {
        if reply.is_empty() {
            eprintln!("gantry: -submit: {}: {e}", path.display());
            return 1;
        }
    }
    print!("{reply}");
    let ok = !reply.is_empty() && reply.lines().all(|l| l.starts_with("ok:"));
    if ok {
        0
    } else {
        if reply.is_empty() {
            eprintln!("gantry: -submit: no answer from {}", path.display());
        }
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn recognised_by_its_first_option() {
        assert!(is_dinit_form(&argv("gantry -r sleep 1")));
        assert!(is_dinit_form(&argv("gantry -timeout=5 -r sleep 1")));
        assert!(is_dinit_form(&argv("gantry -submit -r sleep 1")));
        assert!(!is_dinit_form(&argv("gantry -- sleep 1")));
        assert!(!is_dinit_form(&argv("gantry -k 15,9 --- sleep 1")));
        assert!(!is_dinit_form(&argv("gantry -s 1 -- -r")));
    }

    #[test]
    fn commands_split_on_r_with_escapes() {
        let d = parse(&argv("gantry -primary -timeout 3 -r a 1 -r b \\-r -x")).unwrap();
        assert_eq!(d.commands, vec![argv("a 1"), argv("b -r -x")]);
        assert!(d.all_primary);
        assert_eq!(d.timeout, Duration::from_secs(3));
        let d = parse(&argv("gantry -start=/bin/a_b_c -stop --x -r c")).unwrap();
        assert_eq!(d.start, Some(argv("/bin/a_b_c")));
        assert_eq!(d.stop, Some(argv("--x")));
        assert!(parse(&argv("gantry -primary")).is_err());
        assert!(parse(&argv("gantry -r -r x")).is_err());
        assert!(parse(&argv("gantry -bogus -r x")).is_err());
        assert!(parse(&argv("gantry -timeout soon -r x")).is_err());
    }
}
