//! What to probe, resolved: host, port, credentials, options — and the URL form of every backend.
//!
//! Owns [`Target`] (one probe, ready to build), [`parse_url`] (`tcp://`, `http(s)://`, `mysql://`,
//! `postgres(ql)://`, `redis(s)://`, `amqp(s)://`, `mongodb://`, `smtp(s)://`, `file://`) and the
//! default port of each backend. It does not talk to the network; the backend modules do.
//! HCL-shaped input goes through [`crate::spec`] and ends up here too.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use percent_encoding::percent_decode_str;

use crate::redact::{redact_url, Secret};
use crate::spec::SpecError;
use crate::{BoxProbe, DEFAULT_ATTEMPT_TIMEOUT};

/// Where a server listens. `host` has no IPv6 brackets; `Display` adds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Default ports, one place.
pub mod ports {
    pub const HTTP: u16 = 80;
    pub const HTTPS: u16 = 443;
    pub const MYSQL: u16 = 3306;
    pub const POSTGRES: u16 = 5432;
    pub const REDIS: u16 = 6379;
    pub const AMQP: u16 = 5672;
    pub const AMQPS: u16 = 5671;
    pub const MONGODB: u16 = 27017;
    pub const SMTP: u16 = 25;
    pub const SMTPS: u16 = 465;
}

/// One probe, fully resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub backend: Backend,
    /// Limit for one attempt.
    pub timeout: Duration,
}

/// The backend and its settings.
#[derive(Debug, Clone, PartialEq)]
pub enum Backend {
    Tcp(Endpoint),
    Http(HttpTarget),
    Mysql(DbTarget),
    Postgres(DbTarget),
    Redis(RedisTarget),
    Amqp(AmqpTarget),
    Mongodb(MongodbTarget),
    Smtp(SmtpTarget),
    Filesystem(PathBuf),
    Exec(ExecTarget),
}

#[derive(Clone, PartialEq)]
pub struct HttpTarget {
    /// The full URL as given; may contain credentials, so it is only shown through [`redact_url`].
    pub url: String,
    pub method: String,
    /// Header values may be tokens (`Authorization`), so they are secrets.
    pub headers: Vec<(String, Secret)>,
    /// Accepted status codes, inclusive. Default 200–399.
    pub status: (u16, u16),
    pub body_contains: Option<String>,
}

/// MySQL or PostgreSQL.
#[derive(Debug, Clone, PartialEq)]
pub struct DbTarget {
    pub endpoint: Endpoint,
    pub user: Option<String>,
    pub password: Option<Secret>,
    pub database: Option<String>,
}

