//! The validated plan the runtime executes, and how `job` and `boot` blocks become part of it.
//!
//! Everything here is already checked: a `JobSpec` always has a command, a duration is a `Duration`,
//! a signal is a number. The runtime never sees HCL. Blocks that belong to other phases (`file`,
//! `probe`, `watch`, `lazy`, `listen`) are read by their own modules and attached here.

use std::path::PathBuf;
use std::time::Duration;

use super::error::Errors;
use super::node::{Block, Pos, Reader};
use crate::timestamp::TimestampFormat;

/// Default grace period between a job's stop signal and SIGKILL.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time a boot job may run (mittnite's default).
pub const DEFAULT_BOOT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default delay before the first restart of a failed job, and the cap it doubles up to.
pub const DEFAULT_RESTART_DELAY: (Duration, Duration) =
    (Duration::from_secs(1), Duration::from_secs(30));
/// Default number of attempts before a job counts as failed (mittnite's default).
pub const DEFAULT_MAX_ATTEMPTS: i64 = 3;

/// How to start one process.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandSpec {
    pub program: String,
    pub args: Vec<String>,
    /// Added to gantry's own environment (later entries win).
    pub env: Vec<(String, String)>,
    pub working_dir: Option<PathBuf>,
    pub output: OutputSpec,
}

impl CommandSpec {
    pub fn new(program: impl Into<String>, args: Vec<String>) -> Self {
        CommandSpec {
            program: program.into(),
            args,
            env: Vec::new(),
            working_dir: None,
            output: OutputSpec::default(),
        }
    }

    /// `prog arg1 arg2`, for logs.
    pub fn display(&self) -> String {
        std::iter::once(self.program.as_str())
            .chain(self.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Where a process's output goes. With nothing set it inherits gantry's stdout and stderr untouched.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutputSpec {
    /// Append stdout to this file (parent directories are created).
    pub stdout: Option<PathBuf>,
    pub stderr: Option<PathBuf>,
    /// Prefix each line with a timestamp.
    pub timestamps: Option<TimestampFormat>,
}

/// How many times a failing job is started before it counts as failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempts {
    Limited(u32),
    Forever,
}

/// How a job is stopped: each stage sends a signal and waits up to its timeout for the job to exit.
/// The last stage is always SIGKILL, which is waited for without limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopSpec {
    pub stages: Vec<(i32, Duration)>,
}

impl StopSpec {
    pub fn new(signal: i32, grace: Duration) -> Self {
        StopSpec {
            stages: vec![(signal, grace)],
        }
    }

    /// The total time the stages may take before SIGKILL, at most [`super::MAX_DURATION`] (so that it
    /// can always be added to a clock reading).
    pub fn total(&self) -> Duration {
        self.stages
            .iter()
            .fold(Duration::ZERO, |sum, (_, t)| sum.saturating_add(*t))
            .min(super::MAX_DURATION)
    }

    pub fn first_signal(&self) -> i32 {
        self.stages.first().map_or(libc::SIGTERM, |(s, _)| *s)
    }
}

impl Default for StopSpec {
    fn default() -> Self {
        StopSpec::new(libc::SIGTERM, DEFAULT_STOP_TIMEOUT)
    }
}

/// A supervised job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSpec {
    pub name: String,
    pub command: CommandSpec,
    pub can_fail: bool,
    pub max_attempts: Attempts,
    /// The first delay before a restart (it doubles after each failure in a row) and its cap.
    pub restart_delay: (Duration, Duration),
    pub one_time: bool,
    pub controllable: bool,
    pub stop: StopSpec,
    /// Reload on change: the job's `watch` blocks.
    pub watches: Vec<super::watch::WatchSpec>,
    /// Where the block was written, for messages.
    pub origin: Option<Pos>,
}

/// A job that must run to completion before any `JobSpec` starts.
#[derive(Debug, Clone, PartialEq)]
pub struct BootJob {
    pub name: String,
    pub command: CommandSpec,
    pub can_fail: bool,
    /// `None` means no limit (`timeout = "0s"`).
    pub timeout: Option<Duration>,
    pub stop: StopSpec,
    /// `waitFor`: the probes that must be ready before this boot job starts, each with where its
    /// name was written. Every name is a probe of the plan (checked by `build_plan`).
    pub wait_for: Vec<(String, Pos)>,
    pub origin: Option<Pos>,
}

/// When the boot jobs run relative to the probes: the directory-wide `settings` block's
/// `probesBeforeBoot` (see `config::settings`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Order {
    /// gantry's default: boot jobs first (a boot job with `waitFor` waits for its probes), then the
    /// `wait = true` probes, then jobs.
    #[default]
    BootFirst,
    /// mittnite's order: every `wait = true` probe (and every probe a `waitFor` names) is ready
    /// before any boot job starts.
    ProbesFirst,
}

