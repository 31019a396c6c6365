//! The system calls an init needs, and the only place in gantry with `unsafe` code.
//!
//! This module owns: blocking signals so that they are read from a `signalfd` instead of interrupting
//! the program (the way tini uses `sigtimedwait`), becoming a child subreaper, and the steps a child
//! takes between `fork` and `exec` (its own process group, the terminal's foreground, a clean signal
//! mask and default dispositions, no inherited descriptors beyond 0–2 — except the listening sockets
//! of socket activation, [`PassFds`]). Reaping and deciding what an exit means live in `reaper` and
//! `supervisor`; this module only talks to the kernel.
//!
//! **Socket activation in the child.** systemd's protocol wants the sockets at fd 3 onward and
//! `LISTEN_PID` set to the child's own pid, which only the child knows, and `setenv` may allocate,
//! so it must not run between `fork` and `exec`. [`PassFds`] therefore builds the child's whole
//! environment in the parent, as one byte block and a pointer array, with a fixed-width hole after
//! `LISTEN_PID=`. In the child, [`prepare_child`]'s pre-exec step moves the sockets into place with
//! `fcntl`/`dup2`, writes `getpid()` into the hole digit by digit and points `environ` at the block;
//! `exec` then passes it on. This relies on std leaving `environ` alone when the `Command`'s own
//! environment was not touched (it only swaps in its own block when it was), so the caller must not
//! call `env`/`envs`/`env_clear` on such a command: `tests/socket_activation.rs` checks that the
//! job sees its own pid.

#![allow(unsafe_code)]

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Signals that are never blocked or caught: they report faults in gantry itself and must keep
/// their default action (blocking a synchronous SIGSEGV is undefined behaviour).
pub const FAULT_SIGNALS: &[i32] = &[
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGILL,
    libc::SIGFPE,
    libc::SIGABRT,
    libc::SIGTRAP,
    libc::SIGSYS,
];

/// Every signal gantry reads from its signalfd: all catchable signals but the fault signals and
/// SIGPIPE. SIGPIPE is what the kernel sends gantry itself when a write to a closed pipe fails (its
/// stdout read by `head`, say); blocked, it would be read from the signalfd and forwarded to every
/// job. Left unblocked it stays ignored, as the Rust runtime sets it, and the write fails with EPIPE.
pub fn caught_signals() -> Vec<i32> {
    (1..=libc::SIGRTMAX())
        .filter(|s| {
            *s != libc::SIGKILL
                && *s != libc::SIGSTOP
                && *s != libc::SIGPIPE
                && !FAULT_SIGNALS.contains(s)
                // glibc reserves the first real-time signals for its own threads.
                && !(*s > libc::SIGSYS && *s < libc::SIGRTMIN())
        })
        .collect()
}

