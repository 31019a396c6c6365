//! Rendering one tera template, and saying exactly where it went wrong.
//!
//! Owns the tera setup (strict, no HTML autoescaping, the sprig-like library registered) and the
//! translation of tera's errors into a [`TemplateError`] that carries the template's name, line and
//! column. It knows nothing about `file` blocks or the filesystem.
//!
//! # Finding the line
//!
//! Tera 1 reports parse errors with a position (pest's ` --> line:col`) but render errors without one:
//! its AST has no spans. So when a render fails, the template is rendered a second time, instrumented:
//! before every `{{ ... }}` and `{% ... %}` tag a call `{{ __gantry_at(p=OFFSET) }}` is inserted, which
//! records the byte offset of the tag about to run. The last recorded offset is the tag that was being
//! evaluated when the error happened. The instrumented output is thrown away, so inserted text that
//! would upset whitespace control does not matter; only the evaluation order does, and that is the
//! same as in the real render.
//!
//! One case needs more: an `{% elif %}` condition is evaluated without passing a marker of its own (the
//! marker before it sits in the previous branch). So the position is refined: from the last marker
//! on, the first tag that mentions the failing variable or function is the one reported.
//!
//! The second render only happens on failure, so it costs nothing on the path that succeeds.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::Value;

use super::funcs;

const MARKER_FN: &str = "__gantry_at";

/// A template that failed to parse or to render.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct TemplateError {
    /// The template's name as the user knows it (its path, or `content of file "TARGET"`).
    pub template: String,
    /// 1-based line of the offending tag, when it could be found.
    pub line: Option<usize>,
    /// 1-based column (in characters) of the offending tag or syntax error.
    pub column: Option<usize>,
    pub kind: TemplateErrorKind,
}

/// What went wrong in a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateErrorKind {
    /// The template is not valid tera.
    Syntax { message: String },
    /// A variable the template reads is not defined.
    UndefinedVariable { name: String },
    /// A filter, function or test failed, or does not exist.
    Call { name: String, message: String },
    /// Anything else tera reported.
    Other { message: String },
}

impl TemplateError {
    fn describe(&self) -> String {
        let mut at = self.template.clone();
        if let Some(line) = self.line {
            at.push_str(&format!(":{line}"));
            if let Some(col) = self.column {
                at.push_str(&format!(":{col}"));
            }
        }
        match &self.kind {
            TemplateErrorKind::Syntax { message } => format!("{at}: syntax error: {message}"),
            TemplateErrorKind::UndefinedVariable { name } => format!(
                "{at}: undefined variable `{name}` (if it is optional, write `{name} | default(value=\"...\")`)"
            ),
            TemplateErrorKind::Call { message, .. } => format!("{at}: {message}"),
            TemplateErrorKind::Other { message } => format!("{at}: {message}"),
        }
    }
}

/// Renders `source` (named `name` in errors) with `Env` and `Params` as its data.
///
/// `params` that is null renders as an empty map, so `Params.x | default(...)` works in a block without
/// `params`.
pub fn render(
    name: &str,
    source: &str,
    env: &BTreeMap<String, String>,
    params: &Value,
) -> Result<String, TemplateError> {
    let context = context(env, params);
    let mut tera = new_tera(env);
    if let Err(e) = tera.add_raw_template(name, source) {
        return Err(parse_error(name, source, &e));
    }
    match tera.render(name, &context) {
        Ok(out) => Ok(out),
        Err(e) => {
            let at = locate(name, source, env, &context, &e);
            Err(classify_render_error(name, source, at, &e))
        }
    }
}

/// Parses `source` without rendering it: syntax errors only.
pub fn parse(name: &str, source: &str) -> Result<(), TemplateError> {
    let mut tera = new_tera(&BTreeMap::new());
    tera.add_raw_template(name, source)
        .map_err(|e| parse_error(name, source, &e))
}

fn context(env: &BTreeMap<String, String>, params: &Value) -> tera::Context {
    let mut context = tera::Context::new();
    context.insert("Env", env);
    match params {
        Value::Null => context.insert("Params", &serde_json::Map::new()),
        other => context.insert("Params", other),
    }
    context
}

fn new_tera(env: &BTreeMap<String, String>) -> tera::Tera {
    let mut tera = tera::Tera::default();
    // Config files are not HTML: `&` in a connection string must stay `&` whatever the file is called.
    tera.autoescape_on(Vec::new());
    funcs::register(&mut tera, env);
    tera
}

