//! The `watch "PATH" { ... }` block (inside a `job`): its plain data ([`WatchSpec`]) and its reader.
//!
//! The watch feature (the top-level `watch` module) detects changes and runs the reload sequence over this data;
//! this module knows nothing of either.
//!
//! Owns the block's attribute names and their validation, with mittnite's spelling (`signal`, `restart`,
//! `preCommand { command, args }`, `postCommand { ... }`) and gantry's additions (`validate { ... }`,
//! `debounce`, `splay`, `poll`, `target`, `timeout`). Errors go to the config loader's [`Errors`] with positions,
//! like every other block. It must not touch the job the block belongs to or start anything.

use std::time::Duration;

use super::node::Block;
use super::{ConfigError, Errors, Reader};

/// How long changes must settle before a reload (the burst of writes an editor or a ConfigMap swap makes).
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(150);

/// How long a watch's validate, pre- or post-command may run before it is killed.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// A command with its arguments, as in mittnite's `preCommand { command = "...", args = [...] }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelperCommand {
    pub command: String,
    pub args: Vec<String>,
}

impl std::fmt::Display for HelperCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.command)?;
        for a in &self.args {
            write!(f, " {a}")?;
        }
        Ok(())
    }
}

/// Who receives the reload signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignalTarget {
    /// The job's whole process group (the default: shells and wrappers pass it on).
    #[default]
    ProcessGroup,
    /// The job's main process only.
    MainProcess,
}

/// One `watch "GLOB" { ... }` block, validated. mittnite's attributes (`signal`, `restart`, `preCommand`,
/// `postCommand`) plus gantry's `validate`, `debounce`, `splay`, `poll` and `target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchSpec {
    /// The file, directory or glob the block is labelled with.
    pub path: String,
    /// The signal to send; with `restart`, the signal that stops the job before it is started again.
    pub signal: i32,
    pub restart: bool,
    pub target: SignalTarget,
    /// Must exit 0 before anything is sent (e.g. `nginx -t`).
    pub validate: Option<HelperCommand>,
    pub pre_command: Option<HelperCommand>,
    pub post_command: Option<HelperCommand>,
    pub debounce: Duration,
    /// A random delay in `[0, splay]` before the reload, so a fleet does not reload at once.
    pub splay: Option<Duration>,
    /// Force polling at this interval.
    pub poll: Option<Duration>,
    /// How long each of `validate`, `pre_command` and `post_command` may run before it is killed.
    pub command_timeout: Duration,
}

impl WatchSpec {
    /// A spec with mittnite's behaviour: signal only, no commands, default debounce, inotify.
    pub fn new(path: impl Into<String>, signal: i32) -> WatchSpec {
        WatchSpec {
            path: path.into(),
            signal,
            restart: false,
            target: SignalTarget::ProcessGroup,
            validate: None,
            pre_command: None,
            post_command: None,
            debounce: DEFAULT_DEBOUNCE,
            splay: None,
            poll: None,
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
        }
    }
}

