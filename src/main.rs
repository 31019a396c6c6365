//! The `gantry` binary: parse, set up logging, dispatch, exit with the mode's code.
//!
//! dinit's command line (`gantry -r CMD ... -r CMD ...`, `gantry -submit ...`) is told apart by its
//! first argument and handed whole to `flags::dinit`; everything else is parsed by `cli`.

use std::process::ExitCode;

use gantry::cli::{self, Command};
use gantry::{flags, renderfiles_cmd, up, wait_cmd};

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    if flags::dinit::is_dinit_form(&argv) {
        cli::init_logging(cli::log_format_from_env(), tracing::Level::WARN);
        return exit_code(flags::dinit::main(&argv));
    }
    let args = flags::preprocess_args(gantry::watch::sentinel::rewrite_single_dash(argv));
    let cli = cli::parse_from(args);
    let code = match &cli.command {
        Some(Command::Up(args)) => {
            cli::init_logging(cli.log_format, tracing::Level::INFO);
            up::up(args)
        }
        Some(Command::Check(args)) => {
            cli::init_logging(cli.log_format, tracing::Level::WARN);
            up::check(args)
        }
        Some(Command::Sidecar(args)) => {
            cli::init_logging(cli.log_format, tracing::Level::INFO);
            gantry::sidecar::run(args.clone())
        }
        Some(Command::Renderfiles(args)) => {
            cli::init_logging(cli.log_format, tracing::Level::WARN);
            renderfiles_cmd::main(args)
        }
        Some(Command::Wait(args)) => {
            cli::init_logging(cli.log_format, tracing::Level::INFO);
            wait_cmd::run(args)
        }
        Some(Command::Ctl { args }) => {
            cli::init_logging(cli.log_format, tracing::Level::WARN);
            gantry::ctl::main(args)
        }
        Some(Command::Version) => gantry::exit::print_stdout(&gantry::about::version_text(), 0),
        Some(Command::Completions { shell }) => gantry::about::print_completions(*shell),
        Some(Command::Man { command }) => gantry::about::print_man_page(command.as_deref()),
        None => {
            // Quiet by default, like tini: an init should not add to the container's log.
            cli::init_logging(cli.log_format, tracing::Level::WARN);
            flags::run(&cli.init, &cli.cmd)
        }
    };
    exit_code(code)
}

fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(code.clamp(0, 255) as u8)
}
