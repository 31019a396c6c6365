//! Atomic file replacement.
//!
//! Owns putting bytes at a path so that no reader ever sees a partial file: the content goes to a
//! temporary file in the target's own directory (same filesystem, so the rename is atomic), which is
//! given its owner and mode, fsync'd, and renamed over the target; then the directory is fsync'd so the
//! rename survives a crash. If anything fails before the rename, the temporary file is removed and the
//! target is exactly as it was.
//!
//! Ownership and mode: an existing target keeps its mode unless one is asked for, and (when gantry is
//! root) its owner unless one is asked for; rename creates a new inode, so both are copied explicitly.
//! A new file gets `0666` less the umask, like any file a program creates. `user`/`group` are applied
//! only when running as root; otherwise they are skipped with a warning, so one config can serve a
//! rootless run too. Names are looked up in `/etc/passwd` and `/etc/group` (no NSS: container images
//! rarely have it), numbers are used as they are.
//!
//! A target that is a symlink is replaced by a regular file (the link is not followed for writing), but
//! its mode is taken from what the link points to.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// How a file should be owned and which mode it should have.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteOptions {
    pub mode: Option<u32>,
    pub user: Option<String>,
    pub group: Option<String>,
}

/// What happened to a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The target did not exist and was created.
    Created,
    /// The target existed and was replaced.
    Replaced,
    /// The target already had this content, mode and owner; it was not touched (its inode and mtime
    /// stay, so watches do not fire for nothing).
    Unchanged,
    /// `overwrite = false` and the target exists.
    Kept,
}

/// Why a target could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("cannot write {}: {action}: {source}", target.display())]
    Io {
        target: PathBuf,
        action: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("cannot write {}: no user {name:?} in /etc/passwd", target.display())]
    UnknownUser { target: PathBuf, name: String },
    #[error("cannot write {}: no group {name:?} in /etc/group", target.display())]
    UnknownGroup { target: PathBuf, name: String },
}

fn io_err<'a>(target: &'a Path, action: &'static str) -> impl FnOnce(io::Error) -> WriteError + 'a {
    move |source| WriteError::Io {
        target: target.to_path_buf(),
        action,
        source,
    }
}

/// Removes the temporary file unless it was renamed into place.
struct TempGuard {
    path: PathBuf,
    armed: bool,
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Writes `content` to `target` atomically (see the module docs).
pub fn write_atomic(
    target: &Path,
    content: &[u8],
    opts: &WriteOptions,
) -> Result<WriteOutcome, WriteError> {
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = target
        .file_name()
        .ok_or_else(|| WriteError::Io {
            target: target.to_path_buf(),
            action: "the target has no file name",
            source: io::Error::from(io::ErrorKind::InvalidInput),
        })?
        .to_string_lossy()
        .into_owned();
    fs::create_dir_all(&dir).map_err(io_err(target, "creating its directory"))?;

    let existing = match fs::metadata(target) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_err(target, "reading its metadata")(e)),
    };
    let uid = opts
        .user
        .as_deref()
        .map(|u| {
            lookup_id(u, "/etc/passwd").ok_or_else(|| WriteError::UnknownUser {
                target: target.to_path_buf(),
                name: u.to_string(),
            })
        })
        .transpose()?;
    let gid = opts
        .group
        .as_deref()
        .map(|g| {
            lookup_id(g, "/etc/group").ok_or_else(|| WriteError::UnknownGroup {
                target: target.to_path_buf(),
                name: g.to_string(),
            })
        })
        .transpose()?;

    // `existing` follows a symlink (its mode is inherited below); whether the target itself is a
    // link needs its own look, since a link is always replaced by a regular file.
    let is_link = fs::symlink_metadata(target).is_ok_and(|m| m.file_type().is_symlink());
    if let Some(meta) = &existing {
        if meta.is_file()
            && !is_link
            && opts.mode.is_none_or(|m| meta.mode() & 0o7777 == m)
            && uid.is_none_or(|u| meta.uid() == u)
            && gid.is_none_or(|g| meta.gid() == g)
            && same_content(target, meta.len(), content)
        {
            return Ok(WriteOutcome::Unchanged);
        }
    }

    let (mut file, temp_path) =
        create_temp(&dir, &file_name).map_err(io_err(target, "creating a temporary file"))?;
    let mut guard = TempGuard {
        path: temp_path,
        armed: true,
    };
    file.write_all(content)
        .map_err(io_err(target, "writing the temporary file"))?;

    // Owner before mode: chown clears setuid/setgid bits.
    let temp_meta = file
        .metadata()
        .map_err(io_err(target, "reading the temporary file's metadata"))?;
    let root = temp_meta.uid() == 0;
    let want_uid = uid.or(existing.as_ref().map(MetadataExt::uid));
    let want_gid = gid.or(existing.as_ref().map(MetadataExt::gid));
    if root {
        let uid = want_uid.filter(|u| *u != temp_meta.uid());
        let gid = want_gid.filter(|g| *g != temp_meta.gid());
        if uid.is_some() || gid.is_some() {
            std::os::unix::fs::fchown(&file, uid, gid)
                .map_err(io_err(target, "setting the owner"))?;
        }
    } else if uid.is_some() || gid.is_some() {
        tracing::warn!(
            target = %target.display(),
            "user/group are only applied when gantry runs as root; leaving the file owned by gantry's user"
        );
    }
    let mode = opts.mode.or(existing.as_ref().map(|m| m.mode() & 0o7777));
    if let Some(mode) = mode {
        file.set_permissions(Permissions::from_mode(mode))
            .map_err(io_err(target, "setting the mode"))?;
    }
    file.sync_all()
        .map_err(io_err(target, "flushing the temporary file to disk"))?;
    drop(file);

    fs::rename(&guard.path, target)
        .map_err(io_err(target, "renaming the temporary file over it"))?;
    guard.armed = false;

    // The rename is done; a failed directory fsync only weakens crash durability, so it is a warning.
    if let Err(e) = File::open(&dir).and_then(|d| d.sync_all()) {
        tracing::warn!(dir = %dir.display(), error = %e, "could not fsync the directory after renaming");
    }
    Ok(if existing.is_some() {
        WriteOutcome::Replaced
    } else {
        WriteOutcome::Created
    })
}

