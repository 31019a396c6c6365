//! Where a job's output goes: straight through, appended to a file, or line by line with timestamps.
//!
//! By default a child inherits gantry's stdout and stderr, so its output passes through untouched and
//! nothing is copied. A `stdout`/`stderr` file without timestamps is opened in append mode and handed
//! to the child directly. Only timestamps need a pipe and a copy task; that task writes every line it
//! reads (a last line without a newline included) and ends when every writer has closed the pipe and
//! its lines are written, so nothing is dropped. Copy tasks are tracked so that gantry can let them
//! drain before it exits.
//!
//! **Output never blocks the supervisor.** A destination can block for ever (gantry's stdout is a pipe
//! nobody reads). Writes therefore happen on a [`Sink`]: a thread of its own per destination (one for
//! gantry's stdout, one for its stderr, shared by every job so lines do not interleave; one per
//! output file), fed through a small bounded queue. A copy task that finds the queue full waits, stops
//! reading the job's pipe, and the job blocks on its own write: back-pressure reaches the job, while
//! signals, reaping and shutdown go on. At exit gantry waits for the queues a bounded time only, and
//! a writer thread still stuck in `write` is ended with the process.
//!
//! **Bounded memory.** A line is cut after [`MAX_LINE`] bytes: the part read so far is written as a
//! line of its own (with its timestamp) and the rest follows as the next line, so an endless line
//! without a newline costs at most that much.
//!
//! **With the API on** (`up --api`, see [`Copiers::enable_rings`]) every stream of every job is a
//! pipe: a tee task reads it, hands the bytes to the same destination as above (unchanged: raw bytes
//! as read, or timestamped lines), then appends the lines to the job's [`LogRing`]. The ring never
//! waits for its readers, so only the destination's back-pressure reaches the job, as without the
//! API. With the API off nothing of this exists: no ring, and no pipe where none was needed before.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::config::OutputSpec;
use crate::logring::{self, LineSplitter, LogRing, Rings};
use crate::timestamp::TimestampFormat;

/// The longest line copied as one: longer ones are cut into lines of this size.
pub const MAX_LINE: usize = 64 * 1024;

/// How many writes may wait for a sink's thread (each at most [`MAX_LINE`] and a timestamp long).
const QUEUE: usize = 16;

/// Where copied lines end up.
#[derive(Debug)]
enum Target {
    Stdout,
    Stderr,
    File(File),
}

/// What a copy task hands to a sink's thread.
enum Queued {
    Bytes(Vec<u8>),
    /// Answered once everything queued before it was written (or failed).
    Flush(oneshot::Sender<()>),
}

/// A destination served by a thread of its own (see the module doc).
#[derive(Clone)]
struct Sink(mpsc::Sender<Queued>);

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sink")
    }
}

impl Sink {
    /// Starts the writer thread for `out`, named `what` in its one failure message.
    fn start(what: &'static str, mut out: Box<dyn Write + Send>) -> io::Result<Sink> {
        let (tx, mut rx) = mpsc::channel::<Queued>(QUEUE);
        std::thread::Builder::new()
            .name(format!("gantry-{what}"))
            .stack_size(64 * 1024)
            .spawn(move || {
                // A destination that fails (a closed pipe, a full disk) is reported once, not once
                // per line; what comes later is still taken off the queue so jobs never block on it.
                let mut failing = false;
                while let Some(item) = rx.blocking_recv() {
                    match item {
                        Queued::Bytes(bytes) => match out.write_all(&bytes) {
                            Ok(()) => failing = false,
                            Err(e) if !failing => {
                                failing = true;
                                tracing::warn!(
                                    "cannot write a job's output to {what}: {e} (dropped until a write succeeds)"
                                );
                            }
                            Err(_) => {}
                        },
                        Queued::Flush(done) => {
                            let _ = out.flush();
                            let _ = done.send(());
                        }
                    }
                }
            })?;
        Ok(Sink(tx))
    }

    /// The shared sink for gantry's stdout or stderr, started on first use.
    fn standard(stdout: bool) -> io::Result<Sink> {
        static OUT: OnceLock<Sink> = OnceLock::new();
        static ERR: OnceLock<Sink> = OnceLock::new();
        let cell = if stdout { &OUT } else { &ERR };
        if let Some(sink) = cell.get() {
            return Ok(sink.clone());
        }
        // Raw writes to the descriptor: std's `Stdout` has a lock that a thread blocked in `write`
        // would hold for ever, and gantry's own logs (stderr) must not wait for a job's output.
        let (what, fd) = if stdout { ("stdout", 1) } else { ("stderr", 2) };
        let sink = Sink::start(what, Box::new(RawFd(fd)))?;
        Ok(cell.get_or_init(|| sink).clone())
    }
}

/// Writes straight to a descriptor gantry does not own (1 or 2), without closing it.
struct RawFd(i32);

