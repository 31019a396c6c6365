//! The change-detection loop: hears that something *may* have changed (inotify, or a poll tick), waits for
//! the burst to settle, rescans, and reports a [`Change`] only when some content really differs.
//!
//! Owns one background thread per [`Watcher`], the `notify` watcher (inotify on Linux) and the set of
//! watched directories. It must not read file contents itself (that is `scan`) and knows nothing about
//! processes or signals (that is `reload`, and the caller's supervisor).
//!
//! Why a thread and not a tokio task: a scan reads files with blocking calls, and the loop's natural shape
//! is "block until an event, then block with a timeout until quiet" — exactly `mpsc::recv` and
//! `recv_timeout`. While nothing changes the thread sleeps in `recv` with no timer armed, so an idle watch
//! costs no wakeups (in polling mode the poll interval is, by definition, a timer).
//!
//! Why directories and not files: an inotify watch on a file follows its inode, which is gone after an
//! editor's rename-over or a Kubernetes `..data` swap. Watching the directories (the file's, every symlink
//! hop's, the resolved target's) hears all of those, and a rescan after every burst decides from content.
//! The watched set is recomputed after each scan; when it grows, the scan is repeated so a file created in
//! a directory before its watch was in place is still seen.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecursiveMode, Watcher as _};

use super::scan::{self, Pattern, Snapshot};
use super::WatchError;

pub use crate::config::watch::DEFAULT_DEBOUNCE;

/// The polling interval used when inotify cannot watch and the user did not choose one.
pub const DEFAULT_FALLBACK_POLL: Duration = Duration::from_secs(1);

/// Filesystems where inotify only hears local writes: changes made by other machines are invisible, so
/// watches there are polled. overlayfs and FUSE are not here: container roots are overlay (or
/// fuse-overlayfs, rootless), and inotify works for everything written through the container. A bind
/// mount edited from the host side of a VM (virtiofs, grpcfuse) needs `poll` set by the user.
const REMOTE_FS_MAGIC: &[i64] = &[
    0x6969,      // NFS
    0x517B,      // SMB
    0xFF53_4D42, // CIFS
    0xFE53_4D42, // SMB2
    0x0102_1997, // 9p (Docker Desktop, WSL, gVisor shares)
    0x00C3_6400, // Ceph
];

/// How a [`Watcher`] finds out about changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// inotify on the watched directories; idle costs nothing.
    Inotify,
    /// A full rescan at this interval.
    Poll(Duration),
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mode::Inotify => write!(f, "inotify"),
            Mode::Poll(d) => write!(f, "polling every {d:?}"),
        }
    }
}

/// Tuning for one [`Watcher`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchOptions {
    /// How long the filesystem must stay quiet before the rescan that decides whether anything changed.
    pub debounce: Duration,
    /// Force polling at this interval instead of inotify (network or overlay mounts inotify cannot see).
    pub poll: Option<Duration>,
    /// The interval used when inotify turns out not to work and `poll` is not set.
    pub fallback_poll: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            debounce: DEFAULT_DEBOUNCE,
            poll: None,
            fallback_poll: DEFAULT_FALLBACK_POLL,
        }
    }
}

/// One real change: the content behind at least one watched path differs from the last report (or from
/// the baseline taken at start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Files whose content changed, appeared or vanished, sorted (for logs).
    pub paths: Vec<PathBuf>,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, p) in self.paths.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}", p.display())?;
        }
        Ok(())
    }
}

enum Msg {
    Fs(notify::Result<notify::Event>),
    Stop,
}

/// What the engine thread and the async side share. Changes that arrive while the consumer is busy (say,
/// running a reload) are merged into one pending change: one more reload covers them all.
struct Shared {
    pending: Mutex<Option<Change>>,
    closed: AtomicBool,
    wake: tokio::sync::Notify,
    mode: Mutex<Mode>,
}

impl Shared {
    fn deliver(&self, mut paths: Vec<PathBuf>) {
        if let Ok(mut pending) = self.pending.lock() {
            match pending.as_mut() {
                Some(change) => {
                    change.paths.append(&mut paths);
                    change.paths.sort();
                    change.paths.dedup();
                }
                None => *pending = Some(Change { paths }),
            }
        }
        self.wake.notify_one();
    }
}

/// A running watch over a set of paths and globs. Dropping it stops the background thread.
pub struct Watcher {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Msg>,
}

