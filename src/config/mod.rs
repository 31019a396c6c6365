//! Loading a configuration directory into a validated [`Plan`].
//!
//! This module owns finding the files (every `*.hcl` under the directory, recursively, in lexical
//! order, a Kubernetes ConfigMap mount counted once), reading them safely ([`file`]: regular files
//! only, 4 MiB at most), parsing them ([`node`]), durations ([`duration`]), reading the top-level
//! blocks ([`model`] for `job` and `boot`, [`settings`] for the directory-wide `settings`; other
//! phases read their own blocks) and the checks that span files, such as duplicate names and the
//! probes a boot job's `waitFor` names. Warnings (mittnite's deprecated attribute names) are
//! collected beside the errors and logged once by [`load`]. It reports every mistake at once ([`Errors`]). It does not run
//! anything.

pub mod duration;
pub mod error;
pub mod file;
pub mod file_block;
pub mod lazy;
pub mod model;
pub mod node;
pub mod probe;
pub mod settings;
pub mod watch;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

pub use duration::{parse_duration, parse_interval, MAX_DURATION};
pub use error::{ConfigError, Errors};
pub use model::{
    Attempts, BootJob, CommandSpec, JobSpec, Order, OutputSpec, Pending, Plan, StopSpec,
};
pub use node::{Block, Pos, Reader};

/// Where `gantry up` looks when `-c` is not given.
pub const DEFAULT_CONFIG_DIR: &str = "/etc/gantry.d";

/// The top-level block kinds gantry knows.
const TOP_LEVEL: &[&str] = &["job", "boot", "file", "probe", "settings"];

/// Every `*.hcl` file under `dir`, recursively, sorted by path.
///
/// Entries whose name starts with `..` are skipped: a Kubernetes ConfigMap or Secret volume holds the
/// real files in a `..<timestamp>` directory behind a `..data` symlink, and exposes each key as a
/// symlink at the top; reading only the top-level names loads each file once. Files reached twice
/// through other symlinks are also loaded once.
pub fn discover(dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let meta = std::fs::metadata(dir).map_err(|e| {
        ConfigError::general(format!(
            "cannot read config directory {}: {e}",
            dir.display()
        ))
    })?;
    if !meta.is_dir() {
        // A single file; whether it can be read (a regular file, not too large) is `parse_files`'s.
        return Ok(vec![dir.to_path_buf()]);
    }
    let mut files = Vec::new();
    let mut seen_dirs = HashSet::new();
    let mut seen_files = HashSet::new();
    walk(dir, &mut files, &mut seen_dirs, &mut seen_files)?;
    files.sort();
    Ok(files)
}

fn walk(
    dir: &Path,
    files: &mut Vec<PathBuf>,
    seen_dirs: &mut HashSet<PathBuf>,
    seen_files: &mut HashSet<PathBuf>,
) -> Result<(), ConfigError> {
    let canonical = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    if !seen_dirs.insert(canonical) {
        return Ok(()); // a symlink loop or a second way to the same directory
    }
    let entries = std::fs::read_dir(dir).map_err(|e| {
        ConfigError::general(format!(
            "cannot list config directory {}: {e}",
            dir.display()
        ))
    })?;
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        if name.as_deref().is_some_and(|n| n.starts_with("..")) {
            continue;
        }
        // Follow symlinks: a ConfigMap's files are symlinks.
        let Ok(meta) = std::fs::metadata(&path) else {
            continue; // a dangling symlink is not a config file
        };
        if meta.is_dir() {
            walk(&path, files, seen_dirs, seen_files)?;
        } else if path.extension().is_some_and(|e| e == "hcl") {
            let canonical = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
            if seen_files.insert(canonical) {
                files.push(path);
            }
        }
    }
    Ok(())
}

/// Parses every file and merges the top-level blocks, in file order. Only regular files (symlinks
/// followed) of at most [`file::MAX_CONFIG_FILE_BYTES`] are read ([`file::read_config_file`]); anything
/// else is an error naming the file.
pub fn parse_files(files: &[PathBuf], errors: &mut Errors) -> Vec<Block> {
    let mut blocks = Vec::new();
    for file in files {
        match file::read_config_file(file) {
            Ok(text) => {
                let root = node::parse_file(file, &text, errors);
                for attr in &root.attrs {
                    errors.push(top_level_attr_error(attr));
                }
                blocks.extend(root.blocks);
            }
            Err(e) => errors.push(ConfigError::in_file(file, e)),
        }
    }
    blocks
}

