//! The `gantry` binary. Temporary wiring on the `watch` branch: only `gantry sidecar` is dispatched; the
//! real command line (and the flags-only mode's `--watch`, see `watch::sentinel`) comes with the CLI.

use clap::Parser;

#[derive(clap::Parser)]
#[command(name = "gantry", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Reload a process in a shared PID namespace when its configuration changes.
    Sidecar(gantry::sidecar::SidecarArgs),
}

fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::INFO)
        .init();
    let argv = gantry::watch::sentinel::rewrite_single_dash(std::env::args_os());
    let cli = Cli::parse_from(argv);
    let code = match cli.command {
        Command::Sidecar(args) => gantry::sidecar::run(args),
    };
    std::process::exit(code);
}
