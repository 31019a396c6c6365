//! `gantry sidecar`: reload a process that runs in another container of the same pod (shared PID
//! namespace) when its configuration changes — config-reloader-sidecar's job, with its environment
//! variables (`CONFIG_DIR`, `PROCESS_NAME`, `RELOAD_SIGNAL`).
//!
//! Owns finding the target process and signalling it. Change detection is `watch`'s; this module must not
//! spawn or reap anything, and it never signals gantry itself.
//!
//! Finding the target, at every change (never cached, so a target restarted under a new pid is followed):
//! - `--pidfile PATH`: the pid written in that file (a regular file of at most 4 KiB; a FIFO or a
//!   device there is ignored with a warning, never waited on), or
//! - `--process-name NAME`: every process in `/proc` whose `comm` (the executable's name as the kernel
//!   keeps it, truncated to 15 bytes) equals NAME (or its first 15 bytes), or whose `argv[0]` basename
//!   equals NAME (so `exec -a NAME` and interpreters started under a name are found). Kernel threads and
//!   zombies are skipped. **Every** match is signalled: a pre-forking server's workers match too, and a
//!   SIGHUP to each is what the process would get from a shell's `pkill -HUP NAME`; if only the master
//!   should get it, use `--pidfile`.
//!
//! If the target is not running when a change happens, nothing is sent (it will read the new config when
//! it starts) and that is logged once until it is seen again. Nothing polls for it in between.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{parse_duration, parse_interval};
use crate::exit;
use crate::runtime::Options;
use crate::signals;
use crate::watch::{WatchOptions, Watcher};

/// `comm` is truncated by the kernel to this many bytes (TASK_COMM_LEN - 1).
const COMM_LEN: usize = 15;

/// The flags of `gantry sidecar`.
#[derive(Debug, Clone, clap::Args)]
pub struct SidecarArgs {
    /// Directories (or files, or globs) to watch, comma-separated.
    #[arg(
        long,
        env = "CONFIG_DIR",
        value_delimiter = ',',
        required = true,
        value_name = "DIR,..."
    )]
    pub config_dir: Vec<String>,
    /// Signal every process with this name (`comm`, or the basename of `argv[0]`).
    #[arg(
        long,
        env = "PROCESS_NAME",
        required_unless_present = "pidfile",
        value_name = "NAME"
    )]
    pub process_name: Option<String>,
    /// Signal the pid written in this file instead (re-read at every change).
    #[arg(
        long,
        env = "PROCESS_PIDFILE",
        conflicts_with = "process_name",
        value_name = "PATH"
    )]
    pub pidfile: Option<PathBuf>,
    /// The signal to send: a name (HUP, SIGHUP) or a number.
    #[arg(long, env = "RELOAD_SIGNAL", default_value = "SIGHUP", value_parser = signals::parse, value_name = "SIGNAL")]
    pub reload_signal: i32,
    /// How long the files must stay quiet before a change is acted on.
    #[arg(long, env = "RELOAD_DEBOUNCE", default_value = "150ms", value_parser = parse_duration, value_name = "DURATION")]
    pub debounce: Duration,
    /// Poll at this interval instead of using inotify (for mounts inotify cannot see); must be longer
    /// than 0.
    #[arg(long, env = "RELOAD_POLL", value_parser = parse_interval, value_name = "DURATION")]
    pub poll: Option<Duration>,
}

/// Who gets the signal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Name(String),
    Pidfile(PathBuf),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Name(n) => write!(f, "process {n:?}"),
            Target::Pidfile(p) => write!(f, "pid in {}", p.display()),
        }
    }
}

/// Runs the sidecar until SIGTERM/SIGINT; returns the process exit code.
pub fn run(args: SidecarArgs) -> i32 {
    let target = match (&args.process_name, &args.pidfile) {
        (_, Some(p)) => Target::Pidfile(p.clone()),
        (Some(n), None) => Target::Name(n.clone()),
        (None, None) => {
            tracing::error!("give --process-name (PROCESS_NAME) or --pidfile");
            return exit::USAGE;
        }
    };
    let paths: Vec<String> = args
        .config_dir
        .iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let options = WatchOptions {
        debounce: args.debounce,
        poll: args.poll,
        ..WatchOptions::default()
    };
    let signal = args.reload_signal;
    // As PID 1 of a sidecar container, SIGTERM/SIGINT would be ignored without a handler; here they
    // end the sidecar with 0. The watch thread starts inside, once the signals are blocked.
    crate::runtime::run(Options::without_jobs(), move |_ctx, mut stops| async move {
        let mut absent_logged = false;
        match find(&target) {
            pids if pids.is_empty() => {
                tracing::info!(%target, "not running yet; it will be signalled at the first change after it starts");
                absent_logged = true;
            }
            pids => tracing::info!(%target, ?pids, signal = %signals::Name(signal), "found"),
        }
        let watcher = match Watcher::start(&paths, options) {
            Ok(w) => w,
            Err(err) => {
                tracing::error!(%err, "cannot watch");
                return exit::WATCH_FAILED;
            }
        };
        loop {
            let change = tokio::select! {
                change = watcher.changed() => change,
                Some(sig) = stops.recv() => {
                    tracing::info!(signal = %signals::Name(sig), "stopping");
                    return 0;
                }
            };
            let Some(change) = change else {
                return exit::WATCH_FAILED;
            };
            let pids = find(&target);
            if pids.is_empty() {
                if !absent_logged {
                    tracing::info!(%target, changed = %change, "changed, but not running; nothing to signal");
                    absent_logged = true;
                }
                continue;
            }
            absent_logged = false;
            for pid in pids {
                send(pid, signal, &change);
            }
        }
    })
}