/// The chain of messages in a tera error, outermost first.
fn chain(e: &tera::Error) -> Vec<String> {
    let mut out = vec![e.to_string()];
    let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(err) = cur {
        out.push(err.to_string());
        cur = err.source();
    }
    out
}

fn parse_error(name: &str, source: &str, e: &tera::Error) -> TemplateError {
    let messages = chain(e);
    // pest's message looks like " --> 3:14\n  |\n3 | ...\n  |   ^---\n  |\n  = expected ..."
    for m in &messages {
        if let Some((line, column)) = pest_position(m) {
            let expected = m
                .lines()
                .rev()
                .find_map(|l| l.trim_start().strip_prefix("= "))
                .unwrap_or("unexpected input")
                .to_string();
            let snippet = source.lines().nth(line.saturating_sub(1)).unwrap_or("");
            return TemplateError {
                template: name.to_string(),
                line: Some(line),
                column: Some(column),
                kind: TemplateErrorKind::Syntax {
                    message: format!(
                        "{expected}\n    {snippet}\n    {}^",
                        " ".repeat(column.saturating_sub(1))
                    ),
                },
            };
        }
    }
    TemplateError {
        template: name.to_string(),
        line: None,
        column: None,
        kind: TemplateErrorKind::Syntax {
            message: messages
                .iter()
                .filter(|m| !m.starts_with("Failed to parse"))
                .cloned()
                .collect::<Vec<_>>()
                .join(": "),
        },
    }
}

fn pest_position(message: &str) -> Option<(usize, usize)> {
    let rest = message.split("--> ").nth(1)?;
    let pos = rest.split_whitespace().next()?;
    let (l, c) = pos.split_once(':')?;
    Some((l.parse().ok()?, c.parse().ok()?))
}

/// Byte offset of the tag that failed, if the instrumented render can tell.
fn locate(
    name: &str,
    source: &str,
    env: &BTreeMap<String, String>,
    context: &tera::Context,
    e: &tera::Error,
) -> Option<usize> {
    let tags = scan(source);
    let instrumented = instrument(source, &tags);
    let last = Arc::new(AtomicUsize::new(usize::MAX));
    let mut tera = new_tera(env);
    let seen = Arc::clone(&last);
    tera.register_function(
        MARKER_FN,
        move |args: &std::collections::HashMap<String, Value>| {
            if let Some(p) = args.get("p").and_then(Value::as_u64) {
                seen.store(p as usize, Ordering::SeqCst);
            }
            Ok(Value::String(String::new()))
        },
    );
    if tera.add_raw_template(name, &instrumented).is_err() {
        return None;
    }
    // The instrumented render is expected to fail the same way; its output is not used.
    let _ = tera.render(name, context);
    let marker = match last.load(Ordering::SeqCst) {
        usize::MAX => None,
        p => Some(p),
    };
    let subject = subject_of(e);
    refine(source, &tags, marker, subject.as_deref())
}

/// The name the error is about: the undefined variable, or the filter/function that failed.
fn subject_of(e: &tera::Error) -> Option<String> {
    for m in chain(e) {
        if let Some(var) = backticked_after(&m, "Variable `") {
            return Some(var);
        }
        for prefix in ["Filter call '", "Function call '", "Test call '"] {
            if let Some(rest) = m.strip_prefix(prefix) {
                return rest.split('\'').next().map(str::to_string);
            }
        }
        for prefix in ["Filter '", "Function '", "Test '"] {
            if let Some(rest) = m.strip_prefix(prefix) {
                if m.ends_with("not found") {
                    return rest.split('\'').next().map(str::to_string);
                }
            }
        }
    }
    None
}

fn backticked_after(m: &str, prefix: &str) -> Option<String> {
    let start = m.find(prefix)? + prefix.len();
    let rest = &m[start..];
    rest.split('`').next().map(str::to_string)
}

fn refine(
    source: &str,
    tags: &[Tag],
    marker: Option<usize>,
    subject: Option<&str>,
) -> Option<usize> {
    let from = marker.unwrap_or(0);
    if let Some(subject) = subject {
        let hit = tags
            .iter()
            .filter(|t| t.start >= from && t.kind != TagKind::Comment)
            .find(|t| mentions(&source[t.start..t.end], subject));
        if let Some(t) = hit {
            return Some(t.start);
        }
    }
    marker
}

