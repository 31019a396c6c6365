//! `gantry renderfiles -c DIR [--dry-run | --diff] [--] [CMD ARGS...]`: render every `file` block,
//! then become CMD.
//!
//! Owns the one-shot mode (the render phase of `up` is `render::render_phase`). CMD is started with
//! `exec`, not as a child: it takes gantry's PID (PID 1 in a container), receives signals directly and
//! its exit code is the container's. That is the point of this mode, and why it needs no supervisor.
//! If anything fails to render, CMD never runs.
//!
//! Exit codes: CMD's own once it runs; 65 when a template failed to render or a file could not be
//! written; 78 when the configuration is invalid; 126 when CMD cannot be executed; 127 when it is not
//! found. `--dry-run` and `--diff` write nothing and run nothing; `--dry-run` exits 0, `--diff` exits 0
//! when every file is up to date and 1 when one would change.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use crate::config;
use crate::exit;
use crate::render::{self, FileSpec};

/// Arguments of `gantry renderfiles`.
#[derive(Debug, Clone, clap::Args)]
pub struct RenderfilesArgs {
    /// Directory with the *.hcl configuration; its `file` blocks are rendered.
    #[arg(short = 'c', long = "config-dir", env = "GANTRY_CONFIG_DIR", default_value = config::DEFAULT_CONFIG_DIR)]
    pub config_dir: PathBuf,
    /// Print what would be written to stdout; write nothing, run nothing.
    #[arg(long, conflicts_with = "diff")]
    pub dry_run: bool,
    /// Print a unified diff against the files on disk; write nothing, run nothing; exit 1 when a file
    /// would change.
    #[arg(long)]
    pub diff: bool,
    /// The command to exec once every file is written (optional).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<OsString>,
}

/// `gantry renderfiles`: load the configuration, then [`run`].
pub fn main(args: &RenderfilesArgs) -> i32 {
    match config::load(&args.config_dir) {
        // Other blocks (jobs, probes) are validated but not needed here.
        Ok(plan) => run(args, &plan.files),
        Err(errors) => {
            eprint!("gantry: {errors}");
            exit::CONFIG
        }
    }
}

/// Renders `specs`, then prints (`--dry-run`, `--diff`) or writes them and execs the command.
/// Returns only when something failed or there is no command to exec.
pub fn run(args: &RenderfilesArgs, specs: &[FileSpec]) -> i32 {
    let env = render::process_env();
    let rendered = match render::render_all(specs, &env) {
        Ok(r) => r,
        Err(failed) => {
            render::report_render_errors(&failed);
            return exit::RENDER_FAILED;
        }
    };
    if args.dry_run || args.diff {
        let mut out = std::io::stdout().lock();
        // `--diff` exits 1 when a file would change, as `diff` and `kubectl diff` do, so that a
        // check can tell whether the files on disk are up to date.
        let printed = if args.dry_run {
            render::dry_run(&rendered, &mut out).map(|()| 0)
        } else {
            render::diff(&rendered, &mut out).map(i32::from)
        };
        return match printed.and_then(|code| out.flush().map(|()| code)) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("gantry: cannot print: {e}");
                exit::INTERNAL
            }
        };
    }
    if let Err(e) = render::write_all(&rendered) {
        eprintln!("gantry: {e}");
        return exit::RENDER_FAILED;
    }
    match args.command.split_first() {
        None => 0,
        Some((program, rest)) => exit::exec(program, rest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Harness {
        #[command(flatten)]
        args: RenderfilesArgs,
    }

    fn parse(argv: &[&str]) -> RenderfilesArgs {
        let mut full = vec!["renderfiles"];
        full.extend_from_slice(argv);
        Harness::try_parse_from(full).expect("valid arguments").args
    }

    #[test]
    fn command_may_follow_with_or_without_double_dash() {
        let a = parse(&["-c", "/cfg", "sleep", "10"]);
        assert_eq!(a.config_dir, PathBuf::from("/cfg"));
        assert_eq!(a.command, vec![OsString::from("sleep"), "10".into()]);
        let b = parse(&["--", "nginx", "-g", "daemon off;"]);
        assert_eq!(
            b.command,
            vec![OsString::from("nginx"), "-g".into(), "daemon off;".into()]
        );
    }

    #[test]
    fn flags_after_the_command_belong_to_the_command() {
        let a = parse(&["--diff", "echo", "--dry-run"]);
        assert!(a.diff && !a.dry_run);
        assert_eq!(a.command, vec![OsString::from("echo"), "--dry-run".into()]);
    }

    #[test]
    fn dry_run_and_diff_exclude_each_other() {
        let r = Harness::try_parse_from(["renderfiles", "--dry-run", "--diff"]);
        assert!(r.is_err());
    }

    #[test]
    fn render_error_is_exit_65_and_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ok = dir.path().join("ok");
        let specs = [
            FileSpec::new(&ok, render::Source::Content("fine".into())),
            FileSpec::new(
                dir.path().join("bad"),
                render::Source::Content("{{ Nope }}".into()),
            ),
        ];
        let args = parse(&["/bin/sh", "-c", "exit 0"]);
        assert_eq!(run(&args, &specs), exit::RENDER_FAILED);
        assert!(!ok.exists());
        assert_eq!(render::render_phase(&specs), Err(exit::PhaseError::Render));
        assert!(!ok.exists());
    }

    #[test]
    fn without_a_command_it_renders_and_returns_zero() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("out");
        let specs = [FileSpec::new(&target, render::Source::Content("x".into()))];
        assert_eq!(run(&parse(&[]), &specs), 0);
        assert_eq!(std::fs::read_to_string(&target).expect("written"), "x");
    }

    #[test]
    fn dry_run_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("out");
        let specs = [FileSpec::new(&target, render::Source::Content("x".into()))];
        assert_eq!(run(&parse(&["--dry-run"]), &specs), 0);
        assert!(!target.exists());
    }
}