/// Reads one `watch` block. `None` when it has errors (already recorded in `errors`).
pub fn watch_from_block(block: &Block, errors: &mut Errors) -> Option<WatchSpec> {
    let mut r = Reader::new(block, errors);
    let path = match block.labels.as_slice() {
        [p] if p.contains('\0') => {
            r.errors().push(ConfigError::at(
                block.pos.clone(),
                "watch path must not contain a NUL byte (\\0 or \\u0000)",
            ));
            None
        }
        [p] if !p.trim().is_empty() => Some(p.clone()),
        _ => {
            r.errors().push(ConfigError::at(
                block.pos.clone(),
                "watch block needs exactly one path or glob, as in watch \"/etc/app/*.conf\" { signal = \"HUP\" }",
            ));
            None
        }
    };
    let restart = r.bool("restart").unwrap_or(false);
    // mittnite requires `signal`; without one, a reload means SIGHUP and a restart means SIGTERM.
    let signal = r
        .signal("signal")
        .unwrap_or(if restart { libc::SIGTERM } else { libc::SIGHUP });
    let target = match r.value("target") {
        None => SignalTarget::ProcessGroup,
        Some(v) => {
            let pos = v.pos.clone();
            match r
                .text("target")
                .as_deref()
                .map(str::to_ascii_lowercase)
                .as_deref()
            {
                Some("group" | "processgroup" | "process_group") => SignalTarget::ProcessGroup,
                Some("main" | "process" | "mainprocess" | "main_process") => {
                    SignalTarget::MainProcess
                }
                Some(other) => {
                    r.error(
                        pos,
                        "target",
                        format!("{other:?} is not a target (use \"group\" or \"main\")"),
                    );
                    SignalTarget::ProcessGroup
                }
                None => SignalTarget::ProcessGroup,
            }
        }
    };
    let debounce = r.duration("debounce").unwrap_or(DEFAULT_DEBOUNCE);
    let splay = r.duration("splay").filter(|d| !d.is_zero());
    let poll = match (r.value("poll").map(|v| v.pos.clone()), r.duration("poll")) {
        (Some(pos), Some(d)) if d.is_zero() => {
            r.error(
                pos,
                "poll",
                "must be longer than 0 (leave it out to use inotify)",
            );
            None
        }
        (_, d) => d,
    };
    let command_timeout = match (
        r.value("timeout").map(|v| v.pos.clone()),
        r.duration("timeout"),
    ) {
        (Some(pos), Some(d)) if d.is_zero() => {
            r.error(
                pos,
                "timeout",
                "must be longer than 0 (a command that hangs would stop the watch for good)",
            );
            DEFAULT_COMMAND_TIMEOUT
        }
        (_, d) => d.unwrap_or(DEFAULT_COMMAND_TIMEOUT),
    };
    let mut commands = [None, None, None];
    let mut ok = true;
    for (slot, kind) in commands
        .iter_mut()
        .zip(["validate", "preCommand", "postCommand"])
    {
        if let Some(b) = r.single_block(kind) {
            match command_from_block(&b, r.errors()) {
                Some(c) => *slot = Some(c),
                None => ok = false,
            }
        }
    }
    r.finish();
    let [validate, pre_command, post_command] = commands;
    if !ok {
        return None;
    }
    Some(WatchSpec {
        path: path?,
        signal,
        restart,
        target,
        validate,
        pre_command,
        post_command,
        debounce,
        splay,
        poll,
        command_timeout,
    })
}

