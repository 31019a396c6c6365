//! The `gantry` binary: parse the command line, set up logging, dispatch, exit with the mode's code.
//!
//! Interim wiring on the probes branch: only `gantry wait` so far; the full CLI lands with the
//! foundation work.

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "gantry", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Wait until every dependency (given as URLs) is ready, then exec CMD or exit 0.
    Wait(gantry::wait_cmd::WaitArgs),
}

fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Wait(args) => gantry::wait_cmd::run(args),
    };
    std::process::exit(code);
}