impl DbTarget {
    /// `mysql db:3306/app as app`.
    pub fn describe(&self, kind: &str) -> String {
        let mut s = format!("{kind} {}", self.endpoint);
        if let Some(db) = &self.database {
            s.push('/');
            s.push_str(db);
        }
        if let Some(u) = &self.user {
            s.push_str(" as ");
            s.push_str(u);
        }
        s
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RedisTarget {
    pub endpoint: Endpoint,
    pub tls: bool,
    pub user: Option<String>,
    pub password: Option<Secret>,
    pub db: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AmqpTarget {
    pub endpoint: Endpoint,
    pub tls: bool,
    pub user: String,
    pub password: Secret,
    /// Already percent-decoded: `/` for the default vhost.
    pub vhost: String,
}

#[derive(Clone, PartialEq)]
pub struct MongodbTarget {
    /// The connection string as the driver takes it; may hold a password.
    pub url: String,
    /// The password inside `url`, kept apart so error texts can be scrubbed of it.
    pub password: Option<Secret>,
}

// The URLs may hold a password: `Debug` shows them as `redact_url` does.
impl fmt::Debug for HttpTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpTarget")
            .field("url", &redact_url(&self.url))
            .field("method", &self.method)
            .field("headers", &self.headers)
            .field("status", &self.status)
            .field("body_contains", &self.body_contains)
            .finish()
    }
}

impl fmt::Debug for MongodbTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongodbTarget")
            .field("url", &redact_url(&self.url))
            .field("password", &self.password)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain SMTP.
    None,
    /// Plain greeting, then STARTTLS; fails if the server does not offer it.
    StartTls,
    /// TLS from the first byte (`smtps://`, port 465).
    Implicit,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SmtpTarget {
    pub endpoint: Endpoint,
    pub tls: SmtpTls,
}

#[derive(Clone, PartialEq)]
pub struct ExecTarget {
    pub program: String,
    /// As the command gets them, `ENV:` values already read.
    pub args: Vec<String>,
    /// The arguments that were read from the environment (`"ENV:TOKEN"`): they may be tokens or
    /// passwords, so they are scrubbed from everything the probe reports (the command's own output
    /// included) and `Debug` shows them as `***`.
    pub secrets: Vec<Secret>,
}

impl fmt::Debug for ExecTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secrets: Vec<&Secret> = self.secrets.iter().collect();
        let args: Vec<String> = self
            .args
            .iter()
            .map(|a| Secret::scrub_all(a, &secrets))
            .collect();
        f.debug_struct("ExecTarget")
            .field("program", &self.program)
            .field("args", &args)
            .finish_non_exhaustive()
    }
}

impl Target {
    pub fn new(backend: Backend) -> Target {
        Target {
            backend,
            timeout: DEFAULT_ATTEMPT_TIMEOUT,
        }
    }

    /// The backend's name as users write it (`mysql`, `redis`...).
    pub fn kind(&self) -> &'static str {
        match &self.backend {
            Backend::Tcp(_) => "tcp",
            Backend::Http(_) => "http",
            Backend::Mysql(_) => "mysql",
            Backend::Postgres(_) => "postgres",
            Backend::Redis(_) => "redis",
            Backend::Amqp(_) => "amqp",
            Backend::Mongodb(_) => "mongodb",
            Backend::Smtp(_) => "smtp",
            Backend::Filesystem(_) => "filesystem",
            Backend::Exec(_) => "exec",
        }
    }

    /// `Err(SpecError::Disabled)` when the backend's cargo feature is off in this build, so that a
    /// configuration or URL can be refused when it is read rather than when the probe is built.
    pub fn check_compiled(&self) -> Result<(), SpecError> {
        let compiled = match &self.backend {
            Backend::Tcp(_) | Backend::Filesystem(_) | Backend::Exec(_) => true,
            Backend::Http(_) => cfg!(feature = "http"),
            Backend::Mysql(_) => cfg!(feature = "mysql"),
            Backend::Postgres(_) => cfg!(feature = "postgres"),
            Backend::Redis(_) => cfg!(feature = "redis"),
            Backend::Amqp(_) => cfg!(feature = "amqp"),
            Backend::Mongodb(_) => cfg!(feature = "mongodb"),
            Backend::Smtp(_) => cfg!(feature = "smtp"),
        };
        if compiled {
            Ok(())
        } else {
            Err(SpecError::Disabled {
                backend: self.kind(),
            })
        }
    }

    /// Builds the probe. Fails only when the backend's cargo feature is off in this build.
    pub fn into_probe(self) -> Result<BoxProbe, SpecError> {
        let timeout = self.timeout;
        let kind = self.kind();
        let probe: Option<BoxProbe> = match self.backend {
            Backend::Tcp(e) => Some(Box::new(crate::tcp::TcpProbe::new(e, timeout))),
            Backend::Filesystem(p) => Some(Box::new(crate::filesystem::FilesystemProbe::new(
                p, timeout,
            ))),
            Backend::Exec(t) => Some(Box::new(crate::exec::ExecProbe::new(t, timeout))),
            #[cfg(feature = "http")]
            Backend::Http(t) => Some(Box::new(crate::http::HttpProbe::new(t, timeout)?)),
            #[cfg(feature = "mysql")]
            Backend::Mysql(t) => Some(Box::new(crate::mysql::MysqlProbe::new(t, timeout))),
            #[cfg(feature = "postgres")]
            Backend::Postgres(t) => Some(Box::new(crate::postgres::PostgresProbe::new(t, timeout))),
            #[cfg(feature = "redis")]
            Backend::Redis(t) => Some(Box::new(crate::redis::RedisProbe::new(t, timeout))),
            #[cfg(feature = "amqp")]
            Backend::Amqp(t) => Some(Box::new(crate::amqp::AmqpProbe::new(t, timeout))),
            #[cfg(feature = "mongodb")]
            Backend::Mongodb(t) => Some(Box::new(crate::mongodb::MongodbProbe::new(t, timeout))),
            #[cfg(feature = "smtp")]
            Backend::Smtp(t) => Some(Box::new(crate::smtp::SmtpProbe::new(t, timeout))),
            #[allow(unreachable_patterns)]
            _ => None,
        };
        probe.ok_or(SpecError::Disabled { backend: kind })
    }
}