/// A raw signal set of the given numbers (real-time signals included, which `nix::Signal` lacks).
fn raw_sigset(signals: &[i32]) -> libc::sigset_t {
    // SAFETY: sigemptyset fully initialises the set before it is read; sigaddset only writes into it
    // and rejects numbers out of range with an error we can ignore (the list comes from 1..=SIGRTMAX).
    unsafe {
        let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigemptyset(set.as_mut_ptr());
        let mut set = set.assume_init();
        for &s in signals {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// Blocks every caught signal in the calling thread. Call before any other thread exists so that
/// every thread inherits the mask and signals are only ever read from the signalfd.
pub fn block_signals() -> io::Result<()> {
    let set = raw_sigset(&caught_signals());
    // SAFETY: `set` is a valid, initialised sigset; the old mask is not requested.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

/// A non-blocking, close-on-exec signalfd for every caught signal (they must already be blocked).
pub fn open_signalfd() -> io::Result<OwnedFd> {
    let set = raw_sigset(&caught_signals());
    // SAFETY: `set` is valid; -1 asks for a new descriptor, which we own from here on.
    let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
    if fd == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Registers a signalfd with the runtime so that it can be awaited.
pub fn async_signalfd(fd: OwnedFd) -> io::Result<tokio::io::unix::AsyncFd<OwnedFd>> {
    // SAFETY: the AsyncFd takes ownership of the descriptor; nothing else can close or replace it
    // while it is registered.
    unsafe { tokio::io::unix::AsyncFd::register(fd).map_err(|e| e.into_parts().1) }
}

/// Registers a descriptor gantry owns with the runtime, to await its readability (a passed
/// listening socket, which gantry watches but never reads).
pub fn async_readable(fd: OwnedFd) -> io::Result<tokio::io::unix::AsyncFd<OwnedFd>> {
    // SAFETY: the AsyncFd takes ownership of the descriptor; nothing else can close or replace it
    // while it is registered.
    unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
            .map_err(|e| e.into_parts().1)
    }
}

/// Reads one pending signal from a signalfd: `Ok(None)` when none is pending.
pub fn read_signal(fd: &OwnedFd) -> io::Result<Option<i32>> {
    let mut info = std::mem::MaybeUninit::<libc::signalfd_siginfo>::uninit();
    let size = std::mem::size_of::<libc::signalfd_siginfo>();
    // SAFETY: we read at most `size` bytes into a buffer of exactly that size.
    let n = unsafe { libc::read(fd.as_raw_fd(), info.as_mut_ptr().cast(), size) };
    if n == -1 {
        let err = io::Error::last_os_error();
        return match err.kind() {
            io::ErrorKind::WouldBlock => Ok(None),
            io::ErrorKind::Interrupted => Ok(None),
            _ => Err(err),
        };
    }
    if n as usize != size {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "short read from signalfd",
        ));
    }
    // SAFETY: the kernel filled the whole struct (checked above).
    let info = unsafe { info.assume_init() };
    Ok(Some(info.ssi_signo as i32))
}

/// Makes orphaned descendants re-parent to this process, as they would to PID 1.
pub fn set_child_subreaper() -> io::Result<()> {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes one integer argument and touches no memory of ours.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The kernel's `struct sigaction` (not glibc's): handler SIG_DFL (0), no flags, empty mask.
#[repr(C)]
#[derive(Default)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

/// The environment variables of systemd's socket activation protocol, which [`PassFds`] owns.
pub const LISTEN_VARS: &[&str] = &["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"];

/// Room for the child's pid after `LISTEN_PID=`: ten digits (a pid is a positive `i32`) and a NUL.
const PID_ROOM: usize = 11;

/// Listening sockets to pass to a child as fd 3 onward, and the child's whole environment with the
/// `LISTEN_*` variables, built before the fork (see the module doc).
#[derive(Debug)]
pub struct PassFds {
    /// The sockets, in order; they must stay open until the spawn returns.
    fds: Vec<i32>,
    /// `KEY=VALUE\0` strings, the last one `LISTEN_PID=` and its hole.
    block: Vec<u8>,
    /// Where each string starts in `block`, as addresses, then 0: the `environ` array. Plain
    /// addresses (not pointers) so that the pre-exec closure is `Send`; `block` is never resized
    /// after they are taken, so they stay valid while it lives.
    ptrs: Vec<usize>,
    /// Where the pid goes in `block`.
    pid_at: usize,
}

impl PassFds {
    /// `fds` with their `LISTEN_FDNAMES` names, for a child whose environment is `env` (any
    /// `LISTEN_*` in it is replaced). A NUL byte in the environment is an error, as with std.
    pub fn new(
        fds: &[(i32, &str)],
        env: impl IntoIterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
    ) -> io::Result<PassFds> {
        use std::os::unix::ffi::OsStrExt;
        let mut block = Vec::new();
        let mut offsets = Vec::new();
        let mut push = |key: &[u8], value: &[u8]| -> io::Result<()> {
            if key.contains(&0) || value.contains(&0) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "an environment variable contains a NUL byte",
                ));
            }
            offsets.push(block.len());
            block.extend_from_slice(key);
            block.push(b'=');
            block.extend_from_slice(value);
            block.push(0);
            Ok(())
        };
        for (key, value) in env {
            if !LISTEN_VARS.iter().any(|v| key.as_bytes() == v.as_bytes()) {
                push(key.as_bytes(), value.as_bytes())?;
            }
        }
        push(b"LISTEN_FDS", fds.len().to_string().as_bytes())?;
        let names: Vec<&str> = fds.iter().map(|(_, name)| *name).collect();
        push(b"LISTEN_FDNAMES", names.join(":").as_bytes())?;
        push(b"LISTEN_PID", &[b'0'; PID_ROOM - 1])?;
        let pid_at = block.len() - PID_ROOM;
        let base = block.as_ptr() as usize;
        let mut ptrs: Vec<usize> = offsets.iter().map(|o| base + o).collect();
        ptrs.push(0);
        Ok(PassFds {
            fds: fds.iter().map(|(fd, _)| *fd).collect(),
            block,
            ptrs,
            pid_at,
        })
    }

    /// How many sockets are passed.
    pub fn count(&self) -> usize {
        self.fds.len()
    }
}

extern "C" {
    /// The C library's environment, which `execvp` passes on.
    static mut environ: *const *const libc::c_char;
}

/// Writes `n` in decimal at the start of `out`, then a NUL. Allocates nothing (it runs in the
/// forked child); `out` must have room for ten digits and the NUL.
fn write_pid(mut n: u32, out: &mut [u8]) {
    let mut digits = [0u8; 10];
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for i in 0..len {
        out[i] = digits[len - 1 - i];
    }
    out[len] = 0;
}

