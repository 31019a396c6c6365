//! Property tests of template rendering: whatever the template text and whatever a template passes to
//! the function library, gantry neither panics nor aborts, and every error carries a line and column.
//!
//! Case counts are proptest's default (256 per property) so CI stays fast; a longer local run sets
//! the count in the environment, e.g. `PROPTEST_CASES=20000 cargo test --test prop_templates`.

use std::collections::BTreeMap;

use gantry::render::{library_names, parse_template, render_template, TemplateError};
use proptest::prelude::*;
use serde_json::json;

const SECRET: &str = "zqSECRETvalue7Hk2";

fn env() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("USER".to_string(), "alice".to_string()),
        ("SECRET".to_string(), SECRET.to_string()),
        ("EMPTY".to_string(), String::new()),
        ("NUM".to_string(), "42".to_string()),
    ])
}

fn params() -> serde_json::Value {
    json!({
        "name": "web",
        "port": 8080,
        "list": ["b", "a", 3, null, true],
        "map": {"k": "v", "n": 1},
        "nested": {"a": {"b": [1, {"c": "d"}]}},
        "blank": "",
        "float": 2.5,
        "big": 9_223_372_036_854_775_807_i64,
    })
}

/// The invariant every render and parse must keep: a value, or an error with a position that is not
/// the engine failing (a caught panic, or a thread that could not start).
fn check_outcome<T: std::fmt::Debug>(src: &str, result: &Result<T, TemplateError>) {
    if let Err(e) = result {
        assert!(
            e.line.is_some() && e.column.is_some(),
            "error without a position for {src:?}: {e}"
        );
        let text = e.to_string();
        assert!(
            !text.contains("failed unexpectedly") && !text.contains("cannot start a thread"),
            "the engine failed for {src:?}: {text}"
        );
        assert!(
            !text.contains(SECRET),
            "an error shows the secret for {src:?}: {text}"
        );
    }
}

/// Pieces of tera syntax, names and data, so random sequences hit the parser's and renderer's edges
/// far more often than random characters would.
fn fragment() -> impl Strategy<Value = String> {
    let pieces: Vec<&'static str> = vec![
        "{{",
        "}}",
        "{%",
        "%}",
        "{#",
        "#}",
        "{{-",
        "-}}",
        "{%-",
        "-%}",
        " ",
        "\n",
        "if ",
        "elif ",
        "else",
        "endif",
        "for ",
        " in ",
        "endfor",
        "macro ",
        "endmacro",
        "set ",
        "set_global ",
        "block ",
        "endblock",
        "filter ",
        "endfilter",
        "raw",
        "endraw",
        "include ",
        "import ",
        "extends ",
        "break",
        "continue",
        " as ",
        "self::",
        "m(",
        "f(n=",
        "n",
        ")",
        "(",
        "[",
        "]",
        ",",
        "=",
        "==",
        "!=",
        "<",
        ">=",
        "+",
        "-",
        "*",
        "/",
        "%",
        "~",
        " and ",
        " or ",
        "not ",
        " is ",
        "defined",
        "|",
        "Params",
        "Env",
        ".",
        "Params.name",
        "Params.list",
        "Params.map",
        "Env.SECRET",
        "Env.USER",
        "Env.NUM",
        "Params.nope",
        "x",
        "loop.index",
        "0",
        "1",
        "-1",
        "2.5",
        "99999999999999999999",
        "9223372036854775807",
        "\"",
        "'",
        "`",
        "\"s\"",
        "'t.tpl'",
        "true",
        "false",
        "é",
        "€",
        "upper",
        "length",
        "default(value=",
        "range(end=",
        "randAlphaNum(length=",
        "indent(width=",
        "join(sep=",
        "replace(from=",
        "to=",
        "atoi",
        "b64dec",
        "toYaml",
        "date",
        "first",
        "get_random(end=",
        "throw(message=",
        "super()",
    ];
    prop_oneof![
        6 => proptest::sample::select(pieces).prop_map(str::to_string),
        1 => "\\PC{0,6}",
    ]
}

fn template_text() -> impl Strategy<Value = String> {
    prop::collection::vec(fragment(), 0..60).prop_map(|parts| parts.concat())
}

/// A tera literal or data reference to pass to a filter or function.
fn argument() -> impl Strategy<Value = String> {
    let number = prop_oneof![
        4 => (-5i64..50).prop_map(|n| n.to_string()),
        1 => proptest::sample::select(vec![
            i64::MAX,
            i64::MIN + 1,
            1 << 20,
            (1 << 20) + 1,
            100_001,
            1_000_000_000_000,
        ])
        .prop_map(|n| n.to_string()),
        1 => (-1.0e6f64..1.0e6).prop_map(|f| format!("{f:.3}")),
    ];
    let text = "[a-zA-Z0-9 ,.:;_/%{}|ä€-]{0,12}".prop_map(|s| format!("\"{s}\""));
    let data = proptest::sample::select(vec![
        "Params.name",
        "Params.port",
        "Params.list",
        "Params.map",
        "Params.nested",
        "Params.blank",
        "Params.float",
        "Params.big",
        "Env.SECRET",
        "Env.USER",
        "Env.EMPTY",
        "Env.NUM",
        "true",
        "false",
        "[]",
        "[1, \"a\", 2.5]",
        "self::m(n=1)",
        "(1 in Params.list)",
    ])
    .prop_map(str::to_string);
    prop_oneof![3 => number, 3 => text, 3 => data]
}

