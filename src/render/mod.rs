//! The render phase: `file` blocks turned into files on disk.
//!
//! Owns the `file` block's schema ([`file_from_block`]), the [`FileSpec`] it becomes, rendering specs with tera or Go's
//! `text/template` ([`render_all`]; the engine is the block's `engine`, else [`engine_of`]), writing
//! the results atomically ([`write_all`]) and showing what would change ([`dry_run`], [`diff`]). It
//! does not parse HCL (`config` does, and hands each `file` block to [`file_from_block`]) and does not
//! run anything afterwards (that is `renderfiles` and `up`).
//!
//! | submodule | owns |
//! |---|---|
//! | `block` | the `file` block's schema |
//! | `template` | one tera render, its errors with line and column, and keeping values out of them |
//! | `gotemplate` | one Go `text/template` render (mittnite's language), choosing the engine, its errors with line and column |
//! | `gofuncs` | the library of `funcs`, called with sprig's names and argument order from Go templates |
//! | `guard` | the limits that keep tera inside its stack and gantry's memory |
//! | `scan` | finding a template's tags and tokens without tera |
//! | `funcs` | the sprig-like library of filters and functions (one implementation, both engines) |
//! | `write` | atomic writes with owner and mode set before any content |
//! | `preview` | `--dry-run` and `--diff` |
//!
//! # Two steps, on purpose
//!
//! [`render_all`] renders every spec in memory and returns either all the contents or every error it
//! found; [`write_all`] then writes them. So a template error in the third file leaves the first two
//! untouched: a broken deploy changes nothing on disk. Writing itself is atomic per file (a temporary
//! file in the target's directory, fsync'd, renamed over the target) but not across files: if the disk
//! fills up while writing the third file, the first two are already new. There is no portable way to
//! rename several files at once, and the per-file guarantee is the one readers rely on (nobody ever
//! reads half a file).
//!
//! # Paths
//!
//! `from` and the target are used as written: relative paths resolve against gantry's working
//! directory, as in mittnite (not against the config file's directory).
//!
//! # `overwrite = false`
//!
//! If the target exists, the block is skipped entirely: its template is not even rendered, so a
//! `randAlphaNum` secret generated on first boot stays the same on every later boot, and the template
//! may read variables that are only set on first boot.

mod funcs;
mod gofuncs;
mod gotemplate;
mod guard;
mod phase;
mod preview;
mod scan;
mod template;
mod write;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

pub use crate::config::file_block::{describe, parse_mode, Engine, FileSpec, Origin, Source};
pub use gotemplate::detect as detect_engine;
pub use phase::{check_templates, render_phase, report_render_errors};
pub use preview::{diff, dry_run};
pub use template::{
    parse as parse_template, render as render_template, TemplateError, TemplateErrorKind,
};
pub use write::{write_atomic, WriteError, WriteOptions, WriteOutcome};

/// Every filter and function a template can call: tera's builtins and gantry's library.
pub fn library_names() -> &'static [&'static str] {
    funcs::KNOWN
}

/// The environment a template sees as `Env`.
pub type Env = BTreeMap<String, String>;

/// The engine that renders `spec`'s template `text`: the block's `engine`, else the one
/// [`detect_engine`] sees in the text.
pub fn engine_of(spec: &FileSpec, text: &str) -> Engine {
    spec.engine.unwrap_or_else(|| gotemplate::detect(text))
}

/// Renders `text` with the engine `spec` asks for.
fn render_text(
    spec: &FileSpec,
    name: &str,
    text: &str,
    env: &Env,
) -> Result<String, TemplateError> {
    match engine_of(spec, text) {
        Engine::Tera => template::render(name, text, env, &spec.params),
        Engine::Go => gotemplate::render(name, text, env, &spec.params),
    }
}

/// Parses `text` with the engine `spec` asks for.
fn parse_text(spec: &FileSpec, name: &str, text: &str) -> Result<(), TemplateError> {
    match engine_of(spec, text) {
        Engine::Tera => template::parse(name, text),
        Engine::Go => gotemplate::parse(name, text),
    }
}

/// gantry's own environment, as `Env`. Variables whose name or value is not UTF-8 are converted
/// lossily rather than dropped, so a template still sees that they are set.
pub fn process_env() -> Env {
    std::env::vars_os()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .collect()
}

/// How `spec`'s file is to be written.
fn write_options(spec: &FileSpec) -> WriteOptions {
    WriteOptions {
        mode: spec.mode,
        user: spec.user.clone(),
        group: spec.group.clone(),
    }
}

/// What rendering decided for one spec.
#[derive(Debug, Clone, PartialEq)]
pub enum FileAction {
    /// Write this content.
    Write(String),
    /// The target exists and `overwrite = false`: leave it alone.
    Keep,
}

