//! What a template may do before it can hurt gantry: the limits that keep tera inside its stack and
//! gantry's memory, and the checks for templates that can never finish.
//!
//! Owns the limits (nesting, expression size, macro depth, output size), the checks that enforce
//! them, the thread templates are parsed and rendered on, and the runtime macro-depth counter. It
//! does not parse templates (tera does) and does not format errors (`template` turns a [`Violation`]
//! into a `TemplateError` with its line and column).
//!
//! # Why
//!
//! Tera parses and renders by recursion, one Rust stack frame (or several) per nested block, operator
//! and macro call, and a stack overflow is not an error but an abort: gantry, PID 1, would die of
//! SIGABRT. So three things happen, in this order:
//!
//! 1. [`check_limits`], before tera sees the template: a linear scan of its tags refuses blocks
//!    nested more than [`MAX_NESTING`] deep, brackets nested more than [`MAX_BRACKETS`] deep and
//!    tags with more than [`MAX_OPERATORS`] operators. These bound every recursion of tera's parser
//!    and of its renderer outside macros.
//! 2. [`check_structure`] and [`check_evaluable`], once tera has parsed it: a template that
//!    includes or imports itself, an `include` of a template that cannot exist (each `file` block's
//!    template is rendered on its own), macros that call themselves unconditionally (directly or
//!    through others), and the few expressions tera 1 panics on instead of failing (`not a ~ b` in
//!    a condition, a macro call as an operand of `+`) are refused. None of these can work, whatever
//!    the data, so `gantry check` says so too.
//! 3. While rendering, every macro call passes [`ENTER_FN`] (inserted by `template` after each
//!    `{% macro %}` tag), which refuses calls nested more than [`MAX_MACRO_DEPTH`] deep, and also
//!    refuses a call when the render thread's stack is nearly used up. Recursion that depends on the
//!    data can only be caught here, so `gantry check` cannot see it.
//!
//! Everything runs on a thread of its own with a [`RENDER_STACK`] stack ([`on_render_stack`]), so the
//! limits hold whatever stack the main thread got (`ulimit -s`, musl's small default).
//!
//! Output is bounded too: a rendered file may not exceed [`MAX_OUTPUT`] (see [`Output`]); the library
//! in `funcs` bounds what one call may produce.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::Value;

use super::scan::{keyword, tokens, Tag, TagKind, Token, TokenKind};

/// Blocks (`if`, `for`, `macro`, `block`, `filter`) inside each other.
pub const MAX_NESTING: usize = 64;
/// Brackets (`(`, `[`) inside each other within one tag.
pub const MAX_BRACKETS: usize = 32;
/// Operators (`+`, `==`, `and`, ...) in one tag; each is one level of tera's expression tree.
pub const MAX_OPERATORS: usize = 256;
/// Macro calls inside macro calls while rendering.
pub const MAX_MACRO_DEPTH: usize = 64;
/// The largest file a template may render to.
pub const MAX_OUTPUT: usize = 16 << 20;

/// The stack of the thread templates are parsed and rendered on. Reserved address space; only what
/// a template uses is ever touched.
const RENDER_STACK: usize = 64 << 20;
/// How much stack a macro call must leave: more than one macro level can use within the limits above
/// (measured at about 3 MiB in a debug build at the worst nesting, operators and brackets at once).
const STACK_RESERVE: usize = 16 << 20;

/// The function inserted after every `{% macro %}` tag: counts the call, refuses it when too deep.
pub(super) const ENTER_FN: &str = "__gantry_enter_macro";
/// The function inserted before every `{% endmacro %}` tag.
pub(super) const LEAVE_FN: &str = "__gantry_leave_macro";

/// A limit or rule a template breaks, at a byte offset of its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Violation {
    pub offset: usize,
    pub message: String,
}

fn violation(offset: usize, message: String) -> Result<(), Violation> {
    Err(Violation { offset, message })
}

/// Tags that open a block, and the tags that close them.
fn opens(kw: &str) -> bool {
    matches!(kw, "if" | "for" | "macro" | "block" | "filter")
}

fn closes(kw: &str) -> bool {
    matches!(
        kw,
        "endif" | "endfor" | "endmacro" | "endblock" | "endfilter"
    )
}