/// Whether a tag's text contains `name` as a whole identifier path (so `Params.foo` does not match
/// `Params.foobar`).
fn mentions(tag: &str, name: &str) -> bool {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    tag.match_indices(name).any(|(i, _)| {
        let before = tag[..i].chars().next_back();
        let after = tag[i + name.len()..].chars().next();
        !before.is_some_and(|c| ident(c) || c == '.') && !after.is_some_and(ident)
    })
}

fn classify_render_error(
    name: &str,
    source: &str,
    at: Option<usize>,
    e: &tera::Error,
) -> TemplateError {
    let (line, column) = match at {
        Some(off) => {
            let (l, c) = line_col(source, off);
            (Some(l), Some(c))
        }
        None => (None, None),
    };
    let messages: Vec<String> = chain(e)
        .into_iter()
        .filter(|m| !m.starts_with("Failed to render"))
        .collect();
    let kind = if let Some(var) = messages
        .iter()
        .find(|m| m.starts_with("Variable `") && m.contains("not found in context"))
        .and_then(|m| backticked_after(m, "Variable `"))
    {
        TemplateErrorKind::UndefinedVariable { name: var }
    } else if let Some(call) = subject_of(e) {
        // Drop tera's "Filter call 'x' failed" wrapper when the inner message already names `x`.
        let inner: Vec<&String> = messages
            .iter()
            .filter(|m| {
                let wrapper = m.starts_with("Filter call '")
                    || m.starts_with("Function call '")
                    || m.starts_with("Test call '");
                !(wrapper && messages.len() > 1)
            })
            .collect();
        let mut message = inner
            .iter()
            .map(|m| m.as_str())
            .collect::<Vec<_>>()
            .join(": ");
        if !message.contains(&call) {
            message = format!("`{call}`: {message}");
        }
        if messages
            .iter()
            .any(|m| m.ends_with("not found") && m.contains(&format!("'{call}'")))
        {
            if let Some(hint) = funcs::unknown_name_hint(&call) {
                message = format!("{message} ({hint})");
            }
        }
        TemplateErrorKind::Call {
            name: call,
            message,
        }
    } else {
        TemplateErrorKind::Other {
            message: messages.join(": "),
        }
    };
    TemplateError {
        template: name.to_string(),
        line,
        column,
        kind,
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TagKind {
    Expr,
    Stmt,
    Comment,
}

#[derive(Debug, Clone, Copy)]
struct Tag {
    start: usize,
    end: usize,
    kind: TagKind,
}

/// Finds the tags of a tera template: their byte ranges, skipping string literals inside tags and the
/// body of `{% raw %}` blocks. Good enough to place markers; tera itself remains the parser.
fn scan(source: &str) -> Vec<Tag> {
    let bytes = source.as_bytes();
    let mut tags = Vec::new();
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] != b'{' {
            i += 1;
            continue;
        }
        let (kind, close) = match bytes[i + 1] {
            b'{' => (TagKind::Expr, "}}"),
            b'%' => (TagKind::Stmt, "%}"),
            b'#' => (TagKind::Comment, "#}"),
            _ => {
                i += 1;
                continue;
            }
        };
        let start = i;
        let mut j = i + 2;
        let mut quote: Option<u8> = None;
        let mut end = bytes.len();
        while j < bytes.len() {
            let b = bytes[j];
            match quote {
                Some(q) if b == q => quote = None,
                Some(_) => {}
                None if kind != TagKind::Comment && matches!(b, b'"' | b'\'' | b'`') => {
                    quote = Some(b)
                }
                None if bytes[j..].starts_with(close.as_bytes()) => {
                    end = j + 2;
                    break;
                }
                None => {}
            }
            j += 1;
        }
        tags.push(Tag { start, end, kind });
        i = end;
        if kind == TagKind::Stmt && keyword(&source[start..end]) == "raw" {
            // Everything up to `{% endraw %}` is text, not tags.
            let mut k = end;
            loop {
                match source[k..].find("{%") {
                    Some(off) => {
                        let s = k + off;
                        let e = source[s..].find("%}").map_or(source.len(), |x| s + x + 2);
                        if keyword(&source[s..e]) == "endraw" {
                            tags.push(Tag {
                                start: s,
                                end: e,
                                kind: TagKind::Stmt,
                            });
                            i = e;
                            break;
                        }
                        k = s + 2;
                    }
                    None => {
                        i = source.len();
                        break;
                    }
                }
            }
        }
    }
    tags
}

