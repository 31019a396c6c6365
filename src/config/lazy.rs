//! The `lazy` and `listen` blocks of a job, read into plain data ([`JobListeners`]).
//!
//! mittnite's schema, unchanged:
//!
//! ```hcl
//! job "web" {
//!   command = "http-server"
//!   lazy { spinUpTimeout = "5s", coolDownTimeout = "15m" }
//!   listen "0.0.0.0:8080" { forward = "127.0.0.1:8081" }
//! }
//! ```
//!
//! `listenProtocol` and `forwardProtocol` are `tcp` (the default), `tcp4`, `tcp6` or `unix` (the
//! address is then a socket path); mittnite's deprecated `protocol` is read as `forwardProtocol` with
//! one warning (both at once are an error). gantry adds `maxConnections` (excess connections wait
//! in the listen backlog), `proxyProtocol = "v1" | "v2"` (a PROXY protocol header on each forwarded connection), and
//! `activation = "socket"` with an optional `name`: no forwarding, the listening socket itself is
//! passed to the job (systemd's socket activation; read into a [`SocketSpec`]). Every
//! duration is resolved here; the runtime (the top-level `lazy` module) never sees HCL. This module owns reading
//! and the checks that span jobs (one listener per address); it opens no socket.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::error::{ConfigError, Errors};
use super::node::{Block, Pos, Reader};

/// How long held connections wait for a lazy job's upstream to answer (mittnite's default).
pub const DEFAULT_SPIN_UP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a lazy job runs on with no connection before it is stopped (mittnite's default).
pub const DEFAULT_COOL_DOWN_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// A job's `lazy` block: the job starts on its first connection and stops when idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LazySpec {
    pub spin_up_timeout: Duration,
    pub cool_down_timeout: Duration,
}

/// mittnite's protocol names (Go's network names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// IPv4 or IPv6, whichever the address is.
    Tcp,
    Tcp4,
    Tcp6,
    Unix,
}

impl Protocol {
    pub const NAMES: &'static [&'static str] = &["tcp", "tcp4", "tcp6", "unix"];

    fn parse(text: &str) -> Option<Protocol> {
        match text.trim().to_ascii_lowercase().as_str() {
            "" | "tcp" => Some(Protocol::Tcp),
            "tcp4" => Some(Protocol::Tcp4),
            "tcp6" => Some(Protocol::Tcp6),
            "unix" => Some(Protocol::Unix),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Tcp4 => "tcp4",
            Protocol::Tcp6 => "tcp6",
            Protocol::Unix => "unix",
        }
    }
}

/// One side of a listener: where gantry listens, or where it forwards to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `host:port`; an empty host means every interface (Go's `":8080"`). `protocol` is never `Unix`.
    Inet {
        protocol: Protocol,
        host: String,
        port: u16,
    },
    /// A unix socket path.
    Unix(PathBuf),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Inet {
                protocol,
                host,
                port,
            } => {
                if host.contains(':') {
                    write!(f, "{} [{host}]:{port}", protocol.name())
                } else {
                    write!(f, "{} {host}:{port}", protocol.name())
                }
            }
            Endpoint::Unix(path) => write!(f, "unix {}", path.display()),
        }
    }
}

/// Which PROXY protocol header precedes each forwarded connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyProtocol {
    V1,
    V2,
}

/// One `listen "ADDR" { ... }` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenSpec {
    pub address: Endpoint,
    pub forward: Endpoint,
    /// At most this many connections at once; further ones wait in the listen backlog.
    pub max_connections: Option<usize>,
    pub proxy_protocol: Option<ProxyProtocol>,
    pub pos: Pos,
}

/// One `listen "ADDR" { activation = "socket" }` block: gantry holds the listening socket and
/// passes it to the job's processes (fd 3 onward, `LISTEN_FDS`, `LISTEN_PID`, `LISTEN_FDNAMES`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketSpec {
    pub address: Endpoint,
    /// Its entry in `LISTEN_FDNAMES`: the `name` attribute, else the job's name (as systemd names
    /// a socket after its unit; an address cannot be one, its `:` separates the names).
    pub name: String,
    pub pos: Pos,
}