/// Step 1 (see the module docs): limits that must hold before tera parses the template.
pub(super) fn check_limits(source: &str, tags: &[Tag]) -> Result<(), Violation> {
    let mut depth = 0usize;
    for tag in tags {
        if tag.kind == TagKind::Stmt {
            let kw = keyword(&source[tag.start..tag.end]);
            if opens(kw) {
                depth += 1;
                if depth > MAX_NESTING {
                    return violation(
                        tag.start,
                        format!(
                            "`{{% {kw} %}}` is the {depth}th block inside another; gantry allows {MAX_NESTING} \
                             (`if`, `for`, `macro`, `block` and `filter` blocks inside each other)"
                        ),
                    );
                }
            } else if closes(kw) {
                depth = depth.saturating_sub(1);
            }
        }
        let mut brackets = 0usize;
        let mut operators = 0usize;
        for t in tokens(source, tag) {
            match (t.kind, t.text) {
                (TokenKind::Punct, "(" | "[" | "{") => {
                    brackets += 1;
                    if brackets > MAX_BRACKETS {
                        return violation(
                            t.offset,
                            format!("brackets nest more than {MAX_BRACKETS} deep in one tag"),
                        );
                    }
                }
                (TokenKind::Punct, ")" | "]" | "}") => brackets = brackets.saturating_sub(1),
                (
                    TokenKind::Punct,
                    "+" | "-" | "*" | "/" | "%" | "==" | "!=" | "<" | ">" | "<=" | ">=",
                )
                | (TokenKind::Ident, "and" | "or" | "not" | "in" | "is") => operators += 1,
                _ => {}
            }
        }
        if operators > MAX_OPERATORS {
            return violation(
                tag.start,
                format!(
                    "this tag has {operators} operators; gantry allows {MAX_OPERATORS} in one tag \
                     (split the expression with {{% set %}})"
                ),
            );
        }
    }
    Ok(())
}

/// `self::NAME(` at `i`: the macro called.
fn macro_call<'a>(toks: &[Token<'a>], i: usize) -> Option<&'a str> {
    match toks.get(i..i + 4)? {
        [ns, sep, name, open]
            if ns.is(TokenKind::Ident, "self")
                && sep.is(TokenKind::Punct, "::")
                && name.kind == TokenKind::Ident
                && open.is(TokenKind::Punct, "(") =>
        {
            Some(name.text)
        }
        _ => None,
    }
}

/// Step 2 (see the module docs): templates that can never finish, found once tera has parsed the
/// template (so the tags are known to be well formed). `name` is the template's own name, which is
/// what an `include` or `import` of itself would say.
pub(super) fn check_structure(name: &str, source: &str, tags: &[Tag]) -> Result<(), Violation> {
    // The macro being defined, and how many `if`/`for` blocks inside it are open.
    let mut current: Option<&str> = None;
    let mut conditional = 0usize;
    // caller -> (callee, offset of the call): calls that run whenever the caller runs.
    let mut always: Vec<(&str, &str, usize)> = Vec::new();
    for tag in tags {
        let toks = tokens(source, tag);
        let kw = if tag.kind == TagKind::Stmt {
            keyword(&source[tag.start..tag.end])
        } else {
            ""
        };
        match kw {
            "include" => {
                let names: Vec<&str> = toks
                    .iter()
                    .filter(|t| t.kind == TokenKind::Str)
                    .map(|t| t.text)
                    .collect();
                let ignore_missing = toks.iter().any(|t| t.is(TokenKind::Ident, "ignore"));
                if names.contains(&name) {
                    return violation(
                        tag.start,
                        "the template includes itself, which would never end".to_string(),
                    );
                }
                if !ignore_missing {
                    let wanted = names.first().copied().unwrap_or_default();
                    return violation(
                        tag.start,
                        format!(
                            "`include \"{wanted}\"`: gantry renders each file's template on its own, \
                             so there is no other template to include (a macro in this template can \
                             do the same)"
                        ),
                    );
                }
            }
            "import"
                if toks
                    .iter()
                    .find(|t| t.kind == TokenKind::Str)
                    .is_some_and(|t| t.text == name) =>
            {
                return violation(
                    tag.start,
                    "the template imports itself, which would never end (its own macros are \
                     called as self::NAME)"
                        .to_string(),
                );
            }
            "macro" => {
                current = toks
                    .get(1)
                    .filter(|t| t.kind == TokenKind::Ident)
                    .map(|t| t.text);
                conditional = 0;
                continue;
            }
            "endmacro" => {
                current = None;
                continue;
            }
            _ => {}
        }
        if let Some(caller) = current {
            // `a and self::f()` only calls f when a holds.
            let short_circuits = toks
                .iter()
                .any(|t| t.is(TokenKind::Ident, "and") || t.is(TokenKind::Ident, "or"));
            // A condition or a loop's container is evaluated before its block is entered.
            if conditional == 0 && !short_circuits {
                for i in 0..toks.len() {
                    if let Some(callee) = macro_call(&toks, i) {
                        always.push((caller, callee, toks[i].offset));
                    }
                }
            }
            match kw {
                "if" | "for" => conditional += 1,
                "endif" | "endfor" => conditional = conditional.saturating_sub(1),
                _ => {}
            }
        }
    }
    for &(caller, callee, offset) in &always {
        if let Some(path) = path_between(&always, callee, caller) {
            let mut cycle = vec![caller];
            cycle.extend(path);
            let how = if cycle.len() == 2 {
                format!("macro `{caller}` always calls itself")
            } else {
                format!(
                    "macro `{caller}` always calls itself ({})",
                    cycle.join(" → ")
                )
            };
            return violation(
                offset,
                format!(
                    "{how}, so a call to it would never end; make the call depend on a condition \
                     that stops the recursion ({{% if ... %}})"
                ),
            );
        }
    }
    Ok(())
}

