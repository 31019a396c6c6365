//! `probe` blocks: mittnite's probe schema, read into `gantry_probes::ProbeSpec`.
//!
//! Owns the HCL side only — attribute names, which backend block is present, where each value was
//! written. What the values mean (default ports, `"ENV:VAR"`, URL shorthand) is decided by
//! `gantry_probes::ProbeSpec::resolve`, which is run once here so that `gantry check` reports a bad
//! port or a missing variable at the line of the probe block; the wait phase builds the probes
//! again from the spec when it runs.
//!
//! ```hcl
//! probe "db" {
//!   wait = true
//!   mysql {
//!     host = { hostname = "db", port = 3306 }
//!     credentials = { user = "app", password = "ENV:DB_PASSWORD" }
//!     database = "app"
//!   }
//! }
//! probe "cache" {
//!   wait = true
//!   url = "redis://cache:6379/0"
//! }
//! ```

use gantry_probes::spec::{
    AmqpSpec, CredentialsSpec, DatabaseSpec, ExecSpec, HostSpec, HttpSpec, MongodbSpec, RedisSpec,
    SmtpSpec, TcpSpec,
};
use gantry_probes::{ProbeSpec, ProbeUrl, Secret, Target};

use super::error::{ConfigError, Errors};
use super::node::{Block, Pos, Reader, Value};

/// The backend blocks a probe may hold (exactly one, or `url`, or `filesystem`).
const BACKENDS: &[&str] = &[
    "mysql", "postgres", "redis", "amqp", "mongodb", "http", "smtp", "tcp", "exec",
];

/// One `probe "name" { ... }` block.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeBlock {
    pub name: String,
    /// Only `wait = true` probes gate the run phase (mittnite's default is false).
    pub wait: bool,
    /// What to check, resolved when the configuration was loaded (`ENV:` values read, durations
    /// parsed, defaults applied): plain data, never parsed again.
    pub target: Target,
    pub pos: Pos,
}

impl ProbeBlock {
    /// Builds the probe to run.
    pub fn build(&self) -> Result<gantry_probes::BoxProbe, gantry_probes::SpecError> {
        self.target.clone().into_probe()
    }
}

/// Reads one `probe` block; every mistake goes to `errors`.
pub fn probe_from_block(block: &Block, errors: &mut Errors) -> Option<ProbeBlock> {
    let name = match block.labels.as_slice() {
        [name] if !name.is_empty() => name.clone(),
        _ => {
            errors.push(ConfigError::at(
                block.pos.clone(),
                "probe block needs exactly one name, as in probe \"db\" { ... }",
            ));
            return None;
        }
    };
    let mut r = Reader::new(block, errors);
    let wait = r.bool("wait").unwrap_or(false);
    let target = read_target(&mut r, &name, "probe");
    r.finish();
    let target = target?;
    Some(ProbeBlock {
        name,
        wait,
        target,
        pos: block.pos.clone(),
    })
}

/// Reads what a probe checks from the block `r` reads — `url = "..."`, `filesystem = "PATH"` or one
/// backend block — and resolves it (`ENV:` values, defaults, durations). `what` names the block in
/// messages (`probe`, `ready`, `alive`). The caller reads its own attributes and calls `finish`.
/// Shared by `probe` blocks and a job's `ready` and `alive` blocks.
pub fn read_target(r: &mut Reader<'_>, name: &str, what: &str) -> Option<Target> {
    let block_pos = r.block().pos.clone();
    let mut found: Vec<(ProbeSpec, Pos)> = Vec::new();
    if let Some(path) = r.string("filesystem") {
        let pos = r
            .value("filesystem")
            .map_or(block_pos.clone(), |v| v.pos.clone());
        found.push((ProbeSpec::Filesystem(path), pos));
    }
    if let Some(url) = r.string("url") {
        let pos = r.value("url").map_or(block_pos.clone(), |v| v.pos.clone());
        found.push((ProbeSpec::Url(ProbeUrl::new(url)), pos));
    }
    for kind in BACKENDS {
        if let Some(sub) = r.single_block(kind) {
            let spec = read_backend(kind, &sub, r.errors());
            found.push((spec, sub.pos.clone()));
        }
    }
    let (spec, pos) = match found.len() {
        1 => found.remove(0),
        0 => {
            r.errors().push(ConfigError::at(
                block_pos,
                format!(
                    "{what} {name:?} says nothing to check: give url = \"...\", filesystem = \"PATH\" \
                     or one of the blocks {}",
                    BACKENDS.join(", ")
                ),
            ));
            return None;
        }
        _ => {
            let (_, second) = &found[1];
            r.errors().push(ConfigError::at(
                second.clone(),
                format!("{what} {name:?} checks more than one thing; use one probe block for each"),
            ));
            return None;
        }
    };
    // Resolved once, now, so that a bad value is reported with its place, by `gantry check` too.
    // A `probe` block's errors point at the block (as they always have); a job's `ready`/`alive`
    // at the attribute or backend block that is wrong. A backend left out of this build (a slim
    // build's cargo features) is refused here too.
    match spec
        .resolve(name)
        .and_then(|t| t.check_compiled().map(|()| t))
    {
        Ok(target) => Some(target),
        Err(e) if what == "probe" => {
            r.errors().push(ConfigError::at(block_pos, e.to_string()));
            None
        }
        Err(e) => {
            r.errors()
                .push(ConfigError::at(pos, format!("{what} {name:?}: {e}")));
            None
        }
    }
}

