//! gantry-probes: readiness probes (one async trait, one module per backend).
