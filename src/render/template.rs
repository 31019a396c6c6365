//! Rendering one tera template, and saying exactly where it went wrong — without saying what the
//! environment holds.
//!
//! Owns the tera setup (strict, no HTML autoescaping, the sprig-like library registered), running a
//! template within gantry's limits (`guard`), and the translation of tera's errors into a
//! [`TemplateError`] that carries the template's name, line and column. It knows nothing about
//! `file` blocks or the filesystem.
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
//! The second render only happens on failure, so it costs nothing on the path that succeeds. Errors
//! tera reports without any position (a circular `extends`, an integer literal out of range) point at
//! the first tag that mentions what the message names, or at the start of the template.
//!
//! # Macro calls are counted
//!
//! Every render (not only the instrumented one) has `guard`'s counter inserted after each
//! `{% macro %}` tag and before each `{% endmacro %}` tag, with the same whitespace control as the tag
//! it sits next to, so the output is unchanged. Parse errors are always reported from the template as
//! written.
//!
//! # Values stay out of errors
//!
//! A template error goes to the log, and templates read secrets: `Env.DB_PASSWORD | b64dec` that fails
//! must not print the password. The library in `funcs` never puts a value in its messages. Tera's own
//! messages sometimes do (``got `...` but expected``, ``the evaluated version was `...` ``), so in
//! those every backticked part that is not text of the template itself is replaced by `[hidden]`; and
//! in every message, any value of the environment (4 characters or longer) is replaced by
//! `[hidden]`. What a failing tag reads is named instead: ``(the tag reads `Env.DB_PASSWORD`)``.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::Value;

use super::funcs;
use super::guard::{self, Violation};
use super::scan::{self, keyword, line_col, scan, Tag, TagKind};

const MARKER_FN: &str = "__gantry_at";

/// What replaces a value in an error message.
const HIDDEN: &str = "[hidden]";

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
    /// The template goes past one of gantry's limits, or could never finish (it includes itself, a
    /// macro always calls itself); see `docs/templates.md`.
    Limit { message: String },
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
            // Go templates name data with a leading `.` or `$`; tera's names never start so.
            TemplateErrorKind::UndefinedVariable { name } if name.starts_with(['.', '$']) => format!(
                "{at}: map has no entry for `{name}` (if it is optional, write `{{{{ {name} | default \"...\" }}}}`)"
            ),
            TemplateErrorKind::UndefinedVariable { name } => format!(
                "{at}: undefined variable `{name}` (if it is optional, write `{name} | default(value=\"...\")`)"
            ),
            TemplateErrorKind::Call { message, .. } => format!("{at}: {message}"),
            TemplateErrorKind::Limit { message } => format!("{at}: {message}"),
            TemplateErrorKind::Other { message } => format!("{at}: {message}"),
        }
    }

    pub(super) fn at(name: &str, source: &str, offset: usize, kind: TemplateErrorKind) -> Self {
        let (line, column) = line_col(source, offset);
        TemplateError {
            template: name.to_string(),
            line: Some(line),
            column: Some(column),
            kind,
        }
    }

    fn limit(name: &str, source: &str, v: Violation) -> Self {
        Self::at(
            name,
            source,
            v.offset,
            TemplateErrorKind::Limit { message: v.message },
        )
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
    let tags = scan(source);
    guard::check_limits(source, &tags).map_err(|v| TemplateError::limit(name, source, v))?;
    guard::on_render_stack(|| render_within_limits(name, source, &tags, env, params))
        .unwrap_or_else(|why| Err(engine_failure(name, why)))
}

/// Parses `source` without rendering it: syntax errors, and templates that could never finish.
pub fn parse(name: &str, source: &str) -> Result<(), TemplateError> {
    let tags = scan(source);
    guard::check_limits(source, &tags).map_err(|v| TemplateError::limit(name, source, v))?;
    guard::on_render_stack(|| {
        let mut tera = new_tera(&BTreeMap::new());
        tera.add_raw_template(name, source)
            .map_err(|e| parse_error(name, source, &tags, &e))?;
        check_parsed(&tera, name, source, &tags)
    })
    .unwrap_or_else(|why| Err(engine_failure(name, why)))
}