/// The first word of a `{% ... %}` tag.
fn keyword(tag: &str) -> &str {
    tag.trim_start_matches("{%")
        .trim_start_matches('-')
        .split_whitespace()
        .next()
        .unwrap_or("")
        .trim_end_matches("%}")
}

/// The source with a marker call before every tag that is evaluated. Tags that must come first in a
/// template (`extends`, `import`) or stand at its top level (`macro`) get none; neither do tags inside
/// raw blocks (they are not in `tags`).
fn instrument(source: &str, tags: &[Tag]) -> String {
    let mut out = String::with_capacity(source.len() * 2);
    let mut last = 0;
    for tag in tags {
        if tag.kind == TagKind::Comment {
            continue;
        }
        if tag.kind == TagKind::Stmt
            && matches!(
                keyword(&source[tag.start..tag.end]),
                "extends" | "import" | "macro" | "endmacro" | "endraw"
            )
        {
            continue;
        }
        out.push_str(&source[last..tag.start]);
        out.push_str(&format!("{{{{ {MARKER_FN}(p={}) }}}}", tag.start));
        last = tag.start;
    }
    out.push_str(&source[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env() -> BTreeMap<String, String> {
        BTreeMap::from([("USER".to_string(), "alice".to_string())])
    }

    fn err(src: &str) -> TemplateError {
        match render("t.tpl", src, &env(), &json!({"foo": "bar", "n": 3})) {
            Ok(out) => panic!("expected an error, rendered {out:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn renders_env_and_params() {
        let out = render(
            "t",
            "{{ Params.foo }} {{ Env.USER }}",
            &env(),
            &json!({"foo": "bar"}),
        );
        assert_eq!(out, Ok("bar alice".to_string()));
    }

    #[test]
    fn null_params_is_an_empty_map() {
        let out = render(
            "t",
            "{{ Params.x | default(value=1) }}",
            &env(),
            &Value::Null,
        );
        assert_eq!(out, Ok("1".to_string()));
    }

    #[test]
    fn html_named_templates_are_not_escaped() {
        let out = render(
            "index.html",
            "{{ Params.u }}",
            &env(),
            &json!({"u": "a&b<c>"}),
        );
        assert_eq!(out, Ok("a&b<c>".to_string()));
    }

    #[test]
    fn undefined_variable_names_line_column_and_variable() {
        let e = err("line one\nline two {{ Params.foo }}\nx = {{ Params.missing }}\n");
        assert_eq!(
            e.kind,
            TemplateErrorKind::UndefinedVariable {
                name: "Params.missing".into()
            }
        );
        assert_eq!((e.line, e.column), (Some(3), Some(5)));
        let text = e.to_string();
        assert!(
            text.starts_with("t.tpl:3:5: undefined variable `Params.missing`"),
            "{text}"
        );
    }

    #[test]
    fn undefined_variable_in_a_taken_branch_inside_a_loop() {
        let src =
            "{% for i in [1, 2] %}\n{% if i == 2 %}\n  {{ Env.NOPE }}\n{% endif %}\n{% endfor %}\n";
        let e = err(src);
        assert_eq!(e.line, Some(3));
    }

    #[test]
    fn undefined_variable_in_an_elif_condition_is_found_on_the_elif_line() {
        let src =
            "{% if Params.foo == \"x\" %}\na\n{% elif Params.nope == \"y\" %}\nb\n{% endif %}\n";
        let e = err(src);
        assert_eq!(e.line, Some(3), "{e}");
    }

    #[test]
    fn same_variable_used_twice_reports_the_use_that_ran() {
        // The first use is guarded by a default, the second is not.
        let src = "{{ Params.x | default(value=1) }}\n{{ Params.n }}\n{{ Params.x }}\n";
        let e = err(src);
        assert_eq!(e.line, Some(3), "{e}");
    }

    #[test]
    fn multiline_tag_reports_its_first_line() {
        let e = err("a\n{{\n  Params.gone\n}}\n");
        assert_eq!(e.line, Some(2));
    }

    #[test]
    fn syntax_error_names_line_and_column() {
        let e = err("ok\n\nvalue = {{ Params.foo | }}\n");
        assert!(matches!(e.kind, TemplateErrorKind::Syntax { .. }), "{e:?}");
        assert_eq!(e.line, Some(3));
        assert!(e.column.is_some());
        assert!(e.to_string().starts_with("t.tpl:3:"), "{e}");
    }

    #[test]
    fn unclosed_block_is_a_syntax_error_with_a_line() {
        let e = err("{% if Params.foo %}\nyes\n");
        assert!(matches!(e.kind, TemplateErrorKind::Syntax { .. }), "{e:?}");
        assert!(e.line.is_some(), "{e}");
    }

    #[test]
    fn failing_filter_names_the_filter_and_line() {
        let e = err("a\nb {{ Params.n | b64dec }}\n");
        match &e.kind {
            TemplateErrorKind::Call { name, message } => {
                assert_eq!(name, "b64dec");
                assert!(message.contains("b64dec"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(e.line, Some(2));
    }

    #[test]
    fn unknown_filter_is_named() {
        let e = err("\n{{ Params.foo | shout }}");
        assert!(e.to_string().contains("shout"), "{e}");
        assert_eq!(e.line, Some(2), "{e}");
    }

    #[test]
    fn unknown_names_get_a_suggestion_or_their_gantry_spelling() {
        let e = err("{{ randAlphanum(length=3) }}");
        assert!(
            e.to_string().contains("did you mean \"randAlphaNum\"?"),
            "{e}"
        );
        let e = err("{{ Params.foo | splitList }}");
        assert!(
            e.to_string().contains("in gantry, use split(pat=\",\")"),
            "{e}"
        );
        let e = err("{{ Params.foo | zzzzzz }}");
        assert!(!e.to_string().contains("did you mean"), "{e}");
    }

    #[test]
    fn required_message_is_shown_with_its_line() {
        let e = err("x\n{{ Env.DB | default(value=\"\") | required(msg=\"DB must be set\") }}");
        assert!(e.to_string().contains("DB must be set"), "{e}");
        assert_eq!(e.line, Some(2));
    }

    #[test]
    fn raw_blocks_are_left_alone_by_the_locator() {
        let src = "{% raw %}{{ not.a.var }}{% endraw %}\n{{ Params.absent }}";
        let e = err(src);
        assert_eq!(e.line, Some(2));
        let ok = render("t", "{% raw %}{{ x }}{% endraw %}", &env(), &json!({}));
        assert_eq!(ok, Ok("{{ x }}".to_string()));
    }

    #[test]
    fn strings_containing_tag_ends_do_not_confuse_the_scanner() {
        let src = "{{ \"}}\" ~ Params.foo }}\n{{ Params.absent }}";
        let e = err(src);
        assert_eq!(e.line, Some(2));
    }

    #[test]
    fn non_ascii_text_inside_and_around_tags() {
        let e = err("größe = {{ \"ä\" ~ Params.foo }} €\n{{ \"ö\" ~ Params.weg }}");
        assert_eq!((e.line, e.column), (Some(2), Some(1)), "{e}");
        assert_eq!(
            render(
                "t",
                "{# ü #}{{ \"→\" ~ Params.foo }}",
                &env(),
                &json!({"foo": "x"})
            ),
            Ok("→x".to_string())
        );
    }

    #[test]
    fn odd_templates_do_not_panic_the_locator() {
        for src in [
            "{{",
            "{",
            "{%",
            "{#",
            "é{{ Params.nope",
            "{% raw %}{{ x }}",
            "{% raw %}{% endraw",
            "{{ 'unterminated }}",
            "{{ Params.nope }}{",
            "{% if Params.foo %}{{ Params.nope }}{% endif %}é",
            "{{ Params.foo | upper(\"ä\") }}ü",
            "{% set x = Params.nope %}",
            "{% for x in Params.nope %}{% endfor %}",
            "{{ Params.foo[Params.nope] }}",
        ] {
            let _ = render("t", src, &env(), &json!({"foo": "bar"}));
        }
    }

    #[test]
    fn column_counts_characters_not_bytes() {
        assert_eq!(line_col("äö {{", 3 + 2), (1, 4));
    }

    #[test]
    fn mentions_matches_whole_paths_only() {
        assert!(mentions("{{ Params.foo }}", "Params.foo"));
        assert!(!mentions("{{ Params.foobar }}", "Params.foo"));
        assert!(!mentions("{{ X.Params.foo }}", "Params.foo"));
    }
}