/// Loads `dir` into a plan, or every error found.
pub fn load(dir: &Path) -> Result<Plan, Errors> {
    let mut errors = Errors::default();
    let files = match discover(dir) {
        Ok(files) => files,
        Err(e) => {
            errors.push(e);
            return Err(errors);
        }
    };
    if files.is_empty() {
        errors.push(ConfigError::general(format!(
            "no *.hcl files in {}",
            dir.display()
        )));
        return Err(errors);
    }
    let blocks = parse_files(&files, &mut errors);
    let plan = build_plan(&blocks, &mut errors);
    for w in errors.warnings() {
        tracing::warn!("{w}");
    }
    if errors.is_empty() {
        Ok(plan)
    } else {
        Err(errors)
    }
}

/// Loads the text of one configuration file, as if read from `file` (which names it in errors and
/// is not opened): [`load`] without the filesystem, for tools and tests. Every error carries a
/// position in `file`.
pub fn load_text(file: &Path, text: &str) -> Result<Plan, Errors> {
    let mut errors = Errors::default();
    let root = node::parse_file(file, text, &mut errors);
    for attr in &root.attrs {
        errors.push(top_level_attr_error(attr));
    }
    let plan = build_plan(&root.blocks, &mut errors);
    if errors.is_empty() {
        Ok(plan)
    } else {
        Err(errors)
    }
}

fn top_level_attr_error(attr: &node::Attr) -> ConfigError {
    ConfigError::at(
        attr.pos.clone(),
        format!(
            "attribute {:?} must be inside a block (job, boot, file, probe or settings)",
            attr.key
        ),
    )
}

/// Reads top-level blocks into a plan, collecting errors.
pub fn build_plan(blocks: &[Block], errors: &mut Errors) -> Plan {
    let mut plan = Plan::default();
    let mut job_names: HashMap<String, Pos> = HashMap::new();
    let mut boot_names: HashMap<String, Pos> = HashMap::new();
    let mut file_targets: HashMap<String, Pos> = HashMap::new();
    let mut probe_names: HashMap<String, Pos> = HashMap::new();
    let mut settings_at: Option<Pos> = None;
    for block in blocks {
        match block.kind.to_ascii_lowercase().as_str() {
            // Names are checked before the body so that a duplicate is reported even when the
            // block has other mistakes.
            "job" => {
                let unique = check_unique("job", block, &mut job_names, errors);
                let listeners = plan.listeners.len();
                match model::job_from_block(block, errors, &mut plan.listeners) {
                    Some(job) if unique => plan.jobs.push(job),
                    _ => plan.listeners.truncate(listeners),
                }
            }
            "boot" => {
                let unique = check_unique("boot", block, &mut boot_names, errors);
                if let Some(boot) = model::boot_from_block(block, errors) {
                    if unique {
                        plan.boot.push(boot);
                    }
                }
            }
            "file" => {
                let unique = check_unique("file", block, &mut file_targets, errors);
                if let Some(file) = file_block::file_from_block(block, errors) {
                    if unique {
                        plan.files.push(file);
                    }
                }
            }
            "probe" => {
                let unique = check_unique("probe", block, &mut probe_names, errors);
                if let Some(p) = probe::probe_from_block(block, errors) {
                    if unique {
                        plan.probes.push(p);
                    }
                }
            }
            "settings" => {
                let read = settings::settings_from_block(block, settings_at.as_ref(), errors);
                if settings_at.is_none() {
                    plan.order = read.order;
                    settings_at = Some(block.pos.clone());
                }
            }
            _ => errors.push(
                ConfigError::at(
                    block.pos.clone(),
                    format!(
                        "unknown block {:?} (gantry knows job, boot, file, probe and settings)",
                        block.kind
                    ),
                )
                .with_hint(node::suggest(&block.kind, TOP_LEVEL)),
            ),
        }
    }
    lazy::check_plan(&plan, errors);
    check_wait_for(&plan, &probe_names, errors);
    plan.warnings = errors.warnings().to_vec();
    plan
}

