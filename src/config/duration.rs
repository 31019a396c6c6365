//! Durations in gantry's configuration and flags: the one parser, which lives in the lowest crate
//! (`gantry_probes::duration`) so that probe URLs share it. See there for the syntax and the limits.

pub use gantry_probes::duration::{
    duration_from_secs, parse_duration, parse_interval, MAX_DURATION,
};