/// The render thread could not be started, or tera panicked: not the template's fault as far as
/// gantry can tell, but still an error about this template.
pub(super) fn engine_failure(name: &str, why: String) -> TemplateError {
    TemplateError {
        template: name.to_string(),
        line: Some(1),
        column: Some(1),
        kind: TemplateErrorKind::Other { message: why },
    }
}

fn render_within_limits(
    name: &str,
    source: &str,
    tags: &[Tag],
    env: &BTreeMap<String, String>,
    params: &Value,
) -> Result<String, TemplateError> {
    let context = context(env, params);
    let mut tera = new_tera(env);
    // The template as written first, so syntax errors have the author's lines and columns.
    if let Err(e) = tera.add_raw_template(name, source) {
        return Err(parse_error(name, source, tags, &e));
    }
    check_parsed(&tera, name, source, tags)?;
    if has_macros(source, tags) {
        let counted = instrument(source, tags, false);
        if let Err(e) = tera.add_raw_template(name, &counted) {
            return Err(engine_failure(
                name,
                format!("the template could not be prepared for rendering: {e}"),
            ));
        }
    }
    let mut out = guard::Output::default();
    // Tera 1 panics on a few templates (`guard` refuses those it knows of); one it does not know of
    // still becomes an error at the tag that was being rendered, not the end of gantry.
    let rendered = catch_unwind(AssertUnwindSafe(|| {
        tera.render_to(name, &context, &mut out)
    }));
    match rendered {
        Ok(Ok(())) => String::from_utf8(out.bytes)
            .map_err(|_| engine_failure(name, "the output is not UTF-8 text".to_string())),
        Ok(Err(e)) => {
            let at = locate(name, source, tags, env, &context, Some(&e));
            Err(classify_render_error(
                name, source, tags, env, at, &e, out.over,
            ))
        }
        Err(panic) => {
            let at = locate(name, source, tags, env, &context, None);
            let message = format!(
                "tera failed unexpectedly on this tag ({}); this is a bug in tera, please report the template",
                hide_env_values(&guard::panic_message(panic.as_ref()), env)
            );
            Err(TemplateError::at(
                name,
                source,
                at.unwrap_or(0),
                TemplateErrorKind::Other { message },
            ))
        }
    }
}

/// `guard`'s checks of a template tera has parsed (as `name`).
fn check_parsed(
    tera: &tera::Tera,
    name: &str,
    source: &str,
    tags: &[Tag],
) -> Result<(), TemplateError> {
    let limit = |v| TemplateError::limit(name, source, v);
    guard::check_structure(name, source, tags).map_err(limit)?;
    if let Some(template) = tera.templates.get(name) {
        guard::check_evaluable(template, source, tags).map_err(limit)?;
    }
    Ok(())
}

fn has_macros(source: &str, tags: &[Tag]) -> bool {
    tags.iter()
        .any(|t| t.kind == TagKind::Stmt && keyword(&source[t.start..t.end]) == "macro")
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
    guard::register_macro_depth(&mut tera);
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

fn parse_error(name: &str, source: &str, tags: &[Tag], e: &tera::Error) -> TemplateError {
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
            let (snippet, caret) = snippet(
                source.lines().nth(line.saturating_sub(1)).unwrap_or(""),
                column,
            );
            return TemplateError {
                template: name.to_string(),
                line: Some(line),
                column: Some(column),
                kind: TemplateErrorKind::Syntax {
                    message: format!("{expected}\n    {snippet}\n    {}^", " ".repeat(caret)),
                },
            };
        }
    }
    let messages: Vec<String> = messages
        .into_iter()
        .filter(|m| !m.starts_with("Failed to parse"))
        .collect();
    let offset = offset_named_in(source, tags, &messages);
    TemplateError::at(
        name,
        source,
        offset,
        TemplateErrorKind::Syntax {
            message: messages.join(": "),
        },
    )
}

/// At most this many characters of a line are shown under a syntax error.
const SNIPPET_CHARS: usize = 100;

