//! Property tests of the two ways into a probe: a URL ([`parse_url`], then [`Target::into_probe`]) and
//! a probe block ([`ProbeSpec::resolve`] / [`build_probe`]). Whatever the input, they give a probe or
//! an error — never a panic — and no password shows in a description or an error.
//!
//! Case counts stay at proptest's default (256 per property) or below so CI stays fast. For a longer
//! run, set `PROPTEST_CASES`, e.g. `PROPTEST_CASES=20000 cargo test -p gantry-probes --test
//! prop_urls`. Nothing here touches the network: probes are built, never run.

use gantry_probes::spec::{
    AmqpSpec, CredentialsSpec, DatabaseSpec, ExecSpec, HostSpec, HttpSpec, MongodbSpec, RedisSpec,
    SmtpSpec, TcpSpec,
};
use gantry_probes::{build_probe, parse_url, ProbeSpec, ProbeUrl, Secret};
use proptest::prelude::*;

/// A valid URL of every scheme `parse_url` knows (and `mongodb+srv`, which it refuses).
const SEEDS: &[&str] = &[
    "tcp://db:5432",
    "tcp://[::1]:1",
    "http://127.0.0.1:8080/status?x=1#top",
    "https://user:p%40ss@example.com/health?token=abc",
    "mysql://app:pw@db:3306/shop",
    "postgres://app:pw@[::1]/x",
    "postgresql://app@db/x?sslmode=disable",
    "redis://:pw@cache:6379/2",
    "rediss://u:pw@cache",
    "amqp://u:p@mq/%2f",
    "amqps://mq:5671/shop%2Fprod",
    "mongodb://u:pw@a:1,b:2/db?replicaSet=rs",
    "mongodb+srv://u:pw@cluster.example.com/db",
    "smtp://mx:587?starttls=true",
    "smtps://mx",
    "file:///etc/app/conf.d",
];

/// The outcome of the URL path in words, so a panic anywhere on it fails the property.
fn url_to_probe(raw: &str) -> Result<String, String> {
    let target = parse_url(raw).map_err(|e| e.to_string())?;
    let probe = target.into_probe().map_err(|e| e.to_string())?;
    Ok(probe.describe())
}

/// Checks the property for one input: a probe with a description, or an error that says something.
fn probe_or_error(raw: &str) -> Result<(), TestCaseError> {
    match url_to_probe(raw) {
        Ok(desc) => prop_assert!(!desc.is_empty(), "{raw:?}: empty description"),
        Err(e) => prop_assert!(!e.is_empty(), "{raw:?}: empty error"),
    }
    Ok(())
}

/// One edit of a URL: where (a fraction of its length) and what.
#[derive(Debug, Clone)]
enum Edit {
    Insert(f64, char),
    Delete(f64, usize),
    Replace(f64, char),
    /// Repeat a stretch (`//`, `::`, `@@`, `%%`...).
    Duplicate(f64, usize),
    Truncate(f64),
}

/// Characters that matter to URL parsers, and some that do not belong in a URL at all.
fn url_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => prop::sample::select(vec![
            ':', '/', '@', '?', '#', '%', '[', ']', '.', ',', '=', '&', '+', '\\', ' ', '-',
        ]),
        2 => prop::char::range('0', '9'),
        1 => prop::char::range('a', 'z'),
        1 => any::<char>(),
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    let at = 0.0..=1.0f64;
    prop_oneof![
        (at.clone(), url_char()).prop_map(|(a, c)| Edit::Insert(a, c)),
        (at.clone(), 1..6usize).prop_map(|(a, n)| Edit::Delete(a, n)),
        (at.clone(), url_char()).prop_map(|(a, c)| Edit::Replace(a, c)),
        (at.clone(), 1..4usize).prop_map(|(a, n)| Edit::Duplicate(a, n)),
        at.prop_map(Edit::Truncate),
    ]
}

fn apply(seed: &str, edits: &[Edit]) -> String {
    let mut s: Vec<char> = seed.chars().collect();
    let index = |s: &Vec<char>, at: f64| ((s.len() as f64) * at) as usize;
    for e in edits {
        match *e {
            Edit::Insert(at, c) => {
                let i = index(&s, at).min(s.len());
                s.insert(i, c);
            }
            Edit::Delete(at, n) => {
                let i = index(&s, at).min(s.len());
                let j = (i + n).min(s.len());
                s.drain(i..j);
            }
            Edit::Replace(at, c) => {
                let i = index(&s, at);
                if let Some(slot) = s.get_mut(i) {
                    *slot = c;
                }
            }
            Edit::Duplicate(at, n) => {
                let i = index(&s, at).min(s.len());
                let j = (i + n).min(s.len());
                let copy: Vec<char> = s[i..j].to_vec();
                s.splice(j..j, copy);
            }
            Edit::Truncate(at) => {
                let i = index(&s, at).min(s.len());
                s.truncate(i);
            }
        }
    }
    s.into_iter().collect()
}

