//! The proxy hop: dialling the upstream with a fast backoff, the PROXY protocol header, and the
//! bidirectional copy.
//!
//! [`relay`] is one future per connection (no thread, no second task) that moves both directions,
//! by default with splice(2) through one pipe per direction ([`PIPE_SIZE`]; the bytes never enter
//! gantry's memory), else (`GANTRY_PROXY_COPY=userspace`, or no pipe to be had) through two fixed
//! buffers of [`BUF`] bytes — memory per connection is bounded whatever the peers do. End of input on one side is passed on as a half-close (`shutdown(SHUT_WR)`), so a client that
//! shuts its write side still reads the whole reply. An error on one side (a reset, a broken pipe)
//! resets the other side, so a client sees an upstream reset as a reset rather than a clean end. When
//! the future ends or is dropped, both sockets are closed: nothing outlives the connection.

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use nix::fcntl::OFlag;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::Instant;

use super::net::{self, Peer, Stream};
use crate::config::lazy::{Endpoint, ProxyProtocol};

/// Bytes buffered per direction of one connection (userspace copy).
pub const BUF: usize = 64 * 1024;

/// The pipe size asked for per direction (splice); what the kernel gives is the bound.
pub const PIPE_SIZE: usize = 256 * 1024;

/// The first pause between two dials of an upstream that is not listening yet.
pub const FIRST_RETRY: Duration = Duration::from_millis(2);
/// The longest pause between two dials (so a held client waits at most this long after the
/// upstream starts listening).
pub const MAX_RETRY: Duration = Duration::from_millis(10);

/// Dials `endpoint` until it answers or `deadline` passes, pausing 2 ms, 4 ms, ... up to 10 ms
/// between attempts. The last error is returned when the deadline passed first. `abort` is polled
/// between attempts: when it yields, dialling stops with that error.
pub async fn dial_until(
    endpoint: &Endpoint,
    deadline: Instant,
    mut abort: impl FnMut() -> Option<io::Error>,
) -> io::Result<Stream> {
    let mut pause = FIRST_RETRY;
    loop {
        let attempt = tokio::time::timeout_at(deadline, net::dial(endpoint)).await;
        let err = match attempt {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e)) => e,
            Err(_) => io::Error::new(io::ErrorKind::TimedOut, "connecting timed out"),
        };
        if let Some(e) = abort() {
            return Err(e);
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(err);
        }
        tokio::time::sleep_until((now + pause).min(deadline)).await;
        pause = (pause * 2).min(MAX_RETRY);
    }
}

/// The PROXY protocol header announcing `peer` (`UNKNOWN`/`LOCAL` for a unix client).
pub fn proxy_header(version: ProxyProtocol, peer: &Peer) -> Vec<u8> {
    let addrs = match (peer.client, peer.local) {
        (Some(c), Some(l)) => Some(same_family(c, l)),
        _ => None,
    };
    match version {
        ProxyProtocol::V1 => match addrs {
            Some((c, l)) => {
                let fam = if c.is_ipv4() { "TCP4" } else { "TCP6" };
                format!(
                    "PROXY {fam} {} {} {} {}\r\n",
                    c.ip(),
                    l.ip(),
                    c.port(),
                    l.port()
                )
                .into_bytes()
            }
            None => b"PROXY UNKNOWN\r\n".to_vec(),
        },
        ProxyProtocol::V2 => {
            let mut out = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
            match addrs {
                Some((SocketAddr::V4(c), SocketAddr::V4(l))) => {
                    out.extend_from_slice(&[0x21, 0x11, 0, 12]);
                    out.extend_from_slice(&c.ip().octets());
                    out.extend_from_slice(&l.ip().octets());
                    out.extend_from_slice(&c.port().to_be_bytes());
                    out.extend_from_slice(&l.port().to_be_bytes());
                }
                Some((c, l)) => {
                    let v6 = |a: SocketAddr| match a {
                        SocketAddr::V6(a) => a.ip().octets(),
                        SocketAddr::V4(a) => a.ip().to_ipv6_mapped().octets(),
                    };
                    out.extend_from_slice(&[0x21, 0x21, 0, 36]);
                    out.extend_from_slice(&v6(c));
                    out.extend_from_slice(&v6(l));
                    out.extend_from_slice(&c.port().to_be_bytes());
                    out.extend_from_slice(&l.port().to_be_bytes());
                }
                // LOCAL: the receiver uses the connection's own addresses.
                None => out.extend_from_slice(&[0x20, 0x00, 0, 0]),
            }
            out
        }
    }
}

