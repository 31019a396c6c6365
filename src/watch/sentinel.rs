//! go-init-sentinel's command-line interface for the flags-only mode:
//! `gantry --watch PATH:SIGNAL [--watch ...] [--interval 10s] [--splay 5s] -- CMD`, and its single-dash
//! spelling (`-watch=PATH:SIGHUP`, `-interval=5s`, `-splay=2s`).
//!
//! Owns parsing those flags into [`WatchSpec`]s and the argv pre-pass. It must not parse the rest of
//! gantry's command line or start anything.
//!
//! One deliberate difference: go-init-sentinel always polls (default every 10 s). gantry uses inotify
//! unless `--interval` is given, in which case it polls at that interval, as sentinel users who set it on
//! purpose (network mounts) expect. Detection is by content either way, so sentinel's blind spot (a
//! same-size rewrite within the same second) is gone. `--splay` keeps its meaning: a random delay up to
//! this before each reload.

use std::ffi::OsStr;
use std::time::Duration;

use super::reload::WatchSpec;
use crate::config::{parse_duration, parse_interval};
use crate::signals;

/// One `--watch PATH:SIGNAL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentinelWatch {
    pub path: String,
    pub signal: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlagError {
    #[error("--watch {given:?}: expected PATH:SIGNAL, e.g. /certs/tls.pem:SIGHUP")]
    WatchSyntax { given: String },
    #[error("--watch {given:?}: {source}")]
    WatchSignal {
        given: String,
        #[source]
        source: signals::UnknownSignal,
    },
}

/// Parses `PATH:SIGNAL`, splitting at the last `:` so a path may contain colons.
pub fn parse_watch_flag(given: &str) -> Result<SentinelWatch, FlagError> {
    let (path, signal) = given
        .rsplit_once(':')
        .filter(|(p, s)| !p.is_empty() && !s.is_empty())
        .ok_or_else(|| FlagError::WatchSyntax {
            given: given.to_string(),
        })?;
    let signal = signals::parse(signal).map_err(|source| FlagError::WatchSignal {
        given: given.to_string(),
        source,
    })?;
    Ok(SentinelWatch {
        path: path.to_string(),
        signal,
    })
}

/// go-init-sentinel's flags, for `#[command(flatten)]` into the flags-only mode.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SentinelArgs {
    /// Watch PATH and send SIGNAL to the command when its content changes (repeatable). PATH may contain
    /// ':' (the last one separates the signal); SIGNAL is a name (HUP, SIGHUP) or a number.
    #[arg(long = "watch", value_name = "PATH:SIGNAL", value_parser = parse_watch_flag)]
    pub watch: Vec<SentinelWatch>,
    /// Poll the watched files at this interval instead of using inotify (e.g. 10s; longer than 0).
    #[arg(long, value_name = "DURATION", value_parser = parse_interval)]
    pub interval: Option<Duration>,
    /// Wait a random time up to this before each reload (e.g. 5s).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub splay: Option<Duration>,
}

impl SentinelArgs {
    /// One [`WatchSpec`] per `--watch`, signalling the command's process group.
    pub fn specs(&self) -> Vec<WatchSpec> {
        self.watch
            .iter()
            .map(|w| {
                let mut spec = WatchSpec::new(w.path.clone(), w.signal);
                spec.poll = self.interval;
                spec.splay = self.splay;
                spec
            })
            .collect()
    }
}

const SENTINEL_FLAGS: &[&str] = &["watch", "interval", "splay"];