impl Write for RawFd {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        crate::sys::write_fd(self.0, buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One stream after `prepare`: what the child gets, and what to copy if it is a pipe.
#[derive(Debug)]
struct Stream {
    copy: Option<Copy>,
}

/// What a pipe's copy task does: write to `target` (with timestamps if `ts`), and keep the lines
/// in `ring` when the API is on.
#[derive(Debug)]
struct Copy {
    target: Target,
    ts: Option<TimestampFormat>,
    ring: Option<(Arc<LogRing>, logring::Stream)>,
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
    ring: Option<(Arc<LogRing>, logring::Stream)>,
) -> io::Result<(Stdio, Stream)> {
    match (file, ts, ring) {
        (None, None, None) => Ok((Stdio::inherit(), Stream { copy: None })),
        (Some(path), None, None) => Ok((Stdio::from(open_append(path)?), Stream { copy: None })),
        (file, ts, ring) => {
            let target = match file {
                Some(path) => Target::File(open_append(path)?),
                None => fallback,
            };
            Ok((
                Stdio::piped(),
                Stream {
                    copy: Some(Copy {
                        target,
                        ts: ts.cloned(),
                        ring,
                    }),
                },
            ))
        }
    }
}

/// Opens files and decides on pipes for a child's output; with `ring` (the API is on) both streams
/// are piped and teed into it.
pub fn prepare(spec: &OutputSpec, ring: Option<Arc<LogRing>>) -> io::Result<Prepared> {
    let (stdout, out) = stream(
        spec.stdout.as_deref(),
        spec.timestamps.as_ref(),
        Target::Stdout,
        ring.clone().map(|r| (r, logring::Stream::Stdout)),
    )?;
    let (stderr, err) = stream(
        spec.stderr.as_deref(),
        spec.timestamps.as_ref(),
        Target::Stderr,
        ring.map(|r| (r, logring::Stream::Stderr)),
    )?;
    Ok(Prepared {
        stdout,
        stderr,
        copy: CopyPlan { out, err },
    })
}

/// The copy tasks still running, so that gantry can wait for them before exiting; and, with the
/// API on, every job's log ring.
#[derive(Debug, Clone, Default)]
pub struct Copiers(Arc<Mutex<Vec<JoinHandle<()>>>>, Arc<OnceLock<Arc<Rings>>>);

impl Copiers {
    /// From now on, jobs' output is also kept in `rings` (the API is on).
    pub fn enable_rings(&self, rings: Arc<Rings>) {
        let _ = self.1.set(rings);
    }

    /// Job `job`'s ring, when the API is on.
    pub fn ring(&self, job: &str) -> Option<Arc<LogRing>> {
        self.1.get()?.get(job).cloned()
    }

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
            if let (Some(copy), Some(fd)) = (stream.copy, fd) {
                let sink = match copy.target {
                    Target::Stdout => Sink::standard(true),
                    Target::Stderr => Sink::standard(false),
                    Target::File(f) => Sink::start("a file", Box::new(f)),
                };
                match (sink, copy.ring, copy.ts) {
                    (Ok(sink), Some(ring), ts) => {
                        copiers.push(tokio::spawn(tee(fd, sink, ts, ring)))
                    }
                    (Ok(sink), None, Some(ts)) => {
                        copiers.push(tokio::spawn(copy_lines(fd, sink, ts)))
                    }
                    // A pipe is only made for timestamps or a ring.
                    (Ok(_), None, None) => copiers.push(tokio::spawn(discard(fd))),
                    // Without a writer the pipe is still read, so that the job never blocks on it.
                    (Err(e), _, _) => {
                        tracing::error!(
                            "cannot start an output writer: {e}; the output is dropped"
                        );
                        copiers.push(tokio::spawn(discard(fd)));
                    }
                }
            }
        }
    }
}

/// How much of a job's pipe the tee reads at once.
const TEE_READ: usize = 8 * 1024;

thread_local! {
    /// The one read buffer of every tee on this thread. gantry's runtime has one thread, and a tee
    /// only borrows the buffer between its pipe becoming readable and the bytes being turned into
    /// lines, so a job whose output is kept for the API holds no buffer while it is quiet (20 jobs
    /// held 320 KiB when each stream had its own).
    static TEE_BUF: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0u8; TEE_READ].into_boxed_slice());
}

