//! The flags-only mode: `gantry [OPTIONS] -- CMD ARGS... [--- CMD ARGS...]`, an init like tini.
//!
//! This module owns turning the command line into jobs (one per `---`-separated command, each run once
//! and never restarted), the tini/muinit options (stop signal, grace, staged kill signals, forwarded
//! signals, forwarding target, `$VAR` expansion) and rewriting argv spellings clap cannot read
//! directly. The first command to end brings the others down; the exit status is that of the first
//! that failed.
//!
//! Two other init's command lines are read here too: muinit's short options are this mode's own
//! ([`muinit`] owns which signals `-s` lets through), and dinit's `-r CMD ... -r CMD ...` form, with
//! its primary process, hooks and submission socket, is [`dinit`]'s.

pub mod dinit;
pub mod muinit;

use std::time::Duration;

use tokio::time::Instant;

use crate::config::{parse_duration, Attempts, CommandSpec, JobSpec, StopSpec};
use crate::exit;
use crate::runtime::Options;
use crate::supervisor::{self, JobDef, Kind, RunOptions, Supervisor};

/// How long one `--wait` probe attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where forwarded signals go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ForwardTo {
    /// The child's whole process group (its own children too).
    #[default]
    Group,
    /// Only the child process itself.
    Child,
}

fn signal_arg(s: &str) -> Result<i32, String> {
    crate::signals::parse(s).map_err(|e| e.to_string())
}

/// Options of the flags-only mode.
#[derive(Debug, Clone, clap::Args)]
pub struct InitArgs {
    /// Signal that asks the children to stop.
    #[arg(long, value_name = "SIG", default_value = "TERM", value_parser = signal_arg)]
    pub stop_signal: i32,
    /// Grace period after the stop signal before SIGKILL.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub stop_timeout: Duration,
    /// Staged termination (muinit's -k): signals sent in turn, e.g. TERM,INT,KILL or 15,9;
    /// overrides --stop-signal. SIGKILL always ends the list.
    #[arg(short = 'k', long, value_name = "SIG,SIG,...", value_delimiter = ',', value_parser = signal_arg)]
    pub kill_stages: Option<Vec<i32>>,
    /// Time to wait after each stage of --kill-stages (muinit's -t; bare numbers are seconds).
    #[arg(short = 't', long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    pub stage_timeout: Duration,
    /// Forward only these signals (muinit's -s), e.g. 1,10 or HUP,USR1; the others are not
    /// forwarded (SIGTERM and SIGINT still stop the commands). Default: every signal.
    #[arg(short = 's', long, value_name = "SIG,SIG,...", value_delimiter = ',', value_parser = signal_arg)]
    pub forward_signals: Option<Vec<i32>>,
    /// Forward signals to the child's process group or only to the child.
    #[arg(long, value_enum, default_value_t = ForwardTo::Group)]
    pub forward_to: ForwardTo,
    /// Expand $VAR and ${VAR} in the command and its arguments (for exec-form ENTRYPOINTs).
    #[arg(short = 'e', long)]
    pub expand_env: bool,
    /// Wait until this dependency is ready before starting the command (repeatable), e.g.
    /// `mysql://user:pass@db:3306/app`, `redis://cache`, `tcp://host:port`, `http://svc/health`.
    #[arg(long = "wait", value_name = "URL")]
    pub wait: Vec<String>,
    /// Give up waiting for --wait dependencies after this long and exit 75 (default: no limit).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub wait_timeout: Option<Duration>,
    /// go-init-sentinel's file watches (`--watch PATH:SIGNAL`, `--interval`, `--splay`).
    #[command(flatten)]
    pub sentinel: crate::watch::sentinel::SentinelArgs,
}

impl InitArgs {
    fn stop(&self) -> StopSpec {
        match &self.kill_stages {
            Some(stages) => StopSpec {
                stages: stages
                    .iter()
                    .filter(|s| **s != libc::SIGKILL)
                    .map(|s| (*s, self.stage_timeout))
                    .collect(),
            },
            None => StopSpec::new(self.stop_signal, self.stop_timeout),
        }
    }
}

/// Rewrites argv so clap can read it: a muinit-style `gantry --- a --- b` gets the `--` it needs.
pub fn preprocess_args(args: Vec<String>) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len() + 1);
    let mut in_command = false;
    for (i, arg) in args.into_iter().enumerate() {
        if i > 0 && !in_command {
            if arg == "--" {
                in_command = true;
            } else if arg == "---" {
                out.push("--".to_string());
                in_command = true;
            }
        }
        out.push(arg);
    }
    out
}

/// Splits `a x --- b y` into commands; `\---` stands for a literal `---` argument.
pub fn split_commands(words: &[String]) -> Vec<Vec<String>> {
    let mut commands = vec![Vec::new()];
    for w in words {
        if w == "---" {
            commands.push(Vec::new());
        } else if w == "\\---" {
            if let Some(last) = commands.last_mut() {
                last.push("---".to_string());
            }
        } else if let Some(last) = commands.last_mut() {
            last.push(w.clone());
        }
    }
    commands.retain(|c| !c.is_empty());
    commands
}

