//! `up --pidfile PATH`, with mittnite's semantics: the file is created exclusively with gantry's
//! pid (no newline); an existing file naming a process that is gone (or holding no pid) is stale and
//! replaced; one naming a live process refuses the start; the file is removed on exit.

use std::io::Write;
use std::path::Path;

/// Creates `path` with gantry's pid, replacing a stale file. The error says what to do.
pub fn acquire(path: &Path) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            format!(
                "cannot create the pidfile's directory {}: {e}",
                dir.display()
            )
        })?;
    }
    for _ in 0..3 {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
        {
            Ok(mut f) => {
                return f
                    .write_all(std::process::id().to_string().as_bytes())
                    .map_err(|e| format!("cannot write the pidfile {}: {e}", path.display()));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let text = std::fs::read_to_string(path).unwrap_or_default();
                if let Ok(pid) = text.trim().parse::<i32>() {
                    if pid > 0 && alive(pid) {
                        return Err(format!(
                            "pidfile {} names pid {pid}, which is running: is another gantry up? \
                             Stop it, or give another --pidfile",
                            path.display()
                        ));
                    }
                }
                tracing::info!("pidfile {} is stale; replacing it", path.display());
                std::fs::remove_file(path).map_err(|e| {
                    format!("cannot remove the stale pidfile {}: {e}", path.display())
                })?;
            }
            Err(e) => return Err(format!("cannot create the pidfile {}: {e}", path.display())),
        }
    }
    Err(format!(
        "pidfile {} keeps reappearing; is another gantry starting?",
        path.display()
    ))
}

/// Removes the pidfile if it still holds gantry's pid.
pub fn remove(path: &Path) {
    let ours = std::fs::read_to_string(path)
        .map(|t| t.trim() == std::process::id().to_string())
        .unwrap_or(false);
    if ours {
        let _ = std::fs::remove_file(path);
    }
}

fn alive(pid: i32) -> bool {
    use nix::errno::Errno;
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        // It exists, but belongs to someone else.
        Err(Errno::EPERM) => true,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_pidfile_is_replaced_and_a_live_one_refuses() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/gantry.pid");
        acquire(&path).expect("fresh");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            std::process::id().to_string()
        );
        let err = acquire(&path).expect_err("live");
        assert!(err.contains("running"), "{err}");
        // A pid far above pid_max is never alive.
        std::fs::write(&path, "999999999").expect("write");
        acquire(&path).expect("stale");
        remove(&path);
        assert!(!path.exists());
    }
}