/// `name=value, ...` with argument names the library uses.
fn arguments() -> impl Strategy<Value = String> {
    let names = vec![
        "length",
        "width",
        "value",
        "prefix",
        "suffix",
        "substr",
        "msg",
        "yes",
        "no",
        "cond",
        "values",
        "key",
        "sep",
        "from",
        "to",
        "start",
        "end",
        "step_by",
        "pat",
        "name",
        "default",
        "format",
        "n",
        "precision",
        "method",
        "first",
        "blank",
        "attribute",
        "utc",
        "timestamp",
        "base",
        "message",
        "with",
        "timezone",
        "end_at",
        "pretty",
        "ident",
    ];
    prop::collection::vec((proptest::sample::select(names), argument()), 0..4).prop_map(|args| {
        let mut seen = Vec::new();
        args.into_iter()
            .filter(|(n, _)| {
                let fresh = !seen.contains(n);
                seen.push(*n);
                fresh
            })
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    })
}

/// An expression from data, literals, operators, filters and calls, nested a few levels.
fn expression() -> impl Strategy<Value = String> {
    let leaf = argument();
    leaf.prop_recursive(3, 16, 3, |inner| {
        let ops = proptest::sample::select(vec![
            " + ", " - ", " * ", " / ", " % ", " == ", " != ", " < ", " and ", " or ", " ~ ",
            " in ",
        ]);
        let names = proptest::sample::select(library_names().to_vec());
        prop_oneof![
            (inner.clone(), ops, inner.clone()).prop_map(|(a, op, b)| format!("{a}{op}{b}")),
            inner.clone().prop_map(|a| format!("({a})")),
            inner.clone().prop_map(|a| format!("not {a}")),
            (inner.clone(), names.clone(), arguments())
                .prop_map(|(a, f, args)| format!("{a} | {f}({args})")),
            (names, arguments()).prop_map(|(f, args)| format!("{f}({args})")),
            proptest::sample::select(vec![
                "Params.list[0]",
                "Params.list[9]",
                "Params.map[\"k\"]",
                "Params.map[Env.USER]",
                "Params.list[Params.port]",
                "Params[Env.SECRET]",
            ])
            .prop_map(str::to_string),
        ]
    })
}

/// A template built from blocks that nest properly, so most of them parse and their render errors
/// (and the locator that finds their lines) get exercised.
fn structured_template() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        "[a-z \n]{0,8}",
        expression().prop_map(|e| format!("{{{{ {e} }}}}")),
        expression().prop_map(|e| format!("{{% set v = {e} %}}")),
        Just("{{ self::m(n=2) }}".to_string()),
    ];
    let body = leaf.prop_recursive(4, 24, 4, |inner| {
        let children = prop::collection::vec(inner, 0..4).prop_map(|c| c.join("\n"));
        prop_oneof![
            (expression(), children.clone(), children.clone())
                .prop_map(|(c, a, b)| format!("{{% if {c} %}}{a}{{% else %}}{b}{{% endif %}}")),
            (expression(), children.clone()).prop_map(|(c, a)| format!(
                "{{% for item in {c} %}}{a}{{{{ item }}}}{{% endfor %}}"
            )),
            children
                .clone()
                .prop_map(|a| format!("{{% filter upper %}}{a}{{% endfilter %}}")),
            children,
        ]
    });
    (body.clone(), body).prop_map(|(m, main)| {
        format!(
            "{{% macro m(n) %}}{{% if n > 0 %}}{m}{{{{ self::m(n=n-1) }}}}{{% endif %}}{{% endmacro %}}\n{main}"
        )
    })
}

proptest! {
    #[test]
    fn arbitrary_template_text_gives_a_value_or_a_positioned_error(src in template_text()) {
        check_outcome(&src, &render_template("t.tpl", &src, &env(), &params()));
        check_outcome(&src, &parse_template("t.tpl", &src));
    }

    #[test]
    fn structured_templates_give_a_value_or_a_positioned_error(src in structured_template()) {
        check_outcome(&src, &render_template("t.tpl", &src, &env(), &params()));
        check_outcome(&src, &parse_template("t.tpl", &src));
    }

    #[test]
    fn arbitrary_calls_into_the_library_give_a_value_or_a_positioned_error(
        name in proptest::sample::select(library_names().to_vec()),
        subject in argument(),
        args in arguments(),
        as_filter in any::<bool>(),
        line in 1usize..4,
    ) {
        let call = if as_filter {
            format!("{subject} | {name}({args})")
        } else {
            format!("{name}({args})")
        };
        let src = format!("{}{{{{ {call} }}}}\n", "text\n".repeat(line - 1));
        let result = render_template("t.tpl", &src, &env(), &params());
        check_outcome(&src, &result);
        // An error from the call is about the line the call is on (a syntax error may be anywhere).
        if let Err(e) = &result {
            prop_assert_eq!(e.line, Some(line), "{}: {}", src, e);
        }
    }

    #[test]
    fn limits_are_reported_the_same_by_parse_and_render(
        depth in 60usize..70,
        kind in proptest::sample::select(vec!["if true", "for i in [1]", "filter upper"]),
    ) {
        let close = match kind {
            "if true" => "endif",
            "for i in [1]" => "endfor",
            _ => "endfilter",
        };
        let src = format!("{}x{}", format!("{{% {kind} %}}\n").repeat(depth), format!("{{% {close} %}}").repeat(depth));
        let rendered = render_template("t.tpl", &src, &env(), &params());
        let parsed = parse_template("t.tpl", &src);
        check_outcome(&src, &rendered);
        prop_assert_eq!(rendered.is_ok(), depth <= 64);
        prop_assert_eq!(parsed.as_ref().err(), rendered.as_ref().err());
    }
}