/// The part of `line` around 1-based `column` that is shown, and how far in the caret goes.
pub(super) fn snippet(line: &str, column: usize) -> (String, usize) {
    let chars: Vec<char> = line.chars().collect();
    let col = column.saturating_sub(1).min(chars.len());
    if chars.len() <= SNIPPET_CHARS {
        return (line.to_string(), col);
    }
    let from = col.saturating_sub(SNIPPET_CHARS / 2);
    let to = (from + SNIPPET_CHARS).min(chars.len());
    let mut shown = String::new();
    if from > 0 {
        shown.push('…');
    }
    shown.extend(&chars[from..to]);
    if to < chars.len() {
        shown.push('…');
    }
    (shown, col - from + usize::from(from > 0))
}

fn pest_position(message: &str) -> Option<(usize, usize)> {
    let rest = message.split("--> ").nth(1)?;
    let pos = rest.split_whitespace().next()?;
    let (l, c) = pos.split_once(':')?;
    Some((l.parse().ok()?, c.parse().ok()?))
}

/// For an error without a position: the first tag whose text contains something the messages quote
/// (`'parent.tera'`, `` `99999999999999999999` ``), else the start of the template.
fn offset_named_in(source: &str, tags: &[Tag], messages: &[String]) -> usize {
    let quoted = messages.iter().flat_map(|m| {
        let mut parts = Vec::new();
        for q in ['`', '\''] {
            parts.extend(m.split(q).skip(1).step_by(2).map(str::to_string));
        }
        parts
    });
    for part in quoted.filter(|p| !p.trim().is_empty()) {
        if let Some(t) = tags
            .iter()
            .find(|t| t.kind != TagKind::Comment && source[t.start..t.end].contains(&part))
        {
            return t.start;
        }
    }
    0
}

/// Byte offset of the tag that failed, if the instrumented render can tell.
fn locate(
    name: &str,
    source: &str,
    tags: &[Tag],
    env: &BTreeMap<String, String>,
    context: &tera::Context,
    e: Option<&tera::Error>,
) -> Option<usize> {
    let instrumented = instrument(source, tags, true);
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
    let _ = catch_unwind(AssertUnwindSafe(|| {
        tera.render_to(name, context, guard::Output::default())
    }));
    let marker = match last.load(Ordering::SeqCst) {
        usize::MAX => None,
        p => Some(p),
    };
    let subject = e.and_then(subject_of);
    refine(source, tags, marker, subject.as_deref())
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
    tags: &[Tag],
    env: &BTreeMap<String, String>,
    at: Option<usize>,
    e: &tera::Error,
    output_over: bool,
) -> TemplateError {
    // Every render error gets a position: the tag found, else the first one, else the start.
    let offset = at
        .or_else(|| {
            tags.iter()
                .find(|t| t.kind != TagKind::Comment)
                .map(|t| t.start)
        })
        .unwrap_or(0);
    let messages: Vec<String> = chain(e)
        .into_iter()
        .filter(|m| !m.starts_with("Failed to render"))
        .collect();
    let subject = subject_of(e);
    let kind = if output_over {
        TemplateErrorKind::Limit {
            message: guard::output_limit_message(),
        }
    } else if subject.as_deref() == Some(guard::ENTER_FN) {
        // guard's own message (no values in it) is the innermost one.
        TemplateErrorKind::Limit {
            message: messages.last().cloned().unwrap_or_default(),
        }
    } else if let Some(var) = messages
        .iter()
        .find(|m| m.starts_with("Variable `") && m.contains("not found in context"))
        .and_then(|m| backticked_after(m, "Variable `"))
    {
        TemplateErrorKind::UndefinedVariable { name: var }
    } else if let Some(call) = subject {
        // Drop tera's "Filter call 'x' failed" wrapper when the inner message already names `x`.
        let ours = funcs::is_library_name(&call);
        let inner: Vec<String> = messages
            .iter()
            .filter(|m| {
                let wrapper = m.starts_with("Filter call '")
                    || m.starts_with("Function call '")
                    || m.starts_with("Test call '");
                !(wrapper && messages.len() > 1)
            })
            .map(|m| {
                if ours {
                    m.clone()
                } else {
                    hide_foreign_values(m, source)
                }
            })
            .collect();
        let mut message = inner.join(": ");
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
            message: with_reads(hide_env_values(&message, env), source, tags, offset),
        }
    } else {
        let message = messages
            .iter()
            .map(|m| hide_foreign_values(m, source))
            .collect::<Vec<_>>()
            .join(": ");
        TemplateErrorKind::Other {
            message: with_reads(hide_env_values(&message, env), source, tags, offset),
        }
    };
    TemplateError::at(name, source, offset, kind)
}

