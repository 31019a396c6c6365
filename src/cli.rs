//! The command line: every mode, its flags, and logging set-up.
//!
//! Raw flags only: each mode's module turns its arguments into what it runs. `main.rs` parses
//! ([`parse_from`]), calls [`init_logging`], and dispatches. (How a mode prints its result to stdout,
//! quietly when the reader went away, is `exit::print_stdout`.)
//!
//! Global options (`--log-format`) may be written before or after the subcommand; `-c DIR` may be
//! written before `up`, `check` or `renderfiles` as mittnite's global `-c` is. The flags-only
//! mode's options may not be combined with a subcommand: [`parse_from`] rejects `gantry
//! --stop-timeout 5s up` rather than ignore the option.
//!
//! The flags-only mode is an init that stays resident next to the container's command, so its
//! start-up touches as little code as it can: a command line that names no subcommand and asks for
//! no help or version is parsed by [`FlagsCli`] (its options and `-- CMD` only), without building
//! the subcommands' argument trees. Anything else, and any command line [`FlagsCli`] rejects, goes
//! through the whole [`Cli`], whose help and errors are the ones users see.

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::flags::InitArgs;
use crate::renderfiles_cmd::RenderfilesArgs;
use crate::up::{CheckArgs, UpArgs};
use crate::wait_cmd::WaitArgs;

/// A readiness-gated boot orchestrator and init for containers.
#[derive(Debug, Parser)]
#[command(
    name = "gantry",
    version,
    override_usage = "gantry [OPTIONS] [-- <CMD>...]\n       gantry [--log-format <LOG_FORMAT>] [-c <DIR>] <COMMAND>",
    after_help = "Flags-only mode (an init like tini):\n  gantry [OPTIONS] -- CMD [ARGS...] [--- CMD [ARGS...]]...\n\nExit codes: the deciding job's code, 128+N if it died of signal N, 126/127 if it could not be\nexecuted / was not found; 2 usage, 65 render failed, 70 internal error, 71 boot job failed,\n75 probe timeout, 78 configuration error."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub init: InitArgs,

    /// Log format for gantry's own messages (job output is never reformatted).
    #[arg(long, value_enum, global = true, env = "GANTRY_LOG_FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// The command(s) to run in flags-only mode, after `--`.
    #[arg(last = true, value_name = "CMD")]
    pub cmd: Vec<String>,

    /// Configuration directory of `up`, `check` and `renderfiles`, written before the subcommand as
    /// with mittnite (`gantry -c DIR up`); the subcommand's own `-c` wins.
    // Not a clap `global` argument: that would share the id `config_dir` with `sidecar`'s
    // `--config-dir` (a list of strings), and clap matches globals by id.
    #[arg(short = 'c', long = "config-dir", id = CONFIG_DIR_ID, value_name = "DIR")]
    pub config_dir: Option<std::path::PathBuf>,
}

/// The id of the top-level `-c/--config-dir`.
const CONFIG_DIR_ID: &str = "top_level_config_dir";

/// The flags-only mode's command line alone: [`Cli`] without its subcommands.
#[derive(Debug, Parser)]
#[command(name = "gantry", disable_help_flag = true, disable_version_flag = true)]
pub struct FlagsCli {
    #[command(flatten)]
    pub init: InitArgs,

    /// As [`Cli::log_format`].
    #[arg(long, value_enum, env = "GANTRY_LOG_FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[arg(last = true, value_name = "CMD")]
    pub cmd: Vec<String>,
}

/// Whether `args` may be the flags-only mode's: no argument before the command (`--` or `---`) is
/// a subcommand's name or asks for help or the version. A false "yes" costs nothing (the whole
/// [`Cli`] parses what [`FlagsCli`] rejects); a "no" only costs start-up memory.
pub fn flags_only(args: &[String]) -> bool {
    args.iter()
        .skip(1)
        .take_while(|a| *a != "--" && *a != "---")
        .all(|a| {
            !Command::has_subcommand(a)
                && !matches!(a.as_str(), "-h" | "--help" | "-V" | "--version")
        })
}