/// Expands `$VAR` and `${VAR}` from `lookup`; unset variables become empty, `$$` is a literal `$`.
pub fn expand_vars(text: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        match chars.peek() {
            Some('$') => {
                chars.next();
                out.push('$');
            }
            Some('{') => {
                chars.next();
                let name: String = chars.by_ref().take_while(|c| *c != '}').collect();
                out.push_str(&lookup(&name).unwrap_or_default());
            }
            Some(c) if c.is_ascii_alphabetic() || *c == '_' => {
                let mut name = String::new();
                while let Some(c) = chars
                    .peek()
                    .filter(|c| c.is_ascii_alphanumeric() || **c == '_')
                {
                    name.push(*c);
                    chars.next();
                }
                out.push_str(&lookup(&name).unwrap_or_default());
            }
            _ => out.push('$'),
        }
    }
    out
}

/// Builds one job per command.
pub fn jobs(args: &InitArgs, words: &[String]) -> Vec<JobSpec> {
    let stop = args.stop();
    split_commands(words)
        .into_iter()
        .enumerate()
        .map(|(i, mut cmd)| {
            if args.expand_env {
                for w in &mut cmd {
                    *w = expand_vars(w, |name| std::env::var(name).ok());
                }
            }
            let program = cmd.remove(0);
            let base = std::path::Path::new(&program)
                .file_name()
                .map_or_else(|| program.clone(), |n| n.to_string_lossy().into_owned());
            JobSpec {
                name: format!("{}#{}", base, i + 1),
                command: CommandSpec::new(program, cmd),
                can_fail: false,
                max_attempts: Attempts::Limited(1),
                restart_delay: crate::config::model::DEFAULT_RESTART_DELAY,
                one_time: true,
                controllable: false,
                stop: stop.clone(),
                watches: args.sentinel.specs(),
                readiness: Default::default(),
                origin: None,
            }
        })
        .collect()
}

/// Runs the flags-only mode.
pub fn run(args: &InitArgs, words: &[String]) -> i32 {
    let jobs = jobs(args, words);
    if jobs.is_empty() {
        eprintln!(
            "gantry: no command given (usage: gantry [OPTIONS] -- CMD [ARGS...] [--- CMD ...])"
        );
        return exit::USAGE;
    }
    // One command on a terminal owns the foreground, so Ctrl-C reaches it directly.
    let foreground = jobs.len() == 1 && nix::unistd::isatty(0).unwrap_or(false);
    // Checked before anything starts, so a mistyped URL is a usage error, not a wait forever.
    let deps = if args.wait.is_empty() {
        Vec::new()
    } else {
        match crate::probe_phase::dependencies_from_urls(&args.wait, ATTEMPT_TIMEOUT) {
            Ok(deps) => deps,
            Err(e) => {
                eprintln!("gantry: --wait: {e}");
                return exit::USAGE;
            }
        }
    };
    let wait_timeout = args.wait_timeout;
    let grace = args.stop().total();
    let group = args.forward_to == ForwardTo::Group;
    let forwarded = muinit::forwarded(args.forward_signals.as_deref());
    crate::runtime::run(
        Options::supervising(group, foreground).forwarding(forwarded),
        move |ctx, mut stops| async move {
            if let Err(e) = crate::probe_phase::wait_for(deps, wait_timeout, &mut stops).await {
                return e.code();
            }
            let defs = jobs.iter().map(JobDef::job).collect();
            let mut supervisor = Supervisor::over(&ctx, defs, stops);
            let opts = RunOptions {
                keep_running: false,
                stop_all_when_one_ends: true,
            };
            let report = supervisor.run_phase(Kind::Job, opts).await;
            let deadline = report.shutdown_at.unwrap_or_else(Instant::now) + grace;
            supervisor::reap_descendants(&ctx.reaper, deadline).await;
            report.exit_code()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn commands_split_on_triple_dash() {
        assert_eq!(
            split_commands(&words("--- a 1 --- b \\--- 2")),
            vec![words("a 1"), vec!["b".into(), "---".into(), "2".into()]]
        );
        assert!(split_commands(&[]).is_empty());
    }

    #[test]
    fn muinit_spelling_gets_a_double_dash() {
        assert_eq!(
            preprocess_args(words("gantry --stop-timeout 1s --- a --- b")),
            words("gantry --stop-timeout 1s -- --- a --- b")
        );
        assert_eq!(
            preprocess_args(words("gantry -- a --- b")),
            words("gantry -- a --- b")
        );
    }

    #[test]
    fn variables_expand_like_dinit() {
        let env = |n: &str| match n {
            "TIMEOUT" => Some("80".to_string()),
            "A_B" => Some("x".to_string()),
            _ => None,
        };
        assert_eq!(expand_vars("$TIMEOUT", env), "80");
        assert_eq!(expand_vars("${TIMEOUT}s", env), "80s");
        assert_eq!(expand_vars("$A_B-$NOPE.", env), "x-.");
        assert_eq!(expand_vars("cost: $$5 $", env), "cost: $5 $");
    }

    #[test]
    fn kill_stages_end_in_sigkill_implicitly() {
        let args = InitArgs {
            stop_signal: libc::SIGTERM,
            stop_timeout: Duration::from_secs(10),
            kill_stages: Some(vec![libc::SIGINT, libc::SIGTERM, libc::SIGKILL]),
            stage_timeout: Duration::from_secs(2),
            forward_signals: None,
            forward_to: ForwardTo::Group,
            expand_env: false,
            wait: Vec::new(),
            wait_timeout: None,
            sentinel: Default::default(),
        };
        assert_eq!(
            args.stop().stages,
            vec![
                (libc::SIGINT, Duration::from_secs(2)),
                (libc::SIGTERM, Duration::from_secs(2))
            ]
        );
    }
}
