//! Rendering one Go `text/template` (mittnite's template language), and saying exactly where it went
//! wrong — without saying what the environment holds.
//!
//! Owns choosing the engine when a `file` block does not say ([`detect`]), the Go engine's setup
//! (gotmpl, sprig's functions from `gofuncs`, strict missing keys, gantry's limits), checks gotmpl
//! leaves to run time (unknown functions, unknown `{{template}}` names), and the translation of
//! gotmpl's errors into a [`TemplateError`] with the template's name, line and column. It knows
//! nothing about `file` blocks or the filesystem; `template` does the same for tera.
//!
//! # Data
//!
//! The template's dot is a map with `Env` (the environment, strings) and `Params` (the block's
//! `params`; an empty map when there are none), as in mittnite. A key that is not in a map is an
//! error naming it (`.Params.foo`), never a silent `<no value>` — except where the template says it
//! may be missing: the value tested by `default`, `empty`, `required` and `coalesce`, and a bare
//! field as the whole condition of `if`/`with` (or the argument of `not`, `and`, `or` there). Those
//! fields are read through `gofuncs::OPTIONAL_FN`, which gives nil for a missing key, so
//! `{{ .Params.foo | default "x" }}` and `{{ if .Params.debug }}` work as in mittnite.
//!
//! # Finding the line
//!
//! gotmpl reports syntax errors with a line and column, but run-time errors without any. So when a
//! render fails, the parsed tree is run a second time with a marker call before every action, `if`,
//! `range`, `with` and `{{template}}`: the last marker passed is the action that failed. Within it,
//! the first field that holds the missing key, or the first call of the failing function, is the
//! position reported. The second run only happens on failure.
//!
//! # Limits
//!
//! Everything runs on `guard`'s render thread and writes into `guard::Output` (bounded). gotmpl
//! bounds its own recursion (parse depth 100, `{{template}}`/block depth 200), and `range` may run at
//! most [`MAX_RANGE_ITERATIONS`] iterations in one render.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use gotmpl::parse::{
    ActionNode, CommandNode, DefineNode, Expr, ListNode, Node, Number, Parser, PipeNode, Pos,
};
use gotmpl::{MissingKey, Template, TemplateError as GoError, Value as GoValue};
use serde_json::Value;

use super::gofuncs::{self, OPTIONAL_FN};
use super::guard;
use super::template::{engine_failure, hide_env_values, snippet, TemplateError, TemplateErrorKind};
use crate::config::file_block::Engine;

/// The most `range` iterations one render may run, over all loops.
pub const MAX_RANGE_ITERATIONS: u64 = 1_000_000;

const MARKER_FN: &str = "__gantry_at";

/// The engine for a template whose `file` block has no `engine`: Go when its first action
/// (`{{ ... }}`) starts as only Go's do — with `.` or `$` (`{{ .Params.x }}`, `{{- $x := ... }}`), a
/// Go comment (`{{/*`), or a Go keyword (`{{ if`, `{{ range`, `{{ with`, `{{ define`,
/// `{{ template`, `{{ block`, `{{ end }}`) — and no tera tag (`{%`, `{#`) comes before it; tera
/// otherwise. None of these is valid tera, so a template tera can parse is never taken for Go.
pub fn detect(source: &str) -> Engine {
    let Some(open) = source.find("{{") else {
        return Engine::Tera;
    };
    let before = &source[..open];
    if before.contains("{%") || before.contains("{#") {
        return Engine::Tera;
    }
    let inner = source[open + 2..]
        .strip_prefix('-')
        .unwrap_or(&source[open + 2..]);
    let inner = inner.trim_start();
    if inner.starts_with('.') || inner.starts_with('$') || inner.starts_with("/*") {
        return Engine::Go;
    }
    let word: String = inner
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    let after = &inner[word.len()..];
    let keyword = matches!(
        word.as_str(),
        "if" | "range" | "with" | "define" | "template" | "block" | "end" | "else"
    );
    let separated = after.starts_with(char::is_whitespace)
        || after.starts_with("}}")
        || after.starts_with("-}}");
    if keyword && separated {
        Engine::Go
    } else {
        Engine::Tera
    }
}

/// Renders `source` (named `name` in errors) with `Env` and `Params` as its data.
pub fn render(
    name: &str,
    source: &str,
    env: &BTreeMap<String, String>,
    params: &Value,
) -> Result<String, TemplateError> {
    guard::on_render_stack(|| render_here(name, source, env, params))
        .unwrap_or_else(|why| Err(engine_failure(name, why)))
}

