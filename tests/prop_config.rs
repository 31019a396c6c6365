//! Property tests of what gantry reads from people: the configuration loader, durations and signal
//! names. Whatever the text, the loader never panics and gives either a plan or errors that each
//! carry a position (file:line:col) in the file; a duration or a signal name gives a value or an
//! error, never a panic.
//!
//! The inputs: HCL-like token soup, well-formed blocks with values of every type in every attribute,
//! and random edits of the configuration files shipped in `examples/` and `tests/fixtures/`.
//!
//! Case counts are bounded (proptest's default of 256 per property, or fewer where a case is costly)
//! so that CI stays fast. For a longer local run, set `PROPTEST_CASES`, which proptest reads from the
//! environment: `PROPTEST_CASES=20000 cargo test --test prop_config`.

use std::path::{Path, PathBuf};

use gantry::config::{load_text, parse_duration, Errors, MAX_DURATION};
use proptest::prelude::*;

const FILE: &str = "/etc/gantry.d/prop.hcl";

/// Every error of a failed load points into the file, at a line and column that exist (or just past
/// the end, for an unterminated block).
fn assert_positioned(text: &str, errors: &Errors) -> Result<(), TestCaseError> {
    prop_assert!(!errors.is_empty());
    let lines = text.split('\n').count();
    for e in errors.iter() {
        let Some(pos) = &e.pos else {
            return Err(TestCaseError::fail(format!(
                "error without a position: {e}"
            )));
        };
        prop_assert_eq!(pos.file.as_path(), Path::new(FILE), "{}", e);
        prop_assert!(
            pos.line >= 1 && pos.line <= lines + 1,
            "{} ({} lines)",
            e,
            lines
        );
        prop_assert!(pos.col >= 1, "{}", e);
        prop_assert!(e.to_string().starts_with(&format!("{FILE}:")), "{}", e);
    }
    Ok(())
}

fn check_loads(text: &str) -> Result<(), TestCaseError> {
    match load_text(Path::new(FILE), text) {
        Ok(_plan) => Ok(()),
        Err(errors) => assert_positioned(text, &errors),
    }
}

/// Names gantry knows, so that generated text reaches the readers behind the parser.
const NAMES: &[&str] = &[
    "job",
    "boot",
    "file",
    "probe",
    "watch",
    "lazy",
    "command",
    "args",
    "env",
    "workingDirectory",
    "stdout",
    "stderr",
    "enableTimestamps",
    "timestampFormat",
    "customTimestampFormat",
    "maxAttempts",
    "canFail",
    "oneTime",
    "controllable",
    "timeout",
    "stopSignal",
    "stopTimeout",
    "signal",
    "restart",
    "target",
    "debounce",
    "splay",
    "poll",
    "validate",
    "preCommand",
    "postCommand",
    "wait",
    "url",
    "filesystem",
    "mysql",
    "redis",
    "http",
    "exec",
    "tcp",
    "host",
    "hostname",
    "port",
    "credentials",
    "password",
    "headers",
    "from",
    "content",
    "params",
    "mode",
    "overwrite",
    "user",
    "group",
];

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(NAMES).prop_map(str::to_string),
        1 => "[a-zA-Z_][a-zA-Z0-9_-]{0,8}",
    ]
}

/// A string literal's body, with HCL escapes and template markers.
fn string_body() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[a-zA-Z0-9 /._:=+-]{0,12}",
        Just("\\u0000".to_string()),
        Just("\\n".to_string()),
        Just("\\\"".to_string()),
        Just("${x}".to_string()),
        Just("%{ if x }".to_string()),
        Just("{{ Env.HOME }}".to_string()),
        Just("ENV:HOME".to_string()),
        Just("99999999999999999999s".to_string()),
        Just("1h30m".to_string()),
        Just("0s".to_string()),
        Just("SIGRTMIN+2147483647".to_string()),
        Just("HUP".to_string()),
        Just("redis://:pw@cache:6379/0".to_string()),
        Just("é😀".to_string()),
    ];
    proptest::collection::vec(piece, 0..4).prop_map(|p| p.concat())
}

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|n| format!("{n:?}")),
        Just("1e400".to_string()),
        Just("-1".to_string()),
        Just("0".to_string()),
        Just("99999999999999999999999999999".to_string()),
        Just("0640".to_string()),
    ]
}

/// A literal value of any type, nested.
fn value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        string_body().prop_map(|s| format!("\"{s}\"")),
        number(),
        any::<bool>().prop_map(|b| b.to_string()),
        Just("null".to_string()),
        Just("bare_word".to_string()),
        Just("<<EOT\nline {{ x }}\nEOT\n".to_string()),
        Just("1 + 2".to_string()),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4)
                .prop_map(|items| format!("[{}]", items.join(", "))),
            proptest::collection::vec((name(), inner), 0..4).prop_map(|entries| {
                let body: Vec<String> = entries.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                format!("{{ {} }}", body.join(", "))
            }),
        ]
    })
}

/// A well-formed block: kind, labels, attributes of any type, nested blocks.
fn block() -> impl Strategy<Value = String> {
    let attrs = proptest::collection::vec((name(), value()), 0..6);
    let leaf = (
        name(),
        proptest::collection::vec(string_body(), 0..2),
        attrs,
    )
        .prop_map(|(kind, labels, attrs)| render_block(&kind, &labels, &attrs, &[]));
    leaf.prop_recursive(2, 8, 3, |inner| {
        (
            name(),
            proptest::collection::vec(string_body(), 0..2),
            proptest::collection::vec((name(), value()), 0..6),
            proptest::collection::vec(inner, 0..3),
        )
            .prop_map(|(kind, labels, attrs, children)| {
                render_block(&kind, &labels, &attrs, &children)
            })
    })
}

