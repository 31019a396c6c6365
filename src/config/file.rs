//! Reading a file gantry was told to read — a `*.hcl` configuration file, a pidfile — without letting
//! what is behind the name hang or exhaust gantry.
//!
//! Owns one rule: only **regular files** are read, after following symlinks (a Kubernetes ConfigMap's
//! files are symlinks through `..data`), and at most a stated number of bytes. A FIFO would block the
//! read forever (or the open, without `O_NONBLOCK`), and `/dev/zero` or `/dev/urandom` never end; both
//! are reported as errors naming the file instead. The check is made on the opened file, so a name
//! swapped for something else between a look and the open cannot slip through.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// The largest configuration file gantry reads: 4 MiB, far above any real configuration directory's
/// file and small enough that a mistake (a log file named `*.hcl`) costs nothing.
pub const MAX_CONFIG_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Reads one configuration file as UTF-8 text: a regular file (symlinks followed) of at most
/// [`MAX_CONFIG_FILE_BYTES`]. The error (`cannot read: ...`) says what is wrong, without the path
/// (callers place it).
pub fn read_config_file(path: &Path) -> Result<String, String> {
    let bytes = read_regular_file(path, MAX_CONFIG_FILE_BYTES)?;
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "cannot read: it is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

/// Reads `path` whole if it is a regular file (after following symlinks) of at most `limit` bytes.
pub fn read_regular_file(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    // A look before opening: opening some devices has effects of its own (a watchdog, a tape).
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    check_regular(&meta.file_type())?;
    // O_NONBLOCK: should the name have become a FIFO since, the open does not wait for a writer.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| format!("cannot read: {e}"))?;
    let meta = file.metadata().map_err(|e| format!("cannot read: {e}"))?;
    check_regular(&meta.file_type())?;
    if meta.len() > limit {
        return Err(too_large(meta.len(), limit));
    }
    read_at_most(file, limit, meta.len())
}

fn read_at_most(file: File, limit: u64, expected: u64) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::with_capacity(usize::try_from(expected).unwrap_or(0));
    // One byte more than allowed tells a file that grew past the limit since the stat.
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > limit {
        return Err(too_large(bytes.len() as u64, limit));
    }
    Ok(bytes)
}

fn check_regular(kind: &std::fs::FileType) -> Result<(), String> {
    if kind.is_file() {
        return Ok(());
    }
    let what = if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "something other than a regular file"
    };
    Err(format!(
        "cannot read: it is {what}; gantry reads only regular files (symlinks to them are followed)"
    ))
}

fn too_large(size: u64, limit: u64) -> String {
    format!(
        "cannot read: it is larger than {} (at least {size} bytes)",
        human(limit)
    )
}

fn human(bytes: u64) -> String {
    if bytes >= 1024 * 1024 && bytes.is_multiple_of(1024 * 1024) {
        format!("{} MiB", bytes / (1024 * 1024))
    } else if bytes >= 1024 && bytes.is_multiple_of(1024) {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_and_symlinks_to_them_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.hcl");
        std::fs::write(&file, "job \"a\" {}\n").unwrap();
        let link = dir.path().join("b.hcl");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert_eq!(read_config_file(&link).unwrap(), "job \"a\" {}\n");
    }

    #[test]
    fn devices_fifos_and_directories_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let zero = dir.path().join("zero.hcl");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let err = read_config_file(&zero).unwrap_err();
        assert!(err.contains("character device"), "{err}");
        let fifo = dir.path().join("fifo.hcl");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let err = read_config_file(&fifo).unwrap_err();
        assert!(err.contains("FIFO"), "{err}");
        let err = read_config_file(dir.path()).unwrap_err();
        assert!(err.contains("directory"), "{err}");
    }

    #[test]
    fn files_over_the_limit_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.hcl");
        std::fs::write(&big, vec![b'#'; MAX_CONFIG_FILE_BYTES as usize + 1]).unwrap();
        let err = read_config_file(&big).unwrap_err();
        assert!(err.contains("larger than 4 MiB"), "{err}");
        let err = read_regular_file(&big, 10).unwrap_err();
        assert!(err.contains("larger than 10 bytes"), "{err}");
        let exact = dir.path().join("exact.hcl");
        std::fs::write(&exact, vec![b'#'; 1024]).unwrap();
        assert_eq!(read_regular_file(&exact, 1024).unwrap().len(), 1024);
    }

    #[test]
    fn text_that_is_not_utf8_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin.hcl");
        std::fs::write(&bin, b"job \xff").unwrap();
        assert!(read_config_file(&bin).unwrap_err().contains("offset 4"));
    }
}
