//! Reload on change: the `watch` feature shared by `up` (`watch` blocks inside a job), the flags-only
//! mode (go-init-sentinel's `--watch PATH:SIGNAL`) and `gantry sidecar`.
//!
//! Owns change detection ([`Watcher`]: exactly one [`Change`] per real change of content, none for a
//! `touch`, none at start-up), the validated `watch` block ([`WatchSpec`]) and the reload sequence
//! ([`reload()`]). It must not spawn, own or signal a job's process — the supervisor does that behind
//! [`ReloadHost`] — and it does not parse HCL (`config::watch` reads `watch` blocks into [`WatchSpec`]).
//!
//! How the pieces fit, for one job with one `watch` block:
//!
//! ```ignore
//! let watcher = Watcher::start(&[spec.path.as_str()], spec.options())?;
//! while let Some(change) = watcher.changed().await {
//!     // errors are already logged; a failed validate means "no signal this time"
//!     let _ = reload(&spec, &change, &mut host).await;
//! }
//! ```
//!
//! - `scan`: patterns, hashing, snapshots and their diff (see there why content decides).
//! - `engine`: the background thread, inotify, debounce, polling and the fall-back between them.
//! - `reload`: `WatchSpec`, `Action` and the splay → validate → pre → action → post sequence.
//! - `sentinel`: go-init-sentinel's flags.
//! - `job`: the glue to the supervisor (commands through the reaper, actions as `Control` messages).
//! - `stats`: reloads per job, watch and outcome, for `/metrics`.

mod engine;
pub mod job;
pub mod reload;
mod scan;
pub mod sentinel;
pub mod stats;

use std::path::PathBuf;

pub use engine::{Change, Mode, WatchOptions, Watcher, DEFAULT_DEBOUNCE, DEFAULT_FALLBACK_POLL};
pub use reload::{
    reload, Action, CommandOutput, HelperCommand, ReloadError, ReloadHost, SignalTarget, WatchSpec,
    DEFAULT_COMMAND_TIMEOUT,
};

/// Why a watch could not start.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("a watch needs at least one non-empty path")]
    EmptyPattern,
    #[error("invalid glob {pattern:?}: {reason}")]
    Glob { pattern: String, reason: String },
    #[error("cannot resolve {path}: {source}", path = .path.display())]
    Path {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the watch thread: {0}")]
    Thread(#[source] std::io::Error),
}

#[cfg(test)]
mod tests;