/// What a child does between fork and exec.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChildSetup {
    /// Put the child in a new process group of its own (pgid = pid).
    pub new_process_group: bool,
    /// Make that group the foreground group of the terminal on stdin (so Ctrl-C reaches it).
    pub foreground: bool,
    /// s6's notification-fd: `(descriptor, number)` puts this descriptor of gantry's (the write end
    /// of a readiness pipe) at `number` in the child.
    pub notify_fd: Option<(i32, i32)>,
}

/// Arranges for `cmd`'s child to start with gantry's process model: own process group, optional
/// terminal foreground, empty signal mask, default signal dispositions, and every descriptor ≥ 3
/// closed on exec — but for `pass`'s sockets, which become fd 3 onward, with their environment
/// (then `cmd`'s environment must not have been changed: see the module doc).
pub fn prepare_child(cmd: &mut Command, setup: ChildSetup, mut pass: Option<PassFds>) {
    let max_signal = libc::SIGRTMAX();
    let closure = move || -> io::Result<()> {
        // Only async-signal-safe calls below: this runs in the forked child.
        // SAFETY: see the comment on `pre_exec` below.
        unsafe {
            if setup.new_process_group && libc::setpgid(0, 0) == -1 {
                return Err(io::Error::last_os_error());
            }
            if setup.foreground && libc::isatty(0) == 1 {
                // SIGTTOU is still blocked (inherited mask), so a background group may take the terminal.
                libc::tcsetpgrp(0, libc::getpgrp());
            }
            for sig in 1..=max_signal {
                if sig != libc::SIGKILL
                    && sig != libc::SIGSTOP
                    && libc::signal(sig, libc::SIG_DFL) == libc::SIG_ERR
                {
                    // glibc refuses the signals it reserves (32, 33), yet a parent may have left
                    // them ignored: reset them with the raw system call.
                    let action = KernelSigaction::default();
                    libc::syscall(
                        libc::SYS_rt_sigaction,
                        sig,
                        &action as *const KernelSigaction,
                        std::ptr::null_mut::<KernelSigaction>(),
                        std::mem::size_of::<u64>(),
                    );
                }
            }
            let mut empty = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
            libc::sigemptyset(empty.as_mut_ptr());
            libc::pthread_sigmask(libc::SIG_SETMASK, empty.as_ptr(), std::ptr::null_mut());
            // Mark every descriptor ≥ 3 close-on-exec rather than closing it: std keeps a CLOEXEC pipe
            // open to report exec failures, and closing it would hide them.
            if libc::syscall(
                libc::SYS_close_range,
                3u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            ) != 0
            {
                let mut max = libc::sysconf(libc::_SC_OPEN_MAX);
                if !(0..=1 << 20).contains(&max) {
                    max = 1 << 16;
                }
                for fd in 3..max as i32 {
                    let flags = libc::fcntl(fd, libc::F_GETFD);
                    if flags >= 0 {
                        libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
                    }
                }
            }
            if let Some(pass) = pass.as_mut() {
                let first = 3;
                let end = first + pass.fds.len() as i32;
                // A socket may sit on a number another one goes to: move them all above the
                // targets first (close-on-exec copies), then into place. dup2 clears CLOEXEC.
                for fd in pass.fds.iter_mut() {
                    let high = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, end);
                    if high == -1 {
                        return Err(io::Error::last_os_error());
                    }
                    *fd = high;
                }
                for (target, &fd) in (first..end).zip(pass.fds.iter()) {
                    if libc::dup2(fd, target) == -1 {
                        return Err(io::Error::last_os_error());
                    }
                }
                write_pid(libc::getpid() as u32, &mut pass.block[pass.pid_at..]);
                // `ptrs` holds the addresses of the strings in `block` (this process's copy of
                // both, made by fork at the same addresses) and ends with a null pointer.
                environ = pass.ptrs.as_ptr() as *const *const libc::c_char;
            }
            if let Some((fd, at)) = setup.notify_fd {
                if fd == at {
                    // Already in place: only let it survive the exec.
                    libc::fcntl(fd, libc::F_SETFD, 0);
                } else if libc::dup2(fd, at) == -1 {
                    return Err(io::Error::last_os_error());
                }
            }
        }
        Ok(())
    };
    // SAFETY: the closure only makes async-signal-safe system calls (setpgid, isatty, tcsetpgrp,
    // signal, sigemptyset, pthread_sigmask, syscall, sysconf, fcntl, dup2, getpid) and allocates
    // nothing: the socket-activation step writes into buffers built before the fork and assigns
    // `environ`, which no other thread can read in the child (it has only this one).
    unsafe {
        cmd.pre_exec(closure);
    }
}