/// An IPv4 client on a dual-stack listener shows as `::ffff:a.b.c.d`; announce it as IPv4.
fn same_family(client: SocketAddr, local: SocketAddr) -> (SocketAddr, SocketAddr) {
    let v4 = |a: SocketAddr| match a {
        SocketAddr::V6(v6) => v6
            .ip()
            .to_ipv4_mapped()
            .map(|ip| SocketAddr::new(ip.into(), v6.port())),
        SocketAddr::V4(_) => Some(a),
    };
    match (v4(client), v4(local)) {
        (Some(c), Some(l)) => (c, l),
        _ => (client, local),
    }
}

/// Writes the PROXY header to a freshly dialled upstream.
pub async fn send_header(
    upstream: &mut Stream,
    version: ProxyProtocol,
    peer: &Peer,
) -> io::Result<()> {
    upstream.write_all(&proxy_header(version, peer)).await
}

/// Bytes relayed, counted as they go (for `/metrics`).
#[derive(Debug, Default)]
pub struct Traffic {
    /// Client → upstream.
    pub up: AtomicU64,
    /// Upstream → client.
    pub down: AtomicU64,
}

/// How a relay ended.
#[derive(Debug)]
pub enum Ended {
    /// Both directions reached end of input and were passed on.
    Clean { up: u64, down: u64 },
    /// The client failed (reset, broken pipe); the upstream was reset.
    Client(io::Error),
    /// The upstream failed; the client was reset.
    Upstream(io::Error),
}

/// Where one direction's bytes wait between being read and being written: a pipe that splice(2)
/// fills and drains (the bytes never enter gantry's memory), or a fixed buffer of [`BUF`] bytes.
enum Store {
    Pipe {
        r: OwnedFd,
        w: OwnedFd,
        /// Bytes in the pipe.
        queued: usize,
    },
    Buffer {
        buf: Box<[u8]>,
        pos: usize,
        cap: usize,
    },
}

impl Store {
    fn new(mode: CopyMode) -> Self {
        if mode == CopyMode::Splice {
            if let Ok((r, w)) = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC) {
                // A bigger pipe moves more per call; the default (64 KiB) is kept if the kernel
                // refuses.
                let _ = nix::fcntl::fcntl(
                    w.as_raw_fd(),
                    nix::fcntl::FcntlArg::F_SETPIPE_SZ(PIPE_SIZE as i32),
                );
                return Store::Pipe { r, w, queued: 0 };
            }
        }
        Store::Buffer {
            buf: vec![0; BUF].into_boxed_slice(),
            pos: 0,
            cap: 0,
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Store::Pipe { queued, .. } => *queued == 0,
            Store::Buffer { pos, cap, .. } => pos == cap,
        }
    }

    /// Reads from `from` into the (empty) store; `Ok(0)` at the end of input.
    fn fill(&mut self, cx: &mut Context<'_>, from: &mut Stream) -> Poll<io::Result<usize>> {
        let n = match self {
            Store::Pipe { w, queued, .. } => {
                let n = std::task::ready!(from.poll_splice_into(cx, w.as_fd(), PIPE_SIZE))?;
                *queued = n;
                n
            }
            Store::Buffer { buf, pos, cap } => {
                let mut rb = ReadBuf::new(buf);
                std::task::ready!(Pin::new(&mut *from).poll_read(cx, &mut rb))?;
                (*pos, *cap) = (0, rb.filled().len());
                *cap
            }
        };
        Poll::Ready(Ok(n))
    }

    /// Writes some of what the store holds to `to`.
    fn drain(&mut self, cx: &mut Context<'_>, to: &mut Stream) -> Poll<io::Result<()>> {
        let n = match self {
            Store::Pipe { r, queued, .. } => {
                let n = std::task::ready!(to.poll_splice_from(cx, r.as_fd(), *queued))?;
                *queued -= n.min(*queued);
                n
            }
            Store::Buffer { buf, pos, cap } => {
                let n = std::task::ready!(Pin::new(&mut *to).poll_write(cx, &buf[*pos..*cap]))?;
                *pos += n;
                n
            }
        };
        if n == 0 {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "wrote nothing",
            )));
        }
        Poll::Ready(Ok(()))
    }
}