/// What tera 1 cannot evaluate, and panics on instead of failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unevaluable {
    /// `not a ~ b` where a boolean is wanted (`{% if not a ~ b %}`, `x and not a ~ b`).
    NegatedConcat,
    /// This (a macro call, a list, ...) as an operand of `+ - * / %` or `< > <= >=`.
    NotANumber(&'static str),
}

impl Unevaluable {
    fn message(self) -> String {
        match self {
            Unevaluable::NegatedConcat => {
                "tera cannot evaluate `not` before a `~` concatenation in a \
                                           condition; set the concatenation first \
                                           ({% set s = a ~ b %}{% if not s %})"
                    .to_string()
            }
            Unevaluable::NotANumber(what) => format!(
                "tera cannot use {what} as a number (with `+`, `-`, `*`, `/`, `%`, `<`, `>`, `<=` \
                 or `>=`); set it to a variable first ({{% set v = ... %}})"
            ),
        }
    }
}

/// Step 2 as well: expressions tera 1 cannot evaluate (it panics on them), found in tera's syntax
/// tree, so there are no false alarms. The tag reported is the first one that, parsed on its own,
/// shows the same problem.
pub(super) fn check_evaluable(
    template: &tera::Template,
    source: &str,
    tags: &[Tag],
) -> Result<(), Violation> {
    let Some(problem) = in_nodes(&template.ast) else {
        return Ok(());
    };
    let offset = tags
        .iter()
        .find(|tag| {
            standalone(source, tag)
                .and_then(|text| tera::Template::new("tag", None, &text).ok())
                .is_some_and(|alone| in_nodes(&alone.ast).is_some())
        })
        .map_or(0, |tag| tag.start);
    violation(offset, problem.message())
}

/// A tag as a template of its own (with its end tag), for the tags that hold expressions.
fn standalone(source: &str, tag: &Tag) -> Option<String> {
    let (from, to) = super::scan::inner(source, tag)?;
    if tag.kind == TagKind::Expr {
        return Some(format!("{{{{ {} }}}}", &source[from..to]));
    }
    let toks = tokens(source, tag);
    let rest = toks.get(1).map_or("", |t| &source[t.offset..to]);
    let (kw, end) = match toks.first()?.text {
        "if" | "elif" => ("if", "{% endif %}"),
        "for" => ("for", "{% endfor %}"),
        "filter" => ("filter", "{% endfilter %}"),
        "set" => ("set", ""),
        "set_global" => ("set_global", ""),
        _ => return None,
    };
    Some(format!("{{% {kw} {rest} %}}{end}"))
}