/// The listeners of one job, and whether the job is lazy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobListeners {
    pub job: String,
    /// `None`: the listeners are plain always-on forwarders to a job started as usual.
    pub lazy: Option<LazySpec>,
    /// The forwarding listeners.
    pub listen: Vec<ListenSpec>,
    /// The socket-activated listeners, in the order of their blocks (fd 3, 4, ...).
    pub sockets: Vec<SocketSpec>,
    pub pos: Pos,
}

/// A `listen` block read: a forwarder or a socket passed to the job.
enum Listen {
    Forward(ListenSpec),
    Socket(SocketSpec),
}

/// Reads the `lazy` and `listen` blocks of the job block `r` reads. `None` when it has neither.
pub fn read_job(r: &mut Reader<'_>, job: Option<&str>) -> Option<JobListeners> {
    let job_block = r.block();
    let lazy_block = r.single_block("lazy");
    let listen_blocks = r.blocks("listen");
    if lazy_block.is_none() && listen_blocks.is_empty() {
        return None;
    }
    let lazy = lazy_block.as_ref().map(|b| lazy_from_block(b, r.errors()));
    if let (Some(b), true) = (&lazy_block, listen_blocks.is_empty()) {
        r.errors().push(ConfigError::at(
            b.pos.clone(),
            format!(
                "{}: a lazy job needs at least one listen block (its first connection starts it)",
                job_block.title()
            ),
        ));
    }
    let mut listen = Vec::new();
    let mut sockets = Vec::new();
    for b in &listen_blocks {
        match listen_from_block(b, &job_block.title(), job.unwrap_or(""), r.errors()) {
            Some(Listen::Forward(l)) => listen.push(l),
            Some(Listen::Socket(s)) => sockets.push(s),
            None => {}
        }
    }
    Some(JobListeners {
        job: job?.to_string(),
        lazy,
        listen,
        sockets,
        pos: job_block.pos.clone(),
    })
}

fn lazy_from_block(block: &Block, errors: &mut Errors) -> LazySpec {
    let mut r = Reader::new(block, errors);
    let spin_up_timeout = positive(&mut r, "spinUpTimeout").unwrap_or(DEFAULT_SPIN_UP_TIMEOUT);
    let cool_down_timeout = r
        .duration("coolDownTimeout")
        .unwrap_or(DEFAULT_COOL_DOWN_TIMEOUT);
    r.finish();
    LazySpec {
        spin_up_timeout,
        cool_down_timeout,
    }
}

/// A duration that must not be zero.
fn positive(r: &mut Reader<'_>, key: &'static str) -> Option<Duration> {
    let d = r.duration(key)?;
    if d.is_zero() {
        let pos = r.value(key).map(|v| v.pos.clone())?;
        r.error(pos, key, "must be more than zero");
        return None;
    }
    Some(d)
}

/// Whether `name` may be an entry of `LISTEN_FDNAMES` (systemd's rule: 1 to 255 printable ASCII
/// characters, no `:`).
fn valid_fd_name(name: &str) -> bool {
    (1..=255).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_graphic() && b != b':')
}

