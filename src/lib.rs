//! gantry: a readiness-gated boot orchestrator and init for containers.
//!
//! The binary (`main.rs`) is a thin shell over this library: it parses the command line, sets up
//! logging, dispatches to a mode and maps errors to exit codes.
//!
//! | module | owns |
//! |---|---|
//! | `cli` | the command line and logging set-up |
//! | `config` | loading `*.hcl` into a validated plan, with positions for every error |
//! | `up` | sequencing the phases of `gantry up`; `gantry check` |
//! | `flags` | the flags-only init mode (`gantry -- CMD`) |
//! | `render` | `file` blocks: tera templates, the sprig-like library, atomic writes, dry-run/diff |
//! | `renderfiles_cmd` | `gantry renderfiles`: render every file, then exec a command |
//! | `supervisor` | job actors, the restart policy, shutdown, exit codes |
//! | `lazy` | `listen` blocks: listeners, starting lazy jobs on connection, cool-down, the proxy |
//! | `reaper` | spawning children and the single owner of `waitpid`; the signalfd loop |
//! | `runtime` | the one start-up of the process model (signals, subreaper, runtime, signal loop) for `up`, flags mode, `wait`, `sidecar` |
//! | `output` | where job output goes (passthrough, files, timestamps) |
//! | `sys` | the system calls; the only `unsafe` code |
//! | `watch` | change detection, `watch` blocks and the reload sequence; go-init-sentinel's flags |
//! | `sidecar` | `gantry sidecar`: signal a process found by name when its config changes |
//! | `probe_phase` | phase 3 of `up`: waiting for `wait = true` probes (probes live in `gantry-probes`) |
//! | `wait_cmd` | `gantry wait URL... [-- CMD]`: probes from URLs, then exec (probes live in `gantry-probes`) |
//! | `signals`, `timestamp`, `exit` | signal names, output timestamps, exit codes |
//! | `api` | `up --api`: the control API (mittnite's `/v1`, gantry's `/v2`) and `up -p`'s status, health and metrics port |
//! | `ctl` | `gantry ctl`: the API's command-line client (mittnitectl's commands) |
//! | `logring` | per-job log rings behind the API's `logs` (bounded, lossless for readers that keep up) |
//! | `metrics` | the Prometheus text encoder and gantry's own process figures |
//! | `pidfile` | `up --pidfile` |

pub mod api;
pub mod cli;
pub mod config;
pub mod ctl;
pub mod exit;
pub mod flags;
pub mod lazy;
pub mod logring;
pub mod metrics;
pub mod output;
pub mod pidfile;
pub mod probe_phase;
pub mod reaper;
pub mod render;
pub mod renderfiles_cmd;
pub mod runtime;
pub mod sidecar;
pub mod signals;
pub mod supervisor;
pub mod sys;
pub mod timestamp;
pub mod up;
pub mod wait_cmd;
pub mod watch;
