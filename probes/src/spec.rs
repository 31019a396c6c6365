//! Probe descriptions as a config file states them (mittnite's HCL probe blocks), and their resolution
//! into a [`Target`].
//!
//! Owns [`ProbeSpec`] — plain data, no serde, no HCL: the config loader walks the HCL and fills it —
//! and the rules mittnite users rely on: default ports, `"ENV:VAR"` values read from the
//! environment, and `url = "…"` shorthand in every block (explicit attributes win over the URL).
//! Also [`SpecError`], the one error type for bad probe URLs and bad probe blocks.

use std::time::Duration;

use crate::redact::{ProbeUrl, Secret};
use crate::target::{
    parse_url, ports, AmqpTarget, Backend, DbTarget, Endpoint, ExecTarget, HttpTarget,
    MongodbTarget, RedisTarget, SmtpTarget, SmtpTls, Target,
};
use crate::BoxProbe;

/// A probe URL or probe block that cannot be used. Never contains a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("probe URL {url}: {reason}")]
    Url { url: String, reason: String },
    #[error("probe {probe:?}: {field}: {reason}")]
    Field {
        probe: String,
        field: &'static str,
        reason: String,
    },
    #[error("probe {probe:?}: {field}: environment variable {var} is not set")]
    MissingEnv {
        probe: String,
        field: &'static str,
        var: String,
    },
    #[error("the {backend} probe is not compiled into this build (cargo feature {backend:?})")]
    Disabled { backend: &'static str },
}

/// `host = { hostname = "db", port = 3306 }`. Either part may be `"ENV:VAR"`; `port` is the number
/// as written (the loader turns an HCL number into its decimal text).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostSpec {
    pub hostname: Option<String>,
    pub port: Option<String>,
}

/// `credentials = { user = "app", password = "ENV:DB_PASSWORD" }`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CredentialsSpec {
    pub user: Option<String>,
    pub password: Option<Secret>,
}

/// `mysql { … }` and (gantry extension) `postgres { … }`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatabaseSpec {
    pub url: Option<ProbeUrl>,
    pub host: Option<HostSpec>,
    pub credentials: Option<CredentialsSpec>,
    pub database: Option<String>,
    pub timeout: Option<String>,
}

/// `redis { host, password }`, plus gantry's `user`, `database` (a number) and `tls`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedisSpec {
    pub url: Option<ProbeUrl>,
    pub host: Option<HostSpec>,
    pub user: Option<String>,
    pub password: Option<Secret>,
    pub database: Option<String>,
    pub tls: Option<bool>,
    pub timeout: Option<String>,
}

/// `amqp { host, credentials, virtualhost }`, plus gantry's `tls`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AmqpSpec {
    pub url: Option<ProbeUrl>,
    pub host: Option<HostSpec>,
    pub credentials: Option<CredentialsSpec>,
    pub virtualhost: Option<String>,
    pub tls: Option<bool>,
    pub timeout: Option<String>,
}

/// `mongodb { url }`, or mittnite's `host`, `credentials`, `database` from which a URL is built.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MongodbSpec {
    pub url: Option<ProbeUrl>,
    pub host: Option<HostSpec>,
    pub credentials: Option<CredentialsSpec>,
    pub database: Option<String>,
    pub timeout: Option<String>,
}

/// `http { scheme, host, path, timeout }`, plus gantry's `method`, `headers`, `status` (`"204"` or
/// `"200-299"`) and `body_contains`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpSpec {
    pub url: Option<ProbeUrl>,
    pub scheme: Option<String>,
    pub host: Option<HostSpec>,
    pub path: Option<String>,
    pub timeout: Option<String>,
    pub method: Option<String>,
    pub headers: Vec<(String, Secret)>,
    pub status: Option<String>,
    pub body_contains: Option<String>,
}

/// `smtp { host }`, plus gantry's `starttls` and `tls` (implicit TLS, port 465).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SmtpSpec {
    pub url: Option<ProbeUrl>,
    pub host: Option<HostSpec>,
    pub starttls: Option<bool>,
    pub tls: Option<bool>,
    pub timeout: Option<String>,
}