fn read_backend(kind: &str, block: &Block, errors: &mut Errors) -> ProbeSpec {
    let mut r = Reader::new(block, errors);
    let url = r.string("url").map(ProbeUrl::new);
    let timeout = r.string("timeout");
    let spec = match kind {
        "mysql" | "postgres" => {
            let s = DatabaseSpec {
                url,
                host: host(&mut r),
                credentials: credentials(&mut r),
                database: r.string("database"),
                timeout,
            };
            if kind == "mysql" {
                ProbeSpec::Mysql(s)
            } else {
                ProbeSpec::Postgres(s)
            }
        }
        "redis" => ProbeSpec::Redis(RedisSpec {
            url,
            host: host(&mut r),
            user: r.string("user"),
            password: r.string("password").map(Secret::new),
            database: r.string("database"),
            tls: r.bool("tls"),
            timeout,
        }),
        "amqp" => ProbeSpec::Amqp(AmqpSpec {
            url,
            host: host(&mut r),
            credentials: credentials(&mut r),
            virtualhost: r.string("virtualhost"),
            tls: r.bool("tls"),
            timeout,
        }),
        "mongodb" => ProbeSpec::Mongodb(MongodbSpec {
            url,
            host: host(&mut r),
            credentials: credentials(&mut r),
            database: r.string("database"),
            timeout,
        }),
        "http" => ProbeSpec::Http(HttpSpec {
            url,
            scheme: r.string("scheme"),
            host: host(&mut r),
            path: r.string("path"),
            timeout,
            method: r.string("method"),
            headers: headers(&mut r),
            status: r.string("status"),
            body_contains: r.string("bodyContains"),
        }),
        "smtp" => ProbeSpec::Smtp(SmtpSpec {
            url,
            host: host(&mut r),
            starttls: r.bool("starttls"),
            tls: r.bool("tls"),
            timeout,
        }),
        "tcp" => ProbeSpec::Tcp(TcpSpec {
            url,
            host: host(&mut r),
            timeout,
        }),
        // "exec"
        _ => ProbeSpec::Exec(ExecSpec {
            command: r.string("command").unwrap_or_default(),
            args: r.string_list("args").unwrap_or_default(),
            timeout,
        }),
    };
    r.finish();
    spec
}

/// `host = { hostname = "db", port = 3306 }` (or a `host { ... }` block).
fn host(r: &mut Reader<'_>) -> Option<HostSpec> {
    let block = r.single_block("host")?;
    let mut h = Reader::new(&block, r.errors());
    let spec = HostSpec {
        hostname: h.string("hostname"),
        port: h.string("port"),
    };
    h.finish();
    Some(spec)
}

/// `credentials = { user = "app", password = "..." }`.
fn credentials(r: &mut Reader<'_>) -> Option<CredentialsSpec> {
    let block = r.single_block("credentials")?;
    let mut c = Reader::new(&block, r.errors());
    let spec = CredentialsSpec {
        user: c.string("user"),
        password: c.string("password").map(Secret::new),
    };
    c.finish();
    Some(spec)
}