fn url_err(raw: &str, reason: impl Into<String>) -> SpecError {
    SpecError::Url {
        url: redact_url(raw),
        reason: reason.into(),
    }
}

fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// Parses one probe URL. The scheme picks the backend; a missing port gets the backend's default
/// (`tcp://` has none and needs one). Errors name the URL with its password hidden.
pub fn parse_url(raw: &str) -> Result<Target, SpecError> {
    let raw = raw.trim();
    let Some((scheme, _)) = raw.split_once("://") else {
        return Err(url_err(
            raw,
            "expected SCHEME://..., e.g. tcp://db:5432 or mysql://user:pass@db/app",
        ));
    };
    let scheme = scheme.to_ascii_lowercase();
    // MongoDB connection strings may list several hosts, which is not a URL; the driver parses them.
    if scheme == "mongodb" || scheme == "mongodb+srv" {
        return parse_mongodb(raw, &scheme);
    }
    let url = url::Url::parse(raw).map_err(|e| url_err(raw, e.to_string()))?;
    let backend = match scheme.as_str() {
        "tcp" => Backend::Tcp(endpoint(raw, &url, None)?),
        "http" | "https" => Backend::Http(HttpTarget {
            url: raw.to_string(),
            method: "GET".into(),
            headers: Vec::new(),
            status: (200, 399),
            body_contains: None,
        }),
        "mysql" => Backend::Mysql(db(raw, &url, ports::MYSQL)?),
        "postgres" | "postgresql" => Backend::Postgres(db(raw, &url, ports::POSTGRES)?),
        "redis" | "rediss" => {
            let db = match url.path().trim_start_matches('/') {
                "" => 0,
                n => n
                    .parse()
                    .map_err(|_| url_err(raw, format!("database {n:?} is not a number")))?,
            };
            Backend::Redis(RedisTarget {
                endpoint: endpoint(raw, &url, Some(ports::REDIS))?,
                tls: scheme == "rediss",
                user: user(&url),
                password: password(&url),
                db,
            })
        }
        "amqp" | "amqps" => {
            let tls = scheme == "amqps";
            let port = if tls { ports::AMQPS } else { ports::AMQP };
            // `amqp://h` and `amqp://h/` both mean the default vhost `/`; `%2f` is `/` too.
            let vhost = match url.path().strip_prefix('/').unwrap_or("") {
                "" => "/".to_string(),
                v => decode(v),
            };
            Backend::Amqp(AmqpTarget {
                endpoint: endpoint(raw, &url, Some(port))?,
                tls,
                user: user(&url).unwrap_or_else(|| "guest".into()),
                password: password(&url).unwrap_or_else(|| Secret::new("guest")),
                vhost,
            })
        }
        "smtp" | "smtps" => {
            let implicit = scheme == "smtps";
            let mut tls = if implicit {
                SmtpTls::Implicit
            } else {
                SmtpTls::None
            };
            for (k, v) in url.query_pairs() {
                match (k.as_ref(), v.as_ref()) {
                    ("starttls", "1" | "true" | "yes" | "required") if !implicit => {
                        tls = SmtpTls::StartTls
                    }
                    ("starttls", "0" | "false" | "no") => {}
                    (k, _) => {
                        return Err(url_err(
                            raw,
                            format!("unknown option {k:?} (smtp takes starttls=true)"),
                        ))
                    }
                }
            }
            let port = if implicit { ports::SMTPS } else { ports::SMTP };
            Backend::Smtp(SmtpTarget {
                endpoint: endpoint(raw, &url, Some(port))?,
                tls,
            })
        }
        "file" => {
            let path = url
                .to_file_path()
                .map_err(|_| url_err(raw, "expected file:///absolute/path"))?;
            Backend::Filesystem(path)
        }
        other => {
            return Err(url_err(
                raw,
                format!(
                    "unknown scheme {other:?} (expected tcp, http, https, mysql, postgres, redis, \
                     rediss, amqp, amqps, mongodb, smtp, smtps or file)"
                ),
            ))
        }
    };
    Ok(Target::new(backend))
}