fn listen_from_block(
    block: &Block,
    job: &str,
    job_name: &str,
    errors: &mut Errors,
) -> Option<Listen> {
    let mut r = Reader::new(block, errors);
    let socket = match r.string("activation") {
        None => false,
        Some(v) => {
            match v.trim().to_ascii_lowercase().as_str() {
                "socket" => true,
                "proxy" => false,
                _ => {
                    if let Some(pos) = r.value("activation").map(|v| v.pos.clone()) {
                        r.error(
                        pos,
                        "activation",
                        format!("unknown activation {v:?} (use \"socket\", or leave it out to forward)"),
                    );
                    }
                    false
                }
            }
        }
    };
    if socket {
        return socket_from_block(r, block, job, job_name);
    }
    if let Some(pos) = r.value("name").map(|v| v.pos.clone()) {
        r.error(
            pos,
            "name",
            "only a socket-activated listener (activation = \"socket\") has a name",
        );
    }
    let address = match block.labels.as_slice() {
        [a] if !a.trim().is_empty() => Some(a.clone()),
        _ => {
            r.errors().push(ConfigError::at(
                block.pos.clone(),
                format!(
                    "{job}: listen block needs exactly one address, as in listen \"0.0.0.0:8080\" {{ ... }}"
                ),
            ));
            None
        }
    };
    let listen_protocol = protocol(&mut r, "listenProtocol");
    // mittnite's deprecated name for forwardProtocol, read with a warning.
    let forward_key = r.renamed("forwardProtocol", "protocol");
    let forward_protocol = protocol(&mut r, forward_key);
    let forward_pos = r.value("forward").map(|v| v.pos.clone());
    let forward = r.string("forward");
    let max_connections = match r.int("maxConnections") {
        None => None,
        Some(n) if n >= 1 => Some(n as usize),
        Some(n) => {
            if let Some(pos) = r.value("maxConnections").map(|v| v.pos.clone()) {
                r.error(
                    pos,
                    "maxConnections",
                    format!("{n} is not allowed: use 1 or more"),
                );
            }
            None
        }
    };
    let proxy_protocol = match r.string("proxyProtocol") {
        None => None,
        Some(v) => match v.trim().to_ascii_lowercase().as_str() {
            "v1" | "1" => Some(ProxyProtocol::V1),
            "v2" | "2" => Some(ProxyProtocol::V2),
            _ => {
                if let Some(pos) = r.value("proxyProtocol").map(|v| v.pos.clone()) {
                    r.error(
                        pos,
                        "proxyProtocol",
                        format!("unknown version {v:?} (use \"v1\" or \"v2\")"),
                    );
                }
                None
            }
        },
    };
    let address = address.and_then(|a| {
        endpoint(&a, listen_protocol.unwrap_or(Protocol::Tcp), true)
            .map_err(|e| {
                r.errors().push(ConfigError::at(
                    block.pos.clone(),
                    format!("{job}: listen address {a:?}: {e}"),
                ));
            })
            .ok()
    });
    let forward = match (forward, forward_pos) {
        (Some(f), Some(pos)) => endpoint(&f, forward_protocol.unwrap_or(Protocol::Tcp), false)
            .map_err(|e| r.error(pos, "forward", format!("{f:?}: {e}")))
            .ok(),
        _ => {
            r.errors().push(ConfigError::at(
                block.pos.clone(),
                format!(
                    "{job}: {}: attribute \"forward\" is required (where connections go, e.g. \"127.0.0.1:8081\")",
                    block.title()
                ),
            ));
            None
        }
    };
    r.finish();
    Some(Listen::Forward(ListenSpec {
        address: address?,
        forward: forward?,
        max_connections,
        proxy_protocol,
        pos: block.pos.clone(),
    }))
}

