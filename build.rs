//! Links the `gantry` executable as a non-PIE binary on Linux/glibc.
//!
//! A position-independent executable must have its relocations applied at every start; for a binary
//! this size that writes to several megabytes of pages, which then stay resident as private memory and
//! cost start-up time. Linked at a fixed address, those pages stay clean and are read only when used.
//! Dependencies are still compiled as position-independent code, which links fine either way. (Static
//! inits such as tini-static are non-PIE for the same reason.)

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
