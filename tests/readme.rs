//! The README's example commands work in a shell with only `PATH` set (as in most containers, and
//! `sudo -i` or cron shells: no `USER`, no `HOME`).
//!
//! The commands are those of the README's fenced blocks marked ```` ```sh test ````: each line is run
//! from the repository root with `env -i PATH=$PATH sh -c LINE` and must exit 0, under the kill-on-
//! timeout guard. `cargo run --` is replaced by this build's gantry binary, which is what it runs (and
//! running cargo from inside `cargo test` would wait on the build lock or rebuild).

mod support;

use std::path::Path;
use std::process::Command;

use support::*;

/// The lines of every ```` ```sh test ```` block, with their line numbers in the README.
fn tested_commands(readme: &str) -> Vec<(usize, String)> {
    let mut commands = Vec::new();
    let mut in_block = false;
    for (n, line) in readme.lines().enumerate() {
        let trimmed = line.trim();
        if let Some(info) = trimmed.strip_prefix("```") {
            if in_block {
                in_block = false;
            } else {
                let words: Vec<&str> = info.split_whitespace().collect();
                in_block = words == ["sh", "test"];
            }
            continue;
        }
        if in_block && !trimmed.is_empty() && !trimmed.starts_with('#') {
            commands.push((n + 1, trimmed.to_string()));
        }
    }
    commands
}

#[test]
fn the_marker_finds_the_commands_of_marked_blocks_only() {
    let text = "```sh test\na --x\n\n# comment\nb\n```\n```sh\nc\n```\n```\nd\n```\n";
    assert_eq!(
        tested_commands(text),
        [(2, "a --x".to_string()), (5, "b".to_string())]
    );
}

#[test]
fn the_readme_examples_run_with_only_path_set() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let commands = tested_commands(&readme);
    // The set-up command, the render example and `gantry version` at least.
    for expected in ["up -c examples/hello", "renderfiles", "version"] {
        assert!(
            commands.iter().any(|(_, c)| c.contains(expected)),
            "no marked README command contains {expected:?}: {commands:?}"
        );
    }
    let path = std::env::var("PATH").unwrap_or_default();
    for (line, command) in &commands {
        let command = command.replace("cargo run --", &GANTRY);
        let mut cmd = Command::new("env");
        cmd.args(["-i", &format!("PATH={path}"), "sh", "-c", &command])
            .current_dir(root);
        let out = run(cmd);
        assert_eq!(
            out.code,
            Some(0),
            "README.md:{line}: `{command}` with only PATH set\nstdout:\n{}\nstderr:\n{}",
            out.stdout,
            out.stderr
        );
    }
}
