//! Signal names and numbers.
//!
//! Owns the translation between what a user writes (`hup`, `SIGHUP`, `1`, `RTMIN+3`) and the raw signal
//! number the kernel wants. Real-time signals have no `nix::Signal` variant, so gantry passes signals
//! around as plain `i32` numbers and only turns them into names for people. Sending signals lives in
//! `sys`, not here.

use std::fmt;

/// A name a user wrote that is not a signal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown signal {given:?} (expected a name such as HUP or SIGHUP, or a number 1-{max})")]
pub struct UnknownSignal {
    pub given: String,
    pub max: i32,
}

const NAMES: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("IOT", libc::SIGIOT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("POLL", libc::SIGPOLL),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// The first real-time signal as names count it: 34, glibc's `SIGRTMIN` (the kernel's 32 and 33 are
/// reserved by glibc), which is what systemd (`SIGRTMIN+3` = 37), shells and `kill -l` mean. It is a
/// constant rather than the C library's value because musl reserves one more (its `SIGRTMIN` is
/// 35): the static musl build must read `SIGRTMIN+3` as the same signal as the glibc build does.
pub fn rtmin() -> i32 {
    34
}

/// The last real-time signal.
pub fn rtmax() -> i32 {
    libc::SIGRTMAX()
}

/// Parses `hup`, `SIGHUP`, `sighup`, `1`, `RTMIN`, `SIGRTMIN+2`, `RTMAX-1`.
pub fn parse(given: &str) -> Result<i32, UnknownSignal> {
    let unknown = || UnknownSignal {
        given: given.to_string(),
        max: rtmax(),
    };
    let s = given.trim();
    if let Ok(n) = s.parse::<i32>() {
        return if (1..=rtmax()).contains(&n) {
            Ok(n)
        } else {
            Err(unknown())
        };
    }
    let upper = s.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(&(_, n)) = NAMES.iter().find(|(name, _)| *name == bare) {
        return Ok(n);
    }
    let rt = |base: i32, rest: &str| -> Option<i32> {
        let n = if rest.is_empty() {
            base
        } else if let Some(off) = rest.strip_prefix('+') {
            base.checked_add(off.parse::<i32>().ok()?)?
        } else if let Some(off) = rest.strip_prefix('-') {
            base.checked_sub(off.parse::<i32>().ok()?)?
        } else {
            return None;
        };
        (rtmin()..=rtmax()).contains(&n).then_some(n)
    };
    if let Some(rest) = bare.strip_prefix("RTMIN") {
        return rt(rtmin(), rest).ok_or_else(unknown);
    }
    if let Some(rest) = bare.strip_prefix("RTMAX") {
        return rt(rtmax(), rest).ok_or_else(unknown);
    }
    Err(unknown())
}

/// A signal number shown the way people write it: `SIGHUP`, `SIGRTMIN+3`, or the bare number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Name(pub i32);

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        if let Some((name, _)) = NAMES.iter().find(|(_, v)| *v == n) {
            return write!(f, "SIG{name}");
        }
        if (rtmin()..=rtmax()).contains(&n) {
            return match n - rtmin() {
                0 => write!(f, "SIGRTMIN"),
                off => write!(f, "SIGRTMIN+{off}"),
            };
        }
        write!(f, "signal {n}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_spelling() {
        assert_eq!(parse("hup"), Ok(libc::SIGHUP));
        assert_eq!(parse("SIGHUP"), Ok(libc::SIGHUP));
        assert_eq!(parse("sigusr2"), Ok(libc::SIGUSR2));
        assert_eq!(parse("12"), Ok(12));
        assert_eq!(parse(" TERM "), Ok(libc::SIGTERM));
        assert_eq!(parse("RTMIN"), Ok(rtmin()));
        assert_eq!(parse("SIGRTMIN+3"), Ok(rtmin() + 3));
        // systemd's stop signal is the same number in the glibc and the static musl build.
        assert_eq!(parse("SIGRTMIN+3"), Ok(37));
        assert_eq!(parse("rtmax-1"), Ok(rtmax() - 1));
    }

    #[test]
    fn rejects_non_signals() {
        assert!(parse("0").is_err());
        assert!(parse("65").is_err());
        assert!(parse("HANGUP").is_err());
        assert!(parse("RTMIN+99").is_err());
        assert!(parse("RTMIN+2147483647").is_err(), "no overflow");
        assert!(parse("RTMAX--2147483648").is_err(), "no overflow");
        assert!(parse("").is_err());
        let err = parse("SIGFOO").unwrap_err();
        assert!(err.to_string().contains("SIGFOO"));
    }

    #[test]
    fn names_round_trip() {
        for n in 1..=rtmax() {
            if n == 32 || n == 33 {
                continue; // reserved by glibc, no name
            }
            let shown = Name(n).to_string();
            assert_eq!(parse(&shown), Ok(n), "{shown}");
        }
    }
}