/// Parses the command line, exiting with clap's message and code 2 on a usage error (or 0 after
/// `--help` / `--version`).
pub fn parse_from(args: Vec<String>) -> Cli {
    if flags_only(&args) {
        if let Ok(flags) = FlagsCli::try_parse_from(&args) {
            return Cli {
                command: None,
                init: flags.init,
                log_format: flags.log_format,
                cmd: flags.cmd,
                config_dir: None,
            };
        }
    }
    let mut command = Cli::command();
    let matches = command
        .try_get_matches_from_mut(args)
        .unwrap_or_else(|e| e.exit());
    let top_level_dir = matches.value_source(CONFIG_DIR_ID) == Some(ValueSource::CommandLine);
    if top_level_dir
        && !matches!(
            matches.subcommand_name(),
            Some("up" | "check" | "renderfiles")
        )
    {
        let what = matches
            .subcommand_name()
            .map_or_else(|| "the flags-only mode".to_string(), |n| format!("'{n}'"));
        command
            .error(
                clap::error::ErrorKind::ArgumentConflict,
                format!(
                    "-c/--config-dir before the subcommand is for up, check and renderfiles, \
                     not {what}"
                ),
            )
            .exit();
    }
    if let Some((name, _)) = matches.subcommand() {
        if let Some(flag) = flags_only_option_given(&command, &matches) {
            command
                .error(
                    clap::error::ErrorKind::ArgumentConflict,
                    format!(
                        "{flag} is an option of the flags-only mode (gantry [OPTIONS] -- CMD) and \
                         cannot be used with the subcommand '{name}'"
                    ),
                )
                .exit();
        }
    }
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.format(&mut command).exit());
    // `gantry -c DIR up`: the directory goes to the subcommand, unless it has its own `-c`.
    if let (Some(dir), Some((_, sub))) = (cli.config_dir.clone(), matches.subcommand()) {
        if sub.value_source("config_dir") != Some(ValueSource::CommandLine) {
            match &mut cli.command {
                Some(Command::Up(args)) => args.config_dir = dir,
                Some(Command::Check(args)) => args.config_dir = dir,
                Some(Command::Renderfiles(args)) => args.config_dir = dir,
                _ => {}
            }
        }
    }
    cli
}

/// The first option of the flags-only mode given on the command line, as written in help
/// (`--stop-timeout`). Global options are not among them: they belong to every mode.
fn flags_only_option_given(command: &clap::Command, matches: &clap::ArgMatches) -> Option<String> {
    command
        .get_arguments()
        .filter(|arg| !arg.is_global_set())
        .filter(|arg| {
            let id = arg.get_id().as_str();
            id != "help" && id != "version" && id != CONFIG_DIR_ID
        })
        .find(|arg| matches.value_source(arg.get_id().as_str()) == Some(ValueSource::CommandLine))
        .map(|arg| match (arg.get_long(), arg.get_short()) {
            (Some(long), _) => format!("--{long}"),
            (None, Some(short)) => format!("-{short}"),
            (None, None) => "-- CMD".to_string(),
        })
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the full orchestrator: render, boot, probe, run, watch.
    Up(UpArgs),
    /// Validate the configuration and print the plan.
    Check(CheckArgs),
    /// Render every `file` block, then exec CMD (which takes gantry's PID).
    Renderfiles(RenderfilesArgs),
    /// Wait until every dependency (given as URLs) is ready, then exec CMD, or exit 0.
    Wait(WaitArgs),
    /// Print the version, the git commit and the probe drivers compiled in.
    Version,
    /// Print a shell completion script: `gantry completions bash > /etc/bash_completion.d/gantry`.
    Completions {
        #[arg(value_enum)]
        shell: crate::about::Shell,
    },
    /// Print the man page, gantry(1), in roff: `gantry man > /usr/share/man/man1/gantry.1`;
    /// `gantry man up` prints gantry-up(1).
    Man {
        /// A subcommand whose page to print.
        #[arg(value_name = "COMMAND")]
        command: Option<String>,
    },
    /// Reload a process in a shared PID namespace when its configuration changes.
    Sidecar(crate::sidecar::SidecarArgs),
    /// Control a running `gantry up --api` (mittnitectl's commands; `gantry ctl --help`).
    ///
    /// Its arguments are parsed by `ctl::CtlCli` only when `ctl` runs, so that the other modes do
    /// not build its command tree.
    #[command(disable_help_flag = true)]
    Ctl {
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "ARGS"
        )]
        args: Vec<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The log format `GANTRY_LOG_FORMAT` asks for (text when unset or unknown), for a mode that does
/// not parse the command line with clap (dinit's form).
pub fn log_format_from_env() -> LogFormat {
    std::env::var("GANTRY_LOG_FORMAT")
        .ok()
        .and_then(|v| LogFormat::from_str(v.trim(), true).ok())
        .unwrap_or(LogFormat::Text)
}

/// Sets up `tracing` on stderr. The level comes from `GANTRY_LOG` (`error`, `warn`, `info`, `debug`,
/// `trace`), else `default_level`.
///
/// Only gantry's own events are logged (targets `gantry` and `gantry_probes`), at any level. The
/// probe drivers (lapin and amq-protocol, mysql_async, tokio-postgres, mongodb, lettre, reqwest,
/// hyper, rustls, ...) trace their protocol exchanges, credentials included, and log every failed
/// connection of their own; what gantry needs from them reaches the log as the probe's reason, one
/// line per probe and state change, already scrubbed of secrets.
pub fn init_logging(format: LogFormat, default_level: tracing::Level) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let level = std::env::var("GANTRY_LOG")
        .ok()
        .and_then(|v| v.trim().parse::<tracing::Level>().ok())
        .unwrap_or(default_level);
    // Everything else is off: an allow-list, so a driver added later cannot leak either.
    let ours = tracing_subscriber::filter::Targets::new()
        .with_target("gantry", level)
        .with_target("gantry_probes", level);
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(nix::unistd::isatty(2).unwrap_or(false))
            .finish()
            .with(ours)
            .try_init(),
        LogFormat::Json => builder.json().finish().with(ours).try_init(),
    };
}