/// `headers = { Authorization = "ENV:API_TOKEN" }`.
fn headers(r: &mut Reader<'_>) -> Vec<(String, Secret)> {
    let Some(obj) = r.object("headers") else {
        return Vec::new();
    };
    let Value::Object(entries) = &obj.value else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (k, v) in entries {
        match &v.value {
            Value::String(s) => out.push((k.clone(), Secret::new(s.clone()))),
            other => r.error(
                v.pos.clone(),
                "headers",
                format!("header {k:?}: expected a string, found {}", other.kind()),
            ),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_probes::Backend;
    use std::path::Path;

    fn probes(text: &str) -> Result<Vec<ProbeBlock>, Errors> {
        let mut errors = Errors::default();
        let root = super::super::node::parse_file(Path::new("probes.hcl"), text, &mut errors);
        let out: Vec<ProbeBlock> = root
            .blocks
            .iter()
            .filter_map(|b| probe_from_block(b, &mut errors))
            .collect();
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors)
        }
    }

    #[test]
    fn probe_durations_are_resolved_when_the_configuration_is_loaded() {
        let p = probes("probe \"t\" {\n tcp {\n  host = { hostname = \"db\", port = 1 }\n  timeout = \"1.5m\"\n }\n}\n")
            .expect("valid");
        assert_eq!(p[0].target.timeout, std::time::Duration::from_secs(90));
    }

    #[test]
    fn mysql_block_with_host_object_and_credentials() {
        let p = probes(
            r#"probe "mysql" {
                 wait = true
                 mysql {
                   host = { hostname = "localhost", port = 3306 }
                   credentials = { user = "foo", password = "bar" }
                 }
               }"#,
        )
        .expect("valid");
        assert!(p[0].wait);
        let Backend::Mysql(m) = &p[0].target.backend else {
            panic!("{:?}", p[0].target)
        };
        assert_eq!(
            (m.endpoint.host.as_str(), m.endpoint.port),
            ("localhost", 3306)
        );
        assert_eq!(m.user.as_deref(), Some("foo"));
        assert_eq!(m.password.as_ref().map(Secret::expose), Some("bar"));
    }

    #[test]
    fn url_shorthand_and_filesystem() {
        let p = probes(
            "probe \"c\" {\n wait = true\n url = \"redis://:pw@cache/1\"\n}\nprobe fs {\n filesystem = \"/tmp\"\n}\n",
        )
        .expect("valid");
        let Backend::Redis(r) = &p[0].target.backend else {
            panic!("{:?}", p[0].target)
        };
        assert_eq!((r.endpoint.host.as_str(), r.db), ("cache", 1));
        assert_eq!(r.password.as_ref().map(Secret::expose), Some("pw"));
        assert!(!p[1].wait);
        assert_eq!(p[1].target.backend, Backend::Filesystem("/tmp".into()));
    }

    #[test]
    fn mistakes_are_reported_with_their_place() {
        let errors = probes(
            "probe \"a\" {\n wait = true\n mysql {\n  hots = { hostname = \"db\" }\n }\n}\n\
             probe \"b\" {\n wait = true\n}\n\
             probe \"c\" {\n redis { host = { port = \"many\" } }\n}\n\
             probe \"d\" {\n url = \"tcp://x:1\"\n filesystem = \"/x\"\n}\n",
        )
        .expect_err("invalid");
        let text = errors.to_string();
        assert!(
            text.contains(
                "probes.hcl:4:3: mysql: unknown attribute \"hots\" (did you mean \"host\"?)"
            ),
            "{text}"
        );
        assert!(text.contains("probe \"b\" says nothing to check"), "{text}");
        assert!(
            text.contains("probe \"c\": host.port: \"many\" is not a port"),
            "{text}"
        );
        assert!(
            text.contains("probe \"d\" checks more than one thing"),
            "{text}"
        );
    }

    #[test]
    fn a_password_in_a_probe_block_never_prints() {
        let p = probes(
            "probe \"m\" {\n mysql {\n  credentials = { user = \"u\", password = \"Hcl-Secret-9\" }\n }\n}\n",
        )
        .expect("valid");
        assert!(!format!("{p:?}").contains("Hcl-Secret-9"));
        let probe = p[0].build().expect("builds");
        assert!(!probe.describe().contains("Hcl-Secret-9"));
    }

    // ---- property tests ------------------------------------------------------------------------
    //
    // Probe blocks assembled from fragments (real attribute names and misspelt ones, every value
    // kind, `ENV:` references, nested blocks) and arbitrary text: reading them gives probe blocks or
    // errors with a place, never a panic, and every block read builds a probe or an error. At most
    // proptest's default 256 cases per property; `PROPTEST_CASES=20000 cargo test --lib
    // config::probe::` runs longer.

    use proptest::prelude::*;

    /// An HCL string literal holding `s`, whatever it contains.
    fn quoted(s: &str) -> String {
        let mut out = String::from("\"");
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '$' => out.push_str("$$"),
                '%' => out.push_str("%%"),
                c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32 & 0xffff)),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => any::<String>(),
            2 => "[0-9]{1,6}",
            1 => prop::sample::select(vec![
                "tcp://127.0.0.1:1",
                "http://h/status",
                "mysql://u:pw@db/app",
                "redis://:pw@cache/1",
                "amqp://u:p@mq/%2f",
                "mongodb://a:1,b:2/db",
                "smtp://mx?starttls=true",
                "file:///tmp",
                "ENV:GANTRY_PROP_TEST_UNSET",
                "ENV:PATH",
                "200-299",
                "5s",
            ])
            .prop_map(String::from),
        ]
    }

    /// A value of any HCL kind, objects and lists nested once.
    fn value() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            4 => text().prop_map(|t| quoted(&t)),
            1 => any::<i64>().prop_map(|n| n.to_string()),
            1 => any::<bool>().prop_map(|b| b.to_string()),
            1 => Just("null".to_string()),
        ];
        leaf.prop_recursive(2, 8, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3)
                    .prop_map(|v| format!("[{}]", v.join(", "))),
                prop::collection::vec((name(), inner), 0..3).prop_map(|kv| {
                    let body: Vec<String> =
                        kv.into_iter().map(|(k, v)| format!("{k} = {v}")).collect();
                    format!("{{ {} }}", body.join(", "))
                }),
            ]
        })
    }

    /// Attribute and block names: the real ones, misspelt ones, others.
    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => prop::sample::select(vec![
                "url", "host", "hostname", "port", "credentials", "user", "password", "database",
                "timeout", "tls", "starttls", "virtualhost", "scheme", "path", "method", "headers",
                "status", "bodyContains", "command", "args", "wait", "filesystem", "hots", "pasword",
            ])
            .prop_map(String::from),
            1 => "[a-zA-Z_][a-zA-Z0-9_]{0,8}",
        ]
    }

    /// `name = value` or `name { ... }` lines of anything.
    fn noise(depth: u32) -> BoxedStrategy<String> {
        let attr = (name(), value()).prop_map(|(k, v)| format!("{k} = {v}"));
        if depth == 0 {
            return prop::collection::vec(attr, 0..4)
                .prop_map(|l| l.join("\n"))
                .boxed();
        }
        let block = (
            prop_oneof![
                3 => prop::sample::select(BACKENDS.to_vec()).prop_map(String::from),
                1 => name(),
            ],
            noise(depth - 1),
        )
            .prop_map(|(k, b)| format!("{k} {{\n{b}\n}}"));
        prop::collection::vec(prop_oneof![2 => attr, 1 => block], 0..4)
            .prop_map(|l| l.join("\n"))
            .boxed()
    }

    #[derive(Clone, Copy)]
    enum Kind {
        Str,
        Bool,
        Host,
        Credentials,
        Headers,
        List,
    }

    /// Mostly a value of the kind the attribute takes, sometimes anything.
    fn typed(kind: Kind) -> BoxedStrategy<String> {
        let s = || text().prop_map(|t| quoted(&t));
        let num_or_str = || prop_oneof![s(), (0..70_000u32).prop_map(|n| n.to_string())];
        let typed = match kind {
            Kind::Str => s().boxed(),
            Kind::Bool => any::<bool>().prop_map(|b| b.to_string()).boxed(),
            Kind::Host => (prop::option::of(s()), prop::option::of(num_or_str()))
                .prop_map(|(h, p)| {
                    let mut parts = Vec::new();
                    parts.extend(h.map(|h| format!("hostname = {h}")));
                    parts.extend(p.map(|p| format!("port = {p}")));
                    format!("{{ {} }}", parts.join(", "))
                })
                .boxed(),
            Kind::Credentials => (prop::option::of(s()), prop::option::of(s()))
                .prop_map(|(u, p)| {
                    let mut parts = Vec::new();
                    parts.extend(u.map(|u| format!("user = {u}")));
                    parts.extend(p.map(|p| format!("password = {p}")));
                    format!("{{ {} }}", parts.join(", "))
                })
                .boxed(),
            Kind::Headers => prop::collection::vec(("[A-Za-z-]{1,12}", s()), 0..3)
                .prop_map(|kv| {
                    let body: Vec<String> =
                        kv.into_iter().map(|(k, v)| format!("{k} = {v}")).collect();
                    format!("{{ {} }}", body.join(", "))
                })
                .boxed(),
            Kind::List => prop::collection::vec(s(), 0..4)
                .prop_map(|v| format!("[{}]", v.join(", ")))
                .boxed(),
        };
        prop_oneof![9 => typed, 1 => value()].boxed()
    }

    /// The attributes each backend block takes, with their kinds.
    fn schema(backend: &str) -> Vec<(&'static str, Kind)> {
        use Kind::*;
        let mut attrs = vec![("url", Str), ("timeout", Str)];
        attrs.extend(match backend {
            "mysql" | "postgres" => vec![
                ("host", Host),
                ("credentials", Credentials),
                ("database", Str),
            ],
            "redis" => vec![
                ("host", Host),
                ("user", Str),
                ("password", Str),
                ("database", Str),
                ("tls", Bool),
            ],
            "amqp" => vec![
                ("host", Host),
                ("credentials", Credentials),
                ("virtualhost", Str),
                ("tls", Bool),
            ],
            "mongodb" => vec![
                ("host", Host),
                ("credentials", Credentials),
                ("database", Str),
            ],
            "http" => vec![
                ("scheme", Str),
                ("host", Host),
                ("path", Str),
                ("method", Str),
                ("headers", Headers),
                ("status", Str),
                ("bodyContains", Str),
            ],
            "smtp" => vec![("host", Host), ("starttls", Bool), ("tls", Bool)],
            "tcp" => vec![("host", Host)],
            _ => vec![("command", Str), ("args", List)],
        });
        attrs
    }

    /// A backend block with some of its own attributes, each mostly of the right kind.
    fn backend_block() -> impl Strategy<Value = String> {
        prop::sample::select(BACKENDS.to_vec()).prop_flat_map(|backend| {
            let attrs: Vec<BoxedStrategy<Option<String>>> = schema(backend)
                .into_iter()
                .map(|(attr, kind)| {
                    prop::option::weighted(0.5, typed(kind))
                        .prop_map(move |v| v.map(|v| format!("{attr} = {v}")))
                        .boxed()
                })
                .collect();
            attrs.prop_map(move |lines| {
                let lines: Vec<String> = lines.into_iter().flatten().collect();
                format!("{backend} {{\n{}\n}}", lines.join("\n"))
            })
        })
    }

    fn probe_block() -> impl Strategy<Value = String> {
        // A missing or second label is the arbitrary-text property's (and a unit test's) business.
        let labels = prop_oneof![
            4 => "[a-z][a-z0-9-]{0,8}".prop_map(|l| quoted(&l)),
            1 => text().prop_map(|l| quoted(&l)),
        ];
        let what = prop_oneof![
            8 => backend_block().boxed(),
            1 => typed(Kind::Str).prop_map(|u| format!("url = {u}")).boxed(),
            1 => typed(Kind::Str).prop_map(|p| format!("filesystem = {p}")).boxed(),
            1 => noise(2),
        ];
        let wait = prop::option::of(typed(Kind::Bool));
        // Now and then a second thing to check, which is a mistake.
        let extra = prop::option::weighted(0.1, backend_block());
        (labels, wait, what, extra).prop_map(|(l, w, what, extra)| {
            let wait = w.map(|w| format!("wait = {w}\n")).unwrap_or_default();
            let extra = extra.unwrap_or_default();
            format!("probe {l} {{\n{wait}{what}\n{extra}\n}}\n")
        })
    }

    /// Reads `text` as a file of probe blocks: the blocks, or every error, each with its place.
    fn read_blocks(text: &str) -> Result<(), TestCaseError> {
        match probes(text) {
            Ok(blocks) => {
                for b in &blocks {
                    match b.build() {
                        Ok(probe) => prop_assert!(!probe.describe().is_empty()),
                        Err(e) => prop_assert!(!e.to_string().is_empty()),
                    }
                }
            }
            Err(errors) => {
                prop_assert!(!errors.is_empty());
                for e in &errors.0 {
                    prop_assert!(e.pos.is_some(), "no place: {e}");
                    prop_assert!(e.to_string().starts_with("probes.hcl:"), "{e}");
                }
            }
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn probe_blocks_give_probes_or_errors_with_their_place(
            blocks in prop::collection::vec(probe_block(), 1..3),
        ) {
            read_blocks(&blocks.concat())?;
        }

        #[test]
        fn arbitrary_text_gives_probes_or_errors_with_their_place(text in any::<String>()) {
            read_blocks(&text)?;
            read_blocks(&format!("probe \"p\" {{\n{text}\n}}\n"))?;
        }
    }
}