/// A new, exclusive temporary file next to the target. Hidden (leading dot) so globbing watchers and
/// `*.conf` includes do not pick it up; the pid and a random number keep two writers apart.
fn create_temp(dir: &Path, file_name: &str) -> io::Result<(File, PathBuf)> {
    let mut last_err = None;
    for _ in 0..16 {
        let path = dir.join(format!(
            ".{file_name}.gantry-{}-{:08x}.tmp",
            std::process::id(),
            rand::random::<u32>()
        ));
        // 0666 less the umask, like any new file; an explicit or inherited mode is set afterwards.
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o666)
            .open(&path)
        {
            Ok(f) => return Ok((f, path)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_err = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or_else(|| io::Error::from(io::ErrorKind::AlreadyExists)))
}

fn same_content(target: &Path, len: u64, content: &[u8]) -> bool {
    if len != content.len() as u64 {
        return false;
    }
    let mut buf = Vec::with_capacity(content.len());
    match File::open(target).and_then(|mut f| f.read_to_end(&mut buf)) {
        Ok(_) => buf == content,
        Err(_) => false,
    }
}

/// A user or group id: a number as it is, a name looked up in `db` (`/etc/passwd` or `/etc/group`,
/// whose third field is the id in both).
fn lookup_id(given: &str, db: &str) -> Option<u32> {
    if let Ok(n) = given.trim().parse::<u32>() {
        return Some(n);
    }
    let text = fs::read_to_string(db).ok()?;
    lookup_in(&text, given)
}

fn lookup_in(db: &str, name: &str) -> Option<u32> {
    db.lines().filter(|l| !l.starts_with('#')).find_map(|line| {
        let mut fields = line.split(':');
        let n = fields.next()?;
        let id = fields.nth(1)?;
        (n == name).then(|| id.parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_found_by_name_or_number() {
        let db =
            "# comment\nroot:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33::/var/www:/bin/false\n";
        assert_eq!(lookup_in(db, "www-data"), Some(33));
        assert_eq!(lookup_in(db, "root"), Some(0));
        assert_eq!(lookup_in(db, "nobody"), None);
        assert_eq!(lookup_id("1234", "/nonexistent"), Some(1234));
        assert_eq!(lookup_id("someone", "/nonexistent"), None);
    }
}