/// Parses `source` without rendering it: syntax errors, unknown functions and `{{template}}` calls
/// of templates it does not define.
pub fn parse(name: &str, source: &str) -> Result<(), TemplateError> {
    guard::on_render_stack(|| parsed(name, source).map(|_| ()))
        .unwrap_or_else(|why| Err(engine_failure(name, why)))
}

/// The parsed template: its body and its `{{define}}`s.
struct Trees {
    body: ListNode,
    defines: Vec<DefineNode>,
}

fn parsed(name: &str, source: &str) -> Result<Trees, TemplateError> {
    check_blocks(source).map_err(|(offset, message)| {
        TemplateError::at(name, source, offset, TemplateErrorKind::Syntax { message })
    })?;
    let (body, defines) = Parser::with_name(Some(name), source, "{{", "}}")
        .and_then(Parser::parse)
        .map_err(|e| syntax_error(name, source, e))?;
    let trees = Trees { body, defines };
    check(name, source, &trees)?;
    Ok(trees)
}

/// The first word of every action (`{{ if .x }}` → `if`) and the action's offset, in order. Comments
/// and the text of quoted strings are skipped.
fn action_words(source: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut rest = 0;
    while let Some(found) = source[rest..].find("{{") {
        let start = rest + found;
        let mut inner = &source[start + 2..];
        if let Some(trimmed) = inner.strip_prefix('-') {
            inner = trimmed;
        }
        let inner = inner.trim_start();
        let Some(close) = action_end(source, start + 2) else {
            break;
        };
        if !inner.starts_with("/*") {
            let word_len = inner
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(inner.len());
            out.push((start, &inner[..word_len]));
        }
        rest = close;
    }
    out
}

/// The offset just past the `}}` closing the action whose text starts at `from`, skipping quoted
/// strings, raw strings and comments.
fn action_end(source: &str, from: usize) -> Option<usize> {
    let bytes = source.as_bytes();
    let mut i = from;
    while i + 1 < bytes.len() {
        match bytes[i] {
            b'"' | b'\'' | b'`' => {
                let quote = bytes[i];
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    if bytes[i] == b'\\' && quote != b'`' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'/' if bytes[i + 1] == b'*' => {
                i = source[i + 2..].find("*/").map(|e| i + 2 + e + 2)?;
            }
            b'}' if bytes[i + 1] == b'}' => return Some(i + 2),
            _ => i += 1,
        }
    }
    None
}

/// Every `if`, `range`, `with`, `define` and `block` closed by an `end`, and no `end` too many
/// (gotmpl accepts an unclosed block at the end of the template; Go does not).
fn check_blocks(source: &str) -> Result<(), (usize, String)> {
    let mut open: Vec<(usize, &str)> = Vec::new();
    for (offset, word) in action_words(source) {
        match word {
            "if" | "range" | "with" | "define" | "block" => open.push((offset, word)),
            "end" if open.pop().is_none() => {
                return Err((
                    offset,
                    "{{end}} without an {{if}}, {{range}}, {{with}}, {{define}} or {{block}} to close"
                        .to_string(),
                ));
            }
            _ => {}
        }
    }
    match open.pop() {
        Some((offset, word)) => Err((offset, format!("this {{{{{word}}}}} has no {{{{end}}}}"))),
        None => Ok(()),
    }
}

fn syntax_error(name: &str, source: &str, e: GoError) -> TemplateError {
    match e {
        GoError::Parse {
            line, col, message, ..
        }
        | GoError::Lex {
            line, col, message, ..
        } => {
            let (shown, caret) = snippet(
                source.lines().nth(line.saturating_sub(1)).unwrap_or(""),
                col,
            );
            TemplateError {
                template: name.to_string(),
                line: Some(line),
                column: Some(col),
                kind: TemplateErrorKind::Syntax {
                    message: format!("{message}\n    {shown}\n    {}^", " ".repeat(caret)),
                },
            }
        }
        other => TemplateError::at(
            name,
            source,
            0,
            TemplateErrorKind::Syntax {
                message: other.to_string(),
            },
        ),
    }
}

/// What Go's parser refuses and gotmpl only finds at run time: a function that does not exist, a
/// `{{template "x"}}` of a template that is not defined (each `file` block's template stands alone).
fn check(name: &str, source: &str, trees: &Trees) -> Result<(), TemplateError> {
    let known = gofuncs::names();
    let defined: BTreeSet<&str> = trees.defines.iter().map(|d| d.name.as_str()).collect();
    let mut found = Vec::new();
    let mut visit = |item: Item<'_>| {
        match item {
        Item::Call(pos, f) if !known.contains(&f) => found.push((
            pos.offset,
            TemplateErrorKind::Call {
                name: f.to_string(),
                message: format!("function `{f}` is not defined{}", unknown_hint(f, &known)),
            },
        )),
        Item::Template(pos, t) if !defined.contains(t) && t != name => found.push((
            pos.offset,
            TemplateErrorKind::Syntax {
                message: format!(
                    "no template named \"{t}\" is defined in this file (each file block's template stands alone)"
                ),
            },
        )),
        _ => {}
    }
    };
    walk_list(&trees.body, &mut visit);
    for d in &trees.defines {
        walk_list(&d.body, &mut visit);
    }
    match found.into_iter().min_by_key(|(offset, _)| *offset) {
        Some((offset, kind)) => Err(TemplateError::at(name, source, offset, kind)),
        None => Ok(()),
    }
}

