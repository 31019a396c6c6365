//! Sockets of both kinds behind one type: binding a listener, accepting, dialling an upstream.
//!
//! A `listen` or `forward` address is TCP (`tcp`, `tcp4`, `tcp6`) or a unix socket path; this module
//! hides the difference from the rest of `lazy`. It owns the socket options gantry sets (`TCP_NODELAY`
//! on both sides of a relay, `SO_REUSEADDR` on listeners, a 1024-deep backlog), removing a stale unix
//! socket before binding and the socket file again when the listener goes away. A socket-activated
//! listener is bound here too ([`bind_passed`]), as a plain blocking socket gantry never accepts on.
//! It knows nothing of jobs.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UnixListener, UnixStream};

use crate::config::lazy::{Endpoint, Protocol};

/// How many connections wait in the kernel while gantry does not accept (`maxConnections`).
const BACKLOG: u32 = 1024;

/// A bound listening socket.
#[derive(Debug)]
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, UnixPath),
}

/// A unix socket path that gantry created; removed again when dropped.
#[derive(Debug)]
pub struct UnixPath(PathBuf);

impl Drop for UnixPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// One connection, either kind.
#[derive(Debug)]
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// Who connected: the client's and the listener's address (TCP only), for PROXY headers and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub client: Option<SocketAddr>,
    pub local: Option<SocketAddr>,
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.client {
            Some(a) => write!(f, "{a}"),
            None => f.write_str("a unix client"),
        }
    }
}

/// The addresses `endpoint` names, resolved now (host names through the system resolver).
async fn resolve(endpoint: &Endpoint) -> io::Result<Vec<SocketAddr>> {
    let Endpoint::Inet {
        protocol,
        host,
        port,
    } = endpoint
    else {
        return Err(io::Error::other("not an internet address"));
    };
    let addrs: Vec<SocketAddr> = if host.is_empty() {
        // Every interface, as Go's ":8080": the IPv6 wildcard also accepts IPv4 unless tcp4.
        let ip = match protocol {
            Protocol::Tcp4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            _ => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        vec![SocketAddr::new(ip, *port)]
    } else if let Ok(ip) = host.parse::<IpAddr>() {
        vec![SocketAddr::new(ip, *port)]
    } else {
        tokio::net::lookup_host((host.as_str(), *port))
            .await?
            .collect()
    };
    let wanted: Vec<SocketAddr> = addrs
        .into_iter()
        .filter(|a| match protocol {
            Protocol::Tcp4 => a.is_ipv4(),
            Protocol::Tcp6 => a.is_ipv6(),
            _ => true,
        })
        .collect();
    if wanted.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{host:?} has no {} address", protocol.name()),
        ));
    }
    Ok(wanted)
}

/// Binds and listens on `endpoint`.
pub async fn bind(endpoint: &Endpoint) -> io::Result<Listener> {
    match endpoint {
        Endpoint::Unix(path) => {
            // A socket left behind by an earlier run would make bind fail; anything else at that
            // path is not ours to remove.
            if let Ok(meta) = std::fs::symlink_metadata(path) {
                if meta.file_type().is_socket() {
                    std::fs::remove_file(path)?;
                } else {
                    return Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!("{} exists and is not a socket", path.display()),
                    ));
                }
            }
            let listener = UnixListener::bind(path)?;
            Ok(Listener::Unix(listener, UnixPath(path.clone())))
        }
        Endpoint::Inet { .. } => {
            let addr = resolve(endpoint).await?[0];
            let socket = if addr.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            socket.set_reuseaddr(true)?;
            socket.bind(addr)?;
            Ok(Listener::Tcp(socket.listen(BACKLOG)?))
        }
    }
}

/// Binds `endpoint` for socket activation: a blocking socket (as systemd passes them) that gantry
/// only watches and the job accepts on; the socket file to remove later (unix) or the bound address
/// (TCP).
pub async fn bind_passed(
    endpoint: &Endpoint,
) -> io::Result<(OwnedFd, Option<UnixPath>, Option<SocketAddr>)> {
    match bind(endpoint).await? {
        Listener::Tcp(l) => {
            let l = l.into_std()?;
            l.set_nonblocking(false)?;
            let addr = l.local_addr().ok();
            Ok((l.into(), None, addr))
        }
        Listener::Unix(l, path) => {
            let l = l.into_std()?;
            l.set_nonblocking(false)?;
            Ok((l.into(), Some(path), None))
        }
    }
}