/// One direction of a relay: read into the store, write it all out, and pass the end of input on.
struct Half {
    store: Store,
    eof: bool,
    done: bool,
    total: u64,
}

/// Which side an error came from.
enum Side {
    Reader(io::Error),
    Writer(io::Error),
}

impl Half {
    fn new(mode: CopyMode) -> Self {
        Half {
            store: Store::new(mode),
            eof: false,
            done: false,
            total: 0,
        }
    }

    /// Moves what it can from `from` to `to`; `Ready` once the input ended and was passed on.
    fn poll(
        &mut self,
        cx: &mut Context<'_>,
        from: &mut Stream,
        to: &mut Stream,
        count: Option<&AtomicU64>,
    ) -> Poll<Result<(), Side>> {
        loop {
            if self.done {
                return Poll::Ready(Ok(()));
            }
            if self.store.is_empty() && !self.eof {
                match self.store.fill(cx, from) {
                    Poll::Ready(Ok(0)) => self.eof = true,
                    Poll::Ready(Ok(n)) => {
                        self.total += n as u64;
                        if let Some(c) = count {
                            c.fetch_add(n as u64, Ordering::Relaxed);
                        }
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(Side::Reader(e))),
                    Poll::Pending => return Poll::Pending,
                }
            }
            while !self.store.is_empty() {
                match self.store.drain(cx, to) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(Side::Writer(e))),
                    Poll::Pending => return Poll::Pending,
                }
            }
            if self.eof {
                // Pass the end of input on as a half-close; the other direction goes on.
                match Pin::new(&mut *to).poll_shutdown(cx) {
                    Poll::Ready(Ok(())) => self.done = true,
                    // The peer is already gone: nothing left to tell it.
                    Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::NotConnected => {
                        self.done = true
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(Side::Writer(e))),
                    Poll::Pending => return Poll::Pending,
                }
            }
        }
    }
}

/// How the relay moves bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyMode {
    /// splice(2) through a pipe per direction (the default: it measured faster, see docs/lazy.md).
    Splice,
    /// read(2)/write(2) through a buffer of [`BUF`] bytes per direction.
    Userspace,
}

/// The relay's copy mode: splice unless `GANTRY_PROXY_COPY=userspace` (read once).
pub fn copy_mode() -> CopyMode {
    static MODE: std::sync::OnceLock<CopyMode> = std::sync::OnceLock::new();
    *MODE.get_or_init(|| match std::env::var("GANTRY_PROXY_COPY").as_deref() {
        Ok("userspace") => CopyMode::Userspace,
        _ => CopyMode::Splice,
    })
}

/// Copies between `client` and `upstream` until both directions ended or one side failed (see the
/// module doc). Both sockets are closed on return, the healthy one with a reset if the other failed.
/// Bytes moved are added to `traffic` as they go.
pub async fn relay(client: Stream, upstream: Stream, traffic: Option<&Traffic>) -> Ended {
    relay_with(copy_mode(), client, upstream, traffic).await
}

