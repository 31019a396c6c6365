//! What the watched paths look like right now: which files match, what their contents hash to, and which
//! directories must be watched to hear about the next change.
//!
//! Owns pattern parsing (literal paths and globs), the filesystem walk, content hashing and the diff between
//! two snapshots. It must not touch inotify or timers (that is `engine`) and never writes to the filesystem.
//!
//! Why content and not metadata: a `touch` changes mtime but not the content (no reload wanted), and a
//! rewrite of the same size within the same second changes the content but maybe not the metadata (reload
//! wanted). So the decision is always a hash (xxh3) of the bytes the path resolves to. Reading every file at
//! every scan would be wasteful, so a file whose identity and times are unchanged since the previous scan
//! reuses its hash — but only when that stat is *trustworthy*: its ctime was at least [`TRUST_AGE`] older
//! than the moment it was taken. The kernel stamps ctime from a coarse clock, so a second write landing in
//! the same clock tick as the first can leave every stat field equal; once a file's ctime is well in the
//! past, any later write necessarily gets a newer ctime (userspace cannot set ctime), so an unchanged stat
//! really means unchanged bytes. Recently changed files are always re-read.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ffi::OsString;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::WatchError;

/// How old a file's ctime must be before its stat alone is trusted to mean "unchanged".
pub(crate) const TRUST_AGE: Duration = Duration::from_secs(2);

/// Symlink chains longer than this are treated as loops (the kernel's own limit is 40).
const MAX_HOPS: usize = 40;

/// Directory walks stop this deep (protects against pathological trees, not cycles — those are tracked).
const MAX_DEPTH: usize = 32;

/// One watched path as the user wrote it.
#[derive(Debug, Clone)]
pub(crate) enum Pattern {
    /// A path without glob characters: a file (followed through symlinks), or a directory whose files are
    /// all watched, recursively. Whether it is a file or a directory is decided at every scan.
    Literal(PathBuf),
    /// A glob (`*`, `?`, `[...]`, `**`), re-evaluated at every scan so new matches are changes.
    Glob {
        pattern: String,
        /// The longest leading part of the pattern without glob characters.
        base: PathBuf,
        /// Globs for the directory levels between `base` and the file level; each match is watched.
        dir_levels: Vec<String>,
    },
}

const GLOB_CHARS: &[char] = &['*', '?', '['];

impl Pattern {
    pub(crate) fn parse(given: &str) -> Result<Pattern, WatchError> {
        if given.trim().is_empty() {
            return Err(WatchError::EmptyPattern);
        }
        let path = std::path::absolute(given).map_err(|source| WatchError::Path {
            path: given.into(),
            source,
        })?;
        let path = normalize(&path);
        let text = path.to_string_lossy().into_owned();
        if !text.contains(GLOB_CHARS) {
            return Ok(Pattern::Literal(path));
        }
        glob::Pattern::new(&text).map_err(|e| WatchError::Glob {
            pattern: given.to_string(),
            reason: e.msg.to_string(),
        })?;
        let comps: Vec<String> = path
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let literal = comps.iter().take_while(|c| !c.contains(GLOB_CHARS)).count();
        let base: PathBuf = comps[..literal].iter().collect();
        let dir_levels = (literal + 1..comps.len())
            .map(|end| {
                comps[..end]
                    .iter()
                    .collect::<PathBuf>()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        Ok(Pattern::Glob {
            pattern: text,
            base,
            dir_levels,
        })
    }
}

/// Removes `.` and resolves `..` lexically, so event paths and pattern paths compare equal.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// What a file's stat said, for the fast path (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StatKey {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

/// The state of one matched file.
#[derive(Debug, Clone)]
pub(crate) struct FileState {
    /// `None` when the file exists but could not be read (permissions, a race with deletion...).
    hash: Option<u64>,
    stat: StatKey,
    trusted: bool,
}

/// Every matched file and its content hash, at one moment.
#[derive(Debug, Clone, Default)]
pub(crate) struct Snapshot {
    /// Keyed by the path's bytes: `Path`'s own ordering parses components on every comparison, which
    /// dominated the cost of polling 10,000 files.
    pub(crate) files: HashMap<OsString, FileState>,
    /// Directories to watch so that the next change to any of the files (or a new match) is heard.
    pub(crate) dirs: BTreeSet<PathBuf>,
}

impl Snapshot {
    /// The paths whose content differs between `self` (older) and `newer`, including appeared and vanished
    /// files. Two unreadable states compare equal: nothing can be said about them.
    pub(crate) fn changed_paths(&self, newer: &Snapshot) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for (path, old) in &self.files {
            match newer.files.get(path) {
                None => out.push(PathBuf::from(path)),
                Some(new) if new.hash != old.hash => out.push(PathBuf::from(path)),
                Some(_) => {}
            }
        }
        for path in newer.files.keys() {
            if !self.files.contains_key(path) {
                out.push(PathBuf::from(path));
            }
        }
        out.sort();
        out
    }

    pub(crate) fn len(&self) -> usize {
        self.files.len()
    }
}

/// Takes a snapshot of `patterns`, reusing hashes from `previous` where the stat is trustworthy.
pub(crate) fn scan(patterns: &[Pattern], previous: &Snapshot) -> Snapshot {
    let mut scanner = Scanner {
        previous,
        now: SystemTime::now(),
        out: Snapshot::default(),
    };
    for pattern in patterns {
        match pattern {
            Pattern::Literal(path) => scanner.literal(path),
            Pattern::Glob {
                pattern,
                base,
                dir_levels,
            } => scanner.glob(pattern, base, dir_levels),
        }
    }
    scanner.out
}

struct Scanner<'a> {
    previous: &'a Snapshot,
    now: SystemTime,
    out: Snapshot,
}