/// A spec and what to do with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub spec: FileSpec,
    pub action: FileAction,
}

/// Why one `file` block could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("file \"{}\" ({origin}): cannot read template {}: {source}", target.display(), from.display())]
    MissingTemplate {
        target: PathBuf,
        origin: Origin,
        from: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("file \"{}\" ({origin}): template {} is not UTF-8 text", target.display(), from.display())]
    NotText {
        target: PathBuf,
        origin: Origin,
        from: PathBuf,
    },
    #[error("file \"{}\" ({origin}): cannot check whether the target exists: {source}", target.display())]
    Target {
        target: PathBuf,
        origin: Origin,
        #[source]
        source: std::io::Error,
    },
    #[error("file \"{}\" ({origin}): {error}", target.display())]
    Template {
        target: PathBuf,
        origin: Origin,
        #[source]
        error: Box<TemplateError>,
    },
}

/// Every render error of a run, so one attempt shows all of them.
#[derive(Debug, thiserror::Error)]
pub struct RenderFailed(pub Vec<RenderError>);

impl fmt::Display for RenderFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Renders one spec (see the module docs for `overwrite = false`).
pub fn render_one(spec: &FileSpec, env: &Env) -> Result<Rendered, RenderError> {
    if !spec.overwrite {
        let exists = spec
            .target
            .try_exists()
            .map_err(|source| RenderError::Target {
                target: spec.target.clone(),
                origin: spec.origin.clone(),
                source,
            })?;
        if exists {
            return Ok(Rendered {
                spec: spec.clone(),
                action: FileAction::Keep,
            });
        }
    }
    let (name, text) = match &spec.source {
        Source::From(path) => (path.display().to_string(), read_template(spec, path)?),
        Source::Content(text) => (content_name(spec), text.clone()),
    };
    let out = render_text(spec, &name, &text, env).map_err(|error| RenderError::Template {
        target: spec.target.clone(),
        origin: spec.origin.clone(),
        error: Box::new(error),
    })?;
    Ok(Rendered {
        spec: spec.clone(),
        action: FileAction::Write(out),
    })
}

fn read_template(spec: &FileSpec, path: &Path) -> Result<String, RenderError> {
    let bytes = std::fs::read(path).map_err(|source| RenderError::MissingTemplate {
        target: spec.target.clone(),
        origin: spec.origin.clone(),
        from: path.to_path_buf(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|_| RenderError::NotText {
        target: spec.target.clone(),
        origin: spec.origin.clone(),
        from: path.to_path_buf(),
    })
}

/// Renders every spec in memory. Either every spec rendered, or every error is returned.
pub fn render_all(specs: &[FileSpec], env: &Env) -> Result<Vec<Rendered>, RenderFailed> {
    let mut done = Vec::with_capacity(specs.len());
    let mut errors = Vec::new();
    for spec in specs {
        match render_one(spec, env) {
            Ok(r) => done.push(r),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(done)
    } else {
        Err(RenderFailed(errors))
    }
}

/// Reads and parses every spec's template without rendering it: the checks that do not depend on the
/// environment (a missing `from` file, a syntax error, a template past gantry's limits or one that
/// could never finish). For `gantry check`; `render_all` makes the same checks, with the same errors.
pub fn check_all(specs: &[FileSpec]) -> Result<(), RenderFailed> {
    let mut errors = Vec::new();
    for spec in specs {
        let (name, text) = match &spec.source {
            Source::From(path) => match read_template(spec, path) {
                Ok(text) => (path.display().to_string(), text),
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            },
            Source::Content(text) => (content_name(spec), text.clone()),
        };
        if let Err(error) = parse_text(spec, &name, &text) {
            errors.push(RenderError::Template {
                target: spec.target.clone(),
                origin: spec.origin.clone(),
                error: Box::new(error),
            });
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(RenderFailed(errors))
    }
}

fn content_name(spec: &FileSpec) -> String {
    format!(
        "content of file \"{}\" ({})",
        spec.target.display(),
        spec.origin
    )
}

/// Writes every rendered file, each atomically, in order; stops at the first failure.
pub fn write_all(rendered: &[Rendered]) -> Result<Vec<WriteOutcome>, WriteError> {
    let mut outcomes = Vec::with_capacity(rendered.len());
    for r in rendered {
        let outcome = match &r.action {
            FileAction::Keep => WriteOutcome::Kept,
            FileAction::Write(content) => {
                write_atomic(&r.spec.target, content.as_bytes(), &write_options(&r.spec))?
            }
        };
        tracing::info!(target = %r.spec.target.display(), outcome = ?outcome, "rendered file");
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

#[cfg(test)]
mod tests;