/// [`relay`] with the copy mode given.
async fn relay_with(
    mode: CopyMode,
    mut client: Stream,
    mut upstream: Stream,
    traffic: Option<&Traffic>,
) -> Ended {
    let mut up = Half::new(mode);
    let mut down = Half::new(mode);
    let outcome = poll_fn(|cx| {
        let a = up.poll(cx, &mut client, &mut upstream, traffic.map(|t| &t.up));
        if let Poll::Ready(Err(side)) = a {
            return Poll::Ready(Err(match side {
                Side::Reader(e) => Ended::Client(e),
                Side::Writer(e) => Ended::Upstream(e),
            }));
        }
        let b = down.poll(cx, &mut upstream, &mut client, traffic.map(|t| &t.down));
        if let Poll::Ready(Err(side)) = b {
            return Poll::Ready(Err(match side {
                Side::Reader(e) => Ended::Upstream(e),
                Side::Writer(e) => Ended::Client(e),
            }));
        }
        if a.is_ready() && b.is_ready() {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    })
    .await;
    match outcome {
        Ok(()) => Ended::Clean {
            up: up.total,
            down: down.total,
        },
        Err(ended) => {
            match &ended {
                Ended::Client(_) => upstream.reset(),
                Ended::Upstream(_) => client.reset(),
                Ended::Clean { .. } => {}
            }
            ended
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn peer(c: &str, l: &str) -> Peer {
        Peer {
            client: Some(c.parse().expect("addr")),
            local: Some(l.parse().expect("addr")),
        }
    }

    /// Both stores move the same bytes, each way at once, and pass a half-close on: the client
    /// shuts its write side first and still reads the whole reply.
    #[tokio::test]
    async fn both_stores_relay_every_byte_and_the_half_close() {
        use tokio::io::AsyncReadExt;
        use tokio::net::UnixStream;
        const LEN: usize = 3 * 1024 * 1024 + 7;
        let pattern = |seed: u8| -> Vec<u8> {
            (0..LEN)
                .map(|i| (i as u8).wrapping_mul(31) ^ seed)
                .collect()
        };
        for mode in [CopyMode::Splice, CopyMode::Userspace] {
            let (mut client, client_side) = UnixStream::pair().expect("pair");
            let (upstream_side, mut upstream) = UnixStream::pair().expect("pair");
            let relay = tokio::spawn(async move {
                relay_with(
                    mode,
                    Stream::Unix(client_side),
                    Stream::Unix(upstream_side),
                    None,
                )
                .await
            });
            let (request, reply) = (pattern(1), pattern(2));
            let client_io = async {
                client.write_all(&request).await.expect("request");
                client.shutdown().await.expect("half-close");
                let mut got = Vec::new();
                client.read_to_end(&mut got).await.expect("reply");
                got
            };
            let upstream_io = async {
                let mut got = Vec::new();
                upstream.read_to_end(&mut got).await.expect("request");
                upstream.write_all(&reply).await.expect("reply");
                upstream.shutdown().await.expect("close");
                got
            };
            let (client_got, upstream_got) = tokio::join!(client_io, upstream_io);
            assert!(
                upstream_got == request,
                "{mode:?}: the request arrived altered"
            );
            assert!(client_got == reply, "{mode:?}: the reply arrived altered");
            match relay.await.expect("relay task") {
                Ended::Clean { up, down } => {
                    assert_eq!((up, down), (LEN as u64, LEN as u64), "{mode:?}")
                }
                other => panic!("{mode:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn proxy_v1_headers() {
        let p = peer("10.1.2.3:5555", "127.0.0.1:80");
        assert_eq!(
            proxy_header(ProxyProtocol::V1, &p),
            b"PROXY TCP4 10.1.2.3 127.0.0.1 5555 80\r\n"
        );
        let mapped = SocketAddr::new(Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped().into(), 1);
        let l = SocketAddr::new(Ipv4Addr::LOCALHOST.to_ipv6_mapped().into(), 2);
        let p = Peer {
            client: Some(mapped),
            local: Some(l),
        };
        assert_eq!(
            proxy_header(ProxyProtocol::V1, &p),
            b"PROXY TCP4 10.0.0.1 127.0.0.1 1 2\r\n"
        );
        let p = peer("[::1]:7", "[::1]:8");
        assert_eq!(
            proxy_header(ProxyProtocol::V1, &p),
            b"PROXY TCP6 ::1 ::1 7 8\r\n"
        );
        let unix = Peer {
            client: None,
            local: None,
        };
        assert_eq!(proxy_header(ProxyProtocol::V1, &unix), b"PROXY UNKNOWN\r\n");
    }

    #[test]
    fn proxy_v2_headers() {
        let h = proxy_header(ProxyProtocol::V2, &peer("10.1.2.3:258", "127.0.0.1:80"));
        assert_eq!(&h[..12], b"\r\n\r\n\0\r\nQUIT\n");
        assert_eq!(
            &h[12..],
            &[0x21, 0x11, 0, 12, 10, 1, 2, 3, 127, 0, 0, 1, 1, 2, 0, 80]
        );
        let h = proxy_header(ProxyProtocol::V2, &peer("[::1]:1", "[::2]:2"));
        assert_eq!(&h[12..16], &[0x21, 0x21, 0, 36]);
        assert_eq!(&h[16..32], &Ipv6Addr::LOCALHOST.octets());
        assert_eq!(h.len(), 16 + 36);
        let unix = Peer {
            client: None,
            local: None,
        };
        assert_eq!(
            &proxy_header(ProxyProtocol::V2, &unix)[12..],
            &[0x20, 0, 0, 0]
        );
    }
}
