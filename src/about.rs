//! What gantry says about itself: `gantry version` (the git commit it was built from and the probe
//! drivers compiled in), `gantry completions SHELL` and `gantry man`.
//!
//! The completion scripts and the man page are generated from the same clap command tree that parses
//! the command line (`cli::Cli`), with `gantry ctl`'s own tree (`ctl::CtlCli`) grafted in place of the
//! raw argument list it is parsed from, so that they cannot fall out of date.

use clap::{CommandFactory, ValueEnum};

/// A shell `gantry completions` writes a script for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// The probe drivers that a cargo feature can leave out, and whether this build has each. (tcp, exec
/// and file probes need no driver and are always in.)
pub fn probe_drivers() -> [(&'static str, bool); 7] {
    [
        ("http", cfg!(feature = "http")),
        ("mysql", cfg!(feature = "mysql")),
        ("postgres", cfg!(feature = "postgres")),
        ("redis", cfg!(feature = "redis")),
        ("amqp", cfg!(feature = "amqp")),
        ("mongodb", cfg!(feature = "mongodb")),
        ("smtp", cfg!(feature = "smtp")),
    ]
}

/// The git commit gantry was built from (`build.rs`), or why there is none.
pub fn commit() -> &'static str {
    env!("GANTRY_GIT_COMMIT")
}

/// `gantry version`'s text.
pub fn version_text() -> String {
    let drivers: Vec<&str> = probe_drivers()
        .iter()
        .filter(|(_, on)| *on)
        .map(|(name, _)| *name)
        .collect();
    let left_out: Vec<&str> = probe_drivers()
        .iter()
        .filter(|(_, on)| !*on)
        .map(|(name, _)| *name)
        .collect();
    let libc = if cfg!(target_env = "musl") {
        "musl (static)"
    } else if cfg!(target_env = "gnu") {
        "glibc"
    } else {
        "other"
    };
    let mut text = format!(
        "gantry {}\ncommit: {}\nprobe drivers: {}\n",
        env!("CARGO_PKG_VERSION"),
        commit(),
        if drivers.is_empty() {
            "none".to_string()
        } else {
            drivers.join(" ")
        },
    );
    if !left_out.is_empty() {
        text.push_str(&format!("left out: {}\n", left_out.join(" ")));
    }
    text.push_str(&format!("libc: {libc}\n"));
    text
}

/// The full command tree, `ctl`'s subcommands included.
fn command() -> clap::Command {
    crate::cli::Cli::command().mut_subcommand("ctl", |ctl| {
        let about = ctl.get_about().cloned();
        let mut tree = crate::ctl::CtlCli::command().name("ctl");
        if let Some(about) = about {
            tree = tree.about(about);
        }
        tree
    })
}

/// The completion script for `shell`.
pub fn completions(shell: Shell) -> String {
    let mut cmd = command();
    let mut out = Vec::new();
    match shell {
        Shell::Bash => {
            clap_complete::generate(clap_complete::Shell::Bash, &mut cmd, "gantry", &mut out)
        }
        Shell::Zsh => {
            clap_complete::generate(clap_complete::Shell::Zsh, &mut cmd, "gantry", &mut out)
        }
        Shell::Fish => {
            clap_complete::generate(clap_complete::Shell::Fish, &mut cmd, "gantry", &mut out)
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The man page in roff: gantry(1), or gantry-SUBCOMMAND(1) (`None` if there is no such subcommand).
pub fn man_page(subcommand: Option<&str>) -> Option<std::io::Result<String>> {
    let mut page = command();
    if let Some(name) = subcommand {
        // clap names are `&'static str` (without its `string` feature); this runs once per process.
        let full: &'static str = Box::leak(format!("gantry-{name}").into_boxed_str());
        page = page.find_subcommand(name)?.clone().name(full);
    }
    let mut out = Vec::new();
    Some(
        clap_mangen::Man::new(page)
            .render(&mut out)
            .map(|()| String::from_utf8_lossy(&out).into_owned()),
    )
}

/// `gantry completions SHELL`: prints the script; returns the exit code.
pub fn print_completions(shell: Shell) -> i32 {
    crate::exit::print_stdout(&completions(shell), 0)
}

/// `gantry man [SUBCOMMAND]`: prints the page; returns the exit code.
pub fn print_man_page(subcommand: Option<&str>) -> i32 {
    match man_page(subcommand) {
        Some(Ok(page)) => crate::exit::print_stdout(&page, 0),
        None => {
            crate::exit::print_stderr(&format!(
                "gantry: no subcommand {:?}; `gantry man` lists them\n",
                subcommand.unwrap_or_default()
            ));
            crate::exit::USAGE
        }
        Some(Err(e)) => {
            crate::exit::print_stderr(&format!("gantry: cannot render the man page: {e}\n"));
            crate::exit::INTERNAL
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_names_the_commit_and_every_driver_compiled_in() {
        let text = version_text();
        assert!(text.starts_with(&format!("gantry {}\n", env!("CARGO_PKG_VERSION"))));
        assert!(text.contains(&format!("commit: {}\n", commit())));
        for (name, on) in probe_drivers() {
            let line = text
                .lines()
                .find(|l| l.starts_with(if on { "probe drivers:" } else { "left out:" }))
                .unwrap_or_default();
            assert!(
                line.split_whitespace().any(|w| w == name),
                "{name} in {text}"
            );
        }
    }
}
