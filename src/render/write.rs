//! Atomic file replacement.
//!
//! Owns putting bytes at a path so that no reader ever sees a partial file, and nobody but the
//! intended reader ever sees the bytes at all: the content goes to a temporary file in the target's
//! own directory (same filesystem, so the rename is atomic), which is given its owner and mode
//! *before a single byte is written*, then fsync'd and renamed over the target; then the directory is
//! fsync'd so the rename survives a crash. If anything fails before the rename, the temporary file is
//! removed and the target is exactly as it was.
//!
//! # Why the order matters
//!
//! Permissions are checked when a file is opened, not when it is read: whoever opens the temporary
//! file while it is still `0644` keeps a descriptor that reads the secret written later, whatever
//! `fchmod` does afterwards. So the temporary file is created with at most the owner's bits of its
//! final mode (the umask can only take bits away), handed to its final owner, set to its exact final
//! mode, and only then written. At no point can anyone open it who could not open the final file.
//!
//! # Ownership and mode
//!
//! An existing regular file keeps its mode unless one is asked for, and (when gantry is root) its
//! owner unless one is asked for; rename creates a new inode, so both are copied explicitly. A new file
//! gets `0666` less the umask, like any file a program creates. `user`/`group` are applied only when
//! running as root; otherwise they are skipped with a warning, so one config can serve a rootless run
//! too. Names are looked up in `/etc/passwd` and `/etc/group` (no NSS: container images rarely have
//! it), numbers are used as they are.
//!
//! # Files gantry did not put there
//!
//! The target is looked at with `lstat`, never through a link. A target that is a symlink is replaced
//! by a regular file (rename replaces the link itself; nothing is written through it), and nothing is
//! inherited from what it points to: in a shared directory like `/tmp`, anyone can plant
//! `secret.env -> their-own-0666-file`, and copying that file's owner and mode would hand them the
//! secret. For the same reason, in a sticky directory that others may write to, an existing file is
//! only trusted for its owner and mode if it belongs to root or to gantry's own user. `chown` and
//! `chmod` are only ever applied to the temporary file's descriptor, which gantry created itself
//! (`O_EXCL`, `O_NOFOLLOW`, an unguessable name), never to a path.

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

    // lstat: a link at the target is looked at, not followed.
    let existing = match fs::symlink_metadata(target) {
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

    let euid = nix::unistd::geteuid().as_raw();
    let shared_dir = fs::metadata(&dir).is_ok_and(|m| is_shared_dir(m.mode()));
    // What an existing target may pass on to its replacement: only a regular file, and in a shared
    // directory only one that root or gantry's own user owns (see the module docs).
    let inherited = existing
        .as_ref()
        .filter(|m| m.file_type().is_file())
        .filter(|m| !shared_dir || m.uid() == 0 || m.uid() == euid);
    match &existing {
        Some(m) if m.file_type().is_symlink() => tracing::warn!(
            target = %target.display(),
            "the target is a symlink: replacing the link itself with a regular file (what it points to is left alone, and its owner and mode are not copied)"
        ),
        Some(m) if m.file_type().is_file() && inherited.is_none() => tracing::warn!(
            target = %target.display(),
            owner = m.uid(),
            "the target is in a shared sticky directory and belongs to another user: not copying its owner or mode"
        ),
        _ => {}
    }

    let mode = opts.mode.or(inherited.map(|m| m.mode() & 0o7777));
    let root = euid == 0;
    let want_uid = uid.or(inherited.map(MetadataExt::uid));
    let want_gid = gid.or(inherited.map(MetadataExt::gid));
    if !root && (uid.is_some() || gid.is_some()) {
        tracing::warn!(
            target = %target.display(),
            "user/group are only applied when gantry runs as root; leaving the file owned by gantry's user"
        );
    }

    if let Some(meta) = inherited {
        if mode.is_none_or(|m| meta.mode() & 0o7777 == m)
            && (!root || want_uid.is_none_or(|u| meta.uid() == u))
            && (!root || want_gid.is_none_or(|g| meta.gid() == g))
            && same_content(target, meta, content)
        {
            return Ok(WriteOutcome::Unchanged);
        }
    }

    let (file, temp_path) =
        create_temp(&dir, &file_name, mode).map_err(io_err(target, "creating a temporary file"))?;
    let mut guard = TempGuard {
        path: temp_path,
        armed: true,
    };

    // Owner, then mode (chown clears setuid/setgid), then content: nobody can open the file
    // between its creation and its last byte who could not open the finished file.
    if root {
        let temp_meta = file
            .metadata()
            .map_err(io_err(target, "reading the temporary file's metadata"))?;
        let uid = want_uid.filter(|u| *u != temp_meta.uid());
        let gid = want_gid.filter(|g| *g != temp_meta.gid());
        if uid.is_some() || gid.is_some() {
            std::os::unix::fs::fchown(&file, uid, gid)
                .map_err(io_err(target, "setting the owner"))?;
        }
    }
    if let Some(mode) = mode {
        file.set_permissions(Permissions::from_mode(mode))
            .map_err(io_err(target, "setting the mode"))?;
    }
    let mut file = file;
    file.write_all(content)
        .map_err(io_err(target, "writing the temporary file"))?;
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

/// A sticky directory that others may write to (`/tmp`, `/var/tmp`): anyone can put a file there,
/// so a file's owner and mode say nothing about what the administrator wanted.
fn is_shared_dir(mode: u32) -> bool {
    mode & 0o1000 != 0 && mode & 0o022 != 0
}

/// The mode a temporary file is created with: at most the owner's bits of its final mode (the exact
/// mode is set before anything is written), or `0666` less the umask when no mode is wanted.
fn creation_mode(final_mode: Option<u32>) -> u32 {
    match final_mode {
        Some(mode) => mode & 0o700,
        None => 0o666,
    }
}

/// A new, exclusive temporary file next to the target. Hidden (leading dot) so globbing watchers and
/// `*.conf` includes do not pick it up; the pid and a random number keep two writers apart, and
/// `O_EXCL` (with `O_NOFOLLOW` for good measure) means a file or link planted under the same name
/// makes the attempt fail rather than be used.
fn create_temp(
    dir: &Path,
    file_name: &str,
    final_mode: Option<u32>,
) -> io::Result<(File, PathBuf)> {
    let mut last_err = None;
    for _ in 0..16 {
        let path = dir.join(format!(
            ".{file_name}.gantry-{}-{:08x}.tmp",
            std::process::id(),
            rand::random::<u32>()
        ));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .mode(creation_mode(final_mode))
            .open(&path)
        {
            Ok(f) => return Ok((f, path)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_err = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or_else(|| io::Error::from(io::ErrorKind::AlreadyExists)))
}

/// Whether the file at `target` is still the one `meta` describes and holds exactly `content`. Opened
/// without following a link, and checked to be the same inode, so a file swapped in after the `lstat`
/// is never mistaken for the target.
fn same_content(target: &Path, meta: &fs::Metadata, content: &[u8]) -> bool {
    if meta.len() != content.len() as u64 {
        return false;
    }
    let Ok(mut file) = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(target)
    else {
        return false;
    };
    match file.metadata() {
        Ok(m) if m.dev() == meta.dev() && m.ino() == meta.ino() => {}
        _ => return false,
    }
    let mut buf = Vec::with_capacity(content.len());
    match file.read_to_end(&mut buf) {
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

    #[test]
    fn temporary_files_are_created_no_wider_than_their_final_mode() {
        for mode in [
            0o600, 0o640, 0o644, 0o400, 0o000, 0o4755, 0o2750, 0o1777, 0o7777,
        ] {
            let created = creation_mode(Some(mode));
            assert_eq!(
                created & !(mode & 0o777),
                0,
                "{mode:o}: created {created:o}"
            );
            assert_eq!(
                created & 0o077,
                0,
                "{mode:o}: only the owner may open it before the chmod"
            );
        }
    }

    #[test]
    fn sticky_directories_others_may_write_to_are_shared() {
        assert!(is_shared_dir(0o1777));
        assert!(is_shared_dir(0o1770 | 0o020));
        assert!(
            !is_shared_dir(0o0777),
            "not sticky: no protection is possible anyway"
        );
        assert!(!is_shared_dir(0o1755));
        assert!(!is_shared_dir(0o0755));
    }
}