fn render_block(
    kind: &str,
    labels: &[String],
    attrs: &[(String, String)],
    children: &[String],
) -> String {
    let mut out = kind.to_string();
    for l in labels {
        out.push_str(&format!(" \"{l}\""));
    }
    out.push_str(" {\n");
    for (k, v) in attrs {
        out.push_str(&format!("  {k} = {v}\n"));
    }
    for c in children {
        out.push_str(c);
        out.push('\n');
    }
    out.push_str("}\n");
    out
}

/// HCL-like token soup: mostly not HCL at all.
fn soup() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        name(),
        string_body().prop_map(|s| format!("\"{s}\"")),
        number(),
        Just("{".to_string()),
        Just("}".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just("=".to_string()),
        Just(",".to_string()),
        Just("\n".to_string()),
        Just("\"".to_string()),
        Just("#".to_string()),
        Just("//".to_string()),
        Just("/*".to_string()),
        Just("<<EOT\n".to_string()),
        Just("EOT".to_string()),
        Just("${".to_string()),
        Just("\u{0}".to_string()),
        Just("\r\n".to_string()),
        any::<char>().prop_map(String::from),
    ];
    proptest::collection::vec(token, 0..40).prop_map(|t| t.join(" "))
}

/// The configuration files in the repository, as mutation seeds.
fn seeds() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["examples", "tests/fixtures"] {
        collect_hcl(&root.join(dir), &mut files);
    }
    files.sort();
    let texts: Vec<String> = files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .collect();
    assert!(texts.len() >= 5, "the seed files were not found");
    texts
}

fn collect_hcl(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_hcl(&path, out);
        } else if path.extension().is_some_and(|e| e == "hcl") {
            out.push(path);
        }
    }
}

/// One edit of a text, on characters (so the result stays UTF-8).
#[derive(Debug, Clone)]
enum Edit {
    Delete { at: usize, len: usize },
    Insert { at: usize, text: String },
    Duplicate { at: usize, len: usize },
    Swap { a: usize, b: usize },
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 1..20usize).prop_map(|(at, len)| Edit::Delete { at, len }),
        (any::<usize>(), prop_oneof![soup(), value(), block()])
            .prop_map(|(at, text)| Edit::Insert { at, text }),
        (any::<usize>(), 1..60usize).prop_map(|(at, len)| Edit::Duplicate { at, len }),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::Swap { a, b }),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for e in edits {
        let n = chars.len();
        match e {
            Edit::Delete { at, len } if n > 0 => {
                let at = at % n;
                let end = (at + len).min(n);
                chars.drain(at..end);
            }
            Edit::Insert { at, text } => {
                let at = at % (n + 1);
                chars.splice(at..at, text.chars());
            }
            Edit::Duplicate { at, len } if n > 0 => {
                let at = at % n;
                let end = (at + len).min(n);
                let copy: Vec<char> = chars[at..end].to_vec();
                chars.splice(end..end, copy);
            }
            Edit::Swap { a, b } if n > 0 => chars.swap(a % n, b % n),
            _ => {}
        }
    }
    chars.into_iter().collect()
}

proptest! {
    #[test]
    fn token_soup_gives_a_plan_or_positioned_errors(text in soup()) {
        check_loads(&text)?;
    }

    #[test]
    fn blocks_with_values_of_every_type_give_a_plan_or_positioned_errors(
        blocks in proptest::collection::vec(block(), 0..4)
    ) {
        check_loads(&blocks.concat())?;
    }

    #[test]
    fn edited_example_configs_give_a_plan_or_positioned_errors(
        seed in any::<proptest::sample::Index>(),
        edits in proptest::collection::vec(edit(), 1..6),
    ) {
        let seeds = seeds();
        let text = apply(&seeds[seed.index(seeds.len())], &edits);
        check_loads(&text)?;
    }

    #[test]
    fn any_duration_text_gives_a_value_in_range_or_an_error(
        text in prop_oneof![
            any::<String>(),
            "[0-9.]{0,25}(ns|us|µs|ms|s|m|h|d|x|)([0-9.]{0,5}(ns|us|ms|s|m|h|d)){0,3}",
            "[ +-]{0,2}[0-9]{0,30}(\\.[0-9]{0,30})?[a-zµ]{0,3}",
        ]
    ) {
        match parse_duration(&text) {
            Ok(d) => prop_assert!(d <= MAX_DURATION, "{:?} -> {:?}", text, d),
            Err(e) => prop_assert!(!e.is_empty()),
        }
    }

    #[test]
    fn any_signal_name_gives_a_signal_or_an_error(
        text in prop_oneof![
            any::<String>(),
            "(SIG|sig)?(RTMIN|RTMAX|rtmin|HUP|TERM|KILL|USR1)([+-][0-9]{0,12})?",
            "(SIG)?(RTMIN|RTMAX)[+-](214748364[0-9]|[0-9]{1,3})",
            "[+-]?[0-9]{0,12}",
        ]
    ) {
        match gantry::signals::parse(&text) {
            Ok(n) => prop_assert!((1..=gantry::signals::rtmax()).contains(&n), "{:?} -> {}", text, n),
            Err(e) => prop_assert!(e.to_string().contains("unknown signal")),
        }
    }
}

/// Every example configuration loads with errors, if any, that all carry positions: the seeds of the
/// mutation test are themselves in the loader's domain.
#[test]
fn the_seed_configs_themselves_load() {
    for text in seeds() {
        check_loads(&text).expect("seed");
    }
}
