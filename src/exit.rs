//! Exit statuses: how a process ended, and the codes gantry itself exits with.
//!
//! gantry's exit code is the deciding job's: its own code, 128+N when it died of signal N, 126 when its
//! command could not be executed and 127 when it was not found. gantry's own failures use codes from
//! the BSD `sysexits` range, chosen so that they are unlikely to be mistaken for a job's; the README
//! lists them.

use std::fmt;

/// `gantry sidecar` could not watch (or its watch ended).
pub const WATCH_FAILED: i32 = 1;
/// The command line was wrong (clap's own errors exit 2, as every CLI does).
pub const USAGE: i32 = 2;
/// A template could not be rendered or a file could not be written.
pub const RENDER_FAILED: i32 = 65;
/// gantry itself hit an error it cannot recover from (e.g. it could not set up signal handling).
pub const INTERNAL: i32 = 70;
/// A boot job failed or timed out and may not fail.
pub const BOOT_FAILED: i32 = 71;
/// A probe did not become ready before the wait deadline.
pub const PROBE_TIMEOUT: i32 = 75;
/// The configuration is invalid.
pub const CONFIG: i32 = 78;
/// A command was found but could not be executed.
pub const CANNOT_EXECUTE: i32 = 126;
/// A command was not found.
pub const NOT_FOUND: i32 = 127;

/// Why a phase of gantry stopped it before (or instead of) running jobs. Phases return this; the
/// exit code each one means is decided here, in [`PhaseError::code`], and nowhere else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhaseError {
    /// The configuration is invalid.
    Config,
    /// A template could not be rendered or a file could not be written.
    Render,
    /// A boot job failed or timed out, and may not fail.
    BootFailed,
    /// A probe was not ready before the wait deadline.
    ProbeTimeout,
    /// SIGTERM or SIGINT (this signal) arrived before the jobs started.
    Signal(i32),
}

impl PhaseError {
    /// gantry's exit code for it.
    pub fn code(self) -> i32 {
        match self {
            PhaseError::Config => CONFIG,
            PhaseError::Render => RENDER_FAILED,
            PhaseError::BootFailed => BOOT_FAILED,
            PhaseError::ProbeTimeout => PROBE_TIMEOUT,
            PhaseError::Signal(sig) => 128 + sig,
        }
    }
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Code(i32),
    Signaled(i32),
}

impl ExitStatus {
    pub fn success(self) -> bool {
        self == ExitStatus::Code(0)
    }

    /// The shell convention: the code itself, or 128 + the signal.
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Code(c) => c,
            ExitStatus::Signaled(s) => 128 + s,
        }
    }

    /// The same status from `std` (a process gantry did not start through its reaper).
    pub fn from_std(status: std::process::ExitStatus) -> Self {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(code), _) => ExitStatus::Code(code),
            (None, Some(signal)) => ExitStatus::Signaled(signal),
            (None, None) => ExitStatus::Code(INTERNAL),
        }
    }

    /// The status a command has when it could not be started at all (as a shell reports it).
    pub fn from_spawn_error(err: &std::io::Error) -> Self {
        match err.kind() {
            std::io::ErrorKind::NotFound => ExitStatus::Code(NOT_FOUND),
            _ => ExitStatus::Code(CANNOT_EXECUTE),
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Code(c) => write!(f, "exit code {c}"),
            ExitStatus::Signaled(s) => write!(f, "killed by {}", crate::signals::Name(*s)),
        }
    }
}

/// Replaces gantry with `program` (a `PATH` lookup, as a shell does): the one-shot modes end this way
/// (`renderfiles -- CMD`, `wait ... -- CMD`). Returns only when it could not, with the shell's code
/// for that (126, or 127 when not found), after saying why on stderr. std resets the signal mask and
/// SIGPIPE for the new program, so it starts with default dispositions.
pub fn exec<P: AsRef<std::ffi::OsStr>, A: AsRef<std::ffi::OsStr>>(program: P, args: &[A]) -> i32 {
    use std::io::Write;
    use std::os::unix::process::CommandExt;
    let _ = std::io::stdout().flush();
    let program = program.as_ref();
    let err = std::process::Command::new(program).args(args).exec();
    tracing::error!("cannot run {}: {err}", program.to_string_lossy());
    ExitStatus::from_spawn_error(&err).code()
}

/// Writes `text` to stdout and flushes it, and returns `code`. A reader that went away (EPIPE, as in
/// `gantry check | head -1`) only means the rest was not wanted: nothing is reported and `code`
/// stands. Any other failure is reported on stderr and gives [`INTERNAL`].
pub fn print_stdout(text: &str, code: i32) -> i32 {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => code,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => code,
        Err(e) => {
            print_stderr(&format!("gantry: cannot write to stdout: {e}\n"));
            INTERNAL
        }
    }
}

/// Writes `text` to stderr; a failure (stderr closed) is ignored, since there is nowhere left to
/// report it, instead of panicking as `eprint!` would.
pub fn print_stderr(text: &str) {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes()).and_then(|()| err.flush());
}
