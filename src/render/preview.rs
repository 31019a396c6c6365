//! `--dry-run` and `--diff`: showing what a render would do without doing it.
//!
//! Owns the text shown to a person; reads targets from disk but never writes them.

use std::io::{self, Write};

use super::{FileAction, Rendered};

/// Prints every file that would be written, each under a `==> TARGET <==` header (as `head` does for
/// several files).
pub fn dry_run(rendered: &[Rendered], out: &mut dyn Write) -> io::Result<()> {
    for r in rendered {
        let target = r.spec.target.display();
        match &r.action {
            FileAction::Keep => {
                writeln!(
                    out,
                    "==> {target} <== exists and overwrite = false: left alone"
                )?;
            }
            FileAction::Write(content) => {
                match r.spec.mode {
                    Some(mode) => writeln!(out, "==> {target} <== (mode {mode:04o})")?,
                    None => writeln!(out, "==> {target} <==")?,
                }
                out.write_all(content.as_bytes())?;
                if !content.is_empty() && !content.ends_with('\n') {
                    writeln!(out)?;
                }
            }
        }
    }
    Ok(())
}

/// Prints a unified diff of every file against what is on disk now; a file that does not exist yet is
/// diffed against `/dev/null`, an unchanged one gets a one-line note.
pub fn diff(rendered: &[Rendered], out: &mut dyn Write) -> io::Result<bool> {
    let mut changes = false;
    for r in rendered {
        let target = r.spec.target.display().to_string();
        let FileAction::Write(new) = &r.action else {
            writeln!(out, "# {target}: exists and overwrite = false: left alone")?;
            continue;
        };
        let (old, old_name) = match std::fs::read(&r.spec.target) {
            Ok(bytes) => (String::from_utf8_lossy(&bytes).into_owned(), target.clone()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => (String::new(), "/dev/null".into()),
            Err(e) => return Err(e),
        };
        if old == *new {
            writeln!(out, "# {target}: unchanged")?;
            continue;
        }
        changes = true;
        let text = similar::TextDiff::from_lines(old.as_str(), new.as_str());
        write!(
            out,
            "{}",
            text.unified_diff()
                .context_radius(3)
                .header(&old_name, &target)
        )?;
    }
    Ok(changes)
}
