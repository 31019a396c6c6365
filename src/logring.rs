//! Per-job log rings: the last lines of each job's output, kept in memory for the API.
//!
//! Only exists when `up --api` is on. Each job has one [`LogRing`] holding its stdout and stderr
//! lines (each tagged with its stream) up to a byte budget; the oldest lines are dropped first. Every
//! line gets a sequence number, counted from 0 for the life of gantry, so a reader knows exactly
//! where it is: a reader asks for lines from sequence `n` and is told how many lines it missed if the
//! ring has already dropped them ([`Batch::skipped`]), never handed a silent gap.
//!
//! **Writers never wait for readers.** The output copy task ([`crate::output`]) appends a whole read
//! of lines at once ([`LogRing::push`]) under a short lock and bumps a `watch` counter; readers
//! (followers of `logs -f`) copy what they need under the same lock and write to their client with
//! the lock released. A reader that cannot keep up only loses lines to eviction, and learns how many.
//!
//! **Bounded memory.** Lines are stored in chunks (one per read of the job's pipe) with four bytes of
//! bookkeeping per line; the budget counts every stored byte, and at least the newest chunk is kept.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::watch;

/// The default budget of one job's ring.
pub const DEFAULT_RING_BYTES: usize = 1024 * 1024;

/// The smallest budget accepted (smaller values are raised to it).
pub const MIN_RING_BYTES: usize = 4 * 1024;

/// Which of a job's streams a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Lines appended in one go: `data` is the lines back to back, each ending in `\n`; `ends[i]` is
/// where line `first + i` ends (exclusive).
#[derive(Debug)]
struct Chunk {
    first: u64,
    stream: Stream,
    data: Bytes,
    ends: Vec<u32>,
}

impl Chunk {
    fn cost(&self) -> usize {
        self.data.len() + 4 * self.ends.len() + 64
    }

    fn next(&self) -> u64 {
        self.first + self.ends.len() as u64
    }

    /// Line `i` of this chunk, without its newline.
    fn line(&self, i: usize) -> Bytes {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        let end = self.ends[i] as usize;
        self.data.slice(start..end.saturating_sub(1).max(start))
    }
}

#[derive(Debug)]
struct Inner {
    chunks: VecDeque<Chunk>,
    /// The sequence number the next line will get.
    next: u64,
    bytes: usize,
    cap: usize,
}

impl Inner {
    fn first(&self) -> u64 {
        self.chunks.front().map_or(self.next, |c| c.first)
    }
}

/// One line handed to a reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub seq: u64,
    pub stream: Stream,
    /// Without its newline.
    pub text: Bytes,
}

/// What a read returned.
#[derive(Debug, Default)]
pub struct Batch {
    /// Lines the reader asked for that the ring no longer holds (they come before `lines`).
    pub skipped: u64,
    pub lines: Vec<Line>,
    /// Where the reader goes on from.
    pub next: u64,
}

/// One job's ring (see the module doc).
#[derive(Debug)]
pub struct LogRing {
    inner: Mutex<Inner>,
    written: watch::Sender<u64>,
}

impl LogRing {
    pub fn new(cap: usize) -> Self {
        LogRing {
            inner: Mutex::new(Inner {
                chunks: VecDeque::new(),
                next: 0,
                bytes: 0,
                cap: cap.max(MIN_RING_BYTES),
            }),
            written: watch::Sender::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends complete lines: `data` holds them back to back, each ending in `\n`, and `ends` the
    /// end of each. Drops the oldest chunks beyond the budget.
    pub fn push(&self, stream: Stream, data: Vec<u8>, ends: Vec<u32>) {
        if ends.is_empty() {
            return;
        }
        let next = {
            let mut inner = self.lock();
            let chunk = Chunk {
                first: inner.next,
                stream,
                data: Bytes::from(data),
                ends,
            };
            inner.next = chunk.next();
            inner.bytes += chunk.cost();
            inner.chunks.push_back(chunk);
            while inner.bytes > inner.cap && inner.chunks.len() > 1 {
                if let Some(old) = inner.chunks.pop_front() {
                    inner.bytes -= old.cost();
                }
            }
            inner.next
        };
        self.written.send_replace(next);
    }

    /// Appends one line (a newline is added); for messages and tests.
    pub fn push_line(&self, stream: Stream, text: &[u8]) {
        let mut data = text.to_vec();
        data.push(b'\n');
        let end = data.len() as u32;
        self.push(stream, data, vec![end]);
    }

    /// The sequence number of the next line to be written.
    pub fn next_seq(&self) -> u64 {
        self.lock().next
    }

    /// Where a reader that wants the last `tail` lines starts (`None`: everything the ring holds).
    pub fn tail_start(&self, tail: Option<u64>) -> u64 {
        let inner = self.lock();
        let first = inner.first();
        match tail {
            Some(n) => inner.next.saturating_sub(n).max(first),
            None => first,
        }
    }

    /// Up to `max` lines from sequence number `from` on.
    pub fn read(&self, from: u64, max: usize) -> Batch {
        let inner = self.lock();
        let first = inner.first();
        let mut batch = Batch {
            skipped: first.saturating_sub(from),
            lines: Vec::new(),
            next: from.max(first),
        };
        // The chunk holding `next`: chunks are in order, so search by their first line.
        let start = inner.chunks.partition_point(|c| c.next() <= batch.next);
        for chunk in inner.chunks.iter().skip(start) {
            let mut i = (batch.next - chunk.first) as usize;
            while i < chunk.ends.len() && batch.lines.len() < max {
                batch.lines.push(Line {
                    seq: chunk.first + i as u64,
                    stream: chunk.stream,
                    text: chunk.line(i),
                });
                i += 1;
                batch.next += 1;
            }
            if batch.lines.len() >= max {
                break;
            }
        }
        batch
    }

    /// A receiver that changes whenever lines are appended.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.written.subscribe()
    }

    /// Bytes currently held (with bookkeeping).
    pub fn held_bytes(&self) -> usize {
        self.lock().bytes
    }
}

/// Every job's ring, by job name.
#[derive(Debug, Default)]
pub struct Rings {
    map: HashMap<String, Arc<LogRing>>,
}

impl Rings {
    /// One ring of `cap` bytes for each job in `names`.
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>, cap: usize) -> Self {
        Rings {
            map: names
                .into_iter()
                .map(|n| (n.to_string(), Arc::new(LogRing::new(cap))))
                .collect(),
        }
    }

