//! Where a job's output goes: straight through, appended to a file, or line by line with timestamps.
//!
//! By default a child inherits gantry's stdout and stderr, so its output passes through untouched and
//! nothing is copied. A `stdout`/`stderr` file without timestamps is opened in append mode and handed
//! to the child directly. Only timestamps need a pipe and a copy task; that task writes every line it
//! reads (a last line without a newline included) and ends when every writer has closed the pipe, so
//! nothing is dropped. Copy tasks are tracked so that gantry can let them drain before it exits.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::task::JoinHandle;

use crate::config::OutputSpec;
use crate::timestamp::TimestampFormat;

/// Where copied lines end up.
#[derive(Debug)]
enum Target {
    Stdout,
    Stderr,
    File(File),
}

impl Target {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Target::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(bytes)?;
                out.flush()
            }
            Target::Stderr => io::stderr().lock().write_all(bytes),
            Target::File(f) => f.write_all(bytes),
        }
    }
}

/// One stream after `prepare`: what the child gets, and what to copy if it is a pipe.
#[derive(Debug)]
struct Stream {
    copy: Option<(Target, TimestampFormat)>,
}

/// The child's stdio, and the copy work to start once it is running.
#[derive(Debug)]
pub struct Prepared {
    pub stdout: Stdio,
    pub stderr: Stdio,
    pub copy: CopyPlan,
}

/// The copy tasks a child's output needs once it runs.
#[derive(Debug)]
pub struct CopyPlan {
    out: Stream,
    err: Stream,
}

/// Opens `path` for appending, creating parent directories.
pub fn open_append(path: &Path) -> io::Result<File> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    OpenOptions::new().create(true).append(true).open(path)
}

fn stream(
    file: Option<&Path>,
    ts: Option<&TimestampFormat>,
    fallback: Target,
) -> io::Result<(Stdio, Stream)> {
    match (file, ts) {
        (None, None) => Ok((Stdio::inherit(), Stream { copy: None })),
        (Some(path), None) => Ok((Stdio::from(open_append(path)?), Stream { copy: None })),
        (file, Some(ts)) => {
            let target = match file {
                Some(path) => Target::File(open_append(path)?),
                None => fallback,
            };
            Ok((
                Stdio::piped(),
                Stream {
                    copy: Some((target, ts.clone())),
                },
            ))
        }
    }
}

/// Opens files and decides on pipes for a child's output.
pub fn prepare(spec: &OutputSpec) -> io::Result<Prepared> {
    let (stdout, out) = stream(
        spec.stdout.as_deref(),
        spec.timestamps.as_ref(),
        Target::Stdout,
    )?;
    let (stderr, err) = stream(
        spec.stderr.as_deref(),
        spec.timestamps.as_ref(),
        Target::Stderr,
    )?;
    Ok(Prepared {
        stdout,
        stderr,
        copy: CopyPlan { out, err },
    })
}

/// The copy tasks still running, so that gantry can wait for them before exiting.
#[derive(Debug, Clone, Default)]
pub struct Copiers(Arc<Mutex<Vec<JoinHandle<()>>>>);

impl Copiers {
    fn push(&self, handle: JoinHandle<()>) {
        let mut list = self.0.lock().unwrap_or_else(|e| e.into_inner());
        list.retain(|h| !h.is_finished());
        list.push(handle);
    }

    /// Waits up to `limit` for every copy task to reach the end of its pipe.
    pub async fn drain(&self, limit: Duration) {
        let handles: Vec<_> =
            std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()));
        let all = async {
            for h in handles {
                let _ = h.await;
            }
        };
        let _ = tokio::time::timeout(limit, all).await;
    }
}

impl CopyPlan {
    /// Starts copying from the child's pipes (the read ends `Reaper::spawn` returned).
    pub fn start(self, stdout: Option<OwnedFd>, stderr: Option<OwnedFd>, copiers: &Copiers) {
        for (stream, fd) in [(self.out, stdout), (self.err, stderr)] {
            if let (Some((target, ts)), Some(fd)) = (stream.copy, fd) {
                copiers.push(tokio::spawn(copy_lines(fd, target, ts)));
            }
        }
    }
}

async fn copy_lines(fd: OwnedFd, mut target: Target, ts: TimestampFormat) {
    let pipe = match tokio::net::unix::pipe::Receiver::from_owned_fd(fd) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!("cannot read a job's output pipe: {e}");
            return;
        }
    };
    let mut reader = BufReader::new(pipe);
    let mut line = Vec::with_capacity(256);
    // A destination that fails (a closed pipe, a full disk) is reported once, not once per line;
    // the pipe is still drained so that the job never blocks on its output.
    let mut failing = false;
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) => return,
            Ok(_) => {
                if !line.ends_with(b"\n") {
                    line.push(b'\n');
                }
                let mut out = Vec::with_capacity(line.len() + 40);
                out.extend_from_slice(ts.now().as_bytes());
                out.push(b' ');
                out.extend_from_slice(&line);
                match target.write_all(&out) {
                    Ok(()) => failing = false,
                    Err(e) if !failing => {
                        failing = true;
                        tracing::warn!(
                            "cannot write a job's output: {e} (dropped until a write succeeds)"
                        );
                    }
                    Err(_) => {}
                }
            }
            Err(e) => {
                tracing::warn!("reading a job's output: {e}");
                return;
            }
        }
    }
}