fn in_nodes(nodes: &[tera::ast::Node]) -> Option<Unevaluable> {
    use tera::ast::Node;
    nodes.iter().find_map(|node| match node {
        Node::VariableBlock(_, e) => in_expr(e, false),
        Node::MacroDefinition(_, m, _) => in_nodes(&m.body),
        Node::Set(_, set) => in_expr(&set.value, false),
        Node::FilterSection(_, f, _) => in_args(&f.filter.args).or_else(|| in_nodes(&f.body)),
        Node::Block(_, b, _) => in_nodes(&b.body),
        Node::Forloop(_, f, _) => in_expr(&f.container, false)
            .or_else(|| in_nodes(&f.body))
            .or_else(|| f.empty_body.as_deref().and_then(in_nodes)),
        Node::If(i, _) => i
            .conditions
            .iter()
            .find_map(|(_, e, body)| in_expr(e, true).or_else(|| in_nodes(body)))
            .or_else(|| i.otherwise.as_ref().and_then(|(_, body)| in_nodes(body))),
        _ => None,
    })
}

fn in_args(args: &HashMap<String, tera::ast::Expr>) -> Option<Unevaluable> {
    args.values().find_map(|a| in_expr(a, false))
}

/// In `e`, evaluated as a boolean when `as_bool` (as tera does for conditions and the operands of
/// `and` and `or`).
fn in_expr(e: &tera::ast::Expr, as_bool: bool) -> Option<Unevaluable> {
    use tera::ast::{ExprVal, LogicOperator};
    if as_bool && e.negated && matches!(e.val, ExprVal::StringConcat(_)) {
        return Some(Unevaluable::NegatedConcat);
    }
    if let Some(found) = e.filters.iter().find_map(|f| in_args(&f.args)) {
        return Some(found);
    }
    match &e.val {
        ExprVal::Logic(l) => {
            let ordering = matches!(
                l.operator,
                LogicOperator::Gt | LogicOperator::Gte | LogicOperator::Lt | LogicOperator::Lte
            );
            let boolean = matches!(l.operator, LogicOperator::And | LogicOperator::Or);
            ordering
                .then(|| number_operand(&l.lhs).or_else(|| number_operand(&l.rhs)))
                .flatten()
                .or_else(|| in_expr(&l.lhs, boolean))
                .or_else(|| in_expr(&l.rhs, boolean))
        }
        ExprVal::Math(m) => number_operand(&m.lhs)
            .or_else(|| number_operand(&m.rhs))
            .or_else(|| in_expr(&m.lhs, false))
            .or_else(|| in_expr(&m.rhs, false)),
        ExprVal::In(i) => in_expr(&i.lhs, false).or_else(|| in_expr(&i.rhs, false)),
        ExprVal::Test(t) => t.args.iter().find_map(|a| in_expr(a, false)),
        ExprVal::MacroCall(m) => in_args(&m.args),
        ExprVal::FunctionCall(f) => in_args(&f.args),
        ExprVal::Array(items) => items.iter().find_map(|a| in_expr(a, false)),
        ExprVal::StringConcat(c) => c.values.iter().find_map(|v| match v {
            ExprVal::FunctionCall(f) => in_args(&f.args),
            _ => None,
        }),
        _ => None,
    }
}

/// What tera cannot turn into a number when it stands, unfiltered, beside a math or ordering
/// operator.
fn number_operand(e: &tera::ast::Expr) -> Option<Unevaluable> {
    use tera::ast::ExprVal;
    if !e.filters.is_empty() {
        return None;
    }
    match e.val {
        ExprVal::MacroCall(_) => Some(Unevaluable::NotANumber("a macro call")),
        ExprVal::Array(_) => Some(Unevaluable::NotANumber("a list")),
        ExprVal::In(_) => Some(Unevaluable::NotANumber("an `in` test")),
        ExprVal::Logic(_) => Some(Unevaluable::NotANumber("a comparison or `and`/`or`")),
        _ => None,
    }
}

/// The macros from `from` to `to` along `edges` (both ends included), if `to` can be reached.
fn path_between<'a>(
    edges: &[(&'a str, &'a str, usize)],
    from: &'a str,
    to: &'a str,
) -> Option<Vec<&'a str>> {
    let mut parent: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = VecDeque::from([from]);
    let mut seen = vec![from];
    while let Some(at) = queue.pop_front() {
        if at == to {
            let mut path = vec![to];
            let mut cur = to;
            while let Some(&p) = parent.get(cur) {
                path.push(p);
                cur = p;
            }
            path.reverse();
            return Some(path);
        }
        for &(caller, callee, _) in edges {
            if caller == at && !seen.contains(&callee) {
                seen.push(callee);
                parent.insert(callee, at);
                queue.push_back(callee);
            }
        }
    }
    None
}