    pub fn get(&self, job: &str) -> Option<&Arc<LogRing>> {
        self.map.get(job)
    }
}

/// Cuts a byte stream into lines of at most `cap` bytes (see `output`'s module doc): complete lines
/// go out, a partial one waits for the next read.
#[derive(Debug)]
pub struct LineSplitter {
    carry: Vec<u8>,
    cap: usize,
}

impl LineSplitter {
    pub fn new(cap: usize) -> Self {
        LineSplitter {
            carry: Vec::new(),
            cap: cap.max(1),
        }
    }

    /// Appends the complete lines of `carry + input` to `out` (each ending in `\n`, a cut line
    /// gets one) and their ends to `ends`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>, ends: &mut Vec<u32>) {
        let mut rest = input;
        while !rest.is_empty() {
            let room = self.cap - self.carry.len();
            match rest.iter().take(room).position(|&b| b == b'\n') {
                Some(i) => {
                    out.extend_from_slice(&self.carry);
                    out.extend_from_slice(&rest[..=i]);
                    self.carry.clear();
                    ends.push(out.len() as u32);
                    rest = &rest[i + 1..];
                }
                None if rest.len() >= room => {
                    out.extend_from_slice(&self.carry);
                    out.extend_from_slice(&rest[..room]);
                    out.push(b'\n');
                    self.carry.clear();
                    ends.push(out.len() as u32);
                    rest = &rest[room..];
                }
                None => {
                    self.carry.extend_from_slice(rest);
                    rest = &[];
                }
            }
        }
    }

    /// At end of input: the partial last line, if any, as a line of its own.
    pub fn finish(&mut self, out: &mut Vec<u8>, ends: &mut Vec<u32>) {
        if !self.carry.is_empty() {
            out.append(&mut self.carry);
            out.push(b'\n');
            ends.push(out.len() as u32);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push_n(ring: &LogRing, from: u64, n: u64) {
        let mut data = Vec::new();
        let mut ends = Vec::new();
        for i in from..from + n {
            data.extend_from_slice(format!("line {i}\n").as_bytes());
            ends.push(data.len() as u32);
        }
        ring.push(Stream::Stdout, data, ends);
    }

    #[test]
    fn a_reader_that_keeps_up_gets_every_line_in_order() {
        let ring = LogRing::new(MIN_RING_BYTES);
        let mut next = 0;
        for round in 0..100 {
            push_n(&ring, round * 10, 10);
            let batch = ring.read(next, usize::MAX);
            assert_eq!(batch.skipped, 0);
            for (k, line) in batch.lines.iter().enumerate() {
                assert_eq!(line.seq, next + k as u64);
                assert_eq!(line.text, format!("line {}", line.seq).as_bytes());
            }
            next = batch.next;
        }
        assert_eq!(next, 1000);
    }

    #[test]
    fn a_reader_that_falls_behind_is_told_exactly_how_many_lines_it_missed() {
        let ring = LogRing::new(MIN_RING_BYTES);
        for round in 0..200 {
            push_n(&ring, round * 10, 10);
        }
        let batch = ring.read(0, usize::MAX);
        assert!(batch.skipped > 0);
        assert_eq!(batch.lines[0].seq, batch.skipped);
        assert_eq!(batch.next, 2000);
        assert!(
            ring.held_bytes() <= MIN_RING_BYTES + 1024,
            "{}",
            ring.held_bytes()
        );
    }

    #[test]
    fn tail_gives_the_last_lines() {
        let ring = LogRing::new(DEFAULT_RING_BYTES);
        push_n(&ring, 0, 50);
        let start = ring.tail_start(Some(5));
        let batch = ring.read(start, usize::MAX);
        assert_eq!(batch.lines.len(), 5);
        assert_eq!(batch.lines[0].text, &b"line 45"[..]);
        assert_eq!(ring.tail_start(None), 0);
        assert_eq!(ring.tail_start(Some(500)), 0);
    }

    #[test]
    fn the_splitter_cuts_long_lines_and_keeps_partial_ones() {
        let mut s = LineSplitter::new(4);
        let (mut out, mut ends) = (Vec::new(), Vec::new());
        s.feed(b"ab\ncdefgh", &mut out, &mut ends);
        s.feed(b"i\nj", &mut out, &mut ends);
        s.finish(&mut out, &mut ends);
        assert_eq!(out, b"ab\ncdef\nghi\nj\n");
        assert_eq!(ends, vec![3, 8, 12, 14]);
    }
}
