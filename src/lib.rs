//! gantry: a readiness-gated boot orchestrator and init for containers.
//!
//! The binary (`main.rs`) is a thin shell over this library: it parses the command line, sets up
//! logging, dispatches to a mode and maps errors to exit codes.
//!
//! Config is at the bottom of the import graph: `config` reads every block (`job`, `boot`, `file`,
//! `watch`, `probe`, `lazy`, `listen`) into plain data, with every value resolved at load time, and
//! imports no feature module. Feature modules import `config`; `runtime` starts the process model;
//! `supervisor` owns the jobs; the modes (`up`, `flags`, `wait_cmd`, `sidecar`, `renderfiles_cmd`,
//! `ctl`) sit on top.
//!
//! | module | owns |
//! |---|---|
//! | `cli` | the command line and logging set-up |
//! | `about` | `gantry version` (commit, probe drivers), shell completions and the man page |
//! | `config` | loading `*.hcl` into a validated plan of plain data, with positions for every error; every block's reader |
//! | `exit` | exit statuses and gantry's exit codes, the one `exec`, printing a mode's result |
//! | `sys` | the system calls; the only `unsafe` code |
//! | `signals`, `timestamp` | signal names, output timestamps |
//! | `reaper` | spawning children and the single owner of `waitpid`; the signalfd loop |
//! | `output` | where job output goes (passthrough, files, timestamps, log rings), never blocking the supervisor |
//! | `logring` | per-job log rings behind the API's `logs` (bounded, lossless for readers that keep up) |
//! | `runtime` | the one start-up of the process model (signals, subreaper, runtime, signal loop) for `up`, flags mode, `wait`, `sidecar` |
//! | `supervisor` | the supervisor and its handle, job actors and their states, the restart policy, shutdown |
//! | `render` | rendering `file` blocks: tera templates, the sprig-like library, atomic writes, the render phase |
//! | `watch` | change detection and the reload sequence; go-init-sentinel's flags |
//! | `probe_phase` | phase 3 of `up`: waiting for `wait = true` probes (probes live in `gantry-probes`) |
//! | `readiness` | a job's own readiness and liveness sources while it runs: `ready`/`alive` probes, sd_notify sockets, s6 notification fds |
//! | `lazy` | `listen` blocks: listeners, starting lazy jobs on connection, cool-down, the proxy, socket activation |
//! | `api` | `up --api`: the control API (mittnite's `/v1`, gantry's `/v2`) and `up -p`'s status, health and metrics port |
//! | `metrics` | the Prometheus text encoder and gantry's own process figures |
//! | `pidfile` | `up --pidfile` |
//! | `up` | sequencing the phases of `gantry up`; `gantry check` |
//! | `flags` | the flags-only init mode (`gantry -- CMD`) |
//! | `renderfiles_cmd` | `gantry renderfiles`: render every file, then exec a command |
//! | `wait_cmd` | `gantry wait URL... [-- CMD]`: probes from URLs, then exec |
//! | `sidecar` | `gantry sidecar`: signal a process found by name when its config changes |
//! | `ctl` | `gantry ctl`: the API's command-line client (mittnitectl's commands) |

pub mod about;
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
pub mod readiness;
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