impl Scanner<'_> {
    fn literal(&mut self, path: &Path) {
        match fs::metadata(path) {
            Ok(meta) if meta.is_dir() => {
                self.watch_parent_of(path);
                self.symlink_hops(path);
                self.walk(path);
            }
            Ok(meta) => {
                self.watch_parent_of(path);
                self.symlink_hops(path);
                self.file(path, &meta);
            }
            // Missing (or a dangling link): watch the nearest directory that exists, so its creation is
            // heard; the next scan moves the watch one level closer.
            Err(_) => {
                self.watch_parent_of(path);
                self.symlink_hops(path);
            }
        }
    }

    fn glob(&mut self, pattern: &str, base: &Path, dir_levels: &[String]) {
        self.watch_nearest_existing(base);
        for level in dir_levels {
            for dir in glob_matches(level) {
                if dir.is_dir() {
                    self.out.dirs.insert(dir);
                }
            }
        }
        for path in glob_matches(pattern) {
            // Globs match files; a directory that happens to match is not descended into.
            if let Ok(meta) = fs::metadata(&path) {
                if !meta.is_dir() {
                    self.watch_parent_of(&path);
                    if is_symlink(&path) {
                        self.symlink_hops(&path);
                    }
                    self.file(&path, &meta);
                }
            }
        }
    }

    /// Every file below `root`, following symlinks (with a cycle guard). Entries whose name starts with
    /// `..` are skipped: they are the Kubernetes atomic writer's private timestamped directories and the
    /// `..data` link; the user-visible names are symlinks through `..data` and are followed, so one update
    /// changes them all at the instant of the `..data` rename — exactly one change.
    fn walk(&mut self, root: &Path) {
        let mut seen: HashSet<(u64, u64)> = HashSet::new();
        let mut stack = vec![(root.to_path_buf(), 0usize)];
        while let Some((dir, depth)) = stack.pop() {
            let Ok(meta) = fs::metadata(&dir) else {
                continue;
            };
            if !seen.insert((meta.dev(), meta.ino())) {
                continue;
            }
            self.out.dirs.insert(dir.clone());
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                if entry.file_name().as_encoded_bytes().starts_with(b"..") {
                    continue;
                }
                let path = entry.path();
                // The entry's type comes from readdir, at no cost: only links pay for resolving.
                if entry.file_type().map_or(true, |t| t.is_symlink()) {
                    self.symlink_hops(&path);
                }
                let Ok(meta) = fs::metadata(&path) else {
                    continue; // dangling: its target's directory is watched, its creation is heard
                };
                if meta.is_dir() {
                    if depth < MAX_DEPTH {
                        stack.push((path, depth + 1));
                    }
                } else {
                    self.file(&path, &meta);
                }
            }
        }
    }

    fn file(&mut self, path: &Path, meta: &fs::Metadata) {
        let stat = StatKey {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        };
        let ctime = UNIX_EPOCH
            + Duration::new(
                u64::try_from(meta.ctime()).unwrap_or(0),
                u32::try_from(meta.ctime_nsec()).unwrap_or(0),
            );
        let trusted = ctime + TRUST_AGE < self.now;
        let old = self.previous.files.get(path.as_os_str());
        let reuse = old
            .filter(|old| old.trusted && old.stat == stat && old.hash.is_some())
            .and_then(|old| old.hash);
        let hash = match reuse {
            Some(h) => Some(h),
            None if meta.is_file() => match hash_file(path) {
                Ok(h) => Some(h),
                Err(err) => {
                    if old.is_none_or(|o| o.hash.is_some()) {
                        tracing::warn!(path = %path.display(), %err, "cannot read watched file");
                    }
                    None
                }
            },
            // FIFOs, sockets, devices: never read (a FIFO would block); their identity stands in.
            None => Some(xxhash_rust::xxh3::xxh3_64(&stat.ino.to_le_bytes())),
        };
        self.out.files.insert(
            path.as_os_str().to_owned(),
            FileState {
                hash,
                stat,
                trusted,
            },
        );
    }

    /// Watches the directory of every hop of a symlink chain, so re-pointing any link is heard, and the
    /// directory the path finally resolves to, so an in-place write to the target is heard.
    fn symlink_hops(&mut self, path: &Path) {
        let mut cur = path.to_path_buf();
        for _ in 0..MAX_HOPS {
            let Ok(meta) = fs::symlink_metadata(&cur) else {
                break;
            };
            if !meta.file_type().is_symlink() {
                break;
            }
            let Ok(target) = fs::read_link(&cur) else {
                break;
            };
            let next = match cur.parent() {
                Some(parent) if target.is_relative() => normalize(&parent.join(&target)),
                _ => normalize(&target),
            };
            self.watch_parent_of(&next);
            cur = next;
        }
        if let Ok(real) = fs::canonicalize(path) {
            if real != path {
                self.watch_parent_of(&real);
            }
        }
    }

    fn watch_parent_of(&mut self, path: &Path) {
        if let Some(parent) = path.parent() {
            self.watch_nearest_existing(parent);
        }
    }

    fn watch_nearest_existing(&mut self, dir: &Path) {
        let mut cur = Some(dir);
        while let Some(d) = cur {
            if d.is_dir() {
                self.out.dirs.insert(d.to_path_buf());
                return;
            }
            cur = d.parent();
        }
    }
}