/// In a message from tera: every backticked part that is not text of the template itself (so: a
/// value computed while rendering) becomes [`HIDDEN`]. Names, literals and expressions stay.
fn hide_foreign_values(message: &str, source: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for (i, part) in message.split('`').enumerate() {
        if i > 0 {
            out.push('`');
        }
        let quoted = i % 2 == 1;
        if quoted && !part.is_empty() && !source.contains(part) {
            out.push_str(HIDDEN);
        } else {
            out.push_str(part);
        }
    }
    out
}

/// Shortest environment value that is hidden wherever it appears in a message; shorter ones are too
/// likely to be ordinary words or numbers of the message itself.
const HIDE_FROM_CHARS: usize = 4;

/// Every value of the environment (of [`HIDE_FROM_CHARS`] characters or more) in `message` becomes
/// [`HIDDEN`]; longest first, so a value that contains another is hidden whole.
pub(super) fn hide_env_values(message: &str, env: &BTreeMap<String, String>) -> String {
    let mut values: Vec<&str> = env
        .values()
        .map(String::as_str)
        .filter(|v| v.chars().count() >= HIDE_FROM_CHARS)
        .collect();
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    let mut out = message.to_string();
    for v in values {
        if out.contains(v) {
            out = out.replace(v, HIDDEN);
        }
    }
    out
}

/// Adds which data the failing tag reads, when the message does not already name it.
fn with_reads(message: String, source: &str, tags: &[Tag], offset: usize) -> String {
    let Some(tag) = tags.iter().find(|t| t.start == offset) else {
        return message;
    };
    let reads: Vec<String> = scan::reads(&scan::tokens(source, tag))
        .into_iter()
        .filter(|r| !message.contains(r.as_str()))
        .map(|r| format!("`{r}`"))
        .collect();
    if reads.is_empty() {
        message
    } else {
        format!("{message} (the tag reads {})", reads.join(", "))
    }
}