/// Copies a pipe to `sink` (raw, or as timestamped lines) and keeps its lines in the ring.
async fn tee(
    fd: OwnedFd,
    sink: Sink,
    ts: Option<TimestampFormat>,
    (ring, stream): (Arc<LogRing>, logring::Stream),
) {
    let Some(pipe) = receiver(fd) else { return };
    let mut splitter = LineSplitter::new(MAX_LINE);
    let mut open = true;
    while open {
        // Reads once the pipe is readable, and turns what came into the sink's bytes and the
        // ring's lines while the shared buffer is borrowed: (bytes read, lines, line ends, bytes
        // for the sink).
        let chunk = loop {
            let ready = pipe.readable().await;
            let read = TEE_BUF.with_borrow_mut(|buf| {
                let n = match ready.and_then(|()| pipe.try_read(buf)) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                    Err(e) => {
                        tracing::warn!("reading a job's output: {e}");
                        0
                    }
                };
                let (mut lines, mut ends) = (Vec::with_capacity(n + 64), Vec::new());
                if n == 0 {
                    splitter.finish(&mut lines, &mut ends);
                } else {
                    splitter.feed(&buf[..n], &mut lines, &mut ends);
                }
                let out = match &ts {
                    // Passthrough: exactly the bytes the job wrote.
                    None => buf[..n].to_vec(),
                    Some(ts) => {
                        let stamp = ts.now();
                        let mut out =
                            Vec::with_capacity(lines.len() + ends.len() * (stamp.len() + 1));
                        let mut start = 0;
                        for &end in &ends {
                            out.extend_from_slice(stamp.as_bytes());
                            out.push(b' ');
                            out.extend_from_slice(&lines[start..end as usize]);
                            start = end as usize;
                        }
                        out
                    }
                };
                Some((n, lines, ends, out))
            });
            if let Some(chunk) = read {
                break chunk;
            }
        };
        let (n, lines, ends, out) = chunk;
        open = n > 0;
        // Waits while the queue is full: this is the back-pressure on the job.
        if !out.is_empty() && sink.0.send(Queued::Bytes(out)).await.is_err() {
            break;
        }
        ring.push(stream, lines, ends);
        // Let followers take the new lines before the next read.
        tokio::task::yield_now().await;
    }
    let (done, written) = oneshot::channel();
    if sink.0.send(Queued::Flush(done)).await.is_ok() {
        let _ = written.await;
    }
}

fn receiver(fd: OwnedFd) -> Option<tokio::net::unix::pipe::Receiver> {
    match tokio::net::unix::pipe::Receiver::from_owned_fd(fd) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::error!("cannot read a job's output pipe: {e}");
            None
        }
    }
}

async fn discard(fd: OwnedFd) {
    if let Some(mut pipe) = receiver(fd) {
        let _ = tokio::io::copy(&mut pipe, &mut tokio::io::sink()).await;
    }
}

async fn copy_lines(fd: OwnedFd, sink: Sink, ts: TimestampFormat) {
    let Some(pipe) = receiver(fd) else { return };
    let mut reader = BufReader::new(pipe);
    let mut line = Vec::with_capacity(256);
    loop {
        match read_line_capped(&mut reader, &mut line, MAX_LINE).await {
            Ok(0) => break,
            Ok(_) => {
                if !line.ends_with(b"\n") {
                    line.push(b'\n');
                }
                let mut out = Vec::with_capacity(line.len() + 40);
                out.extend_from_slice(ts.now().as_bytes());
                out.push(b' ');
                out.extend_from_slice(&line);
                // Waits while the queue is full: this is the back-pressure on the job.
                if sink.0.send(Queued::Bytes(out)).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!("reading a job's output: {e}");
                break;
            }
        }
    }
    let (done, written) = oneshot::channel();
    if sink.0.send(Queued::Flush(done)).await.is_ok() {
        let _ = written.await;
    }
}

/// Reads one line into `line` (cleared first): up to and including a newline, or `cap` bytes,
/// or what is left before end-of-file. Returns its length; 0 at end-of-file.
async fn read_line_capped<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
    cap: usize,
) -> io::Result<usize> {
    line.clear();
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(line.len());
        }
        let room = cap - line.len();
        let (take, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) if i < room => (i + 1, true),
            _ => {
                let take = buf.len().min(room);
                (take, take == room)
            }
        };
        line.extend_from_slice(&buf[..take]);
        reader.consume(take);
        if done {
            return Ok(line.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines(input: &[u8], cap: usize) -> Vec<Vec<u8>> {
        let mut reader = BufReader::with_capacity(7, input);
        let mut out = Vec::new();
        let mut line = Vec::new();
        while read_line_capped(&mut reader, &mut line, cap)
            .await
            .expect("read")
            > 0
        {
            out.push(line.clone());
        }
        out
    }

    #[tokio::test]
    async fn lines_are_cut_at_the_cap_and_nothing_is_lost() {
        let input = b"short\n0123456789abcdefghij\nlast-no-newline";
        let got = lines(input, 8).await;
        assert_eq!(got.concat(), input.to_vec());
        assert!(got.iter().all(|l| l.len() <= 8), "{got:?}");
        assert_eq!(got[0], b"short\n");
        assert_eq!(got[1], b"01234567");
    }

    #[tokio::test]
    async fn a_newline_right_at_the_cap_ends_the_line() {
        let got = lines(b"1234567\nx", 8).await;
        assert_eq!(got, vec![b"1234567\n".to_vec(), b"x".to_vec()]);
    }
}