fn is_symlink(path: &Path) -> bool {
    fs::symlink_metadata(path).map_or(true, |m| m.file_type().is_symlink())
}

fn glob_matches(pattern: &str) -> Vec<PathBuf> {
    let options = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        // `*` does not match dot files (editor swap files, the Kubernetes `..data` machinery).
        require_literal_leading_dot: true,
    };
    match glob::glob_with(pattern, options) {
        Ok(paths) => paths.flatten().collect(),
        Err(_) => Vec::new(), // validated in `Pattern::parse`
    }
}

/// xxh3 of the file's bytes, streamed. `O_NONBLOCK` so a file swapped for a FIFO between the stat and the
/// open cannot hang the watcher.
fn hash_file(path: &Path) -> io::Result<u64> {
    let mut file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(hasher.digest())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(p: &Path) -> Vec<Pattern> {
        vec![Pattern::parse(&p.to_string_lossy()).unwrap()]
    }

    #[test]
    fn glob_pattern_splits_base_and_levels() {
        let Pattern::Glob {
            base, dir_levels, ..
        } = Pattern::parse("/etc/*/conf.d/*.conf").unwrap()
        else {
            panic!("not a glob")
        };
        assert_eq!(base, PathBuf::from("/etc"));
        assert_eq!(dir_levels, vec!["/etc/*", "/etc/*/conf.d"]);
        assert!(matches!(
            Pattern::parse("/etc/nginx/nginx.conf").unwrap(),
            Pattern::Literal(_)
        ));
        assert!(Pattern::parse("/etc/[.conf").is_err());
        assert!(Pattern::parse("  ").is_err());
    }

    #[test]
    fn same_content_is_no_change_and_new_content_is() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.conf");
        fs::write(&f, "one").unwrap();
        let pats = pattern(&f);
        let a = scan(&pats, &Snapshot::default());
        assert_eq!(a.len(), 1);
        assert!(a.dirs.contains(dir.path()));
        let b = scan(&pats, &a);
        assert!(a.changed_paths(&b).is_empty());
        fs::write(&f, "two").unwrap();
        let c = scan(&pats, &b);
        assert_eq!(b.changed_paths(&c), vec![f.clone()]);
        fs::remove_file(&f).unwrap();
        let d = scan(&pats, &c);
        assert_eq!(c.changed_paths(&d), vec![f]);
        assert!(d.dirs.contains(dir.path()), "the directory stays watched");
    }

    #[test]
    fn same_size_rewrite_with_restored_mtime_is_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a");
        fs::write(&f, "xxxx").unwrap();
        let pats = pattern(&f);
        let a = scan(&pats, &Snapshot::default());
        assert!(
            !a.files[f.as_os_str()].trusted,
            "a file written just now is not trusted"
        );
        // Same size, mtime restored: only the content (and the coarse ctime) tells.
        let mtime = filetime::FileTime::from_last_modification_time(&fs::metadata(&f).unwrap());
        fs::write(&f, "yyyy").unwrap();
        filetime::set_file_mtime(&f, mtime).unwrap();
        let b = scan(&pats, &a);
        assert_eq!(a.changed_paths(&b), vec![f]);
    }

    #[test]
    fn directory_walk_skips_kubernetes_internals_and_follows_links() {
        let dir = tempfile::tempdir().unwrap();
        let ts = dir.path().join("..2024_01_01");
        fs::create_dir(&ts).unwrap();
        fs::write(ts.join("app.conf"), "v1").unwrap();
        std::os::unix::fs::symlink("..2024_01_01", dir.path().join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/app.conf", dir.path().join("app.conf")).unwrap();
        let snap = scan(&pattern(dir.path()), &Snapshot::default());
        let files: Vec<_> = snap.files.keys().cloned().collect();
        assert_eq!(files, vec![dir.path().join("app.conf").into_os_string()]);
        assert!(snap.dirs.contains(&dir.path().join("..data")));
    }

    #[test]
    fn missing_file_watches_nearest_existing_directory() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("not/yet/here.conf");
        let snap = scan(&pattern(&f), &Snapshot::default());
        assert_eq!(snap.len(), 0);
        assert_eq!(snap.dirs.iter().collect::<Vec<_>>(), vec![dir.path()]);
    }
}
