//! The API's listening socket and who may use it.
//!
//! **Unix socket** (the default): its directory is created if missing; an existing socket file that
//! nobody answers on is stale and replaced, one that answers means another gantry is serving there
//! and is an error; the socket is made 0600 (0660 and owned by `--api-group` with that flag) before
//! the first accept, and removed on exit ([`super::Servers::close`]). Every connection's peer
//! credentials (SO_PEERCRED) decide its [`Access`]: root and gantry's own uid control; uids in
//! `--api-read-uids` read; anyone else is answered 403 on every request.
//!
//! **TCP**: a bearer token is required (`--api-token-file`, else env `GANTRY_API_TOKEN`); gantry
//! refuses to start without one. Tokens are compared as SHA-256 digests in constant time; a refused
//! request is logged with the peer's address, never with what it sent.
//!
//! **Limits**, on every listener of this module (the API's and the status port's): at most
//! [`MAX_CONNECTIONS`] open at once (a log follower's included), further ones wait in the listen
//! backlog until one ends; a request's head must arrive within [`HEAD_TIMEOUT`] of the connection
//! opening or of its last answer, else the connection is closed; a head over [`MAX_HEAD_BYTES`] is
//! answered 431. No client can make gantry's memory grow without bound or hold a connection
//! without sending.

use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{routes, Address, ApiArgs, Servers, Shared};

/// How many connections one listener serves at once; more wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 128;

/// How long a connection may take to send a request's head, from opening or from its last answer.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// The most of a request's head a connection buffers; a longer head is answered 431.
pub const MAX_HEAD_BYTES: usize = 32 * 1024;

/// One of a listener's [`MAX_CONNECTIONS`] places, held while its connection is open (by the log
/// follower that takes an upgraded connection over, too).
pub type Slot = Arc<OwnedSemaphorePermit>;

/// A listener's connection places; owned by its accept loop.
pub struct Slots {
    free: Arc<Semaphore>,
    what: &'static str,
    warned: Option<Instant>,
}

impl Slots {
    /// Places for the listener called `what` in the warning logged when they run out.
    pub fn new(what: &'static str) -> Slots {
        Slots {
            free: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
            what,
            warned: None,
        }
    }

    /// Waits for a free place, then for the next connection `accept` gives (a failed accept is
    /// logged and tried again 50 ms later, keeping the place).
    pub async fn accept<S, A, F, Fut>(&mut self, mut accept: F) -> (Slot, S, A)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = std::io::Result<(S, A)>>,
    {
        let slot = self.take().await;
        loop {
            match accept().await {
                Ok((stream, addr)) => return (slot, stream, addr),
                Err(e) => {
                    tracing::warn!("{}: accept failed: {e}", self.what);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    /// Waits for a free place (logging, at most once a minute, that all are taken).
    async fn take(&mut self) -> Slot {
        if self.free.available_permits() == 0
            && self
                .warned
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(60))
        {
            self.warned = Some(Instant::now());
            tracing::warn!(
                "{}: {MAX_CONNECTIONS} connections are open; further ones wait until one closes",
                self.what
            );
        }
        match self.free.clone().acquire_owned().await {
            Ok(permit) => Arc::new(permit),
            // The semaphore is never closed.
            Err(_) => std::future::pending().await,
        }
    }
}

/// hyper's HTTP/1.1 server with the limits of the module doc.
pub fn http1_server() -> http1::Builder {
    let mut b = http1::Builder::new();
    b.timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES);
    b
}

/// What a connection may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read and control.
    Control,
    /// Read only (list, status, logs, probes).
    Read,
    /// Nothing: every request is answered 403.
    Denied,
}

/// Per connection: who is on the other end.
#[derive(Clone)]
pub struct Conn {
    pub shared: Arc<Shared>,
    pub access: Access,
    /// For logs: `uid 1000` or `10.0.0.1:5555`.
    pub peer: Arc<str>,
    /// The SHA-256 of the token every request must carry (TCP only).
    pub token: Option<[u8; 32]>,
    /// The connection's place among its listener's.
    pub slot: Slot,
}

impl Conn {
    /// Whether `header` (an `Authorization` value) carries the token.
    pub fn token_ok(&self, header: Option<&[u8]>) -> bool {
        let Some(want) = &self.token else { return true };
        let given = header
            .and_then(|h| h.strip_prefix(b"Bearer "))
            .unwrap_or_default();
        let digest: [u8; 32] = Sha256::digest(given).into();
        bool::from(digest.ct_eq(want)) && !given.is_empty()
    }
}

/// The access of a unix-socket peer with `uid`.
pub fn access_for(uid: u32, read_uids: &[u32]) -> Access {
    if uid == 0 || uid == nix::unistd::geteuid().as_raw() {
        Access::Control
    } else if read_uids.contains(&uid) {
        Access::Read
    } else {
        Access::Denied
    }
}

/// Binds the API's socket and starts accepting.
pub async fn start_api(
    address: &Address,
    args: &ApiArgs,
    shared: Arc<Shared>,
    servers: &mut Servers,
) -> Result<(), String> {
    match address {
        Address::Unix(path) => {
            let listener = bind_unix(path, args.api_group.as_deref())?;
            servers.socket = Some(path.clone());
            tracing::info!("API listening on unix://{}", path.display());
            let read_uids = args.api_read_uids.clone();
            servers.push(tokio::spawn(async move {
                let mut slots = Slots::new("API");
                loop {
                    let (slot, stream, _) = slots.accept(|| listener.accept()).await;
                    let (access, peer) = match stream.peer_cred() {
                        Ok(cred) => (
                            access_for(cred.uid(), &read_uids),
                            format!("uid {}", cred.uid()),
                        ),
                        Err(e) => (Access::Denied, format!("unknown peer ({e})")),
                    };
                    if access == Access::Denied {
                        tracing::warn!("API: {peer} may not use the API; answering 403");
                    }
                    serve(
                        stream,
                        Conn {
                            shared: shared.clone(),
                            access,
                            peer: peer.into(),
                            token: None,
                            slot,
                        },
                    );
                }
            }));
        }
        Address::Tcp(hostport) => {
            let token = read_token(args)?;
            let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
            let listener = tokio::net::TcpListener::bind(hostport)
                .await
                .map_err(|e| format!("cannot listen on tcp://{hostport}: {e}"))?;
            tracing::info!("API listening on tcp://{hostport} (bearer token required)");
            servers.push(tokio::spawn(async move {
                let mut slots = Slots::new("API");
                loop {
                    let (slot, stream, addr) = slots.accept(|| listener.accept()).await;
                    let _ = stream.set_nodelay(true);
                    serve(
                        stream,
                        Conn {
                            shared: shared.clone(),
                            access: Access::Control,
                            peer: addr.to_string().into(),
                            token: Some(digest),
                            slot,
                        },
                    );
                }
            }));
        }
    }
    Ok(())
}

/// The TCP API's token: `--api-token-file`, else `GANTRY_API_TOKEN`; never logged.
fn read_token(args: &ApiArgs) -> Result<String, String> {
    let token = match &args.api_token_file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read --api-token-file {}: {e}", path.display()))?
            .trim()
            .to_string(),
        None => std::env::var("GANTRY_API_TOKEN")
            .unwrap_or_default()
            .trim()
            .to_string(),
    };
    if token.is_empty() {
        return Err(
            "a TCP API needs a bearer token: give --api-token-file PATH or set GANTRY_API_TOKEN \
             (or listen on a unix socket)"
                .to_string(),
        );
    }
    Ok(token)
}