/// `tcp { host }` or `tcp { url = "tcp://db:5432" }`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TcpSpec {
    pub url: Option<ProbeUrl>,
    pub host: Option<HostSpec>,
    pub timeout: Option<String>,
}

/// `exec { command = "pg_isready", args = ["-h", "db"] }`: ready when it exits 0.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecSpec {
    pub command: String,
    pub args: Vec<String>,
    pub timeout: Option<String>,
}

/// The body of one `probe "name" { … }` block (`wait` and the name stay with the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeSpec {
    /// `filesystem = "PATH"`.
    Filesystem(String),
    /// `url = "…"` directly in the probe block: any backend, chosen by the scheme.
    Url(ProbeUrl),
    Tcp(TcpSpec),
    Http(HttpSpec),
    Mysql(DatabaseSpec),
    Postgres(DatabaseSpec),
    Redis(RedisSpec),
    Amqp(AmqpSpec),
    Mongodb(MongodbSpec),
    Smtp(SmtpSpec),
    Exec(ExecSpec),
}

/// Builds the probe for the block `probe "<name>" { <spec> }`.
pub fn build_probe(name: &str, spec: &ProbeSpec) -> Result<BoxProbe, SpecError> {
    spec.resolve(name)?.into_probe()
}

/// Resolves values for one probe block, naming the probe and field in every error.
struct Resolver<'a> {
    probe: &'a str,
}

impl Resolver<'_> {
    /// `"ENV:VAR"` → the variable's value; anything else as written.
    fn value(&self, field: &'static str, raw: &str) -> Result<String, SpecError> {
        match raw.strip_prefix("ENV:") {
            Some(var) => std::env::var(var).map_err(|_| SpecError::MissingEnv {
                probe: self.probe.to_string(),
                field,
                var: var.to_string(),
            }),
            None => Ok(raw.to_string()),
        }
    }

    fn opt(&self, field: &'static str, raw: &Option<String>) -> Result<Option<String>, SpecError> {
        raw.as_deref().map(|r| self.value(field, r)).transpose()
    }

    /// [`Resolver::opt`] for a secret; a missing variable's error names the variable, never a value.
    fn secret(
        &self,
        field: &'static str,
        raw: &Option<Secret>,
    ) -> Result<Option<Secret>, SpecError> {
        raw.as_ref()
            .map(|r| self.value(field, r.expose()).map(Secret::new))
            .transpose()
    }

    fn field_err(&self, field: &'static str, reason: impl Into<String>) -> SpecError {
        SpecError::Field {
            probe: self.probe.to_string(),
            field,
            reason: reason.into(),
        }
    }

    /// The URL shorthand, checked to be of the block's own kind.
    fn url(&self, raw: &Option<ProbeUrl>, kind: &'static str) -> Result<Option<Target>, SpecError> {
        let raw = raw.as_ref().map(|u| u.as_str().to_string());
        let Some(url) = self.opt("url", &raw)? else {
            return Ok(None);
        };
        let target = parse_url(&url)?;
        if target.kind() != kind {
            return Err(self.field_err("url", format!("a {} URL in a {kind} block", target.kind())));
        }
        Ok(Some(target))
    }

    /// `host = {…}` over a base endpoint (from the URL, or localhost and the default port).
    fn endpoint(
        &self,
        host: &Option<HostSpec>,
        base: Option<Endpoint>,
        default_port: u16,
    ) -> Result<Endpoint, SpecError> {
        let mut e = base.unwrap_or(Endpoint {
            host: "localhost".into(),
            port: default_port,
        });
        if let Some(h) = host {
            if let Some(name) = self.opt("host.hostname", &h.hostname)? {
                e.host = name;
            }
            if let Some(port) = self.opt("host.port", &h.port)? {
                e.port = port
                    .trim()
                    .parse()
                    .map_err(|_| self.field_err("host.port", format!("{port:?} is not a port")))?;
            }
        }
        if e.host.is_empty() {
            return Err(self.field_err("host.hostname", "empty"));
        }
        Ok(e)
    }

    fn credentials(
        &self,
        c: &Option<CredentialsSpec>,
    ) -> Result<(Option<String>, Option<Secret>), SpecError> {
        match c {
            None => Ok((None, None)),
            Some(c) => Ok((
                self.opt("credentials.user", &c.user)?,
                self.secret("credentials.password", &c.password)?,
            )),
        }
    }

    fn timeout(&self, raw: &Option<String>, base: Duration) -> Result<Duration, SpecError> {
        match self.opt("timeout", raw)? {
            None => Ok(base),
            Some(t) => {
                crate::duration::parse_duration(&t).map_err(|e| self.field_err("timeout", e))
            }
        }
    }
}