/// The rest of a `listen` block with `activation = "socket"`.
fn socket_from_block(
    mut r: Reader<'_>,
    block: &Block,
    job: &str,
    job_name: &str,
) -> Option<Listen> {
    let listen_protocol = protocol(&mut r, "listenProtocol");
    for key in [
        "forward",
        "forwardProtocol",
        "protocol",
        "maxConnections",
        "proxyProtocol",
    ] {
        if let Some(pos) = r.value(key).map(|v| v.pos.clone()) {
            r.error(
                pos,
                key,
                "does not apply with activation = \"socket\" (the job accepts on the socket itself)",
            );
        }
    }
    let name = match r.string("name") {
        Some(name) => {
            if !valid_fd_name(&name) {
                if let Some(pos) = r.value("name").map(|v| v.pos.clone()) {
                    r.error(
                        pos,
                        "name",
                        format!("{name:?} is not a socket name (1 to 255 printable characters, no spaces or ':')"),
                    );
                }
            }
            name
        }
        None if valid_fd_name(job_name) => job_name.to_string(),
        None => "unknown".to_string(),
    };
    let address = match block.labels.as_slice() {
        [a] if !a.trim().is_empty() => endpoint(a, listen_protocol.unwrap_or(Protocol::Tcp), true)
            .map_err(|e| {
                r.errors().push(ConfigError::at(
                    block.pos.clone(),
                    format!("{job}: listen address {a:?}: {e}"),
                ));
            })
            .ok(),
        _ => {
            r.errors().push(ConfigError::at(
                block.pos.clone(),
                format!(
                    "{job}: listen block needs exactly one address, as in listen \"0.0.0.0:8080\" {{ ... }}"
                ),
            ));
            None
        }
    };
    r.finish();
    Some(Listen::Socket(SocketSpec {
        address: address?,
        name,
        pos: block.pos.clone(),
    }))
}

fn protocol(r: &mut Reader<'_>, key: &'static str) -> Option<Protocol> {
    let pos = r.value(key).map(|v| v.pos.clone())?;
    let text = r.string(key)?;
    match Protocol::parse(&text) {
        Some(p) => Some(p),
        None => {
            let hint = super::node::suggest(&text, Protocol::NAMES)
                .map_or_else(String::new, |h| format!("; {h}"));
            r.error(
                pos,
                key,
                format!("unknown protocol {text:?} (use tcp, tcp4, tcp6 or unix{hint})"),
            );
            None
        }
    }
}

/// Parses `text` as an endpoint of `protocol`. A listen address may leave the host empty (every
/// interface); a forward address may not.
pub fn endpoint(text: &str, protocol: Protocol, listening: bool) -> Result<Endpoint, String> {
    let text = text.trim();
    if protocol == Protocol::Unix {
        if text.is_empty() {
            return Err("a unix socket path must not be empty".into());
        }
        if text.len() >= 108 {
            return Err(format!(
                "a unix socket path must be shorter than 108 bytes (this one has {})",
                text.len()
            ));
        }
        return Ok(Endpoint::Unix(PathBuf::from(text)));
    }
    let (host, port) = text
        .rsplit_once(':')
        .ok_or("expected HOST:PORT (e.g. \"127.0.0.1:8080\"), or set the protocol to unix")?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("port {port:?} is not a number from 0 to 65535"))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() && !listening {
        return Err("the host is missing (e.g. \"127.0.0.1:8081\")".into());
    }
    if port == 0 && !listening {
        return Err("port 0 is not a port to forward to".into());
    }
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        match (protocol, ip) {
            (Protocol::Tcp4, std::net::IpAddr::V6(_)) => {
                return Err("an IPv6 address with protocol tcp4".into())
            }
            (Protocol::Tcp6, std::net::IpAddr::V4(_)) => {
                return Err("an IPv4 address with protocol tcp6".into())
            }
            _ => {}
        }
    } else if host.contains(':') || host.contains('/') || host.contains(' ') {
        return Err(format!("{host:?} is neither an IP address nor a host name"));
    }
    Ok(Endpoint::Inet {
        protocol,
        host: host.to_string(),
        port,
    })
}

/// Checks that span jobs: each address is listened on once, and a lazy job is not `oneTime`.
pub fn check_plan(plan: &super::Plan, errors: &mut Errors) {
    let mut seen: Vec<(&Endpoint, &Pos)> = Vec::new();
    for jl in &plan.listeners {
        let addresses = jl
            .listen
            .iter()
            .map(|l| (&l.address, &l.pos))
            .chain(jl.sockets.iter().map(|s| (&s.address, &s.pos)));
        for (address, pos) in addresses {
            if let Some((_, first)) = seen.iter().find(|(a, _)| same_address(a, address)) {
                errors.push(ConfigError::at(
                    pos.clone(),
                    format!(
                        "job {:?}: {address} is listened on twice (first at {first})",
                        jl.job
                    ),
                ));
            } else {
                seen.push((address, pos));
            }
        }
        if jl.lazy.is_some() {
            if let Some(job) = plan.jobs.iter().find(|j| j.name == jl.job && j.one_time) {
                errors.push(ConfigError::at(
                    job.origin.clone().unwrap_or_else(|| jl.pos.clone()),
                    format!(
                        "job {:?}: a lazy job cannot be oneTime (it is started by connections and stopped when idle)",
                        jl.job
                    ),
                ));
            }
        }
    }
}