/// `preCommand { command = "nginx", args = ["-s", "reload"] }`.
fn command_from_block(block: &Block, errors: &mut Errors) -> Option<HelperCommand> {
    let mut r = Reader::new(block, errors);
    let command = r.text("command");
    let command_written = r.value("command").is_some();
    let args = r.string_list("args");
    let args_ok = args.is_some() || r.value("args").is_none();
    r.finish();
    match command {
        Some(c) if !c.trim().is_empty() => args_ok.then(|| HelperCommand {
            command: c,
            args: args.unwrap_or_default(),
        }),
        // Written, but not as text: that error is already reported.
        None if command_written => None,
        _ => {
            errors.push(ConfigError::at(
                block.pos.clone(),
                format!(
                    "{}: attribute \"command\" is required and must not be empty",
                    block.kind
                ),
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::time::Duration;

    /// The watch blocks of the first job in `hcl`, read.
    fn watches(hcl: &str) -> (Vec<WatchSpec>, Errors) {
        let mut errors = Errors::default();
        let root = crate::config::node::parse_file(Path::new("test.hcl"), hcl, &mut errors);
        let job = root.blocks.first().expect("a job block");
        let specs = job
            .blocks
            .iter()
            .filter(|b| b.kind == "watch")
            .filter_map(|b| watch_from_block(b, &mut errors))
            .collect();
        (specs, errors)
    }

    #[test]
    fn mittnite_watch_blocks_read_unchanged() {
        let (specs, errors) = watches(
            r#"job "foo" {
  command = "http-server"
  watch "/etc/conf.d/barfoo" {
    signal = 12
    preCommand {
      command = "echo"
      args = ["before"]
    }
    postCommand {
      command = "echo"
      args = ["after"]
    }
  }
  watch "/etc/conf.d/*.conf" {
    signal = 15 # SIGTERM
    restart = true
  }
}
"#,
        );
        assert!(errors.is_empty(), "{errors}");
        assert_eq!(specs.len(), 2);
        let w = &specs[0];
        assert_eq!(w.path, "/etc/conf.d/barfoo");
        assert_eq!(w.signal, libc::SIGUSR2);
        assert!(!w.restart);
        assert_eq!(
            w.pre_command,
            Some(HelperCommand {
                command: "echo".into(),
                args: vec!["before".into()]
            })
        );
        assert_eq!(
            w.post_command.as_ref().map(|c| c.args.clone()),
            Some(vec!["after".to_string()])
        );
        assert_eq!(w.debounce, DEFAULT_DEBOUNCE);
        assert_eq!(w.command_timeout, DEFAULT_COMMAND_TIMEOUT);
        assert_eq!(w.target, SignalTarget::ProcessGroup);
        assert!(specs[1].restart);
        assert_eq!(specs[1].signal, libc::SIGTERM);
    }

    #[test]
    fn gantry_extensions() {
        let (specs, errors) = watches(
            r#"job "web" {
  command = "nginx"
  watch "/etc/nginx/nginx.conf" {
    signal = "SIGHUP"
    target = "main"
    debounce = "50ms"
    splay = "2s"
    poll = "5s"
    timeout = "5s"
    validate {
      command = "nginx"
      args = ["-t"]
    }
  }
}
"#,
        );
        assert!(errors.is_empty(), "{errors}");
        let w = &specs[0];
        assert_eq!(w.signal, libc::SIGHUP);
        assert_eq!(w.target, SignalTarget::MainProcess);
        assert_eq!(w.debounce, Duration::from_millis(50));
        assert_eq!(w.splay, Some(Duration::from_secs(2)));
        assert_eq!(w.poll, Some(Duration::from_secs(5)));
        assert_eq!(w.command_timeout, Duration::from_secs(5));
        assert_eq!(
            w.validate.as_ref().map(|c| c.command.as_str()),
            Some("nginx")
        );
    }

    #[test]
    fn mistakes_are_reported_with_positions_and_suggestions() {
        let (specs, errors) = watches(
            r#"job "web" {
  command = "nginx"
  watch "/a" {
    signl = 1
  }
  watch "/b" {
    signal = "SIGNOPE"
    target = "everyone"
    poll = "0s"
    timeout = "0s"
  }
  watch "/c" {
    preCommand {
      args = ["x"]
    }
  }
  watch {
    signal = 1
  }
}
"#,
        );
        let text = errors.to_string();
        assert!(text.contains("test.hcl:4:5"), "{text}");
        assert!(text.contains("did you mean \"signal\"?"), "{text}");
        assert!(text.contains("SIGNOPE"), "{text}");
        assert!(text.contains("\"everyone\" is not a target"), "{text}");
        assert!(text.contains("poll"), "{text}");
        assert!(
            text.contains(
                "test.hcl:10:15: watch \"/b\": attribute \"timeout\": must be longer than 0"
            ),
            "{text}"
        );
        assert!(
            text.contains("preCommand: attribute \"command\" is required"),
            "{text}"
        );
        assert!(text.contains("exactly one path"), "{text}");
        // Only the blocks without errors in their own structure come through.
        let paths: Vec<&str> = specs.iter().map(|s| s.path.as_str()).collect();
        assert!(!paths.contains(&"/c"));
    }
}