/// Accepts and closes every connection waiting on passed listening socket `fd` (a job that failed
/// for good will not accept them; left in the backlog they would hang). TCP clients get a reset.
/// Returns how many were refused. Only while no process of the job holds the socket: the socket is
/// made non-blocking for the loop and put back as it was (blocking, as the job expects it).
pub fn refuse_pending(fd: BorrowedFd<'_>) -> io::Result<usize> {
    let owned = fd.try_clone_to_owned()?;
    let tcp = std::net::TcpListener::from(owned);
    if tcp.local_addr().is_ok() {
        tcp.set_nonblocking(true)?;
        let mut n = 0;
        let result = loop {
            match tcp.accept() {
                Ok((stream, _)) => {
                    n += 1;
                    if stream.set_nonblocking(true).is_ok() {
                        if let Ok(s) = tokio::net::TcpStream::from_std(stream) {
                            Stream::Tcp(s).reset();
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(n),
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => {}
                Err(e) => break Err(e),
            }
        };
        tcp.set_nonblocking(false)?;
        return result;
    }
    let unix = std::os::unix::net::UnixListener::from(std::os::fd::OwnedFd::from(tcp));
    unix.set_nonblocking(true)?;
    let mut n = 0;
    let result = loop {
        match unix.accept() {
            Ok(_) => n += 1,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(n),
            Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => {}
            Err(e) => break Err(e),
        }
    };
    unix.set_nonblocking(false)?;
    result
}

/// Whether a connection waits on listening socket `fd` right now (a level check; never blocks).
pub fn pending(fd: BorrowedFd<'_>) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
}

impl Listener {
    /// The next connection.
    pub async fn accept(&self) -> io::Result<(Stream, Peer)> {
        match self {
            Listener::Tcp(l) => {
                let (s, client) = l.accept().await?;
                let _ = s.set_nodelay(true);
                let local = s.local_addr().ok();
                Ok((
                    Stream::Tcp(s),
                    Peer {
                        client: Some(client),
                        local,
                    },
                ))
            }
            Listener::Unix(l, _) => {
                let (s, _) = l.accept().await?;
                Ok((
                    Stream::Unix(s),
                    Peer {
                        client: None,
                        local: None,
                    },
                ))
            }
        }
    }

    /// The bound address (a TCP listener on port 0 learns its port here).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Listener::Tcp(l) => l.local_addr().ok(),
            Listener::Unix(..) => None,
        }
    }
}

/// Connects to `endpoint` once.
pub async fn dial(endpoint: &Endpoint) -> io::Result<Stream> {
    match endpoint {
        Endpoint::Unix(path) => Ok(Stream::Unix(UnixStream::connect(path).await?)),
        Endpoint::Inet { .. } => {
            let mut last = None;
            for addr in resolve(endpoint).await? {
                match TcpStream::connect(addr).await {
                    Ok(s) => {
                        let _ = s.set_nodelay(true);
                        return Ok(Stream::Tcp(s));
                    }
                    Err(e) => last = Some(e),
                }
            }
            Err(last.unwrap_or_else(|| io::Error::other("no address to connect to")))
        }
    }
}

/// One splice(2) between a socket and a pipe, on the socket's readiness (`$dir` READABLE: socket →
/// pipe; WRITABLE: pipe → socket). The pipe is non-blocking and, socket → pipe, empty (so its
/// EAGAIN can only be the socket's).
macro_rules! splice_poll {
    ($sock:expr, $cx:expr, $ready:ident, $interest:expr, $from:expr, $to:expr, $len:expr) => {{
        let sock = $sock;
        loop {
            std::task::ready!(sock.$ready($cx))?;
            let moved = sock.try_io($interest, || {
                nix::fcntl::splice(
                    $from,
                    None,
                    $to,
                    None,
                    $len,
                    nix::fcntl::SpliceFFlags::SPLICE_F_NONBLOCK
                        | nix::fcntl::SpliceFFlags::SPLICE_F_MOVE,
                )
                .map_err(io::Error::from)
            });
            match moved {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                r => return Poll::Ready(r),
            }
        }
    }};
}

impl Stream {
    /// Moves up to `len` bytes from this socket into pipe `pipe` without copying them through
    /// userspace; `Ok(0)` at the end of input.
    pub fn poll_splice_into(
        &self,
        cx: &mut Context<'_>,
        pipe: BorrowedFd<'_>,
        len: usize,
    ) -> Poll<io::Result<usize>> {
        use std::os::fd::AsFd;
        let i = tokio::io::Interest::READABLE;
        match self {
            Stream::Tcp(s) => splice_poll!(s, cx, poll_read_ready, i, s.as_fd(), pipe, len),
            Stream::Unix(s) => splice_poll!(s, cx, poll_read_ready, i, s.as_fd(), pipe, len),
        }
    }

    /// Moves up to `len` bytes from pipe `pipe` into this socket.
    pub fn poll_splice_from(
        &self,
        cx: &mut Context<'_>,
        pipe: BorrowedFd<'_>,
        len: usize,
    ) -> Poll<io::Result<usize>> {
        use std::os::fd::AsFd;
        let i = tokio::io::Interest::WRITABLE;
        match self {
            Stream::Tcp(s) => splice_poll!(s, cx, poll_write_ready, i, pipe, s.as_fd(), len),
            Stream::Unix(s) => splice_poll!(s, cx, poll_write_ready, i, pipe, s.as_fd(), len),
        }
    }

    /// Closes with a TCP reset instead of a FIN (a unix socket just closes).
    pub fn reset(self) {
        if let Stream::Tcp(s) = &self {
            // Deprecated because a non-zero linger blocks the thread on close; a zero linger never
            // blocks: the close sends a reset at once.
            #[allow(deprecated)]
            let _ = s.set_linger(Some(Duration::ZERO));
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