fn same_address(a: &Endpoint, b: &Endpoint) -> bool {
    match (a, b) {
        (Endpoint::Unix(x), Endpoint::Unix(y)) => x == y,
        (
            Endpoint::Inet {
                host: h1, port: p1, ..
            },
            Endpoint::Inet {
                host: h2, port: p2, ..
            },
        ) => *p1 != 0 && p1 == p2 && h1.eq_ignore_ascii_case(h2),
        _ => false,
    }
}

/// The listener lines of `gantry check` for one job (empty when it has none).
pub fn describe(listeners: Option<&JobListeners>) -> Vec<String> {
    let Some(jl) = listeners else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(lazy) = jl.lazy {
        out.push(format!(
            "lazy: idle until the first connection; held clients wait up to {:?} for it to answer; stopped after {:?} without connections (its state then says \"cooling down\" with the time left)",
            lazy.spin_up_timeout, lazy.cool_down_timeout
        ));
    }
    for l in &jl.listen {
        let mut extra = Vec::new();
        if let Some(n) = l.max_connections {
            extra.push(format!("at most {n} connection(s)"));
        }
        match l.proxy_protocol {
            Some(ProxyProtocol::V1) => extra.push("PROXY protocol v1".to_string()),
            Some(ProxyProtocol::V2) => extra.push("PROXY protocol v2".to_string()),
            None => {}
        }
        let extra = if extra.is_empty() {
            String::new()
        } else {
            format!(" ({})", extra.join(", "))
        };
        out.push(format!("listen {} -> {}{extra}", l.address, l.forward));
    }
    for (i, s) in jl.sockets.iter().enumerate() {
        out.push(format!(
            "listen {} -> passed to the job as fd {} (socket activation, name {:?})",
            s.address,
            3 + i,
            s.name
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{build_plan, node, Plan};
    use std::path::Path;

    fn plan_of(text: &str) -> Result<Plan, Errors> {
        let mut errors = Errors::default();
        let root = node::parse_file(Path::new("test.hcl"), text, &mut errors);
        let plan = build_plan(&root.blocks, &mut errors);
        if errors.is_empty() {
            Ok(plan)
        } else {
            Err(errors)
        }
    }

    #[test]
    fn mittnites_lazy_example_reads_with_its_defaults() {
        let plan = plan_of(
            r#"
            job webserver {
              command = "/usr/bin/http-server"
              args = ["-p8081", "-a127.0.0.1"]
              lazy {
                spinUpTimeout = "5s"
                coolDownTimeout = "15m"
              }
              listen "0.0.0.0:8080" {
                forward = "127.0.0.1:8081"
              }
            }
            job plain {
              command = "x"
              lazy {}
              listen "/run/a.sock" {
                listenProtocol = "unix"
                forward = "/run/b.sock"
                forwardProtocol = "unix"
              }
            }
            "#,
        )
        .expect("valid");
        let web = &plan.listeners[0];
        assert_eq!(web.job, "webserver");
        assert_eq!(
            web.lazy,
            Some(LazySpec {
                spin_up_timeout: Duration::from_secs(5),
                cool_down_timeout: Duration::from_secs(900)
            })
        );
        assert_eq!(
            web.listen[0].address,
            Endpoint::Inet {
                protocol: Protocol::Tcp,
                host: "0.0.0.0".into(),
                port: 8080
            }
        );
        assert_eq!(web.listen[0].forward.to_string(), "tcp 127.0.0.1:8081");
        let plain = &plan.listeners[1];
        assert_eq!(
            plain.lazy,
            Some(LazySpec {
                spin_up_timeout: DEFAULT_SPIN_UP_TIMEOUT,
                cool_down_timeout: DEFAULT_COOL_DOWN_TIMEOUT
            })
        );
        assert_eq!(
            plain.listen[0].address,
            Endpoint::Unix("/run/a.sock".into())
        );
        assert_eq!(
            plain.listen[0].forward,
            Endpoint::Unix("/run/b.sock".into())
        );
    }

    #[test]
    fn a_listen_block_without_lazy_is_a_forwarder_and_protocol_is_forward_protocol() {
        let plan = plan_of(
            "job a {\n command = \"x\"\n listen \":8080\" {\n  forward = \"/tmp/a.sock\"\n  protocol = \"unix\"\n }\n}\n",
        )
        .expect("valid");
        let a = &plan.listeners[0];
        assert_eq!(a.lazy, None);
        assert_eq!(a.listen[0].forward, Endpoint::Unix("/tmp/a.sock".into()));
        assert_eq!(a.listen[0].address.to_string(), "tcp :8080");
        // mittnite's deprecated name: one warning, at its line, naming the new name.
        assert_eq!(plan.warnings.len(), 1);
        let w = plan.warnings[0].to_string();
        assert!(
            w.starts_with("test.hcl:5:3: listen \":8080\": attribute \"protocol\" is deprecated")
                && w.contains("\"forwardProtocol\""),
            "{w}"
        );
        // Both names at once: an error naming both, not a silent choice.
        let errors = plan_of(
            "job a {\n command = \"x\"\n listen \":8080\" {\n  forward = \"/tmp/a.sock\"\n  protocol = \"unix\"\n  forwardProtocol = \"tcp\"\n }\n}\n",
        )
        .expect_err("both names");
        let text = errors.to_string();
        assert!(
            text.contains("test.hcl:5:3: listen \":8080\": both \"protocol\" (mittnite's deprecated name) and \"forwardProtocol\" (line 6) are set"),
            "{text}"
        );
    }

    #[test]
    fn mistakes_name_file_line_column_and_attribute() {
        let errors = plan_of(
            "job a {\n command = \"x\"\n lazy {\n  spinUpTimeout = \"soon\"\n  coolDown = \"1m\"\n }\n listen \"0.0.0.0\" {\n  forward = \"127.0.0.1:80\"\n }\n listen \"127.0.0.1:9\" {\n  forward = \"nohost\"\n  listenProtocol = \"tcp5\"\n  maxConnections = 0\n  proxyProtocol = \"v3\"\n }\n listen \"127.0.0.1:10\" {}\n}\n",
        )
        .expect_err("invalid");
        let text = errors.to_string();
        for want in [
            "test.hcl:4:19: lazy: attribute \"spinUpTimeout\": invalid duration \"soon\"",
            "test.hcl:5:3: lazy: unknown attribute \"coolDown\" (did you mean \"coolDownTimeout\"?)",
            "test.hcl:7:2: job \"a\": listen address \"0.0.0.0\": expected HOST:PORT",
            "test.hcl:11:13: listen \"127.0.0.1:9\": attribute \"forward\": \"nohost\": expected HOST:PORT",
            "test.hcl:12:20: listen \"127.0.0.1:9\": attribute \"listenProtocol\": unknown protocol \"tcp5\"",
            "test.hcl:13:20: listen \"127.0.0.1:9\": attribute \"maxConnections\": 0 is not allowed",
            "test.hcl:14:19: listen \"127.0.0.1:9\": attribute \"proxyProtocol\": unknown version \"v3\"",
            "test.hcl:16:2: job \"a\": listen \"127.0.0.1:10\": attribute \"forward\" is required",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
    }

    #[test]
    fn lazy_without_listen_and_one_address_twice_are_errors() {
        let errors = plan_of(
            "job a {\n command = \"x\"\n lazy {}\n}\njob b {\n command = \"x\"\n listen \"127.0.0.1:9\" { forward = \"127.0.0.1:10\" }\n}\njob c {\n command = \"x\"\n oneTime = true\n lazy {}\n listen \"127.0.0.1:9\" { forward = \"127.0.0.1:10\" }\n}\n",
        )
        .expect_err("invalid");
        let text = errors.to_string();
        assert!(
            text.contains("test.hcl:3:2: job \"a\": a lazy job needs at least one listen block"),
            "{text}"
        );
        assert!(
            text.contains("test.hcl:13:2: job \"c\": tcp 127.0.0.1:9 is listened on twice (first at test.hcl:7:2)"),
            "{text}"
        );
        assert!(
            text.contains("test.hcl:9:1: job \"c\": a lazy job cannot be oneTime"),
            "{text}"
        );
    }

    #[test]
    fn a_socket_activated_listener_is_read_apart_and_its_mistakes_are_named() {
        let plan = plan_of(
            "job web {\n command = \"x\"\n lazy {}\n listen \"127.0.0.1:9\" {\n  activation = \"socket\"\n }\n listen \"/run/w.sock\" {\n  listenProtocol = \"unix\"\n  activation = \"socket\"\n  name = \"admin\"\n }\n listen \"127.0.0.1:10\" { forward = \"127.0.0.1:11\" }\n}\n",
        )
        .expect("valid");
        let web = &plan.listeners[0];
        assert_eq!(web.listen.len(), 1);
        let names: Vec<&str> = web.sockets.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["web", "admin"], "the job's name unless named");
        assert_eq!(web.sockets[1].address, Endpoint::Unix("/run/w.sock".into()));
        let described = describe(Some(web)).join("\n");
        assert!(
            described.contains("stopped after 900s without connections (its state then says \"cooling down\" with the time left)"),
            "{described}"
        );
        assert!(
            described.contains("listen unix /run/w.sock -> passed to the job as fd 4 (socket activation, name \"admin\")"),
            "{described}"
        );

        let errors = plan_of(
            "job a {\n command = \"x\"\n listen \"127.0.0.1:9\" {\n  activation = \"socket\"\n  forward = \"127.0.0.1:10\"\n  name = \"a:b\"\n }\n listen \"127.0.0.1:11\" {\n  activation = \"sockets\"\n  forward = \"127.0.0.1:12\"\n  name = \"x\"\n }\n listen \"127.0.0.1:11\" {\n  activation = \"socket\"\n }\n}\n",
        )
        .expect_err("invalid");
        let text = errors.to_string();
        for want in [
            "test.hcl:5:13: listen \"127.0.0.1:9\": attribute \"forward\": does not apply with activation = \"socket\"",
            "test.hcl:6:10: listen \"127.0.0.1:9\": attribute \"name\": \"a:b\" is not a socket name",
            "test.hcl:9:16: listen \"127.0.0.1:11\": attribute \"activation\": unknown activation \"sockets\"",
            "test.hcl:11:10: listen \"127.0.0.1:11\": attribute \"name\": only a socket-activated listener",
            "test.hcl:13:2: job \"a\": tcp 127.0.0.1:11 is listened on twice (first at test.hcl:8:2)",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
    }

    #[test]
    fn endpoints() {
        assert_eq!(
            endpoint("[::1]:80", Protocol::Tcp6, false),
            Ok(Endpoint::Inet {
                protocol: Protocol::Tcp6,
                host: "::1".into(),
                port: 80
            })
        );
        assert!(endpoint("127.0.0.1:80", Protocol::Tcp6, false).is_err());
        assert!(endpoint(":80", Protocol::Tcp, false).is_err());
        assert!(endpoint(":80", Protocol::Tcp, true).is_ok());
        assert!(endpoint("localhost:99999", Protocol::Tcp, true).is_err());
        assert!(endpoint("", Protocol::Unix, true).is_err());
    }
}