/// Every name in a boot job's `waitFor` must be a probe of the directory.
fn check_wait_for(plan: &Plan, probes: &HashMap<String, Pos>, errors: &mut Errors) {
    let mut known: Vec<&str> = probes.keys().map(String::as_str).collect();
    known.sort_unstable();
    for boot in &plan.boot {
        for (name, pos) in &boot.wait_for {
            if probes.contains_key(name) {
                continue;
            }
            let have = if known.is_empty() {
                "there are no probe blocks".to_string()
            } else {
                format!("the probes are {}", known.join(", "))
            };
            errors.push(
                ConfigError::at(
                    pos.clone(),
                    format!(
                        "boot {:?}: attribute \"waitFor\": no probe is named {name:?} ({have})",
                        boot.name
                    ),
                )
                .with_hint(node::suggest(name, &known)),
            );
        }
    }
}

fn check_unique(
    kind: &str,
    block: &Block,
    seen: &mut HashMap<String, Pos>,
    errors: &mut Errors,
) -> bool {
    let Some(name) = block.labels.first() else {
        return true; // the missing name is reported by the block's reader
    };
    let pos = &block.pos;
    if let Some(first) = seen.get(name) {
        errors.push(ConfigError::at(
            pos.clone(),
            format!("{kind} {name:?} is defined twice (first at {first})"),
        ));
        return false;
    }
    seen.insert(name.clone(), pos.clone());
    true
}