/// Schemes as people might type them, known or not.
fn scheme() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "tcp",
            "http",
            "https",
            "HTTP",
            "mysql",
            "MySQL",
            "postgres",
            "postgresql",
            "redis",
            "rediss",
            "amqp",
            "amqps",
            "mongodb",
            "MONGODB",
            "mongodb+srv",
            "smtp",
            "smtps",
            "file",
            "exec",
            "",
        ])
        .prop_map(String::from),
        "[a-zA-Z+.-]{0,8}",
    ]
}

/// Letters for host names, users and paths: lower case only, so they can never spell a password
/// made by [`password`].
fn plain(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[a-z0-9][a-z0-9.-]{{0,{max}}}"))
        .unwrap_or_else(|e| panic!("regex: {e}"))
}

/// A password that no other part of a generated URL can contain (it has upper-case letters), with
/// any characters after its prefix.
fn password() -> impl Strategy<Value = String> {
    "[^\u{0}]{0,12}".prop_map(|rest| format!("PW-{rest}"))
}

fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

proptest! {
    #[test]
    fn arbitrary_strings_give_a_probe_or_an_error(raw in any::<String>()) {
        probe_or_error(&raw)?;
    }

    #[test]
    fn url_shaped_strings_give_a_probe_or_an_error(
        scheme in scheme(),
        rest in prop::collection::vec(url_char(), 0..40),
    ) {
        let rest: String = rest.into_iter().collect();
        probe_or_error(&format!("{scheme}://{rest}"))?;
    }

    #[test]
    fn mutated_urls_of_every_scheme_give_a_probe_or_an_error(
        seed in prop::sample::select(SEEDS),
        edits in prop::collection::vec(edit(), 1..5),
    ) {
        probe_or_error(&apply(seed, &edits))?;
    }

    #[test]
    fn a_password_never_shows_in_a_description_or_an_error(
        scheme in prop::sample::select(vec![
            "tcp", "http", "https", "mysql", "postgres", "redis", "rediss", "amqp", "amqps",
            "mongodb", "smtp", "smtps", "gopher",
        ]),
        user in plain(6),
        pw in password(),
        host in plain(10),
        port in prop::option::of(0..70_000u32),
        path in plain(8),
        in_query in any::<bool>(),
    ) {
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        let pw_enc = encode(&pw);
        let raw = if in_query {
            format!("{scheme}://{user}@{host}{port}/{path}?password={pw_enc}")
        } else {
            format!("{scheme}://{user}:{pw_enc}@{host}{port}/{path}")
        };
        let shown = match url_to_probe(&raw) {
            Ok(desc) => desc,
            Err(e) => e,
        };
        for form in [pw.as_str(), pw_enc.as_str()] {
            prop_assert!(!shown.contains(form), "{raw:?} shows its password: {shown:?}");
        }
    }
}

// ---- probe blocks ------------------------------------------------------------------------------

const ENV_SET: &str = "GANTRY_PROP_TEST_SET";

/// A value as a block might hold it: anything, a number, a valid URL, or an `ENV:` reference to a
/// variable that is set (to an awkward value) or not.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => any::<String>(),
        2 => "[0-9]{1,6}",
        1 => prop::sample::select(SEEDS).prop_map(String::from),
        1 => Just(format!("ENV:{ENV_SET}")),
        1 => Just("ENV:GANTRY_PROP_TEST_UNSET".to_string()),
        1 => Just("ENV:".to_string()),
    ]
}

fn opt() -> impl Strategy<Value = Option<String>> {
    prop::option::of(value())
}

fn url() -> impl Strategy<Value = Option<ProbeUrl>> {
    prop::option::of(prop_oneof![
        value(),
        (
            prop::sample::select(SEEDS),
            prop::collection::vec(edit(), 0..3)
        )
            .prop_map(|(seed, edits)| apply(seed, &edits)),
    ])
    .prop_map(|u| u.map(ProbeUrl::new))
}

fn host() -> impl Strategy<Value = Option<HostSpec>> {
    prop::option::of((opt(), opt()).prop_map(|(hostname, port)| HostSpec { hostname, port }))
}

fn credentials() -> impl Strategy<Value = Option<CredentialsSpec>> {
    prop::option::of((opt(), opt()).prop_map(|(user, password)| CredentialsSpec {
        user,
        password: password.map(Secret::new),
    }))
}

fn database() -> impl Strategy<Value = DatabaseSpec> {
    (url(), host(), credentials(), opt(), opt()).prop_map(
        |(url, host, credentials, database, timeout)| DatabaseSpec {
            url,
            host,
            credentials,
            database,
            timeout,
        },
    )
}