fn parse_mongodb(raw: &str, scheme: &str) -> Result<Target, SpecError> {
    if scheme == "mongodb+srv" {
        return Err(url_err(
            raw,
            "mongodb+srv:// needs DNS SRV lookups, which this build leaves out; list the hosts",
        ));
    }
    let rest = &raw[scheme.len() + 3..];
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let hosts = match authority.rfind('@') {
        Some(at) => &authority[at + 1..],
        None => authority,
    };
    if hosts.is_empty() {
        return Err(url_err(raw, "no host"));
    }
    let password = authority
        .rfind('@')
        .and_then(|at| authority[..at].split_once(':'))
        .map(|(_, p)| Secret::new(decode(p)));
    Ok(Target::new(Backend::Mongodb(MongodbTarget {
        url: raw.to_string(),
        password,
    })))
}

fn endpoint(raw: &str, url: &url::Url, default_port: Option<u16>) -> Result<Endpoint, SpecError> {
    let host = match url.host() {
        Some(url::Host::Ipv6(a)) => a.to_string(),
        Some(h) => h.to_string(),
        None => return Err(url_err(raw, "no host")),
    };
    if host.is_empty() {
        return Err(url_err(raw, "no host"));
    }
    let port = match (url.port(), default_port) {
        (Some(p), _) => p,
        (None, Some(p)) => p,
        (None, None) => {
            return Err(url_err(
                raw,
                "no port (tcp:// needs one, e.g. tcp://db:5432)",
            ))
        }
    };
    Ok(Endpoint { host, port })
}

fn user(url: &url::Url) -> Option<String> {
    Some(decode(url.username())).filter(|u| !u.is_empty())
}

fn password(url: &url::Url) -> Option<Secret> {
    url.password().map(|p| Secret::new(decode(p)))
}