/// The plan as `gantry check` prints it: phases in order, each job with its restart policy.
pub fn describe_plan(plan: &Plan) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    if plan.files.is_empty() {
        let _ = writeln!(out, "1. render: nothing to render");
    } else {
        let _ = writeln!(
            out,
            "1. render: {} file(s), all rendered before any is written",
            plan.files.len()
        );
        for f in &plan.files {
            let _ = writeln!(out, "   - {}", file_block::describe(f));
        }
    }
    let (boot_n, probe_n) = match plan.order {
        Order::BootFirst => (2, 3),
        Order::ProbesFirst => (3, 2),
    };
    let mut boot = String::new();
    if plan.boot.is_empty() {
        let _ = writeln!(boot, "{boot_n}. boot: no boot jobs");
    } else {
        let _ = writeln!(
            boot,
            "{boot_n}. boot: {} job(s), in parallel, each to completion",
            plan.boot.len()
        );
        for b in &plan.boot {
            let timeout = b
                .timeout
                .map_or_else(|| "no timeout".to_string(), |t| format!("timeout {t:?}"));
            let fail = if b.can_fail { ", may fail" } else { "" };
            let after = if b.wait_for.is_empty() {
                String::new()
            } else {
                let names: Vec<&str> = b.wait_for.iter().map(|(n, _)| n.as_str()).collect();
                format!(", once probe(s) {} are ready", names.join(", "))
            };
            let _ = writeln!(
                boot,
                "   - {}: {} ({timeout}{fail}{after})",
                b.name,
                b.command.display()
            );
        }
    }
    let mut probes = String::new();
    let waits = plan.phase_probes();
    if waits.is_empty() {
        let _ = writeln!(probes, "{probe_n}. probe: nothing to wait for");
    } else {
        let order = match plan.order {
            Order::BootFirst => "",
            Order::ProbesFirst => " before any boot job (settings: probesBeforeBoot)",
        };
        let _ = writeln!(
            probes,
            "{probe_n}. probe: wait for {} probe(s), in parallel, until ready{order}",
            waits.len()
        );
        for p in waits {
            let what = p
                .build()
                .map_or_else(|e| e.to_string(), |probe| probe.describe());
            let _ = writeln!(probes, "   - {}: {what}", p.name);
        }
    }
    match plan.order {
        Order::BootFirst => {
            out.push_str(&boot);
            out.push_str(&probes);
        }
        Order::ProbesFirst => {
            out.push_str(&probes);
            out.push_str(&boot);
        }
    }
    if plan.jobs.is_empty() {
        let _ = writeln!(out, "4. run: no jobs");
    } else {
        let _ = writeln!(out, "4. run: {} job(s)", plan.jobs.len());
        for j in &plan.jobs {
            let attempts = match j.max_attempts {
                Attempts::Forever => "restart forever".to_string(),
                Attempts::Limited(n) => format!("up to {n} attempt(s)"),
            };
            let policy = if j.one_time {
                format!("one-time (a clean exit completes it; failures: {attempts})")
            } else {
                attempts
            };
            let fail = if j.can_fail {
                "may fail"
            } else {
                "failure stops gantry"
            };
            let _ = writeln!(
                out,
                "   - {}: {} ({policy}; {fail}; stop {} then SIGKILL after {:?})",
                j.name,
                j.command.display(),
                crate::signals::Name(j.stop.first_signal()),
                j.stop.total()
            );
            for w in &j.watches {
                let _ = writeln!(out, "     watch {}: {}", w.path, w.action());
            }
            for line in lazy::describe(plan.listeners.iter().find(|l| l.job == j.name)) {
                let _ = writeln!(out, "     {line}");
            }
        }
    }
    let _ = writeln!(
        out,
        "5. shutdown: on SIGTERM/SIGINT or when a job that may not fail gives up"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_of(text: &str) -> Result<Plan, Errors> {
        load_text(Path::new("test.hcl"), text)
    }

    #[test]
    fn restart_delays_default_to_one_and_thirty_seconds_and_may_be_set() {
        let plan = plan_of("job \"a\" {\n command = \"x\"\n}\n").expect("plan");
        assert_eq!(plan.jobs[0].restart_delay, model::DEFAULT_RESTART_DELAY);
        let plan = plan_of(
            "job \"a\" {\n command = \"x\"\n restartDelay = \"10ms\"\n maxRestartDelay = \"2s\"\n}\n",
        )
        .expect("plan");
        let ms = std::time::Duration::from_millis;
        assert_eq!(plan.jobs[0].restart_delay, (ms(10), ms(2000)));
        // A first delay longer than the default cap raises the cap with it.
        let plan =
            plan_of("job \"a\" {\n command = \"x\"\n restartDelay = \"1m\"\n}\n").expect("plan");
        assert_eq!(plan.jobs[0].restart_delay, (ms(60_000), ms(60_000)));
        let errors = plan_of(
            "job \"a\" {\n command = \"x\"\n restartDelay = \"5s\"\n maxRestartDelay = \"1s\"\n}\n",
        )
        .expect_err("a cap below the first delay");
        let text = errors.to_string();
        assert!(
            text.contains("test.hcl:4:") && text.contains("maxRestartDelay"),
            "{text}"
        );
    }

    #[test]
    fn mittnite_job_attributes() {
        let plan = plan_of(
            r#"
            job "foo" {
              command = "/usr/local/bin/foo"
              args = ["bar"]
              env = ["ENABLED=1", "BAR=\"BAZ\""]
              maxAttempts = -1
              canFail = false
              workingDirectory = "/some/path"
              stdout = "/tmp/foo.log"
              stderr = "/tmp/foo-errors.log"
              oneTime = true
              controllable = true
              enableTimestamps = true
              timestampFormat = "RFC3339"
            }
            "#,
        )
        .expect("valid");
        let job = &plan.jobs[0];
        assert_eq!(job.name, "foo");
        assert_eq!(job.command.args, vec!["bar"]);
        assert_eq!(
            job.command.env,
            vec![
                ("ENABLED".into(), "1".into()),
                ("BAR".into(), "\"BAZ\"".into())
            ]
        );
        assert_eq!(job.max_attempts, Attempts::Forever);
        assert!(job.one_time && job.controllable && !job.can_fail);
        assert_eq!(job.command.working_dir, Some(PathBuf::from("/some/path")));
        assert!(job.command.output.timestamps.is_some());
    }

    #[test]
    fn mittnites_max_attempts_is_read_with_one_warning_and_both_names_are_an_error() {
        let plan = plan_of("job \"a\" {\n command = \"x\"\n max_attempts = 7\n}\n").expect("valid");
        assert_eq!(plan.jobs[0].max_attempts, Attempts::Limited(7));
        assert_eq!(plan.warnings.len(), 1);
        let w = plan.warnings[0].to_string();
        assert!(
            w.starts_with("test.hcl:3:2: job \"a\": attribute \"max_attempts\" is deprecated")
                && w.contains("read as \"maxAttempts\""),
            "{w}"
        );
        // The new name alone: no warning.
        let plan = plan_of("job \"a\" {\n command = \"x\"\n maxAttempts = 7\n}\n").expect("valid");
        assert!(plan.warnings.is_empty());
        // Its value is checked under the name it was written with.
        let text = plan_of("job \"a\" {\n command = \"x\"\n max_attempts = 0\n}\n")
            .expect_err("0 attempts")
            .to_string();
        assert!(
            text.contains("test.hcl:3:17: job \"a\": attribute \"max_attempts\": 0 is not allowed"),
            "{text}"
        );
        let errors =
            plan_of("job \"a\" {\n command = \"x\"\n max_attempts = 7\n maxAttempts = 2\n}\n")
                .expect_err("both");
        assert_eq!(errors.len(), 1, "{errors}");
        assert_eq!(
            errors.0[0].to_string(),
            "test.hcl:3:2: job \"a\": both \"max_attempts\" (mittnite's deprecated name) and \"maxAttempts\" (line 4) are set; keep only \"maxAttempts\""
        );
        assert!(errors.warnings().is_empty());
    }

    #[test]
    fn boot_wait_for_names_probes_and_settings_choose_the_order() {
        let text = concat!(
            "probe \"db\" {\n url = \"tcp://127.0.0.1:1\"\n}\n",
            "probe \"cache\" {\n wait = true\n url = \"tcp://127.0.0.1:2\"\n}\n",
            "boot \"migrate\" {\n command = \"x\"\n waitFor = [\"db\"]\n}\n",
            "boot \"plain\" {\n command = \"x\"\n}\n",
        );
        let plan = plan_of(text).expect("valid");
        assert_eq!(plan.order, Order::BootFirst);
        let names: Vec<&str> = plan.boot[0]
            .wait_for
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(names, ["db"]);
        assert_eq!(plan.boot[0].wait_for[0].1.line, 10);
        assert!(plan.boot[1].wait_for.is_empty());
        // gantry's order: `db` (wait = false) gates only its boot job, not the probe phase.
        let phase: Vec<&str> = plan
            .phase_probes()
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(phase, ["cache"]);
        let described = describe_plan(&plan);
        assert!(
            described.contains("2. boot: 2 job(s)")
                && described.contains("- migrate: x (timeout 30s, once probe(s) db are ready)")
                && described.contains("3. probe: wait for 1 probe(s)"),
            "{described}"
        );

        let plan = plan_of(&format!(
            "{text}settings {{\n probesBeforeBoot = true\n}}\n"
        ))
        .expect("valid");
        assert_eq!(plan.order, Order::ProbesFirst);
        // mittnite's order: every probe a boot job waits for is part of the probe phase.
        let phase: Vec<&str> = plan
            .phase_probes()
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(phase, ["db", "cache"]);
        let described = describe_plan(&plan);
        let probe_at = described.find("2. probe: wait for 2 probe(s)");
        let boot_at = described.find("3. boot: 2 job(s)");
        assert!(probe_at.is_some() && probe_at < boot_at, "{described}");

        let plan = plan_of(&format!(
            "{text}settings {{\n probesBeforeBoot = false\n}}\n"
        ))
        .expect("valid");
        assert_eq!(plan.order, Order::BootFirst);
    }

    #[test]
    fn wait_for_mistakes() {
        let errors = plan_of(concat!(
            "probe \"db\" {\n url = \"tcp://127.0.0.1:1\"\n}\n",
            "boot \"m\" {\n command = \"x\"\n waitFor = [\"dc\", 5]\n}\n",
            "boot \"n\" {\n command = \"x\"\n waitFor = [\"nope\"]\n}\n",
            "settings \"x\" {\n}\n",
        ))
        .expect_err("invalid");
        let text = errors.to_string();
        for want in [
            "test.hcl:6:19: boot \"m\": attribute \"waitFor\": expected a list of strings, but an element is a number (5)",
            "test.hcl:10:13: boot \"n\": attribute \"waitFor\": no probe is named \"nope\" (the probes are db)",
            "test.hcl:12:1: a settings block has no name: write settings { ... }",
        ] {
            assert!(text.contains(want), "{want:?} missing in:\n{text}");
        }
        // A list with a wrong element is one mistake; its names are not checked on top.
        assert_eq!(errors.len(), 3, "{text}");
    }

    #[test]
    fn keys_match_case_insensitively_and_labels_may_be_bare() {
        let plan =
            plan_of("job webserver {\n COMMAND = \"x\"\n maxattempts = 5\n}\n").expect("valid");
        assert_eq!(plan.jobs[0].name, "webserver");
        assert_eq!(plan.jobs[0].max_attempts, Attempts::Limited(5));
    }

    #[test]
    fn boot_timeout_defaults_and_zero_means_none() {
        let plan = plan_of(
            "boot \"a\" { command = \"x\" }\nboot \"b\" {\n command = \"x\"\n timeout = \"0s\"\n}\n",
        )
        .expect("valid");
        assert_eq!(plan.boot[0].timeout, Some(model::DEFAULT_BOOT_TIMEOUT));
        assert_eq!(plan.boot[1].timeout, None);
    }

    #[test]
    fn every_error_is_reported_with_line_and_hint() {
        let errors = plan_of(
            "job \"a\" {\n  comand = \"x\"\n}\njob \"b\" {\n  command = \"y\"\n  maxAttempts = \"many\"\n}\njobs \"c\" {}\n",
        )
        .expect_err("invalid");
        let text = errors.to_string();
        assert!(
            text.contains(
                "test.hcl:2:3: job \"a\": unknown attribute \"comand\" (did you mean \"command\"?)"
            ),
            "{text}"
        );
        assert!(
            text.contains("test.hcl:1:1: job \"a\": attribute \"command\" is required"),
            "{text}"
        );
        assert!(
            text.contains(
                "test.hcl:6:17: job \"b\": attribute \"maxAttempts\": expected a whole number"
            ),
            "{text}"
        );
        assert!(
            text.contains("test.hcl:8:1: unknown block \"jobs\""),
            "{text}"
        );
        assert!(text.contains("did you mean \"job\"?"), "{text}");
        assert_eq!(errors.len(), 4, "{text}");
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        let errors = plan_of("job \"a\" {\n  command = \n}\n").expect_err("invalid");
        let e = &errors.0[0];
        let pos = e.pos.as_ref().expect("position");
        assert_eq!(pos.line, 2, "{e}");
        assert!(e.message.contains("syntax"), "{e}");
    }

    #[test]
    fn duplicate_job_names_are_an_error() {
        let errors = plan_of("job \"a\" { command = \"x\" }\njob \"a\" { command = \"y\" }\n")
            .expect_err("duplicate");
        assert!(errors
            .to_string()
            .contains("job \"a\" is defined twice (first at test.hcl:1:1)"));
    }

    #[test]
    fn other_phases_are_read_not_ignored() {
        let plan = plan_of(
            "file \"/x\" { from = \"t\" }\njob \"a\" {\n command = \"x\"\n watch \"/etc/*.conf\" { signal = 12 }\n lazy { spinUpTimeout = \"5s\" }\n listen \"127.0.0.1:1\" { forward = \"127.0.0.1:2\" }\n}\n",
        )
        .expect("valid");
        assert!(plan.pending.is_empty());
        assert_eq!(plan.listeners[0].job, "a");
        assert_eq!(plan.files.len(), 1);
        assert_eq!(plan.jobs[0].watches.len(), 1);
    }

    #[test]
    fn durations_too_long_for_a_clock_are_errors_with_their_place() {
        let errors = plan_of(
            "job \"a\" {\n command = \"x\"\n stopTimeout = \"99999999999999999999s\"\n watch \"/x\" {\n  debounce = 1e300\n }\n}\nboot \"b\" {\n command = \"x\"\n timeout = \"2562048h\"\n}\n",
        )
        .expect_err("too long");
        let text = errors.to_string();
        assert!(
            text.contains(
                "test.hcl:3:16: job \"a\": attribute \"stopTimeout\": duration \"99999999999999999999s\" is too long"
            ),
            "{text}"
        );
        assert!(
            text.contains("test.hcl:5:14: watch \"/x\": attribute \"debounce\": duration"),
            "{text}"
        );
        assert!(
            text.contains("test.hcl:10:12: boot \"b\": attribute \"timeout\": duration \"2562048h\" is too long"),
            "{text}"
        );
        assert_eq!(errors.len(), 3, "{text}");
    }

    #[test]
    fn the_total_of_long_stop_stages_stays_addable_to_a_clock() {
        let stop = StopSpec {
            stages: vec![(libc::SIGTERM, MAX_DURATION); 3],
        };
        assert_eq!(stop.total(), MAX_DURATION);
        let _ = std::time::Instant::now() + stop.total();
    }

    #[test]
    fn wrong_types_are_errors_with_their_place_and_attribute() {
        let errors = plan_of(concat!(
            "job \"a\" {\n",
            " command = 5\n",
            " args = \"x\"\n",
            "}\n",
            "job \"c\" {\n",
            " command = \"x\"\n",
            " args = [\"-p\", 8080]\n",
            " canFail = \"true\"\n",
            " maxAttempts = \"5\"\n",
            " stdout = [\"a\"]\n",
            " enableTimestamps = 1\n",
            " oneTime = \"yes\"\n",
            " workingDirectory = false\n",
            " env = \"A=1\"\n",
            " watch \"/x\" {\n",
            "  target = 5\n",
            "  restart = \"false\"\n",
            "  preCommand {\n",
            "   command = 1\n",
            "   args = \"x\"\n",
            "  }\n",
            " }\n",
            "}\n",
            "boot \"d\" {\n",
            " command = true\n",
            "}\n",
        ))
        .expect_err("invalid");
        let text = errors.to_string();
        for expected in [
            "test.hcl:2:12: job \"a\": attribute \"command\": expected a string, found a number (5) (write \"5\" if you mean the text)",
            "test.hcl:3:9: job \"a\": attribute \"args\": expected a list of strings, found a string (write [\"x\"] for a list of one)",
            "test.hcl:7:16: job \"c\": attribute \"args\": expected a list of strings, but an element is a number (8080)",
            "test.hcl:8:12: job \"c\": attribute \"canFail\": expected true or false, found a string (write true without quotes)",
            "test.hcl:9:16: job \"c\": attribute \"maxAttempts\": expected a whole number, found \"5\" (write 5 without quotes)",
            "test.hcl:10:11: job \"c\": attribute \"stdout\": expected a string, found a list",
            "test.hcl:11:21: job \"c\": attribute \"enableTimestamps\": expected true or false, found a number (1)",
            "test.hcl:12:12: job \"c\": attribute \"oneTime\": expected true or false, found a string",
            "test.hcl:13:21: job \"c\": attribute \"workingDirectory\": expected a string, found a bool (false)",
            "test.hcl:14:8: job \"c\": attribute \"env\": expected a list of strings, found a string",
            "test.hcl:16:12: watch \"/x\": attribute \"target\": expected a string, found a number (5)",
            "test.hcl:17:13: watch \"/x\": attribute \"restart\": expected true or false, found a string (write false without quotes)",
            "test.hcl:19:14: preCommand: attribute \"command\": expected a string, found a number (1)",
            "test.hcl:20:11: preCommand: attribute \"args\": expected a list of strings, found a string",
            "test.hcl:25:12: boot \"d\": attribute \"command\": expected a string, found a bool (true)",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
        // A command of the wrong type is one mistake, not also a missing command.
        assert!(!text.contains("is required"), "{text}");
        assert_eq!(errors.len(), 15, "{text}");
    }

    #[test]
    fn nul_bytes_in_commands_arguments_environment_and_paths_are_errors() {
        let errors = plan_of(concat!(
            "job \"b\" {\n",
            " command = \"x\\u0000y\"\n",
            " args = [\"ok\", \"a\\u0000\"]\n",
            " env = [\"A=\\u0000\"]\n",
            " workingDirectory = \"/tmp\\u0000\"\n",
            " stderr = \"/tmp/e\\u0000\"\n",
            " watch \"/x\\u0000\" {\n",
            "  validate {\n",
            "   command = \"t\\u0000\"\n",
            "  }\n",
            " }\n",
            "}\n",
        ))
        .expect_err("NUL bytes");
        let text = errors.to_string();
        for expected in [
            "test.hcl:2:12: job \"b\": attribute \"command\": must not contain a NUL byte",
            "test.hcl:3:16: job \"b\": attribute \"args\": must not contain a NUL byte",
            "test.hcl:4:9: job \"b\": attribute \"env\": must not contain a NUL byte",
            "test.hcl:5:21: job \"b\": attribute \"workingDirectory\": must not contain a NUL byte",
            "test.hcl:6:11: job \"b\": attribute \"stderr\": must not contain a NUL byte",
            "test.hcl:7:2: watch path must not contain a NUL byte",
            "test.hcl:9:14: validate: attribute \"command\": must not contain a NUL byte",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
        assert_eq!(errors.len(), 7, "{text}");
    }

    #[test]
    fn bad_values() {
        let errors = plan_of(
            "job \"a\" {\n command = \"x\"\n env = [\"NOEQUALS\"]\n stopSignal = \"SIGNOPE\"\n stopTimeout = \"soon\"\n canFail = 3\n}\n",
        )
        .expect_err("invalid");
        let text = errors.to_string();
        assert!(text.contains("NOEQUALS"), "{text}");
        assert!(text.contains("SIGNOPE"), "{text}");
        assert!(text.contains("invalid duration \"soon\""), "{text}");
        assert!(text.contains("canFail"), "{text}");
    }
}