fn unknown_hint(f: &str, known: &[&str]) -> String {
    match crate::config::node::suggest(f, known) {
        Some(hint) => {
            format!(" ({hint}; the functions of Go templates are listed in docs/templates.md)")
        }
        None => " (the functions of Go templates are listed in docs/templates.md)".to_string(),
    }
}

/// Something in a template that a check or a locator looks at.
enum Item<'a> {
    /// A call of a function.
    Call(Pos, &'a str),
    /// A field chain read from dot (`.A.B`) or a variable (`$x.A.B`, `name` is `$x`).
    Field(Pos, &'a str, &'a [gotmpl::parse::SmolStr]),
    /// `{{template "name"}}`.
    Template(Pos, &'a str),
}

fn walk_list<'a>(list: &'a ListNode, visit: &mut impl FnMut(Item<'a>)) {
    for node in &list.nodes {
        match node {
            Node::List(l) => walk_list(l, visit),
            Node::Action(a) => walk_pipe(&a.pipe, visit),
            Node::If(b) | Node::Range(b) | Node::With(b) => {
                walk_pipe(&b.pipe, visit);
                walk_list(&b.body, visit);
                if let Some(e) = &b.else_body {
                    walk_list(e, visit);
                }
            }
            Node::Template(t) => {
                visit(Item::Template(t.pos, t.name.as_str()));
                if let Some(p) = &t.pipe {
                    walk_pipe(p, visit);
                }
            }
            Node::Define(d) => walk_list(&d.body, visit),
            Node::Text(_) | Node::Break(_) | Node::Continue(_) => {}
        }
    }
}

fn walk_pipe<'a>(pipe: &'a PipeNode, visit: &mut impl FnMut(Item<'a>)) {
    for cmd in &pipe.commands {
        for (i, arg) in cmd.args.iter().enumerate() {
            match arg {
                Expr::Identifier(pos, f) if i == 0 => visit(Item::Call(*pos, f.as_str())),
                other => walk_expr(other, visit),
            }
        }
    }
}

fn walk_expr<'a>(expr: &'a Expr, visit: &mut impl FnMut(Item<'a>)) {
    match expr {
        Expr::Field(pos, chain) => visit(Item::Field(*pos, "", chain)),
        Expr::Variable(pos, var, chain) => visit(Item::Field(*pos, var.as_str(), chain)),
        Expr::Identifier(pos, f) => visit(Item::Call(*pos, f.as_str())),
        Expr::Pipe(_, p) => walk_pipe(p, visit),
        Expr::Chain(_, inner, _) => walk_expr(inner, visit),
        _ => {}
    }
}

// ---- missing keys the template allows ---------------------------------------------------------

/// The functions whose tested value may be a missing key, and which of their arguments that is.
fn tolerant_args(f: &str, args: usize) -> std::ops::Range<usize> {
    match f {
        // `default D V`, `required MSG V`, `empty V`: the last argument (after the name).
        "default" | "required" | "empty" if args > 1 => args - 1..args,
        "coalesce" | "not" | "and" | "or" => 1..args,
        _ => 0..0,
    }
}

fn optional_expr(expr: &Expr) -> Option<Expr> {
    let (pos, base, chain) = match expr {
        Expr::Field(pos, chain) => (*pos, Expr::Dot(*pos), chain),
        Expr::Variable(pos, var, chain) if !chain.is_empty() => {
            (*pos, Expr::Variable(*pos, var.clone(), Vec::new()), chain)
        }
        _ => return None,
    };
    let mut args = vec![Expr::Identifier(pos, OPTIONAL_FN.into()), base];
    args.extend(
        chain
            .iter()
            .map(|k| Expr::String(pos, Arc::from(k.as_str()))),
    );
    Some(Expr::Pipe(
        pos,
        PipeNode {
            pos,
            decl: Vec::new(),
            commands: vec![CommandNode { pos, args }],
            is_assign: false,
        },
    ))
}

fn make_optional(expr: &mut Expr) {
    if let Some(new) = optional_expr(expr) {
        *expr = new;
    }
}

/// Rewrites the fields that may be missing (see the module docs) in `pipe`; `condition` for the
/// pipeline of an `if` or `with`.
fn tolerate_pipe(pipe: &mut PipeNode, condition: bool) {
    let n = pipe.commands.len();
    for i in 0..n {
        let next_tolerant = pipe
            .commands
            .get(i + 1)
            .and_then(|c| match c.args.first() {
                Some(Expr::Identifier(_, f)) => Some(matches!(
                    f.as_str(),
                    "default" | "required" | "empty" | "coalesce"
                )),
                _ => None,
            })
            .unwrap_or(false);
        let cmd = &mut pipe.commands[i];
        let call = match cmd.args.first() {
            Some(Expr::Identifier(_, f)) => Some(f.to_string()),
            _ => None,
        };
        match call {
            Some(f) => {
                let range = tolerant_args(&f, cmd.args.len());
                let in_condition =
                    condition && n == 1 && matches!(f.as_str(), "not" | "and" | "or");
                let own = matches!(f.as_str(), "default" | "required" | "empty" | "coalesce");
                for (j, arg) in cmd.args.iter_mut().enumerate() {
                    if range.contains(&j) && (own || in_condition) {
                        make_optional(arg);
                    } else {
                        tolerate_expr(arg);
                    }
                }
            }
            None => {
                let bare = cmd.args.len() == 1;
                for arg in cmd.args.iter_mut() {
                    if bare && (next_tolerant || (condition && n == 1)) {
                        make_optional(arg);
                    } else {
                        tolerate_expr(arg);
                    }
                }
            }
        }
    }
}

fn tolerate_expr(expr: &mut Expr) {
    match expr {
        Expr::Pipe(_, p) => tolerate_pipe(p, false),
        Expr::Chain(_, inner, _) => tolerate_expr(inner),
        _ => {}
    }
}

fn tolerate_list(list: &mut ListNode) {
    for node in &mut list.nodes {
        match node {
            Node::List(l) => tolerate_list(l),
            Node::Action(a) => tolerate_pipe(&mut a.pipe, false),
            Node::If(b) | Node::With(b) => {
                let condition = b.pipe.decl.is_empty();
                tolerate_pipe(&mut b.pipe, condition);
                tolerate_list(&mut b.body);
                if let Some(e) = &mut b.else_body {
                    tolerate_list(e);
                }
            }
            Node::Range(b) => {
                tolerate_pipe(&mut b.pipe, false);
                tolerate_list(&mut b.body);
                if let Some(e) = &mut b.else_body {
                    tolerate_list(e);
                }
            }
            Node::Template(t) => {
                if let Some(p) = &mut t.pipe {
                    tolerate_pipe(p, false);
                }
            }
            Node::Define(d) => tolerate_list(&mut d.body),
            Node::Text(_) | Node::Break(_) | Node::Continue(_) => {}
        }
    }
}

// ---- position markers -------------------------------------------------------------------------

fn marker(pos: Pos) -> Node {
    let offset = i64::try_from(pos.offset).unwrap_or(i64::MAX);
    Node::Action(ActionNode {
        pos,
        pipe: PipeNode {
            pos,
            decl: Vec::new(),
            commands: vec![CommandNode {
                pos,
                args: vec![
                    Expr::Identifier(pos, MARKER_FN.into()),
                    Expr::Number(pos, Number::Int(offset)),
                ],
            }],
            is_assign: false,
        },
    })
}

fn node_pos(node: &Node) -> Option<Pos> {
    match node {
        Node::Action(a) => Some(a.pos),
        Node::If(b) | Node::Range(b) | Node::With(b) => Some(b.pos),
        Node::Template(t) => Some(t.pos),
        _ => None,
    }
}

/// `list` with a marker before every node that evaluates something.
fn with_markers(list: &ListNode) -> ListNode {
    let mut nodes = Vec::with_capacity(list.nodes.len() * 2);
    for node in &list.nodes {
        if let Some(pos) = node_pos(node) {
            nodes.push(marker(pos));
        }
        nodes.push(match node {
            Node::List(l) => Node::List(with_markers(l)),
            Node::If(b) | Node::Range(b) | Node::With(b) => {
                let mut b = b.clone();
                b.body = with_markers(&b.body);
                b.else_body = b.else_body.as_ref().map(with_markers);
                match node {
                    Node::If(_) => Node::If(b),
                    Node::Range(_) => Node::Range(b),
                    _ => Node::With(b),
                }
            }
            other => other.clone(),
        });
    }
    ListNode {
        pos: list.pos,
        nodes,
    }
}

// ---- rendering --------------------------------------------------------------------------------

fn data(env: &BTreeMap<String, String>, params: &Value) -> GoValue {
    let env: BTreeMap<Arc<str>, GoValue> = env
        .iter()
        .map(|(k, v)| {
            (
                Arc::from(k.as_str()),
                GoValue::String(Arc::from(v.as_str())),
            )
        })
        .collect();
    let params = match params {
        Value::Null => GoValue::Map(Arc::new(BTreeMap::new())),
        other => gofuncs::to_go(other),
    };
    GoValue::Map(Arc::new(BTreeMap::from([
        (Arc::from("Env"), GoValue::Map(Arc::new(env))),
        (Arc::from("Params"), params),
    ])))
}

/// A template ready to run: `trees` (rewritten for the missing keys it allows), with the library
/// and, when `at` is given, the position markers recording into it.
fn build(name: &str, trees: &Trees, at: Option<Arc<AtomicUsize>>) -> Template {
    let markers = at.is_some();
    let mark = |l: &ListNode| if markers { with_markers(l) } else { l.clone() };
    let mut t = Template::new(name)
        .funcs(gofuncs::func_map())
        .missing_key(MissingKey::Error)
        .max_range_iters(MAX_RANGE_ITERATIONS);
    if let Some(at) = at {
        t = t.func(MARKER_FN, move |args: &[GoValue]| {
            if let Some(GoValue::Int(offset)) = args.first() {
                at.store(usize::try_from(*offset).unwrap_or(0), Ordering::SeqCst);
            }
            Ok(GoValue::String(Arc::from("")))
        });
    }
    let mut body = mark(&trees.body);
    tolerate_list(&mut body);
    t = t.add_parse_tree(name, body);
    for d in &trees.defines {
        let mut b = mark(&d.body);
        tolerate_list(&mut b);
        t = t.add_parse_tree(d.name.as_str(), b);
    }
    t
}

fn render_here(
    name: &str,
    source: &str,
    env: &BTreeMap<String, String>,
    params: &Value,
) -> Result<String, TemplateError> {
    let trees = parsed(name, source)?;
    let data = data(env, params);
    let mut out = guard::Output::default();
    match build(name, &trees, None).execute_template(&mut out, name, &data) {
        Ok(()) => String::from_utf8(out.bytes)
            .map_err(|_| engine_failure(name, "the output is not UTF-8 text".to_string())),
        Err(e) => {
            let over = out.over;
            // Again, with markers, to find the action that failed.
            let at = Arc::new(AtomicUsize::new(usize::MAX));
            let mut sink = guard::Output::default();
            let _ =
                build(name, &trees, Some(Arc::clone(&at))).execute_template(&mut sink, name, &data);
            let marker = match at.load(Ordering::SeqCst) {
                usize::MAX => 0,
                offset => offset,
            };
            Err(classify(name, source, &trees, env, marker, &e, over))
        }
    }
}

/// The first item at or after `from` that `wanted` accepts, and its offset.
fn first_after<'a, T>(
    trees: &'a Trees,
    from: usize,
    mut wanted: impl FnMut(&Item<'a>) -> Option<T>,
) -> Option<(usize, T)> {
    let mut best: Option<(usize, T)> = None;
    let mut visit = |item: Item<'a>| {
        let offset = match &item {
            Item::Call(p, _) | Item::Field(p, _, _) | Item::Template(p, _) => p.offset,
        };
        if offset >= from && best.as_ref().is_none_or(|(b, _)| offset < *b) {
            if let Some(v) = wanted(&item) {
                best = Some((offset, v));
            }
        }
    };
    walk_list(&trees.body, &mut visit);
    for d in &trees.defines {
        walk_list(&d.body, &mut visit);
    }
    best
}