impl Watcher {
    /// Takes the baseline (no change is ever reported for the state at start) and starts watching.
    ///
    /// Each entry of `paths` is a file, a directory (every file below it, recursively, following
    /// symlinks, skipping Kubernetes' `..*` internals) or a glob (`*`, `?`, `[...]`, `**`; `*` does not
    /// match a leading dot). Paths that do not exist yet are fine: their appearance is a change.
    /// Needs no async runtime; [`Watcher::changed`] may be awaited on any.
    pub fn start<S: AsRef<str>>(paths: &[S], options: WatchOptions) -> Result<Watcher, WatchError> {
        if paths.is_empty() {
            return Err(WatchError::EmptyPattern);
        }
        let patterns = paths
            .iter()
            .map(|p| Pattern::parse(p.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        let (tx, rx) = mpsc::channel();
        let mut engine = Engine {
            patterns,
            options,
            snapshot: Snapshot::default(),
            rx,
            inotify: None,
            shared: Arc::new(Shared {
                pending: Mutex::new(None),
                closed: AtomicBool::new(false),
                wake: tokio::sync::Notify::new(),
                mode: Mutex::new(Mode::Inotify),
            }),
        };
        match options.poll {
            Some(interval) => engine.set_mode(Mode::Poll(interval)),
            None => {
                let events = tx.clone();
                let handler = move |ev| {
                    let _ = events.send(Msg::Fs(ev));
                };
                match notify::recommended_watcher(handler) {
                    Ok(watcher) => {
                        engine.inotify = Some(Inotify {
                            watcher,
                            watched: HashMap::new(),
                        })
                    }
                    Err(err) => engine.fall_back(&format!("cannot start inotify: {err}")),
                }
            }
        }
        let first = scan::scan(&engine.patterns, &Snapshot::default());
        engine.snapshot = engine.settle_watches(first);
        let shared = Arc::clone(&engine.shared);
        tracing::info!(
            paths = ?paths.iter().map(AsRef::as_ref).collect::<Vec<_>>(),
            files = engine.snapshot.len(),
            dirs = engine.snapshot.dirs.len(),
            mode = %engine.mode(),
            "watching"
        );
        std::thread::Builder::new()
            .name("gantry-watch".into())
            .spawn(move || engine.run())
            .map_err(WatchError::Thread)?;
        Ok(Watcher { shared, tx })
    }

    /// Waits for the next change. `None` once the watcher has stopped.
    /// Cancel-safe: a change is only taken out when it is returned.
    pub async fn changed(&self) -> Option<Change> {
        loop {
            let notified = self.shared.wake.notified();
            if let Some(change) = self.shared.pending.lock().ok().and_then(|mut p| p.take()) {
                return Some(change);
            }
            if self.shared.closed.load(Ordering::Acquire) {
                return None;
            }
            notified.await;
        }
    }

    /// How changes are currently detected (inotify can fall back to polling at run time).
    pub fn mode(&self) -> Mode {
        self.shared.mode.lock().map(|m| *m).unwrap_or(Mode::Inotify)
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.tx.send(Msg::Stop);
    }
}

struct Inotify {
    watcher: notify::RecommendedWatcher,
    /// Watched directory → the (dev, inode) it had when the watch was added; a directory deleted and
    /// re-created under the same name has a new inode and needs a new watch.
    watched: HashMap<PathBuf, (u64, u64)>,
}

struct Engine {
    patterns: Vec<Pattern>,
    options: WatchOptions,
    snapshot: Snapshot,
    rx: mpsc::Receiver<Msg>,
    inotify: Option<Inotify>,
    shared: Arc<Shared>,
}

impl Engine {
    fn mode(&self) -> Mode {
        self.shared.mode.lock().map(|m| *m).unwrap_or(Mode::Inotify)
    }

    fn set_mode(&self, mode: Mode) {
        if let Ok(mut m) = self.shared.mode.lock() {
            *m = mode;
        }
    }

    fn fall_back(&mut self, reason: &str) {
        let interval = self.options.fallback_poll;
        tracing::warn!(
            reason,
            ?interval,
            "inotify cannot watch these paths; polling instead"
        );
        self.inotify = None;
        self.set_mode(Mode::Poll(interval));
    }

    fn run(mut self) {
        loop {
            let keep_going = match self.mode() {
                Mode::Inotify => self.wait_inotify(),
                Mode::Poll(interval) => self.wait_poll(interval),
            };
            if !keep_going {
                break;
            }
        }
        self.shared.closed.store(true, Ordering::Release);
        self.shared.wake.notify_one();
    }

    /// Blocks until a relevant event, lets the burst settle, rescans. `false` when told to stop.
    fn wait_inotify(&mut self) -> bool {
        match self.rx.recv() {
            Ok(Msg::Fs(ev)) if relevant(&ev) => {}
            Ok(Msg::Fs(_)) => return true,
            Ok(Msg::Stop) | Err(_) => return false,
        }
        let debounce = self.options.debounce;
        // A file rewritten in a tight loop forever must still be reported now and then.
        let hard = Instant::now() + (debounce * 10).max(Duration::from_secs(1));
        let mut quiet = Instant::now() + debounce;
        loop {
            let timeout = quiet.min(hard).saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(timeout) {
                Ok(Msg::Fs(ev)) => {
                    if relevant(&ev) {
                        quiet = Instant::now() + debounce;
                    }
                }
                Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => return false,
                Err(RecvTimeoutError::Timeout) => break,
            }
        }
        let next = scan::scan(&self.patterns, &self.snapshot);
        let next = self.settle_watches(next);
        self.report(next);
        true
    }

    /// Sleeps one interval, rescans; when something differs, rescans again after the debounce until two
    /// scans agree, so a file caught half-written is reported once, complete.
    fn wait_poll(&mut self, interval: Duration) -> bool {
        match self.rx.recv_timeout(interval) {
            Ok(Msg::Fs(_)) => return true, // a leftover from before a fall-back
            Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => return false,
            Err(RecvTimeoutError::Timeout) => {}
        }
        let mut next = scan::scan(&self.patterns, &self.snapshot);
        if !self.snapshot.changed_paths(&next).is_empty() && !self.options.debounce.is_zero() {
            for _ in 0..10 {
                match self.rx.recv_timeout(self.options.debounce) {
                    Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => return false,
                    Ok(Msg::Fs(_)) | Err(RecvTimeoutError::Timeout) => {}
                }
                let again = scan::scan(&self.patterns, &next);
                let stable = next.changed_paths(&again).is_empty();
                next = again;
                if stable {
                    break;
                }
            }
        }
        self.report(next);
        true
    }

    fn report(&mut self, next: Snapshot) {
        let changed = self.snapshot.changed_paths(&next);
        self.snapshot = next;
        if !changed.is_empty() {
            tracing::debug!(paths = ?changed, "content changed");
            self.shared.deliver(changed);
        }
    }

    /// Brings the inotify watches in line with `snap.dirs`; when new directories were added, rescans (their
    /// content may have changed before the watch existed) until the set is stable.
    fn settle_watches(&mut self, mut snap: Snapshot) -> Snapshot {
        for _ in 0..8 {
            let Some(inotify) = self.inotify.as_mut() else {
                return snap;
            };
            match sync_watches(inotify, &snap) {
                Ok(false) => return snap,
                Ok(true) => snap = scan::scan(&self.patterns, &snap),
                Err(reason) => {
                    self.fall_back(&reason);
                    return snap;
                }
            }
        }
        snap
    }
}

/// Adds and removes watches; `Ok(true)` when a watch was added. `Err` says why inotify cannot be used.
fn sync_watches(inotify: &mut Inotify, snap: &Snapshot) -> Result<bool, String> {
    let stale: Vec<PathBuf> = inotify
        .watched
        .keys()
        .filter(|d| !snap.dirs.contains(*d))
        .cloned()
        .collect();
    for dir in stale {
        let _ = inotify.watcher.unwatch(&dir); // fails harmlessly when the directory is already gone
        inotify.watched.remove(&dir);
    }
    let mut added = false;
    for dir in &snap.dirs {
        let Ok(meta) = std::fs::metadata(dir) else {
            inotify.watched.remove(dir);
            continue;
        };
        let id = (meta.dev(), meta.ino());
        if inotify.watched.get(dir) == Some(&id) {
            continue;
        }
        if let Some(magic) = remote_fs(dir) {
            return Err(format!(
                "{} is on a network filesystem (magic {magic:#x})",
                dir.display()
            ));
        }
        if inotify.watched.remove(dir).is_some() {
            let _ = inotify.watcher.unwatch(dir);
        }
        match inotify.watcher.watch(dir, RecursiveMode::NonRecursive) {
            Ok(()) => {
                inotify.watched.insert(dir.clone(), id);
                added = true;
            }
            // Gone between the stat and the watch: the next scan sees it missing.
            Err(e) if matches!(e.kind, notify::ErrorKind::PathNotFound) => {}
            Err(e) => return Err(format!("cannot watch {}: {e}", dir.display())),
        }
    }
    Ok(added)
}

/// Tests cannot mount NFS; directories under this prefix are treated as remote.
#[cfg(test)]
pub(crate) static PRETEND_REMOTE: Mutex<Option<PathBuf>> = Mutex::new(None);

fn remote_fs(dir: &Path) -> Option<i64> {
    #[cfg(test)]
    if let Ok(Some(prefix)) = PRETEND_REMOTE.lock().as_deref() {
        if dir.starts_with(prefix) {
            return Some(0x6969);
        }
    }
    let st = nix::sys::statfs::statfs(dir).ok()?;
    #[allow(clippy::useless_conversion, clippy::unnecessary_cast)]
    let magic = st.filesystem_type().0 as i64;
    REMOTE_FS_MAGIC.contains(&magic).then_some(magic)
}

/// Our own scans open files and directories; inotify reports those opens. Only events that can mean a
/// change (writes, creates, deletes, renames, attribute changes, queue overflows) trigger a rescan.
fn relevant(ev: &notify::Result<notify::Event>) -> bool {
    match ev {
        Err(_) => true,
        Ok(ev) => match ev.kind {
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
            EventKind::Access(_) => false,
            _ => true,
        },
    }
}