/// A block kind that parsed but whose phase is not part of this build yet.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub kind: String,
    pub title: String,
    pub pos: Pos,
}

/// Everything `gantry up` will do, in phase order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// `file` blocks, rendered before anything runs.
    pub files: Vec<super::file_block::FileSpec>,
    pub boot: Vec<BootJob>,
    pub jobs: Vec<JobSpec>,
    /// `probe` blocks, in file order; the `wait = true` ones gate the run phase.
    pub probes: Vec<super::probe::ProbeBlock>,
    /// Blocks gantry recognises but cannot run yet; `up` refuses to start while any remain.
    pub pending: Vec<Pending>,
    /// The jobs' `lazy` and `listen` blocks (`config::lazy`), one entry per job that has any.
    pub listeners: Vec<super::lazy::JobListeners>,
    /// Boot jobs before probes (gantry) or probes before boot jobs (mittnite).
    pub order: Order,
    /// What was accepted but should be changed (mittnite's deprecated names), each with its
    /// position; `config::load` logs them once.
    pub warnings: Vec<super::error::ConfigError>,
}

impl Plan {
    /// The probes the probe phase waits for, in file order: the `wait = true` ones, and — when
    /// probes come before boot jobs — every probe a boot job's `waitFor` names as well.
    pub fn phase_probes(&self) -> Vec<&super::probe::ProbeBlock> {
        self.probes
            .iter()
            .filter(|p| {
                p.wait
                    || (self.order == Order::ProbesFirst
                        && self
                            .boot
                            .iter()
                            .any(|b| b.wait_for.iter().any(|(n, _)| *n == p.name)))
            })
            .collect()
    }

    /// The probe named `name`, if the plan has one.
    pub fn probe(&self, name: &str) -> Option<&super::probe::ProbeBlock> {
        self.probes.iter().find(|p| p.name == name)
    }
}

/// The attributes `job` and `boot` share.
fn read_command(r: &mut Reader<'_>, name: &str) -> Option<CommandSpec> {
    let program = r.text("command");
    let command_written = r.value("command").is_some();
    let args = r.string_list("args").unwrap_or_default();
    let mut env = Vec::new();
    if let Some(v) = r.value("env") {
        let pos = v.pos.clone();
        for entry in r.string_list("env").unwrap_or_default() {
            match entry.split_once('=') {
                Some((k, val)) if !k.is_empty() => env.push((k.to_string(), val.to_string())),
                _ => r.error(
                    pos.clone(),
                    "env",
                    format!("entry {entry:?} is not of the form NAME=VALUE"),
                ),
            }
        }
    }
    let working_dir = r.text("workingDirectory").map(PathBuf::from);
    let stdout = r.text("stdout").map(PathBuf::from);
    let stderr = r.text("stderr").map(PathBuf::from);
    let enable_ts = r.bool("enableTimestamps").unwrap_or(false);
    let named = r.value("timestampFormat").map(|v| v.pos.clone());
    let named_fmt = r.text("timestampFormat");
    let custom_fmt = r.text("customTimestampFormat");
    let timestamps = if enable_ts {
        match (custom_fmt, named_fmt) {
            (Some(layout), _) => Some(TimestampFormat::go_layout(&layout)),
            (None, Some(n)) => match TimestampFormat::named(&n) {
                Ok(f) => Some(f),
                Err(e) => {
                    if let Some(pos) = named {
                        r.error(pos, "timestampFormat", e);
                    }
                    None
                }
            },
            (None, None) => Some(TimestampFormat::default()),
        }
    } else {
        None
    };
    match program {
        Some(p) if !p.trim().is_empty() => Some(CommandSpec {
            program: p,
            args,
            env,
            working_dir,
            output: OutputSpec {
                stdout,
                stderr,
                timestamps,
            },
        }),
        Some(_) => {
            let pos = r.value("command").map(|v| v.pos.clone());
            if let Some(pos) = pos {
                r.error(pos, "command", "must not be empty");
            }
            None
        }
        // Written, but not as text: that error is already reported.
        None if command_written => None,
        None => {
            let pos = r.block().pos.clone();
            let title = r.block().title();
            r.errors().push(super::error::ConfigError::at(
                pos,
                format!("{title}: attribute \"command\" is required (the program {name} runs)"),
            ));
            None
        }
    }
}

fn read_stop(r: &mut Reader<'_>) -> StopSpec {
    let signal = r.signal("stopSignal").unwrap_or(libc::SIGTERM);
    let grace = r.duration("stopTimeout").unwrap_or(DEFAULT_STOP_TIMEOUT);
    StopSpec::new(signal, grace)
}