/// Creates the unix socket at `path` (see the module doc).
fn bind_unix(path: &Path, group: Option<&str>) -> Result<tokio::net::UnixListener, String> {
    let gid = group.map(resolve_group).transpose()?;
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            format!(
                "cannot create the API socket's directory {}: {e}",
                dir.display()
            )
        })?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) => {
            use std::os::unix::fs::FileTypeExt;
            if !meta.file_type().is_socket() {
                return Err(format!(
                    "{} exists and is not a socket; remove it or give another --api-listen-address",
                    path.display()
                ));
            }
            match std::os::unix::net::UnixStream::connect(path) {
                Ok(_) => {
                    return Err(format!(
                        "another process (another gantry?) serves the API on {}; stop it or give \
                         another --api-listen-address",
                        path.display()
                    ))
                }
                Err(e)
                    if e.kind() == ErrorKind::ConnectionRefused
                        || e.kind() == ErrorKind::NotFound =>
                {
                    tracing::info!("replacing the stale API socket {}", path.display());
                    std::fs::remove_file(path).map_err(|e| {
                        format!("cannot remove the stale API socket {}: {e}", path.display())
                    })?;
                }
                Err(e) => {
                    return Err(format!(
                        "cannot tell whether {} is in use ({e}); remove it if it is stale",
                        path.display()
                    ))
                }
            }
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot inspect {}: {e}", path.display())),
    }
    // Nobody else may connect between bind and chmod: bind under a umask that leaves 0600.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let bound = std::os::unix::net::UnixListener::bind(path);
    nix::sys::stat::umask(old);
    let listener = bound.map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
    let mode = if let Some(gid) = gid {
        nix::unistd::chown(path, None, Some(nix::unistd::Gid::from_raw(gid)))
            .map_err(|e| format!("cannot give {} to group {gid}: {e}", path.display()))?;
        0o660
    } else {
        0o600
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("cannot set the mode of {}: {e}", path.display()))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("cannot use {}: {e}", path.display()))?;
    tokio::net::UnixListener::from_std(listener)
        .map_err(|e| format!("cannot use {}: {e}", path.display()))
}

/// A group name or number.
fn resolve_group(group: &str) -> Result<u32, String> {
    if let Ok(gid) = group.parse::<u32>() {
        return Ok(gid);
    }
    match nix::unistd::Group::from_name(group) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        Ok(None) => Err(format!("--api-group {group:?}: no such group")),
        Err(e) => Err(format!("--api-group {group:?}: cannot look it up: {e}")),
    }
}

/// Serves one connection (HTTP/1.1 with upgrades for WebSocket) on a task of its own.
pub fn serve<S>(stream: S, conn: Conn)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let svc = service_fn(move |req| {
            let conn = conn.clone();
            async move { Ok::<_, std::convert::Infallible>(routes::handle(conn, req).await) }
        });
        let _ = http1_server()
            .serve_connection(TokioIo::new(stream), svc)
            .with_upgrades()
            .await;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_and_our_uid_control_listed_uids_read_others_are_denied() {
        assert_eq!(access_for(0, &[]), Access::Control);
        let me = nix::unistd::geteuid().as_raw();
        assert_eq!(access_for(me, &[]), Access::Control);
        assert_eq!(access_for(54321, &[54321]), Access::Read);
        assert_eq!(access_for(54322, &[54321]), Access::Denied);
    }
}