thread_local! {
    /// An address near the top of the render thread's stack (0 on any other thread).
    static STACK_TOP: Cell<usize> = const { Cell::new(0) };
}

/// How much of the render thread's stack is in use, if this is the render thread.
fn stack_used() -> Option<usize> {
    let here = 0u8;
    let here = std::ptr::addr_of!(here) as usize;
    match STACK_TOP.with(Cell::get) {
        0 => None,
        top => Some(top.saturating_sub(here)),
    }
}

/// Runs `f` on a thread with a [`RENDER_STACK`] stack and waits for it. `Err` carries why the thread
/// could not run `f` to the end (it could not be started, or `f` panicked).
pub(super) fn on_render_stack<T: Send>(f: impl FnOnce() -> T + Send) -> Result<T, String> {
    std::thread::scope(|scope| {
        let spawned = std::thread::Builder::new()
            .name("gantry-render".into())
            .stack_size(RENDER_STACK)
            .spawn_scoped(scope, || {
                let top = 0u8;
                STACK_TOP.with(|t| t.set(std::ptr::addr_of!(top) as usize));
                f()
            });
        match spawned {
            Ok(handle) => handle.join().map_err(|panic| {
                format!(
                    "the template engine failed unexpectedly: {}",
                    panic_message(panic.as_ref())
                )
            }),
            Err(e) => Err(format!("cannot start a thread to render on: {e}")),
        }
    })
}

/// What a caught panic said.
pub(super) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string())
}

/// Registers [`ENTER_FN`] and [`LEAVE_FN`] with a fresh depth count: one per render.
pub(super) fn register_macro_depth(tera: &mut tera::Tera) {
    let depth = Arc::new(AtomicUsize::new(0));
    let enter = Arc::clone(&depth);
    tera.register_function(ENTER_FN, move |args: &HashMap<String, Value>| {
        let name = args.get("m").and_then(Value::as_str).unwrap_or("?");
        let now = enter.fetch_add(1, Ordering::SeqCst) + 1;
        if now > MAX_MACRO_DEPTH {
            return Err(tera::Error::msg(format!(
                "macro `{name}` was called inside {} other macro calls; gantry allows {MAX_MACRO_DEPTH} \
                 (a recursion that does not stop?)",
                now - 1
            )));
        }
        if stack_used().is_some_and(|used| used > RENDER_STACK - STACK_RESERVE) {
            return Err(tera::Error::msg(format!(
                "macro `{name}`: macro calls and the blocks inside them nest too deeply for gantry's \
                 render stack ({} calls deep)",
                now - 1
            )));
        }
        Ok(Value::String(String::new()))
    });
    tera.register_function(LEAVE_FN, move |_: &HashMap<String, Value>| {
        let _ = depth.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |d| d.checked_sub(1));
        Ok(Value::String(String::new()))
    });
}

/// Where a render writes: a buffer that refuses to grow past [`MAX_OUTPUT`].
#[derive(Debug, Default)]
pub(super) struct Output {
    pub bytes: Vec<u8>,
    /// Set when a write was refused, so the error can be told apart from tera's own.
    pub over: bool,
}