fn classify(
    name: &str,
    source: &str,
    trees: &Trees,
    env: &BTreeMap<String, String>,
    marker: usize,
    e: &GoError,
    over: bool,
) -> TemplateError {
    let at = |offset: usize, kind| TemplateError::at(name, source, offset, kind);
    if over {
        return at(
            marker,
            TemplateErrorKind::Limit {
                message: guard::output_limit_message(),
            },
        );
    }
    match e {
        GoError::MissingKey { key } => {
            let found = first_after(trees, marker, |item| match item {
                Item::Field(_, var, chain) => chain.iter().position(|k| k.as_str() == key.as_str()).map(|i| {
                    let path: Vec<&str> = chain[..=i].iter().map(|k| k.as_str()).collect();
                    format!("{var}.{}", path.join("."))
                }),
                _ => None,
            });
            let (offset, name) = found.unwrap_or((marker, format!(".{key}")));
            at(offset, TemplateErrorKind::UndefinedVariable { name })
        }
        GoError::RecursionLimit => at(
            marker,
            TemplateErrorKind::Limit {
                message: "templates call each other more than 200 deep (a {{template}} that calls itself?)"
                    .to_string(),
            },
        ),
        GoError::RangeIterLimit => at(
            marker,
            TemplateErrorKind::Limit {
                message: format!(
                    "`range` ran more than {MAX_RANGE_ITERATIONS} times in one render, the most gantry allows"
                ),
            },
        ),
        other => {
            let message = hide_env_values(&describe(other), env);
            // Messages of gantry's library start with the function's name in backticks.
            let function = message
                .strip_prefix('`')
                .and_then(|m| m.split_once('`'))
                .map(|(f, _)| f.to_string())
                .filter(|f| gofuncs::is_library_name(f));
            let offset = function
                .as_deref()
                .and_then(|f| {
                    first_after(trees, marker, |item| match item {
                        Item::Call(_, c) if *c == f => Some(()),
                        _ => None,
                    })
                })
                .map_or(marker, |(o, _)| o);
            let kind = match function {
                Some(f) => TemplateErrorKind::Call { name: f, message },
                None => TemplateErrorKind::Other { message },
            };
            at(offset, kind)
        }
    }
}