/// Rewrites go-init-sentinel's single-dash flags (`-watch=X`, `-watch X`, `-interval=5s`, `-splay 2s`) to
/// gantry's double-dash ones, before clap sees argv. Stops at the first `--`: everything after it belongs
/// to the command. `argv[0]` and every other argument are left alone.
pub fn rewrite_single_dash<T, I>(argv: I) -> Vec<T>
where
    T: AsRef<OsStr> + From<String>,
    I: IntoIterator<Item = T>,
{
    let mut out = Vec::new();
    let mut iter = argv.into_iter();
    if let Some(arg0) = iter.next() {
        out.push(arg0);
    }
    let mut value_follows = false;
    while let Some(arg) = iter.next() {
        if arg.as_ref() == "--" {
            out.push(arg);
            out.extend(iter.by_ref());
            break;
        }
        if value_follows {
            value_follows = false;
            out.push(arg);
            continue;
        }
        let rewritten = arg.as_ref().to_str().and_then(|s| {
            let flag = s.strip_prefix('-').filter(|f| !f.starts_with('-'))?;
            let name = flag.split_once('=').map_or(flag, |(n, _)| n);
            SENTINEL_FLAGS.contains(&name).then(|| {
                value_follows = !flag.contains('=');
                T::from(format!("-{s}"))
            })
        });
        out.push(rewritten.unwrap_or(arg));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::ffi::OsString;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn watch_flag_splits_at_the_last_colon() {
        assert_eq!(
            parse_watch_flag("/certs/tls.pem:SIGHUP"),
            Ok(SentinelWatch {
                path: "/certs/tls.pem".into(),
                signal: libc::SIGHUP
            })
        );
        assert_eq!(
            parse_watch_flag("/mnt/c:/weird:name:12").map(|w| (w.path, w.signal)),
            Ok(("/mnt/c:/weird:name".into(), libc::SIGUSR2))
        );
        assert_eq!(
            parse_watch_flag("hup.conf:hup").map(|w| w.signal),
            Ok(libc::SIGHUP)
        );
        assert!(matches!(
            parse_watch_flag("/certs/tls.pem"),
            Err(FlagError::WatchSyntax { .. })
        ));
        assert!(matches!(
            parse_watch_flag(":HUP"),
            Err(FlagError::WatchSyntax { .. })
        ));
        assert!(matches!(
            parse_watch_flag("/a:SIGNOPE"),
            Err(FlagError::WatchSignal { .. })
        ));
    }

    #[test]
    fn sentinel_durations_use_the_config_parser_and_the_interval_is_not_zero() {
        let parse = |args: &[&str]| {
            let mut argv = vec!["gantry"];
            argv.extend_from_slice(args);
            argv.extend_from_slice(&["--", "x"]);
            Cli::try_parse_from(argv)
        };
        let cli = parse(&["--interval", "1m30s", "--splay", "0"]).unwrap();
        assert_eq!(cli.sentinel.interval, Some(Duration::from_secs(90)));
        assert_eq!(cli.sentinel.splay, Some(Duration::ZERO));
        let err = parse(&["--interval", "0s"]).unwrap_err().to_string();
        assert!(
            err.contains("--interval") && err.contains("longer than 0"),
            "{err}"
        );
        let err = parse(&["--splay", "99999999999999999999s"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--splay") && err.contains("too long"), "{err}");
    }

    #[test]
    fn single_dash_spelling_is_rewritten_before_the_double_dash_only() {
        let argv = os(&[
            "gantry",
            "-watch=/etc/nginx/nginx.conf:SIGHUP",
            "-watch",
            "/certs/tls.pem:HUP",
            "-interval=5s",
            "-splay",
            "2s",
            "-v",
            "--",
            "app",
            "-watch=x:HUP",
            "-splay",
        ]);
        assert_eq!(
            rewrite_single_dash(argv),
            os(&[
                "gantry",
                "--watch=/etc/nginx/nginx.conf:SIGHUP",
                "--watch",
                "/certs/tls.pem:HUP",
                "--interval=5s",
                "--splay",
                "2s",
                "-v",
                "--",
                "app",
                "-watch=x:HUP",
                "-splay",
            ])
        );
        let untouched = os(&["gantry", "--watch=a:HUP", "-watchdog", "--", "-watch"]);
        assert_eq!(rewrite_single_dash(untouched.clone()), untouched);
        // Works on the `Vec<String>` the flags-only mode's own pre-pass takes, too.
        let strings: Vec<String> = vec!["gantry".into(), "-splay=1s".into()];
        assert_eq!(rewrite_single_dash(strings), vec!["gantry", "--splay=1s"]);
    }

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        sentinel: SentinelArgs,
        #[arg(last = true)]
        command: Vec<String>,
    }

    #[test]
    fn sentinel_command_line_becomes_watch_specs() {
        let argv = rewrite_single_dash(os(&[
            "gantry",
            "-watch=/certs/stunnel.pem:SIGHUP",
            "-watch=/etc/app.conf:USR2",
            "-interval=5s",
            "-splay=2s",
            "--",
            "/usr/bin/stunnel",
        ]));
        let cli = Cli::try_parse_from(argv).unwrap();
        let specs = cli.sentinel.specs();
        assert_eq!(specs.len(), 2);
        assert_eq!(specs[0].path, "/certs/stunnel.pem");
        assert_eq!(specs[1].signal, libc::SIGUSR2);
        assert_eq!(specs[1].poll, Some(Duration::from_secs(5)));
        assert_eq!(specs[0].splay, Some(Duration::from_secs(2)));
        assert_eq!(cli.command, vec!["/usr/bin/stunnel"]);

        let inotify = Cli::try_parse_from(os(&["gantry", "--watch", "/a:HUP", "--", "x"])).unwrap();
        assert_eq!(
            inotify.sentinel.specs()[0].poll,
            None,
            "no --interval: inotify"
        );
    }
}
