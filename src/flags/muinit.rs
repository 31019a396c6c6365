//! muinit's command line in the flags-only mode: `gantry [-k SIGS] [-t SECS] [-s SIGS] --- CMD
//! ARGS... [--- CMD ARGS...]`.
//!
//! muinit's options are the flags-only mode's own short options (`super::InitArgs`): `-k` is
//! `--kill-stages` (signals sent in turn, each followed by the stage timeout; SIGKILL ends the
//! list), `-t` is `--stage-timeout` (bare numbers are seconds), and `-s` is `--forward-signals`. The
//! commands follow `---` as muinit's do (`super::preprocess_args`), and the exit status is that of
//! the first command that failed, 0 if none did (muinit's rule, which the supervisor's report keeps).
//!
//! This module owns what `-s` means: only the listed signals are forwarded; every other one that
//! gantry would forward is dropped (logged at debug level). SIGTERM and SIGINT are not forwarded in
//! any case but stop the commands (their stop stages), and SIGCHLD drives the reaper, as always.

/// The signals the signal loop forwards, as `runtime::Options::forwarded` wants them (bit N for
/// signal N): the ones listed, or all without a list.
pub fn forwarded(only: Option<&[i32]>) -> u128 {
    match only {
        None => u128::MAX,
        Some(list) => list
            .iter()
            .filter_map(|&s| u32::try_from(s).ok())
            .fold(0, |mask, s| mask | 1u128.checked_shl(s).unwrap_or(0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flags::InitArgs;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        init: InitArgs,
    }

    #[test]
    fn muinit_short_options_read_as_the_long_ones() {
        let cli = Cli::try_parse_from(["gantry", "-k", "15,9", "-t", "1", "-s", "1,10"]).unwrap();
        assert_eq!(cli.init.kill_stages, Some(vec![15, 9]));
        assert_eq!(cli.init.stage_timeout, std::time::Duration::from_secs(1));
        assert_eq!(cli.init.forward_signals, Some(vec![1, 10]));
        assert!(Cli::try_parse_from(["gantry", "-s", "1,NOPE"]).is_err());
    }

    #[test]
    fn only_the_listed_signals_are_forwarded() {
        let mask = forwarded(Some(&[1, 10]));
        assert_eq!(mask, (1 << 1) | (1 << 10));
        assert_eq!(forwarded(None), u128::MAX);
        assert_eq!(forwarded(Some(&[64])), 1 << 64);
    }
}