/// The source with `guard`'s macro counter after every `{% macro %}` tag and before every
/// `{% endmacro %}` tag (each with the whitespace control of the tag it sits next to, so the output
/// is unchanged), and with `markers`, a position marker before every tag that is evaluated. Tags that
/// must come first in a template (`extends`, `import`) or stand at its top level (`macro`) get no
/// marker; neither do tags inside raw blocks (they are not in `tags`).
fn instrument(source: &str, tags: &[Tag], markers: bool) -> String {
    let mut out = String::with_capacity(source.len() * 2);
    let mut last = 0;
    for tag in tags {
        if tag.kind == TagKind::Comment {
            continue;
        }
        let text = &source[tag.start..tag.end];
        let kw = if tag.kind == TagKind::Stmt {
            keyword(text)
        } else {
            ""
        };
        match kw {
            "macro" => {
                let name = scan::tokens(source, tag)
                    .get(1)
                    .map_or("?", |t| t.text)
                    .to_string();
                let trim = if text.ends_with("-%}") { "-" } else { "" };
                out.push_str(&source[last..tag.end]);
                out.push_str(&format!("{{{{ {}(m={name:?}) {trim}}}}}", guard::ENTER_FN));
                last = tag.end;
            }
            "endmacro" => {
                let trim = if text.starts_with("{%-") { "-" } else { "" };
                out.push_str(&source[last..tag.start]);
                out.push_str(&format!("{{{{{trim} {}() }}}}", guard::LEAVE_FN));
                last = tag.start;
            }
            "extends" | "import" | "endraw" => {}
            _ if markers => {
                out.push_str(&source[last..tag.start]);
                out.push_str(&format!("{{{{ {MARKER_FN}(p={}) }}}}", tag.start));
                last = tag.start;
            }
            _ => {}
        }
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
    fn environment_values_never_appear_in_errors() {
        let secret = "hunter2-Sup3rS3cret!";
        let env = BTreeMap::from([
            ("SECRET".to_string(), secret.to_string()),
            ("PIN".to_string(), "4821".to_string()),
        ]);
        for src in [
            "{{ Env.SECRET | atoi }}",
            "{{ Env.SECRET | b64dec }}",
            "{{ Env.SECRET | add(value=1) }}",
            "{{ Env.SECRET | date }}",
            "{{ Env.SECRET | upper | date }}",
            "{{ Env.SECRET | round }}",
            "{{ Env.SECRET | first }}",
            "{{ Env.SECRET | truncate(length=Env.SECRET) }}",
            "{{ Params.x | default(value=Env.SECRET) | nth(n=1) }}",
            "{{ Params[Env.SECRET] }}",
            "{{ Params.list[Env.PIN] }}",
            "{{ get_env(name=Env.SECRET) }}",
            "{{ throw(message=Env.SECRET) }}",
            "{{ Env.SECRET | required(msg='no ' ~ Env.SECRET) | atoi }}",
            "{{ dict(a=Env.SECRET) | quote }}",
            "{{ [Env.SECRET] | hasKey(key='a') }}",
            "{{ Env.PIN | int | first }}",
        ] {
            let e = match render("t.tpl", src, &env, &json!({"list": [1]})) {
                Ok(out) => panic!("{src}: rendered {out:?}"),
                Err(e) => e,
            };
            let text = e.to_string();
            assert!(!text.contains(secret), "{src}: {text}");
            assert!(!text.contains("Sup3r"), "{src}: {text}");
            assert!(!text.contains("4821"), "{src}: {text}");
            assert!(text.starts_with("t.tpl:1:1: "), "{src}: {text}");
            assert!(
                text.contains("Env.SECRET") || text.contains("Env.PIN"),
                "{src}: the variable is not named: {text}"
            );
        }
    }

    #[test]
    fn macro_counting_leaves_the_output_as_tera_renders_it() {
        for src in [
            "{% macro f(x) %}  [{{ x }}]  {% endmacro %}<{{ self::f(x=1) }}>",
            "{% macro f(x) -%}  [{{ x }}]  {%- endmacro %}<{{ self::f(x=1) }}>",
            "{%- macro f(x) -%}\n  a\n{%- endmacro -%}\n<{{ self::f(x=1) }}>",
            "{% macro f(x) -%}\n  {{ x }}\n{% endmacro -%} <{{ self::f(x=2) }}>",
            "{% macro f(n) %}{% if n > 0 %}{{ n }} {{ self::f(n=n-1) }}{% endif %}{% endmacro %}{{ self::f(n=5) }}",
            "{% macro f() %}{% endmacro %}[{{ self::f() }}]",
            "{% macro f() -%}{%- endmacro %}[{{ self::f() }}]",
        ] {
            let mut plain = tera::Tera::default();
            plain.add_raw_template("t", src).expect("parses");
            let want = plain.render("t", &tera::Context::new()).expect("renders");
            assert_eq!(
                render("t", src, &env(), &Value::Null),
                Ok(want),
                "{src}"
            );
        }
    }

    #[test]
    fn recursion_too_deep_names_the_macro_and_the_call() {
        let src = "{% macro down(n) %}\n{% if n > 0 %}{{ self::down(n=n-1) }}{% endif %}\n{% endmacro %}\n{{ self::down(n=1000) }}";
        let e = err(src);
        assert!(matches!(e.kind, TemplateErrorKind::Limit { .. }), "{e:?}");
        assert!(e.to_string().contains("macro `down`"), "{e}");
        assert_eq!((e.line, e.column), (Some(2), Some(15)), "{e}");
        let ok = "{% macro down(n) %}{% if n > 0 %}{{ self::down(n=n-1) }}{% endif %}{% endmacro %}{{ self::down(n=60) }}";
        assert!(render("t", ok, &env(), &Value::Null).is_ok());
    }

    #[test]
    fn limits_are_reported_by_render_and_parse_alike() {
        for src in [
            "{% if true %}".repeat(20_000),
            format!("{{{{ {}1 }}}}", "1 + ".repeat(100_000)),
            format!("x\n{{{{ {}1{} }}}}", "(".repeat(5_000), ")".repeat(5_000)),
            "a {% include \"t.tpl\" %}".to_string(),
            "{% macro f() %}{{ self::f() }}{% endmacro %}".to_string(),
        ] {
            let rendered = err(&src);
            let parsed = parse("t.tpl", &src).expect_err("parse refuses it too");
            assert_eq!(rendered, parsed);
            assert!(
                matches!(rendered.kind, TemplateErrorKind::Limit { .. }),
                "{rendered:?}"
            );
            assert!(rendered.line.is_some() && rendered.column.is_some());
        }
    }

    #[test]
    fn a_long_line_is_shown_around_the_syntax_error_only() {
        let src = format!(
            "{}{{{{ Params.foo | }}}}{}",
            "x".repeat(10_000),
            "y".repeat(10_000)
        );
        let e = err(&src);
        let TemplateErrorKind::Syntax { message } = &e.kind else {
            panic!("{e:?}");
        };
        assert!(message.len() < 400, "{message}");
        let lines: Vec<&str> = message.lines().collect();
        let caret = lines[2].find('^').expect("caret");
        assert_eq!(lines[1].chars().nth(caret), Some('}'), "{message}");
    }

    #[test]
    fn errors_tera_gives_no_position_still_get_one() {
        let e = err("a\n{% extends \"t.tpl\" %}");
        assert!(e.line.is_some() && e.column.is_some(), "{e}");
        let e = err("{% extends \"parent.tera\" %}");
        assert_eq!((e.line, e.column), (Some(1), Some(1)), "{e}");
        let e = err("\n{{ 99999999999999999999999 }}");
        assert_eq!(e.line, Some(2), "{e}");
    }

    #[test]
    fn oversized_output_is_an_error_with_a_position() {
        let e = err("{% for i in range(end=100) %}\n{{ 'x' | indent(width=1048000) }}{% endfor %}");
        assert!(e.to_string().contains("larger than 16 MiB"), "{e}");
        assert_eq!(e.line, Some(2), "{e}");
    }

    #[test]
    fn expressions_tera_cannot_evaluate_are_errors_not_panics() {
        for (src, line) in [
            ("{% if not Params.foo ~ \"a\" %}y{% endif %}", 1),
            ("x\n{{ true and not Params.foo ~ \"b\" }}", 2),
            ("{% macro m() %}\n{% if true %}{% elif not 0 ~ 0 %}{% endif %}{% endmacro %}", 2),
            ("{% macro m() %}1{% endmacro %}\n\n{{ 2 * (1 + self::m()) }}", 3),
            ("{% macro m() %}1{% endmacro %}{% for i in [1] %}\n{% if self::m() >= 1 %}{% endif %}{% endfor %}", 2),
        ] {
            let e = err(src);
            assert!(matches!(e.kind, TemplateErrorKind::Limit { .. }), "{src}: {e:?}");
            assert_eq!(e.line, Some(line), "{src}: {e}");
            assert_eq!(parse("t.tpl", src), Err(e));
        }
        // Where tera needs no boolean, it works, and so does a concatenation set first.
        let ok = |src: &str| render("t", src, &env(), &json!({"foo": "bar"}));
        assert_eq!(ok("{{ not Params.foo ~ \"b\" }}"), Ok("false".to_string()));
        assert_eq!(
            ok("{% set s = Params.foo ~ \"a\" %}{% if not s %}y{% else %}n{% endif %}"),
            Ok("n".to_string())
        );
    }

    #[test]
    fn mentions_matches_whole_paths_only() {
        assert!(mentions("{{ Params.foo }}", "Params.foo"));
        assert!(!mentions("{{ Params.foobar }}", "Params.foo"));
        assert!(!mentions("{{ X.Params.foo }}", "Params.foo"));
    }
}