impl ProbeSpec {
    /// Reads `ENV:` values, applies defaults and the URL shorthand, and checks every value.
    pub fn resolve(&self, name: &str) -> Result<Target, SpecError> {
        let r = Resolver { probe: name };
        match self {
            ProbeSpec::Filesystem(path) => {
                let path = r.value("filesystem", path)?;
                if path.is_empty() {
                    return Err(r.field_err("filesystem", "empty path"));
                }
                Ok(Target::new(Backend::Filesystem(path.into())))
            }
            ProbeSpec::Url(url) => parse_url(&r.value("url", url.as_str())?),
            ProbeSpec::Tcp(s) => {
                let base = r.url(&s.url, "tcp")?;
                let (ep, t) = match base {
                    Some(Target {
                        backend: Backend::Tcp(e),
                        timeout,
                    }) => (Some(e), timeout),
                    _ => (None, crate::DEFAULT_ATTEMPT_TIMEOUT),
                };
                if ep.is_none() && s.host.as_ref().and_then(|h| h.port.as_ref()).is_none() {
                    return Err(r.field_err("host.port", "a tcp probe needs a port"));
                }
                let mut target = Target::new(Backend::Tcp(r.endpoint(&s.host, ep, 0)?));
                target.timeout = r.timeout(&s.timeout, t)?;
                Ok(target)
            }
            ProbeSpec::Mysql(s) => self.database(&r, s, "mysql", ports::MYSQL),
            ProbeSpec::Postgres(s) => self.database(&r, s, "postgres", ports::POSTGRES),
            ProbeSpec::Redis(s) => {
                let base = match r.url(&s.url, "redis")? {
                    Some(Target {
                        backend: Backend::Redis(t),
                        ..
                    }) => Some(t),
                    _ => None,
                };
                let mut t = base.unwrap_or(RedisTarget {
                    endpoint: Endpoint {
                        host: "localhost".into(),
                        port: ports::REDIS,
                    },
                    tls: false,
                    user: None,
                    password: None,
                    db: 0,
                });
                t.endpoint = r.endpoint(&s.host, Some(t.endpoint), ports::REDIS)?;
                if let Some(user) = r.opt("user", &s.user)? {
                    t.user = Some(user);
                }
                if let Some(pw) = r.secret("password", &s.password)? {
                    t.password = Some(pw);
                }
                if let Some(db) = r.opt("database", &s.database)? {
                    t.db = db.trim().parse().map_err(|_| {
                        r.field_err("database", format!("{db:?} is not a database number"))
                    })?;
                }
                if let Some(tls) = s.tls {
                    t.tls = tls;
                }
                let mut target = Target::new(Backend::Redis(t));
                target.timeout = r.timeout(&s.timeout, target.timeout)?;
                Ok(target)
            }
            ProbeSpec::Amqp(s) => {
                let base = match r.url(&s.url, "amqp")? {
                    Some(Target {
                        backend: Backend::Amqp(t),
                        ..
                    }) => Some(t),
                    _ => None,
                };
                let mut t = base.unwrap_or(AmqpTarget {
                    endpoint: Endpoint {
                        host: "localhost".into(),
                        port: ports::AMQP,
                    },
                    tls: false,
                    user: "guest".into(),
                    password: Secret::new("guest"),
                    vhost: "/".into(),
                });
                if let Some(tls) = s.tls {
                    if tls && !t.tls && t.endpoint.port == ports::AMQP {
                        t.endpoint.port = ports::AMQPS;
                    }
                    t.tls = tls;
                }
                let default_port = if t.tls { ports::AMQPS } else { ports::AMQP };
                t.endpoint = r.endpoint(&s.host, Some(t.endpoint), default_port)?;
                let (user, password) = r.credentials(&s.credentials)?;
                if let Some(u) = user {
                    t.user = u;
                }
                if let Some(p) = password {
                    t.password = p;
                }
                if let Some(v) = r.opt("virtualhost", &s.virtualhost)? {
                    t.vhost = if v.is_empty() { "/".into() } else { v };
                }
                let mut target = Target::new(Backend::Amqp(t));
                target.timeout = r.timeout(&s.timeout, target.timeout)?;
                Ok(target)
            }
            ProbeSpec::Mongodb(s) => {
                let mut target = match r.url(&s.url, "mongodb")? {
                    Some(t) => t,
                    None => {
                        let ep = r.endpoint(&s.host, None, ports::MONGODB)?;
                        let (user, password) = r.credentials(&s.credentials)?;
                        let enc = |v: &str| {
                            percent_encoding::utf8_percent_encode(
                                v,
                                percent_encoding::NON_ALPHANUMERIC,
                            )
                            .to_string()
                        };
                        let auth = match (&user, &password) {
                            (Some(u), Some(p)) => format!("{}:{}@", enc(u), enc(p.expose())),
                            (Some(u), None) => format!("{}@", enc(u)),
                            _ => String::new(),
                        };
                        let db = r.opt("database", &s.database)?.unwrap_or_default();
                        Target::new(Backend::Mongodb(MongodbTarget {
                            url: format!("mongodb://{auth}{ep}/{}", enc(&db)),
                            password,
                        }))
                    }
                };
                target.timeout = r.timeout(&s.timeout, target.timeout)?;
                Ok(target)
            }
            ProbeSpec::Http(s) => {
                let mut t = match r.url(&s.url, "http")? {
                    Some(Target {
                        backend: Backend::Http(t),
                        ..
                    }) => t,
                    _ => {
                        let scheme = r.opt("scheme", &s.scheme)?.unwrap_or_else(|| "http".into());
                        let default_port = match scheme.as_str() {
                            "http" => ports::HTTP,
                            "https" => ports::HTTPS,
                            other => {
                                return Err(r.field_err(
                                    "scheme",
                                    format!("{other:?} (expected http or https)"),
                                ))
                            }
                        };
                        let ep = r.endpoint(&s.host, None, default_port)?;
                        let path = r.opt("path", &s.path)?.unwrap_or_default();
                        let slash = if path.starts_with('/') { "" } else { "/" };
                        HttpTarget {
                            url: format!("{scheme}://{ep}{slash}{path}"),
                            method: "GET".into(),
                            headers: Vec::new(),
                            status: (200, 399),
                            body_contains: None,
                        }
                    }
                };
                if let Some(m) = r.opt("method", &s.method)? {
                    t.method = m.to_ascii_uppercase();
                }
                for (k, v) in &s.headers {
                    t.headers
                        .push((k.clone(), Secret::new(r.value("headers", v.expose())?)));
                }
                if let Some(st) = r.opt("status", &s.status)? {
                    t.status = parse_status(&st).map_err(|e| r.field_err("status", e))?;
                }
                t.body_contains = r.opt("body_contains", &s.body_contains)?;
                let mut target = Target::new(Backend::Http(t));
                target.timeout = r.timeout(&s.timeout, target.timeout)?;
                Ok(target)
            }
            ProbeSpec::Smtp(s) => {
                let mut t = match r.url(&s.url, "smtp")? {
                    Some(Target {
                        backend: Backend::Smtp(t),
                        ..
                    }) => t,
                    _ => SmtpTarget {
                        endpoint: Endpoint {
                            host: "localhost".into(),
                            port: if s.tls == Some(true) {
                                ports::SMTPS
                            } else {
                                ports::SMTP
                            },
                        },
                        tls: SmtpTls::None,
                    },
                };
                if s.tls == Some(true) {
                    t.tls = SmtpTls::Implicit;
                } else if s.starttls == Some(true) {
                    t.tls = SmtpTls::StartTls;
                }
                let default_port = t.endpoint.port;
                t.endpoint = r.endpoint(&s.host, Some(t.endpoint), default_port)?;
                let mut target = Target::new(Backend::Smtp(t));
                target.timeout = r.timeout(&s.timeout, target.timeout)?;
                Ok(target)
            }
            ProbeSpec::Exec(s) => {
                let program = r.value("command", &s.command)?;
                if program.trim().is_empty() {
                    return Err(r.field_err("command", "empty"));
                }
                let mut args = Vec::with_capacity(s.args.len());
                let mut secrets = Vec::new();
                for raw in &s.args {
                    let arg = r.value("args", raw)?;
                    if raw.starts_with("ENV:") {
                        secrets.push(Secret::new(arg.clone()));
                    }
                    args.push(arg);
                }
                let mut target = Target::new(Backend::Exec(ExecTarget {
                    program,
                    args,
                    secrets,
                }));
                target.timeout = r.timeout(&s.timeout, target.timeout)?;
                Ok(target)
            }
        }
    }

