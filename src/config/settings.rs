//! The `settings` block: choices that apply to the whole configuration directory rather than to
//! one job or probe.
//!
//! ```hcl
//! settings {
//!   probesBeforeBoot = true   # mittnite's order: every probe ready, then the boot jobs
//! }
//! ```
//!
//! At most one `settings` block may appear in the directory (in any file); a second is an error
//! naming both. Without one, gantry's defaults apply. This module owns reading the block; `up`
//! acts on the result through [`super::Plan`].

use super::error::{ConfigError, Errors};
use super::model::Order;
use super::node::{Block, Pos, Reader};

/// What a `settings` block says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settings {
    pub order: Order,
}

/// Reads one `settings` block. `first` is where an earlier one was written, if any (then this one
/// is an error, and its content is still checked).
pub fn settings_from_block(block: &Block, first: Option<&Pos>, errors: &mut Errors) -> Settings {
    if let Some(first) = first {
        errors.push(ConfigError::at(
            block.pos.clone(),
            format!("only one settings block is allowed in the directory (first at {first})"),
        ));
    }
    if !block.labels.is_empty() {
        errors.push(ConfigError::at(
            block.pos.clone(),
            "a settings block has no name: write settings { ... }",
        ));
    }
    let mut r = Reader::new(block, errors);
    let order = match r.bool("probesBeforeBoot") {
        Some(true) => Order::ProbesFirst,
        Some(false) | None => Order::BootFirst,
    };
    r.finish();
    Settings { order }
}