/// Sends `signal` to a process (`group = false`) or to its whole process group.
pub fn send_signal(pid: i32, signal: i32, group: bool) -> io::Result<()> {
    let target = if group { -pid } else { pid };
    // SAFETY: kill takes two integers and touches no memory of ours.
    let rc = unsafe { libc::kill(target, signal) };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sends `signal` to every process this one may signal except itself (only meaningful as PID 1 of
/// a namespace, where that is exactly "every descendant").
pub fn signal_all_as_pid1(signal: i32) -> io::Result<()> {
    send_signal(-1, signal, false)
}

/// True when the calling process is the `init` of its PID namespace.
pub fn is_pid1() -> bool {
    std::process::id() == 1
}

/// What one `waitpid(-1, WNOHANG)` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reaped {
    /// A child exited with this code.
    Exited(i32, i32),
    /// A child was killed by this signal (any number, real-time signals included).
    Signaled(i32, i32),
    /// A child stopped or continued: not an exit.
    NotAnExit,
    /// Children exist but none has changed state.
    NoneReady,
    /// There are no children at all (ECHILD).
    NoChildren,
}

/// Reaps one child that has exited, without blocking. This is the raw system call rather than
/// `nix::sys::wait::waitpid`, whose status conversion turns a death by a real-time signal
/// (SIGRTMIN+3, systemd's stop signal) into EINVAL after the child was already reaped: the status
/// would be lost and the job would never be seen to end.
pub fn reap_one() -> io::Result<Reaped> {
    let mut status: libc::c_int = 0;
    // SAFETY: waitpid writes one int into `status`, which lives for the whole call.
    let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
    if pid == -1 {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::ECHILD) => Ok(Reaped::NoChildren),
            _ => Err(err),
        };
    }
    if pid == 0 {
        return Ok(Reaped::NoneReady);
    }
    Ok(if libc::WIFEXITED(status) {
        Reaped::Exited(pid, libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        Reaped::Signaled(pid, libc::WTERMSIG(status))
    } else {
        Reaped::NotAnExit
    })
}

/// One `write(2)` to a descriptor gantry does not own (its stdout or stderr), retried on EINTR.
pub fn write_fd(fd: i32, buf: &[u8]) -> io::Result<usize> {
    loop {
        // SAFETY: write reads at most `buf.len()` bytes from a live slice; a bad descriptor is an
        // error, not undefined behaviour.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// A readiness pipe for s6's notification-fd protocol: the read end (non-blocking) for gantry and
/// the write end for the child, both close-on-exec, the write end moved to a descriptor of at least
/// 64 so that the child's socket-activation descriptors (fd 3 onward) cannot land on it.
pub fn notify_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 writes two descriptors into the array, which lives for the whole call.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // The child's end blocks (a job writing its line should not see EAGAIN).
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let flags = libc::fcntl(write.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(write.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK);
    }
    // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor we then own.
    let high = unsafe { libc::fcntl(write.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 64) };
    if high == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `high` was just created.
    Ok((read, unsafe { OwnedFd::from_raw_fd(high) }))
}

/// Asks the kernel to attach the sender's credentials to every datagram `fd` receives
/// (`SO_PASSCRED`), so that [`recv_with_pid`] can say who sent it.
pub fn pass_credentials(fd: &impl AsRawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: setsockopt reads one int from a live local.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PASSCRED,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Receives one datagram without blocking, with the sender's pid from its `SCM_CREDENTIALS`
/// (`None` when the kernel attached none). `WouldBlock` when nothing is queued.
pub fn recv_with_pid(fd: &impl AsRawFd, buf: &mut [u8]) -> io::Result<(usize, Option<i32>)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, UnixAddr};
    let mut space = nix::cmsg_space!(libc::ucred);
    let mut iov = [io::IoSliceMut::new(buf)];
    let msg = recvmsg::<UnixAddr>(
        fd.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(io::Error::from)?;
    let mut pid = None;
    if let Ok(cmsgs) = msg.cmsgs() {
        for cmsg in cmsgs {
            if let ControlMessageOwned::ScmCredentials(creds) = cmsg {
                pid = Some(creds.pid());
            }
        }
    }
    Ok((msg.bytes, pid))
}

/// Whether `pid` is `ancestor` or one of its descendants now, read from /proc (a process that has
/// already exited is neither).
pub fn is_same_or_descendant(pid: i32, ancestor: i32) -> bool {
    let mut cur = pid;
    for _ in 0..64 {
        if cur == ancestor {
            return true;
        }
        if cur <= 1 {
            return false;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{cur}/stat")) else {
            return false;
        };
        // The command name may contain spaces and parentheses; fields resume after the last ')'.
        let parent = stat.rfind(')').and_then(|at| {
            stat[at + 1..]
                .split_whitespace()
                .nth(1)?
                .parse::<i32>()
                .ok()
        });
        match parent {
            Some(p) => cur = p,
            None => return false,
        }
    }
    false
}