fn db(raw: &str, url: &url::Url, port: u16) -> Result<DbTarget, SpecError> {
    let database = Some(decode(url.path().trim_start_matches('/'))).filter(|d| !d.is_empty());
    Ok(DbTarget {
        endpoint: endpoint(raw, url, Some(port))?,
        user: user(url),
        password: password(url),
        database,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(raw: &str) -> Backend {
        match parse_url(raw) {
            Ok(t) => t.backend,
            Err(e) => panic!("{raw}: {e}"),
        }
    }

    #[test]
    fn mysql_url_with_credentials_and_default_port() {
        let Backend::Mysql(d) = backend("mysql://app:p%40ss@db/shop") else {
            panic!("not mysql")
        };
        assert_eq!(d.endpoint.to_string(), "db:3306");
        assert_eq!(d.user.as_deref(), Some("app"));
        assert_eq!(d.password.as_ref().map(Secret::expose), Some("p@ss"));
        assert_eq!(d.database.as_deref(), Some("shop"));
    }

    #[test]
    fn postgresql_alias_and_ipv6_host() {
        let Backend::Postgres(d) = backend("postgresql://[::1]/x") else {
            panic!("not postgres")
        };
        assert_eq!(d.endpoint.host, "::1");
        assert_eq!(d.endpoint.to_string(), "[::1]:5432");
    }

    #[test]
    fn redis_password_only_user_and_db() {
        let Backend::Redis(r) = backend("redis://:pw@h/2") else {
            panic!("not redis")
        };
        assert_eq!((r.user, r.db, r.tls), (None, 2, false));
        assert_eq!(r.password.as_ref().map(Secret::expose), Some("pw"));
        let Backend::Redis(r) = backend("rediss://u:pw@h:6380") else {
            panic!("not redis")
        };
        assert_eq!(
            (r.user.as_deref(), r.db, r.tls, r.endpoint.port),
            (Some("u"), 0, true, 6380)
        );
        assert!(parse_url("redis://h/two").is_err());
    }

    #[test]
    fn amqp_vhost_is_percent_decoded_and_defaults_to_slash() {
        let Backend::Amqp(a) = backend("amqp://u:p@h/%2f") else {
            panic!("not amqp")
        };
        assert_eq!(a.vhost, "/");
        let Backend::Amqp(a) = backend("amqps://h/shop%2Fprod") else {
            panic!("not amqp")
        };
        assert_eq!(
            (a.vhost.as_str(), a.endpoint.port, a.tls),
            ("shop/prod", 5671, true)
        );
        assert_eq!(a.user, "guest");
        let Backend::Amqp(a) = backend("amqp://h") else {
            panic!("not amqp")
        };
        assert_eq!(a.vhost, "/");
    }

    #[test]
    fn smtp_variants() {
        let Backend::Smtp(s) = backend("smtp://mx") else {
            panic!("not smtp")
        };
        assert_eq!((s.endpoint.port, s.tls), (25, SmtpTls::None));
        let Backend::Smtp(s) = backend("smtp://mx:587?starttls=true") else {
            panic!("not smtp")
        };
        assert_eq!(s.tls, SmtpTls::StartTls);
        let Backend::Smtp(s) = backend("smtps://mx") else {
            panic!("not smtp")
        };
        assert_eq!((s.endpoint.port, s.tls), (465, SmtpTls::Implicit));
    }

    #[test]
    fn file_tcp_mongodb_http() {
        assert_eq!(
            backend("file:///etc/x"),
            Backend::Filesystem("/etc/x".into())
        );
        assert_eq!(
            backend("tcp://db:1"),
            Backend::Tcp(Endpoint {
                host: "db".into(),
                port: 1
            })
        );
        let Backend::Mongodb(m) = backend("mongodb://u:pw@a:1,b:2/db") else {
            panic!("not mongodb")
        };
        assert_eq!(m.password.as_ref().map(Secret::expose), Some("pw"));
        let Backend::Http(h) = backend("https://h/status") else {
            panic!("not http")
        };
        assert_eq!(h.status, (200, 399));
    }

    #[test]
    fn errors_name_the_url_without_its_password() {
        let e = parse_url("mysql://app:hunter22@/x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("mysql://app:***@/x"), "{e}");
        assert!(!e.contains("hunter22"), "{e}");
        let e = parse_url("tcp://db").unwrap_err().to_string();
        assert!(e.contains("no port"), "{e}");
        let e = parse_url("gopher://h").unwrap_err().to_string();
        assert!(e.contains("unknown scheme \"gopher\""), "{e}");
        let e = parse_url("db:3306").unwrap_err().to_string();
        assert!(e.contains("SCHEME://"), "{e}");
    }
}