fn probe_spec() -> impl Strategy<Value = ProbeSpec> {
    let tls = || prop::option::of(any::<bool>());
    prop_oneof![
        value().prop_map(ProbeSpec::Filesystem),
        value().prop_map(|u| ProbeSpec::Url(ProbeUrl::new(u))),
        (url(), host(), opt()).prop_map(|(url, host, timeout)| ProbeSpec::Tcp(TcpSpec {
            url,
            host,
            timeout
        })),
        (
            (url(), opt(), host(), opt(), opt()),
            (
                opt(),
                prop::collection::vec((value(), value()), 0..3),
                opt(),
                opt()
            ),
        )
            .prop_map(
                |((url, scheme, host, path, timeout), (method, headers, status, body))| {
                    ProbeSpec::Http(HttpSpec {
                        url,
                        scheme,
                        host,
                        path,
                        timeout,
                        method,
                        headers: headers
                            .into_iter()
                            .map(|(k, v)| (k, Secret::new(v)))
                            .collect(),
                        status,
                        body_contains: body,
                    })
                }
            ),
        database().prop_map(ProbeSpec::Mysql),
        database().prop_map(ProbeSpec::Postgres),
        (url(), host(), opt(), opt(), opt(), tls(), opt()).prop_map(
            |(url, host, user, password, database, tls, timeout)| ProbeSpec::Redis(RedisSpec {
                url,
                host,
                user,
                password: password.map(Secret::new),
                database,
                tls,
                timeout,
            })
        ),
        (url(), host(), credentials(), opt(), tls(), opt()).prop_map(
            |(url, host, credentials, virtualhost, tls, timeout)| ProbeSpec::Amqp(AmqpSpec {
                url,
                host,
                credentials,
                virtualhost,
                tls,
                timeout,
            })
        ),
        (url(), host(), credentials(), opt(), opt()).prop_map(
            |(url, host, credentials, database, timeout)| ProbeSpec::Mongodb(MongodbSpec {
                url,
                host,
                credentials,
                database,
                timeout,
            })
        ),
        (url(), host(), tls(), tls(), opt()).prop_map(|(url, host, starttls, tls, timeout)| {
            ProbeSpec::Smtp(SmtpSpec {
                url,
                host,
                starttls,
                tls,
                timeout,
            })
        }),
        (value(), prop::collection::vec(value(), 0..4), opt()).prop_map(
            |(command, args, timeout)| ProbeSpec::Exec(ExecSpec {
                command,
                args,
                timeout,
            })
        ),
    ]
}

/// Puts `pw` in every field of `spec` that holds a password or token.
fn with_password(spec: ProbeSpec, pw: &str) -> ProbeSpec {
    let creds = |c: Option<CredentialsSpec>| {
        Some(CredentialsSpec {
            password: Some(Secret::new(pw)),
            ..c.unwrap_or_default()
        })
    };
    match spec {
        ProbeSpec::Mysql(s) => ProbeSpec::Mysql(DatabaseSpec {
            credentials: creds(s.credentials.clone()),
            ..s
        }),
        ProbeSpec::Postgres(s) => ProbeSpec::Postgres(DatabaseSpec {
            credentials: creds(s.credentials.clone()),
            ..s
        }),
        ProbeSpec::Amqp(s) => ProbeSpec::Amqp(AmqpSpec {
            credentials: creds(s.credentials.clone()),
            ..s
        }),
        ProbeSpec::Mongodb(s) => ProbeSpec::Mongodb(MongodbSpec {
            credentials: creds(s.credentials.clone()),
            ..s
        }),
        ProbeSpec::Redis(s) => ProbeSpec::Redis(RedisSpec {
            password: Some(Secret::new(pw)),
            ..s
        }),
        ProbeSpec::Http(mut s) => {
            s.headers.push(("Authorization".into(), Secret::new(pw)));
            ProbeSpec::Http(s)
        }
        ProbeSpec::Exec(mut s) => {
            // Only arguments read from the environment are secrets.
            s.args.push(format!("ENV:{ENV_PASSWORD}"));
            ProbeSpec::Exec(s)
        }
        other => other,
    }
}

const ENV_PASSWORD: &str = "GANTRY_PROP_TEST_PASSWORD";

proptest! {
    #[test]
    fn probe_blocks_give_a_probe_or_an_error(name in ".{0,12}", spec in probe_spec()) {
        // Set in every case: the value is the same, and the order tests run in does not matter.
        std::env::set_var(ENV_SET, "env Value:/@?#%");
        match spec.resolve(&name) {
            Ok(target) => match target.into_probe() {
                Ok(probe) => prop_assert!(!probe.describe().is_empty()),
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            },
            Err(e) => prop_assert!(!e.to_string().is_empty(), "{spec:?}: empty error"),
        }
        // The entry point the config loader uses, too.
        let _ = build_probe(&name, &spec);
    }

    #[test]
    fn a_password_in_a_probe_block_never_shows(
        spec in probe_spec(),
        pw in "[A-Z0-9]{10}",
    ) {
        let pw = format!("PW-{pw}");
        std::env::set_var(ENV_SET, "env Value:/@?#%");
        std::env::set_var(ENV_PASSWORD, &pw);
        let spec = with_password(spec, &pw);
        let mut shown = format!("{spec:?}");
        match spec.resolve("p") {
            Ok(target) => {
                shown.push_str(&format!("{target:?}"));
                match target.into_probe() {
                    Ok(probe) => shown.push_str(&probe.describe()),
                    Err(e) => shown.push_str(&e.to_string()),
                }
            }
            Err(e) => shown.push_str(&e.to_string()),
        }
        prop_assert!(!shown.contains(&pw), "{pw} shows in {shown:?}");
    }
}