fn send(pid: i32, signal: i32, change: &crate::watch::Change) {
    match crate::sys::send_signal(pid, signal, false) {
        Ok(()) => {
            tracing::info!(pid, signal = %signals::Name(signal), changed = %change, "signalled")
        }
        Err(err) if err.raw_os_error() == Some(libc::ESRCH) => {
            tracing::info!(pid, "exited before it could be signalled");
        }
        Err(err) => tracing::error!(pid, signal = %signals::Name(signal), %err, "cannot signal"),
    }
}

/// The pids to signal right now, never including gantry's own.
pub fn find(target: &Target) -> Vec<i32> {
    let me = i32::try_from(std::process::id()).unwrap_or(0);
    let pids = match target {
        Target::Name(name) => find_by_name(Path::new("/proc"), name),
        Target::Pidfile(path) => read_pidfile(path).into_iter().collect(),
    };
    pids.into_iter().filter(|&p| p != me && p > 0).collect()
}

/// The largest pidfile read: a pid is a few digits; anything bigger is not a pidfile.
const MAX_PIDFILE_BYTES: u64 = 4096;

fn read_pidfile(path: &Path) -> Option<i32> {
    // A regular file only, and a small one: a FIFO or /dev/zero given by mistake must not hang or
    // exhaust the sidecar.
    let bytes = match crate::config::file::read_regular_file(path, MAX_PIDFILE_BYTES) {
        Ok(bytes) => bytes,
        Err(err) if path.exists() => {
            tracing::warn!(pidfile = %path.display(), %err, "ignoring the pidfile");
            return None;
        }
        Err(_) => return None, // not written yet: the target is not running
    };
    let pid = std::str::from_utf8(&bytes)
        .ok()?
        .trim()
        .parse::<i32>()
        .ok()
        .filter(|&p| p > 0)?;
    // A stale pidfile names a pid that is gone (or reused; nothing can be done about that).
    Path::new("/proc")
        .join(pid.to_string())
        .exists()
        .then_some(pid)
}

/// Every process under `proc` matching `name` (see the module docs for the rule).
pub fn find_by_name(proc: &Path, name: &str) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir(proc) else {
        return Vec::new();
    };
    let mut pids: Vec<i32> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let dir = proc.join(pid.to_string());
            let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
            let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
            matches(name, comm.trim_end_matches('\n'), &cmdline)
        })
        .collect();
    pids.sort_unstable();
    pids
}

/// The matching rule, on the raw `/proc/PID/comm` and `/proc/PID/cmdline`.
fn matches(name: &str, comm: &str, cmdline: &[u8]) -> bool {
    // Kernel threads and zombies have an empty command line: never a reload target.
    if cmdline.is_empty() || name.is_empty() {
        return false;
    }
    let short = name
        .char_indices()
        .take_while(|(i, c)| i + c.len_utf8() <= COMM_LEN)
        .map(|(_, c)| c)
        .collect::<String>();
    if comm == name || (name.len() > COMM_LEN && comm == short) {
        return true;
    }
    let argv0 = cmdline.split(|&b| b == 0).next().unwrap_or_default();
    let base = argv0.rsplit(|&b| b == b'/').next().unwrap_or_default();
    base == name.as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_comm_truncated_comm_and_argv0_basename() {
        assert!(matches(
            "pgbouncer",
            "pgbouncer",
            b"pgbouncer\0/etc/p.ini\0"
        ));
        assert!(matches("nginx", "nginx", b"nginx: master process\0"));
        assert!(matches("app", "bash", b"/usr/local/bin/app\0-c\0"));
        assert!(matches(
            "very-long-process-name",
            "very-long-proce",
            b"/opt/very-long-process-name\0"
        ));
        assert!(matches("very-long-process-name", "very-long-proce", b"x\0"));
        // The kernel keeps 15 bytes: names sharing them are indistinguishable by comm (as for pkill).
        assert!(matches("very-long-proce-other", "very-long-proce", b"x\0"));
        assert!(!matches("nginx", "nginx-exporter", b"nginx-exporter\0"));
        assert!(!matches("nginx", "bash", b"bash\0/usr/bin/nginx\0"));
        assert!(!matches("kworker", "kworker", b""), "kernel threads");
        assert!(!matches("", "x", b"x\0"));
    }

    #[test]
    fn finds_itself_by_name_but_never_returns_itself() {
        let me = std::process::id() as i32;
        let comm = std::fs::read_to_string("/proc/self/comm").unwrap();
        let comm = comm.trim();
        assert!(find_by_name(Path::new("/proc"), comm).contains(&me));
        assert!(!find(&Target::Name(comm.to_string())).contains(&me));
    }

    #[test]
    fn pidfile_is_read_at_each_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("app.pid");
        let target = Target::Pidfile(pidfile.clone());
        assert!(find(&target).is_empty(), "missing pidfile");
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        std::fs::write(&pidfile, format!("{}\n", child.id())).unwrap();
        assert_eq!(find(&target), vec![child.id() as i32]);
        std::fs::write(&pidfile, "garbage").unwrap();
        assert!(find(&target).is_empty());
        std::fs::write(&pidfile, std::process::id().to_string()).unwrap();
        assert!(find(&target).is_empty(), "never itself");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn a_fifo_or_device_pidfile_is_ignored_not_waited_on() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("app.pid");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert!(find(&Target::Pidfile(fifo)).is_empty());
        assert!(find(&Target::Pidfile(PathBuf::from("/dev/zero"))).is_empty());
    }
}