impl io::Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.bytes.len() + buf.len() > MAX_OUTPUT {
            self.over = true;
            return Err(io::Error::other("output limit"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The message for a render stopped by [`Output`].
pub(super) fn output_limit_message() -> String {
    format!(
        "the rendered file would be larger than {} MiB, the most gantry writes",
        MAX_OUTPUT >> 20
    )
}

#[cfg(test)]
mod tests {
    use super::super::scan::scan;
    use super::*;

    fn limits(src: &str) -> Result<(), Violation> {
        check_limits(src, &scan(src))
    }

    fn structure(src: &str) -> Result<(), Violation> {
        check_structure("t.tera", src, &scan(src))
    }

    #[test]
    fn nesting_is_limited_and_the_first_block_too_deep_is_named() {
        let ok = "{% if true %}".repeat(MAX_NESTING) + &"{% endif %}".repeat(MAX_NESTING);
        assert_eq!(limits(&ok), Ok(()));
        // Siblings do not add up.
        assert_eq!(limits(&ok.repeat(3)), Ok(()));
        let deep = "{% for i in [1] %}".repeat(MAX_NESTING + 1);
        let v = limits(&deep).expect_err("too deep");
        assert_eq!(v.offset, "{% for i in [1] %}".len() * MAX_NESTING);
        assert!(v.message.contains("65th block"), "{}", v.message);
    }

    #[test]
    fn brackets_and_operators_in_one_tag_are_limited() {
        let ok = format!("{{{{ {}1{} }}}}", "(".repeat(32), ")".repeat(32));
        assert_eq!(limits(&ok), Ok(()));
        let deep = format!("{{{{ {}1{} }}}}", "[".repeat(33), "]".repeat(33));
        assert_eq!(limits(&deep).expect_err("deep").offset, 3 + 32);
        let long = format!("x\n{{{{ {}1 }}}}", "1 + ".repeat(MAX_OPERATORS + 1));
        let v = limits(&long).expect_err("long");
        assert_eq!(v.offset, 2);
        assert!(v.message.contains("257 operators"), "{}", v.message);
        // Inside strings, nothing counts.
        let quoted = format!("{{{{ \"{}\" }}}}", "(+".repeat(1000));
        assert_eq!(limits(&quoted), Ok(()));
    }

    #[test]
    fn including_or_importing_itself_is_refused() {
        let v = structure("a\n{% include \"t.tera\" %}").expect_err("self include");
        assert_eq!(v.offset, 2);
        assert!(v.message.contains("includes itself"), "{}", v.message);
        assert!(structure("{% include [\"x\", \"t.tera\"] ignore missing %}").is_err());
        let v = structure("{% include \"other.tera\" %}").expect_err("other");
        assert!(v.message.contains("other.tera"), "{}", v.message);
        assert_eq!(
            structure("{% include \"other.tera\" ignore missing %}"),
            Ok(())
        );
        assert!(structure("{% import \"t.tera\" as m %}").is_err());
        assert_eq!(structure("{{ \"{% include 't.tera' %}\" }}"), Ok(()));
    }

    #[test]
    fn unconditional_recursion_is_refused_with_the_call_that_closes_the_cycle() {
        let src = "{% macro f() %}{{ self::f() }}{% endmacro %}";
        let v = structure(src).expect_err("direct");
        assert_eq!(v.offset, src.find("self::f").expect("call"));
        assert!(
            v.message.contains("macro `f` always calls itself"),
            "{}",
            v.message
        );

        let src = "{% macro f() %}{{ self::g() }}{% endmacro %}\n{% macro g() %}{% set x = self::f() %}{% endmacro %}";
        let v = structure(src).expect_err("through g");
        assert!(v.message.contains("f → g → f"), "{}", v.message);

        // A condition evaluated before its block counts as unconditional.
        assert!(structure("{% macro f() %}{% if self::f() %}{% endif %}{% endmacro %}").is_err());
    }

    #[test]
    fn recursion_behind_a_condition_is_left_to_the_runtime_limit() {
        for src in [
            "{% macro f(n) %}{% if n > 0 %}{{ self::f(n=n-1) }}{% endif %}{% endmacro %}",
            "{% macro f(l) %}{% for x in l %}{{ self::f(l=x) }}{% endfor %}{% endmacro %}",
            "{% macro f(n) %}{% if n %}a{% else %}{{ self::f(n=1) }}{% endif %}{% endmacro %}",
            "{% macro f(n) %}{{ n > 0 and self::f(n=n-1) }}{% endmacro %}",
            "{% macro f() %}x{% endmacro %}{{ self::f() }}{{ self::f() }}",
            "{% macro f() %}{{ \"self::f()\" }}{% endmacro %}",
        ] {
            assert_eq!(structure(src), Ok(()), "{src}");
        }
    }

    #[test]
    fn output_is_refused_past_the_limit() {
        use std::io::Write;
        let mut out = Output::default();
        assert!(out.write_all(&vec![b'x'; MAX_OUTPUT]).is_ok());
        assert!(out.write_all(b"y").is_err());
        assert!(out.over);
        assert_eq!(out.bytes.len(), MAX_OUTPUT);
    }

    #[test]
    fn the_render_thread_knows_its_stack_and_reports_panics() {
        assert_eq!(stack_used(), None);
        let used = on_render_stack(stack_used).expect("ran");
        assert!(used.is_some_and(|u| u < RENDER_STACK), "{used:?}");
        let e = on_render_stack(|| -> () { panic!("boom") }).expect_err("panicked");
        assert!(e.contains("boom"), "{e}");
    }
}