/// gotmpl's message, without its `execution error: ` prefix, and without the value the few
/// messages of gotmpl's own builtins that quote one hold.
fn describe(e: &GoError) -> String {
    let message = match e {
        GoError::Exec(m) => m.clone(),
        other => other.to_string(),
    };
    const QUOTING: &[(&str, &str)] = &[
        ("len: cannot take length of ", ""),
        ("printf: first arg must be string, got ", ""),
        ("can't use ", " to iterate over more than one variable"),
    ];
    for (before, after) in QUOTING {
        if message.starts_with(before) && message.ends_with(after) {
            return format!("{before}{HIDDEN_VALUE}{after}");
        }
    }
    message
}

/// What replaces a value in an error message (as in `template`).
const HIDDEN_VALUE: &str = "[hidden]";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("USER".to_string(), "alice".to_string()),
            ("DB_PASSWORD".to_string(), "s3cr3t-pw".to_string()),
        ])
    }

    fn r(src: &str, params: Value) -> Result<String, TemplateError> {
        render("t.tpl", src, &env(), &params)
    }

    fn ok(src: &str) -> String {
        match r(
            src,
            json!({"foo": "bar", "n": 3, "db": {"host": "h", "port": 5432}, "list": ["b", "a"]}),
        ) {
            Ok(s) => s,
            Err(e) => panic!("{src}: {e}"),
        }
    }

    fn err(src: &str) -> String {
        match r(src, json!({"foo": "bar", "n": 12345, "db": {"host": "h"}})) {
            Ok(out) => panic!("{src}: expected an error, rendered {out:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn mittnites_readme_template_renders() {
        let out = ok("some.param = {{ .Params.foo | default \"bac\" }}\nsome.env = {{ .Env.USER | upper }}\nsecret = {{ randAlphaNum 16 }}\n");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "some.param = bar");
        assert_eq!(lines[1], "some.env = ALICE");
        let secret = lines[2].strip_prefix("secret = ").expect("secret line");
        assert_eq!(secret.len(), 16);
        assert!(
            secret.chars().all(|c| c.is_ascii_alphanumeric()),
            "{secret}"
        );
    }

    #[test]
    fn go_semantics_for_data_and_control_flow() {
        assert_eq!(
            ok("{{ range $i, $v := .Params.list }}{{ $i }}={{ $v }} {{ end }}"),
            "0=b 1=a "
        );
        assert_eq!(
            ok("{{ with .Params.db }}{{ .host }}:{{ .port }}{{ end }}"),
            "h:5432"
        );
        assert_eq!(
            ok("{{ if eq .Params.n 3 }}three{{ else }}other{{ end }}"),
            "three"
        );
        assert_eq!(ok("{{ printf \"%s-%d\" .Params.foo .Params.n }}"), "bar-3");
        assert_eq!(ok("{{ len .Params.list }}"), "2");
        // mittnite's HCL v1 list-of-maps: `index MAP 0` is the map.
        assert_eq!(ok("{{ (index .Params.db 0).host }}"), "h");
        assert_eq!(ok("{{- /* a comment */ -}} x"), "x");
    }

    #[test]
    fn sprig_functions_take_sprigs_argument_order() {
        assert_eq!(ok("{{ .Params.foo | trimPrefix \"b\" }}"), "ar");
        assert_eq!(ok("{{ trimSuffix \"r\" .Params.foo }}"), "ba");
        assert_eq!(ok("{{ .Params.foo | quote }}"), "\"bar\"");
        assert_eq!(ok("{{ \"a\\nb\" | indent 2 }}"), "  a\n  b");
        assert_eq!(ok("{{ \"a\" | nindent 2 }}"), "\n  a");
        assert_eq!(ok("{{ .Params.foo | replace \"a\" \"o\" }}"), "bor");
        assert_eq!(ok("{{ .Params.list | join \",\" }}"), "b,a");
        assert_eq!(ok("{{ .Params.list | sortAlpha | join \",\" }}"), "a,b");
        assert_eq!(ok("{{ if hasKey .Params \"foo\" }}y{{ end }}"), "y");
        assert_eq!(ok("{{ if .Params.foo | hasPrefix \"b\" }}y{{ end }}"), "y");
        assert_eq!(ok("{{ ternary \"on\" \"off\" true }}"), "on");
        assert_eq!(ok("{{ \"x\" | b64enc }}"), "eA==");
        assert_eq!(ok("{{ add 1 2 3 }}"), "6");
        assert_eq!(ok("{{ max 1 7 3 }}"), "7");
        assert_eq!(ok("{{ list 1 2 | toJson }}"), "[1,2]");
        assert_eq!(ok("{{ (dict \"a\" 1).a }}"), "1");
        assert_eq!(ok("{{ coalesce \"\" .Params.missing \"z\" }}"), "z");
        assert_eq!(ok("{{ \"a,b\" | splitList \",\" | join \"-\" }}"), "a-b");
        assert_eq!(ok("{{ .Params.n | toString | quote }}"), "\"3\"");
        assert_eq!(
            ok("{{ \"Hello World\" | lower }} {{ \"x y\" | title }}"),
            "hello world X Y"
        );
        assert_eq!(ok("{{ uuidv4 | len }}"), "36");
    }

    #[test]
    fn missing_keys_fail_by_name_except_where_allowed() {
        let e = err("a\n  {{ .Params.missing }}");
        assert!(
            e.starts_with("t.tpl:2:6: map has no entry for `.Params.missing`"),
            "{e}"
        );
        let e = err("{{ .Env.NOPE | upper }}");
        assert!(
            e.starts_with("t.tpl:1:4: map has no entry for `.Env.NOPE`"),
            "{e}"
        );
        let e = err("{{ $p := .Params }}{{ $p.db.nope }}");
        assert!(
            e.contains(":1:23: map has no entry for `$p.db.nope`"),
            "{e}"
        );
        // Allowed to be missing: what `default` tests, and a bare `if`/`with` condition.
        assert_eq!(ok("{{ .Params.missing | default \"d\" }}"), "d");
        assert_eq!(ok("{{ default \"d\" .Params.a.b }}"), "d");
        assert_eq!(ok("{{ if .Params.missing }}y{{ else }}n{{ end }}"), "n");
        assert_eq!(ok("{{ if not .Params.missing }}n{{ end }}"), "n");
        assert_eq!(ok("{{ with .Params.missing }}y{{ else }}n{{ end }}"), "n");
        assert_eq!(ok("{{ if .Params.foo }}{{ .Params.foo }}{{ end }}"), "bar");
        // But not a comparison, which would compare nothing.
        let e = err("\n{{ if eq .Params.missing \"x\" }}{{ end }}");
        assert!(
            e.starts_with("t.tpl:2:10: map has no entry for `.Params.missing`"),
            "{e}"
        );
    }

    #[test]
    fn syntax_errors_have_their_position() {
        let e = parse("t.tpl", "ok\n{{ .Params.foo | }}").expect_err("invalid");
        assert_eq!(e.line, Some(2), "{e}");
        assert!(e.to_string().starts_with("t.tpl:2:"), "{e}");
        assert!(matches!(e.kind, TemplateErrorKind::Syntax { .. }), "{e}");
        let e = parse("t.tpl", "a\n {{- if .X }}\nno end").expect_err("invalid");
        assert!(
            e.to_string()
                .starts_with("t.tpl:2:2: syntax error: this {{if}} has no {{end}}"),
            "{e}"
        );
        let e = parse("t.tpl", "{{ range .X }}{{ end }}\n{{ end }}").expect_err("invalid");
        assert!(
            e.to_string()
                .starts_with("t.tpl:2:1: syntax error: {{end}} without"),
            "{e}"
        );
        parse(
            "t.tpl",
            "{{ if eq .X \"{{ end }}\" }}{{/* {{ end }} */}}{{ end }}",
        )
        .expect("valid");
    }

    #[test]
    fn unknown_functions_and_templates_fail_the_check() {
        let e = parse("t.tpl", "x\n  {{ .Params.a | uper }}").expect_err("unknown");
        let text = e.to_string();
        assert!(
            text.starts_with("t.tpl:2:18: function `uper` is not defined"),
            "{text}"
        );
        assert!(text.contains("upper"), "{text}");
        let e = parse("t.tpl", "{{ template \"nope\" }}").expect_err("unknown");
        assert!(e.to_string().contains("no template named \"nope\""), "{e}");
        parse("t.tpl", "{{ define \"x\" }}X{{ end }}{{ template \"x\" }}").expect("defined");
    }

    #[test]
    fn function_errors_point_at_the_call_and_hide_values() {
        let src = "line one\n{{ .Env.DB_PASSWORD | b64dec }}";
        let e = render("t.tpl", src, &env(), &Value::Null).expect_err("not base64");
        let text = e.to_string();
        assert!(
            text.starts_with("t.tpl:2:23: `b64dec`: not valid base64"),
            "{text}"
        );
        assert!(!text.contains("s3cr3t"), "{text}");
        let e = err("{{ required \"db.port is needed\" .Params.db.port }}");
        assert!(e.contains("db.port is needed"), "{e}");
    }

    #[test]
    fn values_quoted_by_gotmpls_builtins_are_hidden() {
        let e = err("{{ len .Params.n }}");
        assert!(
            e.contains("len: cannot take length of [hidden]") && !e.contains("12345"),
            "{e}"
        );
        let e = err("{{ printf .Params.n }}");
        assert!(e.contains("got [hidden]") && !e.contains("12345"), "{e}");
    }

    #[test]
    fn limits_hold() {
        let e = err("{{ range $i, $_ := .Params.db }}{{ end }}{{ define \"r\" }}{{ template \"r\" }}{{ end }}{{ template \"r\" }}");
        assert!(e.contains("200 deep"), "{e}");
        let big = format!(
            "{{{{ range $i, $_ := {} }}}}{} {{{{ end }}}}",
            "(list 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17)",
            "x".repeat(1 << 20)
        );
        let e = err(&big);
        assert!(e.contains("larger than"), "{e}");
    }

    #[test]
    fn detection_makes_mittnite_templates_go_and_tera_templates_tera() {
        for go in [
            "some.param = {{ .Params.foo | default \"bac\" }}",
            "{{- .Env.USER }}",
            "{{ $x := 1 }}",
            "{{/* c */}}",
            "{{ if .A }}{{ end }}",
            "{{ range .A }}{{ end }}",
            "text\n{{ define \"x\" }}{{ end }}",
        ] {
            assert_eq!(detect(go), Engine::Go, "{go}");
        }
        for tera in [
            "port={{ Params.port }}",
            "{{ Env.USER | upper }}",
            "{% if Params.x %}{{ .5 }}{% endif %}",
            "{# c #}{{ .Params }}",
            "no tags at all",
            "{{ randAlphaNum(length=32) }}",
            "{{ ifx }}",
        ] {
            assert_eq!(detect(tera), Engine::Tera, "{tera}");
        }
    }
}
