//! gantry: a readiness-gated boot orchestrator and init for containers.
//!
//! The binary (`main.rs`) is a thin shell over this library: it parses the command line, sets up
//! logging, dispatches to a mode and maps errors to exit codes.

pub mod render;
pub mod signals;