fn label(r: &mut Reader<'_>) -> Option<String> {
    let block = r.block();
    match block.labels.as_slice() {
        [name] if !name.is_empty() => Some(name.clone()),
        _ => {
            let pos = block.pos.clone();
            let kind = block.kind.clone();
            r.errors().push(super::error::ConfigError::at(
                pos,
                format!("{kind} block needs exactly one name, as in {kind} \"web\" {{ ... }}"),
            ));
            None
        }
    }
}

/// Reads one `job` block. Its `lazy` and `listen` blocks go to `listeners` (`config::lazy`).
pub fn job_from_block(
    block: &Block,
    errors: &mut Errors,
    listeners: &mut Vec<super::lazy::JobListeners>,
) -> Option<JobSpec> {
    let mut r = Reader::new(block, errors);
    let name = label(&mut r);
    let command = read_command(&mut r, "this job");
    let can_fail = r.bool("canFail").unwrap_or(false);
    // mittnite still reads its old name, `max_attempts`.
    let key = r.renamed("maxAttempts", "max_attempts");
    let max_attempts = match r.int(key) {
        None => Attempts::Limited(DEFAULT_MAX_ATTEMPTS as u32),
        Some(-1) => Attempts::Forever,
        Some(n) if n >= 1 && n <= u32::MAX as i64 => Attempts::Limited(n as u32),
        Some(n) => {
            let pos = r.value(key).map(|v| v.pos.clone());
            if let Some(pos) = pos {
                r.error(
                    pos,
                    key,
                    format!("{n} is not allowed: use a number of attempts ≥ 1, or -1 for forever"),
                );
            }
            Attempts::Limited(DEFAULT_MAX_ATTEMPTS as u32)
        }
    };
    let one_time = r.bool("oneTime").unwrap_or(false);
    let controllable = r.bool("controllable").unwrap_or(false);
    let stop = read_stop(&mut r);
    let first = r
        .duration("restartDelay")
        .unwrap_or(DEFAULT_RESTART_DELAY.0);
    let cap = r.duration("maxRestartDelay");
    let restart_delay = (first, cap.unwrap_or(DEFAULT_RESTART_DELAY.1.max(first)));
    if restart_delay.1 < restart_delay.0 {
        if let Some(pos) = r.value("maxRestartDelay").map(|v| v.pos.clone()) {
            r.error(
                pos,
                "maxRestartDelay",
                format!(
                    "{:?} is shorter than restartDelay ({first:?})",
                    restart_delay.1
                ),
            );
        }
    }
    let mut watches = Vec::new();
    for b in r.blocks("watch") {
        watches.extend(super::watch::watch_from_block(&b, r.errors()));
    }
    listeners.extend(super::lazy::read_job(&mut r, name.as_deref()));
    r.finish();
    Some(JobSpec {
        name: name?,
        command: command?,
        can_fail,
        max_attempts,
        restart_delay,
        one_time,
        controllable,
        stop,
        watches,
        origin: Some(block.pos.clone()),
    })
}

/// Reads one `boot` block.
pub fn boot_from_block(block: &Block, errors: &mut Errors) -> Option<BootJob> {
    let mut r = Reader::new(block, errors);
    let name = label(&mut r);
    let command = read_command(&mut r, "this boot job");
    let can_fail = r.bool("canFail").unwrap_or(false);
    let timeout = match r.duration("timeout") {
        None => Some(DEFAULT_BOOT_TIMEOUT),
        Some(d) if d.is_zero() => None,
        Some(d) => Some(d),
    };
    let stop = read_stop(&mut r);
    let wait_for = read_wait_for(&mut r);
    r.finish();
    Some(BootJob {
        name: name?,
        command: command?,
        can_fail,
        timeout,
        stop,
        wait_for,
        origin: Some(block.pos.clone()),
    })
}

/// `waitFor = ["db", "cache"]`: probe names, each at most once. Whether they name probes is
/// checked once every block is read.
fn read_wait_for(r: &mut Reader<'_>) -> Vec<(String, Pos)> {
    let Some(v) = r.value("waitFor") else {
        return Vec::new();
    };
    let items = match &v.value {
        super::node::Value::Array(items) => items,
        _ => {
            // Reported by `string_list` (with its hint for a lone string).
            r.string_list("waitFor");
            return Vec::new();
        }
    };
    if r.string_list("waitFor").is_none() {
        return Vec::new();
    }
    let mut out: Vec<(String, Pos)> = Vec::new();
    for item in items {
        let super::node::Value::String(name) = &item.value else {
            continue;
        };
        if let Some((_, first)) = out.iter().find(|(n, _)| n == name) {
            let msg = format!(
                "probe {name:?} is listed twice (first at column {})",
                first.col
            );
            r.error(item.pos.clone(), "waitFor", msg);
        } else {
            out.push((name.clone(), item.pos.clone()));
        }
    }
    out
}
