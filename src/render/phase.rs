//! The render phase of `gantry up` (and the template check of `gantry check`): render every `file`
//! block, then write them all, or report every error and write nothing. Errors are printed here for a
//! person; the caller gets the exit code.

use super::FileSpec;
use crate::exit::PhaseError;

/// The render phase of `gantry up`: render everything, then write; on failure print every error.
pub fn render_phase(specs: &[FileSpec]) -> Result<(), PhaseError> {
    if specs.is_empty() {
        return Ok(());
    }
    tracing::info!(phase = "render", "{} file(s)", specs.len());
    let rendered = super::render_all(specs, &super::process_env()).map_err(|failed| {
        report_render_errors(&failed);
        PhaseError::Render
    })?;
    super::write_all(&rendered).map_err(|e| {
        eprintln!("gantry: {e}");
        PhaseError::Render
    })?;
    Ok(())
}

/// For `gantry check`: every template can be read and parses (nothing is rendered or written, since
/// the environment at check time is not the one at run time).
pub fn check_templates(specs: &[FileSpec]) -> Result<(), PhaseError> {
    super::check_all(specs).map_err(|failed| {
        let n = failed.0.len();
        eprintln!(
            "gantry: {n} template{} cannot be used:",
            if n == 1 { "" } else { "s" }
        );
        for e in &failed.0 {
            eprintln!("  {e}");
        }
        PhaseError::Render
    })
}

pub fn report_render_errors(failed: &super::RenderFailed) {
    let n = failed.0.len();
    eprintln!(
        "gantry: {n} file{} could not be rendered; nothing was written:",
        if n == 1 { "" } else { "s" }
    );
    for e in &failed.0 {
        eprintln!("  {e}");
    }
}