    fn database(
        &self,
        r: &Resolver<'_>,
        s: &DatabaseSpec,
        kind: &'static str,
        default_port: u16,
    ) -> Result<Target, SpecError> {
        let base = match r.url(&s.url, kind)? {
            Some(Target {
                backend: Backend::Mysql(t) | Backend::Postgres(t),
                ..
            }) => Some(t),
            _ => None,
        };
        let mut t = base.unwrap_or(DbTarget {
            endpoint: Endpoint {
                host: "localhost".into(),
                port: default_port,
            },
            user: None,
            password: None,
            database: None,
        });
        t.endpoint = r.endpoint(&s.host, Some(t.endpoint), default_port)?;
        let (user, password) = r.credentials(&s.credentials)?;
        if user.is_some() {
            t.user = user;
        }
        if password.is_some() {
            t.password = password;
        }
        if let Some(db) = r.opt("database", &s.database)? {
            t.database = Some(db).filter(|d| !d.is_empty());
        }
        let backend = if kind == "mysql" {
            Backend::Mysql(t)
        } else {
            Backend::Postgres(t)
        };
        let mut target = Target::new(backend);
        target.timeout = r.timeout(&s.timeout, target.timeout)?;
        Ok(target)
    }
}

/// `"204"` or `"200-299"`.
fn parse_status(s: &str) -> Result<(u16, u16), String> {
    let bad = || format!("{s:?} (expected a status such as 204 or a range such as 200-299)");
    let (lo, hi) = match s.split_once('-') {
        Some((a, b)) => (a.trim(), b.trim()),
        None => (s.trim(), s.trim()),
    };
    let lo: u16 = lo.parse().map_err(|_| bad())?;
    let hi: u16 = hi.parse().map_err(|_| bad())?;
    if !(100..=599).contains(&lo) || !(100..=599).contains(&hi) || lo > hi {
        return Err(bad());
    }
    Ok((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(h: &str, p: Option<&str>) -> Option<HostSpec> {
        Some(HostSpec {
            hostname: Some(h.into()),
            port: p.map(Into::into),
        })
    }

    #[test]
    fn a_probe_timeout_takes_every_duration_the_rest_of_gantry_takes() {
        // One parser for every duration: `1d` and `1.5h` work here as they do in `stopTimeout`.
        for (text, secs) in [("1d", 86_400), ("1.5h", 5_400), ("2", 2), ("1m30s", 90)] {
            let spec = ProbeSpec::Tcp(TcpSpec {
                url: None,
                host: host("db", Some("5432")),
                timeout: Some(text.into()),
            });
            let target = spec.resolve("p").expect(text);
            assert_eq!(target.timeout, Duration::from_secs(secs), "{text}");
        }
    }

    #[test]
    fn mittnite_mysql_block_with_default_port_and_env_password() {
        std::env::set_var("GANTRY_SPEC_TEST_PW", "from-env");
        let spec = ProbeSpec::Mysql(DatabaseSpec {
            host: host("db", None),
            credentials: Some(CredentialsSpec {
                user: Some("foo".into()),
                password: Some("ENV:GANTRY_SPEC_TEST_PW".into()),
            }),
            ..Default::default()
        });
        let Backend::Mysql(t) = spec
            .resolve("mysql")
            .map(|t| t.backend)
            .unwrap_or_else(|e| panic!("{e}"))
        else {
            panic!("not mysql")
        };
        assert_eq!(t.endpoint.to_string(), "db:3306");
        assert_eq!(t.password.as_ref().map(Secret::expose), Some("from-env"));
    }

    #[test]
    fn missing_env_names_probe_field_and_variable() {
        let spec = ProbeSpec::Redis(RedisSpec {
            password: Some("ENV:GANTRY_SPEC_TEST_UNSET".into()),
            ..Default::default()
        });
        let e = spec.resolve("cache").unwrap_err().to_string();
        assert_eq!(
            e,
            "probe \"cache\": password: environment variable GANTRY_SPEC_TEST_UNSET is not set"
        );
    }

    #[test]
    fn explicit_attributes_override_the_url() {
        let spec = ProbeSpec::Amqp(AmqpSpec {
            url: Some("amqp://u:p@mq/one".into()),
            virtualhost: Some("two".into()),
            host: host("mq2", Some("5673")),
            ..Default::default()
        });
        let Backend::Amqp(t) = spec
            .resolve("amqp")
            .map(|t| t.backend)
            .unwrap_or_else(|e| panic!("{e}"))
        else {
            panic!("not amqp")
        };
        assert_eq!(
            (t.vhost.as_str(), t.endpoint.to_string()),
            ("two", "mq2:5673".into())
        );
        assert_eq!(t.user, "u");
    }

    #[test]
    fn url_of_another_kind_is_rejected() {
        let spec = ProbeSpec::Mysql(DatabaseSpec {
            url: Some("redis://h".into()),
            ..Default::default()
        });
        let e = spec.resolve("db").unwrap_err().to_string();
        assert!(e.contains("a redis URL in a mysql block"), "{e}");
    }

    #[test]
    fn mittnite_http_block() {
        let spec = ProbeSpec::Http(HttpSpec {
            scheme: Some("http".into()),
            host: host("localhost", Some("8080")),
            path: Some("/status".into()),
            timeout: Some("3s".into()),
            ..Default::default()
        });
        let t = spec.resolve("http").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.timeout, Duration::from_secs(3));
        let Backend::Http(h) = t.backend else {
            panic!("not http")
        };
        assert_eq!(h.url, "http://localhost:8080/status");
    }

    #[test]
    fn mongodb_block_from_parts_encodes_credentials() {
        let spec = ProbeSpec::Mongodb(MongodbSpec {
            host: host("mongo", None),
            credentials: Some(CredentialsSpec {
                user: Some("u".into()),
                password: Some("p@ss".into()),
            }),
            database: Some("app".into()),
            ..Default::default()
        });
        let Backend::Mongodb(m) = spec
            .resolve("m")
            .map(|t| t.backend)
            .unwrap_or_else(|e| panic!("{e}"))
        else {
            panic!("not mongodb")
        };
        assert_eq!(m.url, "mongodb://u:p%40ss@mongo:27017/app");
    }

    #[test]
    fn status_ranges() {
        assert_eq!(parse_status("204"), Ok((204, 204)));
        assert_eq!(parse_status("200-299"), Ok((200, 299)));
        assert!(parse_status("299-200").is_err());
        assert!(parse_status("ok").is_err());
    }
}
